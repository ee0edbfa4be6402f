/* The quantile spectrum of a percentile chart: rows p1 … p100 ("Full") or p99.01 … p100 ("Tail"), columns time,
   colour = the quantile's value (log scale unless Log is off, viridis) with a colour legend. The data (plotdata/spectrum.py) is
   loaded when a toggle asks for it: from a data script beside a static page (data/<host>/spectrum/<route>/
   <hex of the plot id>.<mode>.js, pages/spectra.py), or from /api/spectrum on a live page. Each cell's value is
   an index into the payload's bucket edges; the payload ships each column as runs of equal cells and leaves out
   what follows from its mode and grid, and `decode` lays it out as rows (s.names, s.t, s.rows[row][column]).
   Cell items: [t_start, row, colour value (log10 of the value unless the chart's Log toggle is off), t_end,
   value]. */
(function (R) {
  'use strict';

  function hex(text) {
    var bytes = new TextEncoder().encode(text), out = '';
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    return out;
  }

  function route() { return document.body.getAttribute('data-route') || ''; }

  /* The rows' names of a mode, as plotdata/spectrum.py's MODES: p1 … p100, or p99.01 … p100. */
  function names(mode) {
    var out = [];
    for (var k = 1; k <= 100; k++) out.push('p' + (mode === 'tail' ? (9900 + k) / 100 : k));
    return out;
  }

  /* A payload as rows: each column's runs [index, count, …] (index null where there is no point) spread down it,
     and its times from start + k * step (or as sent, "t"). */
  function decode(p) {
    var n = p.columns.length, t = p.t || [], rows = names(p.mode).map(function () {
      return new Array(n).fill(null);
    });
    for (var k = 0; !p.t && k < n; k++) t.push(p.start + k * p.step);
    p.columns.forEach(function (runs, k) {
      for (var j = 0, r = 0; j < runs.length; j += 2) {
        for (var m = 0; m < runs[j + 1]; m++) rows[r++][k] = runs[j];
      }
    });
    return { mode: p.mode, names: names(p.mode), t: t, step: p.step, stride: p.stride, edges: p.edges || [],
             rows: rows };
  }

  /* A column's width (ms). */
  function width(s) { return s.step || (s.t.length > 1 ? s.t[1] - s.t[0] : R.state.step); }

  /* Promise of the plot's spectrum in `mode` ("full" or "tail"), cached on the plot. */
  R.loadSpectrum = function (plot, mode) {
    var cache = plot._spectrum || (plot._spectrum = {});
    if (cache[mode]) return Promise.resolve(cache[mode]);
    var host = R.host ? R.host() : '_', loading;
    if (document.body.getAttribute('data-live') === 'true') {
      // On the live page's own grid: its finest level's times.
      var lvl = plot.levels[plot.levels.length - 1], t = lvl.t;
      var query = new URLSearchParams({ mode: mode });
      if (t.length) {
        query.set('start', String(t[0] / 1000));
        query.set('end', String(t[t.length - 1] / 1000));
        query.set('grid', String(t[0] / 1000));
      }
      if (host !== '_') query.set('host', host);
      loading = fetch((document.body.getAttribute('data-root') || '') + 'api/spectrum/' +
                      encodeURIComponent(route()) + '/' + encodeURIComponent(plot.id) + '?' + query)
        .then(function (r) { return r.json().then(function (body) { if (!r.ok) throw new Error(body.error); return body; }); });
    } else {
      var template = 'data/{host}/spectrum/' + route() + '/' + hex(plot.id) + '.' + mode + '.js';
      loading = R.load(R.dataPath(template, host), host + '/spectrum/' + route() + '/' + plot.id + '/' + mode);
    }
    return loading.then(function (payload) { return (cache[mode] = decode(payload)); });
  };

  /* `log`: colour by log10 of the value (the default, as the lines' log axis), else by the value. */
  function cells(s, log) {
    var key = log ? '_cells' : '_linearCells';
    if (s[key]) return s[key];
    var dt = width(s), out = [];
    s.rows.forEach(function (row, r) {
      row.forEach(function (i, k) {
        if (i === null || i === undefined) return;
        var v = s.edges[i];
        out.push([s.t[k], r, log ? Math.log10(Math.max(v, 1e-12)) : v, s.t[k] + dt, v]);
      });
    });
    s[key] = out;
    return out;
  }

  /* The value in the column holding time t of row r, for the tooltip. */
  function lookup(s, lo, hi, log) {
    var dt = width(s);
    return function (t, r) {
      var k = R.upperBound(s.t, t) - 1, row = s.rows[r];
      if (k < 0 || !row || row[k] === null || row[k] === undefined || t >= s.t[k] + dt) return null;
      var v = s.edges[row[k]];
      return { start: s.t[k], end: s.t[k] + dt, value: v,
               color: R.viridisAt(((log ? Math.log10(v) : v) - lo) / (hi - lo || 1)),
               note: s.stride > 1 ? 'over ' + R.units.duration(dt) : null };
    };
  }

  R.spectrumOf = function (chart) {
    var s = chart.plot._spectrum;
    return s && s[chart.el.__spectrumMode || 'full'];
  };

  function option(chart, c) {
    var plot = chart.plot, s = R.spectrumOf(chart);
    var log = plot.log !== false, data = cells(s, log);
    var label = function (x) { return R.units.format(plot.unit, log ? Math.pow(10, x) : x, 1); };
    var lo = Infinity, hi = -Infinity;
    data.forEach(function (x) { if (x[2] < lo) lo = x[2]; if (x[2] > hi) hi = x[2]; });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    var height = chart.el.clientHeight || 300;
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: 74, top: R.gridTop(12), bottom: 6, show: true, backgroundColor: c.nullCell,
                 borderWidth: 0, containLabel: true };
    opt.xAxis = R.axisX(c);
    opt.yAxis = {
      type: 'category', data: s.names, axisLine: { show: false }, axisTick: { show: false }, splitLine: { show: false },
      axisPointer: R.rowPointer(c),
      axisLabel: { color: c.muted, fontSize: 10,
                   interval: Math.max(0, Math.ceil(s.names.length / Math.max(4, (height - 30) / 18)) - 1) }
    };
    opt.dataZoom = R.dataZoom('none');
    opt.toolbox = R.toolbox('none');
    opt.visualMap = R.colorScale(c, lo, hi, [label(hi), label(lo)], height);
    opt.tooltip = R.tooltipBase(c, {
      formatter: R.cellTooltip(chart, function (i) { return s.names[i]; }, plot.unit, lookup(s, lo, hi, log))
    });
    opt.series = [R.cellSeries(plot.title + ' (' + s.mode + ')', data)];
    var marks = R.markLine(c);
    if (marks) opt.series.push({ type: 'line', data: [], markLine: marks, silent: true });
    return opt;
  }

  R.kinds.spectrum = { option: option };
})(window.REZGEN = window.REZGEN || {});
