/* One chart alone at full width: a section page opened with ?chart=<plot id> (chart-export.js's "Open"). Its
   query is shown under it; on a served or live page (rezgen serve) it can be edited and run again over the
   Prometheus API (/api/v1/query_range, the chart's time range and step), the result drawn in its place. From
   file:// the chart is shown as built and the query is read-only.

   R.matrixPlot turns a query_range answer into a line/multi plot payload (query.js draws with it too). */
(function (R) {
  'use strict';

  R.served = function () { return location.protocol === 'http:' || location.protocol === 'https:'; };

  /* A series' name from its labels, as plotdata/plots.py names series. */
  function seriesName(metric) {
    var keys = Object.keys(metric).filter(function (k) { return k !== '__name__'; }).sort();
    if (!keys.length) return metric.__name__ || 'value';
    if (keys.length === 1) return metric[keys[0]];
    return keys.map(function (k) { return k + '=' + metric[k]; }).join(', ');
  }

  /* {kind, names, levels: [{bucket: 1, t, values}]} of a `matrix` result (values on the union of its times). */
  R.matrixPlot = function (data, plot) {
    var result = data.result || [], times = new Set();
    result.forEach(function (s) { s.values.forEach(function (p) { times.add(Math.round(p[0] * 1000)); }); });
    var t = Array.from(times).sort(function (a, b) { return a - b; });
    var at = new Map(t.map(function (x, i) { return [x, i]; }));
    var values = result.map(function (s) {
      var row = new Array(t.length).fill(null);
      s.values.forEach(function (p) { row[at.get(Math.round(p[0] * 1000))] = Number(p[1]); });
      return row;
    });
    return Object.assign({}, plot || {}, {
      kind: result.length > 1 ? 'multi' : 'line', names: result.map(function (s) { return seriesName(s.metric); }),
      levels: [{ bucket: 1, t: t, values: values }], log: false, range: null
    });
  };

  /* GET /api/v1/query_range; a Promise of its `data`, or an Error carrying the server's reason. */
  R.queryRange = function (query, start, end, step) {
    var params = new URLSearchParams({ query: query, start: String(start / 1000), end: String(end / 1000),
                                       step: String(step / 1000) });
    var root = document.body.getAttribute('data-root') || '';
    return fetch(root + 'api/v1/query_range?' + params).then(function (r) {
      return r.json().then(function (body) {
        if (body.status !== 'success') throw new Error(body.error || ('HTTP ' + r.status));
        if (body.data.resultType !== 'matrix') throw new Error('the result is a ' + body.data.resultType);
        return body.data;
      });
    });
  };

  var wanted = new URLSearchParams(location.search).get('chart');
  if (!wanted) return;
  var el = document.querySelector('.chart[data-plot-id="' + CSS.escape(wanted) + '"]');
  if (!el) return;
  document.body.classList.add('single-chart');
  var panel = el.closest('.panel');
  panel.classList.add('panel-single');
  panel.closest('.group').classList.add('group-single');

  var box = document.createElement('div');
  box.className = 'chart-query';
  var back = document.createElement('a');
  back.className = 'btn btn-small';
  back.textContent = '← All charts of this section';
  var params = new URLSearchParams(location.search);
  params.delete('chart');
  back.href = location.pathname + (String(params) ? '?' + params : '') + location.hash;
  var label = document.createElement('label');
  label.textContent = 'Query';
  label.htmlFor = 'chart-query-text';
  var text = document.createElement('textarea');
  text.id = 'chart-query-text';
  text.rows = 3;
  text.spellcheck = false;
  var run = document.createElement('button');
  run.type = 'button';
  run.className = 'btn btn-primary';
  run.id = 'chart-query-run';
  run.textContent = 'Run';
  var note = document.createElement('p');
  note.className = 'chart-query-note';
  note.setAttribute('role', 'status');
  box.appendChild(back);
  box.appendChild(label);
  box.appendChild(text);
  box.appendChild(run);
  box.appendChild(note);
  panel.appendChild(box);
  if (!R.served()) {
    text.readOnly = true;
    run.hidden = true;
    note.textContent = 'Editing and running the query needs a server: rezgen serve RECORDING.';
  }

  function original() {
    var plot = el.__plot;
    if (plot && !text.value) text.value = plot.query || '';
  }
  document.addEventListener('rezgen:data', function () { setTimeout(original, 0); });
  var timer = setInterval(function () { if (el.__plot) { clearInterval(timer); original(); } }, 100);

  run.addEventListener('click', function () {
    var chart = el.__rezgen, plot = el.__plot;
    if (!chart || !R.state.range) return;
    note.textContent = 'Running…';
    note.classList.remove('error');
    var win = R.state.range;
    R.queryRange(text.value, win[0], win[1], R.state.step).then(function (data) {
      var drawn = R.matrixPlot(data, { id: plot.id, title: plot.title, unit: plot.unit, query: text.value });
      if (!drawn.names.length) { note.textContent = 'The query returned no series.'; return; }
      chart.plot = drawn;
      chart.setKind(drawn.kind);
      note.textContent = drawn.names.length + ' series, ' + drawn.levels[0].t.length + ' points.';
    }, function (err) {
      note.textContent = 'Query failed: ' + err.message;
      note.classList.add('error');
    });
  });
})(window.REZGEN = window.REZGEN || {});
