/* A live section page's data, asked for while ECharts loads: the same URL live.js loads at DOMContentLoaded (the
   range from ?range= or the one kept in localStorage, when the page offers it), hinted as a preload, so a long
   range's data is computed while the page's scripts compile instead of after. */
(function (R) {
  'use strict';
  var script = document.currentScript, body = document.body;
  if (!script || !body || body.getAttribute('data-kind') !== 'section' || !body.getAttribute('data-data')) return;
  var offered = (script.getAttribute('data-ranges') || '').split(' ');
  var wanted;
  try { wanted = new URLSearchParams(location.search).get('range') || localStorage.getItem('rezgen-live-range'); }
  catch (e) { wanted = null; }
  if (!wanted || offered.indexOf(wanted) < 0) wanted = script.getAttribute('data-default');
  var link = document.createElement('link');
  link.rel = 'preload';
  link.as = 'script';
  link.href = R.dataPath(body.getAttribute('data-data'), R.host()) + '?range=' + encodeURIComponent(wanted);
  document.head.appendChild(link);
})(window.REZGEN = window.REZGEN || {});
