/* The end user's chat page. */
"use strict";
(function () {
  const P = window.SBProtocol;
  const root = document.getElementById("chat");
  const strings = JSON.parse(root.dataset.strings);
  const list = document.getElementById("messages");
  const statusEl = document.getElementById("status");
  const composer = document.getElementById("composer");
  const banner = document.getElementById("ended-banner");
  const openPrompt = document.getElementById("open-page");
  let mySender = null;
  // Events of the first catch-up after the page loaded are history: pages they ask to open
  // are not opened again on a reload. Everything after is news.
  let caughtUp = false;
  let ended = false;

  /* The status pill stays short; the banner below the messages explains an ended session. */
  const STATUS_TEXT = { ended: "ended_line" };
  const presenceNote = document.getElementById("presence-note");
  let retryTimer = null;

  function showStatus(state, info) {
    clearInterval(retryTimer);
    if (state === "connected") caughtUp = true;
    statusEl.dataset.state = state;
    statusEl.textContent = strings[STATUS_TEXT[state] || state] || state;
    if (state === "reconnecting" && info && info.retryAt) {
      // Say what is happening: when the next attempt is, counting down.
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((info.retryAt - Date.now()) / 1000));
        statusEl.textContent = SB.fill(strings.reconnecting_in, { seconds: seconds });
      };
      tick();
      retryTimer = setInterval(tick, 500);
    }
    if (state === "ended") {
      ended = true;
      banner.hidden = false;
      composer.hidden = true;
      presenceNote.hidden = true;
      openPrompt.hidden = true;
      // Nothing offers the agent or remote control once the session is over.
      document.getElementById("agent-help").hidden = true;
      // What comes after: the survey (survey.js) and a copy by email (copy.js).
      const after = document.getElementById("after-session");
      if (after) after.hidden = false;
      SB.scrollToEnd(list);
    }
  }

  /* Reconnect notices: a run of them with nothing between is one line that says how
     things stand now and how often the connection dropped, not a list of drops. */
  const RECONNECT_NOTICES = new Set([P.event.DISCONNECTED, P.event.RECONNECTED]);

  function lastEventLine() {
    const pending = list.querySelector(".pending");
    return pending ? pending.previousElementSibling : list.lastElementChild;
  }

  function collapseNotice(li, event) {
    if (!RECONNECT_NOTICES.has(event.type)) return null;
    const previous = lastEventLine();
    const drops = event.type === P.event.DISCONNECTED ? 1 : 0;
    if (!previous || previous.dataset.drops === undefined) {
      li.dataset.drops = String(drops);
      return null;
    }
    const count = Number(previous.dataset.drops) + drops;
    li.dataset.drops = String(count);
    li.classList.add("collapsed");
    if (count > 1) {
      const note = document.createElement("span");
      note.className = "drops";
      note.textContent = " · " + SB.fill(strings.drops, { count: count });
      li.append(note);
    }
    return previous;
  }

  /* A technician's "open: example.com/help": open the page in a new window; where the
     browser blocks that, a prominent button does it with the person's click. */
  function offerPage(event) {
    const address = event.open_url.replace(/^https?:\/\//i, "").replace(/\/$/, "");
    const link = openPrompt.querySelector("a");
    link.href = event.open_url;
    link.textContent = SB.fill(strings.open_page, { address: address });
    if (!caughtUp || ended) return;
    const opened = window.open("", "_blank");
    if (opened) {
      opened.opener = null;  // the page must not reach back into the chat
      opened.location.href = event.open_url;
      openPrompt.hidden = true;
    } else {
      openPrompt.hidden = false;
      SB.scrollToEnd(list);
    }
  }

  /* A technician's "goto: example.com/pricing": the website around this chat (its chat
     button, docs/portal.md) goes there and the chat goes on; a chat page of its own
     offers the page as open: does. */
  function goTo(event) {
    if (caughtUp && !ended && window.SBEmbed && SBEmbed.navigate(event.goto_url)) return;
    offerPage(Object.assign({}, event, { open_url: event.goto_url }));
  }

  function showPending(id, text) {
    list.append(SB.renderPending(id, text, strings));
    SB.scrollToEnd(list);
  }

  /* A supervisor watching, when the operator tells end users (docs/supervision.md): one
     frame per watch, so the page counts; "stopped" once the last one stopped. */
  const supervisionNote = document.getElementById("supervision-note");
  let watchers = 0;
  function supervised(watching) {
    watchers = Math.max(0, watchers + (watching ? 1 : -1));
    supervisionNote.textContent = watchers ? strings.supervised : strings.supervised_stopped;
    supervisionNote.classList.toggle("stopped", !watchers);
    supervisionNote.hidden = false;
  }

  const socket = new SB.SessionSocket({
    sessionId: root.dataset.sessionId,
    token: root.dataset.token,
    persist: true,
    onWelcome: (msg) => {
      mySender = msg.you.sender;
      // Connected (again): the broker says anew who watches; count from nothing.
      watchers = 0;
      supervisionNote.hidden = true;
    },
    onEvent: (event) => {
      const li = SB.renderEvent(event, strings, mySender);
      const pending = event.client_id && list.querySelector('[data-client-id="' + CSS.escape(event.client_id) + '"]');
      const collapsed = collapseNotice(li, event);
      if (pending) pending.replaceWith(li);
      else if (collapsed) collapsed.replaceWith(li);
      else list.insertBefore(li, list.querySelector(".pending"));
      SB.scrollToEnd(list);
      if (event.type === P.event.MESSAGE && event.open_url && event.author && event.author.role === "technician") offerPage(event);
      if (event.type === P.event.MESSAGE && event.goto_url && event.author && event.author.role === "technician") goTo(event);
      if (event.type === P.event.HANDED_OVER) document.getElementById("peer-name").textContent = SB.inert(event.to);
      if (event.type === P.event.ENDED) {
        if (event.reason === "reconnect_timeout") banner.textContent = strings.ended_timeout;
        showStatus("ended");
      }
    },
    onSettled: (id) => {
      // Stored (its event replaces it) or refused (the error says why): not pending any more.
      const pending = list.querySelector('[data-client-id="' + CSS.escape(id) + '"]');
      if (pending && pending.classList.contains("pending")) pending.remove();
    },
    onFrame: (msg) => {
      if (msg.type === P.frame.PRESENCE) presenceNote.hidden = msg.technician || statusEl.dataset.state === "ended";
      if (msg.type === P.frame.SUPERVISION_NOTICE) supervised(msg.watching);
    },
    onStatus: showStatus,
    onError: (err) => {
      const li = document.createElement("li");
      li.className = "sys error";
      li.textContent = strings.send_failed + " " + err.message;
      list.append(li);
      SB.scrollToEnd(list);
    },
  });
  openPrompt.querySelector("a").addEventListener("click", () => { openPrompt.hidden = true; });
  for (const [id, text] of socket.pending()) showPending(id, text);  // typed before a reload
  SB.wireComposer(composer, (text) => showPending(socket.send(text), text));
  SB.wireTyping(socket, document.getElementById("text"), document.getElementById("typing"), strings);
  SBScreen.attach(socket, { role: "end_user", mount: { root: root, viewerBefore: list, overlay: root } });
  SBFiles.attach(socket, { sessionId: root.dataset.sessionId,
    headers: { Authorization: "Bearer " + root.dataset.token },
    mount: { root: root, list: list, composer: composer } });
  SBQueue.attach(socket);  // a customer's request waiting in a team's queue
  if (window.SBEmbed) SBEmbed.attach(socket);  // inside a website's chat button
  socket.start();
})();
