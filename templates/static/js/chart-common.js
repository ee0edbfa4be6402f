/* What every chart of a page shares: the recording's time range and the zoom window, resolution levels, the
   ECharts group that syncs zoom and crosshair, lazy creation, resizing and theme changes.

   Zoom sync relies on echarts.connect: every chart (and the time bar) carries the same dataZoom components
   (ids "zi" inside, "zs" slider, the toolbox's drag-select) over an x axis fixed to the recording's range, so a
   zoom action replayed on another chart means the same window there. */
(function (R) {
  'use strict';
  var GROUP = 'rezgen';
  var LINE_BUDGET = 2000; // points per series in the visible window
  var CELL_BUDGET = 50000; // heatmap cells in the visible window

  var S = R.state = {
    range: null, // [start, end] unix ms of the recording
    step: 1000, // sampling step, ms
    view: null, // zoom window [start, end], null = everything
    events: [], // [{t, text, kind}]
    charts: [],
    hovered: null // the chart element under the mouse (the only one whose tooltip shows)
  };
  R.kinds = {};
  R.budget = { line: LINE_BUDGET, cells: CELL_BUDGET };

  R.window = function () { return S.view || S.range; };

  R.setRange = function (range, events) {
    S.range = [range.start, range.end];
    S.step = range.step || S.step;
    S.events = Array.isArray(events) ? events : [];
    var wanted = R.hashWindow && R.hashWindow();
    if (wanted) {
      var from = Math.max(wanted[0], S.range[0]), to = Math.min(wanted[1], S.range[1]);
      S.view = to - from >= S.step ? [from, to] : null;
    }
  };

  /* ---- resolution levels ---- */
  function lowerBound(a, x) {
    var lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function upperBound(a, x) {
    var lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] <= x) lo = mid + 1; else hi = mid; }
    return lo;
  }
  R.lowerBound = lowerBound;
  R.upperBound = upperBound;
  R.pointsIn = function (t, win) { return upperBound(t, win[1]) - lowerBound(t, win[0]); };

  /* The finest level (levels are coarsest first) whose points in the window times `rows` fit the budget. */
  R.pickLevel = function (levels, win, budget, rows) {
    if (!levels || !levels.length) return -1;
    rows = rows || 1;
    for (var i = levels.length - 1; i > 0; i--) {
      if (R.pointsIn(levels[i].t, win) * rows <= budget) return i;
    }
    return 0;
  };

  /* [[t, v], ...] for series s of a level, cached on the level; `map` rewrites values (e.g. log axes). */
  R.pairs = function (level, s, map, tag) {
    var cache = level._pairs || (level._pairs = {});
    var key = s + ':' + (tag || '');
    if (cache[key]) return cache[key];
    var t = level.t, v = level.values[s] || [], out = new Array(t.length);
    for (var i = 0; i < t.length; i++) {
      var x = v[i] === undefined ? null : v[i];
      out[i] = [t[i], map && x !== null ? map(x) : x];
    }
    cache[key] = out;
    return out;
  };

  /* ---- shared option pieces ---- */
  R.colors = function () { return R.theme.colors(); };

  R.axisX = function (c, extra) {
    return Object.assign({
      type: 'time', min: S.range[0], max: S.range[1],
      axisLine: { lineStyle: { color: c.axis } },
      axisTick: { show: false },
      splitLine: { show: false },
      axisLabel: { color: c.muted, fontSize: 11, hideOverlap: true },
      axisPointer: {
        show: true, type: 'line', snap: false, triggerTooltip: true,
        label: { show: false }, lineStyle: { color: c.crosshair, width: 1, type: 'dashed' }
      }
    }, extra || {});
  };

  R.axisY = function (c, unit, extra) {
    extra = extra || {};
    return Object.assign({
      type: 'value',
      splitNumber: 4,
      axisLine: { show: false },
      splitLine: { lineStyle: { color: c.grid } }
    }, extra, {
      axisTick: Object.assign({ show: false }, extra.axisTick),
      axisLabel: Object.assign({ color: c.muted, fontSize: 11, formatter: R.units.axis(unit) }, extra.axisLabel)
    });
  };

  /* A log y axis over whole decades around [lo, hi] (positive data), labelled at values we choose: ECharts' own
     log ticks repeat the minimum and thin out to labels decades apart. Every decade, every second (or more)
     decade when the chart is too short for all, and 1-2-5 steps when the data spans fewer than three decades, so
     there are always at least four distinct labels. */
  R.logAxis = function (lo, hi, height) {
    var a = Math.floor(Math.log10(lo)), b = Math.max(Math.ceil(Math.log10(hi)), a + 1), n = b - a;
    var room = Math.max(4, Math.floor(((height || 300) - 40) / 22)); // labels that fit, 22 px apart
    var values = [], d, k;
    if (n < 3) {
      var mantissas = n === 2 && room < 7 ? [1, 3] : [1, 2, 5];
      for (d = a; d < b; d++) mantissas.forEach(function (m) { values.push(m * Math.pow(10, d)); });
      values.push(Math.pow(10, b));
    } else {
      var step = Math.max(1, Math.ceil(n / (room - 1)));
      for (k = a; k <= b; k += step) values.push(Math.pow(10, k));
    }
    return { type: 'log', logBase: 10, min: Math.pow(10, a), max: Math.pow(10, b), minorSplitLine: { show: false },
             axisLabel: { customValues: values, hideOverlap: true }, axisTick: { show: false, customValues: values } };
  };

  /* Smallest and largest positive value of a plot's coarsest level. */
  R.positiveExtent = function (plot) {
    var lo = Infinity, hi = -Infinity;
    plot.levels[0].values.forEach(function (row) {
      row.forEach(function (v) { if (v !== null && v > 0) { if (v < lo) lo = v; if (v > hi) hi = v; } });
    });
    return isFinite(lo) ? [lo, hi] : null;
  };

  /* The dataZoom set every chart carries (see the header), starting at the current window. */
  R.dataZoom = function (filterMode) {
    var win = R.window();
    var common = { xAxisIndex: 0, filterMode: filterMode || 'filter', startValue: win[0], endValue: win[1],
                   minValueSpan: 5 * S.step };
    return [
      Object.assign({ type: 'inside', id: 'zi', zoomOnMouseWheel: 'ctrl', moveOnMouseWheel: false,
                      moveOnMouseMove: false, preventDefaultMouseMove: false }, common),
      Object.assign({ type: 'slider', id: 'zs', show: false }, common)
    ];
  };

  /* The toolbox's dataZoom feature gives drag-to-zoom; it only works while the toolbox is shown, so its icons
     are empty and placed outside the canvas. */
  R.toolbox = function (filterMode) {
    var c = R.colors();
    return {
      show: true, itemSize: 1, right: -40, top: -40, z: -1,
      feature: { dataZoom: {
        yAxisIndex: 'none', filterMode: filterMode || 'filter', title: { zoom: '', back: '' },
        icon: { zoom: 'path://M0,0', back: 'path://M0,0' }, iconStyle: { opacity: 0 },
        brushStyle: { color: R.hexAlpha ? R.hexAlpha(c.accent, 0.15) : 'rgba(91,155,248,0.15)', borderColor: c.accent, borderWidth: 1 }
      } }
    };
  };

  R.tooltipBase = function (c, extra) {
    return Object.assign({
      trigger: 'axis', confine: true, transitionDuration: 0, enterable: false,
      backgroundColor: c.tooltipBg, borderColor: c.tooltipBorder, borderWidth: 1, padding: [7, 10],
      textStyle: { color: c.fg, fontSize: 12 },
      extraCssText: 'box-shadow: 0 4px 14px rgba(0,0,0,0.25); border-radius: 6px;',
      axisPointer: { type: 'line', lineStyle: { color: c.crosshair, type: 'dashed' } }
    }, extra || {});
  };

  /* Event annotations as vertical lines, attached to one series of a chart. */
  R.markLine = function (c) {
    if (!S.events.length) return undefined;
    return {
      silent: true, symbol: ['none', 'none'], animation: false,
      lineStyle: { color: c.accent, type: 'dotted', width: 1, opacity: 0.8 },
      label: { show: true, position: 'end', distance: 3, color: c.muted, fontSize: 10, width: 110, overflow: 'truncate',
               formatter: function (p) { return p.name; } },
      data: S.events.map(function (e) { return { xAxis: e.t, name: String(e.text || e.kind || '') }; })
    };
  };

  /* Room above the plot for event labels. */
  R.gridTop = function (base) { return base + (S.events.length ? 14 : 0); };

  /* Events within `span` ms of t, for tooltips. */
  R.eventsNear = function (t, span) {
    return S.events.filter(function (e) { return Math.abs(e.t - t) <= span; });
  };

  R.baseOption = function (c) {
    return {
      animation: false,
      backgroundColor: 'transparent',
      textStyle: { fontFamily: c.font, color: c.muted },
      toolbox: R.toolbox()
    };
  };

  /* Resize an ECharts instance to its element's new size (ResizeObserver callback). The first notification
     comes right after the chart was drawn, for the size it was drawn at: redrawing then would double the cost of
     creating a chart. */
  R.fit = function (inst, entries) {
    if (!inst || inst.isDisposed()) return;
    var box = entries && entries.length ? entries[entries.length - 1].contentRect : null;
    if (box && Math.abs(box.width - inst.getWidth()) < 1 && Math.abs(box.height - inst.getHeight()) < 1) return;
    inst.resize();
  };

  /* ---- the chart objects ---- */
  function Chart(el, plot, kind) {
    this.el = el;
    this.plot = plot;
    this.kind = kind; // a key of R.kinds
    this.level = -1;
    this.inst = null;
  }

  Chart.prototype.spec = function () { return R.kinds[this.kind]; };

  /* Build the whole option (first draw, theme change, mode change). */
  Chart.prototype.render = function () {
    var spec = this.spec();
    this.level = spec.level ? spec.level(this, R.window()) : -1;
    this.sig = spec.signature ? spec.signature(this) : ''; // live pages redraw fully when this changes
    // The option is only stored here; the action then draws it: ECharts applies a pending lazy update together
    // with the next action, so the chart is rendered once instead of twice (a heatmap's render is costly).
    this.inst.setOption(spec.option(this, R.colors()), { notMerge: true, lazyUpdate: true });
    this.inst.dispatchAction({ type: 'takeGlobalCursor', key: 'dataZoomSelect', dataZoomSelectActive: true,
                             escapeConnect: true }, { flush: true });
  };

  /* Swap in the resolution level that suits the zoom window, if it changed. */
  Chart.prototype.refine = function () {
    var spec = this.spec();
    if (!spec.level || !this.inst || this.visible === false) return;
    var level = spec.level(this, R.window());
    if (level === this.level) return;
    this.level = level;
    this.inst.setOption({ series: spec.series(this, R.colors()) });
  };

  Chart.prototype.setKind = function (kind) {
    this.kind = kind;
    if (this.inst) this.render();
  };

  R.createChart = function (el, plot, kind) {
    var chart = new Chart(el, plot, kind || plot.kind);
    chart.inst = echarts.init(el, null, { renderer: 'canvas' });
    chart.inst.group = GROUP;
    chart.inst.on('datazoom', function () { onZoom(chart.inst); });
    chart.inst.getZr().on('dblclick', function () { R.resetZoom(); });
    el.addEventListener('mouseenter', function () { S.hovered = el; });
    el.addEventListener('mouseleave', function () { if (S.hovered === el) S.hovered = null; });
    if (window.ResizeObserver) new ResizeObserver(function (entries) { R.fit(chart.inst, entries); }).observe(el);
    chart.inst.getZr().on('mousemove', function (e) { chart.mouse = [e.offsetX, e.offsetY]; });
    el.__rezgen = chart;
    S.charts.push(chart);
    chart.render();
    if (visibility) visibility.observe(el);
    return chart;
  };

  /* Only charts on screen stay in the connect group: replaying every crosshair move and zoom on dozens of
     off-screen charts made the pointer lag. A chart that comes back catches up with the zoom window and theme. */
  var visibility = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      var chart = entry.target.__rezgen;
      if (!chart || !chart.inst) return;
      chart.visible = entry.isIntersecting;
      if (!entry.isIntersecting) { chart.inst.group = ''; return; }
      chart.inst.group = GROUP;
      if (chart.stale) { chart.stale = false; chart.render(); return; }
      var axis = chart.inst.getModel().getComponent('xAxis', 0);
      var extent = axis && axis.axis.scale.getExtent();
      var win = R.window();
      if (extent && (Math.abs(extent[0] - win[0]) > 1 || Math.abs(extent[1] - win[1]) > 1)) {
        chart.inst.dispatchAction({ type: 'dataZoom', startValue: win[0], endValue: win[1], escapeConnect: true });
      }
      chart.refine();
    });
  }, { rootMargin: '150px 0px' }) : null;

  R.disposeChart = function (chart) {
    var i = S.charts.indexOf(chart);
    if (i >= 0) S.charts.splice(i, 1);
    if (visibility) visibility.unobserve(chart.el);
    if (chart.inst) chart.inst.dispose();
    chart.inst = null;
  };

  /* ---- zoom ---- */
  var refineTimer = null;
  var zoomListeners = [];
  R.onZoom = function (fn) { zoomListeners.push(fn); };

  function onZoom(inst) {
    var axis = inst.getModel && inst.getModel().getComponent('xAxis', 0);
    var extent = axis && axis.axis && axis.axis.scale.getExtent();
    if (extent && S.range) {
      var full = extent[0] <= S.range[0] + 1 && extent[1] >= S.range[1] - 1;
      S.view = full ? null : [extent[0], extent[1]];
    }
    clearTimeout(refineTimer);
    refineTimer = setTimeout(function () {
      S.charts.forEach(function (c) { c.refine(); });
      zoomListeners.forEach(function (fn) { fn(R.window()); });
      if (R.setHashWindow) R.setHashWindow(S.view);
    }, 80);
  }
  R.zoomHandler = onZoom;

  /* Zoom every chart of the group; one dispatch is replayed on the others by echarts.connect. */
  R.zoomTo = function (win) {
    var any = R.timebar && R.timebar.inst;
    if (!any) {
      var shown = S.charts.filter(function (c) { return c.visible !== false && c.inst; })[0];
      any = shown && shown.inst;
    }
    if (!any) return;
    if (win) any.dispatchAction({ type: 'dataZoom', startValue: win[0], endValue: win[1] });
    else any.dispatchAction({ type: 'dataZoom', start: 0, end: 100 });
  };
  R.resetZoom = function () { R.zoomTo(null); };

  document.addEventListener('rezgen:theme', function () {
    S.charts.forEach(function (c) {
      if (c.visible === false) c.stale = true;
      else c.render();
    });
  });

  if (window.echarts) echarts.connect(GROUP);
})(window.REZGEN = window.REZGEN || {});
