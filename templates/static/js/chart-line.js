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
      if (single) {
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
    var y = {};
    if (plot.range) { y.min = plot.range[0]; y.max = plot.range[1]; y.interval = (plot.range[1] - plot.range[0]) / 4; }
    else if (nonNegative(plot)) { y.min = 0; }
    if (plot.log) { y.type = 'log'; delete y.min; }
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: 14, top: R.gridTop(12), bottom: multi ? 50 : 6 };
    opt.xAxis = R.axisX(c);
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
      var shown = chart.displayNames = R.displayNames(plot.names);
      opt.legend = R.legend(c);
      opt.legend.formatter = function (name) { return R.shortName(shown[name] || name); };
    }
    opt.series = series(chart, c);
    return opt;
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
      type: 'scroll', bottom: 2, left: 6, right: 6, icon: 'roundRect', itemWidth: 12, itemHeight: 4, itemGap: 14,
      textStyle: { color: c.muted, fontSize: 11, width: 170, overflow: 'truncate' },
      formatter: R.shortName,
      inactiveColor: c.faint, pageIconColor: c.muted, pageIconInactiveColor: c.faint, pageIconSize: 9,
      pageTextStyle: { color: c.muted, fontSize: 10 },
      tooltip: { show: true, formatter: function (p) { return R.dom.node('div', 'tt', p.name); } }
    };
  };

  /* What the axes were built from; live pages redraw the whole chart when new points change it. */
  function signature(chart) { return binaryScale(chart) + ':' + nonNegative(chart.plot); }

  R.kinds.line = R.kinds.multi = { level: level, series: series, option: option, signature: signature };
})(window.REZGEN = window.REZGEN || {});
