/* Data files are classic scripts (fetch() does not work from file://). Each one calls
   REZGEN.register("<host>/<route>", payload); load() inserts the <script src> and resolves with that payload. */
(function (R) {
  'use strict';
  var payloads = new Map();
  var pending = new Map();
  var versions = new Map();  // key -> how many times a payload was registered under it
  var lastRegistered = null;

  R.register = function (key, payload) {
    payloads.set(String(key), payload);
    versions.set(String(key), (versions.get(String(key)) || 0) + 1);
    lastRegistered = payload;
    document.dispatchEvent(new CustomEvent('rezgen:data', { detail: { key: String(key) } }));
  };

  R.payload = function (key) { return payloads.get(key); };

  /* load(src, key) -> Promise of the payload registered under key (or, failing that, whatever the script
     registered: a script's load event fires right after it ran, so that is the file's own payload). */
  R.load = function (src, key) {
    if (key && payloads.has(key)) return Promise.resolve(payloads.get(key));
    return fetchScript(src, key);
  };

  /* Load src again even if a payload is cached under key (live pages re-fetch a section for a new range); the
     cached one stays readable until the new one has come. */
  R.reload = function (src, key) {
    pending.delete(src);
    return fetchScript(src, key);
  };

  function fetchScript(src, key) {
    if (pending.has(src)) return pending.get(src);
    var before = versions.get(key);
    var promise = new Promise(function (resolve, reject) {
      var script = document.createElement('script');
      script.src = src;
      lastRegistered = null;
      script.onload = function () {
        var payload = key && versions.get(key) !== before ? payloads.get(key) : lastRegistered;
        script.remove();
        if (payload) resolve(payload);
        else reject(new Error(src + ' holds no data'));
      };
      script.onerror = function () {
        script.remove();
        reject(new Error('cannot load ' + src));
      };
      document.head.appendChild(script);
    });
    pending.set(src, promise);
    promise.catch(function () { pending.delete(src); });
    return promise;
  }

  /* A data path template ("data/{host}/cpu.js") for a host; "_" stands for the only host. */
  R.dataPath = function (template, host) {
    var root = document.body.getAttribute('data-root') || '';
    return root + template.split('{host}').join(host === '_' ? '_' : encodeURIComponent(host).replace(/%2F/gi, '/'));
  };
})(window.REZGEN = window.REZGEN || {});
