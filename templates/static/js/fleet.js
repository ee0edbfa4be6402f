/* The Fleet page: one host x time heatmap per KPI (rows as the payload sorted them, highest average first) and a
   sortable table of every host's current and average values, each host linking to its own pages. A search box
   filters both. Host names come from the data: written as text, never parsed as HTML. */
(function (R) {
  'use strict';
  var ROW_PX = 12, MAX_ROWS_SHOWN = 40;
  var state = { payload: null, filter: '', sortKey: null, sortDir: -1, charts: [] };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function hostHref(host) {
    return (document.body.getAttribute('data-root') || '') + 'index.html?host=' + encodeURIComponent(host);
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (ch) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch];
    });
  }

  function matches(host) { return !state.filter || host.toLowerCase().indexOf(state.filter) >= 0; }

  function heatmapOption(kpi, t, rows) {
    var c = R.colors(), cells = [], max = 0;
    rows.forEach(function (row, y) {
      kpi.values[row].forEach(function (v, x) {
        if (v !== null) { cells.push([x, y, v]); if (v > max) max = v; }
      });
    });
    var hosts = rows.map(function (row) { return kpi.hosts[row]; });
    var zoom = hosts.length > MAX_ROWS_SHOWN ? [
      { type: 'slider', yAxisIndex: 0, right: 4, width: 14, startValue: 0, endValue: MAX_ROWS_SHOWN - 1,
        showDetail: false, brushSelect: false },
      { type: 'inside', yAxisIndex: 0, zoomOnMouseWheel: false, moveOnMouseWheel: true }] : [];
    return {
      animation: false,
      grid: { left: 8, right: zoom.length ? 90 : 70, top: 8, bottom: 24, containLabel: true },
      tooltip: { formatter: function (p) {
        return escapeHtml(hosts[p.value[1]]) + '<br>' + R.units.time(t[p.value[0]], true) + ': ' +
          R.units.format(kpi.unit, p.value[2]);
      } },
      xAxis: { type: 'category', data: t.map(function (ms) { return R.units.time(ms); }),
               axisLabel: { color: c.muted, fontSize: 11 }, axisTick: { show: false } },
      yAxis: { type: 'category', data: hosts, inverse: true,
               axisLabel: { color: c.muted, fontSize: 11, width: 140, overflow: 'truncate' } },
      visualMap: { min: 0, max: max || 1, calculable: false, orient: 'vertical', right: zoom.length ? 24 : 4,
                   top: 8, itemHeight: 120, inRange: { color: R.VIRIDIS },
                   textStyle: { color: c.muted, fontSize: 10 }, formatter: function (v) { return R.units.format(kpi.unit, v); } },
      dataZoom: zoom,
      series: [{ type: 'heatmap', data: cells, progressive: 0, emphasis: { disabled: true } }]
    };
  }

  function drawHeatmaps() {
    var grid = document.getElementById('fleet-heatmaps'), p = state.payload;
    state.charts.forEach(function (chart) { chart.dispose(); });
    state.charts = [];
    grid.textContent = '';
    p.kpis.forEach(function (kpi) {
      var panel = el('article', 'panel panel-full fleet-kpi');
      panel.setAttribute('data-kpi', kpi.id);
      var head = el('header', 'panel-head'), titles = el('div', 'panel-titles');
      titles.appendChild(el('h3', 'panel-title', kpi.title));
      titles.appendChild(el('p', 'panel-desc', 'One row per host, highest average first: ' + kpi.query));
      head.appendChild(titles);
      panel.appendChild(head);
      var box = el('div', 'chart fleet-chart');
      panel.appendChild(box);
      grid.appendChild(panel);
      if (kpi.error) {
        box.classList.add('chart-message', 'chart-error');
        box.textContent = 'This chart failed: ' + kpi.error;
        return;
      }
      var rows = [];
      kpi.hosts.forEach(function (host, i) { if (matches(host)) rows.push(i); });
      if (!rows.length) {
        box.classList.add('chart-message');
        box.textContent = kpi.hosts.length ? 'No host matches the filter' : 'No data';
        return;
      }
      box.style.height = Math.max(120, Math.min(rows.length, MAX_ROWS_SHOWN) * ROW_PX + 60) + 'px';
      var chart = echarts.init(box, null, { renderer: 'canvas' });
      chart.setOption(heatmapOption(kpi, p.t, rows));
      box.setAttribute('data-hosts', rows.length);
      state.charts.push(chart);
    });
  }

  function columns() {
    var cols = [{ key: 'host', label: 'Host', unit: null }];
    state.payload.kpis.forEach(function (kpi) {
      cols.push({ key: kpi.id + ':0', label: kpi.title + ' now', unit: kpi.unit });
      cols.push({ key: kpi.id + ':1', label: kpi.title + ' avg', unit: kpi.unit });
    });
    return cols;
  }

  function cell(row, key) {
    if (key === 'host') return row.host;
    var parts = key.split(':'), pair = row[parts[0]];
    return pair ? pair[Number(parts[1])] : null;
  }

  function drawTable() {
    var head = document.getElementById('fleet-head'), body = document.getElementById('fleet-body');
    var cols = columns();
    head.textContent = '';
    cols.forEach(function (col) {
      var th = el('th', 'sortable', col.label);
      th.setAttribute('data-key', col.key);
      th.setAttribute('aria-sort', state.sortKey === col.key ? (state.sortDir > 0 ? 'ascending' : 'descending') : 'none');
      th.tabIndex = 0;
      th.addEventListener('click', function () { sortBy(col.key); });
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sortBy(col.key); });
      head.appendChild(th);
    });
    var rows = state.payload.hosts.filter(function (row) { return matches(row.host); });
    if (state.sortKey) {
      rows.sort(function (a, b) {
        var x = cell(a, state.sortKey), y = cell(b, state.sortKey);
        if (x === null || y === null) return (x === null) - (y === null);
        return (x < y ? -1 : x > y ? 1 : 0) * state.sortDir;
      });
    }
    body.textContent = '';
    rows.forEach(function (row) {
      var tr = el('tr');
      tr.setAttribute('data-host', row.host);
      cols.forEach(function (col) {
        var td = el('td');
        if (col.key === 'host') {
          var a = el('a', null, row.host);
          a.href = hostHref(row.host);
          td.appendChild(a);
        } else {
          var v = cell(row, col.key);
          td.textContent = R.units.format(col.unit, v);
          if (v !== null) td.setAttribute('data-value', v);
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    document.getElementById('fleet-count').textContent =
      rows.length + ' of ' + state.payload.hosts.length + ' hosts';
  }

  function sortBy(key) {
    state.sortDir = state.sortKey === key ? -state.sortDir : (key === 'host' ? 1 : -1);
    state.sortKey = key;
    drawTable();
  }

  function show(payload) {
    state.payload = payload;
    drawHeatmaps();
    drawTable();
  }

  document.addEventListener('DOMContentLoaded', function () {
    if (document.body.getAttribute('data-kind') !== 'fleet') return;
    var search = document.getElementById('fleet-search'), timer = null;
    search.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        state.filter = search.value.trim().toLowerCase();
        if (state.payload) { drawHeatmaps(); drawTable(); }
      }, 150);
    });
    window.addEventListener('resize', function () { state.charts.forEach(function (c) { c.resize(); }); });
    var root = document.body.getAttribute('data-root') || '';
    R.load(root + document.body.getAttribute('data-data'), 'fleet').then(show, function (err) {
      var grid = document.getElementById('fleet-heatmaps');
      grid.textContent = '';
      grid.appendChild(el('p', 'chart-message chart-error', 'The fleet data could not be loaded: ' + err.message));
    });
  });
})(window.REZGEN = window.REZGEN || {});
