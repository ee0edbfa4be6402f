/* The step selector of served and live section pages (Auto, 1s, 5s, 15s, 1m): every chart's data fetched again
   from /api/plot/<section>/<id>?step= (server/api.py rounds the step to whole sampling intervals) over the page's
   range; Auto puts back the data the page loaded. A live page is paused first: pushed points come at the
   stream's own step. From file:// there is no server to ask, and no selector. */
(function (R) {
  'use strict';
  var STEPS = [['', 'Auto'], ['1s', '1s'], ['5s', '5s'], ['15s', '15s'], ['1m', '1m']];

  function charts() {
    return Array.prototype.filter.call(document.querySelectorAll('.chart[data-plot-id]'),
                                       function (el) { return !!el.__plot; });
  }

  function apply(el, plot) {
    var old = el.__plot;
    if (old && old._spectrum) plot._spectrum = old._spectrum;
    el.__plot = plot;
    var chart = el.__rezgen;
    if (!chart || !chart.inst) return;
    var kind = chart.kind === old.kind || chart.kind === 'line' || chart.kind === 'multi' ? plot.kind : chart.kind;
    chart.plot = plot;
    chart.setKind(kind);
  }

  function fetchPlot(el, step) {
    var params = new URLSearchParams({ step: step });
    var host = R.host ? R.host() : '_';
    if (host !== '_') params.set('host', host);
    if (document.body.getAttribute('data-live') === 'true' && R.state.range) {
      params.set('start', String(R.state.range[0] / 1000));
      params.set('end', String(R.state.range[1] / 1000));
    }
    var root = document.body.getAttribute('data-root') || '';
    var url = root + 'api/plot/' + encodeURIComponent(document.body.getAttribute('data-route')) + '/' +
      encodeURIComponent(el.getAttribute('data-plot-id')) + '?' + params;
    return fetch(url).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error); return body; });
    });
  }

  R.setStep = function (step) {
    var select = document.getElementById('step-select');
    if (select) select.value = step;
    if (!step) {
      charts().forEach(function (el) { if (el.__autoPlot) { apply(el, el.__autoPlot); el.__autoPlot = null; } });
      return Promise.resolve();
    }
    var toggle = document.getElementById('live-toggle');
    if (toggle && toggle.getAttribute('aria-pressed') === 'true') toggle.click();
    return Promise.all(charts().map(function (el) {
      if (el.__plot.error) return null;
      return fetchPlot(el, step).then(function (plot) {
        if (!plot.levels || !plot.levels.length) return;
        if (!el.__autoPlot) el.__autoPlot = el.__plot;
        apply(el, plot);
      }, function (err) { if (window.console) console.warn('step ' + step + ': ' + err.message); });
    }));
  };

  document.addEventListener('DOMContentLoaded', function () {
    var served = location.protocol === 'http:' || location.protocol === 'https:';
    var toolbar = document.querySelector('.toolbar');
    if (!served || !toolbar || document.body.getAttribute('data-kind') !== 'section') return;
    var label = document.createElement('label');
    label.className = 'step-picker';
    label.title = 'Step between the points of every chart';
    var span = document.createElement('span');
    span.textContent = 'Step';
    var select = document.createElement('select');
    select.id = 'step-select';
    STEPS.forEach(function (s) {
      var o = document.createElement('option');
      o.value = s[0];
      o.textContent = s[1];
      select.appendChild(o);
    });
    select.addEventListener('change', function () { R.setStep(select.value); });
    label.appendChild(span);
    label.appendChild(select);
    toolbar.insertBefore(label, document.getElementById('theme-toggle'));
  });
})(window.REZGEN = window.REZGEN || {});
