/* Tooltip contents built as DOM nodes with textContent: series names (cgroup names, label values) come from
   the recording and must never be parsed as HTML. Only the chart under the mouse shows its tooltip; the others
   draw just the synchronized crosshair. */
(function (R) {
  'use strict';
  var MAX_ROWS = 14;

  function node(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function row(color, name, value) {
    var r = node('div', 'tt-row');
    var dot = node('span', 'tt-dot');
    dot.style.background = color;
    r.appendChild(dot);
    r.appendChild(node('span', 'tt-name', name));
    r.appendChild(node('span', 'tt-val', value));
    return r;
  }

  function levelNote(chart) {
    var levels = chart.plot && chart.plot.levels;
    var level = levels && levels[chart.level];
    if (!level || !(level.bucket > 1)) return null;
    return 'min/max per ' + R.units.duration(level.bucket * R.state.step) + ' bucket';
  }

  function colorOf(p) {
    return typeof p.color === 'string' ? p.color : (p.color && p.color.colorStops ? p.color.colorStops[0].color : '#888');
  }

  /* Axis tooltip for line, multi and percentile charts. `sorted`: largest value first. */
  R.axisTooltip = function (chart, unit, sorted) {
    return function (params) {
      if (R.state.hovered !== chart.el) return '';
      params = Array.isArray(params) ? params : [params];
      if (!params.length) return '';
      var t = Array.isArray(params[0].value) ? params[0].value[0] : params[0].axisValue;
      var box = node('div', 'tt');
      box.appendChild(node('div', 'tt-head', R.units.time(t, true)));
      var items = params.map(function (p) {
        var v = Array.isArray(p.value) ? p.value[1] : p.value;
        var name = chart.displayNames && chart.displayNames[p.seriesName] || p.seriesName;
        return { name: name, color: colorOf(p), v: typeof v === 'number' ? v : null };
      });
      if (sorted) items.sort(function (a, b) { return (b.v === null ? -Infinity : b.v) - (a.v === null ? -Infinity : a.v); });
      items.slice(0, MAX_ROWS).forEach(function (it) {
        box.appendChild(row(it.color, it.name, R.units.format(unit, chart.unmap ? chart.unmap(it.v) : it.v)));
      });
      if (items.length > MAX_ROWS) box.appendChild(node('div', 'tt-note', '+ ' + (items.length - MAX_ROWS) + ' more'));
      var note = levelNote(chart);
      if (note) box.appendChild(node('div', 'tt-note', note));
      events(box, t, chart);
      return box;
    };
  };

  /* Events close to the hovered time (within a few pixels' worth of time). */
  function events(box, t, chart) {
    if (!R.state.events.length || typeof t !== 'number') return;
    var win = R.window();
    var span = Math.max(R.state.step, (win[1] - win[0]) / Math.max(chart.el.clientWidth, 100) * 6);
    R.eventsNear(t, span).slice(0, 3).forEach(function (e) {
      box.appendChild(node('div', 'tt-event', R.units.time(e.t) + '  ' + String(e.text || e.kind || 'event')));
    });
  }

  /* Axis tooltip for heatmaps: the cell under the mouse, found from the pointer's time and the mouse's row.
     lookup(t, row) -> {start, end, value} or null. */
  R.cellTooltip = function (chart, rowLabel, unit, lookup) {
    return function (params) {
      if (R.state.hovered !== chart.el || !chart.mouse) return '';
      var at = chart.inst.convertFromPixel({ gridIndex: 0 }, chart.mouse);
      var t = at && at[0], r = at && Math.round(at[1]);
      if (typeof t !== 'number' || !isFinite(r) || r < 0) return '';
      var cell = lookup(t, r);
      if (!cell) return '';
      var box = node('div', 'tt');
      box.appendChild(node('div', 'tt-head', R.units.time(cell.start, true) +
        (cell.end - cell.start > R.state.step * 1.5 ? ' – ' + R.units.time(cell.end) : '')));
      box.appendChild(row(cell.color || 'transparent', rowLabel(r), R.units.format(unit, cell.value)));
      if (cell.note) box.appendChild(node('div', 'tt-note', cell.note));
      events(box, t, chart);
      return box;
    };
  };

  R.dom = { node: node };
})(window.REZGEN = window.REZGEN || {});
