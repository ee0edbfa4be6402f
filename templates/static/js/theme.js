/* Dark/light theme: applied as data-theme on <html> before the page paints (this script loads in <head>),
   kept in localStorage, and read back by the charts as CSS variables. Fires "rezgen:theme" on change. */
(function (R) {
  'use strict';
  var KEY = 'rezgen-theme';
  var root = document.documentElement;

  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }

  function initial() {
    var t = stored();
    if (t === 'dark' || t === 'light') return t;
    return window.matchMedia && window.matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
  }

  function cssVar(style, name) { return style.getPropertyValue(name).trim(); }

  R.theme = {
    get: function () { return root.getAttribute('data-theme') === 'light' ? 'light' : 'dark'; },
    set: function (t) {
      t = t === 'light' ? 'light' : 'dark';
      root.setAttribute('data-theme', t);
      try { localStorage.setItem(KEY, t); } catch (e) { /* storage disabled: the choice lasts for this page */ }
      document.dispatchEvent(new CustomEvent('rezgen:theme', { detail: t }));
    },
    toggle: function () { R.theme.set(R.theme.get() === 'dark' ? 'light' : 'dark'); },
    /* The chart colours of the current theme, from the CSS variables of rezgen.css. */
    colors: function () {
      var s = getComputedStyle(root);
      return {
        fg: cssVar(s, '--fg'), strong: cssVar(s, '--fg-strong'), muted: cssVar(s, '--muted'), faint: cssVar(s, '--faint'),
        accent: cssVar(s, '--accent'), panel: cssVar(s, '--panel'), border: cssVar(s, '--panel-border'),
        grid: cssVar(s, '--grid-line'), axis: cssVar(s, '--axis-line'), crosshair: cssVar(s, '--crosshair'),
        tooltipBg: cssVar(s, '--tooltip-bg'), tooltipBorder: cssVar(s, '--tooltip-border'),
        nullCell: cssVar(s, '--null-cell'), other: cssVar(s, '--other'),
        series: cssVar(s, '--series').split(/\s+/), pct: cssVar(s, '--pct').split(/\s+/),
        font: cssVar(s, '--font'), mono: cssVar(s, '--mono')
      };
    }
  };

  root.setAttribute('data-theme', initial());

  document.addEventListener('DOMContentLoaded', function () {
    var button = document.getElementById('theme-toggle');
    if (button) button.addEventListener('click', R.theme.toggle);
  });
})(window.REZGEN = window.REZGEN || {});
