/* Per-CPU heatmaps: rows = names (CPU ids), columns = time, viridis colour. ECharts' own heatmap needs a
   category x axis, which would not zoom in step with the time axes of the other charts, so cells are drawn by
   a custom series on the shared time axis. Cell items: [t_start, row, colour value, t_end, shown value]. */
(function (R) {
  'use strict';
  R.VIRIDIS = ['#440154', '#46327e', '#365c8d', '#277f8e', '#1fa187', '#4ac16d', '#a0da39', '#fde725'];

  function renderCell(params, api) {
    var start = api.coord([api.value(0), api.value(1)]);
    var end = api.coord([api.value(3), api.value(1)]);
    var h = api.size([0, 1])[1];
    var cs = params.coordSys;
    var shape = echarts.graphic.clipRectByRect(
      { x: start[0], y: start[1] - h / 2, width: Math.max(end[0] - start[0], 0) + 1, height: h + 0.5 },
      { x: cs.x, y: cs.y, width: cs.width, height: cs.height });
    return shape && { type: 'rect', shape: shape, style: { fill: api.visual('color') } };
  }

  /* The custom series that draws cells. */
  R.cellSeries = function (name, data) {
    return {
      type: 'custom', name: name, renderItem: renderCell, data: data, animation: false,
      encode: { x: [0, 3], y: 1, tooltip: [2] }, clip: true, progressive: 0,
      emphasis: { disabled: true }
    };
  };

  /* The colour of fraction f (0..1) on the viridis ramp, for tooltip swatches. */
  R.viridisAt = function (f) {
    f = Math.max(0, Math.min(1, isFinite(f) ? f : 0)) * (R.VIRIDIS.length - 1);
    var i = Math.min(Math.floor(f), R.VIRIDIS.length - 2), k = f - i;
    var a = parseInt(R.VIRIDIS[i].slice(1), 16), b = parseInt(R.VIRIDIS[i + 1].slice(1), 16);
    var mix = function (shift) { return Math.round(((a >> shift) & 255) * (1 - k) + ((b >> shift) & 255) * k); };
    return 'rgb(' + mix(16) + ',' + mix(8) + ',' + mix(0) + ')';
  };

  /* A band over the hovered row; it also makes the tooltip refresh when the mouse changes row only. */
  R.rowPointer = function (c) {
    return { show: true, type: 'shadow', triggerTooltip: true, label: { show: false },
             shadowStyle: { color: R.hexAlpha(c.fg, 0.12) } };
  };

  R.colorScale = function (c, min, max, labels, height) {
    return {
      type: 'continuous', dimension: 2, seriesIndex: 0, min: min, max: max > min ? max : min + 1,
      inRange: { color: R.VIRIDIS }, calculable: false, realtime: false,
      orient: 'vertical', right: 18, top: 20, itemWidth: 9, itemHeight: Math.max(height - 76, 40),
      text: labels, textGap: 5, textStyle: { color: c.muted, fontSize: 10 }, hoverLink: false
    };
  };

  function rowsBudget(rows) { return Math.max(1, Math.min(R.budget.line, Math.floor(R.budget.cells / rows))); }

  function level(chart, win) {
    return R.pickLevel(chart.plot.levels, win, rowsBudget(chart.plot.names.length), 1);
  }

  function cells(plot, lvl) {
    if (lvl._cells) return lvl._cells;
    var dt = (lvl.bucket || 1) * R.state.step, out = [];
    for (var r = 0; r < plot.names.length; r++) {
      var row = lvl.values[r] || [];
      for (var i = 0; i < lvl.t.length; i++) {
        if (row[i] !== null && row[i] !== undefined) {
          var end = lvl.t[i] + dt;
          if (i + 1 < lvl.t.length && lvl.t[i + 1] < end) end = lvl.t[i + 1]; // live: finer columns appended
          out.push([lvl.t[i], r, row[i], end]);
        }
      }
    }
    lvl._cells = out;
    return out;
  }

  function maxOf(plot) {
    var m = 0, coarse = plot.levels[0];
    coarse.values.forEach(function (row) { row.forEach(function (v) { if (v !== null && v > m) m = v; }); });
    return m;
  }

  function series(chart) {
    var plot = chart.plot;
    return [R.cellSeries(plot.title, cells(plot, plot.levels[Math.max(chart.level, 0)]))];
  }

  function lookup(chart, lo, hi) {
    return function (t, r) {
      var plot = chart.plot, lvl = plot.levels[Math.max(chart.level, 0)];
      var i = R.upperBound(lvl.t, t) - 1;
      var row = lvl.values[r];
      if (i < 0 || !row || row[i] === null || row[i] === undefined) return null;
      var bucket = lvl.bucket || 1;
      return { start: lvl.t[i], end: lvl.t[i] + bucket * R.state.step, value: row[i],
               color: R.viridisAt((row[i] - lo) / (hi - lo || 1)),
               note: bucket > 1 ? 'max per ' + R.units.duration(bucket * R.state.step) + ' bucket' : null };
    };
  }

  function rowName(plot) {
    var numeric = plot.names.every(function (n) { return /^\d+$/.test(n); });
    return function (i) { return (numeric ? 'CPU ' : '') + plot.names[i]; };
  }

  /* The colour scale's top: the fixed range's, unless the data stays under 5 % of it (softirq CPU %), where one
     colour would paint every cell; the scale's label then shows the data's max, not 100 %. */
  function top(plot) {
    var max = maxOf(plot), r = plot.range;
    return r && !(r[0] === 0 && max > 0 && max < 0.05 * (r[1] - r[0])) ? r[1] : max;
  }

  function option(chart, c) {
    var plot = chart.plot;
    var lo = plot.range ? plot.range[0] : 0;
    var hi = top(plot);
    var height = chart.el.clientHeight || 260;
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: 66, top: R.gridTop(12), bottom: 6, show: true, backgroundColor: c.nullCell, borderWidth: 0 };
    opt.xAxis = R.axisX(c);
    opt.yAxis = {
      type: 'category', data: plot.names, inverse: true,
      axisLine: { show: false }, axisTick: { show: false }, splitLine: { show: false },
      axisPointer: R.rowPointer(c),
      axisLabel: { color: c.muted, fontSize: 10, hideOverlap: true,
                   interval: plot.names.length > 16 ? Math.ceil(plot.names.length / 16) - 1 : 0 }
    };
    opt.dataZoom = R.dataZoom('none');
    opt.toolbox = R.toolbox('none');
    opt.visualMap = R.colorScale(c, lo, hi, [R.units.format(plot.unit, hi, 1), R.units.format(plot.unit, lo, 1)], height);
    opt.tooltip = R.tooltipBase(c, { formatter: R.cellTooltip(chart, rowName(plot), plot.unit, lookup(chart, lo, hi)) });
    opt.series = series(chart);
    var marks = R.markLine(c);
    if (marks) opt.series.push({ type: 'line', data: [], markLine: marks, silent: true });
    return opt;
  }

  /* Live pages: the colour scale follows the data in the window (merged into the chart with its new cells),
     a fixed range as the first draw does. */
  function liveOption(chart, c) {
    var plot = chart.plot;
    var lo = plot.range ? plot.range[0] : 0, hi = top(plot);
    return { visualMap: { max: hi > lo ? hi : lo + 1,
                          text: [R.units.format(plot.unit, hi, 1), R.units.format(plot.unit, lo, 1)] } };
  }

  R.kinds.heatmap = { level: level, series: series, option: option, liveOption: liveOption };
})(window.REZGEN = window.REZGEN || {});
