/* Transfers offered to this technician and their teams' queue items, in the dashboard's
   sidebar: the note, who sends it, the time left to answer (counting down), a preview of
   the transcript and notes before accepting. One that lapses, is taken back or is taken
   by someone else stays, saying so, until dismissed. */
"use strict";
(function () {
  const P = window.SBProtocol;
  const dash = window.SBDashboard;
  const strings = JSON.parse(document.getElementById("handoff-strings").dataset.strings);
  const sidebar = document.querySelector(".sidebar");
  // Handoff id -> handoff JSON offered to me or my queues: pending ones, and those that
  // lapsed or someone else answered (kept until dismissed, so that they do not just vanish).
  const incoming = new Map();
  const answeredHere = new Set();  // handoff ids this page accepted or declined
  const dueLevels = new Map();  // session id -> "due_soon" | "breached" (request.alert)
  const mmss = dash.mmss;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* A customer's request from the portal, as the session's first lines tell it
     (broker/intake), in panes and previews. */
  SB.lines.request = (event) => ({ text: event.type === P.event.REQUEST_BREACHED ? dash.strings.request_breached
    : SB.fill(dash.strings.request_opened, { team: event.team || "",
      name: event.author ? SB.personName(event.author.name, dash.strings) : dash.strings.customer_request }) });

  /* -- transfers for me, and my teams' queues (sidebar) ------------------------------ */

  const box = el("section", "handoff-box");
  box.hidden = true;
  const boxTitle = el("h2", "", strings.transfers_for_you);
  const boxList = el("ul", "handoff-list");
  box.append(boxTitle, boxList);
  sidebar.insertBefore(box, sidebar.querySelector("h2"));

  function renderIncoming() {
    const items = [...incoming.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    boxList.replaceChildren(...items.map((h) => h.state === "pending" ? card(h) : outcome(h)));
    box.hidden = items.length === 0;
  }

  /* A customer's own request (the portal) has no technician sending it. */
  const fromCustomer = (h) => h.from.id === null || h.from.id === undefined;

  function customer(h) {
    if (h.end_user_name) return SB.personName(h.end_user_name, dash.strings);
    if (fromCustomer(h)) return strings.customer_request;
    return h.session_state === "waiting" ? dash.strings.waiting : "–";
  }

  /* Who sends it: a technician, or the customer by the name the form gave. */
  const sender = (h) => fromCustomer(h) ? customer(h) : h.from.name;

  /* The line under a queue's name: who put it there. */
  const fromLine = (h) => fromCustomer(h) ? strings.customer_request : SB.fill(strings.from, { name: h.from.name });

  function forget(id) {
    incoming.delete(id);
    dash.done("handoff:" + id);
    renderIncoming();
  }

  /* An offer that is no longer open: what became of it, until dismissed. */
  function outcome(h) {
    const li = el("li", "handoff-card handoff-over");
    li.dataset.handoffId = h.handoff_id;
    li.dataset.state = h.state;
    const by = h.decided_by ? h.decided_by.name : "";
    const text = {
      expired: SB.fill(strings.lapsed, { name: sender(h) }),
      cancelled: SB.fill(strings.withdrawn, { name: sender(h) }),
      accepted: by ? SB.fill(strings.taken_by, { name: by }) : strings.taken,
      declined: strings.state_declined,
    }[h.state] || h.state;
    li.append(el("strong", "", h.to_team ? SB.fill(strings.queue, { team: h.to_team.name })
      : fromLine(h)));
    li.append(el("div", "small", SB.fill(strings.customer, { name: customer(h) })));
    li.append(el("p", "handoff-outcome", text));
    const dismiss = el("button", "", strings.dismiss);
    dismiss.type = "button";
    dismiss.dataset.action = "dismiss";
    dismiss.addEventListener("click", () => forget(h.handoff_id));
    li.append(dismiss);
    return li;
  }

  function card(h) {
    const li = el("li", "handoff-card");
    li.dataset.handoffId = h.handoff_id;
    const head = el("div", "handoff-head");
    head.append(el("strong", "", h.to_team ? SB.fill(strings.queue, { team: h.to_team.name })
      : fromLine(h)));
    const waited = el("span", "muted small handoff-wait");
    waited.dataset.since = h.created_at;
    head.append(waited);
    li.append(head);
    if (h.deadline) {  // how long is left to answer, counting down
      const left = el("div", "small handoff-deadline");
      left.dataset.answerBy = h.deadline;
      li.append(left);
    }
    if (h.to_team) li.append(el("div", "small", fromLine(h)));
    li.append(el("div", "small", SB.fill(strings.customer, { name: customer(h) })));
    const due = dueLevels.get(h.session_id);  // its response target, nearly or already missed
    if (due) li.append(el("div", "small handoff-due " + due, strings["target_" + due]));
    li.append(el("p", "handoff-note", h.note));
    const actions = el("div", "handoff-actions");
    const preview = el("button", "", strings.preview);
    preview.type = "button";
    preview.addEventListener("click", () => showPreview(h));
    const accept = el("button", "primary", strings.accept);
    accept.type = "button";
    accept.dataset.action = "accept";
    accept.addEventListener("click", async () => {
      answeredHere.add(h.handoff_id);
      try {
        const session = await dash.api("POST", "/api/v1/handoffs/" + h.handoff_id + "/accept");
        forget(h.handoff_id);
        dash.sessions.set(session.session_id, session);
        dash.openSession(session.session_id);
      } catch (e) { dash.showError(e.message); answeredHere.delete(h.handoff_id); }
    });
    actions.append(preview, accept);
    if (!h.to_team) {
      const decline = el("button", "", strings.decline);
      decline.type = "button";
      decline.dataset.action = "decline";
      decline.addEventListener("click", async () => {
        const reason = await dash.ask(strings.decline_title, strings.decline_reason, strings.decline);
        if (reason === null) return;
        answeredHere.add(h.handoff_id);
        try {
          await dash.api("POST", "/api/v1/handoffs/" + h.handoff_id + "/decline", { reason });
          forget(h.handoff_id);
        } catch (e) { dash.showError(e.message); answeredHere.delete(h.handoff_id); }
      });
      actions.append(decline);
    }
    li.append(actions);
    tickWaits(li);
    return li;
  }

  function tickWaits(scope) {
    for (const node of (scope || document).querySelectorAll("[data-since]")) {
      node.textContent = SB.fill(strings.waiting_for, { time: mmss((Date.now() - new Date(node.dataset.since)) / 1000) });
    }
    for (const node of (scope || document).querySelectorAll("[data-answer-by]")) {
      const left = (new Date(node.dataset.answerBy) - Date.now()) / 1000;
      node.textContent = left > 0 ? SB.fill(strings.answer_within, { time: mmss(left) }) : strings.time_up;
      node.classList.toggle("urgent", left < 30);
    }
  }

  async function showPreview(h) {
    const dialog = document.getElementById("handoff-preview");
    dialog.querySelector('[data-role="title"]').textContent = strings.preview_title;
    dialog.querySelector('[data-role="note"]').textContent = h.note;
    const list = dialog.querySelector('[data-role="messages"]');
    list.replaceChildren();
    try {
      const [events, notes] = await Promise.all([
        dash.api("GET", "/api/v1/sessions/" + h.session_id + "/events?limit=10000"),
        dash.api("GET", "/api/v1/sessions/" + h.session_id + "/notes")]);
      for (const event of events.events) list.append(SB.renderEvent(event, dash.strings, null));
      dialog.querySelector('[data-role="notes"]').textContent = notes.notes || strings.no_notes;
    } catch (e) { dash.showError(e.message); return; }
    dialog.showModal();
  }

  dash.on("frame", (msg) => {
    if (msg.type !== P.frame.HANDOFF_UPDATE) return;
    const h = msg.handoff;
    const forMe = (h.to_technician && h.to_technician.id === dash.me) || h.to_team;
    if (!forMe || h.from.id === dash.me) return;
    const known = incoming.has(h.handoff_id);
    if (h.state === "pending") {
      if (!known) {
        dash.raise({ key: "handoff:" + h.handoff_id, kind: "transfer", handoffId: h.handoff_id, single: true,
          title: h.to_team ? SB.fill(strings.queue_item, { team: h.to_team.name, name: sender(h) })
            : SB.fill(strings.transfer_from, { name: sender(h) }), body: h.note });
      }
      incoming.set(h.handoff_id, h);
      renderIncoming();
    } else if (known && !answeredHere.has(h.handoff_id)) {
      incoming.set(h.handoff_id, h);  // lapsed, taken back, or taken by someone else: say so
      dash.done("handoff:" + h.handoff_id);
      renderIncoming();
    }
  });
  /* A customer's request nearing (80 %) or past its first-response target: an alert,
     and a line on its queue item. */
  dash.on("frame", (msg) => {
    if (msg.type !== P.frame.REQUEST_ALERT) return;
    const r = msg.request;
    const name = r.name ? SB.personName(r.name, dash.strings) : strings.customer_request;
    dueLevels.set(r.session_id, msg.level);
    const h = [...incoming.values()].find((x) => x.session_id === r.session_id && x.state === "pending");
    dash.raise({ key: "request:" + r.request_id + ":" + msg.level, kind: "request", single: true,
      handoffId: h ? h.handoff_id : undefined, body: r.description,
      title: SB.fill(msg.level === "breached" ? strings.request_breached : strings.request_due_soon, { name }) });
    renderIncoming();
  });
  setInterval(() => tickWaits(box), 1000);
})();
