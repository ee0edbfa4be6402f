/* Live pages: pushed points merged into the page's plot data and drawn without rebuilding the charts.

   A live payload's plots keep one resolution level (the finest, which covers a live window at full resolution);
   `merge` appends each `points` event to it by plot id and series name (a name never seen before becomes a new
   series, filled with nulls before it appeared), `trim` drops what fell out of the window, and `redraw` hands a
   chart only its new series data and x axis window. A chart is rebuilt only when its series set or axis scale
   changed. */
(function (R) {
  'use strict';
  var L = R.live = R.live || {};
  var S = R.state;

  function nulls(n) { var a = new Array(n); for (var i = 0; i < n; i++) a[i] = null; return a; }

  /* Keep the finest level of every plot; drop the bucket heatmaps (the stream carries no bucket counts). */
  L.prepare = function (payload) {
    var plots = new Map();
    (payload.groups || []).forEach(function (g) {
      (g.plots || []).forEach(function (p) {
        if (p.levels && p.levels.length) p.levels = [p.levels[p.levels.length - 1]];
        delete p.buckets;
        plots.set(p.id, p);
      });
    });
    return plots;
  };

  function forget(lvl) { delete lvl._pairs; delete lvl._cells; }

  /* Append one `points` event. `changed` collects plot ids ("names" when the series set changed). Steps at or
     before the newest point a plot holds are skipped (a catch-up after a reconnect or a reload may overlap). */
  L.merge = function (plots, event, step, changed) {
    Object.keys(event.plots || {}).forEach(function (id) {
      var plot = plots.get(id), pts = event.plots[id];
      if (!plot || !plot.levels || !plot.levels.length || !pts || !pts.t || !pts.t.length) return;
      var lvl = plot.levels[0], n = lvl.t.length;
      var last = n ? lvl.t[n - 1] : -Infinity;
      var from = R.upperBound(pts.t, last);
      if (from >= pts.t.length) return;
      if (!plot.names.length && pts.kind) plot.kind = pts.kind; // a waiting plot learns its kind (line or multi)
      var rows = (pts.names || []).map(function (name) {
        var i = plot.names.indexOf(name);
        if (i < 0) {
          i = plot.names.length;
          plot.names.push(name);
          lvl.values.push(nulls(lvl.t.length));
          changed[id] = 'names';
        }
        return i;
      });
      var column = new Array(plot.names.length);
      /* A hole in the grid (no step sent for it) must still draw as a break: one null step after the last
         point. A loaded level may be bucketed, so its own spacing does not count as a hole. */
      var hole = step * (lvl.appended ? 1.5 : Math.max(1.5, 2 * (lvl.bucket || 1)));
      if (n && pts.t[from] - last > hole) {
        lvl.t.push(last + step);
        lvl.values.forEach(function (row) { row.push(null); });
      }
      for (var k = from; k < pts.t.length; k++) {
        for (var r = 0; r < column.length; r++) column[r] = null;
        for (var j = 0; j < rows.length; j++) {
          var v = pts.values[j] && pts.values[j][k];
          column[rows[j]] = typeof v === 'number' ? v : null;
        }
        lvl.t.push(pts.t[k]);
        for (r = 0; r < column.length; r++) lvl.values[r].push(column[r]);
      }
      lvl.appended = true;
      forget(lvl);
      if (!changed[id]) changed[id] = 'data';
    });
  };

  /* Drop the points before `start`; top-k charts also drop the series left without a value. */
  L.trim = function (plot, start, changed) {
    if (!plot.levels || !plot.levels.length) return;
    var lvl = plot.levels[0];
    var cut = R.lowerBound(lvl.t, start);
    if (cut > 0) {
      lvl.t.splice(0, cut);
      lvl.values.forEach(function (row) { row.splice(0, cut); });
      forget(lvl);
      if (!changed[plot.id]) changed[plot.id] = 'data';
    }
    if (plot.kind !== 'multi' || plot.names.length < 2) return;
    for (var r = plot.names.length - 1; r >= 0; r--) {
      if (!lvl.values[r].some(function (v) { return v !== null; })) {
        plot.names.splice(r, 1);
        lvl.values.splice(r, 1);
        changed[plot.id] = 'names';
      }
    }
    forget(lvl);
  };

  /* Show the chart's current data over R.state.range: new series data and axis window only, or a full rebuild
     when the series set or the axis scale changed. `follow`: also move the zoom window to the whole range. */
  L.redraw = function (chart, how, follow) {
    if (!chart.inst) return; // created later, from the data as it is then
    if (chart.visible === false) { chart.stale = true; return; } // rebuilt when it scrolls back into view
    var spec = chart.spec();
    if (!spec.series || how === 'names' || (spec.signature && spec.signature(chart) !== chart.sig)) {
      chart.render();
      return;
    }
    var c = R.colors(), win = R.window();
    chart.level = 0;
    var opt = { xAxis: { min: S.range[0], max: S.range[1] },
                series: spec.series(chart, c).map(function (s) { return { data: s.data }; }) };
    if (follow) {
      opt.dataZoom = [{ id: 'zi', startValue: win[0], endValue: win[1] },
                      { id: 'zs', startValue: win[0], endValue: win[1] }];
    }
    if (spec.liveOption) Object.assign(opt, spec.liveOption(chart, c));
    chart.inst.setOption(opt);
  };

  /* The time bar's shadow: the first single-line plot (as page.js picks it), as the maximum of each of `n`
     equal slices of the range. ECharts spaces shadow points evenly, so they must cover the range evenly, also
     while the window is only partly filled (an empty slice draws at the baseline). */
  L.shadow = function (plots, range, n) {
    var plot = null;
    plots.forEach(function (p) {
      if (!plot && (p.kind === 'line' || p.kind === 'multi') && p.levels && p.levels.length) plot = p;
    });
    if (!plot || !range) return null;
    n = n || 240;
    var lvl = plot.levels[0], row = lvl.values[0] || [], width = (range[1] - range[0]) / n, out = new Array(n + 1);
    for (var i = 0; i <= n; i++) out[i] = [range[0] + i * width, null];
    for (var k = R.lowerBound(lvl.t, range[0]); k < lvl.t.length && lvl.t[k] <= range[1]; k++) {
      var v = row[k], slot = out[Math.round((lvl.t[k] - range[0]) / width)];
      if (v !== null && (slot[1] === null || v > slot[1])) slot[1] = v;
    }
    return out;
  };
})(window.REZGEN = window.REZGEN || {});
