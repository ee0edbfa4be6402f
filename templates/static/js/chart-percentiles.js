/* Latency percentiles: five series p50 … p99.99 over a log y axis (when the plot says `log`), or — toggled per
   chart — the histogram's bucket heatmap: y = bucket upper edges, colour = log10 of the count per second. */
(function (R) {
  'use strict';

  function positive(x) { return x > 0 ? x : null; }

  function level(chart, win) { return R.pickLevel(chart.plot.levels, win, R.budget.line, 1); }

  function series(chart, c) {
    var plot = chart.plot;
    var lvl = plot.levels[Math.max(chart.level, 0)];
    return plot.names.map(function (name, i) {
      var color = c.pct[i % c.pct.length];
      var s = {
        type: 'line', name: name, data: R.pairs(lvl, i, plot.log ? positive : null, plot.log ? 'log' : ''),
        showSymbol: false, symbol: 'circle', symbolSize: 4, connectNulls: false, animation: false, clip: true,
        lineStyle: { width: 1.3, color: color }, itemStyle: { color: color }, emphasis: { disabled: true }, z: 2 + i
      };
      if (i === 0) s.markLine = R.markLine(c);
      return s;
    });
  }

  /* Whole decades around the data (R.logAxis), for the chart's drawn height. */
  function logAxis(chart) {
    var extent = R.positiveExtent(chart.plot);
    return extent ? R.logAxis(extent[0], extent[1], chart.el.clientHeight) : { type: 'log', logBase: 10 };
  }

  function option(chart, c) {
    var plot = chart.plot;
    var y = plot.log ? logAxis(chart) : { min: 0 };
    if (plot.range) { y.min = plot.range[0] > 0 || !plot.log ? plot.range[0] : y.min; y.max = plot.range[1]; }
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: 14, top: R.gridTop(30), bottom: 6 };
    opt.xAxis = R.axisX(c);
    opt.yAxis = R.axisY(c, plot.unit, y);
    opt.dataZoom = R.dataZoom('filter');
    opt.tooltip = R.tooltipBase(c, { formatter: R.axisTooltip(chart, plot.unit, false) });
    opt.legend = Object.assign(R.legend(c), { top: 2, bottom: undefined, left: undefined, right: 10, type: 'plain' });
    opt.series = series(chart, c);
    return opt;
  }

  function signature(chart) {
    var y = chart.plot.log ? logAxis(chart) : {};
    return y.min + ':' + y.max;
  }

  R.kinds.percentiles = { level: level, series: series, option: option, signature: signature };

  /* ---- the bucket heatmap ---- */
  /* `raw`: counts per column (rate x column length) instead of per second (chart-tools.js's "Raw count"). */
  function bucketCells(b, raw) {
    var key = raw ? '_rawCells' : '_cells';
    if (b[key]) return b[key];
    var dt = b.t.length > 1 ? b.t[1] - b.t[0] : R.state.step, out = [];
    b.cells.forEach(function (cell) {
      var t = b.t[cell[0]], count = raw ? cell[2] * dt / 1000 : cell[2];
      if (t !== undefined && count > 0) out.push([t, cell[1], Math.log10(count), t + dt, count]);
    });
    b[key] = out;
    return out;
  }

  /* The count per second of bucket row r in the column holding time t. */
  function bucketLookup(b, lo, hi, raw) {
    if (!b._index) {
      b._index = new Map();
      b.cells.forEach(function (cell) { b._index.set(cell[0] * 100000 + cell[1], cell[2]); });
    }
    var dt = b.t.length > 1 ? b.t[1] - b.t[0] : R.state.step;
    return function (t, r) {
      var i = R.upperBound(b.t, t) - 1;
      if (i < 0 || r >= b.edges.length) return null;
      var count = b._index.get(i * 100000 + r);
      if (!count) return null;
      if (raw) count = count * dt / 1000;
      return { start: b.t[i], end: b.t[i] + dt, value: count,
               color: R.viridisAt((Math.log10(count) - lo) / (hi - lo || 1)) };
    };
  }

  function bucketOption(chart, c) {
    var plot = chart.plot, b = plot.buckets;
    var raw = !!chart.rawCount, unit = raw ? 'count' : 'rate';
    var cells = bucketCells(b, raw);
    var lo = Infinity, hi = -Infinity;
    cells.forEach(function (x) { if (x[2] < lo) lo = x[2]; if (x[2] > hi) hi = x[2]; });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    var labels = b.edges.map(function (e) { return R.units.format(plot.unit, e, 1); });
    var height = chart.el.clientHeight || 300;
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: 74, top: R.gridTop(12), bottom: 6, show: true, backgroundColor: c.nullCell, borderWidth: 0 };
    opt.xAxis = R.axisX(c);
    opt.yAxis = {
      type: 'category', data: labels, axisLine: { show: false }, axisTick: { show: false }, splitLine: { show: false },
      axisPointer: R.rowPointer(c),
      axisLabel: { color: c.muted, fontSize: 10, interval: Math.max(0, Math.ceil(labels.length / Math.max(4, (height - 30) / 18)) - 1) }
    };
    opt.dataZoom = R.dataZoom('none');
    opt.toolbox = R.toolbox('none');
    opt.visualMap = R.colorScale(c, lo, hi, [R.units.format(unit, Math.pow(10, hi), 1),
                                             R.units.format(unit, Math.pow(10, lo), 1)], height);
    opt.tooltip = R.tooltipBase(c, {
      formatter: R.cellTooltip(chart, function (i) { return '≤ ' + labels[i]; }, unit, bucketLookup(b, lo, hi, raw))
    });
    opt.series = [R.cellSeries(plot.title, cells)];
    var marks = R.markLine(c);
    if (marks) opt.series.push({ type: 'line', data: [], markLine: marks, silent: true });
    return opt;
  }

  R.kinds.buckets = { option: bucketOption };
})(window.REZGEN = window.REZGEN || {});
