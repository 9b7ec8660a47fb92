/* Shared by the technician dashboard and the end user's chat page.
   SessionSocket speaks docs/protocol.md: hello with the last seen sequence number,
   replay, live events; unsent messages keep their client id and are resent after a
   reconnect, so the broker stores each once. Chat text is only ever set as text. */
"use strict";
window.SB = (function () {
  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
  const TRAILING = /[.,;:!?)\]}'"]+$/;

  function linkify(text, into) {
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      const url = match[0].replace(TRAILING, "");
      into.append(document.createTextNode(text.slice(last, match.index)));
      const a = document.createElement("a");
      a.href = url;
      a.textContent = url;
      a.rel = "noopener noreferrer nofollow";
      a.target = "_blank";
      into.append(a);
      last = match.index + url.length;
    }
    into.append(document.createTextNode(text.slice(last)));
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function clock(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, k) => values[k] ?? "");
  }

  /* Event family ("share" for "share.started") -> function(event, mySender) returning
     {text, className} for its system line, or null for the default. */
  const lines = {};

  /* One <li> for one event; `strings` holds the page's translated system lines. */
  function renderEvent(event, strings, mySender) {
    const li = document.createElement("li");
    li.dataset.seq = event.seq;
    const time = document.createElement("time");
    time.textContent = clock(event.at);
    time.dateTime = event.at;
    if (event.type === "message") {
      const mine = event.author && event.author.sender === mySender;
      li.className = "msg " + (event.author && event.author.role === "technician" ? "from-tech" : "from-user");
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = mine && strings.you ? strings.you : event.author ? event.author.name : "";
      if (event.author) who.title = event.author.name;
      const body = document.createElement("div");
      body.className = "text";
      linkify(event.text, body);
      li.append(who, time, body);
      if (mine) li.classList.add("mine");
    } else {
      li.className = "sys";
      const name = event.author ? event.author.name : "";
      const mine = event.author && event.author.sender === mySender;
      const key = {
        joined: "joined", left: "left", created: "created", ended: "ended_line",
        disconnected: !event.author ? "restarted" : mine ? "disconnected_you" : "disconnected",
        reconnected: mine ? "reconnected_you" : "reconnected",
        // The end user's page says it their way: "You are now connected with Bob".
        handed_over: strings.handed_over_you ? "handed_over_you" : "handed_over",
        technician_joined: "technician_joined", technician_left: "technician_left",
      }[event.type];
      // Other families (screen sharing, files) register their own lines in SB.lines.
      const family = lines[event.type.split(".")[0]];
      const own = !key && family ? family(event, mySender) : null;
      if (own && own.className) li.classList.add(own.className);
      // A family may render more than a line of text (files: a card with a download link).
      li.append(time, own && own.node ? own.node : document.createTextNode(own ? own.text
        : fill((key && strings[key]) || event.type,
          { name: event.name || name, from: event.from, to: event.to })));
    }
    return li;
  }

  /* A line the person wrote that the broker has not confirmed yet (offline, or on its way). */
  function renderPending(id, text, strings) {
    const li = document.createElement("li");
    li.className = "msg mine pending";
    li.dataset.clientId = id;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = strings.you || "";
    const state = document.createElement("span");
    state.className = "pending-note";
    state.textContent = strings.pending || "…";
    const body = document.createElement("div");
    body.className = "text";
    linkify(text, body);
    li.append(who, state, body);
    return li;
  }

  // Ended, not allowed, or taken over by a newer window of the same person (4000):
  // reconnecting would not help (and two windows would keep replacing each other).
  const FINAL_CODES = new Set([4000, 4010, 4401, 4403]);

  class SessionSocket {
    constructor(opts) {
      this.sessionId = opts.sessionId;
      this.token = opts.token || null;
      this.handlers = opts;
      this.lastSeq = 0;
      // Client id -> text, until the broker has stored it. Kept in sessionStorage when
      // `persist` is set, so lines typed offline survive a reload and are sent once.
      this.storageKey = opts.persist ? "sb-outbox-" + opts.sessionId : null;
      this.outbox = new Map(this.storageKey ? JSON.parse(sessionStorage.getItem(this.storageKey) || "[]") : []);
      this.attempt = 0;
      this.stopped = false;
      this.ws = null;
      this.retryTimer = null;
      // The browser knows first when the network goes: do not wait for TCP to notice.
      window.addEventListener("offline", () => {
        if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "offline");
      });
      window.addEventListener("online", () => {
        if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
        clearTimeout(this.retryTimer);
        this.attempt = 0;
        this.connect();
      });
    }
    start() { this.connect(); }
    stop() { this.stopped = true; if (this.ws) this.ws.close(1000); }
    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + "/api/v1/sessions/" + this.sessionId + "/ws");
      this.ws = ws;
      this.status("connecting");
      ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token: this.token, after: this.lastSeq }));
      ws.onmessage = (m) => this.receive(JSON.parse(m.data));
      ws.onclose = (e) => {
        if (this.ws !== ws) return;
        if (this.stopped || FINAL_CODES.has(e.code)) {
          this.status(e.code === 4010 ? "ended" : e.code === 4000 ? "replaced" : "closed", e.code);
          return;
        }
        if (navigator.onLine === false) {
          this.status("offline");  // the "online" event reconnects at once
          return;
        }
        const delay = Math.min(30000, 500 * 2 ** this.attempt) * (0.5 + Math.random());
        this.status("reconnecting", { retryAt: Date.now() + delay, attempt: this.attempt + 1 });
        this.attempt += 1;
        this.retryTimer = setTimeout(() => this.connect(), delay);
      };
    }
    receive(msg) {
      const h = this.handlers;
      if (msg.type === "welcome") { this.me = msg.you; h.onWelcome && h.onWelcome(msg); }
      else if (msg.type === "event") {
        const event = msg.event;
        if (event.seq <= this.lastSeq) return;
        this.lastSeq = event.seq;
        if (event.client_id) this.forget(event.client_id);
        h.onEvent && h.onEvent(event);
      } else if (msg.type === "synced") {
        this.attempt = 0;
        this.status("connected");
        for (const [id, text] of this.outbox) this.transmit(id, text);
      } else if (msg.type === "chat.ack") { this.forget(msg.id); }
      else if (msg.type === "error") {
        if (msg.ref) this.forget(msg.ref);
        h.onError && h.onError(msg);
      }
      else if (h.onFrame) { h.onFrame(msg); }  // other families (screen sharing, transfers)
    }
    /* Send any other protocol frame now; false when the socket is not open. */
    sendFrame(frame) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    forget(id) {
      if (this.outbox.delete(id)) this.save();
      this.handlers.onSettled && this.handlers.onSettled(id);
    }
    save() {
      if (this.storageKey) sessionStorage.setItem(this.storageKey, JSON.stringify([...this.outbox]));
    }
    /* Lines not yet stored by the broker, oldest first: [[id, text], ...]. */
    pending() { return [...this.outbox]; }
    send(text) {
      const id = newId();
      this.outbox.set(id, text);
      this.save();
      this.transmit(id, text);
      return id;
    }
    transmit(id, text) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "chat.send", id: id, text: text }));
      }
    }
    status(state, code) { this.handlers.onStatus && this.handlers.onStatus(state, code); }
  }

  /* Enter sends, Shift+Enter makes a new line. */
  function wireComposer(form, onSend) {
    const area = form.querySelector("textarea");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = area.value.trim();
      if (!text) return;
      onSend(text);
      area.value = "";
      area.focus();
    });
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    });
  }

  function scrollToEnd(list) { list.scrollTop = list.scrollHeight; }

  return { linkify, renderEvent, renderPending, SessionSocket, wireComposer, scrollToEnd, fill, newId, lines };
})();
