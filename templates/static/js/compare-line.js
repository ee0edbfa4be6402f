/* A/B line charts: one series per recording, named by its alias, on elapsed time; points are
   [ms since that recording's start, value], null for a break (never zero). chart.plot: {unit, log, range,
   lines: [{name, color, levels, row}]} where `levels` are a side's resolution levels and `row` the series in them. */
(function (R) {
  'use strict';
  var AB = R.AB;

  function levels(chart, win) {
    return chart.plot.lines.map(function (line) { return R.pickLevel(line.levels, win, R.budget.line, 1); });
  }
  function level(chart, win) { return levels(chart, win).join(':'); }

  function positive(x) { return x > 0 ? x : null; }

  function series(chart, c) {
    var picked = levels(chart, R.window());
    return chart.plot.lines.map(function (line, i) {
      var lvl = line.levels[Math.max(picked[i], 0)];
      return {
        type: 'line', name: line.name, data: R.pairs(lvl, line.row, chart.plot.log ? positive : null,
                                                     chart.plot.log ? 'log' : ''),
        showSymbol: false, symbol: 'circle', symbolSize: 4, connectNulls: false, animation: false, clip: true,
        lineStyle: { width: 1.5, color: line.color }, itemStyle: { color: line.color }, emphasis: { disabled: true },
        z: 2 + i
      };
    });
  }

  function extent(plot) {
    var lo = Infinity, hi = -Infinity;
    plot.lines.forEach(function (line) {
      (line.levels[0].values[line.row] || []).forEach(function (v) {
        if (v !== null && (!plot.log || v > 0)) { if (v < lo) lo = v; if (v > hi) hi = v; }
      });
    });
    return isFinite(lo) ? [lo, hi] : null;
  }

  function tooltip(chart) {
    var node = R.dom.node;
    return function (params) {
      if (R.state.hovered !== chart.el) return '';
      params = Array.isArray(params) ? params : [params];
      if (!params.length) return '';
      var box = node('div', 'tt');
      box.appendChild(node('div', 'tt-head', AB.elapsed(params[0].axisValue)));
      params.forEach(function (p) {
        var v = Array.isArray(p.value) ? p.value[1] : p.value;
        var row = node('div', 'tt-row'), dot = node('span', 'tt-dot');
        dot.style.background = p.color;
        row.appendChild(dot);
        row.appendChild(node('span', 'tt-name', p.seriesName));
        row.appendChild(node('span', 'tt-val', typeof v === 'number' ? R.units.format(chart.plot.unit, v) : '—'));
        box.appendChild(row);
      });
      return box;
    };
  }

  function option(chart, c) {
    var plot = chart.plot, ext = extent(plot), y = {};
    if (plot.range) { y.min = plot.range[0]; y.max = plot.range[1]; }
    else if (!ext || ext[0] >= 0) y.min = 0;
    if (plot.log) y = ext ? R.logAxis(ext[0], ext[1], chart.el.clientHeight) : { type: 'log' };
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: 14, top: plot.small ? 30 : 26, bottom: 6 };
    opt.xAxis = AB.axisX(c);
    opt.yAxis = R.axisY(c, plot.unit, y);
    opt.dataZoom = R.dataZoom('filter');
    opt.tooltip = R.tooltipBase(c, { formatter: tooltip(chart) });
    opt.legend = Object.assign(R.legend(c), { top: 2, bottom: undefined, left: undefined, right: 10,
                                              formatter: function (n) { return n; } });
    if (plot.small) opt.title = { text: plot.small, left: 6, top: 3, textStyle: { color: c.fg, fontSize: 11.5, fontWeight: 500 } };
    opt.series = series(chart, c);
    return opt;
  }

  R.kinds['ab-line'] = { level: level, series: series, option: option };
})(window.REZGEN = window.REZGEN || {});
