/* A compare page's panels: page.js hands each compare plot here (through R.createChart, see compare-common.js),
   which lays out the panel's charts by kind — line: A and B overlaid; multi-series: one small chart per series;
   percentiles: one small chart per quantile (or the two bucket heatmaps); per-CPU heatmaps: A and B side by side
   on one colour scale, or their difference. Every chart element carries the plot's data-plot-id (and
   data-series / data-side), its series are named by alias ("base", "exp p99"). */
(function (R) {
  'use strict';
  var AB = R.AB;

  function div(parent, cls, text) {
    var el = document.createElement('div');
    el.className = cls;
    if (text !== undefined) el.textContent = text;
    parent.appendChild(el);
    return el;
  }

  function chartEl(parent, plot, cls, attrs) {
    var el = div(parent, 'ab-chart ' + cls);
    el.setAttribute('data-plot-id', plot.id);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    return el;
  }

  /* The lines of series `name` (row of each side holding it), A first. */
  function lines(plot, name, suffix) {
    var out = [];
    plot.sides.forEach(function (side, i) {
      var d = side.data, row = d ? d.names.indexOf(name) : -1;
      if (row >= 0) out.push({ name: side.alias + (suffix ? ' ' + suffix : ''), color: AB.colors[i], levels: d.levels, row: row });
    });
    return out;
  }

  function lineChart(parent, plot, name, opts) {
    var el = chartEl(parent, plot, opts.cls, opts.attrs);
    return R.singleChart(el, { id: plot.id, unit: plot.unit, log: plot.log, range: plot.range, small: opts.title,
                               lines: lines(plot, name, opts.suffix) }, 'ab-line');
  }

  function names(plot) {
    var seen = [];
    plot.sides.forEach(function (side) {
      if (side.data) side.data.names.forEach(function (n) { if (seen.indexOf(n) < 0) seen.push(n); });
    });
    return seen;
  }

  /* A button in the panel's header that switches the panel between two layouts. */
  function toggle(el, labels, draw, mode) {
    var head = el.closest('.panel') && el.closest('.panel').querySelector('.panel-head');
    var on = false, button = document.createElement('button');
    button.type = 'button';
    button.className = 'btn btn-small ab-toggle';
    button.setAttribute('aria-pressed', 'false');
    button.setAttribute('data-ab-toggle', el.getAttribute('data-plot-id'));
    button.setAttribute('data-ab-mode', mode);
    button.textContent = labels[0];
    button.addEventListener('click', function () {
      on = !on;
      button.setAttribute('aria-pressed', String(on));
      button.textContent = labels[on ? 1 : 0];
      draw(on);
    });
    if (head) head.appendChild(button);
    return button;
  }

  function heatmaps(body, plot, group) {
    var a = AB.data(plot, 0), b = AB.data(plot, 1);
    var rows = names(plot), lo = plot.range ? plot.range[0] : 0;
    var hi = Math.max(AB.heatMax(a), AB.heatMax(b));
    if (plot.range && !(hi > 0 && hi < 0.05 * (plot.range[1] - plot.range[0]))) hi = plot.range[1];
    var pair = div(body, 'ab-pair');
    plot.sides.forEach(function (side, i) {
      if (!side.data) return;
      var el = chartEl(pair, plot, 'ab-heat', { 'data-side': side.alias });
      group.add(R.singleChart(el, { id: plot.id, unit: plot.unit, caption: side.alias, color: AB.colors[i],
                                    data: side.data, names: rows, step: side.step, lo: lo, hi: hi > lo ? hi : lo + 1 }, 'ab-heatmap'));
    });
    if (!a || !b) return;
    var diffEl = chartEl(body, plot, 'ab-heat ab-diff', { 'data-side': 'diff' });
    diffEl.hidden = true;
    var diff = null;
    toggle(group.el, [plot.sides[1].alias + ' − ' + plot.sides[0].alias, 'Side by side'], function (on) {
      pair.hidden = on;
      diffEl.hidden = !on;
      if (on && !diff) {
        diff = R.singleChart(diffEl, { id: plot.id, unit: plot.unit,
                                       diff: AB.difference(a, b, plot.sides[0].step, plot.sides[1].step),
                                       caption: plot.sides[1].alias + ' − ' + plot.sides[0].alias }, 'ab-diff');
        group.add(diff);
      }
    }, 'diff');
  }

  /* The bucket heatmaps of a percentile plot: A and B side by side on one log colour scale, and (when both have
     one) their difference B − A in counts per second. Returns show(on), or null without bucket heatmaps. */
  function buckets(el, body, plot, group) {
    var edges = [], lo = Infinity, hi = -Infinity, both = true;
    plot.sides.forEach(function (side) {
      var b = side.data && side.data.buckets;
      if (!b) { both = false; return; }
      b.edges.forEach(function (e) { if (edges.indexOf(e) < 0) edges.push(e); });
      b.cells.forEach(function (cell) {
        if (cell[2] > 0) { var v = Math.log10(cell[2]); if (v < lo) lo = v; if (v > hi) hi = v; }
      });
    });
    if (!edges.length) return null;
    edges.sort(function (x, y) { return x - y; });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    var pair = div(body, 'ab-pair'), diffEl = null, diff = null, button = null, made = false;
    pair.hidden = true;
    function sideBySide() {
      if (made) return;
      made = true;
      plot.sides.forEach(function (side, i) {
        if (!side.data || !side.data.buckets) return;
        var heat = chartEl(pair, plot, 'ab-heat ab-buckets', { 'data-side': side.alias });
        group.add(R.singleChart(heat, { id: plot.id, unit: plot.unit, caption: side.alias, color: AB.colors[i],
                                        data: side.data, edges: edges, lo: lo, hi: hi > lo ? hi : lo + 1 }, 'ab-buckets'));
      });
    }
    var differs = false;
    function difference(on) {
      differs = on;
      pair.hidden = on;
      diffEl.hidden = !on;
      if (!on || diff) return;
      var a = AB.bucketLevel(plot.sides[0].data, edges, plot.sides[0].step);
      var b = AB.bucketLevel(plot.sides[1].data, edges, plot.sides[1].step);
      diff = R.singleChart(diffEl, { id: plot.id, unit: 'rate', diff: AB.difference(a, b, a.width, b.width),
                                     labels: edges.map(function (e) { return '≤ ' + R.units.format(plot.unit, e, 1); }),
                                     caption: plot.sides[1].alias + ' − ' + plot.sides[0].alias + ' (per second)' },
                           'ab-diff');
      group.add(diff);
    }
    return function (on) {
      if (both && !button) { // made on first use, so that it follows the Heatmap button
        diffEl = chartEl(body, plot, 'ab-heat ab-diff', { 'data-side': 'diff' });
        diffEl.hidden = true;
        button = toggle(el, [plot.sides[1].alias + ' − ' + plot.sides[0].alias, 'Side by side'], difference, 'diff');
      }
      if (button) button.hidden = !on;
      if (!on) { pair.hidden = true; if (diffEl) diffEl.hidden = true; return; }
      sideBySide();
      if (differs) difference(true); else pair.hidden = false;
    };
  }

  R.compareChart = function (el, plot) {
    el.textContent = '';
    el.classList.add('ab-group');
    var group = { el: el, plot: plot, charts: [], add: function (c) { this.charts.push(c); }, setKind: function () {} };
    el.__rezgen = group;
    var lacking = plot.sides.filter(function (s) { return !s.data; });
    if (lacking.length) {
      var other = plot.sides.filter(function (s) { return s.data; })[0];
      div(el, 'ab-note', 'Only ' + other.alias + ' has data for this chart: ' + lacking[0].alias +
          ' does not record its metric' + (plot.kind === 'heatmap' ? ' (or has a single device)' : '') + '.');
    }
    var body = div(el, 'ab-body ab-' + plot.kind);
    if (plot.kind === 'line') {
      group.add(lineChart(body, plot, names(plot)[0], { cls: 'ab-main' }));
    } else if (plot.kind === 'multi') {
      var grid = div(body, 'ab-grid');
      names(plot).forEach(function (name) {
        group.add(lineChart(grid, plot, name, { cls: 'ab-small', title: R.shortName(name), attrs: { 'data-series': name } }));
      });
    } else if (plot.kind === 'percentiles') {
      var quantiles = div(body, 'ab-grid');
      names(plot).forEach(function (q) {
        group.add(lineChart(quantiles, plot, q, { cls: 'ab-small', title: q, suffix: q, attrs: { 'data-series': q } }));
      });
      var show = buckets(el, body, plot, group);
      if (show) toggle(el, ['Heatmap', 'Percentiles'], function (on) { quantiles.hidden = on; show(on); }, 'heatmap');
    } else if (plot.kind === 'heatmap') {
      heatmaps(body, plot, group);
    }
    return group;
  };

  /* A host only one recording has, said at the top of the page (its data may have registered before this
     script ran: page.js starts loading it first). */
  function alone(payload) {
    var note = document.getElementById('ab-alone'), sides = payload && payload.compare && payload.compare.sides;
    if (!sides || !note) return;
    var missing = sides.filter(function (s) { return s.host === null; });
    if (!missing.length) return;
    var having = sides.filter(function (s) { return s.host !== null; })[0];
    note.textContent = 'Host ' + payload.compare.host + ' is only in ' + having.alias + ': ' + missing[0].alias +
      ' has no such node, so its charts show ' + having.alias + ' alone.';
    note.hidden = false;
  }
  document.addEventListener('rezgen:data', function (e) { alone(R.payload(e.detail.key)); });
  document.addEventListener('DOMContentLoaded', function () {
    alone(R.payload(R.host() + '/' + document.body.getAttribute('data-route')));
  });

  /* ?plot=ID (What changed links here): bring that chart into view. */
  document.addEventListener('DOMContentLoaded', function () {
    var wanted = new URLSearchParams(location.search).get('plot');
    var el = wanted && document.querySelector('.chart[data-plot-id="' + CSS.escape(wanted) + '"]');
    var panel = el && el.closest('.panel');
    if (!panel) return;
    panel.classList.add('ab-target');
    panel.scrollIntoView({ block: 'start' });
  });
})(window.REZGEN = window.REZGEN || {});
