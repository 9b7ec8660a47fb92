/* The chat of one session pane on the dashboard: its SessionSocket, lines pending, sent or
   refused, and the pane turning read-only (handed over, closed elsewhere) with the reason.
   A line the broker refuses, or one a socket closed for good can never send, is shown as
   failed with why; nothing stays "not sent yet" for ever. */
"use strict";
window.SBPane = (function () {
  const P = window.SBProtocol;

  /* opts: {id, pane, strings, me, api, draft, onDraft(text), onEvent(event, live),
     onFrame(msg), onReadOnly()}. Returns {socket, setReadOnly(text), readOnly()}. */
  function chat(opts) {
    const { id, pane, strings } = opts;
    const mySender = "t" + opts.me;
    const messages = pane.querySelector('[data-role="messages"]');
    const composer = pane.querySelector('[data-role="composer"]');
    const area = composer.querySelector("textarea");
    const pendingLine = (clientId) => messages.querySelector('[data-client-id="' + CSS.escape(clientId) + '"]');
    let synced = false;
    let readOnly = null;

    function setReadOnly(text) {
      if (readOnly === text) return;
      readOnly = text;
      const notice = pane.querySelector('[data-role="notice"]');
      notice.textContent = text;
      notice.hidden = false;
      pane.classList.add("read-only");  // app.css hides what this technician cannot use
      composer.classList.add("read-only");
      for (const field of composer.elements) field.disabled = true;
      opts.onReadOnly();
    }

    /* Why nothing can be sent any more, from the close code of a socket closed for good
       (and for 4401 its reason: why the technician's login ended). */
    function closeReason(code, reason) {
      if (code === P.close.UNAUTHENTICATED && strings["signed_out_" + reason]) return strings["signed_out_" + reason];
      return {
        [P.close.ENDED]: strings.closed_ended, [P.close.REPLACED]: strings.replaced,
        [P.close.UNAUTHENTICATED]: strings.closed_logged_out,
      }[code] || strings.closed_forbidden;
    }

    /* A session the broker no longer lets this technician join (handed away before a
       reload) shows its events where the broker still lets them read them, and else
       where its transcript is: those who took part read that page for good. */
    async function loadTranscript() {
      try {
        const data = await opts.api("GET", "/api/v1/sessions/" + id + "/events?limit=10000");
        for (const event of data.events) messages.append(SB.renderEvent(event, strings, mySender));
        SB.scrollToEnd(messages);
      } catch (e) {
        const li = document.createElement("li");
        li.className = "sys transcript-pointer";
        const link = document.createElement("a");
        link.href = "/sessions/" + encodeURIComponent(id) + "/transcript";
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = strings.read_transcript;
        li.append(link);
        messages.append(li);
      }
    }

    function line(className, text) {
      const li = document.createElement("li");
      li.className = className;
      li.textContent = text;
      messages.append(li);
      SB.scrollToEnd(messages);
    }

    const socket = new SB.SessionSocket({
      sessionId: id,
      persist: true,  // lines typed while offline survive a reload too
      onEvent: (event) => {
        const li = SB.renderEvent(event, strings, mySender);
        const pending = event.client_id && pendingLine(event.client_id);
        if (pending) pending.replaceWith(li); else messages.insertBefore(li, messages.querySelector(".pending"));
        SB.scrollToEnd(messages);
        if (event.type === P.event.HANDED_OVER && event.from_id === opts.me && !event.stays) {
          setReadOnly(SB.fill(strings.now_owns, { name: event.to }));
        }
        opts.onEvent(event, synced);
      },
      onSettled: (clientId) => {
        const pending = pendingLine(clientId);
        if (pending && pending.classList.contains("pending")) pending.remove();
      },
      onFailed: (clientId, error) => {
        const pending = pendingLine(clientId);
        if (pending) SB.markFailed(pending, error.message || closeReason(error.code, error.reason), strings);
      },
      onError: (err) => {
        // Before the sync the socket is being refused: its closing says why, once.
        if (synced && !(err.ref && pendingLine(err.ref))) line("sys error", SB.fill(strings.refused, { reason: err.message }));
      },
      onFrame: opts.onFrame,
      onStatus: (state, code, reason) => {
        const conn = pane.querySelector('[data-role="conn"]');
        conn.textContent = strings.reconnecting;
        conn.hidden = !["reconnecting", "offline"].includes(state);
        if (state === "connected") synced = true;
        if (state === "replaced" || (state === "closed" && code !== P.close.ENDED && code !== 1000)) {
          setReadOnly(readOnly || closeReason(code, reason));
          if (!synced && !messages.querySelector("li:not(.pending):not(.failed)")) loadTranscript();
        }
      },
    });

    area.value = opts.draft || "";
    area.addEventListener("input", () => opts.onDraft(area.value));
    SB.wireComposer(composer, (text) => {
      opts.onDraft("");
      messages.append(SB.renderPending(socket.send(text), text, strings));
      SB.scrollToEnd(messages);
    });
    for (const [clientId, text] of socket.pending()) messages.append(SB.renderPending(clientId, text, strings));
    return { socket, setReadOnly, readOnly: () => readOnly };
  }

  return { chat };
})();
