/* On the dashboard: who supervises a session right now. A supervisor watching it
   read-only (docs/supervision.md) comes as a supervisor.watching frame on the session's
   socket; the pane says "Anna is watching", and when they stop, "Anna stopped watching". */
"use strict";
(function () {
  const P = window.SBProtocol;
  const dash = window.SBDashboard;
  const strings = dash.strings;
  const watching = new Map();  // session id -> Map(supervisor id -> name)

  function note(id) {
    const pane = dash.pane(id);
    if (!pane) return null;
    let el = pane.querySelector('[data-role="watching"]');
    if (!el) {
      el = document.createElement("p");
      el.className = "watching-note";
      el.dataset.role = "watching";
      el.setAttribute("role", "status");
      el.hidden = true;
      const messages = pane.querySelector('[data-role="messages"]');
      messages.parentNode.insertBefore(el, messages);
    }
    return el;
  }

  dash.on("sessionFrame", (id, msg) => {
    if (msg.type !== P.frame.SUPERVISOR_WATCHING) return;
    const names = watching.get(id) || new Map();
    watching.set(id, names);
    if (msg.watching) names.set(msg.supervisor.id, msg.supervisor.name);
    else names.delete(msg.supervisor.id);
    const el = note(id);
    if (!el) return;
    const now = [...names.values()];
    el.classList.toggle("stopped", now.length === 0);
    el.replaceChildren(...(now.length
      ? SB.fillNodes(strings.watching, { name: now.join(", ") })
      : SB.fillNodes(strings.watching_stopped, { name: msg.supervisor.name })));
    el.hidden = false;
  });
})();
