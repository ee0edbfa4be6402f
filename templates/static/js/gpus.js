/* The GPU picker of a section whose payload has `gpus` (rezgen/pages/gpus.py, several GPUs): "All GPUs" or one
   GPU, by id and model. The charts that are not per-GPU then draw their twin for that GPU (`<id>@gpu<gpu>`): in
   the payload of a live page (where pushed points extend it), or in the GPU's data file of a static site, loaded
   when picked; "All GPUs" draws the section's own plots again. Names come from the data: they reach the page as
   text only. Loaded before page.js (see cgroups.js). */
(function (R) {
  'use strict';
  var sel = null; // the payload's picker: {ids, models, files, plots}
  var plots = {}; // the section's own plots by id
  var current = ''; // the GPU shown, '' for all
  var view = null;

  var register = R.register;
  R.register = function (key, payload) {
    var again = !!sel;
    if (payload && payload.gpus && payload.groups) {
      sel = payload.gpus;
      plots = {};
      payload.groups.forEach(function (g) { g.plots.forEach(function (p) { plots[p.id] = p; }); });
    }
    register(key, payload);
    // A live page's new data (another range): its charts get the new plots, then the pick applies again.
    if (again && current && payload && payload.gpus) setTimeout(function () { pick(current); }, 0);
  };

  function node(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function label(id) {
    var model = sel.models && sel.models[id];
    return 'GPU ' + id + (model ? ' · ' + model : '');
  }

  function build() {
    var content = document.getElementById('content');
    var first = content && content.querySelector('section.group');
    if (!first || view || !sel) return;
    var box = node('section', 'selector gpu-picker');
    box.id = 'gpu-picker';
    box.setAttribute('aria-label', 'Pick a GPU');
    var head = node('header', 'selector-head');
    head.appendChild(node('h2', 'group-title', 'GPUs'));
    var select = node('select', 'selector-select');
    select.id = 'gpu-select';
    select.setAttribute('aria-label', 'GPU shown');
    select.appendChild(option('', 'All GPUs (' + sel.ids.length + ')'));
    sel.ids.forEach(function (id) { select.appendChild(option(id, label(id))); });
    head.appendChild(select);
    var note = node('span', 'selector-count');
    head.appendChild(note);
    box.appendChild(head);
    box.appendChild(node('p', 'selector-help', 'A GPU picked here filters the charts that are not per-GPU.'));
    first.parentNode.insertBefore(box, first);
    view = { select: select, note: note };
    select.addEventListener('change', function () { pick(select.value); });
  }

  function option(value, text) {
    var o = node('option', null, text);
    o.value = value;
    return o;
  }

  function empty(plot) {
    return Object.assign({}, plot, { names: [], levels: [{ bucket: 1, t: [], values: [] }] });
  }

  function pick(gpu) {
    if (!sel) return Promise.resolve();
    var host = R.host ? R.host() : '_', file = gpu && sel.files ? sel.files[gpu] : null;
    var loading = file ? R.load(R.dataPath('data/{host}/gpus/' + file + '.js', host), host + '/gpus/' + file)
      : Promise.resolve(null);
    return loading.then(function (part) {
      current = gpu || '';
      sel.plots.forEach(function (id) {
        var el = document.querySelector('.chart[data-plot-id="' + CSS.escape(id) + '"]');
        if (!el || !plots[id]) return;
        var twin = !current ? plots[id] : part ? part.plots[id] : plots[id + '@gpu' + current];
        var plot = twin || empty(plots[id]);
        el.__plot = plot;
        var chart = el.__rezgen;
        if (!chart) return;
        chart.plot = plot;
        if (chart.visible === false) chart.stale = true;
        else chart.render();
      });
      if (view) {
        view.select.value = current;
        view.note.textContent = current ? 'showing ' + label(current) : '';
      }
      document.dispatchEvent(new CustomEvent('rezgen:gpus', { detail: { gpu: current } }));
    }, function (err) {
      if (view) view.note.textContent = 'Cannot load this GPU\'s data: ' + err.message;
    });
  }

  R.gpus = { picked: function () { return current; }, pick: pick };

  document.addEventListener('DOMContentLoaded', function () {
    if (sel) build();
    else document.addEventListener('rezgen:data', function () { build(); });
  });
})(window.REZGEN = window.REZGEN || {});
