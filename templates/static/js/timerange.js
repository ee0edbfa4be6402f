/* The time-range bar under the top bar: an ECharts slider over the whole recording (with a data shadow of the
   page's first chart) in the same connect group as the charts, so dragging it zooms them all, and zooming a
   chart moves it. Also the window read-out and the Reset button. */
(function (R) {
  'use strict';
  var S = R.state;
  var tb = R.timebar = { inst: null, shadow: null };

  function describe(win) {
    var text = document.getElementById('timebar-text');
    var reset = document.getElementById('zoom-reset');
    if (!text || !S.range) return;
    var total = S.range[1] - S.range[0];
    if (!S.view) {
      text.textContent = 'All ' + R.units.duration(total) + ' · drag a chart to zoom';
    } else {
      text.textContent = R.units.time(win[0]) + ' – ' + R.units.time(win[1]) + ' · ' +
        R.units.duration(win[1] - win[0]) + ' of ' + R.units.duration(total);
    }
    if (reset) reset.disabled = !S.view;
  }

  function option() {
    var c = R.colors();
    var win = R.window();
    var shadow = tb.shadow && tb.shadow.length ? tb.shadow : [[S.range[0], 0], [S.range[1], 0]];
    return {
      animation: false,
      backgroundColor: 'transparent',
      grid: { left: 0, right: 0, top: 0, bottom: 0, height: 1 },
      xAxis: { type: 'time', min: S.range[0], max: S.range[1], show: false },
      yAxis: { type: 'value', show: false, min: 0 },
      series: [{ type: 'line', data: shadow, showSymbol: false, silent: true, lineStyle: { opacity: 0 }, animation: false }],
      toolbox: R.toolbox('none'),
      dataZoom: [
        { type: 'slider', id: 'zs', xAxisIndex: 0, filterMode: 'none', startValue: win[0], endValue: win[1],
          minValueSpan: 5 * S.step, left: 8, right: 8, top: 2, bottom: 2, showDetail: false, brushSelect: true,
          showDataShadow: !!(tb.shadow && tb.shadow.length),
          realtime: true, throttle: 60,
          backgroundColor: 'transparent', borderColor: c.border, borderRadius: 4,
          fillerColor: R.hexAlpha(c.accent, 0.1),
          dataBackground: { lineStyle: { color: c.faint, width: 1 }, areaStyle: { color: R.hexAlpha(c.faint, 0.25) } },
          selectedDataBackground: { lineStyle: { color: c.accent, width: 1 }, areaStyle: { color: R.hexAlpha(c.accent, 0.25) } },
          handleIcon: 'path://M-1,-9 L1,-9 L1,9 L-1,9 Z', handleSize: '90%',
          handleStyle: { color: c.accent, borderColor: c.accent },
          moveHandleSize: 0,
          emphasis: { handleStyle: { color: c.accent, borderColor: c.accent } },
          textStyle: { color: c.muted } },
        { type: 'inside', id: 'zi', xAxisIndex: 0, filterMode: 'none', zoomOnMouseWheel: false, moveOnMouseMove: false,
          moveOnMouseWheel: false, startValue: win[0], endValue: win[1], minValueSpan: 5 * S.step }
      ]
    };
  }

  /* Show the bar, still empty, with its read-out: the page's layout is then final before the first chart is
     drawn (section pages draw the bar itself right after that chart). */
  R.showTimebar = function () {
    var box = document.getElementById('timebar');
    if (!box || !document.getElementById('timebar-chart') || !window.echarts || !S.range) return;
    box.hidden = false;
    describe(R.window());
  };

  /* Show the bar for the current R.state.range; `shadow` = [[t, v], ...] drawn faintly inside it. */
  R.initTimebar = function (shadow) {
    var box = document.getElementById('timebar');
    var el = document.getElementById('timebar-chart');
    if (!box || !el || !window.echarts || !S.range) return;
    box.hidden = false;
    tb.shadow = shadow || null;
    if (!tb.inst) {
      tb.inst = echarts.init(el, null, { renderer: 'canvas' });
      tb.inst.group = 'rezgen';
      tb.inst.on('datazoom', function () { R.zoomHandler(tb.inst); });
      if (window.ResizeObserver) new ResizeObserver(function (entries) { R.fit(tb.inst, entries); }).observe(el);
      document.addEventListener('rezgen:theme', function () { tb.inst.setOption(option(), { notMerge: true }); });
      var reset = document.getElementById('zoom-reset');
      if (reset) reset.addEventListener('click', function () { R.resetZoom(); });
    }
    tb.inst.setOption(option(), { notMerge: true });
    describe(R.window());
  };

  /* Live pages: move the bar to the new R.state.range in place (no rebuild), with a new shadow. */
  R.updateTimebar = function (shadow) {
    if (shadow) tb.shadow = shadow; // kept for initTimebar when the bar is not drawn yet
    if (!tb.inst || !S.range) return;
    var win = R.window();
    tb.inst.setOption({
      xAxis: { min: S.range[0], max: S.range[1] },
      series: [{ data: tb.shadow && tb.shadow.length ? tb.shadow : [[S.range[0], 0], [S.range[1], 0]] }],
      dataZoom: [{ id: 'zs', startValue: win[0], endValue: win[1] }, { id: 'zi', startValue: win[0], endValue: win[1] }]
    });
    describe(win);
  };

  R.onZoom(describe);
})(window.REZGEN = window.REZGEN || {});
