/* The What-changed page: numbers formatted in their unit, and the section filter (kept in the URL as ?section=). */
(function (R) {
  'use strict';
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('td[data-value]').forEach(function (td) {
      var v = Number(td.getAttribute('data-value'));
      td.title = String(v);
      td.textContent = R.units.format(td.getAttribute('data-unit') || '', v);
    });
    document.querySelectorAll('td.change[data-change]').forEach(function (td) {
      var v = Number(td.getAttribute('data-change'));
      if (td.getAttribute('data-change') !== '') td.classList.add(v > 0 ? 'up' : v < 0 ? 'down' : 'same');
    });
    var select = document.getElementById('changes-section');
    if (!select) return;
    function apply() {
      var route = select.value, rank = 0;
      document.querySelectorAll('#changes tbody tr').forEach(function (tr) {
        var shown = !route || tr.getAttribute('data-route') === route;
        tr.hidden = !shown;
        if (shown) tr.querySelector('.rank').textContent = String(++rank);
      });
    }
    var wanted = new URLSearchParams(location.search).get('section');
    if (wanted && select.querySelector('option[value="' + CSS.escape(wanted) + '"]')) select.value = wanted;
    select.addEventListener('change', function () {
      var url = new URL(location.href);
      if (select.value) url.searchParams.set('section', select.value); else url.searchParams.delete('section');
      history.replaceState(null, '', url.search ? url.pathname + url.search : url.pathname);
      apply();
    });
    apply();
  });
})(window.REZGEN = window.REZGEN || {});
