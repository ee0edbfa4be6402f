/* The metric browser: filter and sort the table (rendered by the template), and chart the metric clicked. */
(function (R) {
  'use strict';
  var current = null; // {row, chart}

  function text(row) {
    if (!row.__text) row.__text = row.textContent.replace(/\s+/g, ' ').toLowerCase();
    return row.__text;
  }

  function filter(rows, query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var t = text(row);
      var ok = words.every(function (w) { return t.indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    document.getElementById('metric-count').textContent = shown === rows.length
      ? rows.length + ' metrics' : shown + ' of ' + rows.length + ' metrics';
    document.getElementById('metric-empty').hidden = shown > 0;
  }

  function sortBy(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.hasAttribute('data-numeric');
    var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].textContent.trim(), y = b.cells[index].textContent.trim();
      var d = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return d * dir || a.getAttribute('data-name').localeCompare(b.getAttribute('data-name'));
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  /* The metric payload carries no range: take it from the finest level (envelope levels hold two points per
     bucket, heatmap levels one). */
  function rangeOf(plot) {
    var fine = plot.levels[plot.levels.length - 1], t = fine.t, n = t.length;
    var bucket = fine.bucket || 1;
    var perBucket = bucket > 1 && plot.kind !== 'heatmap' ? 2 : 1;
    var step = n > perBucket ? (t[perBucket] - t[0]) / bucket : 1000;
    return { start: t[0], end: t[n - 1], step: Math.max(1, Math.round(step)) };
  }

  function close() {
    if (current && current.chart) R.disposeChart(current.chart);
    if (current && current.row) current.row.removeAttribute('aria-selected');
    current = null;
    document.getElementById('metric-view').hidden = true;
    document.getElementById('timebar').hidden = true;
  }

  function show(row, payload) {
    var plot = payload && payload.plot;
    var view = document.getElementById('metric-view');
    var el = document.getElementById('metric-chart');
    var mode = document.getElementById('metric-mode');
    if (current && current.chart) R.disposeChart(current.chart);
    if (current && current.row) current.row.removeAttribute('aria-selected');
    el.textContent = '';
    el.classList.remove('chart-message');
    current = { row: row, chart: null };
    row.setAttribute('aria-selected', 'true');
    view.hidden = false;
    document.getElementById('metric-title').textContent = payload.name || row.getAttribute('data-name');
    document.getElementById('metric-desc').textContent = (plot && plot.description) || '';
    document.getElementById('metric-query').textContent = (plot && plot.query) || '';
    if (!plot || !plot.levels || !plot.levels.length) {
      el.classList.add('chart-message');
      el.textContent = plot && plot.error ? 'This chart could not be computed: ' + plot.error : 'This metric has no data points.';
      mode.hidden = true;
      return;
    }
    R.state.view = null;
    R.setRange(payload.range || rangeOf(plot), payload.events || []);
    R.initTimebar(plot.kind === 'line' || plot.kind === 'multi' ? R.pairs(plot.levels[0], 0) : null);
    mode.hidden = !plot.buckets;
    mode.setAttribute('aria-pressed', 'false');
    mode.textContent = 'Heatmap';
    current.chart = R.createChart(el, plot, plot.kind);
    view.scrollIntoView({ block: 'nearest' });
  }

  function open(row) {
    var host = R.host();
    var name = row.getAttribute('data-name');
    var src = R.dataPath(row.getAttribute('data-data'), host);
    row.setAttribute('aria-busy', 'true');
    R.load(src, host + '/metrics/' + name).then(function (payload) {
      row.removeAttribute('aria-busy');
      show(row, payload);
    }, function (err) {
      row.removeAttribute('aria-busy');
      show(row, { name: name, plot: null });
      document.getElementById('metric-chart').textContent = 'Could not load the data: ' + err.message;
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    var table = document.getElementById('metric-table');
    if (!table) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var search = document.getElementById('metric-search');
    search.addEventListener('input', function () { filter(rows, search.value); });
    if (search.value) filter(rows, search.value);
    table.querySelectorAll('thead th[data-sort] button').forEach(function (button) {
      button.addEventListener('click', function () { sortBy(table, button.parentNode); });
    });
    table.tBodies[0].addEventListener('click', function (e) {
      var row = e.target.closest('tr');
      if (row) open(row);
    });
    table.tBodies[0].addEventListener('keydown', function (e) {
      var row = e.target.closest('tr');
      if (row && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); open(row); }
    });
    document.getElementById('metric-close').addEventListener('click', close);
    var mode = document.getElementById('metric-mode');
    mode.addEventListener('click', function () {
      var chart = current && current.chart;
      if (!chart) return;
      var buckets = chart.kind !== 'buckets';
      mode.setAttribute('aria-pressed', String(buckets));
      mode.textContent = buckets ? 'Percentiles' : 'Heatmap';
      chart.setKind(buckets ? 'buckets' : chart.plot.kind);
    });
  });
})(window.REZGEN = window.REZGEN || {});
