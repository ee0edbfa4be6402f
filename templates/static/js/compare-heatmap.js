/* A/B heatmaps. Per-CPU heatmaps: A and B side by side ('ab-heatmap', one per recording) on one shared colour
   scale, or one difference heatmap B − A ('ab-diff') on a diverging colour map. Bucket heatmaps of percentile
   plots: A and B side by side ('ab-buckets') on one shared log scale. Cells are drawn by heatmap.js's custom
   series on the elapsed-time axis: [t_start, row, colour value, t_end, shown value]. */
(function (R) {
  'use strict';
  var AB = R.AB;
  var DIVERGING = ['#2166ac', '#67a9cf', '#d1e5f0', '#f2f2f2', '#fddbc7', '#ef8a62', '#b2182b'];

  /* [t_start, row, value, t_end] per non-null value of a level; rows by `names` (a name the level lacks: none). */
  function cells(lvl, rows, step) {
    var dt = (lvl.bucket || 1) * step, out = [];
    rows.forEach(function (r, k) {
      var row = r < 0 ? null : lvl.values[r];
      if (!row) return;
      for (var i = 0; i < lvl.t.length; i++) {
        if (row[i] !== null && row[i] !== undefined) out.push([lvl.t[i], k, row[i], lvl.t[i] + dt, row[i]]);
      }
    });
    return out;
  }

  /* The largest value of a side's coarsest level (its max reducer keeps every peak). */
  AB.heatMax = function (data) {
    var m = 0;
    if (data) data.levels[0].values.forEach(function (row) { row.forEach(function (v) { if (v !== null && v > m) m = v; }); });
    return m;
  };

  /* Difference B − A of two sides' coarsest levels, row by row (rows both have) and column by column: each of
     B's columns against A's column at the same elapsed time (within one of A's columns), null where either has
     no value. Returns {names, t, dt, values}. */
  AB.difference = function (a, b, stepA, stepB) {
    var la = a.levels[0], lb = b.levels[0];
    var names = b.names.filter(function (n) { return a.names.indexOf(n) >= 0; });
    var dtA = (la.bucket || 1) * stepA;
    var at = lb.t.map(function (t) {
      var j = R.upperBound(la.t, t) - 1;
      return j >= 0 && t - la.t[j] < dtA ? j : -1;
    });
    var values = names.map(function (n) {
      var ra = la.values[a.names.indexOf(n)], rb = lb.values[b.names.indexOf(n)];
      return lb.t.map(function (t, i) {
        var x = rb[i], y = at[i] >= 0 ? ra[at[i]] : null;
        return x === null || x === undefined || y === null || y === undefined ? null : x - y;
      });
    });
    return { names: names, t: lb.t, dt: (lb.bucket || 1) * stepB, values: values };
  };

  /* A percentile plot's bucket heatmap as a one-level payload over the bucket edges `edges` (rows), a count of
     zero where a bucket has none in a column, for AB.difference; its column width in ms. */
  AB.bucketLevel = function (data, edges, step) {
    var b = data.buckets, values = edges.map(function () { return b.t.map(function () { return 0; }); });
    b.cells.forEach(function (cell) {
      var row = edges.indexOf(b.edges[cell[1]]);
      if (row >= 0) values[row][cell[0]] = cell[2];
    });
    return { names: edges.map(String), levels: [{ t: b.t, bucket: 1, values: values }],
             width: b.t.length > 1 ? b.t[1] - b.t[0] : step };
  };

  function yAxis(c, names) {
    return {
      type: 'category', data: names, inverse: true, axisLine: { show: false }, axisTick: { show: false },
      splitLine: { show: false }, axisPointer: R.rowPointer(c),
      axisLabel: { color: c.muted, fontSize: 10, hideOverlap: true,
                   interval: names.length > 16 ? Math.ceil(names.length / 16) - 1 : 0 }
    };
  }

  function frame(chart, c, names, right) {
    var opt = R.baseOption(c);
    opt.grid = { left: 6, right: right, top: 24, bottom: 6, show: true, backgroundColor: c.nullCell, borderWidth: 0 };
    opt.xAxis = AB.axisX(c);
    opt.yAxis = yAxis(c, names);
    opt.dataZoom = R.dataZoom('none');
    opt.toolbox = R.toolbox('none');
    opt.title = { text: chart.plot.caption, left: 6, top: 3,
                  textStyle: { color: chart.plot.color || c.fg, fontSize: 11.5, fontWeight: 600 } };
    return opt;
  }

  function lookup(chart, items) {
    return function (t, r) {
      for (var i = 0; i < items.length; i++) {
        var x = items[i];
        if (x[1] === r && t >= x[0] && t < x[3]) return { start: x[0], end: x[3], value: x[4], color: null };
      }
      return null;
    };
  }

  function tooltip(chart, names, unit, items) {
    var find = lookup(chart, items);
    return function () {
      if (R.state.hovered !== chart.el || !chart.mouse) return '';
      var at = chart.inst.convertFromPixel({ gridIndex: 0 }, chart.mouse);
      var cell = at && find(at[0], Math.round(at[1]));
      if (!cell) return '';
      var box = R.dom.node('div', 'tt');
      box.appendChild(R.dom.node('div', 'tt-head', AB.elapsed(cell.start) + ' · ' + chart.plot.caption));
      box.appendChild(R.dom.node('div', 'tt-row', names[Math.round(at[1])] + ': ' + R.units.format(unit, cell.value)));
      return box;
    };
  }

  function heatOption(chart, c) {
    var p = chart.plot, lvl = p.data.levels[0];
    var rows = p.names.map(function (n) { return p.data.names.indexOf(n); });
    var items = cells(lvl, rows, p.step);
    var opt = frame(chart, c, p.names, 66);
    opt.visualMap = R.colorScale(c, p.lo, p.hi, [R.units.format(p.unit, p.hi, 1), R.units.format(p.unit, p.lo, 1)],
                                 chart.el.clientHeight || 260);
    opt.tooltip = R.tooltipBase(c, { formatter: tooltip(chart, p.names, p.unit, items) });
    opt.series = [R.cellSeries(p.caption, items)];
    return opt;
  }

  function diffOption(chart, c) {
    var p = chart.plot, d = p.diff, items = [], top = 0;
    d.values.forEach(function (row, r) {
      row.forEach(function (v, i) {
        if (v === null) return;
        items.push([d.t[i], r, v, d.t[i] + d.dt, v]);
        if (Math.abs(v) > top) top = Math.abs(v);
      });
    });
    top = top || 1;
    var opt = frame(chart, c, p.labels || d.names, 66);
    if (p.labels) opt.yAxis.inverse = false;
    var scale = R.colorScale(c, -top, top, ['+' + R.units.format(p.unit, top, 1), '−' + R.units.format(p.unit, top, 1)],
                             chart.el.clientHeight || 260);
    scale.inRange = { color: DIVERGING };
    opt.visualMap = scale;
    opt.tooltip = R.tooltipBase(c, { formatter: tooltip(chart, p.labels || d.names, p.unit, items) });
    opt.series = [R.cellSeries(p.caption, items)];
    return opt;
  }

  /* A percentile plot's bucket heatmap, one side, on a log colour scale shared with the other side's. */
  function bucketOption(chart, c) {
    var p = chart.plot, b = p.data.buckets, dt = b.t.length > 1 ? b.t[1] - b.t[0] : R.state.step;
    var row = {}, items = [];
    p.edges.forEach(function (e, i) { row[e] = i; });
    b.cells.forEach(function (cell) {
      var t = b.t[cell[0]], count = cell[2];
      if (t !== undefined && count > 0) items.push([t, row[b.edges[cell[1]]], Math.log10(count), t + dt, count]);
    });
    var labels = p.edges.map(function (e) { return '≤ ' + R.units.format(p.unit, e, 1); });
    var opt = frame(chart, c, labels, 74);
    opt.yAxis.inverse = false;
    opt.visualMap = R.colorScale(c, p.lo, p.hi, [R.units.format('rate', Math.pow(10, p.hi), 1),
                                                 R.units.format('rate', Math.pow(10, p.lo), 1)], chart.el.clientHeight || 300);
    opt.tooltip = R.tooltipBase(c, { formatter: tooltip(chart, labels, 'rate', items) });
    opt.series = [R.cellSeries(p.caption, items)];
    return opt;
  }

  R.kinds['ab-heatmap'] = { option: heatOption };
  R.kinds['ab-diff'] = { option: diffOption };
  R.kinds['ab-buckets'] = { option: bucketOption };
})(window.REZGEN = window.REZGEN || {});
