/* The admin page's closing-form section (_closing_admin.html): the whole list of
   categories is sent with PUT /api/v1/closing-categories; the broker checks it and gives
   new categories their ids. */
"use strict";
(function () {
  const root = document.getElementById("closing-admin");
  if (!root) return;
  const csrf = document.getElementById("admin").dataset.csrf;
  const s = JSON.parse(root.dataset.strings);
  const form = document.getElementById("closing-categories");
  const body = form.querySelector("tbody");
  const status = document.getElementById("closing-admin-status");
  const errorBox = document.getElementById("closing-admin-error");
  const empty = document.getElementById("closing-empty");

  function input(name, label, value) {
    const td = document.createElement("td");
    const field = document.createElement("input");
    field.name = name;
    field.maxLength = 80;
    field.value = value || "";
    field.setAttribute("aria-label", label);
    td.append(field);
    return td;
  }

  function row(category) {
    const tr = document.createElement("tr");
    if (category.id) tr.dataset.id = category.id;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.dataset.action = "remove";
    remove.textContent = s.remove;
    const td = document.createElement("td");
    td.append(remove);
    tr.append(input("en", s.english, category.label.en), input("de", s.german, category.label.de), td);
    return tr;
  }

  function categories() {
    return Array.from(body.rows, (tr) => {
      const label = {};
      for (const lang of ["en", "de"]) {
        const text = tr.querySelector('input[name="' + lang + '"]').value.trim();
        if (text) label[lang] = text;
      }
      return tr.dataset.id ? { id: tr.dataset.id, label } : { label };
    });
  }

  function changed() {
    status.textContent = s.unsaved;
    empty.hidden = body.rows.length > 0;
  }

  form.addEventListener("input", changed);
  form.addEventListener("click", (event) => {
    const action = event.target.dataset && event.target.dataset.action;
    if (action === "remove") { event.target.closest("tr").remove(); changed(); }
    if (action === "add") {
      const tr = row({ label: {} });
      body.append(tr);
      changed();
      tr.querySelector("input").focus();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const response = await fetch("/api/v1/closing-categories", {
      method: "PUT", credentials: "same-origin", body: JSON.stringify({ categories: categories() }),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      errorBox.textContent = SB.fill(s.failed, { reason: data.message || response.statusText });
      errorBox.hidden = false;
      return;
    }
    body.replaceChildren(...data.categories.map(row));
    empty.hidden = data.categories.length > 0;
    status.textContent = s.saved;
  });
})();
