/* A section page: load the section's data file for the chosen host, then create each chart as its panel
   scrolls into view.

   This script loads before ECharts (section.html), so that the data file (a script of its own, unless the page
   loads it with a deferred tag) is read and compiled while ECharts is. Charts are then created one at a time,
   in page order, each after the previous one was drawn, so the first chart appears without waiting for the
   others (a heatmap can take a good part of a second). */
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

  /* A plot whose query failed on this recording: the reason and the query in its card instead of a chart. Both
     come from files (a recording, a dashboard), so they go in as text, never as markup. */
  function failed(el, plot) {
    message(el, '');
    el.classList.add('chart-error');
    var reason = document.createElement('div');
    reason.textContent = 'This chart could not be computed: ' + plot.error;
    var query = document.createElement('code');
    query.textContent = plot.query || '';
    el.appendChild(reason);
    el.appendChild(query);
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

  /* Work done one piece per frame: each piece runs in a task of its own right after a frame was drawn, so what
     the previous piece drew is on screen first and input and timers get their turn in between. */
  var jobs = [], ticking = false;
  function tick() {
    ticking = false;
    var job = jobs.shift();
    try {
      if (job) job();
    } finally {
      more();
    }
  }
  function more() {
    if (ticking || !jobs.length) return;
    ticking = true;
    if (window.requestAnimationFrame && !document.hidden) requestAnimationFrame(function () { setTimeout(tick, 0); });
    else setTimeout(tick, 0);
  }

  function render(payload) {
    var plots = new Map(), ordered = [];
    (payload.groups || []).forEach(function (g) {
      (g.plots || []).forEach(function (p) { plots.set(p.id, p); ordered.push(p); });
    });
    R.setRange(payload.range, payload.events);

    function create(el) {
      var plot = el.__plot;
      if (el.__rezgen || !plot) return;
      try {
        R.createChart(el, plot, el.__kind || plot.kind);
      } catch (err) {
        message(el, 'Cannot draw this chart: ' + err.message);
        if (window.console) console.error(err);
      }
    }

    /* The first chart on screen is created at once, then the time bar, then the others as they come into view
       (the time bar alone when there is no chart to draw). */
    var started = false, timebarDone = false;
    function timebar() {
      if (timebarDone) return;
      timebarDone = true;
      // A live page may have given the bar a newer shadow meanwhile (R.updateTimebar).
      R.initTimebar(R.timebar.shadow || shadowOf(ordered));
    }
    function start(el) {
      started = true;
      if (el) create(el);
      jobs.unshift(timebar);
      more();
    }

    var MARGIN = 300; // px above and below the viewport where charts are created ahead of scrolling
    var observer = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
      var shown = [];
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { observer.unobserve(entry.target); shown.push(entry.target); }
      });
      if (!started) start(shown.shift());
      shown.forEach(function (el) { jobs.push(function () { create(el); }); });
      more();
    }, { rootMargin: MARGIN + 'px 0px' }) : null;

    var waiting = [];
    document.querySelectorAll('.chart[data-plot-id]').forEach(function (el) {
      var plot = plots.get(el.getAttribute('data-plot-id'));
      if (plot && plot.error) { failed(el, plot); return; }
      if (plot && plot.compare) { el.__plot = plot; if (observer) waiting.push(el); else create(el); return; } // compare.js
      if (!plot || !plot.levels || !plot.levels.length) { message(el, 'No data'); return; }
      el.__plot = plot;
      // A live plot with no point yet: live.js creates its chart when the first points arrive.
      if (!plot.levels[plot.levels.length - 1].t.length) { message(el, 'Waiting for data…'); return; }
      if (observer) waiting.push(el); else create(el);
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

    // The layout is final from here on (status line gone, time bar's place taken).
    R.showTimebar();
    status('');
    if (!observer || !waiting.length) timebar();
    else {
      // Not waiting for the observer's first report (the next frame) to start on the first chart in view.
      var first = null, height = window.innerHeight || document.documentElement.clientHeight;
      for (var i = 0; i < waiting.length && !first; i++) {
        var box = waiting[i].getBoundingClientRect();
        if (box.width > 0 && box.height > 0 && box.bottom > -MARGIN && box.top < height + MARGIN) first = waiting[i];
      }
      waiting.forEach(function (el) { if (el !== first) observer.observe(el); });
      if (first) start(first);
    }
  }
  R.renderSection = render; // live pages (live.js) load the data themselves, then render with this

  /* The static page's data. A deferred <script id="section-data"> of the page may already be loading it (it has
     registered its payload by DOMContentLoaded); otherwise the load starts now, while ECharts loads. */
  function loadData() {
    var body = document.body, template = body.getAttribute('data-data');
    if (!template) return null;
    var host = R.host();
    var loading = R.load(R.dataPath(template, host), host + '/' + body.getAttribute('data-route'));
    loading.catch(function () { /* reported once the page is ready */ });
    return loading;
  }
  var early = document.body && document.body.getAttribute('data-live') !== 'true' &&
    !document.getElementById('section-data') ? loadData() : null;

  document.addEventListener('DOMContentLoaded', function () {
    if (document.body.getAttribute('data-live') === 'true') return;
    var loading = early || loadData();
    if (!loading || !window.echarts) { status('This page cannot show charts (missing data or ECharts).', true); return; }
    loading.then(render, function (err) {
      status('Could not load this section\'s data: ' + err.message, true);
    });
  });
})(window.REZGEN = window.REZGEN || {});
