/* Export and "open" for every chart:
   - PNG: the chart as ECharts draws it (getDataURL, twice the pixels, on the page's background);
   - CSV: exactly the points it draws. Lines: time_ms, time (UTC), then one column per series. Cells (heatmaps,
     bucket heatmaps, spectra): time_ms, time (UTC), end_ms, row, value;
   - Open: the chart alone at full width (?chart=<id> on its section page, a URL to share), with its query; on a
     served or live page the query can be edited and run again (chart-view.js).
   Files are downloaded through a blob: URL, which works from file:// too. */
(function (R) {
  'use strict';

  function download(name, href) {
    var a = document.createElement('a');
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function fileName(chart, ext) {
    var base = (document.body.getAttribute('data-route') || 'chart') + '-' + (chart.plot.id || 'chart');
    return base.replace(/[^A-Za-z0-9_.-]+/g, '_') + '.' + ext;
  }

  function csvField(x) {
    var s = x === null || x === undefined ? '' : String(x);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function iso(ms) { return new Date(ms).toISOString(); }

  /* The rows of the CSV of what a chart draws: [header, ...rows]. */
  R.chartTable = function (chart) {
    var option = chart.inst.getOption();
    var series = option.series.filter(function (s) { return s.data && s.data.length; });
    var unmap = chart.unmap || function (v) { return v; };
    if (series.length && series[0].type === 'custom') {
      var rows = (option.yAxis[0] && option.yAxis[0].data) || [];
      var s = series[0], valueAt = s.data[0] && s.data[0].length > 4 ? 4 : 2;
      var out = [['time_ms', 'time', 'end_ms', 'row', 'value']];
      s.data.forEach(function (d) { out.push([d[0], iso(d[0]), d[3], rows[d[1]] !== undefined ? rows[d[1]] : d[1], d[valueAt]]); });
      return out;
    }
    var times = [], seen = new Map();
    series.forEach(function (s, k) {
      s.data.forEach(function (p) {
        if (!seen.has(p[0])) { seen.set(p[0], new Array(series.length).fill(null)); times.push(p[0]); }
        seen.get(p[0])[k] = p[1] === null || p[1] === undefined ? null : unmap(p[1]);
      });
    });
    times.sort(function (a, b) { return a - b; });
    var names = series.map(function (s) { return (chart.displayNames && chart.displayNames[s.name]) || s.name; });
    var table = [['time_ms', 'time'].concat(names)];
    times.forEach(function (t) { table.push([t, iso(t)].concat(seen.get(t))); });
    return table;
  };

  R.chartCsv = function (chart) {
    return R.chartTable(chart).map(function (row) { return row.map(csvField).join(','); }).join('\n') + '\n';
  };

  R.exportPng = function (chart) {
    var bg = getComputedStyle(document.body).backgroundColor || '#fff';
    download(fileName(chart, 'png'), chart.inst.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: bg }));
  };

  R.exportCsv = function (chart) {
    var url = URL.createObjectURL(new Blob([R.chartCsv(chart)], { type: 'text/csv' }));
    download(fileName(chart, 'csv'), url);
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  };

  /* The URL of a chart shown alone. */
  R.chartUrl = function (id) {
    var params = new URLSearchParams(location.search);
    params.set('chart', id);
    return location.pathname + '?' + params + location.hash;
  };

  function tool(tools, text, title, cls, action) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn btn-small tool-btn ' + cls;
    b.textContent = text;
    b.title = title;
    b.addEventListener('click', action);
    tools.appendChild(b);
  }

  var create = R.createChart;
  R.createChart = function (el, plot, kind) {
    var chart = create(el, plot, kind);
    var tools = R.panelTools && R.panelTools(el);
    if (tools && !tools.querySelector('.export-csv')) {
      tool(tools, 'PNG', 'Download this chart as a PNG image', 'export-png', function () { R.exportPng(el.__rezgen); });
      tool(tools, 'CSV', 'Download the points this chart draws as CSV', 'export-csv', function () { R.exportCsv(el.__rezgen); });
      if (document.body.getAttribute('data-kind') === 'section' && !document.body.classList.contains('single-chart')) {
        tool(tools, 'Open', 'Show this chart alone, with its query', 'open-chart', function () {
          location.href = R.chartUrl(el.getAttribute('data-plot-id'));
        });
      }
    }
    return chart;
  };
})(window.REZGEN = window.REZGEN || {});
