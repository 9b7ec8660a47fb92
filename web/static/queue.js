/* A customer's chat while it waits in a team's queue (docs/portal.md): their place and
   the expected wait, live from queue.position frames (asked for once the socket has
   caught up; later changes come by themselves), until a technician takes the request and
   the page names them. Loaded by the _queue.html partial before the chat's own scripts;
   chat.js attaches it to its socket. */
"use strict";
window.SBQueue = (function () {
  function attach(socket) {
    const P = window.SBProtocol;
    const card = document.getElementById("queue");
    if (!card) return;
    const strings = JSON.parse(card.dataset.strings);
    const peer = document.getElementById("peer-name");
    const presenceNote = document.getElementById("presence-note");
    let waiting = false;

    // The request's own lines, in the customer's words.
    SB.lines.request = (event) => ({ text: SB.fill(strings[event.type] || event.type, { team: event.team }) });

    function show(isWaiting) {
      waiting = isWaiting;
      card.hidden = !waiting;
      if (waiting) {
        peer.textContent = strings.team;
        if (presenceNote) presenceNote.hidden = true;  // nobody to be away yet
      }
    }

    function place(frame) {
      card.querySelector('[data-role="place"]').textContent = frame.position === 1 ? strings.next
        : SB.fill(strings.place, { position: frame.position });
      const seconds = frame.estimated_wait_seconds;
      const minutes = Math.round(seconds / 60);
      card.querySelector('[data-role="wait"]').textContent = seconds == null ? ""
        : seconds < 60 ? strings.wait_soon : minutes === 1 ? strings.wait_minute
          : SB.fill(strings.wait_minutes, { minutes: minutes });
    }

    /* Chain onto the page's socket handlers, as screen.js does. */
    const h = socket.handlers;
    const chain = (name, mine, first) => {
      const theirs = h[name];
      h[name] = (...args) => {
        if (first && mine(...args)) return;
        if (theirs) theirs(...args);
        if (!first) mine(...args);
      };
    };
    chain("onWelcome", (msg) => {
      const technician = msg.session.technician;
      show(msg.session.state !== "ended" && !(technician && technician.id != null));
      if (!waiting && technician && technician.name) peer.textContent = SB.inert(technician.name);
    }, false);
    chain("onStatus", (state) => {
      if (state === "connected" && waiting) socket.sendFrame({ type: P.frame.QUEUE_ASK });
      if (state === "ended") show(false);
    }, false);
    chain("onEvent", (event) => {
      if (event.type === P.event.HANDED_OVER || event.type === P.event.ENDED) show(false);
    }, false);
    chain("onFrame", (msg) => {
      if (msg.type === P.frame.QUEUE_POSITION && waiting) place(msg);
      if (msg.type === P.frame.PRESENCE && waiting && presenceNote) presenceNote.hidden = true;
    }, false);
    // Taken between the welcome and the question: not an error the customer should read.
    chain("onError", (err) => err.code === "not_queued", true);
  }
  return { attach };
})();
