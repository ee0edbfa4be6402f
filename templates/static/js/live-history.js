/* Live pages: what the server keeps on disk (`serve --live --data-dir`), from each status: how far back history
   goes, and a data dir that cannot be written (live mode then runs from memory), as one line below the agents'
   alert. */
(function (R) {
  'use strict';
  var L = R.live = R.live || {};

  L.showHistory = function (history) {
    var box = document.getElementById('live-alert');
    if (!box) return;
    var el = document.getElementById('live-history');
    if (!el) {
      el = document.createElement('div');
      el.id = 'live-history';
      el.className = 'live-history';
      el.setAttribute('role', 'status');
      el.style.cssText = 'font-size: 12px; color: var(--muted); margin: 0 0 8px;';
      box.parentNode.insertBefore(el, box.nextSibling);
    }
    el.hidden = !history;
    if (!history) return;
    var text = history.oldest_ms ? 'History on disk since ' + R.units.time(history.oldest_ms, true) +
      ' (kept ' + R.units.duration(history.keep_ms) + ')' : 'History on disk: none yet';
    el.setAttribute('data-history-state', history.error ? 'error' : 'ok');
    el.style.color = history.error ? 'var(--danger, #c0392b)' : 'var(--muted)';
    el.textContent = history.error ? String(history.error) : text;
    el.title = 'Data dir: ' + String(history.dir);
  };
})(window.REZGEN = window.REZGEN || {});
