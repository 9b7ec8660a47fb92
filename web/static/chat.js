/* The end user's chat page. */
"use strict";
(function () {
  const root = document.getElementById("chat");
  const strings = JSON.parse(root.dataset.strings);
  const list = document.getElementById("messages");
  const statusEl = document.getElementById("status");
  const composer = document.getElementById("composer");
  const banner = document.getElementById("ended-banner");
  let mySender = null;

  /* The status pill stays short; the banner below the messages explains an ended session. */
  const STATUS_TEXT = { ended: "ended_line" };
  const presenceNote = document.getElementById("presence-note");
  let retryTimer = null;

  function showStatus(state, info) {
    clearInterval(retryTimer);
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
      banner.hidden = false;
      composer.hidden = true;
      presenceNote.hidden = true;
      SB.scrollToEnd(list);
    }
  }

  function showPending(id, text) {
    list.append(SB.renderPending(id, text, strings));
    SB.scrollToEnd(list);
  }

  const socket = new SB.SessionSocket({
    sessionId: root.dataset.sessionId,
    token: root.dataset.token,
    persist: true,
    onWelcome: (msg) => { mySender = msg.you.sender; },
    onEvent: (event) => {
      const li = SB.renderEvent(event, strings, mySender);
      const pending = event.client_id && list.querySelector('[data-client-id="' + CSS.escape(event.client_id) + '"]');
      if (pending) pending.replaceWith(li); else list.insertBefore(li, list.querySelector(".pending"));
      SB.scrollToEnd(list);
      if (event.type === "handed_over") document.getElementById("peer-name").textContent = event.to;
      if (event.type === "ended") {
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
      if (msg.type === "presence") presenceNote.hidden = msg.technician || statusEl.dataset.state === "ended";
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
  for (const [id, text] of socket.pending()) showPending(id, text);  // typed before a reload
  SB.wireComposer(composer, (text) => showPending(socket.send(text), text));
  SBScreen.attach(socket, { role: "end_user", mount: { root: root, viewerBefore: list, overlay: root } });
  SBFiles.attach(socket, { sessionId: root.dataset.sessionId,
    headers: { Authorization: "Bearer " + root.dataset.token },
    mount: { root: root, list: list, composer: composer } });
  socket.start();
})();
