/* Two ways to hold on to what a chart shows:
   - a click on a legend entry of a percentile chart pins that percentile: the others fade and the y axis is
     rescaled to the pinned line (over the whole chart); a second click on it releases it;
   - a click in a chart freezes its tooltip where it is (the chart leaves the crosshair sync meanwhile); Esc
     releases every frozen tooltip.
   State is on the element for tests: data-pinned="p99", data-frozen="true". */
(function (R) {
  'use strict';

  function extent(chart, index) {
    var lvl = chart.plot.levels[Math.max(chart.level, 0)], row = lvl.values[index] || [];
    var lo = Infinity, hi = -Infinity;
    row.forEach(function (v) {
      if (v === null || (chart.plot.log && v <= 0)) return;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    });
    return isFinite(lo) ? [lo, hi] : null;
  }

  R.pin = function (chart, name) {
    var inst = chart.inst, plot = chart.plot;
    var selected = {};
    plot.names.forEach(function (n) { selected[n] = true; });
    var index = name === null ? -1 : plot.names.indexOf(name);
    var range = index >= 0 ? extent(chart, index) : null;
    chart.pinned = range ? name : null;
    if (chart.pinned) chart.el.setAttribute('data-pinned', name);
    else chart.el.removeAttribute('data-pinned');
    if (!chart.pinned) { chart.render(); return; }
    var y;
    if (plot.log) y = R.logAxis(range[0], range[1], chart.el.clientHeight);
    else {
      var pad = (range[1] - range[0]) * 0.05 || Math.abs(range[1]) * 0.05 || 1;
      y = { type: 'value', min: Math.max(0, range[0] - pad), max: range[1] + pad };
    }
    inst.setOption({
      legend: { selected: selected },
      yAxis: y,
      series: plot.names.map(function (n) {
        return { lineStyle: { opacity: n === name ? 1 : 0.18, width: n === name ? 2 : 1.3 } };
      })
    });
  };

  function legendPin(chart) {
    chart.inst.on('legendselectchanged', function (e) {
      if (chart.kind !== 'percentiles') return;
      R.pin(chart, chart.pinned === e.name ? null : e.name);
    });
  }

  /* ---- frozen tooltips ---- */
  var frozen = [];

  R.freezeTooltip = function (chart) {
    if (chart.frozen) return;
    chart.frozen = true;
    frozen.push(chart);
    chart.group = chart.inst.group;
    chart.inst.group = ''; // other charts' crosshair moves no longer redraw (and empty) this tooltip
    chart.inst.setOption({ tooltip: { triggerOn: 'none', enterable: true, alwaysShowContent: true } });
    chart.el.setAttribute('data-frozen', 'true');
  };

  R.releaseTooltips = function () {
    frozen.splice(0).forEach(function (chart) {
      chart.frozen = false;
      chart.el.removeAttribute('data-frozen');
      if (!chart.inst || chart.inst.isDisposed()) return;
      chart.inst.group = chart.group || 'rezgen';
      chart.inst.setOption({ tooltip: { triggerOn: 'mousemove|click', enterable: false, alwaysShowContent: false } });
      chart.inst.dispatchAction({ type: 'hideTip' });
    });
  };

  function freezeOnClick(chart) {
    var down = null;
    chart.inst.getZr().on('mousedown', function (e) { down = [e.offsetX, e.offsetY]; });
    chart.inst.getZr().on('click', function (e) {
      // A drag (zoom) is not a click; only a click on the plot area freezes (the legend's are the legend's).
      if (!down || Math.abs(e.offsetX - down[0]) > 3 || Math.abs(e.offsetY - down[1]) > 3) return;
      if (!chart.inst.containPixel('grid', [e.offsetX, e.offsetY])) return;
      if (chart.frozen) { R.releaseTooltips(); return; }
      var box = chart.el.querySelector('.tt');
      if (box && box.textContent) R.freezeTooltip(chart);
    });
  }

  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') R.releaseTooltips(); });

  var create = R.createChart;
  R.createChart = function (el, plot, kind) {
    var chart = create(el, plot, kind);
    legendPin(chart);
    freezeOnClick(chart);
    return chart;
  };
})(window.REZGEN = window.REZGEN || {});
