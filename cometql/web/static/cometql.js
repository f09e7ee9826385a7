/*!
 * cometql.js - the browser library of CometQL, served by the server at /cometql.js.
 *
 * Same public API as CppComet's CometServerApi.js, so a page switches servers by
 * changing one script tag:
 *
 *     CometServer().start({dev_id: 1, user_id: 7, user_key: "hash", node: "host:8087"});
 *     cometApi.subscription("chat.message", function (e) { e.data; e.server_info.pipe; });
 *     cometApi.web_pipe_send("web_chat", "message", {text: "hi"});
 *
 * What it adds over the stock client:
 *   - WebSocket with an automatic fallback to CometQL's long-poll endpoints (/lp/...):
 *     used when WebSocket is missing, when a WebSocket fails to open twice in a row
 *     (until one has opened on this page: after that, failures mean the server is away,
 *     not that WebSockets are blocked), or when start({transport: "longpoll"}) asks for it;
 *   - reconnect with jittered exponential backoff (capped at 10 s), waiting while the
 *     browser is offline, and the full subscription list resent on every (re)connect;
 *   - a dead connection is noticed: the server's heartbeats (capability hb) stop, so after
 *     interval + timeout of silence the WebSocket is dropped and a new one opened; an
 *     unanswered handshake is given up too;
 *   - a long-poll session is resumed with its cursor across outages up to the server's
 *     session TTL, so nothing queued for it is lost;
 *   - exact recovery of channel messages missed while disconnected, by offset and epoch
 *     (see "Channel recovery" below; onRecoveryFailed / onMayHaveMissed tell the page when not);
 *   - frames are parsed strictly first, so messages containing apostrophes are not lost.
 *
 * Written from the wire protocol (browser-wire.md), not from CometServerApi.js.
 * Plain ES5 on purpose: the long-poll fallback exists for old browsers.
 */
