/* The Fleet page: one host x time heatmap per KPI (rows as the payload sorted them, highest average first) and a
   sortable table of every host's current and average values, each host linking to its own pages. A search box
   filters both; live pages fetch it all again every few seconds. Host names come from the data: written as text,
   never parsed as HTML. */
(function (R) {
  'use strict';
  var ROW_PX = 12, MAX_ROWS_SHOWN = 40, LIVE_REFRESH_MIN_MS = 5000;
  var state = { order: [], kpis: {}, filter: '', sortKey: null, sortDir: -1, charts: [] };

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

  /* The KPIs' panels, in the page's order; each is drawn once its data script has come. */
  function drawHeatmaps() {
    var grid = document.getElementById('fleet-heatmaps');
    state.charts.forEach(function (chart) { chart.dispose(); });
    state.charts = [];
    grid.textContent = '';
    state.order.forEach(function (id) { grid.appendChild(panel(id, state.kpis[id])); });
  }

  function panel(id, kpi) {
    var box = el('div', 'chart fleet-chart'), card = el('article', 'panel panel-full fleet-kpi');
    card.setAttribute('data-kpi', id);
    var head = el('header', 'panel-head'), titles = el('div', 'panel-titles');
    titles.appendChild(el('h3', 'panel-title', kpi ? kpi.title : id));
    titles.appendChild(el('p', 'panel-desc', kpi ? 'One row per host, highest average first: ' + kpi.query : ''));
    head.appendChild(titles);
    card.appendChild(head);
    card.appendChild(box);
    if (!kpi) { message(box, 'Loading…'); return card; }
    if (kpi.error) { message(box, 'This chart failed: ' + kpi.error).classList.add('chart-error'); return card; }
    var rows = [];
    kpi.hosts.forEach(function (host, i) { if (matches(host)) rows.push(i); });
    if (!rows.length) { message(box, kpi.hosts.length ? 'No host matches the filter' : 'No data'); return card; }
    box.style.height = Math.max(120, Math.min(rows.length, MAX_ROWS_SHOWN) * ROW_PX + 60) + 'px';
    setTimeout(function () {  // once the card is in the page, so that ECharts sees its size
      var chart = echarts.init(box, null, { renderer: 'canvas' });
      chart.setOption(heatmapOption(kpi, kpi.t, rows));
      box.__fleet = chart;
      state.charts.push(chart);
    }, 0);
    box.setAttribute('data-hosts', rows.length);
    return card;
  }

  function message(box, text) {
    box.classList.add('chart-message');
    box.textContent = text;
    return box;
  }

  function replacePanel(id) {
    var old = document.querySelector('.fleet-kpi[data-kpi="' + CSS.escape(id) + '"]');
    var chart = old && old.querySelector('.fleet-chart').__fleet, kpi = state.kpis[id];
    var rows = kpi && !kpi.error ? kpi.hosts.filter(matches) : [];
    if (chart && rows.length && String(rows.length) === chart.getDom().getAttribute('data-hosts')) {
      // New points for the same rows (a live refresh): drawn in place, keeping the reader's scroll of the rows.
      var option = heatmapOption(kpi, kpi.t, kpi.hosts.reduce(function (acc, host, i) {
        if (matches(host)) acc.push(i);
        return acc;
      }, []));
      delete option.dataZoom;
      chart.setOption(option);
      return;
    }
    if (chart) {
      chart.dispose();
      state.charts = state.charts.filter(function (c) { return c !== chart; });
    }
    var fresh = panel(id, kpi);
    if (old) old.replaceWith(fresh); else document.getElementById('fleet-heatmaps').appendChild(fresh);
  }

  function columns() {
    var cols = [{ key: 'host', label: 'Host', unit: null }];
    state.order.forEach(function (id) {
      var kpi = state.kpis[id];
      if (!kpi || kpi.error) return;
      cols.push({ key: id + ':0', label: kpi.title + ' now', unit: kpi.unit });
      cols.push({ key: id + ':1', label: kpi.title + ' avg', unit: kpi.unit });
    });
    return cols;
  }

  function cell(host, key) {
    if (key === 'host') return host;
    var parts = key.split(':'), kpi = state.kpis[parts[0]], pair = kpi && kpi.table ? kpi.table[host] : null;
    return pair ? pair[Number(parts[1])] : null;
  }

  function allHosts() {
    var seen = {};
    state.order.forEach(function (id) {
      var kpi = state.kpis[id];
      if (kpi && kpi.table) Object.keys(kpi.table).forEach(function (h) { seen[h] = true; });
    });
    return Object.keys(seen).sort();
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
    var hosts = allHosts(), rows = hosts.filter(matches);
    if (state.sortKey) {
      rows.sort(function (a, b) {
        var x = cell(a, state.sortKey), y = cell(b, state.sortKey);
        if (x === null || y === null) return (x === null) - (y === null);
        return (x < y ? -1 : x > y ? 1 : 0) * state.sortDir;
      });
    }
    body.textContent = '';
    rows.forEach(function (host) {
      var tr = el('tr');
      tr.setAttribute('data-host', host);
      cols.forEach(function (col) {
        var td = el('td');
        if (col.key === 'host') {
          var a = el('a', null, host);
          a.href = hostHref(host);
          td.appendChild(a);
        } else {
          var v = cell(host, col.key);
          td.textContent = R.units.format(col.unit, v);
          if (v !== null) td.setAttribute('data-value', v);
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    document.getElementById('fleet-count').textContent =
      rows.length + ' of ' + hosts.length + ' hosts';
  }

  function sortBy(key) {
    state.sortDir = state.sortKey === key ? -state.sortDir : (key === 'host' ? 1 : -1);
    state.sortKey = key;
    drawTable();
  }

  document.addEventListener('DOMContentLoaded', function () {
    if (document.body.getAttribute('data-kind') !== 'fleet') return;
    var search = document.getElementById('fleet-search'), timer = null;
    search.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        state.filter = search.value.trim().toLowerCase();
        drawHeatmaps();
        drawTable();
      }, 150);
    });
    window.addEventListener('resize', function () { state.charts.forEach(function (c) { c.resize(); }); });
    var root = document.body.getAttribute('data-root') || '';
    var template = document.body.getAttribute('data-data');
    state.order = (document.getElementById('fleet-heatmaps').getAttribute('data-kpis') || '').split(' ').filter(Boolean);
    drawHeatmaps();
    function fetchAll(again) {
      state.order.forEach(function (id) {  // each KPI's script on its own: the first chart need not wait for the rest
        (again ? R.reload : R.load)(root + template.replace('{kpi}', id), 'fleet/' + id).then(function (kpi) {
          state.kpis[id] = kpi;
        }, function (err) {
          state.kpis[id] = { id: id, title: id, error: 'the data could not be loaded: ' + err.message };
        }).then(function () { replacePanel(id); drawTable(); });
      });
    }
    fetchAll(false);
    // Live (serve --live or --prometheus): the whole page again every few seconds, while it is in sight. Each KPI
    // is one query over every host, so the refresh rate of section pages (down to 1 s) would be too often.
    var config = document.getElementById('live-config');
    if (config) {
      var every = Math.max(LIVE_REFRESH_MIN_MS, JSON.parse(config.textContent).default_refresh_ms || 0);
      setInterval(function () { if (!document.hidden) fetchAll(true); }, every);
    }
  });
})(window.REZGEN = window.REZGEN || {});
