/* Line and multi-line charts: one ECharts line series per name, data as [time_ms, value] pairs with null for a
   break, drawn from the resolution level that suits the zoom window. */
(function (R) {
  'use strict';

  function level(chart, win) { return R.pickLevel(chart.plot.levels, win, R.budget.line, 1); }

  function nonNegative(plot) {
    var coarse = plot.levels[0];
    for (var s = 0; s < coarse.values.length; s++) {
      var row = coarse.values[s];
      for (var i = 0; i < row.length; i++) if (row[i] !== null && row[i] < 0) return false;
    }
    return true;
  }

  /* The largest |value| of the coarsest level (its envelope keeps every peak); 0 when all are zero. */
  function peak(plot) {
    var max = 0;
    plot.levels[0].values.forEach(function (row) {
      row.forEach(function (v) { if (v !== null && Math.abs(v) > max) max = Math.abs(v); });
    });
    return max;
  }

  /* A fixed range (0–100 %) whose data stays under 5 % of it is zoomed to a round top above the data, so the
     line is not flattened onto the axis; the chart says so. Returns [max, interval] or null. */
  var ZOOM_TOPS = [[1, 0.25], [2, 0.5], [2.5, 0.5], [4, 1], [5, 1], [10, 2]];
  function zoomedRange(plot, max) {
    var r = plot.range;
    if (!r || plot.log || !(max > 0) || r[0] !== 0 || max >= 0.05 * (r[1] - r[0])) return null;
    var p = Math.pow(10, Math.floor(Math.log10(max)));
    for (var i = 0; i < ZOOM_TOPS.length; i++) {
      if (ZOOM_TOPS[i][0] * p >= max) return [ZOOM_TOPS[i][0] * p, ZOOM_TOPS[i][1] * p];
    }
    return [10 * p, 2 * p];
  }

  function series(chart, c) {
    var plot = chart.plot;
    var lvl = plot.levels[Math.max(chart.level, 0)];
    var single = plot.names.length === 1;
    return plot.names.map(function (name, i) {
      var color = name === 'Other' && !single ? c.other : c.series[i % c.series.length];
      var s = {
        type: 'line', name: name, data: R.pairs(lvl, i, chart.scale > 1 ? chart.toAxis : null, 'x' + chart.scale),
        showSymbol: false, symbol: 'circle', symbolSize: 5, connectNulls: false, animation: false,
        sampling: undefined, clip: true, z: 2,
        lineStyle: { width: single ? 1.6 : 1.4, color: color },
        itemStyle: { color: color },
        emphasis: { disabled: true }
      };
      if (chart.idle) s.lineStyle.opacity = 0; // all zero: the chart says so instead of drawing a line
      else if (single) {
        s.areaStyle = { color: new echarts.graphic.LinearGradient(0, 0, 0, 1, [
          { offset: 0, color: hexAlpha(color, 0.28) }, { offset: 1, color: hexAlpha(color, 0.02) }]) };
      }
      if (i === 0) s.markLine = R.markLine(c);
      return s;
    });
  }

  function hexAlpha(hex, a) {
    var m = /^#?([0-9a-f]{6})$/i.exec(hex);
    if (!m) return hex;
    var n = parseInt(m[1], 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }
  R.hexAlpha = hexAlpha;

  /* Byte charts are drawn in the binary unit of their largest value (KiB, MiB, GiB…) so that ECharts' decimal
     tick steps land on round binary values (5 GiB, not 4.66 GiB). */
  function binaryScale(chart) {
    var plot = chart.plot, max = 0;
    if (plot.unit !== 'bytes') return 1;
    plot.levels[0].values.forEach(function (row) {
      row.forEach(function (v) { if (v !== null && Math.abs(v) > max) max = Math.abs(v); });
    });
    var k = max >= 1024 ? Math.min(Math.floor(Math.log(max) / Math.log(1024)), 5) : 0;
    return Math.pow(1024, k);
  }

  function option(chart, c) {
    var plot = chart.plot;
    var scale = chart.scale = binaryScale(chart);
    chart.toAxis = function (v) { return v / scale; };
    chart.unmap = scale > 1 ? function (v) { return v === null ? null : v * scale; } : null;
    var multi = plot.names.length > 1;
    if (multi) chart.legendNames = legendNames(chart.displayNames = R.displayNames(plot.names));
    var max = peak(plot), zoom = zoomedRange(plot, max), extent = plot.log && R.positiveExtent(plot);
    chart.idle = max === 0;
    var y = {};
    if (plot.range) { y.min = plot.range[0]; y.max = plot.range[1]; y.interval = (plot.range[1] - plot.range[0]) / 4; }
    else if (nonNegative(plot)) { y.min = 0; }
    if (zoom) { y.max = zoom[0]; y.interval = zoom[1]; }
    if (plot.log) y = extent ? R.logAxis(extent[0], extent[1], chart.el.clientHeight) : { type: 'log' };
    if (chart.idle) y = { min: 0, max: 1, axisLabel: { show: false }, splitLine: { show: false } };
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: 14, top: R.gridTop(zoom ? 24 : 12), bottom: multi ? R.legendHeight(chart) : 6 };
    opt.xAxis = R.axisX(c);
    if (chart.idle) opt.graphic = [note(c, 'No activity in this range', { left: 'center', top: 'middle' }, 13)];
    else if (zoom) opt.graphic = [note(c, 'zoomed: max ' + R.units.format(plot.unit, max), { right: 16, top: 6 }, 10)];
    if (scale > 1) {
      if (y.min !== undefined) y.min /= scale;
      if (y.max !== undefined) y.max /= scale;
      if (y.interval !== undefined) y.interval /= scale;
    }
    opt.yAxis = R.axisY(c, plot.unit, y);
    if (scale > 1) opt.yAxis.axisLabel.formatter = function (v) { return v === 0 ? '0' : R.units.format(plot.unit, v * scale, 2); };
    opt.dataZoom = R.dataZoom('filter');
    opt.tooltip = R.tooltipBase(c, { formatter: R.axisTooltip(chart, plot.unit, multi) });
    if (multi) {
      opt.legend = R.legend(c);
      opt.legend.formatter = function (name) { return chart.legendNames[name] || name; };
    }
    opt.series = series(chart, c);
    return opt;
  }

  function note(c, text, place, size) {
    return Object.assign({ type: 'text', silent: true, z: 10,
                           style: { text: text, fill: c.muted, fontSize: size, fontFamily: c.font } }, place);
  }

  /* Legend text for a long path-like name (cgroups): its last components; the tooltip has the full name. */
  R.shortName = function (name) {
    name = String(name);
    if (name.length <= 26 || name.charAt(0) !== '/' || name.indexOf('=') >= 0) return name;
    var parts = name.split('/').filter(Boolean);
    var tail = parts.pop() || name;
    while (parts.length && tail.length + parts[parts.length - 1].length < 24) tail = parts.pop() + '/' + tail;
    return '…/' + tail;
  };

  /* Legend text per series: the short form of its display name, or the whole name where two short forms would
     be the same. */
  function legendNames(shown) {
    var out = {}, seen = {};
    Object.keys(shown).forEach(function (n) {
      var short = R.shortName(shown[n]);
      out[n] = short;
      seen[short] = (seen[short] || 0) + 1;
    });
    Object.keys(out).forEach(function (n) { if (seen[out[n]] > 1) out[n] = String(shown[n]); });
    return out;
  }

  /* Room below a multi-series plot for the x labels and the legend, whose entries wrap onto as many rows as
     they need (never cut): laid out here as ECharts lays out a plain legend. */
  var measure = null;
  R.legendHeight = function (chart) {
    var c = R.colors(), names = chart.legendNames || {};
    measure = measure || document.createElement('canvas').getContext('2d');
    measure.font = '11px ' + c.font;
    var width = (chart.el.clientWidth || 600) - 2 * LEGEND_SIDE - 10, rows = 1, x = 0;
    Object.keys(names).forEach(function (n) {
      var item = LEGEND_ICON + 5 + measure.measureText(names[n]).width;
      if (x > 0 && x + item > width) { rows += 1; x = 0; }
      x += item + LEGEND_GAP;
    });
    return 26 + rows * (LEGEND_LINE + LEGEND_GAP);
  };
  // ECharts wraps a plain legend with itemGap between rows as well as between items.
  var LEGEND_SIDE = 6, LEGEND_ICON = 12, LEGEND_GAP = 10, LEGEND_LINE = 14;

  /* Display names for series named "k=v, k=v": the pairs every series shares are dropped. */
  R.displayNames = function (names) {
    var out = {};
    names.forEach(function (n) { out[n] = n; });
    var labelled = names.filter(function (n) { return n !== 'Other'; });
    var split = labelled.map(function (n) { return String(n).split(', '); });
    var pairs = split.every(function (parts) { return parts.every(function (p) { return p.indexOf('=') > 0; }); });
    if (!pairs || labelled.length < 2) return out;
    names = labelled;
    var common = split[0].filter(function (p) { return split.every(function (parts) { return parts.indexOf(p) >= 0; }); });
    names.forEach(function (n, i) {
      var kept = split[i].filter(function (p) { return common.indexOf(p) < 0; });
      out[n] = kept.length ? kept.join(', ') : n;
    });
    return out;
  };

  R.legend = function (c) {
    return {
      type: 'plain', bottom: 2, left: LEGEND_SIDE, right: LEGEND_SIDE, icon: 'roundRect', itemWidth: LEGEND_ICON,
      itemHeight: 4, itemGap: LEGEND_GAP, textStyle: { color: c.muted, fontSize: 11, lineHeight: LEGEND_LINE },
      formatter: R.shortName,
      inactiveColor: c.faint,
      tooltip: { show: true, formatter: function (p) { return R.dom.node('div', 'tt', p.name); } }
    };
  };

  /* What the axes were built from; live pages redraw the whole chart when new points change it. */
  function signature(chart) {
    var max = peak(chart.plot), zoom = zoomedRange(chart.plot, max);
    return binaryScale(chart) + ':' + nonNegative(chart.plot) + ':' + (max === 0) + ':' + (zoom && zoom[0]);
  }

  R.kinds.line = R.kinds.multi = { level: level, series: series, option: option, signature: signature };
})(window.REZGEN = window.REZGEN || {});
