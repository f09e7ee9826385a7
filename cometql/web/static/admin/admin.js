/* CometQL admin dashboard: live numbers over the server's WebSocket, polling as the fallback (no libraries).
 *
 * The page fetches a short-lived token from /admin/token (this page's Basic credentials) and opens
 * /admin/live?token=..., which pushes the /admin/stats JSON at once and then every second. While the
 * socket cannot be opened, or after it closed, the page polls /admin/stats every 2 s and retries the
 * socket with jittered exponential backoff. The #mode indicator says which is in use: "live" or "polling".
 *
 * Every value from the server is written with textContent: channel names and error
 * messages come from clients and must never be interpreted as HTML. */
"use strict";
(function () {
  var POLL_MS = 2000;
  var RETRY_MIN_MS = 1000, RETRY_MAX_MS = 30000;
  var SVG_NS = "http://www.w3.org/2000/svg";
  // location.origin has no user:password part, so the URL is valid even when the page
  // was opened as http://user:password@host/admin; the browser re-sends its Basic credentials.
  var STATS_URL = location.origin + "/admin/stats";
  var TOKEN_URL = location.origin + "/admin/token";
  var LIVE_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/admin/live";

  function $(id) { return document.getElementById(id); }
  function text(id, value) { $(id).textContent = String(value); }
  function fmtTime(unix) { return new Date(unix * 1000).toLocaleTimeString(); }
  function fmtUptime(s) {
    s = Math.floor(s);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return "up " + (d ? d + "d " : "") + h + "h " + m + "m " + (s % 60) + "s";
  }

  function fillTable(id, rows, columns, emptyText) {
    var body = $(id).tBodies[0];
    body.textContent = "";
    if (!rows.length) {
      var tr = body.insertRow(), td = tr.insertCell();
      td.colSpan = columns.length; td.className = "empty"; td.textContent = emptyText;
      return;
    }
    rows.forEach(function (row) {
      var tr = body.insertRow();
      columns.forEach(function (col) {
        var td = tr.insertCell();
        td.textContent = String(col.value(row));
        if (col.num) td.className = "num";
      });
    });
  }

  function svg(tag, attrs, parent) {
    var el = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    parent.appendChild(el);
    return el;
  }

  function drawChart(points) {
    var chart = $("chart"), W = 800, H = 220, L = 44, R = 10, T = 10, B = 24;
    chart.textContent = "";
    var maxY = 1;
    points.forEach(function (p) { maxY = Math.max(maxY, p.users, p.sessions); });
    maxY = Math.ceil(maxY * 1.1);
    var t1 = points.length ? points[points.length - 1].time : Date.now() / 1000;
    var t0 = t1 - 3600;
    function x(t) { return L + (W - L - R) * Math.max(0, t - t0) / 3600; }
    function y(v) { return H - B - (H - T - B) * v / maxY; }
    for (var i = 0; i <= 4; i++) {
      var v = Math.round(maxY * i / 4);
      svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), "class": "axis" }, chart);
      svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "class": "tick" }, chart).textContent = String(v);
    }
    for (var m = 0; m <= 60; m += 15) {
      var tx = x(t0 + m * 60);
      var anchor = m === 0 ? "start" : m === 60 ? "end" : "middle";
      svg("text", { x: tx, y: H - 6, "text-anchor": anchor, "class": "tick" }, chart).textContent =
        m === 60 ? "now" : "-" + (60 - m) + "m";
    }
    ["sessions", "users"].forEach(function (key) {
      var coords = points.map(function (p) { return x(p.time).toFixed(1) + "," + y(p[key]).toFixed(1); });
      if (coords.length === 1) coords.push((W - R) + "," + coords[0].split(",")[1]);
      svg("polyline", { points: coords.join(" "), "class": key, "data-series": key }, chart);
    });
  }

  function render(s) {
    text("online-users", s.online.users);
    text("online-sessions", s.online.sessions);
    var tr = s.online.transports || {};
    text("online-transports", "websocket " + (tr.websocket || 0) + " · long-poll " + (tr.longpoll || 0));
    text("mysql-connections", s.online.mysql_connections);
    text("published-ps", s.messages.published_per_second.toFixed(1));
    text("delivered-ps", s.messages.delivered_per_second.toFixed(1) + " deliveries / s");
    text("channel-count", s.channel_count);
    text("subscriptions", s.subscriptions + " subscriptions");
    text("queue-depth", s.messages.queue_depth);
    text("totals", s.messages.published + " published · " + s.messages.delivered + " delivered · "
      + s.messages.queued + " queued");
    text("uptime", fmtUptime(s.uptime));
    drawChart(s.online_history);
    fillTable("channels", s.channels, [
      { value: function (c) { return c.dev_id; } },
      { value: function (c) { return c.channel; } },
      { value: function (c) { return c.subscribers; }, num: true }
    ], "no channel has subscribers");
    fillTable("errors", s.errors, [
      { value: function (e) { return fmtTime(e.time); } },
      { value: function (e) { return e.code; }, num: true },
      { value: function (e) { return e.message; } }
    ], "no errors");
  }

  function setStatus(label, cls) {
    var el = $("status");
    el.textContent = label;
    el.className = "status " + cls;
  }

  function setMode(mode, why) {
    var el = $("mode");
    el.textContent = mode;
    el.className = "mode " + mode;
    el.title = why || "";
  }

  function updated() { return "updated " + new Date().toLocaleTimeString(); }

  // ---- live: one WebSocket at a time, opened with a fresh token

  var live = false;        // a socket is open and delivering
  var retryMs = RETRY_MIN_MS;

  function connectLive() {
    fetch(TOKEN_URL, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("token: HTTP " + r.status);
        return r.json();
      })
      .then(function (t) { openSocket(LIVE_URL + "?token=" + encodeURIComponent(t.token)); })
      .catch(function (err) { liveLost(err.message); });
  }

  function openSocket(url) {
    var sock;
    try { sock = new WebSocket(url); } catch (err) { liveLost(String(err && err.message || err)); return; }
    sock.onmessage = function (ev) {
      if (!live) { live = true; retryMs = RETRY_MIN_MS; setMode("live", "pushed over " + LIVE_URL); }
      render(JSON.parse(ev.data));
      setStatus(updated(), "ok");
    };
    sock.onclose = function (ev) {
      liveLost("socket closed (" + ev.code + (ev.reason ? ": " + ev.reason : "") + ")");
    };
  }

  function liveLost(why) {
    live = false;
    setMode("polling", why);
    startPolling();
    var delay = retryMs * (0.5 + Math.random() / 2);  // jitter: many open dashboards do not retry in step
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    setTimeout(connectLive, delay);
  }

  // ---- fallback: poll /admin/stats while there is no live socket

  var polling = false;  // a poll loop is running: at most one, however often the socket fails

  function startPolling() {
    if (polling) return;
    polling = true;
    poll();
  }

  function poll() {
    if (live) { polling = false; return; }  // the socket took over: the loop ends here
    fetch(STATS_URL, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (s) {
        if (live) return;  // the socket took over while this request was out: its numbers are newer
        render(s);
        setStatus(updated(), "ok");
      })
      .catch(function (err) { if (!live) setStatus("disconnected: " + err.message, "bad"); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  connectLive();
})();
