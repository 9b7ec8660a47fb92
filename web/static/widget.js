/* The chat button for any website (docs/portal.md). An admin copies one line into the
   site's pages:
     <script src="https://support.example.com/widget.js" data-team="tier-1" async></script>
   and the page gets a button that says whether anyone of the team is online (GET
   /api/v1/availability, allowed by CORS only for the sites in widget_origins) and opens
   the broker's portal and chat in a panel on the page, framed (frame-ancestors: the same
   sites). The framed pages get no cookies (third-party): the participant token travels
   in the frame's URL fragment, and the button keeps the chat in the site's
   sessionStorage, so that the chat goes on, on this site's next page, after a reload or
   after the technician's goto: moved the page. The frame tells the button what it must
   act on by postMessage; only messages from the broker's origin and its own frame count.
   Everything lives in a shadow root: the site's styles do not reach it. The words
   in both languages are put in by the broker where it serves this file (/widget.js). */
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || !script.src) return;
  const TEXT = /*TEXT*/{};
  const broker = new URL(script.src).origin;
  const team = script.dataset.team || "";
  const wanted = (script.dataset.lang || document.documentElement.lang || navigator.language || "en").toLowerCase();
  const lang = wanted.startsWith("de") ? "de" : "en";
  const words = TEXT[lang] || TEXT.en || {};
  const KEY = "sb-chat:" + broker + ":" + team;

  /* {session_id, token, open}: the chat this tab has with the broker, if any. */
  function stored() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  function store(changes) {
    const next = Object.assign(stored(), changes);
    try { sessionStorage.setItem(KEY, JSON.stringify(next)); } catch (e) { /* private mode: this page only */ }
  }

  const CSS = `
    :host { all: initial; }
    * { box-sizing: border-box; }
    .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; display: flex; align-items: center; gap: 8px;
      font: 600 15px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #fff; background: #1f6feb;
      border: none; border-radius: 999px; padding: 12px 18px; box-shadow: 0 4px 16px rgba(15, 37, 64, .25); cursor: pointer; max-width: calc(100vw - 40px); }
    .launcher:focus-visible { outline: 3px solid #0f2540; outline-offset: 2px; }
    .label { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .dot { flex: none; width: 10px; height: 10px; border-radius: 50%; background: #b6c0cc; box-shadow: 0 0 0 2px rgba(255, 255, 255, .7); }
    .launcher[data-online="yes"] .dot { background: #3fcf5f; }
    .launcher[data-unread="yes"]::after { content: ""; position: absolute; top: -3px; right: -3px; width: 14px; height: 14px;
      border-radius: 50%; background: #e5484d; box-shadow: 0 0 0 2px #fff; }
    .panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000; width: 380px; height: min(620px, calc(100vh - 110px));
      display: flex; flex-direction: column; background: #fff; border-radius: 12px; overflow: hidden; box-shadow: 0 8px 32px rgba(15, 37, 64, .3); }
    .panel[hidden] { display: none; }
    .bar { flex: none; display: flex; align-items: center; justify-content: space-between; gap: 8px; padding: 8px 8px 8px 14px;
      background: #0f2540; color: #fff; font: 600 15px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
    .close { font: 22px/1 system-ui, sans-serif; color: #fff; background: none; border: none; border-radius: 6px; padding: 4px 10px; cursor: pointer; }
    .close:focus-visible { outline: 2px solid #fff; }
    iframe { flex: 1; width: 100%; min-height: 0; border: none; display: block; }
    @media (max-width: 480px) {
      .panel { inset: 0; width: auto; height: auto; border-radius: 0; }
      .launcher { right: 12px; bottom: 12px; max-width: calc(100vw - 24px); }
      .panel:not([hidden]) + .launcher { display: none; }  /* the panel's own button closes it */
    }`;

  const holder = document.createElement("div");
  holder.dataset.supportChat = team || "support";
  const shadow = holder.attachShadow({ mode: "open" });
  if (shadow.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    const style = document.createElement("style");
    style.textContent = CSS;
    shadow.append(style);
  }
  const button = document.createElement("button");
  button.type = "button";
  button.className = "launcher";
  button.hidden = true;  // until the broker answers this site
  button.setAttribute("aria-expanded", "false");
  const dot = document.createElement("span");
  dot.className = "dot";
  const label = document.createElement("span");
  label.className = "label";
  button.append(dot, label);
  const panel = document.createElement("div");
  panel.className = "panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", words.title || "");
  const bar = document.createElement("div");
  bar.className = "bar";
  const title = document.createElement("span");
  title.textContent = words.title || "";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.textContent = "\u00d7";
  close.setAttribute("aria-label", words.close || "");
  close.title = words.close || "";
  bar.append(title, close);
  panel.append(bar);
  shadow.append(panel, button);
  let frame = null;
  let finished = false;  // the framed chat ended: opening again starts a new one
  let online = false;

  function showLabel() {
    const chat = stored();
    button.dataset.online = online ? "yes" : "no";
    button.dataset.unread = chat.unread && panel.hidden ? "yes" : "no";
    label.textContent = chat.session_id ? (chat.unread && panel.hidden ? words.unread : words.resume)
      : online ? words.chat : words.message;
    dot.title = online ? words.online : words.offline;
  }

  function frameUrl() {
    const chat = stored();
    const fragment = new URLSearchParams({ host: location.origin });
    if (chat.session_id) {
      fragment.set("token", chat.token);
      return broker + "/s/" + encodeURIComponent(chat.session_id) + "/embed?lang=" + lang + "#" + fragment;
    }
    return broker + "/support" + (team ? "/" + encodeURIComponent(team) : "") + "?embed=1&lang=" + lang + "#" + fragment;
  }

  /* The frame is made once per page and kept while the panel is closed, so that the
     chat stays connected; a new chat (after one ended) gets a new frame. */
  function ensureFrame() {
    if (frame) return;
    frame = document.createElement("iframe");
    frame.title = words.title || "";
    frame.allow = "display-capture; clipboard-write";
    frame.src = frameUrl();
    panel.append(frame);
  }

  function open() {
    if (finished && frame) { frame.remove(); frame = null; }
    finished = false;
    ensureFrame();
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    store({ open: true, unread: false });
    showLabel();
    frame.focus();
  }

  function hide() {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    store({ open: false });
    button.focus();
  }

  button.addEventListener("click", () => (panel.hidden ? open() : hide()));
  close.addEventListener("click", hide);
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") hide(); });

  /* An address the technician's goto: may send this page to: http or https only. */
  function safeAddress(address) {
    try {
      const url = new URL(String(address), location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) { return null; }
  }

  window.addEventListener("message", (e) => {
    if (e.origin !== broker || !frame || e.source !== frame.contentWindow) return;
    const m = e.data;
    if (!m || typeof m !== "object") return;
    if (m.widget === "session" && typeof m.session_id === "string" && typeof m.token === "string") {
      store({ session_id: m.session_id, token: m.token, open: true });
      showLabel();
    } else if (m.widget === "goto") {
      const address = safeAddress(m.url);
      if (address) { store({ open: true }); location.assign(address); }
    } else if (m.widget === "unread") {
      if (panel.hidden) { store({ unread: true }); showLabel(); }
    } else if (m.widget === "ended") {
      // The panel keeps showing the ended chat; the next one starts with the form.
      store({ session_id: null, token: null, unread: false });
      finished = true;
      showLabel();
    }
  });

  async function availability() {
    try {
      const response = await fetch(broker + "/api/v1/availability" + (team ? "?team=" + encodeURIComponent(team) : ""),
        { credentials: "omit", mode: "cors" });
      if (!response.ok) return false;
      online = Boolean((await response.json()).online);
      return true;
    } catch (e) {
      return false;  // this site is not one of widget_origins, or the broker is away
    }
  }

  async function start() {
    if (!(await availability())) return;
    document.body.append(holder);
    button.hidden = false;
    showLabel();
    const chat = stored();
    if (chat.session_id) { ensureFrame(); if (chat.open) open(); }
    setInterval(async () => { if (await availability()) showLabel(); }, 60000);
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
