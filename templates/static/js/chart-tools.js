/* Per-chart toggles in each panel's head, added to what the section template draws:
     Full / Tail    a percentile chart's quantile spectrum (chart-spectrum.js), loaded when first pressed
     Log            log or linear y axis of a latency chart (percentiles, or a line chart the dashboard draws log)
     Raw count      a bucket heatmap's counts per column instead of counts per second
     Total          a chart that averages over CPUs (its query divides by sum(cpu_cores)) times the CPU count
   The buttons only change what a chart object reads (el.__kind, plot.log, chart.rawCount, chart.total) and
   redraw it; export and "open" buttons are chart-export.js's. */
(function (R) {
  'use strict';
  var PER_CPU = /\/\s*sum\s*\(\s*cpu_cores\s*\)/;

  R.isLatency = function (plot) {
    return plot.kind === 'percentiles' || ((plot.kind === 'line' || plot.kind === 'multi') && !!plot.log);
  };
  R.averagesCpus = function (plot) {
    return (plot.kind === 'line' || plot.kind === 'multi') && PER_CPU.test(plot.query || '');
  };

  function button(text, title, cls) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn btn-small tool-btn ' + (cls || '');
    b.textContent = text;
    b.title = title;
    b.setAttribute('aria-pressed', 'false');
    return b;
  }

  R.panelTools = function (el) {
    var head = el.parentNode && el.parentNode.querySelector('.panel-head');
    if (!head) return null;
    var tools = head.querySelector('.panel-tools');
    if (!tools) {
      tools = document.createElement('div');
      tools.className = 'panel-tools';
      head.insertBefore(tools, head.querySelector(':scope > .icon-btn')); // before a close button, if any
    }
    return tools;
  };

  function redraw(el) {
    if (el.__rezgen) el.__rezgen.setKind(el.__kind || el.__plot.kind);
  }

  /* The heatmap toggle of page.js, back to its "off" look when another mode takes over. */
  function heatmapOff(el) {
    var b = document.querySelector('[data-toggle-for="' + CSS.escape(el.getAttribute('data-plot-id')) + '"]');
    if (b) { b.setAttribute('aria-pressed', 'false'); b.textContent = 'Heatmap'; }
  }

  function spectrumButtons(el, plot, tools) {
    var buttons = {};
    [['full', 'Full', 'Quantile spectrum p1 … p100 over time'],
     ['tail', 'Tail', 'Quantile spectrum p99.01 … p100 over time']].forEach(function (m) {
      var b = button(m[1], m[2], 'spectrum-toggle');
      b.setAttribute('data-spectrum', m[0]);
      buttons[m[0]] = b;
      b.addEventListener('click', function () {
        var on = !(el.__kind === 'spectrum' && el.__spectrumMode === m[0]);
        if (!on) { el.__kind = plot.kind; sync(); redraw(el); return; }
        b.disabled = true;
        R.loadSpectrum(plot, m[0]).then(function () {
          b.disabled = false;
          el.__kind = 'spectrum';
          el.__spectrumMode = m[0];
          heatmapOff(el);
          sync();
          redraw(el);
        }, function (err) {
          b.disabled = false;
          b.title = 'Could not load the spectrum: ' + err.message;
        });
      });
      tools.appendChild(b);
    });
    function sync() {
      Object.keys(buttons).forEach(function (mode) {
        buttons[mode].setAttribute('aria-pressed', String(el.__kind === 'spectrum' && el.__spectrumMode === mode));
      });
    }
    // page.js's Heatmap toggle switches away from a spectrum too.
    var heat = document.querySelector('[data-toggle-for="' + CSS.escape(el.getAttribute('data-plot-id')) + '"]');
    if (heat) heat.addEventListener('click', function () { setTimeout(sync, 0); });
  }

  function toggle(el, tools, text, title, cls, apply) {
    var b = button(text, title, cls);
    b.addEventListener('click', function () {
      var on = b.getAttribute('aria-pressed') !== 'true';
      b.setAttribute('aria-pressed', String(on));
      apply(on, b);
    });
    tools.appendChild(b);
    return b;
  }

  function attach(el) {
    var plot = el.__plot;
    // Section pages only: the metric browser reuses one element for every metric (it has its own toggle).
    if (!plot || el.__tools || document.body.getAttribute('data-kind') !== 'section') return;
    el.__tools = true;
    var tools = R.panelTools(el);
    if (!tools) return;
    if (plot.kind === 'percentiles') spectrumButtons(el, plot, tools);
    if (R.isLatency(plot)) {
      var log = toggle(el, tools, 'Log', 'Log or linear y axis', 'log-toggle', function (on) {
        plot.log = on;
        redraw(el);
      });
      log.setAttribute('aria-pressed', String(!!plot.log));
    }
    if (plot.buckets) {
      // Only while the bucket heatmap is shown (page.js's Heatmap toggle).
      var raw = toggle(el, tools, 'Raw count', 'Bucket heatmap: counts per column instead of per second', 'raw-toggle',
                       function (on) { el.__rawCount = on; if (el.__rezgen) { el.__rezgen.rawCount = on; redraw(el); } });
      var shown = function () { raw.hidden = el.__kind !== 'buckets'; };
      shown();
      el.parentNode.querySelector('.panel-head').addEventListener('click', function () { setTimeout(shown, 0); });
    }
    if (R.averagesCpus(plot) && R.cpus) {
      toggle(el, tools, 'Total', 'Mean per CPU, or the total over ' + R.cpus + ' CPUs', 'total-toggle',
             function (on, b) {
               b.textContent = on ? 'Mean' : 'Total';
               el.__total = on;
               if (el.__rezgen) { R.setTotal(el.__rezgen, on); }
             });
    }
  }

  /* A chart averaged over CPUs, shown as its total: every level's values times the CPU count (the plot object
     is swapped, so its cached points are never mixed up with the mean's). */
  R.setTotal = function (chart, on) {
    var plot = chart.el.__plot;
    if (!on) { chart.plot = plot; chart.render(); return; }
    var n = R.cpus, total = Object.assign({}, plot, {
      unit: plot.unit === 'percentage' ? 'count' : plot.unit,
      range: plot.range ? [plot.range[0] * n, plot.range[1] * n] : null,
      title: plot.title + ' (total)',
      levels: plot.levels.map(function (lvl) {
        return Object.assign({}, lvl, { _pairs: null, _cells: null, values: lvl.values.map(function (row) {
          return row.map(function (v) { return v === null ? null : v * n; });
        }) });
      })
    });
    chart.plot = total;
    chart.render();
  };

  /* A chart's tools are added when it is first drawn (page.js and live.js create charts through R.createChart). */
  var create = R.createChart;
  R.createChart = function (el, plot, kind) {
    if (!el.__plot) el.__plot = plot;
    attach(el);
    var chart = create(el, plot, kind);
    if (el.__rawCount) { chart.rawCount = true; chart.render(); }
    if (el.__total) R.setTotal(chart, true);
    return chart;
  };
  // The CPU count comes with a section's data (pages/model.py, `cpus`).
  document.addEventListener('rezgen:data', function (e) {
    var payload = R.payload(e.detail.key);
    if (payload && payload.cpus) R.cpus = payload.cpus;
  });
})(window.REZGEN = window.REZGEN || {});
