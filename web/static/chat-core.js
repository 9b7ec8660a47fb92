/* Shared by the technician dashboard and the end user's chat page.
   SessionSocket speaks docs/protocol.md: hello with the last seen sequence number,
   replay, live events; unsent messages keep their client id and are resent after a
   reconnect, so the broker stores each once. Chat text is only ever set as text. */
"use strict";
window.SB = (function () {
  const P = window.SBProtocol;
  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
  const TRAILING = /[.,;:!?)\]}'"]+$/;
  // Bidirectional embeddings, overrides and isolates: shown, never obeyed (docs/security.md).
  const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

  /* Text as it may be shown: each bidi control replaced by a visible marker like
     "[U+202E]", so that no chat line, name or file name can reorder what follows it. */
  function inert(text) {
    return String(text ?? "").replace(BIDI_CONTROLS,
      (c) => "[U+" + c.charCodeAt(0).toString(16).toUpperCase() + "]");
  }

  /* An element showing untrusted text in a direction of its own (dir=auto isolates it). */
  function isolated(tag, text, className) {
    const el = document.createElement(tag);
    el.dir = "auto";
    el.textContent = inert(text);
    if (className) el.className = className;
    return el;
  }

  /* A translated template filled in as nodes: each value isolated in a <bdi>, so that a
     right-to-left name cannot turn the sentence around it. */
  function fillNodes(template, values) {
    const nodes = [];
    let last = 0;
    for (const match of template.matchAll(/%\((\w+)\)s/g)) {
      nodes.push(document.createTextNode(template.slice(last, match.index)));
      const bdi = document.createElement("bdi");
      bdi.textContent = inert(values[match[1]]);
      nodes.push(bdi);
      last = match.index + match[0].length;
    }
    nodes.push(document.createTextNode(template.slice(last)));
    return nodes;
  }

  function linkify(text, into) {
    text = inert(text);
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

  /* A technician's "open: example.com/help" (or "goto: …") line: the address as a link to
     the page the broker recognised (event.open_url or goto_url, http or https only), the
     rest as text. */
  function pageLink(event, into) {
    const text = inert(event.text);
    const match = /^(\s*(?:open|goto):\s*)(\S+)([\s\S]*)$/i.exec(text);
    if (!match) { linkify(text, into); return; }
    const a = document.createElement("a");
    a.href = event.open_url || event.goto_url;
    a.textContent = match[2];
    a.rel = "noopener noreferrer nofollow";
    a.target = "_blank";
    a.className = "open-page-link";
    into.append(document.createTextNode(match[1]), a);
    linkify(match[3], into);
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function clock(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  /* A translated template filled in as text; values are shown inert (see inert). */
  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, k) => inert(values[k]));
  }

  /* A person's name as this page shows it: the name a visitor got for giving none ("Guest"
     in the language of their page) is said in this page's language (strings.guest, with
     every language's word for it in strings.guest_names). */
  function personName(name, strings) {
    return strings.guest && (strings.guest_names || []).includes(name) ? strings.guest : name;
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
    if (event.type === P.event.MESSAGE) {
      const mine = event.author && event.author.sender === mySender;
      li.className = "msg " + (event.author && event.author.role === "technician" ? "from-tech" : "from-user");
      const who = isolated("span", mine && strings.you ? strings.you : event.author ? personName(event.author.name, strings) : "", "who");
      if (event.author) who.title = inert(personName(event.author.name, strings));
      const body = document.createElement("div");
      body.className = "text";
      body.dir = "auto";
      if (event.open_url || event.goto_url) pageLink(event, body); else linkify(event.text, body);
      li.append(who, time, body);
      if (mine) li.classList.add("mine");
    } else {
      li.className = "sys";
      const name = event.author ? personName(event.author.name, strings) : "";
      const mine = event.author && event.author.sender === mySender;
      const key = {
        [P.event.JOINED]: "joined", [P.event.CREATED]: "created", [P.event.ENDED]: "ended_line",
        [P.event.DISCONNECTED]: !event.author ? "restarted" : mine ? "disconnected_you" : "disconnected",
        [P.event.RECONNECTED]: mine ? "reconnected_you" : "reconnected",
        // The end user's page says it their way: "You are now connected with Bob".
        [P.event.HANDED_OVER]: strings.handed_over_you ? "handed_over_you"
          : event.reason === "taken_over" && strings.taken_over ? "taken_over" : "handed_over",
        [P.event.TECHNICIAN_JOINED]: "technician_joined", [P.event.TECHNICIAN_LEFT]: "technician_left",
        [P.event.SURVEY_COMPLETED]: "survey_completed",
      }[event.type];
      // Other families (screen sharing, files) register their own lines in SB.lines.
      const family = lines[event.type.split(".")[0]];
      const own = !key && family ? family(event, mySender) : null;
      if (own && own.className) li.classList.add(own.className);
      // A family may render more than a line of text (files: a card with a download link).
      li.append(time);
      if (own && own.node) li.append(own.node);
      else if (own && own.nodes) li.append(...own.nodes);
      else if (own) li.append(document.createTextNode(inert(own.text)));
      else li.append(...fillNodes((key && strings[key]) || event.type,
        { name: event.name ? personName(event.name, strings) : name, from: event.from, to: event.to }));
    }
    return li;
  }

  /* A line the person wrote that the broker has not confirmed yet (offline, or on its way).
     markFailed turns it into one the broker refused or can no longer take, with the reason. */
  function renderPending(id, text, strings) {
    const li = document.createElement("li");
    li.className = "msg mine pending";
    li.dataset.clientId = id;
    const who = isolated("span", strings.you || "", "who");
    const state = document.createElement("span");
    state.className = "pending-note";
    state.textContent = strings.pending || "…";
    const body = document.createElement("div");
    body.className = "text";
    body.dir = "auto";
    linkify(text, body);
    li.append(who, state, body);
    return li;
  }

  function markFailed(li, reason, strings) {
    li.classList.remove("pending");
    li.classList.add("failed");
    li.querySelector(".pending-note").textContent = (strings.not_sent || "") + " " + reason;
  }

  // Ended, not allowed, or taken over by a newer window of the same person (REPLACED):
  // reconnecting would not help (and two windows would keep replacing each other).
  const FINAL_CODES = new Set(P.finalClose);

  /* The tab's sessionStorage, or null where the page may not have it: a chat framed by
     another site (its chat button) in a browser that keeps such frames from storage. */
  function tabStorage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  class SessionSocket {
    constructor(opts) {
      this.sessionId = opts.sessionId;
      this.token = opts.token || null;
      this.handlers = opts;
      this.lastSeq = 0;
      // Client id -> text, until the broker has stored it. Kept in sessionStorage when
      // `persist` is set, so lines typed offline survive a reload and are sent once.
      this.storageKey = opts.persist && tabStorage() ? "sb-outbox-" + opts.sessionId : null;
      this.outbox = new Map(this.storageKey ? JSON.parse(sessionStorage.getItem(this.storageKey) || "[]") : []);
      this.attempt = 0;
      this.stopped = false;
      this.ws = null;
      this.retryTimer = null;
      this.finalCode = null;  // the close code once reconnecting cannot help
      this.finalReason = "";  // and its reason (why a technician's login ended)
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
      ws.onopen = () => ws.send(JSON.stringify({ type: P.frame.HELLO, token: this.token, after: this.lastSeq }));
      ws.onmessage = (m) => this.receive(JSON.parse(m.data));
      ws.onclose = (e) => {
        if (this.ws !== ws) return;
        if (this.stopped || FINAL_CODES.has(e.code)) {
          if (!this.stopped) {
            this.finalCode = e.code;
            this.finalReason = e.reason;
            // Lines still in the outbox can never be sent now: say so (pages that can).
            if (this.handlers.onFailed) for (const id of [...this.outbox.keys()]) this.fail(id, { code: e.code, reason: e.reason });
          }
          this.status(e.code === P.close.ENDED ? "ended" : e.code === P.close.REPLACED ? "replaced" : "closed", e.code, e.reason);
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
      if (msg.type === P.frame.WELCOME) { this.me = msg.you; h.onWelcome && h.onWelcome(msg); }
      else if (msg.type === P.frame.EVENT) {
        const event = msg.event;
        if (event.seq <= this.lastSeq) return;
        this.lastSeq = event.seq;
        if (event.client_id) this.forget(event.client_id);
        h.onEvent && h.onEvent(event);
      } else if (msg.type === P.frame.SYNCED) {
        this.attempt = 0;
        this.status("connected");
        for (const [id, text] of this.outbox) this.transmit(id, text);
      } else if (msg.type === P.frame.CHAT_ACK) { this.forget(msg.id); }
      else if (msg.type === P.frame.ERROR) {
        if (msg.ref && this.outbox.has(msg.ref)) this.fail(msg.ref, msg);
        else if (msg.ref) this.forget(msg.ref);
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
    /* The broker refused a line, or the socket closed for good: it will not be sent. Pages
       with onFailed show it as failed (with error.message or error.code), others drop it. */
    fail(id, error) {
      if (this.outbox.delete(id)) this.save();
      if (this.handlers.onFailed) this.handlers.onFailed(id, error);
      else this.handlers.onSettled && this.handlers.onSettled(id);
    }
    save() {
      if (this.storageKey) sessionStorage.setItem(this.storageKey, JSON.stringify([...this.outbox]));
    }
    /* Lines not yet stored by the broker, oldest first: [[id, text], ...]. */
    pending() { return [...this.outbox]; }
    send(text) {
      const id = newId();
      if (this.finalCode !== null && this.handlers.onFailed) {
        // Closed for good: fail it once the caller has shown it.
        queueMicrotask(() => this.fail(id, { code: this.finalCode, reason: this.finalReason }));
        return id;
      }
      this.outbox.set(id, text);
      this.save();
      this.transmit(id, text);
      return id;
    }
    transmit(id, text) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: P.frame.CHAT_SEND, id: id, text: text }));
      }
    }
    status(state, code, reason) { this.handlers.onStatus && this.handlers.onStatus(state, code, reason); }
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

  /* "Maria is typing…" both ways (docs/protocol.md, Typing). Tells the others while `area`
     is typed in (again every 3 s while it goes on; stopped when emptied, sent, or idle for
     5 s), and shows in `indicator` who else types, until they stop, write, or 6 s pass
     without a repeat. strings.typing: "%(name)s is typing…". Call before socket.start(). */
  function wireTyping(socket, area, indicator, strings) {
    const REPEAT_MS = 3000, IDLE_MS = 5000, STALE_MS = 6000;
    let telling = false, toldAt = 0, idle = null;
    const typists = new Map();  // sender -> {name, timer}
    function tell(typing) {
      clearTimeout(idle);
      if (socket.sendFrame({ type: P.frame.CHAT_TYPING, typing: typing })) {
        telling = typing;
        toldAt = Date.now();
      }
    }
    area.addEventListener("input", () => {
      if (!area.value.trim()) { if (telling) tell(false); return; }
      if (!telling || Date.now() - toldAt >= REPEAT_MS) tell(true);
      clearTimeout(idle);
      idle = setTimeout(() => tell(false), IDLE_MS);
    });
    area.form.addEventListener("submit", () => { if (telling) tell(false); });
    function show() {
      const names = [...typists.values()].map((t) => t.name);
      indicator.replaceChildren(...(names.length ? fillNodes(strings.typing, { name: names.join(", ") }) : []));
      indicator.hidden = !names.length;
    }
    function stopped(sender) {
      const typist = typists.get(sender);
      if (!typist) return;
      clearTimeout(typist.timer);
      typists.delete(sender);
      show();
    }
    const h = socket.handlers;
    const onFrame = h.onFrame, onEvent = h.onEvent;
    h.onFrame = (msg) => {
      if (msg.type !== P.frame.TYPING) { if (onFrame) onFrame(msg); return; }
      const sender = msg.author.sender;
      stopped(sender);
      if (msg.typing) {
        typists.set(sender, { name: personName(msg.author.name, strings),
          timer: setTimeout(() => stopped(sender), STALE_MS) });
        show();
      }
    };
    h.onEvent = (event) => {
      if (event.type === P.event.MESSAGE && event.author) stopped(event.author.sender);
      if (onEvent) onEvent(event);
    };
  }

  /* Transcripts are written in the reader's time zone (web/transcript.py): every page
     with a chat remembers the browser's in the `tz` cookie. */
  function rememberZone() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const cookie = "tz=" + encodeURIComponent(zone || "");
    if (zone && !document.cookie.split("; ").includes(cookie)) {
      document.cookie = cookie + "; path=/; max-age=31536000; SameSite=Lax";
    }
    return zone;
  }
  rememberZone();

  return { linkify, inert, isolated, fillNodes, renderEvent, renderPending, markFailed, personName, SessionSocket,
           wireComposer, wireTyping, scrollToEnd, fill, newId, lines, rememberZone };
})();
