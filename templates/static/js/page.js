/* A section page: load the section's data file for the chosen host, then create each chart as its panel
   scrolls into view. */
(function (R) {
  'use strict';

  function status(text, isError) {
    var el = document.getElementById('status');
    if (!el) return;
    el.textContent = text || '';
    el.classList.toggle('error', !!isError);
  }

  function message(el, text) {
    el.classList.add('chart-message');
    el.textContent = text;
  }

  /* The first single-line plot's coarsest level, for the time bar's shadow. */
  function shadowOf(plots) {
    for (var i = 0; i < plots.length; i++) {
      var p = plots[i];
      if ((p.kind === 'line' || p.kind === 'multi') && p.levels && p.levels.length) {
        return R.pairs(p.levels[0], 0);
      }
    }
    return null;
  }

  function render(payload) {
    var plots = new Map(), ordered = [];
    (payload.groups || []).forEach(function (g) {
      (g.plots || []).forEach(function (p) { plots.set(p.id, p); ordered.push(p); });
    });
    R.setRange(payload.range, payload.events);
    R.initTimebar(shadowOf(ordered));

    function create(el) {
      var plot = el.__plot;
      try {
        R.createChart(el, plot, el.__kind || plot.kind);
      } catch (err) {
        message(el, 'Cannot draw this chart: ' + err.message);
        if (window.console) console.error(err);
      }
    }

    var observer = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { observer.unobserve(entry.target); create(entry.target); }
      });
    }, { rootMargin: '300px 0px' }) : null;

    document.querySelectorAll('.chart[data-plot-id]').forEach(function (el) {
      var plot = plots.get(el.getAttribute('data-plot-id'));
      if (!plot || !plot.levels || !plot.levels.length) { message(el, 'No data'); return; }
      el.__plot = plot;
      // A live plot with no point yet: live.js creates its chart when the first points arrive.
      if (!plot.levels[plot.levels.length - 1].t.length) { message(el, 'Waiting for data…'); return; }
      if (observer) observer.observe(el); else create(el);
    });

    document.querySelectorAll('[data-toggle-for]').forEach(function (button) {
      var el = document.querySelector('.chart[data-plot-id="' + CSS.escape(button.getAttribute('data-toggle-for')) + '"]');
      var plot = el && el.__plot;
      if (!plot || !plot.buckets) { button.hidden = true; return; }
      button.addEventListener('click', function () {
        var buckets = (el.__kind || plot.kind) !== 'buckets';
        el.__kind = buckets ? 'buckets' : plot.kind;
        button.setAttribute('aria-pressed', String(buckets));
        button.textContent = buckets ? 'Percentiles' : 'Heatmap';
        if (el.__rezgen) el.__rezgen.setKind(el.__kind);
      });
    });
    status('');
  }
  R.renderSection = render; // live pages (live.js) load the data themselves, then render with this

  document.addEventListener('DOMContentLoaded', function () {
    var body = document.body;
    if (body.getAttribute('data-live') === 'true') return;
    var template = body.getAttribute('data-data');
    if (!template || !window.echarts) { status('This page cannot show charts (missing data or ECharts).', true); return; }
    var host = R.host();
    var key = host + '/' + body.getAttribute('data-route');
    R.load(R.dataPath(template, host), key).then(render, function (err) {
      status('Could not load this section\'s data: ' + err.message, true);
    });
  });
})(window.REZGEN = window.REZGEN || {});
