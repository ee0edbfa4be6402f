/* The query explorer (query.html): a PromQL box, a time range and step, the result as a chart (the line/multi
   chart of every page) and a table; recent queries kept in localStorage, example queries one click away. Runs
   over /api/v1/query_range of `rezgen serve`; from file:// it says it needs the server. The query and range are
   in the URL (?query=&from=&to=&step=), so a result can be shared. */
(function (R) {
  'use strict';
  var RECENT_KEY = 'rezgen-recent-queries', RECENT_MAX = 12, TABLE_ROWS = 2000;
  var EXAMPLES = [
    'sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9',
    'sum by (state) (irate(cpu_usage[5m])) / 1e9',
    'histogram_quantile(0.99, sum(irate(syscall_latency[5m])))',
    'sum by (op) (irate(blockio_bytes[5m]))',
    'topk(5, sum by (name) (irate(cgroup_cpu_usage[5m])))'
  ];
  function $(id) { return document.getElementById(id); }

  function recent() {
    try { return JSON.parse(localStorage.getItem(RECENT_KEY) || '[]').filter(function (q) { return typeof q === 'string'; }); }
    catch (e) { return []; }
  }
  function remember(query) {
    var list = [query].concat(recent().filter(function (q) { return q !== query; })).slice(0, RECENT_MAX);
    try { localStorage.setItem(RECENT_KEY, JSON.stringify(list)); } catch (e) { /* optional */ }
    listQueries('query-recent', list);
  }

  function listQueries(id, queries) {
    var box = $(id);
    while (box.children.length > 1) box.removeChild(box.lastChild);
    queries.forEach(function (q) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn btn-small';
      b.textContent = q;
      b.title = q;
      b.addEventListener('click', function () { $('query-text').value = q; run(); });
      box.appendChild(b);
    });
    box.hidden = !queries.length;
  }

  /* datetime-local values are local wall-clock time. */
  function toInput(ms) {
    var d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 19);
  }
  function fromInput(text) { var t = new Date(text).getTime(); return isFinite(t) ? t : null; }

  function stepMs(text, start, end) {
    text = (text || '').trim();
    if (!text) return Math.max(R.state.step || 1000, Math.ceil((end - start) / 1100 / 1000) * 1000);
    var m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
    if (!m) return null;
    return Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] || 's'];
  }

  function note(text, error) {
    var el = $('query-note');
    el.textContent = text;
    el.classList.toggle('error', !!error);
  }

  function table(plot) {
    var t = $('query-table');
    t.textContent = '';
    var head = document.createElement('tr'), lvl = plot.levels[0];
    ['time'].concat(plot.names).forEach(function (n) {
      var th = document.createElement('th');
      th.textContent = n;
      head.appendChild(th);
    });
    t.appendChild(head);
    lvl.t.slice(0, TABLE_ROWS).forEach(function (time, i) {
      var tr = document.createElement('tr'), td = document.createElement('td');
      td.textContent = R.units.time(time, true);
      tr.appendChild(td);
      lvl.values.forEach(function (row) {
        var cell = document.createElement('td');
        cell.textContent = row[i] === null ? '' : String(row[i]);
        tr.appendChild(cell);
      });
      t.appendChild(tr);
    });
  }

  var chart = null;
  function draw(plot) {
    $('query-result').hidden = false;
    var el = $('query-chart');
    el.__plot = plot;
    if (chart) { chart.plot = plot; chart.setKind(plot.kind); }
    else chart = R.createChart(el, plot, plot.kind);
    table(plot);
  }

  function run() {
    var query = $('query-text').value.trim();
    if (!query) { note('Type a PromQL query.', true); return; }
    var start = fromInput($('query-from').value), end = fromInput($('query-to').value);
    if (start === null || end === null || end < start) { note('The time range is not valid.', true); return; }
    var step = stepMs($('query-step').value, start, end);
    if (!step || step <= 0) { note('The step is not a duration (e.g. 5s, 1m).', true); return; }
    note('Running…');
    var params = new URLSearchParams({ query: query, from: String(start), to: String(end) });
    if ($('query-step').value.trim()) params.set('step', $('query-step').value.trim());
    history.replaceState(null, '', location.pathname + '?' + params);
    R.queryRange(query, start, end, step).then(function (data) {
      remember(query);
      var plot = R.matrixPlot(data, { id: 'query', title: query, unit: '', query: query });
      R.setRange({ start: start, end: end, step: step }, []);
      $('query-title').textContent = query;
      if (!plot.names.length) { $('query-result').hidden = true; note('No series.'); return; }
      draw(plot);
      note(plot.names.length + ' series × ' + plot.levels[0].t.length + ' steps of ' + R.units.duration(step));
    }, function (err) { note(err.message, true); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    listQueries('query-examples', EXAMPLES);
    listQueries('query-recent', recent());
    if (!R.served()) {
      $('query-needs-server').hidden = false;
      $('query-form').hidden = true;
      return;
    }
    var params = new URLSearchParams(location.search);
    fetch((document.body.getAttribute('data-root') || '') + 'api/range').then(function (r) { return r.json(); })
      .then(function (range) {
        var whole = function () {
          $('query-from').value = toInput(range.start);
          $('query-to').value = toInput(range.end);
        };
        R.state.step = range.step || 1000;
        whole();
        $('query-whole').addEventListener('click', whole);
        if (params.get('from') && params.get('to')) {
          $('query-from').value = toInput(Number(params.get('from')));
          $('query-to').value = toInput(Number(params.get('to')));
        }
        if (params.get('step')) $('query-step').value = params.get('step');
        if (params.get('query')) { $('query-text').value = params.get('query'); run(); }
      }, function (err) { note('Cannot reach the server: ' + err.message, true); });
    $('query-form').addEventListener('submit', function (e) { e.preventDefault(); run(); });
    $('query-text').addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
    });
  });
})(window.REZGEN = window.REZGEN || {});
