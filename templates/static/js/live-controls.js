/* Live pages: the controls — live/pause, range (last 5m … 24h or a custom from/to), refresh rate — wired to
   live.js. Zooming into a chart pauses (the window would otherwise slide away under the zoom); zooming back out,
   Resume, or a new range goes back to live. */
(function (R) {
  'use strict';
  var L = R.live = R.live || {};
  var S = R.state;
  var st = L.st;

  function $(id) { return document.getElementById(id); }
  L.showToggle = showToggle;
  function showToggle() {
    var button = $('live-toggle');
    if (!button) return;
    var text = button.querySelector('.live-toggle-text');
    var waiting = st.pending.length;
    button.disabled = L.fixed();
    button.setAttribute('aria-pressed', String(!st.paused && !L.fixed()));
    document.body.classList.toggle('live-paused', st.paused || L.fixed());
    if (L.fixed()) { text.textContent = 'Fixed range'; button.title = 'A custom range with an end; pick a "last …" range to follow live'; return; }
    text.textContent = st.paused ? (waiting ? 'Resume · ' + waiting + ' new' : 'Resume') : 'Live';
    button.title = st.paused ? (st.reason === 'zoom' ? 'Paused while zoomed: resume returns to the whole range, live' :
      'Paused: points keep arriving; resume applies them') : 'Pause: freeze the view (points keep arriving)';
  }

  function pause(reason) {
    st.paused = true;
    st.reason = reason || 'user';
    showToggle();
  }

  function resume() {
    st.paused = false;
    st.reason = null;
    if (S.view) { S.view = null; R.setHashWindow(null); }
    L.apply(true);
    showToggle();
  }

  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function localInput(ms) {
    var d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' +
      pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function openCustom(show) {
    var form = $('live-custom');
    form.hidden = !show;
    if (!show) return;
    var newest = st.newest || Date.now();
    var span = st.custom ? null : L.duration(st.range);
    form.elements.from.value = localInput(st.custom ? st.custom.from : newest - span);
    form.elements.to.value = st.custom && st.custom.to !== null ? localInput(st.custom.to) : '';
    form.elements.from.min = form.elements.to.min = localInput(newest - L.cfg().retention_ms);
    form.elements.from.max = form.elements.to.max = localInput(newest);
    $('live-custom-error').textContent = '';
    form.elements.from.focus();
  }

  function submitCustom(event) {
    event.preventDefault();
    var form = $('live-custom'), error = $('live-custom-error');
    var from = new Date(form.elements.from.value).getTime();
    var to = form.elements.to.value ? new Date(form.elements.to.value).getTime() : null;
    var newest = st.newest || Date.now(), oldest = newest - L.cfg().retention_ms;
    var problem = !isFinite(from) ? 'Enter a start time.' :
      from < oldest - 1000 ? 'The server keeps ' + R.units.duration(L.cfg().retention_ms) + ': start at ' + R.units.time(oldest, true) + ' or later.' :
      to !== null && !isFinite(to) ? 'The end time is not valid.' :
      to !== null && to - from < 5 * st.step ? 'The end must be at least ' + R.units.duration(5 * st.step) + ' after the start.' :
      from >= newest - 5 * st.step ? 'The start must be before ' + R.units.time(newest - 5 * st.step, true) + '.' : '';
    if (problem) { error.textContent = problem; return; }
    var before = st.custom;
    st.custom = { from: from, to: to !== null && to < newest ? to : null };
    form.hidden = true;
    showToggle();
    L.reloadData('the custom range').catch(function () { st.custom = before; showToggle(); syncRangeSelect(); });
  }

  function syncRangeSelect() { var select = $('live-range'); if (select) select.value = st.custom ? 'custom' : st.range; }

  L.controls = controls;
  function controls() {
    var bar = $('livebar'), toolbar = document.querySelector('.toolbar'), theme = $('theme-toggle');
    if (bar && toolbar) { toolbar.insertBefore(bar, theme && theme.parentNode === toolbar ? theme : null); bar.hidden = false; }
    var alert = $('live-alert'), content = $('content');
    if (alert && content) content.insertBefore(alert, content.firstChild);
    var section = document.body.getAttribute('data-kind') === 'section';
    document.querySelectorAll('.live-section-only').forEach(function (el) { el.hidden = !section; });
    if (!section) return;

    var select = $('live-range'), refresh = $('live-refresh'), toggle = $('live-toggle'), form = $('live-custom');
    syncRangeSelect();
    refresh.value = String(st.refresh);
    select.addEventListener('change', function () {
      if (select.value === 'custom') { openCustom(true); return; }
      var before = st.range, beforeCustom = st.custom;
      st.range = select.value;
      st.custom = null;
      L.store(L.RANGE_KEY, st.range);
      form.hidden = true;
      showToggle();
      L.reloadData(L.rangeName(st.range)).catch(function () { st.range = before; st.custom = beforeCustom; syncRangeSelect(); showToggle(); });
    });
    refresh.addEventListener('change', function () {
      st.refresh = Number(refresh.value) || L.cfg().default_refresh_ms;
      L.store(L.REFRESH_KEY, String(st.refresh));
      L.schedule();
      L.apply(false);
    });
    toggle.addEventListener('click', function () { if (st.paused) resume(); else pause('user'); });
    form.addEventListener('submit', submitCustom);
    $('live-custom-cancel').addEventListener('click', function () { form.hidden = true; syncRangeSelect(); });
    document.addEventListener('keydown', function (e) { if (e.key === 'Escape' && !form.hidden) { form.hidden = true; syncRangeSelect(); } });
    /* Zooming into a chart pauses (the window would otherwise slide away); zooming out resumes. */
    R.onZoom(function () {
      if (!st.payload || L.fixed()) return;
      if (S.view && !st.paused) pause('zoom');
      else if (!S.view && st.paused && st.reason === 'zoom') resume();
    });
    showToggle();
  }
})(window.REZGEN = window.REZGEN || {});