(function (global) {
    "use strict";

    if (global.CometServer && global.CometServer.isCometQL) {
        return; // loaded twice (script tag + ES module): keep the first singleton
    }

    var VERSION = "4.08";
    var UUID_KEY = "comet_server_uuid";
    var UUID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    var MARKER_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    var CHANNEL_RE = /^[A-Za-z0-9_-]{2,63}$/;     // what the server accepts in a subscription list
    var MAX_SUBSCRIPTIONS = 32;
    var SUBSCRIBE_DELAY_MS = 50;                  // batch subscription() calls like the stock client
    var BACKOFF_BASE_MS = 300;
    var BACKOFF_CAP_MS = 10000;
    var STABLE_CONNECTION_MS = 5000;              // a connection that lived this long resets the backoff
    var WS_OPEN_FAILURES_BEFORE_LONGPOLL = 2;
    var LONGPOLL_REQUEST_TIMEOUT_MS = 60000;      // the server holds a poll ~25 s
    var LONGPOLL_POLL_RETRIES = 3;                // only with a server that does not say its session TTL
    var LONGPOLL_MARGIN_MS = 5000;                // a poll unanswered this long after the server's hold time: retried
    var CONNECT_TIMEOUT_MS = 15000;               // a WebSocket handshake or /lp/connect unanswered this long: retried
    var MARKER_TTL_MS = 120000;
    var DEDUP_TTL_MS = 180000;                    // uuid / _cometApi_uuid dedup window (stock client: ~3 min)
    var MAX_QUEUED_COMMANDS = 1000;
    // Announced as `caps=` on connect (the server ignores what it does not know and lists what it
    // accepted in serverInfo.caps): ack = acknowledge personal messages by id, offset = recover
    // channels by offset and epoch, hb = heartbeats, so a silent server is noticed.
    var CAPS = ["ack", "offset", "hb"];
    // Personal messages (pipe "msg") with an id (the ack capability): acknowledged in batches, and
    // an id seen before is dropped (the server sends an unacknowledged message again on reconnect).
    var ACK_DELAY_MS = 100;                       // acks wait at most this long ...
    var ACK_BATCH = 50;                           // ... or until this many are pending
    var MSG_IDS_KEPT = 10000;                     // personal-message ids remembered for dedup ...
    var MSG_IDS_TTL_MS = 600000;                  // ... for at most this long
    var ALL_MESSAGES = "\u0000all";               // listener key of subscription(callback); never a channel

    // ------------------------------------------------------------------ pure helpers

    function randomString(length, alphabet) {
        var out = "", bytes = null, i;
        var cryptoObj = global.crypto;
        if (cryptoObj && cryptoObj.getRandomValues) {
            bytes = new Uint8Array(length);
            cryptoObj.getRandomValues(bytes);
        }
        for (i = 0; i < length; i++) {
            var r = bytes ? bytes[i] / 256 : Math.random();
            out += alphabet.charAt(Math.floor(r * alphabet.length));
        }
        return out;
    }

    /** The per-browser id sent as `uuid`: 32 chars of [a-zA-Z0-9_-], kept in localStorage. */
    function loadUUID() {
        var value = null;
        try { value = global.localStorage.getItem(UUID_KEY); } catch (e) { value = null; }
        if (!value || !/^[a-zA-Z0-9_-]{32}$/.test(value)) {
            value = randomString(32, UUID_ALPHABET);
            try { global.localStorage.setItem(UUID_KEY, value); } catch (e2) { /* private mode */ }
        }
        return value;
    }

    function tryParse(text) {
        try { return JSON.parse(text); } catch (e) { return undefined; }
    }

    /** The `sesion=...&myid=...` tail shared by the WebSocket URL and /lp/connect. */
    function connectQuery(opts, uuid) {
        return "sesion=" + (opts.user_key === undefined || opts.user_key === null ? "" : opts.user_key) +
            "&myid=" + (opts.user_id === undefined || opts.user_id === null ? 0 : opts.user_id) +
            "&devid=" + (opts.dev_id === undefined || opts.dev_id === null ? 0 : opts.dev_id) +
            "&v=" + VERSION + "&uuid=" + uuid + "&api=js" + (CAPS.length ? "&caps=" + CAPS.join(",") : "");
    }

    function nodeOf(opts) {
        var node = opts.node;
        if (node && typeof node === "object" && node.length) { node = node[0]; } // `nodes` arrays: first one
        return node || (global.location && global.location.host) || "127.0.0.1:8087";
    }

    function useTls(opts) {
        if (opts.wss !== undefined) { return !!opts.wss; }
        return !!(global.location && global.location.protocol === "https:");
    }

    function webSocketUrl(opts, uuid) {
        return (useTls(opts) ? "wss" : "ws") + "://" + nodeOf(opts) + "/ws/" + connectQuery(opts, uuid);
    }

    function httpBase(opts) {
        return (useTls(opts) ? "https" : "http") + "://" + nodeOf(opts);
    }

    /** One text frame -> the JSON objects in it (one per line). Unparsable lines are dropped. */
    function parseFrameText(text) {
        var out = [], lines = String(text).split("\n"), i;
        for (i = 0; i < lines.length; i++) {
            var line = lines[i].replace(/^\s+|\s+$/g, "");
            if (!line) { continue; }
            var obj = tryParse(line);
            if (obj === undefined) {
                // CppComet's stock client strips \' before parsing; try that only as a fallback,
                // so frames holding an escaped backslash before ' are not lost.
                obj = tryParse(line.replace(/\\'/g, "'"));
            }
            if (obj && typeof obj === "object") { out.push(obj); }
        }
        return out;
    }

    /** Undo mysql_real_escape_string (CppComet escapes web_pipe payloads); other \x become x. */
    function unescapeMysql(text) {
        return text.replace(/\\([\s\S]?)/g, function (all, c) {
            switch (c) {
                case "0": return "\u0000";
                case "n": return "\n";
                case "r": return "\r";
                case "Z": return "\u001a";
                default: return c; // \\ \' \" and PHP-stripslashes behaviour for the rest
            }
        });
    }

    /**
     * A frame's `data` as callbacks get it: a string holding JSON is parsed; a string that
     * only parses after unescaping (CppComet's MySQL-escaped web_pipe payloads) is unescaped
     * and parsed (up to 5 rounds, like the stock client); any other string is passed on
     * unchanged. Non-string data is passed through.
     */
    function decodeData(data) {
        if (typeof data !== "string") { return data; }
        var text = data, round;
        for (round = 0; round < 5; round++) {
            var value = tryParse(text);
            if (value === undefined && text.indexOf("\\'") >= 0) { value = tryParse(text.replace(/\\'/g, "'")); }
            if (value !== undefined) { return value; }
            var next = unescapeMysql(text);
            if (next === text) { break; }
            text = next;
        }
        return data;
    }

    /** The server channel behind a subscription name, or null for local-only names. */
    function serverChannelOf(name) {
        if (typeof name !== "string" || name.charAt(0) === "#" || name === ALL_MESSAGES) { return null; }
        var m = /^([^.]+)\.([^.]+)$/.exec(name);
        var pipe = m ? m[1] : name;
        if (pipe === "msg" || /^answer_to_web_/.test(pipe)) { return null; }
        return pipe;
    }

    /** A frame that replays channel history (pipe_log): ours say history:true, CppComet's only fromQueue. */
    function isHistoryFrame(msg) {
        return msg.history === true || (msg.fromQueue === true && msg.pipe !== undefined && msg.pipe !== "msg");
    }

    function backoffDelay(attempt) {
        var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, Math.min(attempt, 10)));
        return Math.round(ceiling * (0.5 + Math.random() * 0.5)); // "equal jitter"
    }

    function log(level, text, detail) {
        if (global.console && global.console[level]) {
            global.console[level]("[cometql] " + text, detail === undefined ? "" : detail);
        }
    }

    function callSafely(cb, arg) {
        try { cb(arg); } catch (e) { log("error", "callback failed", e); }
    }

    // ------------------------------------------------------------------ personal-message ids

    /** Personal-message ids seen lately, oldest first (a Map keeps insertion order: O(1) eviction). */
    function SeenIds(limit, ttl) {
        this.limit = limit;
        this.ttl = ttl;
        this.ids = new Map();
    }
    /** True if ``id`` was seen (a duplicate); remembers it otherwise. */
    SeenIds.prototype.seen = function (id, now) {
        if (this.ids.has(id)) { return true; }
        this.ids.set(id, now);
        var it = this.ids.entries(), next = it.next();
        while (!next.done && (this.ids.size > this.limit || now - next.value[1] > this.ttl)) {
            this.ids.delete(next.value[0]);
            next = it.next();
        }
        return false;
    };

    // ------------------------------------------------------------------ transports
    //
    // A transport is {kind, send(text) -> bool, close()}; it reports through the handlers
    // given to it: open(t), frames(t, [objects]), closed(t, {opened, unsent}), and
    // heartbeat(silenceMs) (WebSocket: what serverInfo said), stalled(t) / resumed(t)
    // (long-poll: unreachable for now / the same session answers again). closed is never
    // called after close().

    function WebSocketTransport(url, handlers, openTimeoutMs) {
        var self = this;
        this.kind = "websocket";
        this.opened = false;
        this.done = false;
        this.silenceMs = 0;              // from serverInfo.heartbeat: longer without a frame = dead
        this.lastHeard = Date.now();
        this.timer = null;
        this.handlers = handlers;
        this.ws = new global.WebSocket(url);
        // A black-holed network never answers the handshake, and browsers wait very long for it.
        this.timer = setTimeout(function () { self.dead("no answer to the WebSocket handshake"); }, openTimeoutMs);
        this.ws.onopen = function () {
            self.opened = true;
            clearTimeout(self.timer);
            self.timer = null;
            self.lastHeard = Date.now();
            handlers.open(self);
        };
        this.ws.onmessage = function (event) {
            if (self.done) { return; }
            self.lastHeard = Date.now();
            if (typeof event.data !== "string") { return; }
            var frames = parseFrameText(event.data), kept = [], i, f;
            for (i = 0; i < frames.length; i++) {
                f = frames[i];
                if (f && f.pipe === "sys" && f.event === "heartbeat") { continue; } // liveness only
                if (f && f.pipe === "sys" && f.event === "serverInfo" && f.heartbeat) { self.watch(f.heartbeat); }
                kept.push(f);
            }
            if (kept.length) { handlers.frames(self, kept); }
        };
        this.ws.onclose = function () {
            if (self.done) { return; }
            self.finish();
            handlers.closed(self, {opened: self.opened, unsent: []});
        };
        this.ws.onerror = function () { /* onclose follows */ };
    }
    /**
     * Heartbeats (capability hb): the server pings every interval and, for us, sends a heartbeat
     * frame with each ping (a page cannot see protocol pings). No frame at all for
     * interval + timeout means the network or the server is gone without a word.
     */
    WebSocketTransport.prototype.watch = function (heartbeat) {
        var interval = Number(heartbeat.interval), timeout = Number(heartbeat.timeout);
        if (!(interval > 0) || !(timeout > 0)) { return; }
        this.silenceMs = (interval + timeout) * 1000;
        if (this.handlers.heartbeat) { this.handlers.heartbeat(this.silenceMs); }
        this.check();
    };
    WebSocketTransport.prototype.check = function () {
        var self = this;
        if (this.done) { return; }
        var quiet = Date.now() - this.lastHeard;
        if (quiet >= this.silenceMs) { this.dead("no heartbeat for " + quiet + " ms"); return; }
        if (this.timer !== null) { clearTimeout(this.timer); }
        this.timer = setTimeout(function () { self.timer = null; self.check(); }, this.silenceMs - quiet);
    };
    /** The connection is silent past its limit: drop it without waiting for a close handshake. */
    WebSocketTransport.prototype.dead = function (why) {
        if (this.done) { return; }
        log("warn", "connection dead, reconnecting", why);
        this.close();
        this.handlers.closed(this, {opened: this.opened, unsent: []});
    };
    WebSocketTransport.prototype.finish = function () {
        this.done = true;
        if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    };
    WebSocketTransport.prototype.send = function (text) {
        if (this.done || this.ws.readyState !== 1) { return false; }
        this.ws.send(text);
        return true;
    };
    WebSocketTransport.prototype.close = function () {
        this.finish();
        try { this.ws.close(); } catch (e) { /* already closed */ }
    };

    function xhr(method, url, body, onDone, timeoutMs) {
        var req = new global.XMLHttpRequest();
        req.open(method, url, true);
        req.timeout = timeoutMs || LONGPOLL_REQUEST_TIMEOUT_MS;
        req.onreadystatechange = function () {
            if (req.readyState === 4) { onDone(req.status, req.responseText); }
        };
        // text/plain is a "simple" content type: no CORS preflight.
        if (body !== null) { req.setRequestHeader("Content-Type", "text/plain;charset=UTF-8"); }
        req.send(body);
        return req;
    }

    /**
     * CometQL long-poll: POST /lp/connect -> {sid, cursor, timeout, ttl}; GET /lp/poll?sid&cursor
     * held until frames exist -> {cursor, frames} (&wait=0: answered at once, the probe after an
     * outage); POST /lp/send?sid one command per request, in order; POST /lp/close?sid.
     * Re-polling with the same cursor returns the same frames, so a request that fails in
     * transit is simply retried: the session is resumed, with its cursor, across an outage of up
     * to `ttl` seconds (the server keeps it that long without a poll); a poll is given up
     * `timeout` + LONGPOLL_MARGIN_MS after it was sent (a silent network). Only a 404 (the
     * session is gone) or the TTL passing without an answer starts a new session.
     */
    function LongPollTransport(base, query, handlers) {
        this.kind = "longpoll";
        this.base = base;
        this.handlers = handlers;
        this.opened = false;
        this.done = false;
        this.sid = null;
        this.cursor = 0;
        this.outbox = [];
        this.sending = false;
        this.requests = [];
        this.pollFailures = 0;
        this.pollTimeoutMs = LONGPOLL_REQUEST_TIMEOUT_MS;
        this.ttlMs = 0;                  // 0: a server that did not say (retry LONGPOLL_POLL_RETRIES times)
        this.lastOk = Date.now();        // the last answer from the server
        this.stalled = false;
        this.retries = {};               // "poll" / "send" -> {timer, again}: one pending retry of each
        var self = this;
        this.track(xhr("POST", base + "/lp/connect", query, function (status, text) {
            if (self.done) { return; }
            var reply = status === 200 ? tryParse(text) : undefined;
            if (!reply || typeof reply.sid !== "string") { self.fail(); return; }
            self.sid = reply.sid;
            self.cursor = reply.cursor || 0;
            if (reply.timeout > 0) { self.pollTimeoutMs = reply.timeout * 1000 + LONGPOLL_MARGIN_MS; }
            if (reply.ttl > 0) { self.ttlMs = reply.ttl * 1000; }
            self.lastOk = Date.now();
            self.opened = true;
            self.handlers.open(self);
            self.poll();
        }, CONNECT_TIMEOUT_MS));
    }
    LongPollTransport.prototype.track = function (req) {
        this.requests.push(req);
        if (this.requests.length > 8) { this.requests.shift(); }
        return req;
    };
    LongPollTransport.prototype.url = function (path) {
        return this.base + path + "?sid=" + encodeURIComponent(this.sid);
    };
    /** The server answered: the session lives; tell the client if it had been unreachable. */
    LongPollTransport.prototype.reached = function () {
        this.lastOk = Date.now();
        this.pollFailures = 0;
        if (this.stalled) {
            this.stalled = false;
            this.handlers.resumed(this);
        }
    };
    /**
     * A request failed without an answer from the server (status 0: network, timeout) or with a
     * server error: retry `again` with backoff while the session can still be alive, else give up.
     */
    LongPollTransport.prototype.failed = function (status, kind, again) {
        var self = this;
        this.pollFailures++;
        var expired = this.ttlMs > 0 ? Date.now() - this.lastOk > this.ttlMs :
            this.pollFailures > LONGPOLL_POLL_RETRIES;
        if ((status >= 400 && status < 500) || expired) {
            this.fail(); // 404: unknown session (expired, server restarted); or gone past its TTL
            return;
        }
        if (!this.stalled) {
            this.stalled = true;
            this.handlers.stalled(this);
        }
        this.retries[kind] = {
            again: again,
            timer: setTimeout(function () { self.runRetry(kind); }, backoffDelay(this.pollFailures - 1))
        };
    };
    LongPollTransport.prototype.runRetry = function (kind) {
        var retry = this.retries[kind];
        if (!retry) { return; }
        delete this.retries[kind];
        clearTimeout(retry.timer);
        if (!this.done) { retry.again(); }
    };
    /** The browser says the network is gone: count as unreachable until the next answer. */
    LongPollTransport.prototype.offline = function () {
        if (!this.stalled && !this.done) {
            this.stalled = true;
            this.handlers.stalled(this);
        }
    };
    /** Run the pending retries now (the browser says the network is back). */
    LongPollTransport.prototype.wake = function () {
        this.runRetry("poll");
        this.runRetry("send");
    };
    LongPollTransport.prototype.poll = function () {
        var self = this;
        // after a failure, ask to be answered at once: the session is known to live (or to be gone) now
        var probe = this.stalled ? "&wait=0" : "";
        this.track(xhr("GET", this.url("/lp/poll") + "&cursor=" + this.cursor + probe, null, function (status, text) {
            if (self.done) { return; }
            var reply = status === 200 ? tryParse(text) : undefined;
            if (reply && typeof reply === "object") {
                self.reached();
                if (typeof reply.cursor === "number") { self.cursor = reply.cursor; }
                var frames = [], list = reply.frames || [], i;
                for (i = 0; i < list.length; i++) {
                    if (typeof list[i] === "string") { frames = frames.concat(parseFrameText(list[i])); }
                    else if (list[i] && typeof list[i] === "object") { frames.push(list[i]); }
                }
                if (frames.length) { self.handlers.frames(self, frames); }
                if (!self.done) { self.poll(); }
            } else {
                self.failed(status, "poll", function () { self.poll(); });
            }
        }, this.pollTimeoutMs));
    };
    LongPollTransport.prototype.send = function (text) {
        if (this.done || !this.opened) { return false; }
        this.outbox.push(text);
        this.pump();
        return true;
    };
    LongPollTransport.prototype.pump = function () {
        if (this.sending || this.done || !this.outbox.length) { return; }
        var self = this;
        this.sending = true;
        this.track(xhr("POST", this.url("/lp/send"), this.outbox[0], function (status) {
            if (self.done) { return; }
            if (status >= 200 && status < 300) {
                self.sending = false;
                self.reached();
                self.outbox.shift();
                self.pump();
            } else {
                // retried as is: a command whose answer was lost may run twice (at least once)
                self.failed(status, "send", function () { self.sending = false; self.pump(); });
            }
        }, this.pollTimeoutMs));
    };
    LongPollTransport.prototype.fail = function () {
        if (this.done) { return; }
        var unsent = this.outbox.slice();
        this.shutdown(false);
        this.handlers.closed(this, {opened: this.opened, unsent: unsent});
    };
    LongPollTransport.prototype.shutdown = function (tellServer) {
        this.done = true;
        for (var kind in this.retries) {
            if (Object.prototype.hasOwnProperty.call(this.retries, kind)) { clearTimeout(this.retries[kind].timer); }
        }
        this.retries = {};
        for (var i = 0; i < this.requests.length; i++) {
            try { this.requests[i].abort(); } catch (e) { /* finished */ }
        }
        this.requests = [];
        if (tellServer && this.sid !== null) {
            var url = this.url("/lp/close");
            if (global.navigator && global.navigator.sendBeacon) {
                global.navigator.sendBeacon(url, ""); // also works while the page unloads
            } else {
                try { xhr("POST", url, "", function () {}); } catch (e2) { /* unloading */ }
            }
        }
    };
    LongPollTransport.prototype.close = function () { this.shutdown(true); };

    // ------------------------------------------------------------------ the client

    /*
     * Channel recovery (docs/delivery.md, "Channel recovery"): with the `offset` capability every
     * message of a channel with history carries its place in the channel's stream (epoch, offset).
     *   - `streams[pipe]` is the last (epoch, offset) this page saw, learnt from the `position`
     *     frame the server sends on subscribing and from every message; a message at or before
     *     it is a duplicate and dropped;
     *   - after a REconnect (once serverInfo says the server accepted `offset`) the client asks
     *     `pipe_log <pipe> <marker> <epoch> <offset>` for every subscribed channel; the server
     *     answers the missed messages in order (server_info.history = true), then a `recovery`
     *     frame. Live frames of that channel arriving meanwhile wait, and go through the same
     *     duplicate check after it;
     *   - `recovered: false` (a gap: the history was reset or trimmed past our offset) fires
     *     onRecoveryFailed(pipe); a channel without history (or a server without `offset`)
     *     fires onMayHaveMissed(pipe): the page may reload what it shows.
     */
    function Client() {
        this.options = {dev_id: "0"};
        this.uuid = loadUUID();
        this.started = false;
        this.transport = null;
        this.connected = false;
        this.openedAt = 0;
        this.everOpened = false;
        this.attempt = 0;
        this.wsOpenFailures = 0;
        this.wsEverOpened = false;       // a WebSocket worked here: never fall back automatically
        this.forceLongPoll = false;
        this.reconnectTimer = null;
        this.queue = [];                 // commands waiting for a connection
        this.listeners = {};             // name -> [{id, cb, once}]
        this.markers = {};               // marker -> {cb, at}: answers routed by marker
        this.streams = {};               // pipe -> {epoch, offset}: see "Channel recovery"
        this.recovering = {};            // pipe -> {marker, held: [live frames]} while a recovery runs
        this.recoverAfterHello = false;  // a reconnect: recover once serverInfo lists the caps
        this.recoveryCallbacks = {failed: [], missed: []};
        this.nextId = 1;
        this.subscribeTimer = null;
        this.sentList = null;            // the subscription command last sent on this connection
        this.authorized = undefined;
        this.authCallbacks = {success: [], fail: []};
        this.realUserKey = "";
        this.seenUuids = {};
        this.silenceMs = 0;              // interval + timeout of the server's heartbeats, once told
        this.msgIds = new SeenIds(MSG_IDS_KEPT, MSG_IDS_TTL_MS);
        this.acks = [];                  // personal-message ids to acknowledge (see ackMessage)
        this.ackTimer = null;
        this.installBrowserHooks();
    }

    Client.prototype.version = VERSION;

    // ---- connection lifecycle

    Client.prototype.start = function (opts) {
        if (this.started) { return this.restart(opts); }
        this.started = true;
        this.mergeOptions(opts);
        this.connect();
        return true;
    };

    Client.prototype.restart = function (opts) {
        this.mergeOptions(opts);
        this.started = true;
        this.dropTransport();
        this.attempt = 0;
        this.wsOpenFailures = 0;
        this.connect();
        return true;
    };

    /** Close the connection and stay disconnected (not in the stock API). */
    Client.prototype.stop = function () {
        this.started = false;
        this.dropTransport();
    };

    Client.prototype.mergeOptions = function (opts) {
        var key;
        opts = opts || {};
        for (key in opts) {
            if (Object.prototype.hasOwnProperty.call(opts, key)) { this.options[key] = opts[key]; }
        }
        if (this.options.nodes && !this.options.node) { this.options.node = this.options.nodes; }
        this.forceLongPoll = this.options.transport === "longpoll";
    };

    Client.prototype.dropTransport = function () {
        if (this.reconnectTimer !== null) { clearTimeout(this.reconnectTimer); this.reconnectTimer = null; }
        if (this.transport) { this.transport.close(); }
        this.transport = null;
        this.connected = false;
        this.sentList = null;
    };

    Client.prototype.transportKind = function () {
        if (this.forceLongPoll || typeof global.WebSocket === "undefined" ||
                (this.options.transport !== "websocket" && !this.wsEverOpened &&
                 this.wsOpenFailures >= WS_OPEN_FAILURES_BEFORE_LONGPOLL)) {
            return "longpoll";
        }
        return "websocket";
    };

    Client.prototype.connect = function () {
        this.reconnectTimer = null;
        if (!this.started) { return; }
        var self = this;
        if (global.navigator && global.navigator.onLine === false) {
            // wait for the "online" event; re-check now and then in case it never fires
            this.reconnectTimer = setTimeout(function () { self.connect(); }, 1000);
            return;
        }
        var handlers = {
            open: function (t) { self.onOpen(t); },
            frames: function (t, frames) { self.onFrames(t, frames); },
            closed: function (t, info) { self.onClosed(t, info); },
            heartbeat: function (ms) { self.silenceMs = ms; },
            stalled: function (t) { self.onStalled(t); },
            resumed: function (t) { self.onResumed(t); }
        };
        var query = connectQuery(this.options, this.uuid);
        try {
            this.transport = this.transportKind() === "longpoll" ?
                new LongPollTransport(httpBase(this.options), query, handlers) :
                new WebSocketTransport(webSocketUrl(this.options, this.uuid), handlers,
                                       this.silenceMs || CONNECT_TIMEOUT_MS);
        } catch (e) {
            this.transport = null;
            this.onClosed(null, {opened: false, unsent: []});
        }
    };

    Client.prototype.onOpen = function (t) {
        if (t !== this.transport) { return; }
        var reconnect = this.everOpened;
        this.connected = true;
        this.everOpened = true;
        this.openedAt = Date.now();
        if (t.kind === "websocket") { this.wsOpenFailures = 0; this.wsEverOpened = true; }
        this.sentList = null;
        this.sendSubscriptions(true);
        this.recovering = {};
        this.recoverAfterHello = reconnect;
        var pending = this.queue;
        this.queue = [];
        for (var i = 0; i < pending.length; i++) { this.send(pending[i]); }
    };

    Client.prototype.onClosed = function (t, info) {
        if (t !== this.transport) { return; }
        this.transport = null;
        this.connected = false;
        this.sentList = null;
        this.queue = info.unsent.concat(this.queue);
        if (t && !info.opened) {
            // WebSocket failures count towards the fallback; a failing long-poll connect too
            // means the server is away, so WebSocket gets another chance next time.
            this.wsOpenFailures = t.kind === "websocket" ? this.wsOpenFailures + 1 : 0;
        }
        if (info.opened && Date.now() - this.openedAt >= STABLE_CONNECTION_MS) { this.attempt = 0; }
        this.scheduleReconnect();
    };

    /** A long-poll session lost its server for now (it retries); commands wait in the queue. */
    Client.prototype.onStalled = function (t) {
        if (t === this.transport) { this.connected = false; }
    };

    /** The same long-poll session reached its server again: nothing was lost, no catch-up needed. */
    Client.prototype.onResumed = function (t) {
        if (t !== this.transport) { return; }
        this.connected = true;
        var pending = this.queue;
        this.queue = [];
        for (var i = 0; i < pending.length; i++) { this.send(pending[i]); }
    };

    Client.prototype.scheduleReconnect = function () {
        if (!this.started || this.reconnectTimer !== null) { return; }
        var self = this;
        var delay = backoffDelay(this.attempt);
        this.attempt++;
        this.reconnectTimer = setTimeout(function () { self.connect(); }, delay);
    };

    /** Drop the connection when the browser goes offline; reconnect at once when it is back. */
    Client.prototype.installBrowserHooks = function () {
        var self = this;
        if (!global.addEventListener) { return; }
        global.addEventListener("offline", function () {
            if (!self.transport) { return; }
            var t = self.transport;
            if (t.kind === "longpoll" && t.opened) { t.offline(); return; } // resumed when back, with its cursor
            t.close();
            self.onClosed(t, {opened: t.opened, unsent: []});
        });
        global.addEventListener("online", function () {
            if (self.transport && self.transport.kind === "longpoll") { self.transport.wake(); return; }
            if (!self.started || self.transport) { return; }
            if (self.reconnectTimer !== null) { clearTimeout(self.reconnectTimer); self.reconnectTimer = null; }
            self.connect();
        });
        global.addEventListener("pagehide", function () {
            self.dropTransport(); // lets the server drop the session (and track_ membership) at once
        });
        global.addEventListener("pageshow", function (e) {
            if (e.persisted && self.started && !self.transport) { self.connect(); } // back from bfcache
        });
    };

    // ---- sending

    /** Send one command now, or queue it until the connection opens. */
    Client.prototype.send = function (text) {
        if (this.subscribeTimer !== null) { this.flushSubscriptions(); } // commands see current subscriptions
        if (this.connected && this.transport && this.transport.send(text)) { return true; }
        if (this.queue.length < MAX_QUEUED_COMMANDS) { this.queue.push(text); }
        return true;
    };
    Client.prototype.send_msg = Client.prototype.send;

    Client.prototype.serverChannels = function () {
        var names = [], seen = {}, key;
        for (key in this.listeners) {
            if (!Object.prototype.hasOwnProperty.call(this.listeners, key) || !this.listeners[key].length) { continue; }
            var pipe = serverChannelOf(key);
            if (pipe === null || seen[pipe]) { continue; }
            seen[pipe] = true;
            if (!CHANNEL_RE.test(pipe)) {
                log("error", "invalid channel name `" + pipe + "`");
                continue;
            }
            names.push(pipe);
        }
        if (names.length > MAX_SUBSCRIPTIONS) {
            log("warn", "more than " + MAX_SUBSCRIPTIONS + " channels; the server keeps the first ones");
        }
        return names;
    };

    /** Send the full subscription list (if it changed, or always when `force`). */
    Client.prototype.sendSubscriptions = function (force) {
        if (!this.connected || !this.transport) { return; }
        var names = this.serverChannels();
        var command = "subscription\n" + names.join("\n");
        if (this.sentList === null && !names.length) { return; } // fresh connection, nothing to subscribe
        if (!force && command === this.sentList) { return; }
        if (this.transport.send(command)) { this.sentList = command; }
    };

    Client.prototype.scheduleSubscriptions = function () {
        var self = this;
        if (this.subscribeTimer !== null) { clearTimeout(this.subscribeTimer); }
        this.subscribeTimer = setTimeout(function () {
            self.subscribeTimer = null;
            self.sendSubscriptions(false);
        }, SUBSCRIBE_DELAY_MS);
    };

    Client.prototype.flushSubscriptions = function () {
        clearTimeout(this.subscribeTimer);
        this.subscribeTimer = null;
        this.sendSubscriptions(false);
    };

    /** After a reconnect: ask every subscribed channel for what came after the last offset seen. */
    Client.prototype.requestRecovery = function (caps) {
        var names = this.serverChannels(), i;
        for (i = 0; i < names.length; i++) {
            var pipe = names[i];
            if (caps.indexOf("offset") < 0) { this.fireRecovery("missed", pipe, null); continue; }
            var known = this.streams[pipe] || {epoch: "", offset: 0};
            var marker = this.getCustomString();
            this.recovering[pipe] = {marker: marker, held: []};
            this.transport.send("pipe_log\n" + pipe + "\n" + marker + "\n" + known.epoch + "\n" + known.offset);
        }
    };

    /** The `position` / `recovery` frames of the offset capability (never shown to listeners). */
    Client.prototype.onStreamFrame = function (msg) {
        var d = msg.data, pipe = d.pipe;
        if (msg.event === "position") {
            if (!this.streams[pipe]) { this.streams[pipe] = {epoch: d.epoch, offset: d.offset}; }
            return;
        }
        var pending = this.recovering[pipe];
        if (!pending || pending.marker !== msg.marker) { return; }
        delete this.recovering[pipe];
        var known = this.streams[pipe];
        if (!d.history) {
            delete this.streams[pipe];
            this.fireRecovery("missed", pipe, null);
        } else if (!d.recovered) {
            this.streams[pipe] = {epoch: d.epoch, offset: d.offset};
            this.fireRecovery("failed", pipe, {epoch: d.epoch, offset: d.offset});
        } else if (!known || known.epoch !== d.epoch || known.offset < d.offset) {
            this.streams[pipe] = {epoch: d.epoch, offset: d.offset};
        }
        for (var i = 0; i < pending.held.length; i++) { this.handleFrame(pending.held[i]); }
    };

    Client.prototype.fireRecovery = function (kind, pipe, info) {
        var list = this.recoveryCallbacks[kind].slice();
        for (var i = 0; i < list.length; i++) {
            try { list[i](pipe, info); } catch (e) { log("error", "callback failed", e); }
        }
    };

    /** cb(channel, {epoch, offset}): a channel's missed messages could not be recovered (its history was
     *  reset or trimmed past what this page saw); the page should reload what it shows of it. */
    Client.prototype.onRecoveryFailed = function (cb) { this.recoveryCallbacks.failed.push(cb); };
    /** cb(channel): after a reconnect, a channel without history may have missed messages. */
    Client.prototype.onMayHaveMissed = function (cb) { this.recoveryCallbacks.missed.push(cb); };

    // ---- subscriptions

    Client.prototype.addListener = function (name, cb, once) {
        var id = "sub" + (this.nextId++);
        if (!this.listeners[name]) { this.listeners[name] = []; }
        this.listeners[name].push({id: id, cb: cb, once: once});
        this.scheduleSubscriptions();
        return id;
    };

    /**
     * subscription("pipe" | "pipe.event" | "msg" | "msg.event" | "#pipe", cb) -> id;
     * subscription(cb) listens to every message.
     */
    Client.prototype.subscription = function (name, cb) {
        if (typeof name === "function") { return this.addListener(ALL_MESSAGES, name, false); }
        if (typeof name !== "string" || !name) { return false; }
        return this.addListener(name, cb || function () {}, false);
    };

    Client.prototype.subscription_once = function (name, cb) {
        if (typeof name === "function") { return this.addListener(ALL_MESSAGES, name, true); }
        if (typeof name !== "string" || !name) { return false; }
        return this.addListener(name, cb || function () {}, true);
    };

    /** unsubscription(id) removes one listener; unsubscription(name) removes all listeners of name. */
    Client.prototype.unsubscription = function (nameOrId) {
        var removed = false, key;
        if (this.listeners[nameOrId]) {
            removed = this.listeners[nameOrId].length > 0;
            delete this.listeners[nameOrId];
        } else {
            for (key in this.listeners) {
                if (!Object.prototype.hasOwnProperty.call(this.listeners, key)) { continue; }
                var list = this.listeners[key];
                for (var i = 0; i < list.length; i++) {
                    if (list[i].id === nameOrId) { list.splice(i, 1); removed = true; break; }
                }
                if (!list.length) { delete this.listeners[key]; }
            }
        }
        if (removed) { this.scheduleSubscriptions(); }
        return removed;
    };

    Client.prototype.onMarker = function (marker, cb) {
        var now = Date.now(), key;
        for (key in this.markers) {
            if (Object.prototype.hasOwnProperty.call(this.markers, key) && now - this.markers[key].at > MARKER_TTL_MS) {
                delete this.markers[key];
            }
        }
        this.markers[marker] = {cb: cb, at: now};
    };

    Client.prototype.getCustomString = function () { return randomString(10, MARKER_ALPHABET); };

    // ---- commands

    /** web_pipe_send("web_x", "event", msg), ("web_x.event", msg) or ("web_x", msg). */
    Client.prototype.web_pipe_send = function (pipe, event, msg) {
        if (msg === undefined) {
            msg = event;
            var m = /^([^.]+)\.([^.]+)$/.exec(pipe);
            event = m ? m[2] : "undefined";
            pipe = m ? m[1] : pipe;
        }
        if (msg === undefined) { return false; }
        if (!/^@?web_|^webauth_/.test(pipe)) {
            log("error", "web_pipe_send: the channel must start with web_ or webauth_");
            return false;
        }
        return this.send("web_pipe2\n" + pipe + "\n" + event + "\n*\n" + JSON.stringify(msg));
    };

    /** Sends msg `count` times; receivers drop the repeats by data._cometApi_uuid. */
    Client.prototype.multi_web_pipe_send = function (pipe, event, msg, count, interval) {
        var self = this, i;
        msg._cometApi_uuid = "jsapi" + randomString(11, MARKER_ALPHABET);
        for (i = 1; i < (count || 3); i++) {
            setTimeout(function () { self.web_pipe_send(pipe, event, msg); }, i * (interval || 1000));
        }
        return this.web_pipe_send(pipe, event, msg);
    };

    /** Ask for a channel's history; frames come to the channel's listeners (and cb) with history true. */
    Client.prototype.get_pipe_log = function (pipe, cb) {
        if (!pipe) { return false; }
        if (cb) { this.subscription(pipe, cb); }
        var marker = this.getCustomString();
        this.send("pipe_log\n" + pipe + "\n" + marker + "\n");
        return true;
    };

    /** cb gets the answer; e.data is ["user_in_pipe", N] and also has e.data.user_in_pipe === N. */
    Client.prototype.count_users_in_pipe = function (pipe, cb) {
        var marker = this.getCustomString();
        if (cb) { this.onMarker(marker, cb); }
        this.send("pipe_count\n" + pipe + "\n" + marker + "\n");
        return true;
    };

    Client.prototype.getTrackPipeUsers = function (pipe, cb) {
        if (!/^track_/.test(pipe)) {
            log("error", "getTrackPipeUsers: the channel must start with track_");
            return false;
        }
        var marker = this.getCustomString();
        if (cb) { this.onMarker(marker, cb); }
        return this.send("track_pipe_users\n" + pipe + "\n" + marker);
    };

    Client.prototype.getUserData = function (userId, cb) {
        if (!userId || /[^0-9]/.test(String(userId))) {
            log("error", "getUserData: user_id must be a positive integer");
            return false;
        }
        var marker = this.getCustomString();
        if (cb) { this.onMarker(marker, cb); }
        return this.send("user_data\n" + marker + "\n" + userId);
    };

    // ---- status

    Client.prototype.isAuthorized = function () { return this.authorized; };
    Client.prototype.onAuthSuccess = function (cb) { this.authCallbacks.success.push(cb); };
    Client.prototype.onAuthFalill = function (cb) { this.authCallbacks.fail.push(cb); };
    Client.prototype.onAuthFail = Client.prototype.onAuthFalill;
    Client.prototype.getUUID = function () { return this.uuid; };
    Client.prototype.getUserId = function () { return this.options.user_id; };
    Client.prototype.getUserKey = function () { return this.options.user_key; };
    Client.prototype.getRealUserKey = function () { return this.realUserKey; };
    Client.prototype.getDevId = function () { return this.options.dev_id; };
    Client.prototype.isConnected = function () { return this.connected; };
    Client.prototype.isMaster = function () { return true; }; // one socket per tab; no tab election
    Client.prototype.UseWebSocket = function () { return this.transportKind() === "websocket"; };
    /** "websocket", "longpoll", or null while not connected. */
    Client.prototype.getTransport = function () {
        return this.connected && this.transport ? this.transport.kind : null;
    };

    Client.prototype.setAuthorized = function (value) {
        var changed = this.authorized !== value;
        this.authorized = value;
        if (!changed) { return; }
        var list = value ? this.authCallbacks.success : this.authCallbacks.fail;
        for (var i = 0; i < list.length; i++) { callSafely(list[i], value); }
    };

    // ---- incoming frames

    Client.prototype.onFrames = function (t, frames) {
        if (t !== this.transport) { return; }
        for (var i = 0; i < frames.length; i++) { this.handleFrame(frames[i]); }
    };

    Client.prototype.isDuplicate = function (msg) {
        var id = msg.uuid || (msg.data && typeof msg.data === "object" && msg.data._cometApi_uuid);
        if (!id || typeof id !== "string") { return false; }
        var now = Date.now(), key;
        for (key in this.seenUuids) {
            if (Object.prototype.hasOwnProperty.call(this.seenUuids, key) && now - this.seenUuids[key] > DEDUP_TTL_MS) {
                delete this.seenUuids[key];
            }
        }
        if (this.seenUuids[id]) { return true; }
        this.seenUuids[id] = now;
        return false;
    };

    /** Whether a channel frame is delivered: a message with an offset exactly once, in offset order
     *  (live frames wait while their channel recovers); everything else as it comes. */
    Client.prototype.admitChannelFrame = function (msg) {
        if (typeof msg.offset !== "number" || typeof msg.epoch !== "string" || typeof msg.pipe !== "string") {
            return true;
        }
        var pending = this.recovering[msg.pipe];
        if (pending && !isHistoryFrame(msg)) {
            pending.held.push(msg);
            return false;
        }
        var known = this.streams[msg.pipe];
        if (known && known.epoch === msg.epoch && msg.offset <= known.offset) { return false; }
        if (known && known.epoch !== "" && known.epoch !== msg.epoch && !pending) {
            // the history was reset while connected: what came before this message is unknown
            this.fireRecovery("failed", msg.pipe, {epoch: msg.epoch, offset: msg.offset - 1});
        }
        this.streams[msg.pipe] = {epoch: msg.epoch, offset: msg.offset};
        return true;
    };

    Client.prototype.handleFrame = function (msg) {
        if (!msg || typeof msg !== "object" || msg.data === undefined) { return; }
        if (msg.event === "serverInfo" && msg.pipe === "sys") {
            if (typeof msg.data === "string") { this.realUserKey = msg.data.replace(" ", "_"); }
            this.setAuthorized(msg.authorized === true || msg.authorized === "true");
            if (this.recoverAfterHello) {
                this.recoverAfterHello = false;
                this.requestRecovery(msg.caps instanceof Array ? msg.caps : []);
            }
            return;
        }
        if (msg.pipe === "sys" && (msg.event === "position" || msg.event === "recovery") &&
                msg.data && typeof msg.data === "object" && typeof msg.data.pipe === "string") {
            this.onStreamFrame(msg);
            return;
        }
        if (!this.admitChannelFrame(msg)) { return; } // first: a held frame comes back through here
        if (this.isDuplicate(msg)) { return; }
        if (msg.pipe === "msg" && typeof msg.id === "string") {
            this.ackMessage(msg.id);     // a repeat too: the server sent it again because no ack came
            if (this.msgIds.seen(msg.id, Date.now())) { return; }
        }
        var userId = msg.user_id || 0;
        var data = msg.data;
        var legacy = typeof data === "string" ? /^A::(\d+);/.exec(data) : null;
        if (legacy) { userId = parseInt(legacy[1], 10); data = data.slice(legacy[0].length); }
        data = decodeData(data);
        if (msg.event === "error" && msg.pipe === "sys") { log("warn", "server error", JSON.stringify(msg.data)); }
        if (msg.pipe === "_answer_pipe_count" && data && data.length === 2 && data[0] === "user_in_pipe") {
            data.user_in_pipe = data[1]; // CppComet sends an array; its docs promise .user_in_pipe
        }
        var event = {
            data: data,
            server_info: {
                user_id: userId,
                pipe: msg.pipe,
                event: msg.event,
                history: isHistoryFrame(msg),
                marker: msg.marker,
                uuid: msg.uuid,
                fromQueue: msg.fromQueue === true
            }
        };

        var answered = false;
        if (msg.marker !== undefined && this.markers[msg.marker]) {
            var entry = this.markers[msg.marker];
            delete this.markers[msg.marker];
            callSafely(entry.cb, event);
            answered = true;
        }
        if (!answered) {
            if (typeof msg.pipe === "string") {
                this.emit(msg.pipe, event);
                this.emit(msg.pipe + "." + msg.event, event);
                if (msg.pipe.indexOf("_answer_to_") === 0) { this.emit("#" + msg.pipe.slice(11), event); }
            } else if (msg.event !== undefined) {
                this.emit("msg." + msg.event, event);
                this.emit("msg", event);
            }
        }
        this.emit(ALL_MESSAGES, event);
    };

    // ---- personal-message acknowledgements (capability "ack")

    Client.prototype.ackMessage = function (id) {
        var self = this;
        this.acks.push(id);
        if (this.acks.length >= ACK_BATCH) {
            this.flushAcks();
        } else if (this.ackTimer === null) {
            this.ackTimer = setTimeout(function () { self.flushAcks(); }, ACK_DELAY_MS);
        }
    };

    /** Acks go only to the session that got the messages: after a reconnect the server sends again
     * what was not acknowledged (and the ids seen are dropped then), so pending acks are dropped. */
    Client.prototype.flushAcks = function () {
        clearTimeout(this.ackTimer);
        this.ackTimer = null;
        var ids = this.acks;
        this.acks = [];
        if (ids.length && this.connected && this.transport) { this.transport.send("ack\n" + ids.join(",")); }
    };

    Client.prototype.emit = function (name, event) {
        var list = this.listeners[name];
        if (!list || !list.length) { return; }
        var copy = list.slice(), i, dropped = false;
        for (i = 0; i < copy.length; i++) {
            if (copy[i].once) { this.removeListener(name, copy[i].id); dropped = true; }
            callSafely(copy[i].cb, event);
        }
        if (dropped) { this.scheduleSubscriptions(); }
    };

    Client.prototype.removeListener = function (name, id) {
        var list = this.listeners[name] || [];
        for (var i = 0; i < list.length; i++) {
            if (list[i].id === id) { list.splice(i, 1); break; }
        }
        if (!list.length) { delete this.listeners[name]; }
    };

    // ------------------------------------------------------------------ public entry points

    var singleton = null;

    /** CometServer() -> the page's one client (also window.cometApi). */
    function CometServer() {
        if (singleton === null) { singleton = new Client(); }
        return singleton;
    }
    CometServer.isCometQL = true;
    CometServer.version = VERSION;
    /** Pure helpers, exported for tests and tools; not part of the stock API. */
    CometServer.internals = {
        connectQuery: connectQuery,
        webSocketUrl: webSocketUrl,
        parseFrameText: parseFrameText,
        decodeData: decodeData,
        unescapeMysql: unescapeMysql,
        serverChannelOf: serverChannelOf,
        backoffDelay: backoffDelay,
        Client: Client
    };

    global.CometServer = CometServer;
    global.cometApi = CometServer();
}(typeof globalThis !== "undefined" ? globalThis : (typeof window !== "undefined" ? window : this)));
