/* The admin page: technicians (add, make or unmake admin, disable or enable, reset a
   password: its one-time password is shown once; reset second factors), who must have a
   second factor, teams and their members, team queues
   with waiting times, and every login (seat) with its own row. API: docs/api.md. */
"use strict";
(function () {
  const root = document.getElementById("admin");
  const strings = JSON.parse(root.dataset.strings);
  const errorBox = document.getElementById("admin-error");
  const oneTime = document.getElementById("one-time");
  const me = Number(root.dataset.me);
  const lang = document.documentElement.lang;
  const when = new Intl.DateTimeFormat(lang, { dateStyle: "short", timeStyle: "short" });

  async function api(method, path, body) {
    const response = await fetch(path, {
      method, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
    });
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(strings["error_" + data.error] || data.message || response.statusText);
    return data;
  }

  function showError(err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "nearest" });
  }

  /* Run an action, then show the page as it is now (or why it failed). */
  async function act(fn) {
    errorBox.hidden = true;
    try { await fn(); } catch (err) { showError(err); }
    await load();
  }

  function cell(content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content); else td.textContent = content ?? "";
    return td;
  }
  function row(table, ...cells) {
    const tr = document.createElement("tr");
    // On a phone the rows are cards: each cell says which column it is.
    const heads = [...document.getElementById(table).closest("table").querySelectorAll("th")];
    cells.forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i].textContent.trim(); });
    tr.append(...cells);
    return tr;
  }
  function button(label, onClick, className) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener("click", onClick);
    return b;
  }
  function badge(text, className) {
    const span = document.createElement("span");
    span.className = "badge " + (className || "");
    span.textContent = text;
    return span;
  }
  function mmss(s) { s = Math.max(0, Math.round(s)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }
  function time(iso) { return iso ? when.format(new Date(iso)) : "–"; }

  function showPassword(person) {
    oneTime.querySelector('[data-role="for"]').textContent = SB.fill(strings.password_for, { name: person.name });
    oneTime.querySelector('[data-role="password"]').textContent = person.one_time_password;
    oneTime.hidden = false;
    oneTime.querySelector('[data-action="copy-password"]').textContent = oneTime.dataset.copyLabel;
  }
  oneTime.dataset.copyLabel = oneTime.querySelector('[data-action="copy-password"]').textContent;
  oneTime.querySelector('[data-action="copy-password"]').addEventListener("click", (e) => {
    const text = oneTime.querySelector('[data-role="password"]').textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => { e.target.textContent = strings.copied; }, () => {});
  });
  oneTime.querySelector('[data-action="hide-password"]').addEventListener("click", () => {
    oneTime.hidden = true;
    oneTime.querySelector('[data-role="password"]').textContent = "";
  });

  function technicianRow(t) {
    const name = document.createElement("span");
    name.append(SB.isolated("bdi", t.name));
    if (t.is_admin) name.append(" ", badge(strings.admin));
    if (t.disabled) name.append(" ", badge(strings.disabled, "off"));
    if (t.must_change_password && !t.disabled) name.append(" ", badge(strings.one_time, "quiet"));
    if (t.second_factor) name.append(" ", badge(strings.second_factor, "quiet"));
    const actions = document.createElement("span");
    actions.className = "row-actions";
    const path = "/api/v1/technicians/" + t.id;
    actions.append(button(t.is_admin ? strings.unmake_admin : strings.make_admin,
      () => act(() => api("PATCH", path, { admin: !t.is_admin }))));
    if (t.disabled) {
      actions.append(button(strings.enable, () => act(() => api("PATCH", path, { disabled: false }))));
    } else {
      actions.append(button(strings.reset_password, () => {
        if (!confirm(SB.fill(strings.confirm_reset, { name: t.name }))) return;
        act(async () => showPassword({ name: t.name, ...await api("POST", path + "/password-reset") }));
      }));
      if (t.second_factor && t.id !== me) {
        actions.append(button(strings.reset_factors, () => {
          if (!confirm(SB.fill(strings.confirm_reset_factors, { name: t.name }))) return;
          act(() => api("POST", path + "/factors/reset"));
        }));
      }
      if (t.id !== me) {
        actions.append(button(strings.disable, () => {
          if (!confirm(SB.fill(strings.confirm_disable, { name: t.name }))) return;
          act(() => api("PATCH", path, { disabled: true }));
        }, "danger"));
      }
    }
    const tr = row("technicians", cell(name), cell(SB.inert(t.email || "")),
      cell(SB.inert((t.teams || []).join(", ") || "–")),
      cell(strings[t.presence] || t.presence || ""), cell(actions));
    tr.dataset.technicianId = t.id;
    if (t.disabled) tr.classList.add("disabled");
    return tr;
  }

  function teamRow(team, people) {
    const members = document.createElement("span");
    members.className = "chips";
    const byId = new Map(people.map((t) => [t.id, t]));
    for (const id of team.member_ids) {
      const person = byId.get(id) || { name: "#" + id };
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.append(SB.isolated("bdi", person.name));
      /* A team lead supervises the team's live sessions (docs/supervision.md). */
      const leads = (team.lead_ids || []).includes(id);
      if (leads) chip.append(Object.assign(document.createElement("span"), { className: "chip-tag", textContent: strings.lead }));
      const star = button(leads ? "★" : "☆", () => act(() => api("PATCH", "/api/v1/teams/" + team.team_id + "/members/" + id,
        { lead: !leads })), "chip-remove chip-lead");
      star.setAttribute("aria-pressed", String(leads));
      star.setAttribute("aria-label", SB.fill(strings.team_lead, { name: person.name, team: team.name }));
      star.title = star.getAttribute("aria-label");
      chip.append(star);
      chip.append(button("×", () => act(() => api("DELETE", "/api/v1/teams/" + team.team_id + "/members/" + id)), "chip-remove"));
      chip.lastChild.setAttribute("aria-label", SB.fill(strings.remove_member, { name: person.name, team: team.name }));
      members.append(chip);
    }
    const candidates = people.filter((t) => !team.member_ids.includes(t.id) && !t.disabled);
    const picker = document.createElement("span");
    picker.className = "picker";
    const select = document.createElement("select");
    select.setAttribute("aria-label", SB.fill(strings.add_member, { team: team.name }));
    for (const t of candidates) {
      const option = document.createElement("option");
      option.value = t.id;
      option.textContent = SB.inert(t.name);
      select.append(option);
    }
    const add = button(strings.add, () => act(() => api("POST", "/api/v1/teams/" + team.team_id + "/members",
      { technician_id: Number(select.value) })));
    if (candidates.length) picker.append(select, add);
    else picker.textContent = strings.nobody_to_add;
    const tr = row("teams", cell(SB.isolated("bdi", team.name)), cell(members), cell(picker));
    tr.dataset.teamId = team.team_id;
    return tr;
  }

  async function loadPeople() {
    const [teams, people] = await Promise.all([api("GET", "/api/v1/teams"), api("GET", "/api/v1/technicians")]);
    const sorted = people.technicians.slice().sort((a, b) =>
      Number(Boolean(a.disabled)) - Number(Boolean(b.disabled)) || a.name.localeCompare(b.name, lang));
    document.getElementById("technicians").replaceChildren(...sorted.map((t) => technicianRow(t)));
    document.getElementById("teams").replaceChildren(...teams.teams.map((team) => teamRow(team, sorted)));
    return people.technicians;
  }

  /* Queues and logins change by themselves: they are read again every few seconds. */
  async function loadLive(people) {
    const [queues, logins] = await Promise.all([api("GET", "/api/v1/queues"), api("GET", "/api/v1/logins")]);
    const byId = new Map(people.map((t) => [t.id, t]));
    document.getElementById("queues").replaceChildren(...queues.queues.map((q) => row("queues",
      cell(SB.isolated("bdi", q.name)), cell(String(q.waiting.length)),
      cell(q.waiting.length ? mmss(q.waiting[0].waiting_seconds) : "–"))));
    document.getElementById("seats").textContent = logins.seats ? "(" + logins.logins.length + " / " + logins.seats + ")" : "";
    document.getElementById("logins").replaceChildren(...logins.logins.map((login) => {
      const presence = (byId.get(login.technician.id) || {}).presence;
      const end = button(strings.end_login, () => act(() => api("POST", "/api/v1/logins/" + login.login_id + "/end")), "danger");
      const tr = row("logins", cell(SB.isolated("bdi", login.technician.name)), cell(strings[presence] || ""),
        cell(time(login.created_at)), cell(time(login.last_seen_at)), cell(end));
      tr.dataset.loginId = login.login_id;
      return tr;
    }));
  }

  let people = [];
  async function load() {
    try {
      people = await loadPeople();
      await loadLive(people);
    } catch (err) { showError(err); }
  }

  document.getElementById("new-technician").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    act(async () => {
      const added = await api("POST", "/api/v1/technicians", {
        name: form.elements.name.value, email: form.elements.email.value, admin: form.elements.admin.checked });
      form.reset();
      showPassword(added);
    });
  });
  const policy = document.getElementById("factor-policy");
  api("GET", "/api/v1/factor-policy").then((p) => { policy.elements.required.value = p.required; }, showError);
  policy.addEventListener("submit", (e) => {
    e.preventDefault();
    const saved = policy.querySelector('[data-role="saved"]');
    saved.textContent = "";
    act(async () => {
      await api("PUT", "/api/v1/factor-policy", { required: policy.elements.required.value });
      saved.textContent = strings.saved;
    });
  });
  document.getElementById("new-team").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    act(async () => {
      await api("POST", "/api/v1/teams", { name: form.elements.name.value });
      form.reset();
    });
  });
  load();
  setInterval(() => loadLive(people).catch(showError), 10000);
})();
