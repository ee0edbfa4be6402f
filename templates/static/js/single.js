/* The single-file report (`rezgen build --single-file`, site/single.py): every page of the site in one HTML file,
   each section a tab. Inlined right after data.js:
   - data scripts are inline blocks <script type="text/x-rezgen-data" data-src="data/_/cpu.js"> that run only when
     R.load asks for their src (a script element with the block's text runs at once), so opening the report runs
     only the first section's data;
   - the sidebar's links switch tabs: the charts are disposed, the section's markup (a <template data-href>) takes
     the content's place, and its data is rendered by page.js's R.renderSection.
   Nothing is requested from anywhere: scripts, styles and data are all in the file. */
(function (R) {
  'use strict';
  var blocks = null;
  document.documentElement.setAttribute('data-single-file', ''); // no per-chart page to open (viewer.css)

  function block(src) {
    if (!blocks) {
      blocks = new Map();
      document.querySelectorAll('script[type="text/x-rezgen-data"]').forEach(function (el) {
        blocks.set(el.getAttribute('data-src'), el);
      });
    }
    var root = document.body.getAttribute('data-root') || '';
    return blocks.get(src.indexOf(root) === 0 ? src.slice(root.length) : src);
  }

  var load = R.load;
  R.load = function (src, key) {
    var inline = block(src);
    if (!inline) return Promise.reject(new Error('this report does not hold ' + src));
    if (key && R.payload(key)) return Promise.resolve(R.payload(key));
    var script = document.createElement('script');
    script.textContent = inline.textContent;
    document.head.appendChild(script); // runs now: REZGEN.register(key, payload)
    script.remove();
    var payload = key ? R.payload(key) : null;
    return payload ? Promise.resolve(payload) : load.call(R, src, key);
  };

  function show(template, link) {
    R.state.charts.slice().forEach(function (chart) { R.disposeChart(chart); });
    if (R.releaseTooltips) R.releaseTooltips();
    var body = document.body, content = document.getElementById('content');
    content.textContent = '';
    content.appendChild(template.content.cloneNode(true));
    body.setAttribute('data-route', template.getAttribute('data-route'));
    body.setAttribute('data-kind', template.getAttribute('data-kind'));
    body.setAttribute('data-data', template.getAttribute('data-data'));
    body.className = 'kind-' + template.getAttribute('data-kind');
    document.querySelector('.page-title').textContent = template.getAttribute('data-title');
    document.querySelectorAll('.nav a[data-nav]').forEach(function (a) { a.removeAttribute('aria-current'); });
    if (link) link.setAttribute('aria-current', 'page');
    var timebar = document.getElementById('timebar');
    if (timebar) timebar.hidden = true;
    window.scrollTo(0, 0);
    var data = template.getAttribute('data-data');
    if (!data) return;
    var host = R.host();
    R.load(R.dataPath(data, host), host + '/' + template.getAttribute('data-route')).then(R.renderSection,
      function (err) {
        var status = document.getElementById('status');
        if (status) { status.textContent = 'Could not load this section\'s data: ' + err.message; status.classList.add('error'); }
      });
  }

  document.addEventListener('click', function (event) {
    var link = event.target.closest && event.target.closest('a[data-nav]');
    if (!link) return;
    var href = (link.getAttribute('href') || '').split('#')[0].split('?')[0];
    var template = document.querySelector('template[data-href="' + CSS.escape(href) + '"]');
    if (!template) return;
    event.preventDefault();
    event.stopPropagation();
    show(template, link);
  });
})(window.REZGEN = window.REZGEN || {});
