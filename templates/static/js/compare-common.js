/* What the charts of a compare page share: the two fixed colours (A blue, B green, the same on both themes), the
   x axis of elapsed time since each recording's start, and the hook that hands a compare plot to compare.js
   instead of the single-recording chart kinds. */
(function (R) {
  'use strict';
  var AB = R.AB = { colors: ['#3b82f6', '#22a55b'] };

  /* "+1m 05s" for ms since the start. */
  AB.elapsed = function (ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '';
    var s = Math.round(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return '+' + (h ? h + 'h ' + pad(m) + 'm' : m ? m + 'm ' + pad(r) + 's' : r + 's');
  };

  /* The shared x axis, on elapsed time (a value axis: a time axis would label it as dates of 1970). */
  AB.axisX = function (c) {
    var axis = R.axisX(c, { type: 'value' });
    axis.axisLabel = Object.assign({}, axis.axisLabel, { formatter: AB.elapsed });
    return axis;
  };

  /* The side a chart draws from: its payload, or null when that recording cannot draw the plot. */
  AB.data = function (plot, i) { return plot.sides && plot.sides[i] && plot.sides[i].data; };

  /* Compare plots are drawn by compare.js (R.compareChart): a panel of one or more charts. */
  var single = R.createChart;
  R.createChart = function (el, plot, kind) {
    return plot && plot.compare && R.compareChart ? R.compareChart(el, plot) : single(el, plot, kind);
  };
  R.singleChart = single;
})(window.REZGEN = window.REZGEN || {});
