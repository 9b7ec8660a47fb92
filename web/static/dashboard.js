/* The technician dashboard: the live session list, and one tab per open session.
   Open tabs, the tab in front and unsent drafts survive a reload (sessionStorage, per
   technician and per browser tab; logging out clears them). Keys live in memory only:
   the broker hands them to their owner again (GET /api/v1/sessions/{id}). */
"use strict";
(function () {
  const P = window.SBProtocol;
  const root = document.getElementById("dashboard");
  const csrf = root.dataset.csrf;
  const me = Number(root.dataset.me);
  const admin = root.dataset.admin === "1";
  const tabs = document.getElementById("tabs");
  const panes = document.getElementById("panes");
  const emptyState = document.getElementById("empty-state");
  const errorBox = document.getElementById("dashboard-error");
  const template = document.getElementById("session-pane");
  const strings = JSON.parse(root.dataset.strings);  // translated by the server
  const sessions = new Map();  // id -> session JSON from the broker
  const open = new Map();      // id -> {tab, tabLabel, pane, chat (SBPane.chat)}
  const keys = new Map();      // id -> {key, url}: live keys of sessions this browser shows
  const ours = new Set();      // sessions this technician owned or took part in
  const STORE = "sb-console-" + me;
  const saved = (() => { try { return JSON.parse(sessionStorage.getItem(STORE)) || {}; } catch (e) { return {}; } })();
  const drafts = saved.drafts || {};  // session id -> text typed but not sent
  /* Other modules hook in through window.SBDashboard.on(name, fn):
     paneOpened(id, pane, socket); sessionChanged(session, pane) for an open pane;
     transition(session, previousState) for every session update; selected(id | null);
     frame(msg): dashboard socket frames this file does not handle; sessionFrame(id, msg):
     session socket frames nobody else took; event(id, event, live): live is false for the
     history a pane replays when it opens; listed(button, session); alert(alert) and
     alertDone(key), raised by any module for console-alerts.js. */
  const hooks = { paneOpened: [], sessionChanged: [], transition: [], selected: [], frame: [],
    sessionFrame: [], event: [], listed: [], alert: [], alertDone: [] };
  function fire(name, ...args) {
    for (const fn of hooks[name]) {
      try { fn(...args); } catch (e) { console.error(e); }
    }
  }
  let active = null;
  let signedOut = null;  // why this login ended, once the broker closed the socket saying so

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

  function persist() {
    sessionStorage.setItem(STORE, JSON.stringify({ tabs: [...open.keys()], active, drafts }));
  }

  /* -- who is who ------------------------------------------------------------------- */

  const involved = (s) => s.technician.id === me || (s.collaborator_ids || []).includes(me);
  /* Handed to someone else (or left) after this technician had it. */
  const handedAway = (s) => !involved(s) && ours.has(s.session_id);

  function label(s) {
    if (s.end_user_name) return SB.personName(s.end_user_name, strings);
    if (!s.technician || s.technician.id === null) return strings.customer_request;
    if (s.state === "waiting") return strings.waiting;
    return s.started_at ? strings.customer : strings.nobody_joined;
  }

  /* In lists and tabs a waiting session is best told apart by its key. */
  function shortLabel(s) {
    const key = s.state === "waiting" && !s.end_user_name ? keys.get(s.session_id) : null;
    return key ? key.key : label(s);
  }

  function mmss(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    return String(Math.floor(seconds / 60)).padStart(2, "0") + ":" + String(seconds % 60).padStart(2, "0");
  }

  function stateText(s) {
    if (signedOut) return signedOut;  // nothing shown here is live any more
    if (s.state === "ended") return strings["reason_" + s.end_reason] || strings.ended;
    if (handedAway(s)) return SB.fill(strings.handed_to, { name: s.technician.name });
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
        if (handedAway(s)) {  // still listed: marked, with whom it is now
          button.classList.add("handed-over");
          const to = document.createElement("span");
          to.className = "handed small";
          to.textContent = SB.fill(strings.handed_to, { name: s.technician.name });
          button.title = label(s) + " · " + to.textContent;
          button.append(to);
        }
        button.addEventListener("click", () => openSession(s.session_id));
        fire("listed", button, s);
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
    active = open.has(id) ? id : null;
    for (const [sid, entry] of open) {
      entry.pane.hidden = sid !== active;
      entry.tab.classList.toggle("current", sid === active);
      entry.tab.setAttribute("aria-selected", sid === active ? "true" : "false");
    }
    emptyState.hidden = open.size > 0;
    renderList();
    persist();
    fire("selected", active);
  }

  function setReadOnly(id, text) {
    const entry = open.get(id);
    if (entry) entry.chat.setReadOnly(text);
  }

  function updatePane(id) {
    const entry = open.get(id);
    const s = sessions.get(id);
    if (!entry || !s) return;
    const q = (role) => entry.pane.querySelector('[data-role="' + role + '"]');
    const waiting = s.state === "waiting";
    q("state").textContent = stateText(s);
    q("state").title = stateText(s);
    q("state").dataset.state = signedOut ? "signed-out"
      : handedAway(s) && s.state !== "ended" ? "handed" : s.state;
    const readOnly = Boolean(entry.chat.readOnly());
    entry.pane.classList.toggle("ended", s.state === "ended");
    entry.pane.querySelector('[data-action="revoke"]').hidden = !waiting || readOnly;
    entry.pane.querySelector('[data-action="end"]').hidden = s.state === "ended" || readOnly;
    q("composer").hidden = s.state === "ended";
    if (s.state === "ended") q("notice").hidden = true;
    else if (handedAway(s)) setReadOnly(id, SB.fill(strings.now_owns, { name: s.technician.name }));
    entry.tabLabel.textContent = shortLabel(s);
    entry.tab.title = label(s);
    entry.tab.dataset.state = signedOut ? "signed-out" : s.state;
    tickCountdown(entry, s);
    fire("sessionChanged", s, entry.pane);
  }

  function tickCountdown(entry, s) {
    if (s.state === "reconnecting" && !handedAway(s)) {
      entry.pane.querySelector('[data-role="state"]').textContent = stateText(s);
    }
  }
  setInterval(() => { for (const [id, entry] of open) tickCountdown(entry, sessions.get(id) || {}); }, 1000);

  /* A session as the broker has it now; its owner (and admins) also get the live key. */
  async function refreshSession(id) {
    try {
      const s = await api("GET", "/api/v1/sessions/" + id);
      if (s.key) keys.set(id, { key: s.key, url: s.join_url });
      if (!sessions.has(id)) sessions.set(id, s);
      if (involved(s)) ours.add(id);
      updatePane(id);
      renderList();
    } catch (e) { /* not ours to see any more: the pane says so when its socket closes */ }
  }

  function openSession(id, opts) {
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
    tabLabel.textContent = "…";
    const close = document.createElement("span");
    close.className = "tab-close";
    close.textContent = "×";
    close.title = strings.close_tab;
    close.setAttribute("aria-label", strings.close_tab);
    tab.append(tabLabel, close);
    tabs.append(tab);
    panes.append(pane);
    const entry = { tab, tabLabel, pane, chat: null };
    open.set(id, entry);
    tab.addEventListener("click", (e) => {
      if (e.target === close) { closeTab(id); } else { select(id); }
    });
    pane.querySelector('[data-action="end"]').addEventListener("click", () => endSession(id));
    pane.querySelector('[data-action="revoke"]').addEventListener("click", () => revokeKey(id));
    pane.querySelector('[data-role="transcript"]').href = "/sessions/" + encodeURIComponent(id) + "/transcript";
    entry.chat = SBPane.chat({ id, pane, strings, me, api, draft: drafts[id],
      onDraft: (text) => { if (text) drafts[id] = text; else delete drafts[id]; persist(); },
      onEvent: (event, live) => fire("event", id, event, live),
      onFrame: (msg) => fire("sessionFrame", id, msg),
      onReadOnly: () => updatePane(id) });
    const socket = entry.chat.socket;
    const messages = pane.querySelector('[data-role="messages"]');
    const composer = pane.querySelector('[data-role="composer"]');
    fire("paneOpened", id, pane, socket);
    SBScreen.attach(socket, { role: "technician", mount: {
      root: pane, viewerBefore: messages, actions: pane.querySelector(".pane-actions") } });
    SBFiles.attach(socket, { sessionId: id, headers: { "X-CSRF-Token": csrf },
      mount: { root: pane, list: messages, composer: composer } });
    socket.start();
    updatePane(id);
    refreshSession(id);
    if (!opts || opts.select !== false) select(id); else persist();
  }

  function closeTab(id) {
    const entry = open.get(id);
    if (!entry) return;
    entry.chat.socket.stop();
    entry.tab.remove();
    entry.pane.remove();
    open.delete(id);
    delete drafts[id];
    select(active === id ? (open.size ? [...open.keys()].pop() : null) : active);
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

  /* -- asking before what cannot be undone --------------------------------------------- */

  const { confirm, ask } = window.SBQuestion;

  async function endSession(id) {
    const s = sessions.get(id);
    if (!s || s.state === "ended" || open.get(id)?.chat.readOnly()) return;
    if (await confirm(strings.confirm_end_title, SB.fill(strings.confirm_end_text, { name: label(s) }), strings.end_session)) {
      await act(id, "end");
    }
  }

  async function revokeKey(id) {
    const key = keys.get(id);
    if (await confirm(strings.confirm_revoke_title,
      SB.fill(strings.confirm_revoke_text, { key: key ? key.key : "" }), strings.revoke_key)) {
      await act(id, "revoke");
    }
  }

  document.getElementById("start-session").addEventListener("click", async () => {
    showError("");
    try {
      const s = await api("POST", "/api/v1/sessions");
      keys.set(s.session_id, { key: s.key, url: s.join_url });
      sessions.set(s.session_id, s);
      ours.add(s.session_id);
      openSession(s.session_id);
    } catch (e) { showError(e.message); }
  });

  /* Logging out leaves nothing of this console in the browser. */
  document.getElementById("logout-form").addEventListener("submit", () => {
    for (const name of Object.keys(sessionStorage)) if (name.startsWith("sb-")) sessionStorage.removeItem(name);
  });

  function changed(s) {
    const previous = sessions.get(s.session_id);
    sessions.set(s.session_id, s);
    if (involved(s)) ours.add(s.session_id);
    if (s.state !== "waiting") keys.delete(s.session_id);
    else if (!keys.has(s.session_id) && s.technician.id === me && !previous) refreshSession(s.session_id);
    updatePane(s.session_id);
    renderList();
    fire("transition", s, previous ? previous.state : null);
  }

  function listen(attempt) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/api/v1/technician/ws");
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === P.frame.SESSION_UPDATE) changed(msg.session); else fire("frame", msg);
    };
    ws.onopen = () => { attempt = 0; };
    ws.onclose = (e) => {
      if (e.code === P.close.UNAUTHENTICATED) { signOut(e.reason); return; }
      // No admin any more: the page itself (admin links, every session) must be built anew.
      if (e.code === P.close.RIGHTS_CHANGED) { location.reload(); return; }
      setTimeout(() => listen(attempt + 1), Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random()));
    };
  }

  /* The login ended (logged out in another window, ended by an admin, a password change,
     the account disabled…): say why, show nothing as live any more, offer to log in. The
     panes' own sockets close for the same reason and turn read-only. */
  function signOut(reason) {
    signedOut = strings["signed_out_" + reason] || strings.signed_out;
    const banner = document.getElementById("signed-out");
    banner.querySelector('[data-role="why"]').textContent = signedOut;
    banner.hidden = false;
    root.classList.add("signed-out");
    document.getElementById("start-session").disabled = true;
    for (const id of open.keys()) updatePane(id);
    renderList();
  }

  /* The sessions this technician had, handed-over ones too (the live list has only current ones). */
  async function loadHistory() {
    try {
      const data = await api("GET", "/api/v1/sessions?technician_id=" + me + "&limit=50");
      for (const s of data.sessions) {
        ours.add(s.session_id);
        if (!sessions.has(s.session_id)) sessions.set(s.session_id, s);
      }
      for (const id of open.keys()) updatePane(id);
      renderList();
    } catch (e) { /* the live list still comes */ }
  }

  window.SBDashboard = {
    on: (name, fn) => hooks[name].push(fn),
    raise: (alert) => fire("alert", alert),
    done: (key) => fire("alertDone", key),
    api, mmss, strings, sessions, keys, openSession, select, endSession, showError, confirm, ask,
    label, involved, refresh: (id) => { updatePane(id); renderList(); },
    active: () => active, order: () => [...open.keys()], pane: (id) => open.get(id)?.pane,
    me, admin, csrf,
  };
  renderList();
  // Once the modules loaded after this file have hooked in: reopen this browser tab's
  // session tabs, then listen.
  window.addEventListener("DOMContentLoaded", () => {
    for (const id of saved.tabs || []) openSession(id, { select: false });
    select(open.has(saved.active) ? saved.active : (open.size ? [...open.keys()].pop() : null));
    listen(0);
    loadHistory();
  });
})();
