/* Watching a session read-only (/supervise/{id}, docs/supervision.md): the session's
   events from the watch socket, replayed and then live, drawn as the dashboard draws
   them. The socket takes nothing from the page but the signaling of the shared screen
   (watch-screen.js, which hooks in through window.SBWatch.on). */
"use strict";
window.SBWatch = (function () {
  const P = window.SBProtocol;
  const root = document.getElementById("watch");
  const strings = JSON.parse(root.dataset.strings);
  const list = document.getElementById("watch-messages");
  const status = document.getElementById("watch-status");
  const id = root.dataset.sessionId;
  const listeners = [];  // {event(e), frame(msg), error(msg), status("live" | "closed")}
  let last = 0;
  let socket = null;

  function tell(name, ...args) {
    for (const l of listeners) if (l[name]) l[name](...args);
  }

  function show(event) {
    if (event.seq <= last) return;
    last = event.seq;
    list.append(SB.renderEvent(event, strings, null));
    list.scrollTop = list.scrollHeight;
    if (event.type === P.event.ENDED) status.textContent = strings.ended;
    tell("event", event);
  }

  function listen(attempt) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/api/v1/sessions/" + encodeURIComponent(id) + "/watch");
    socket = ws;
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === P.frame.EVENT) show(msg.event);
      else if (msg.type === P.frame.SYNCED) {
        if (status.textContent !== strings.ended) {
          status.textContent = SB.fill(strings.live, { name: root.dataset.technician });
          root.dataset.state = "live";
        }
        tell("status", "live");
      } else if (msg.type === P.frame.ERROR) tell("error", msg);
      else tell("frame", msg);
    };
    ws.onopen = () => { attempt = 0; };
    ws.onclose = (e) => {
      root.dataset.state = "closed";
      tell("status", "closed");
      if (e.code === P.close.FORBIDDEN || e.code === P.close.UNAUTHENTICATED) {
        status.textContent = strings.refused;
        return;
      }
      status.textContent = strings.offline;
      setTimeout(() => listen(attempt + 1), Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random()));
    };
  }

  listen(0);
  return {
    on(listener) { listeners.push(listener); },
    /* Send a frame now; false when the socket is not open. */
    send(frame) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    },
  };
})();
