/* The cgroup selector of a section whose payload has `cgroups` (rezgen/pages/cgroups.py): pick cgroups by name
   (a search box; the busiest picked at first). "Individual" charts (individual-*) draw the picked cgroups; each
   aggregate chart paired with one (`pairs`) draws the aggregate minus the picked cgroups: the others.

   The payload's plots keep every series they were given; charts of these plots get a kind of their own whose
   option and series are those of a line chart of a view of the plot (the picked series, or the rest), derived
   again on each draw, so the live pages' pushed points (merged into the plots) and a new pick both show. Of a
   static site that split the cgroups into files of their own (`files`), a cgroup's file is loaded when it is
   picked. Names are data: they reach the page as text (textContent, input values) only.

   Loaded before page.js, so that every section payload passes through `prepare` before a chart is made. */
(function (R) {
  'use strict';
  var INDIVIDUAL = 'individual-';
  var sel = null; // the latest payload's selector: {names, picked, pairs, files}
  var plots = {}; // its plots by id
  var picked = null; // the names picked, kept across payloads (a live page reloads its data)
  var view = null; // the picker's elements

  var register = R.register;
  R.register = function (key, payload) {
    if (payload && payload.cgroups && payload.groups) prepare(payload);
    register(key, payload);
  };

  function prepare(payload) {
    sel = payload.cgroups;
    plots = {};
    payload.groups.forEach(function (g) { g.plots.forEach(function (p) { plots[p.id] = p; }); });
    Object.keys(plots).forEach(function (id) {
      var p = plots[id];
      if (id.indexOf(INDIVIDUAL) === 0 && p.levels) { p.cgroupRole = 'picked'; p.kind = 'cgroup-picked'; }
    });
    Object.keys(sel.pairs || {}).forEach(function (id) {
      var p = plots[id], own = plots[sel.pairs[id]];
      if (p && p.levels && own && own.levels) { p.cgroupRole = 'rest'; p.cgroupPair = own; p.kind = 'cgroup-rest'; }
    });
    // A ratio (IPC): the others' numerator over the others' denominator, from the plots it is made of.
    Object.keys(sel.ratios || {}).forEach(function (id) {
      var p = plots[id], r = sel.ratios[id];
      var num = [plots[r.num[0]], plots[r.num[1]]], den = [plots[r.den[0]], plots[r.den[1]]];
      if (!p || !p.levels || num.concat(den).some(function (x) { return !x || !x.levels; })) return;
      p.cgroupRole = 'rest'; p.cgroupRatio = { num: num, den: den }; p.kind = 'cgroup-rest';
    });
    if (!picked) picked = sel.picked.slice();
    if (view) fill();
  }

  function pickedSet() {
    var set = new Set();
    (picked || []).forEach(function (n) { set.add(n); });
    return set;
  }

  /* The picked series of an individual plot. */
  function pickedView(full) {
    var set = pickedSet(), keep = [];
    full.names.forEach(function (n, i) { if (set.has(n)) keep.push(i); });
    return Object.assign({}, full, {
      cgroupRole: undefined, kind: 'multi', names: keep.map(function (i) { return full.names[i]; }),
      levels: full.levels.map(function (l) {
        return { bucket: l.bucket, t: l.t, values: keep.map(function (i) { return l.values[i]; }) };
      })
    });
  }

  /* The whole minus the picked series of its individual plot, level by level (levels of the same bucket):
     [{bucket, t, row}]. */
  function restLevels(whole, own) {
    var set = pickedSet(), rows = [], levels = [];
    own.names.forEach(function (n, i) { if (set.has(n)) rows.push(i); });
    whole.levels.forEach(function (l) {
      var match = null;
      own.levels.forEach(function (o) { if (o.bucket === l.bucket && o.t.length === l.t.length) match = o; });
      if (!match && rows.length) return;
      var total = l.values[0] || [], out = new Array(total.length);
      for (var k = 0; k < total.length; k++) {
        var v = total[k];
        if (v === null || v === undefined) { out[k] = null; continue; }
        for (var r = 0; r < rows.length; r++) {
          var x = match.values[rows[r]][k];
          if (typeof x === 'number') v -= x;
        }
        // What the subtraction leaves of a whole the picked cgroups make up entirely is rounding: zero.
        out[k] = Math.abs(v) <= 1e-9 * Math.abs(total[k]) ? 0 : v;
      }
      levels.push({ bucket: l.bucket, t: l.t, row: out });
    });
    return levels;
  }

  /* The aggregate of the cgroups not picked: its plot minus the picked ones, or a ratio of two such. */
  function restView(full) {
    var levels;
    if (full.cgroupRatio) {
      var num = restLevels(full.cgroupRatio.num[0], full.cgroupRatio.num[1]);
      var den = restLevels(full.cgroupRatio.den[0], full.cgroupRatio.den[1]);
      levels = [];
      num.forEach(function (n) {
        var d = den.filter(function (x) { return x.bucket === n.bucket && x.t.length === n.t.length; })[0];
        if (!d) return;
        levels.push({ bucket: n.bucket, t: n.t, values: [n.row.map(function (v, k) {
          var w = d.row[k];
          return v === null || w === null || w === 0 ? null : v / w;
        })] });
      });
    } else {
      levels = restLevels(full, full.cgroupPair).map(function (l) {
        return { bucket: l.bucket, t: l.t, values: [l.row] };
      });
    }
    return Object.assign({}, full, { cgroupRole: undefined, kind: 'line', levels: levels.length ? levels : full.levels });
  }

  /* The chart draws a view of its plot; `full` is the plot itself (a live page may hand it a new one). */
  function derive(chart) {
    if (chart.plot.cgroupRole) chart.full = chart.plot;
    chart.plot = chart.full.cgroupRole === 'picked' ? pickedView(chart.full) : restView(chart.full);
  }

  function kind() {
    function wrap(name) {
      return function (chart, a, b) { derive(chart); return R.kinds.multi[name](chart, a, b); };
    }
    return { level: wrap('level'), series: wrap('series'), option: wrap('option'), signature: wrap('signature') };
  }

  /* ---- the picker ---- */

  function node(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function build() {
    var content = document.getElementById('content');
    var first = content && content.querySelector('section.group');
    if (!first || view) return;
    var box = node('section', 'selector cgroup-picker');
    box.id = 'cgroup-picker';
    box.setAttribute('aria-label', 'Pick cgroups');
    var head = node('header', 'selector-head');
    head.appendChild(node('h2', 'group-title', 'cgroups'));
    var count = node('span', 'selector-count');
    head.appendChild(count);
    var search = node('input', 'selector-search');
    search.type = 'search';
    search.placeholder = 'Search cgroups by name…';
    search.setAttribute('aria-label', 'Search cgroups by name');
    head.appendChild(search);
    var busiest = node('button', 'btn btn-small', 'Busiest');
    busiest.type = 'button';
    busiest.title = 'Pick the cgroups picked at first: the busiest by CPU';
    var none = node('button', 'btn btn-small', 'None');
    none.type = 'button';
    head.appendChild(busiest);
    head.appendChild(none);
    box.appendChild(head);
    box.appendChild(node('p', 'selector-help',
      'Individual charts show the picked cgroups; Aggregate charts the sum of all the others.'));
    var list = node('ul', 'selector-list');
    box.appendChild(list);
    first.parentNode.insertBefore(box, first);
    view = { box: box, list: list, search: search, count: count };
    search.addEventListener('input', filter);
    busiest.addEventListener('click', function () { pick(sel.picked.slice()); });
    none.addEventListener('click', function () { pick([]); });
    list.addEventListener('change', function (e) {
      var input = e.target;
      if (!input || input.type !== 'checkbox') return;
      var now = picked.filter(function (n) { return n !== input.value; });
      if (input.checked) now.push(input.value);
      pick(now);
    });
    fill();
  }

  /* The list: picked cgroups first, then the others, each in the payload's order (busiest first). */
  function fill() {
    if (!view || !sel) return;
    var set = pickedSet(), list = view.list;
    list.textContent = '';
    var names = sel.names.filter(function (n) { return set.has(n); })
      .concat(sel.names.filter(function (n) { return !set.has(n); }));
    names.forEach(function (name) {
      var item = node('li', 'selector-item'), label = node('label'), box = node('input');
      box.type = 'checkbox';
      box.value = name;
      box.checked = set.has(name);
      label.appendChild(box);
      label.appendChild(node('span', 'selector-name', name));
      label.title = name;
      item.appendChild(label);
      list.appendChild(item);
    });
    view.count.textContent = set.size + ' of ' + sel.names.length + ' picked';
    filter();
  }

  function filter() {
    var text = view.search.value.trim().toLowerCase();
    view.list.querySelectorAll('li').forEach(function (li) {
      li.hidden = !!text && li.querySelector('input').value.toLowerCase().indexOf(text) < 0;
    });
  }

  /* Load the files of picked cgroups that are not in the plots yet (a split static site). */
  function ensure(names) {
    var files = (sel && sel.files) || {}, host = R.host ? R.host() : '_';
    var wanted = names.filter(function (n) { return files[n] && !sel.loaded[n]; });
    return Promise.all(wanted.map(function (name) {
      var file = files[name];
      return R.load(R.dataPath('data/{host}/cgroups/' + file + '.js', host), host + '/cgroups/' + file)
        .then(function (part) { add(part); sel.loaded[name] = true; });
    }));
  }

  function add(part) {
    Object.keys(part.plots).forEach(function (id) {
      var p = plots[id], rows = part.plots[id];
      if (!p || p.names.indexOf(part.name) >= 0) return;
      p.names.push(part.name);
      p.levels.forEach(function (l, i) { l.values.push(rows[i]); delete l._pairs; });
    });
  }

  function redraw() {
    R.state.charts.forEach(function (chart) {
      var role = (chart.full || chart.plot).cgroupRole;
      if (!role || !chart.inst) return;
      if (chart.visible === false) chart.stale = true;
      else chart.render();
    });
  }

  function pick(names) {
    if (!sel) return Promise.resolve();
    sel.loaded = sel.loaded || {};
    return ensure(names).then(function () {
      picked = names.slice();
      fill();
      redraw();
      document.dispatchEvent(new CustomEvent('rezgen:cgroups', { detail: { picked: picked.slice() } }));
    }, function (err) {
      view.count.textContent = 'Cannot load a cgroup\'s data: ' + err.message;
    });
  }

  R.cgroups = { picked: function () { return (picked || []).slice(); }, pick: pick };

  document.addEventListener('DOMContentLoaded', function () {
    R.kinds['cgroup-picked'] = R.kinds['cgroup-rest'] = kind();
    if (sel) build();
    else document.addEventListener('rezgen:data', function once() { if (sel) { build(); } });
  });
})(window.REZGEN = window.REZGEN || {});
