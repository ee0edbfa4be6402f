/* Live pages: the one SSE stream of a page, and the connection indicator.

   EventSource reconnects by itself (sending Last-Event-ID, so the server resumes after the last step we got);
   when the browser gives up (a non-stream answer such as a 4xx/5xx), we open a new one after a backoff with
   `since=` the last step. The indicator (data-connection-state) is "connected" while the stream is open and
   every agent reports connected, "reconnecting" while the stream retries or an agent does, and "disconnected"
   once the stream has been down for DOWN_MS or every agent is disconnected. The server sends agent status with
   each batch of points; when points stop coming (a dead agent), /api/status is polled instead. Agent errors are
   shown in the page as text (they come from the network: never parsed as HTML). With several agents the indicator
   describes the host being viewed (the agents whose `node` is R.host()); another host's outage is a separate,
   smaller notice. */
(function (R) {
  'use strict';
  var L = R.live = R.live || {};
  var DOWN_MS = 10000;
  var POLL_MS = 3000;

  var conn = {
    source: null, url: null, open: false, downSince: null, retry: null, backoff: 1000,
    lastId: null, lastPoints: null, lastEvent: null, agents: null, handlers: null, streaming: false
  };
  L.connection = conn;

  function parse(event) {
    try { return JSON.parse(event.data); } catch (e) { return null; }
  }

  function url() {
    var u = conn.url;
    return conn.lastId === null ? u : u + (u.indexOf('?') < 0 ? '?' : '&') + 'since=' + encodeURIComponent(conn.lastId);
  }

  /* Open the page's stream: `base` without since=; handlers {points(data), reset(), status(data)}. */
  L.connect = function (base, since, handlers) {
    conn.url = base;
    conn.lastId = since === undefined || since === null ? null : String(since);
    conn.handlers = handlers;
    conn.streaming = true;
    conn.downSince = Date.now();
    open();
    setInterval(poll, POLL_MS);
    setInterval(L.showConnection, 1000);
    L.showConnection();
  };

  function open() {
    clearTimeout(conn.retry);
    var es = conn.source = new EventSource(url());
    es.onopen = function () {
      conn.open = true;
      conn.downSince = null;
      conn.backoff = 1000;
      L.showConnection();
    };
    es.onerror = function () {
      conn.open = false;
      if (conn.downSince === null) conn.downSince = Date.now();
      if (es.readyState === EventSource.CLOSED) { // the browser will not retry this one
        es.close();
        conn.retry = setTimeout(open, conn.backoff);
        conn.backoff = Math.min(conn.backoff * 2, 15000);
      }
      L.showConnection();
    };
    es.addEventListener('points', function (event) {
      var data = parse(event);
      if (!data) return;
      if (event.lastEventId) conn.lastId = event.lastEventId;
      conn.lastPoints = conn.lastEvent = Date.now();
      conn.handlers.points(data);
      L.showConnection();
    });
    es.addEventListener('status', function (event) {
      var data = parse(event);
      conn.lastEvent = Date.now();
      if (data) status(data);
    });
    es.addEventListener('reset', function () {
      conn.lastEvent = Date.now();
      conn.handlers.reset();
    });
  }

  /* Agent status from /api/status when the stream has been quiet (no points means no status either), and on
     pages without a stream (metrics, system). */
  function poll() {
    var quiet = !conn.streaming || !conn.lastEvent || Date.now() - conn.lastEvent > Math.max(POLL_MS, 3 * L.intervalMs());
    if (!quiet || document.hidden) return;
    var root = document.body.getAttribute('data-root') || '';
    fetch(root + 'api/status', { cache: 'no-store' }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (data) {
      if (data) status(data);
      if (!conn.streaming) { conn.open = true; conn.downSince = null; L.showConnection(); }
    }, function () {
      if (!conn.streaming) {
        conn.open = false;
        if (conn.downSince === null) conn.downSince = Date.now();
        L.showConnection();
      }
    });
  }

  /* Pages without a section (metrics, system): the indicator alone, from /api/status. */
  L.watchStatus = function () {
    conn.downSince = Date.now();
    poll();
    setInterval(poll, POLL_MS);
    setInterval(L.showConnection, 1000);
    L.showConnection();
  };

  function status(data) {
    if (Array.isArray(data.agents)) conn.agents = data.agents;
    if (!conn.streaming) {
      var newest = 0;
      (conn.agents || []).forEach(function (a) { if (a.last_success_ms > newest) newest = a.last_success_ms; });
      if (newest) conn.lastPoints = Math.min(newest, Date.now());
    }
    showAgents();
    if (data.remote_write) showRemoteWrite(data.remote_write);
    if (L.showHistory && 'history' in data) L.showHistory(data.history);
    L.showConnection();
    if (conn.handlers && conn.handlers.status) conn.handlers.status(data);
  }

  /* The agents of the host this page shows, and the others. */
  function viewed() {
    var all = conn.agents || [], host = R.host ? R.host() : '_';
    if (host === '_') return all;
    var mine = all.filter(function (a) { return a.node === host; });
    return mine.length ? mine : all;
  }
  function others() {
    var mine = viewed();
    return (conn.agents || []).filter(function (a) { return mine.indexOf(a) < 0; });
  }

  L.state = function () {
    var agents = viewed();
    var down = !conn.open && conn.downSince !== null && Date.now() - conn.downSince > DOWN_MS;
    if (down || (agents.length && agents.every(function (a) { return a.state === 'disconnected'; }))) return 'disconnected';
    if (!conn.open || !conn.agents || agents.some(function (a) { return a.state !== 'connected'; })) return 'reconnecting';
    return 'connected';
  };

  var LABELS = { connected: 'Connected', reconnecting: 'Reconnecting', disconnected: 'Disconnected' };

  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }

  L.showConnection = function () {
    var el = document.getElementById('live-connection');
    if (!el) return;
    var state = L.state();
    var label = LABELS[state];
    if (state === 'reconnecting' && !conn.open && conn.lastEvent === null && !conn.agents) label = 'Connecting';
    el.setAttribute('data-connection-state', state);
    el.querySelector('.live-conn-state').textContent = label;
    var age = el.querySelector('.live-conn-age');
    var since = conn.lastPoints;
    age.textContent = since ? 'last update ' + ago(Date.now() - since) + ' ago' : 'waiting for data';
    var stale = since && Date.now() - since > Math.max(5000, 5 * L.intervalMs());
    el.classList.toggle('stale', !!stale);
    el.title = state === 'connected' ? 'Receiving points from ' + agentCount() :
      state === 'reconnecting' ? (conn.open ? 'An agent is unreachable; retrying' : 'The stream to the server dropped; retrying') :
      (conn.open ? 'No agent is reachable' : 'The server has been unreachable for a while; retrying');
  };

  function agentCount() {
    var n = viewed().length;
    return n === 1 ? 'the agent' : n + ' agents';
  }

  /* The panel listing agents that are not connected, with their error text. */
  function showAgents() {
    var box = document.getElementById('live-alert');
    if (!box) return;
    var bad = viewed().filter(function (a) { return a.state !== 'connected'; });
    box.hidden = !bad.length;
    box.textContent = '';
    showOthers(box);
    bad.forEach(function (a) {
      var line = document.createElement('div');
      line.className = 'live-alert-line live-alert-' + (a.state === 'disconnected' ? 'down' : 'retry');
      var head = document.createElement('strong');
      head.textContent = String(a.url || 'agent') + ' ' + (a.state === 'disconnected' ? 'disconnected' : 'reconnecting');
      line.appendChild(head);
      var text = a.error ? String(a.error) : '';
      if (a.last_success_ms) text += (text ? ' · ' : '') + 'last snapshot ' + ago(Date.now() - a.last_success_ms) + ' ago';
      if (text) {
        var detail = document.createElement('span');
        detail.textContent = text;
        line.appendChild(detail);
      }
      box.appendChild(line);
    });
  }

  /* Other hosts' agents that are not connected: one small line below the alert, not the page's state. */
  function showOthers(box) {
    var el = document.getElementById('live-other-hosts');
    if (!el) {
      el = document.createElement('div');
      el.id = 'live-other-hosts';
      el.className = 'live-other-hosts';
      el.setAttribute('role', 'status');
      el.style.cssText = 'font-size: 12px; color: var(--muted); margin: 0 0 8px;';
      box.parentNode.insertBefore(el, box.nextSibling);
    }
    var bad = others().filter(function (a) { return a.state !== 'connected'; });
    el.hidden = !bad.length;
    el.textContent = bad.length ? 'Other hosts: ' + bad.map(function (a) {
      return String(a.node || a.url) + ' ' + (a.state === 'disconnected' ? 'disconnected' : 'reconnecting');
    }).join(' · ') : '';
  }

  /* --remote-write targets: one line each (connected, lag, queued and dropped samples) below the alerts. */
  function showRemoteWrite(targets) {
    var el = document.getElementById('live-remote-write'), box = document.getElementById('live-alert');
    if (!el && box) {
      el = document.createElement('div');
      el.id = 'live-remote-write';
      el.setAttribute('role', 'status');
      el.style.cssText = 'font-size: 12px; color: var(--muted); margin: 0 0 8px;';
      box.parentNode.insertBefore(el, box.nextSibling);
    }
    if (!el) return;
    el.textContent = '';
    targets.forEach(function (t) {
      var line = document.createElement('div');
      line.textContent = 'Remote write ' + String(t.url) + ': ' + (t.connected ? 'connected' : 'unreachable') +
        ' · lag ' + Number(t.lag_s).toFixed(1) + ' s · ' + t.queued + ' samples queued · ' + t.dropped + ' dropped' +
        (t.rejected ? ' · ' + t.rejected + ' rejected' : '') + (t.error ? ' · ' + String(t.error) : '');
      if (!t.connected || t.dropped || t.rejected) line.style.color = 'var(--bad)';
      el.appendChild(line);
    });
  }
})(window.REZGEN = window.REZGEN || {});
