/* Transfers, collaborators and notes in a session pane of the technician dashboard
   (offers to this technician: handoff-incoming.js). Talks to the handoff API (docs/api.md)
   and hooks into dashboard.js via SBDashboard. */
"use strict";
(function () {
  const P = window.SBProtocol;
  const dash = window.SBDashboard;
  const strings = JSON.parse(document.getElementById("handoff-strings").dataset.strings);
  const outgoing = new Map();  // session id -> my pending handoff of it
  const takenOver = new Set();  // handoff ids of my sessions supervisors took over
  let roster = [];
  let teams = [];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const mmss = dash.mmss;

  async function refreshRoster() {
    try {
      roster = (await dash.api("GET", "/api/v1/technicians")).technicians;
      teams = (await dash.api("GET", "/api/v1/teams")).teams;
    } catch (e) { /* shown when used */ }
  }

  /* -- in a session pane: transfer, invite, notes ------------------------------------ */

  function paneTools(id, pane) {
    const actions = pane.querySelector(".pane-actions");
    const panel = el("div", "handoff-panel");
    panel.hidden = true;
    pane.querySelector(".pane-header").append(panel);
    const status = el("p", "small handoff-status");
    status.hidden = true;
    pane.querySelector(".pane-header").append(status);
    const buttons = {};
    for (const [name, label] of [["transfer", strings.transfer], ["invite", strings.invite], ["notes", strings.notes]]) {
      const button = el("button", "", label);
      button.type = "button";
      button.dataset.action = "handoff-" + name;
      button.addEventListener("click", () => toggle(name));
      buttons[name] = button;
      actions.insertBefore(button, actions.firstChild);
    }
    let showing = null;

    async function toggle(name) {
      if (showing === name) { panel.hidden = true; showing = null; return; }
      showing = name;
      await refreshRoster();
      panel.replaceChildren(name === "transfer" ? transferForm() : name === "invite" ? inviteForm() : await notesForm());
      panel.hidden = false;
    }

    function technicianSelect(exclude) {
      const select = el("select");
      select.name = "technician";
      // Admins get disabled technicians in the roster too; nobody can hand them a session.
      for (const t of roster.filter((t) => !t.disabled && !exclude.includes(t.id))) {
        const option = el("option", "", t.name + " (" + strings[t.presence] + ")");
        option.value = t.id;
        select.append(option);
      }
      return select;
    }

    function labelled(text, field) {
      const label = el("label", "small", text);
      label.append(field);
      return label;
    }

    function transferForm() {
      const form = el("form", "handoff-form");
      const kind = el("div", "handoff-kind");
      for (const [value, text] of [["technician", strings.to_technician], ["team", strings.to_queue]]) {
        const label = el("label", "small inline-choice");
        const radio = el("input");
        radio.type = "radio";
        radio.name = "kind";
        radio.value = value;
        radio.checked = value === "technician";
        label.append(radio, document.createTextNode(" " + text));
        kind.append(label);
      }
      const session = dash.sessions.get(id) || {};
      const technician = technicianSelect([dash.me, session.technician && session.technician.id]);
      const team = el("select");
      team.name = "team";
      for (const t of teams) {
        const option = el("option", "", t.name);
        option.value = t.team_id;
        team.append(option);
      }
      const note = el("textarea");
      note.name = "note";
      note.rows = 3;
      note.required = true;
      note.maxLength = 2000;
      note.placeholder = strings.note_placeholder;
      const stay = el("input");
      stay.type = "checkbox";
      stay.name = "stay";
      const stayLabel = el("label", "small inline-choice");
      stayLabel.append(stay, document.createTextNode(" " + strings.stay));
      const error = el("p", "small form-error");
      error.hidden = true;
      const send = el("button", "primary", strings.send_transfer);
      send.type = "submit";
      const cancel = el("button", "", strings.cancel);
      cancel.type = "button";
      cancel.addEventListener("click", () => { panel.hidden = true; showing = null; });
      const targetTech = labelled(strings.technician_label, technician);
      const targetTeam = labelled(strings.team_label, team);
      targetTeam.hidden = true;
      kind.addEventListener("change", () => {
        const toTeam = form.elements.kind.value === "team";
        targetTech.hidden = toTeam;
        targetTeam.hidden = !toTeam;
      });
      form.append(kind, targetTech, targetTeam, labelled(strings.note_label, note), stayLabel, send, cancel, error);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        error.hidden = true;
        const body = { note: note.value, keep_sender: stay.checked };
        if (form.elements.kind.value === "team") body.to_team_id = Number(team.value);
        else body.to_technician_id = Number(technician.value);
        try {
          const h = await dash.api("POST", "/api/v1/sessions/" + id + "/transfer", body);
          outgoing.set(id, h);
          panel.hidden = true;
          showing = null;
          showStatus();
        } catch (err) { error.textContent = err.message; error.hidden = false; }
      });
      return form;
    }

    function inviteForm() {
      const form = el("form", "handoff-form");
      const session = dash.sessions.get(id) || {};
      const technician = technicianSelect([dash.me, session.technician && session.technician.id]);
      const error = el("p", "small form-error");
      error.hidden = true;
      const send = el("button", "primary", strings.send_invite);
      send.type = "submit";
      form.append(labelled(strings.invite_label, technician), send, error);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await dash.api("POST", "/api/v1/sessions/" + id + "/collaborators", { technician_id: Number(technician.value) });
          panel.hidden = true;
          showing = null;
        } catch (err) { error.textContent = err.message; error.hidden = false; }
      });
      return form;
    }

    async function notesForm() {
      const form = el("form", "handoff-form notes-form");
      const area = el("textarea");
      area.rows = 4;
      area.maxLength = 20000;
      try { area.value = (await dash.api("GET", "/api/v1/sessions/" + id + "/notes")).notes; } catch (e) { /* empty */ }
      const save = el("button", "primary", strings.save);
      save.type = "submit";
      const saved = el("span", "small muted", strings.saved);
      saved.hidden = true;
      const error = el("p", "small form-error");
      error.hidden = true;
      form.append(labelled(strings.notes_label, area), save, saved, error);
      try {  // the transfer history of this session, for whoever may read the notes
        const history = (await dash.api("GET", "/api/v1/sessions/" + id + "/handoffs")).handoffs;
        if (history.length) {
          const list = el("ul", "handoff-history small");
          for (const h of history) {
            const to = h.to_team ? SB.fill(strings.queue, { team: h.to_team.name }) : h.to_technician.name;
            list.append(el("li", "", new Date(h.created_at).toLocaleString() + " · " + h.from.name + " → " + to
              + " · " + (strings["state_" + h.state] || h.state) + (h.reason ? " (" + h.reason + ")" : "") + " · " + h.note));
          }
          form.append(labelled(strings.history, list));
        }
      } catch (e) { /* collaborators and owners only */ }
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        error.hidden = true;
        try {
          await dash.api("PUT", "/api/v1/sessions/" + id + "/notes", { notes: area.value });
          saved.hidden = false;
          setTimeout(() => { saved.hidden = true; }, 2000);
        } catch (err) { error.textContent = err.message; error.hidden = false; }
      });
      return form;
    }

    function showStatus() {
      const h = outgoing.get(id);
      status.replaceChildren();
      status.hidden = !h;
      if (!h) return;
      const target = h.to_team ? SB.fill(strings.queue, { team: h.to_team.name }) : (h.to_technician || {}).name;
      status.dataset.state = h.state;
      if (h.state === "pending") {
        const text = el("span");
        text.dataset.deadline = h.deadline || "";
        text.dataset.target = target;
        const back = el("button", "", strings.take_back);
        back.type = "button";
        back.addEventListener("click", async () => {
          try { outgoing.set(id, await dash.api("POST", "/api/v1/handoffs/" + h.handoff_id + "/cancel")); }
          catch (e) { dash.showError(e.message); }
          showStatus();
        });
        status.append(text, back);
        tickPending(status);
      } else if (h.state === "declined") {
        status.textContent = SB.fill(strings.declined, { name: target, reason: h.reason || "" });
      } else if (h.state === "expired") {
        status.textContent = SB.fill(strings.expired, { reason: h.reason || "" });
      } else if (h.state === "accepted" && h.reason === "taken_over") {  // by a supervisor
        status.textContent = SB.fill(strings.taken_over, { name: target, note: h.note });
      } else if (h.state === "accepted") {
        status.textContent = SB.fill(strings.accepted, { name: target });
      } else {
        status.hidden = true;
      }
    }

    function sessionChanged(s) {
      const mine = s.technician && s.technician.id === dash.me;
      buttons.transfer.hidden = s.state === "ended" || !mine;
      buttons.invite.hidden = s.state === "ended" || !mine;
    }

    return { showStatus, sessionChanged };
  }

  function tickPending(scope) {
    for (const node of (scope || document).querySelectorAll("[data-deadline]")) {
      const left = node.dataset.deadline ? (new Date(node.dataset.deadline) - Date.now()) / 1000 : 0;
      node.textContent = SB.fill(strings.pending, { name: node.dataset.target, time: mmss(left) }) + " ";
    }
  }

  const tools = new Map();  // session id -> pane tools
  dash.on("paneOpened", (id, pane) => tools.set(id, paneTools(id, pane)));
  dash.on("sessionChanged", (s) => { const t = tools.get(s.session_id); if (t) t.sessionChanged(s); });
  dash.on("frame", (msg) => {
    if (msg.type !== P.frame.HANDOFF_UPDATE) return;
    const h = msg.handoff;
    if (h.from.id === dash.me) {
      if (h.state === "accepted" && h.reason === "taken_over" && !takenOver.has(h.handoff_id)) {
        takenOver.add(h.handoff_id);  // a supervisor took it: an alert, once
        dash.raise({ key: "handoff:" + h.handoff_id, kind: "transfer", single: true, body: h.note,
          title: SB.fill(strings.taken_over_title, { name: (h.to_technician || {}).name }) });
      }
      outgoing.set(h.session_id, h);
      const t = tools.get(h.session_id);
      if (t) t.showStatus();
    }
  });
  setInterval(() => tickPending(), 1000);
})();
