/* Live reload for `rezgen serve`: one SSE stream tells the page when the site was rebuilt (reload) or when a
   rebuild failed (show why, keep the current page). After a reconnect, a changed epoch means we missed a
   rebuild while disconnected, so reload then too. */
(function () {
  "use strict";
  var epoch = null;
  var banner = null;

  function show(message) {
    if (!banner) {
      banner = document.createElement("div");
      banner.className = "rezgen-banner";
      banner.setAttribute("role", "alert");
      document.body.appendChild(banner);
    }
    banner.textContent = "Rebuild failed: " + message + " (showing the last good build)";
  }

  function hide() {
    if (banner) { banner.remove(); banner = null; }
  }

  function state(event) {
    try { return JSON.parse(event.data); } catch (e) { return {}; }
  }

  var source = new EventSource("/_rezgen/reload");
  source.addEventListener("hello", function (event) {
    var s = state(event);
    if (epoch !== null && s.epoch !== epoch) { window.location.reload(); return; }
    epoch = s.epoch;
    if (s.error) { show(s.error); } else { hide(); }
  });
  source.addEventListener("reload", function () { window.location.reload(); });
  source.addEventListener("error", function (event) {
    if (event.data) { show(state(event).error || "unknown error"); }  // a server "error" event, not a dropped link
  });
})();
