/* Live pages (`rezgen serve --live`): the section's data for the chosen range, then new points pushed over the
   page's stream, applied every refresh period (append, trim to the range, redraw in place; never a re-fetch).
   Pause (live-controls.js) freezes the view while points keep arriving into a buffer bounded by the range; resume
   applies them at once. Runs only on pages with data-live="true"; pages without a section (metrics, system) get
   the connection indicator alone. */
(function (R) {
  'use strict';
  var L = R.live = R.live || {};
  var S = R.state;
  var RANGE_KEY = 'rezgen-live-range', REFRESH_KEY = 'rezgen-live-refresh';

  /* The ranges, refresh rates and their defaults are the server's (live-config, see pages/model.py). */
  var cfg = {};
  var st = {
    range: null, custom: null, // custom: {from, to|null} in ms
    refresh: null, timer: null, paused: false, reason: null,
    payload: null, plots: new Map(), step: 1000, newest: null, oldest: null, loading: false,
    pending: [], pendingNewest: null, generation: 0
  };
  L.st = st;
  L.intervalMs = function () { return cfg.interval_ms || 1000; };

  function $(id) { return document.getElementById(id); }

  function store(key, value) { try { localStorage.setItem(key, value); } catch (e) { /* optional */ } }
  function stored(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }

  function range(value) { return (cfg.ranges || []).filter(function (r) { return r.value === value; })[0]; }
  function duration(value) { var r = range(value); return r ? r.ms : null; }
  function rangeName(value) { var r = range(value); return r ? r.name : 'last ' + value; }

  function status(text, kind) {
    var el = $('status');
    if (!el) return;
    el.textContent = text || '';
    el.classList.toggle('error', kind === 'error');
    el.classList.toggle('loading', kind === 'loading');
  }

  /* ---- the window ---- */
  /* A "last N" window starts at the server's oldest point while it holds less than N (a new session): the x axis
     fits the data instead of leaving most of the chart empty. At least a few steps wide, so one point has room. */
  function windowFor(newest) {
    if (st.custom) return [st.custom.from, st.custom.to === null ? newest : st.custom.to];
    var start = newest - duration(st.range);
    if (filling(newest)) start = Math.min(st.oldest, newest - 5 * st.step);
    return [start, newest];
  }
  function filling(newest) { return st.oldest !== null && !st.custom && st.oldest > newest - duration(st.range); }
  function fixed() { return !!(st.custom && st.custom.to !== null); }

  function describe() {
    var el = document.querySelector('.recording-range');
    if (!el || !S.range) return;
    var what = st.custom ? (fixed() ? 'custom range' : 'custom range, following') : rangeName(st.range);
    if (st.newest !== null && filling(st.newest)) what += ' (since start)';
    el.textContent = what + ' · ' + R.units.time(S.range[0]) + ' – ' + R.units.time(S.range[1]);
    el.title = R.units.time(S.range[0], true) + ' – ' + R.units.time(S.range[1], true) + ' (local time)';
    describePicker();
  }

  /* The range picker says when the chosen range is not full yet: "Last 15 minutes (since start, 20 s)". */
  function describePicker() {
    var select = $('live-range');
    if (!select) return;
    Array.prototype.forEach.call(select.options, function (option) {
      if (!option.hasAttribute('data-label')) option.setAttribute('data-label', option.textContent);
      var label = option.getAttribute('data-label');
      if (option.value === st.range && st.newest !== null && filling(st.newest)) {
        label += ' (since start, ' + R.units.duration(Math.max(0, st.newest - st.oldest)) + ')';
      }
      if (option.textContent !== label) option.textContent = label;
    });
  }

  /* ---- loading the section ---- */
  function dataUrl() {
    var body = document.body;
    var span = st.range;
    if (st.custom) span = Math.max(1, Math.ceil(((st.newest || Date.now()) - st.custom.from) / 1000) + 30) + 's';
    return R.dataPath(body.getAttribute('data-data'), R.host()) + '?range=' + encodeURIComponent(span);
  }

  /* Why a data script failed: the server answers 404 JSON before the first snapshots, 503 while starting. */
  function diagnose(src) {
    return fetch(src, { cache: 'no-store' }).then(function (r) {
      if (r.ok) return 'the data script did not register its data';
      return r.text().then(function (text) {
        var detail = '';
        try { detail = JSON.parse(text).error || ''; } catch (e) { detail = ''; }
        if (r.status === 404 && /no data/i.test(detail)) return 'no data yet: waiting for the agent\'s first snapshots';
        return 'the server answered ' + r.status + (detail ? ' (' + detail + ')' : '');
      });
    }, function () { return 'the server cannot be reached'; });
  }

  /* Fetch the data for the current range; resolves with the prepared payload (or rejects with a readable Error). */
  function load() {
    var src = dataUrl(), key = R.host() + '/' + document.body.getAttribute('data-route');
    st.loading = true;
    document.body.classList.add('live-loading');
    return R.reload(src, key).then(function (payload) {
      st.loading = false;
      document.body.classList.remove('live-loading');
      return payload;
    }, function () {
      return diagnose(src).then(function (why) {
        st.loading = false;
        document.body.classList.remove('live-loading');
        throw new Error(why);
      });
    });
  }

  function adopt(payload) {
    st.payload = payload;
    if (!st.custom) st.oldest = payload.range.start; // the server clamps the range to the oldest point it holds
    st.plots = L.prepare(payload);
    st.step = (payload.live && payload.live.step) || payload.range.step || st.step;
    st.newest = payload.live ? payload.live.last : payload.range.end;
    var changed = {};
    var win = windowFor(Math.max(st.newest, st.pendingNewest || 0));
    st.plots.forEach(function (p) { L.trim(p, win[0], changed); });
    payload.range = { start: win[0], end: win[1], step: st.step };
  }

  /* First load: retried until the agent has data; then the page is rendered and the stream opened. */
  function start() {
    status('Loading ' + rangeName(st.range) + '…', 'loading');
    load().then(function (payload) {
      adopt(payload);
      R.renderSection(payload);
      notes();
      S.view = null;
      apply(true);
      describe();
      var body = document.body, host = R.host();
      L.connect((body.getAttribute('data-root') || '') + cfg.stream + '?section=' + encodeURIComponent(body.getAttribute('data-route')) +
                '&host=' + encodeURIComponent(host === '_' ? '' : host), st.newest, { points: received, reset: reset });
      schedule();
    }, function (err) {
      status('Cannot load this section: ' + err.message + '. Retrying…', 'error');
      setTimeout(start, 3000);
    });
  }

  /* Range change or a reset from the server: new data, same charts (rebuilt from it), same stream. */
  function reloadData(label) {
    var generation = ++st.generation;
    if (st.reason === 'zoom') { st.paused = false; st.reason = null; } // a new range shows all of it, live
    status('Loading ' + label + '…', 'loading');
    return load().then(function (payload) {
      if (generation !== st.generation) return;
      adopt(payload);
      R.setHashWindow(null); // a zoom window of the previous range means nothing in this one
      R.setRange(payload.range, payload.events);
      S.view = null;
      document.querySelectorAll('.chart[data-plot-id]').forEach(function (el) {
        attach(el, st.plots.get(el.getAttribute('data-plot-id')));
      });
      apply(true);
      status('');
    }, function (err) {
      if (generation === st.generation) status('Cannot load ' + label + ': ' + err.message + ' (showing the previous data)', 'error');
      throw err;
    });
  }

  /* Give a chart element its (new) plot: its chart is rebuilt from it, or created when the element was showing a
     message (no data in the previous range, or waiting for the first points). */
  function attach(el, plot) {
    if (!plot || !plot.levels || !plot.levels.length) return;
    if (plot.missing && !plot.levels[0].t.length) { note(el, plot.missing); return; }
    el.__plot = plot;
    if (el.__rezgen) { el.__rezgen.plot = plot; el.__rezgen.render(); return; }
    if (el.classList.contains('chart-message') && plot.levels[0].t.length) {
      el.classList.remove('chart-message');
      el.textContent = '';
      R.createChart(el, plot, plot.kind);
    }
  }

  /* A plot the agent cannot fill (e.g. per-GPU charts of a host with one GPU): say so rather than wait. */
  function note(el, text) {
    if (el.__rezgen) return;
    el.classList.add('chart-message');
    el.textContent = text;
  }
  function notes() {
    document.querySelectorAll('.chart[data-plot-id]').forEach(function (el) {
      var plot = st.plots.get(el.getAttribute('data-plot-id'));
      if (plot && plot.missing && plot.levels && plot.levels.length && !plot.levels[0].t.length) note(el, plot.missing);
    });
  }

  /* ---- points ---- */
  function received(data) {
    if (fixed()) return; // a custom range with an end: nothing new to show
    st.pending.push(data);
    st.pendingNewest = Math.max(st.pendingNewest || 0, data.last);
    var start = windowFor(st.pendingNewest)[0]; // bounded (paused, loading, hidden tab): what still fits the range
    while (st.pending.length > 1 && st.pending[0].last < start) st.pending.shift();
    if (st.paused) L.showToggle();
  }

  function reset() {
    st.pending = [];
    reloadData('the latest data').catch(function () { /* shown; the next points or reset retry */ });
  }

  /* Apply the buffered points (every refresh period; at once on resume). */
  function apply(force) {
    if (!st.payload || st.loading || st.paused) return;
    if (!st.pending.length && !force) return;
    var changed = {};
    st.pending.forEach(function (event) {
      L.merge(st.plots, event, st.step, changed);
      if (event.last > st.newest) st.newest = event.last;
    });
    st.pending = [];
    var win = windowFor(st.newest);
    st.plots.forEach(function (p) { L.trim(p, win[0], changed); });
    S.range = win;
    var follow = !S.view;
    Object.keys(changed).forEach(function (id) { // plots that were waiting for their first points
      var el = document.querySelector('.chart[data-plot-id="' + CSS.escape(id) + '"]');
      if (el && !el.__rezgen && el.classList.contains('chart-message')) attach(el, st.plots.get(id));
    });
    S.charts.forEach(function (chart) {
      try {
        L.redraw(chart, changed[chart.plot.id], follow);
      } catch (err) { // shown in the page; the other charts go on
        status('Cannot update “' + (chart.plot.title || chart.plot.id) + '”: ' + err.message, 'error');
      }
    });
    if (R.updateTimebar) R.updateTimebar(L.shadow(st.plots, S.range));
    describe();
    L.showToggle();
  }

  function schedule() {
    clearInterval(st.timer);
    st.timer = setInterval(function () { if (!document.hidden) apply(false); }, st.refresh);
  }

  /* ---- shared with live-controls.js ---- */
  L.cfg = function () { return cfg; };
  L.duration = duration;
  L.windowFor = windowFor;
  L.fixed = fixed;
  L.apply = apply;
  L.reloadData = reloadData;
  L.schedule = schedule;
  L.store = store;
  L.rangeName = rangeName;
  L.RANGE_KEY = RANGE_KEY;
  L.REFRESH_KEY = REFRESH_KEY;

  document.addEventListener('DOMContentLoaded', function () {
    if (document.body.getAttribute('data-live') !== 'true') return;
    try { cfg = JSON.parse(($('live-config') || {}).textContent || '{}'); } catch (e) { cfg = {}; }
    var wanted = new URLSearchParams(location.search).get('range') || stored(RANGE_KEY);
    st.range = range(wanted) ? wanted : cfg.default_range;
    var refresh = Number(stored(REFRESH_KEY));
    st.refresh = (cfg.refresh || []).some(function (r) { return r.ms === refresh; }) ? refresh : cfg.default_refresh_ms;
    if (location.hash) history.replaceState(null, '', location.pathname + location.search); // no static zoom links
    L.controls();
    if (document.body.getAttribute('data-kind') !== 'section') { L.watchStatus(); return; }
    if (!document.body.getAttribute('data-data') || !window.echarts || !R.renderSection) {
      status('This page cannot show charts (missing data or ECharts).', 'error');
      return;
    }
    start();
    document.addEventListener('visibilitychange', function () { if (!document.hidden) apply(false); });
  });
})(window.REZGEN = window.REZGEN || {});
