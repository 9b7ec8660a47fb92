/* The technician dashboard: the live session list, and one tab per open session. */
"use strict";
(function () {
  const root = document.getElementById("dashboard");
  const csrf = root.dataset.csrf;
  const tabs = document.getElementById("tabs");
  const panes = document.getElementById("panes");
  const emptyState = document.getElementById("empty-state");
  const errorBox = document.getElementById("dashboard-error");
  const template = document.getElementById("session-pane");
  const strings = JSON.parse(root.dataset.strings);  // translated by the server
  const sessions = new Map();  // id -> session JSON from the broker
  const open = new Map();      // id -> {tab, pane, socket}
  const deliveries = new Map();  // session id -> Map(delivery id -> delivery JSON)
  /* Other dashboard modules (handoff.js, screen.js) hook in through window.SBDashboard:
     paneOpened(id, pane), sessionChanged(session, pane|null), frame(msg) for dashboard
     socket frames this file does not handle. */
  const hooks = { paneOpened: [], sessionChanged: [], frame: [] };
  function fire(name, ...args) {
    for (const fn of hooks[name]) {
      try { fn(...args); } catch (e) { console.error(e); }
    }
  }
  let active = null;

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method: method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.message || response.statusText);
      error.code = data.error;
      throw error;
    }
    return data;
  }

  /* -- sending the key by SMS or email ------------------------------------------- */

  function deliveryText(d) {
    const head = SB.fill(d.channel === "sms" ? strings.sms_to : strings.email_to, { to: d.to });
    const state = strings["delivery_" + d.status] || d.status;
    return head + " · " + state + (d.error ? ": " + d.error : "");
  }

  function renderDeliveries(id) {
    const entry = open.get(id);
    if (!entry) return;
    const list = entry.pane.querySelector('[data-role="deliveries"]');
    const items = [...(deliveries.get(id) || new Map()).values()]
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
    list.replaceChildren(...items.map((d) => {
      const li = document.createElement("li");
      li.dataset.status = d.status;
      li.dataset.deliveryId = d.delivery_id;
      li.textContent = deliveryText(d);
      li.title = d.history.map((h) => new Date(h.at).toLocaleTimeString() + " " + h.detail).join("\n");
      return li;
    }));
    list.hidden = items.length === 0;
  }

  function rememberDelivery(d) {
    if (!deliveries.has(d.session_id)) deliveries.set(d.session_id, new Map());
    const known = deliveries.get(d.session_id).get(d.delivery_id);
    // Live updates may overtake the answer to our own request: every change adds to
    // the history, so the longer history is the newer news.
    if (known && known.history.length > d.history.length) return;
    deliveries.get(d.session_id).set(d.delivery_id, d);
    renderDeliveries(d.session_id);
  }

  function mailtoHref(id, language) {
    const stored = recallKey(id);
    if (!stored) return "#";
    const base = new URL(stored.url).origin;
    const subject = SB.fill(strings.mailto_subject, { name: root.dataset.name });
    const body = SB.fill(strings.mailto_body, { link: stored.url, join: base + "/join", key: stored.key });
    return "mailto:?subject=" + encodeURIComponent(subject) + "&body=" + encodeURIComponent(body);
  }

  function wireSending(id, pane) {
    const note = pane.querySelector('[data-role="sent-note"]');
    for (const channel of ["sms", "email"]) {
      const form = pane.querySelector('[data-role="' + channel + '-form"]');
      const error = form.querySelector('[data-role="form-error"]');
      const setup = root.dataset[channel];
      form.elements.language.value = root.dataset.defaultLang || "en";
      pane.querySelector('[data-action="show-' + channel + '"]').addEventListener("click", () => {
        for (const other of pane.querySelectorAll(".send-form")) other.hidden = other !== form;
        note.hidden = true;
        error.hidden = true;
        const setupNote = form.querySelector('[data-role="setup-note"]');
        setupNote.textContent = setup;
        setupNote.hidden = !setup;
        form.querySelector('button[type="submit"]').disabled = Boolean(setup);
        const mailto = form.querySelector('[data-role="mailto"]');
        if (mailto) mailto.href = mailtoHref(id, form.elements.language.value);
        form.elements.to.focus();
      });
      form.querySelector('[data-action="cancel-send"]').addEventListener("click", () => { form.hidden = true; });
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        error.hidden = true;
        const submit = form.querySelector('button[type="submit"]');
        submit.disabled = true;
        try {
          const d = await api("POST", "/api/v1/sessions/" + id + "/deliveries",
            { channel: channel, to: form.elements.to.value, language: form.elements.language.value });
          rememberDelivery(d);
          form.hidden = true;
          form.reset();
          form.elements.language.value = root.dataset.defaultLang || "en";
          note.textContent = SB.fill(strings.queued_to, { to: d.to });
          note.hidden = false;
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        } finally {
          submit.disabled = Boolean(setup);
        }
      });
    }
  }

  async function loadDeliveries(id) {
    try {
      const data = await api("GET", "/api/v1/sessions/" + id + "/deliveries");
      for (const d of data.deliveries) rememberDelivery(d);
    } catch (e) { /* the list fills from live updates */ }
  }

  /* The plain key exists only in this browser: the broker keeps hashes. */
  function rememberKey(id, key, url) { localStorage.setItem("sb-key-" + id, JSON.stringify({ key, url })); }
  function recallKey(id) { try { return JSON.parse(localStorage.getItem("sb-key-" + id)); } catch (e) { return null; } }

  function label(s) {
    return s.end_user_name || (s.state === "waiting" ? strings.waiting : strings.customer);
  }

  /* In lists and tabs a waiting session is best told apart by its key, if this browser has it. */
  function shortLabel(s) {
    const stored = s.state === "waiting" && !s.end_user_name ? recallKey(s.session_id) : null;
    return stored ? stored.key : label(s);
  }

  function mmss(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    return String(Math.floor(seconds / 60)).padStart(2, "0") + ":" + String(seconds % 60).padStart(2, "0");
  }

  function stateText(s) {
    if (s.state === "ended") return strings["reason_" + s.end_reason] || strings.ended;
    if (s.state === "reconnecting") {
      const left = Math.max(0, Math.round((new Date(s.reconnect_deadline) - Date.now()) / 1000));
      return SB.fill(strings.reconnecting_user, { name: label(s), time: mmss(left) });
    }
    return s.state === "active" ? SB.fill(strings.connected_with, { name: label(s) }) : strings.waiting;
  }

  /* Today's sessions show the time only; older ones the date too. */
  function when(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const today = new Date().toDateString() === d.toDateString();
    return d.toLocaleString([], today ? { hour: "2-digit", minute: "2-digit" }
      : { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function renderList() {
    for (const state of ["waiting", "active", "ended"]) {
      const ul = document.getElementById("list-" + state);
      ul.replaceChildren();
      // A session whose customer is reconnecting is still an active one.
      const items = [...sessions.values()].filter((s) => s.state === state
        || (state === "active" && s.state === "reconnecting"))
        .sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
      for (const s of items.slice(0, state === "ended" ? 20 : 100)) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "session-item" + (s.session_id === active ? " current" : "");
        button.dataset.sessionId = s.session_id;
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = shortLabel(s);
        if (name.textContent !== label(s)) name.classList.add("key-label");
        button.title = label(s);
        const time = document.createElement("span");
        time.className = "when muted small";
        time.textContent = when(s.created_at);
        button.append(name, time);
        button.addEventListener("click", () => openSession(s.session_id));
        li.append(button);
        ul.append(li);
      }
      if (!items.length) {
        const li = document.createElement("li");
        li.className = "none muted small";
        li.textContent = strings.none;
        ul.append(li);
      }
    }
  }

  function select(id) {
    active = id;
    for (const [sid, entry] of open) {
      entry.pane.hidden = sid !== id;
      entry.tab.classList.toggle("current", sid === id);
      entry.tab.setAttribute("aria-selected", sid === id ? "true" : "false");
    }
    emptyState.hidden = open.size > 0;
    renderList();
  }

  function updatePane(id) {
    const entry = open.get(id);
    const s = sessions.get(id);
    if (!entry || !s) return;
    const q = (role) => entry.pane.querySelector('[data-role="' + role + '"]');
    const stored = recallKey(id);
    q("key").textContent = stored ? stored.key : "– – –";
    q("join-url").value = stored ? stored.url : "";
    const waiting = s.state === "waiting";
    q("key-row").hidden = !waiting;
    q("key-block").hidden = !waiting;
    q("link-block").hidden = !waiting || !stored;
    if (!waiting) for (const form of entry.pane.querySelectorAll(".send-form")) form.hidden = true;
    q("state").textContent = stateText(s);
    q("state").title = stateText(s);
    q("state").dataset.state = s.state;
    entry.pane.querySelector('[data-action="revoke"]').hidden = !waiting;
    entry.pane.querySelector('[data-action="end"]').hidden = s.state === "ended";
    q("composer").hidden = s.state === "ended";
    entry.tabLabel.textContent = shortLabel(s);
    entry.tab.title = label(s);
    entry.tab.dataset.state = s.state;
    if (s.state === "ended") localStorage.removeItem("sb-key-" + id);
    tickCountdown(entry, s);
    fire("sessionChanged", s, entry.pane);
  }

  function tickCountdown(entry, s) {
    if (s.state === "reconnecting") {
      const pill = entry.pane.querySelector('[data-role="state"]');
      pill.textContent = stateText(s);
    }
    const el = entry.pane.querySelector('[data-role="countdown"]');
    if (s.state !== "waiting" || !s.key_expires_at) { el.textContent = ""; return; }
    const left = Math.max(0, Math.round((new Date(s.key_expires_at) - Date.now()) / 1000));
    el.textContent = left > 0 ? SB.fill(strings.expires_in, { time: mmss(left) }) : strings.key_expired;
    el.classList.toggle("expired", left === 0);
  }
  setInterval(() => { for (const [id, entry] of open) tickCountdown(entry, sessions.get(id) || {}); }, 1000);

  function openSession(id) {
    if (open.has(id)) { select(id); return; }
    const pane = template.content.firstElementChild.cloneNode(true);
    pane.dataset.sessionId = id;
    const tab = document.createElement("button");
    tab.type = "button";
    tab.className = "tab";
    tab.setAttribute("role", "tab");
    tab.dataset.sessionId = id;
    const tabLabel = document.createElement("span");
    tabLabel.className = "tab-label";
    const close = document.createElement("span");
    close.className = "tab-close";
    close.textContent = "×";
    close.title = strings.close_tab;
    close.setAttribute("aria-label", strings.close_tab);
    tab.append(tabLabel, close);
    tabs.append(tab);
    panes.append(pane);
    const messages = pane.querySelector('[data-role="messages"]');
    const socket = new SB.SessionSocket({
      sessionId: id,
      onEvent: (event) => {
        const li = SB.renderEvent(event, strings, root.dataset.me ? "t" + root.dataset.me : null);
        const pending = event.client_id && messages.querySelector('[data-client-id="' + CSS.escape(event.client_id) + '"]');
        if (pending) pending.replaceWith(li); else messages.insertBefore(li, messages.querySelector(".pending"));
        SB.scrollToEnd(messages);
      },
      onSettled: (clientId) => {
        const pending = messages.querySelector('[data-client-id="' + CSS.escape(clientId) + '"]');
        if (pending && pending.classList.contains("pending")) pending.remove();
      },
      onError: (err) => showError(err.message),
      onStatus: (state) => {
        const conn = pane.querySelector('[data-role="conn"]');
        conn.textContent = state === "replaced" ? strings.replaced : strings.reconnecting;
        conn.hidden = !["reconnecting", "offline", "replaced"].includes(state);
      },
    });
    const entry = { tab, tabLabel, pane, socket };
    open.set(id, entry);
    tab.addEventListener("click", (e) => {
      if (e.target === close) { closeTab(id); } else { select(id); }
    });
    pane.querySelector('[data-action="copy"]').addEventListener("click", async () => {
      const input = pane.querySelector('[data-role="join-url"]');
      try { await navigator.clipboard.writeText(input.value); }
      catch (e) { input.select(); document.execCommand("copy"); }
      const note = pane.querySelector('[data-role="copied"]');
      note.hidden = false;
      setTimeout(() => { note.hidden = true; }, 2000);
    });
    pane.querySelector('[data-action="end"]').addEventListener("click", () => act(id, "end"));
    pane.querySelector('[data-action="revoke"]').addEventListener("click", () => act(id, "revoke"));
    pane.querySelector('[data-role="export-text"]').href = "/api/v1/sessions/" + id + "/transcript?format=text";
    pane.querySelector('[data-role="export-html"]').href = "/api/v1/sessions/" + id + "/transcript?format=html";
    fire("paneOpened", id, pane);
    SB.wireComposer(pane.querySelector('[data-role="composer"]'), (text) => {
      messages.append(SB.renderPending(socket.send(text), text, strings));
      SB.scrollToEnd(messages);
    });
    wireSending(id, pane);
    SBScreen.attach(socket, { role: "technician", mount: {
      root: pane, viewerBefore: messages, actions: pane.querySelector(".pane-actions") } });
    SBFiles.attach(socket, { sessionId: id, headers: { "X-CSRF-Token": csrf },
      mount: { root: pane, list: messages, composer: pane.querySelector('[data-role="composer"]') } });
    socket.start();
    loadDeliveries(id);
    updatePane(id);
    select(id);
  }

  function closeTab(id) {
    const entry = open.get(id);
    if (!entry) return;
    entry.socket.stop();
    entry.tab.remove();
    entry.pane.remove();
    open.delete(id);
    select(open.size ? [...open.keys()].pop() : null);
  }

  async function act(id, action) {
    showError("");
    try {
      const s = await api("POST", "/api/v1/sessions/" + id + "/" + action);
      sessions.set(id, s);
      updatePane(id);
      renderList();
    } catch (e) { showError(e.message); }
  }

  document.getElementById("start-session").addEventListener("click", async () => {
    showError("");
    try {
      const s = await api("POST", "/api/v1/sessions");
      rememberKey(s.session_id, s.key, s.join_url);
      sessions.set(s.session_id, s);
      openSession(s.session_id);
    } catch (e) { showError(e.message); }
  });

  function listen(attempt) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/api/v1/technician/ws");
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "delivery.update") { rememberDelivery(msg.delivery); return; }
      if (msg.type !== "session.update") { fire("frame", msg); return; }
      const s = msg.session;
      const mine = s.technician.id === Number(root.dataset.me)
        || (s.collaborator_ids || []).includes(Number(root.dataset.me)) || root.dataset.admin === "1";
      if (!mine) {  // handed over, or left: it is someone else's now
        sessions.delete(s.session_id);
        renderList();
        return;
      }
      sessions.set(msg.session.session_id, msg.session);
      updatePane(msg.session.session_id);
      renderList();
    };
    ws.onopen = () => { attempt = 0; };
    ws.onclose = (e) => {
      if (e.code === 4401) { location.href = "/login"; return; }
      setTimeout(() => listen(attempt + 1), Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random()));
    };
  }
  window.SBDashboard = {
    on: (name, fn) => hooks[name].push(fn),
    api, mmss, strings, sessions, openSession, showError,
    me: Number(root.dataset.me), csrf,
  };
  renderList();
  // Listen once the modules loaded after this file have hooked in.
  window.addEventListener("DOMContentLoaded", () => listen(0));
})();
