/* The admin page's section on customers' requests (_intake_admin.html, docs/portal.md):
   the pre-chat form (built-in and custom fields, shown, required, their order, choice
   lists), the response target of each severity, where each team's messages go while
   nobody is online, and the chat button's snippet. The form and the targets are one
   document (GET/PUT /api/v1/intake-form), saved whole; the broker checks it. */
"use strict";
(function () {
  const root = document.getElementById("intake-admin");
  const csrf = document.getElementById("admin").dataset.csrf;
  const s = JSON.parse(root.dataset.strings);
  const fieldList = document.getElementById("intake-fields");
  const targetList = document.getElementById("intake-targets");
  const defaultSeverity = document.getElementById("intake-default-severity");
  const status = document.getElementById("intake-status");
  const errorBox = document.getElementById("intake-error");
  let doc = null;  // the form document as the broker last sent it, changed in place
  let teams = [];

  async function api(method, path, body) {
    const response = await fetch(path, {
      method, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || response.statusText);
    return data;
  }

  function fill(template, values) { return template.replace(/%\((\w+)\)s/g, (_, k) => String(values[k] ?? "")); }
  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props || {});
    node.append(...children);
    return node;
  }
  /* An <input> of a type, a button: their types are set apart from their properties. */
  function input(kind, props) { const node = el("input", props); node.type = kind; return node; }
  function button(text, props) { const node = el("button", Object.assign({ textContent: text }, props)); node.type = "button"; return node; }
  function check(text, checked, onChange) {
    const box = input("checkbox", { checked: checked });
    box.addEventListener("change", () => { onChange(box.checked); changed(); });
    return el("label", { className: "check" }, box, " " + text);
  }
  function fieldName(field) {
    return field.built_in ? s[field.name] || field.name : field.label.en || field.label.de || field.name;
  }
  function changed() { status.textContent = s.unsaved; }
  function fail(err) { errorBox.textContent = err.message; errorBox.hidden = false; }

  /* A field's name from its label: a-z, 0-9 and _, unique in the form. */
  function newName(label) {
    const base = (label.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "") || "field");
    const start = /^[a-z]/.test(base) ? base.slice(0, 28) : ("f_" + base).slice(0, 28);
    const taken = new Set(doc.fields.map((f) => f.name).concat(["website"]));
    let name = start;
    for (let n = 2; taken.has(name); n += 1) name = start + "_" + n;
    return name;
  }

  function move(index, by) {
    const [field] = doc.fields.splice(index, 1);
    doc.fields.splice(index + by, 0, field);
    renderFields();
    changed();
  }

  function fieldRow(field, index) {
    const name = fieldName(field);
    const head = el("div", { className: "intake-field-head" },
      el("strong", { textContent: name }),
      el("span", { className: "muted small", textContent: " · " + (field.built_in ? s.built_in : s[field.kind]) }));
    const flags = el("div", { className: "intake-flags" },
      check(s.shown, field.enabled, (on) => { field.enabled = on; }),
      check(s.required, field.required, (on) => { field.required = on; }));
    const up = button("↑", { disabled: index === 0 });
    up.setAttribute("aria-label", fill(s.up, { field: name }));
    up.addEventListener("click", () => move(index, -1));
    const down = button("↓", { disabled: index === doc.fields.length - 1 });
    down.setAttribute("aria-label", fill(s.down, { field: name }));
    down.addEventListener("click", () => move(index, 1));
    const actions = el("div", { className: "intake-row-actions" }, up, down);
    if (!field.built_in) {
      const remove = button(s.remove, { className: "danger" });
      remove.setAttribute("aria-label", fill(s.remove_label, { field: name }));
      remove.addEventListener("click", () => { doc.fields.splice(index, 1); renderFields(); changed(); });
      actions.append(remove);
    }
    const li = el("li", { className: "intake-field" }, head, flags, actions);
    li.dataset.field = field.name;
    if (!field.built_in) li.append(customEditor(field));
    return li;
  }

  function customEditor(field) {
    const box = el("div", { className: "intake-custom" });
    for (const lang of ["en", "de"]) {
      const text = el("input", { value: field.label[lang] || "", maxLength: 100 });
      text.addEventListener("input", () => {
        if (text.value.trim()) field.label[lang] = text.value; else delete field.label[lang];
        changed();
      });
      box.append(el("label", {}, s["label_" + lang], text));
    }
    if (field.kind === "choice") {
      const area = el("textarea", { rows: 3, value: (field.choices || []).join("\n") });
      area.addEventListener("input", () => {
        field.choices = area.value.split("\n").map((c) => c.trim()).filter(Boolean);
        changed();
      });
      box.append(el("label", { className: "intake-choices" }, s.choices, area));
    }
    return box;
  }

  function renderFields() { fieldList.replaceChildren(...doc.fields.map(fieldRow)); }

  function renderTargets() {
    targetList.replaceChildren(...doc.severities.map((target) => {
      const minutes = input("number", { min: 1, max: 129600, step: 1, value: Math.round(target.target_seconds / 60) });
      minutes.setAttribute("aria-label", s[target.level] + ": " + s.minutes);
      minutes.addEventListener("input", () => { target.target_seconds = Math.round(Number(minutes.value) * 60); changed(); });
      const li = el("li", { className: "intake-target" }, el("strong", { textContent: s[target.level] || target.level }),
        el("span", { className: "intake-minutes" }, minutes, " " + s.minutes),
        check(s.business, target.business_hours, (on) => { target.business_hours = on; }));
      li.dataset.level = target.level;
      return li;
    }));
    defaultSeverity.replaceChildren(...doc.severities.map((t) =>
      el("option", { value: t.level, textContent: s[t.level] || t.level, selected: t.level === doc.default_severity })));
  }

  function snippet() {
    const pick = document.getElementById("widget-team").value;
    const attribute = pick ? ' data-team="' + pick + '"' : "";
    document.getElementById("widget-snippet").value =
      '<script src="' + root.dataset.publicUrl + '/widget.js"' + attribute + " async></scr" + "ipt>";
  }

  /* How a team is named in the snippet: its slug ("tier-1" for "Tier 1"), else its id. */
  function teamRef(team) {
    const known = (doc.teams || []).find((t) => t.team_id === team.team_id);
    return known && known.slug ? known.slug : String(team.team_id);
  }

  function renderTeams() {
    const select = document.getElementById("widget-team");
    const before = select.value;
    select.replaceChildren(el("option", { value: "", textContent: s.every_team }),
      ...teams.map((t) => el("option", { value: teamRef(t), textContent: t.name })));
    select.value = before;
    snippet();
    document.getElementById("intake-mail").replaceChildren(...teams.map((team) => {
      const address = input("email", { value: team.message_email || "", placeholder: s.nowhere, maxLength: 254 });
      address.setAttribute("aria-label", fill(s.team_email, { team: team.name }));
      const save = button(s.save_email);
      const note = el("span", { className: "muted small" });
      note.setAttribute("role", "status");
      save.addEventListener("click", async () => {
        errorBox.hidden = true;
        try {
          await api("PUT", "/api/v1/teams/" + team.team_id + "/message-email", { email: address.value.trim() || null });
          note.textContent = s.saved;
        } catch (err) { fail(err); }
      });
      const li = el("li", {}, el("label", {}, el("strong", { textContent: team.name }), address), save, note);
      li.dataset.team = String(team.team_id);
      return li;
    }));
  }

  async function load() {
    const [form, found] = await Promise.all([api("GET", "/api/v1/intake-form"), api("GET", "/api/v1/teams")]);
    doc = form;
    teams = found.teams;
    renderFields();
    renderTargets();
    renderTeams();
    status.textContent = "";
  }

  document.getElementById("intake-new-field").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    const label = form.elements.label.value.trim();
    if (!label) return;
    // The label is in the language the admin writes in (the page's); the other can follow.
    const lang = document.documentElement.lang === "de" ? "de" : "en";
    const field = { name: newName(label), kind: form.elements.kind.value, required: false, enabled: true, label: { [lang]: label } };
    if (field.kind === "choice") field.choices = [];
    doc.fields.push(field);
    form.reset();
    renderFields();
    changed();
    fieldList.lastElementChild.querySelector("input:not([type=checkbox])").focus();
  });

  defaultSeverity.addEventListener("change", () => { doc.default_severity = defaultSeverity.value; changed(); });

  document.getElementById("intake-save").addEventListener("click", async () => {
    errorBox.hidden = true;
    const body = {
      fields: doc.fields.map((f) => {
        const out = { name: f.name, kind: f.kind, required: f.required, enabled: f.enabled };
        if (Object.keys(f.label || {}).length) out.label = f.label;
        if (f.kind === "choice") out.choices = f.choices;
        return out;
      }),
      severities: doc.severities, default_severity: doc.default_severity,
    };
    try {
      doc = await api("PUT", "/api/v1/intake-form", body);
      renderFields();
      renderTargets();
      status.textContent = s.saved;
    } catch (err) { fail(err); }
  });

  document.getElementById("widget-team").addEventListener("change", snippet);
  document.getElementById("widget-copy").addEventListener("click", async () => {
    const code = document.getElementById("widget-snippet");
    code.select();
    try { await navigator.clipboard.writeText(code.value); } catch (err) { document.execCommand("copy"); }
    document.getElementById("widget-copied").hidden = false;
  });

  load().catch(fail);
})();
