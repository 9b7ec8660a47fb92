/* The admin page: team queues with waiting times, teams and their members, logins (seats). */
"use strict";
(function () {
  const root = document.getElementById("admin");
  const errorBox = document.getElementById("admin-error");

  async function api(method, path, body) {
    const response = await fetch(path, {
      method, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
    });
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || response.statusText);
    return data;
  }

  function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
  function row(...cells) { const tr = document.createElement("tr"); tr.append(...cells); return tr; }
  function mmss(s) { s = Math.max(0, Math.round(s)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }
  function act(label, fn, className) {
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener("click", async () => {
      errorBox.hidden = true;
      try { await fn(); await load(); } catch (e) { errorBox.textContent = e.message; errorBox.hidden = false; }
    });
    td.append(b);
    return td;
  }

  async function load() {
    const [queues, teams, people, logins] = await Promise.all([
      api("GET", "/api/v1/queues"), api("GET", "/api/v1/teams"),
      api("GET", "/api/v1/technicians"), api("GET", "/api/v1/logins")]);
    const names = new Map(people.technicians.map((t) => [t.id, t]));
    document.getElementById("queues").replaceChildren(...queues.queues.map((q) => row(
      cell(q.name), cell(String(q.waiting.length)),
      cell(q.waiting.length ? mmss(q.waiting[0].waiting_seconds) : "–"))));
    document.getElementById("teams").replaceChildren(...teams.teams.map((team) => {
      const members = document.createElement("td");
      for (const id of team.member_ids) {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = (names.get(id) || { name: "#" + id }).name + " ×";
        chip.title = "Remove";
        chip.addEventListener("click", async () => {
          await api("DELETE", "/api/v1/teams/" + team.team_id + "/members/" + id);
          await load();
        });
        members.append(chip);
      }
      const add = document.createElement("td");
      const select = document.createElement("select");
      for (const t of people.technicians.filter((t) => !team.member_ids.includes(t.id))) {
        const option = document.createElement("option");
        option.value = t.id;
        option.textContent = t.name;
        select.append(option);
      }
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "+";
      button.addEventListener("click", async () => {
        await api("POST", "/api/v1/teams/" + team.team_id + "/members", { technician_id: Number(select.value) });
        await load();
      });
      add.append(select, button);
      return row(cell(team.name), members, add);
    }));
    document.getElementById("seats").textContent = logins.seats ? "(" + logins.logins.length + " / " + logins.seats + ")" : "";
    document.getElementById("logins").replaceChildren(...logins.logins.map((login) => row(
      cell(login.technician.name), cell((names.get(login.technician.id) || {}).presence || ""),
      cell(new Date(login.created_at).toLocaleString()),
      act("End login", () => api("POST", "/api/v1/logins/" + login.login_id + "/end"), "danger"))));
  }

  document.getElementById("new-team").addEventListener("submit", async (e) => {
    e.preventDefault();
    errorBox.hidden = true;
    try {
      await api("POST", "/api/v1/teams", { name: e.target.elements.name.value });
      e.target.reset();
      await load();
    } catch (err) { errorBox.textContent = err.message; errorBox.hidden = false; }
  });
  load();
  setInterval(load, 10000);
})();
