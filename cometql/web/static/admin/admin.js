/* CometQL admin dashboard: polls /admin/stats every 2 s and redraws (no libraries).
 * Every value from the server is written with textContent: channel names and error
 * messages come from clients and must never be interpreted as HTML. */
"use strict";
(function () {
  var POLL_MS = 2000;
  var SVG_NS = "http://www.w3.org/2000/svg";
  // location.origin has no user:password part, so the URL is valid even when the page
  // was opened as http://user:password@host/admin; the browser re-sends its Basic credentials.
  var STATS_URL = location.origin + "/admin/stats";

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

  function poll() {
    fetch(STATS_URL, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (s) {
        render(s);
        setStatus("live · " + new Date().toLocaleTimeString(), "ok");
      })
      .catch(function (err) { setStatus("disconnected: " + err.message, "bad"); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  poll();
})();
