/* Alerts on the dashboard (docs/api.md, Preferences): a new end-user message in a session
   that is not in front of the technician, an end user joining or coming back, an incoming
   transfer or queue item. Each counts on its session's tab and in the page title until
   it is seen, plays the alert sound and shows a pop-up (and a desktop notification, once
   the browser allows them) for the technician's chosen seconds. While one of their
   sessions is in front of them, pop-ups and sound follow the in-session preferences. */
"use strict";
(function () {
  const P = window.SBProtocol;
  const dash = window.SBDashboard;
  const strings = JSON.parse(document.getElementById("console-strings").dataset.strings);
  const sound = document.getElementById("alert-sound");
  const toasts = document.getElementById("toasts");
  const dialog = document.getElementById("alert-settings");
  const baseTitle = document.title;
  const counts = new Map();  // alert key (a session id, "handoff:<id>") -> unread count
  const popups = new Map();  // alert key -> its pop-up on the page (the latest one only)
  let prefs = { popup_seconds: 30, sound: true, in_session_alerts: false, in_session_sound: false,
    desktop_notifications: true };

  const inFront = () => document.visibilityState === "visible" && document.hasFocus();

  /* "In a session": one of the technician's sessions with an end user is in front of them. */
  function inSession() {
    const s = dash.sessions.get(dash.active());
    return inFront() && Boolean(s) && ["active", "reconnecting"].includes(s.state) && dash.involved(s);
  }

  function badge(host, count) {
    let el = host.querySelector(".unread");
    if (!el && count) {
      el = document.createElement("span");
      el.className = "unread";
      host.insertBefore(el, host.querySelector(".tab-close, .when"));
    }
    if (!el) return;
    el.textContent = String(count);
    el.title = SB.fill(strings.unread, { count: count });
    el.hidden = !count;
  }

  function render() {
    let total = 0;
    for (const n of counts.values()) total += n;
    document.title = total ? "(" + total + ") " + baseTitle : baseTitle;
    for (const tab of document.querySelectorAll("#tabs .tab")) badge(tab, counts.get(tab.dataset.sessionId) || 0);
    for (const item of document.querySelectorAll(".session-list .session-item")) {
      badge(item, counts.get(item.dataset.sessionId) || 0);
    }
  }

  /* The alerts of `key` are dealt with: no count, no pop-up. */
  function settle(key) {
    const toast = popups.get(key);
    if (toast) toast.remove();
    popups.delete(key);
    if (counts.delete(key)) render();
  }

  function seen() {
    const id = dash.active();
    if (id && inFront()) settle(id);
  }

  function play() {
    sound.currentTime = 0;
    sound.play().catch(() => { /* the browser wants a click on the page first */ });
  }

  function show(alert) {
    if (alert.sessionId) dash.openSession(alert.sessionId);
    if (alert.handoffId) {
      const card = document.querySelector('.handoff-card[data-handoff-id="' + CSS.escape(alert.handoffId) + '"]');
      if (card) { card.scrollIntoView({ block: "nearest" }); card.querySelector("button").focus(); }
    }
  }

  function popup(alert) {
    const toast = document.createElement("div");
    toast.className = "toast";
    toast.dataset.kind = alert.kind;
    const title = document.createElement("strong");
    title.textContent = alert.title;
    const body = document.createElement("p");
    body.textContent = alert.body || "";
    body.hidden = !alert.body;
    const actions = document.createElement("div");
    actions.className = "toast-actions";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "primary";
    open.textContent = strings.show;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = strings.dismiss;
    actions.append(open, close);
    toast.append(title, body, actions);
    const remove = () => {
      toast.remove();
      if (popups.get(alert.key) === toast) popups.delete(alert.key);
    };
    open.addEventListener("click", () => { remove(); show(alert); });
    close.addEventListener("click", remove);
    if (popups.has(alert.key)) popups.get(alert.key).remove();  // one pop-up per session
    popups.set(alert.key, toast);
    toasts.append(toast);
    setTimeout(remove, prefs.popup_seconds * 1000);
  }

  function desktop(alert) {
    if (!prefs.desktop_notifications || !("Notification" in window) || Notification.permission !== "granted") return;
    const note = new Notification(alert.title, { body: alert.body || "", tag: alert.key });
    note.addEventListener("click", () => { window.focus(); show(alert); note.close(); });
    setTimeout(() => note.close(), prefs.popup_seconds * 1000);
  }

  /* alert: {key, kind, title, body, sessionId?, handoffId?, single?}; single ones count once. */
  function raise(alert) {
    if (alert.sessionId && alert.sessionId === dash.active() && inFront()) return;  // seen already
    counts.set(alert.key, alert.single ? 1 : (counts.get(alert.key) || 0) + 1);
    render();
    const quiet = inSession();
    if (prefs.sound && (!quiet || prefs.in_session_sound)) play();
    if (prefs.popup_seconds > 0 && (!quiet || prefs.in_session_alerts)) {
      popup(alert);
      desktop(alert);
    }
  }

  dash.on("alert", raise);
  dash.on("alertDone", settle);
  dash.on("selected", () => { seen(); render(); });
  dash.on("listed", (button, s) => badge(button, counts.get(s.session_id) || 0));
  window.addEventListener("focus", seen);
  document.addEventListener("visibilitychange", seen);

  dash.on("event", (id, event, live) => {
    if (!live || event.type !== P.event.MESSAGE || !event.author || event.author.role !== "end_user") return;
    raise({ key: id, kind: "message", sessionId: id, body: event.text,
      title: SB.fill(strings.message_from, { name: SB.personName(event.author.name, dash.strings) }) });
  });
  dash.on("transition", (s, previous) => {
    if (!dash.involved(s) || s.state !== "active" || !["waiting", "reconnecting"].includes(previous)) return;
    raise({ key: s.session_id, kind: previous === "waiting" ? "joined" : "back", sessionId: s.session_id,
      title: SB.fill(previous === "waiting" ? strings.joined : strings.back, { name: dash.label(s) }) });
  });

  /* -- desktop notifications: asked for once, after the technician's first click ------- */

  const ASKED = "sb-notifications-asked-" + dash.me;
  function askOnce() {
    if (!prefs.desktop_notifications || !("Notification" in window) || Notification.permission !== "default"
      || sessionStorage.getItem(ASKED)) return;
    sessionStorage.setItem(ASKED, "1");
    Notification.requestPermission().then(permissionNote);
  }
  document.addEventListener("pointerdown", askOnce, { once: true, capture: true });

  function permissionNote() {
    const note = dialog.querySelector('[data-role="permission"]');
    const state = "Notification" in window ? Notification.permission : "unsupported";
    note.textContent = strings["permission_" + state] || "";
    dialog.querySelector('[data-action="allow"]').hidden = state !== "default";
  }

  /* -- the settings panel ----------------------------------------------------------------- */

  const form = dialog.querySelector("form");
  const BOOLEANS = ["sound", "in_session_alerts", "in_session_sound", "desktop_notifications",
    "transcript_email"];
  document.getElementById("open-alert-settings").addEventListener("click", () => {
    form.elements.popup_seconds.value = prefs.popup_seconds;
    for (const name of BOOLEANS) form.elements[name].checked = Boolean(prefs[name]);
    form.elements.transcript_language.value = prefs.transcript_language || "en";
    dialog.querySelector('[data-role="error"]').hidden = true;
    permissionNote();
    dialog.showModal();
  });
  dialog.querySelector('[data-action="allow"]').addEventListener("click", () => {
    Notification.requestPermission().then(permissionNote);
  });
  dialog.querySelector('[data-action="test-sound"]').addEventListener("click", play);
  dialog.querySelector('[data-action="cancel"]').addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = dialog.querySelector('[data-role="error"]');
    const body = { popup_seconds: Number(form.elements.popup_seconds.value) };
    for (const name of BOOLEANS) body[name] = form.elements[name].checked;
    body.transcript_language = form.elements.transcript_language.value;
    try {
      prefs = await dash.api("PUT", "/api/v1/me/preferences", body);
      dialog.close();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });

  dash.api("GET", "/api/v1/me/preferences").then((loaded) => { prefs = loaded; }, () => { /* defaults */ });
})();
