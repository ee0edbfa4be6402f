/* Navigation state that outlives a page: the chosen host (?host=, remembered in localStorage) and the zoom
   window (#from=<ms>&to=<ms>), both carried along by the sidebar links. Also the narrow-screen drawer. */
(function (R) {
  'use strict';
  var HOST_KEY = 'rezgen-host';

  function hostOptions() {
    var select = document.getElementById('host-select');
    return select ? Array.prototype.map.call(select.options, function (o) { return o.value; }) : [];
  }

  /* The host whose data this page shows: "_" when the recording has a single host. */
  R.host = function () {
    var hosts = hostOptions();
    if (hosts.length < 2) return '_';
    var wanted = new URLSearchParams(location.search).get('host');
    if (hosts.indexOf(wanted) < 0) {
      try { wanted = localStorage.getItem(HOST_KEY); } catch (e) { wanted = null; }
    }
    return hosts.indexOf(wanted) >= 0 ? wanted : hosts[0];
  };

  /* The zoom window in the URL hash, or null. */
  R.hashWindow = function () {
    var params = new URLSearchParams(location.hash.slice(1));
    var from = Number(params.get('from')), to = Number(params.get('to'));
    return params.has('from') && params.has('to') && isFinite(from) && isFinite(to) && to > from ? [from, to] : null;
  };

  R.setHashWindow = function (win) {
    var hash = win ? '#from=' + Math.round(win[0]) + '&to=' + Math.round(win[1]) : '';
    if (hash !== location.hash && !(hash === '' && location.hash === '')) {
      history.replaceState(null, '', location.pathname + location.search + (hash || ''));
    }
  };

  function carry(link) {
    var href = link.getAttribute('href');
    if (!href) return;
    var base = href.split('#')[0].split('?')[0];
    var query = hostOptions().length > 1 ? '?host=' + encodeURIComponent(R.host()) : '';
    link.setAttribute('href', base + query + location.hash);
  }

  document.addEventListener('DOMContentLoaded', function () {
    var select = document.getElementById('host-select');
    if (select) {
      select.value = R.host();
      select.addEventListener('change', function () {
        try { localStorage.setItem(HOST_KEY, select.value); } catch (e) { /* the URL carries it anyway */ }
        location.search = '?host=' + encodeURIComponent(select.value);
      });
    }
    // The System page of a multi-node recording holds every host's machine: show the chosen host's.
    var views = document.querySelectorAll('.host-system[data-host]'), host = R.host();
    var chosen = Array.prototype.some.call(views, function (el) { return el.getAttribute('data-host') === host; });
    if (chosen) views.forEach(function (el) { el.hidden = el.getAttribute('data-host') !== host; });
    document.addEventListener('click', function (event) {
      var link = event.target.closest && event.target.closest('a[data-nav]');
      if (link) carry(link);
    }, true);

    var body = document.body;
    var menu = document.getElementById('menu-toggle');
    var scrim = document.getElementById('scrim');
    function drawer(open) {
      body.classList.toggle('nav-open', open);
      if (scrim) scrim.hidden = !open;
      if (menu) menu.setAttribute('aria-expanded', String(open));
    }
    if (menu) menu.addEventListener('click', function () { drawer(!body.classList.contains('nav-open')); });
    if (scrim) scrim.addEventListener('click', function () { drawer(false); });
    document.addEventListener('keydown', function (e) { if (e.key === 'Escape') drawer(false); });
  });
})(window.REZGEN = window.REZGEN || {});
