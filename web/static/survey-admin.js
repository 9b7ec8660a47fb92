/* The admin page's survey section (_survey_admin.html): the whole configuration is sent
   with PUT /api/v1/survey; the broker checks it. */
"use strict";
(function () {
  const root = document.getElementById("survey-admin");
  if (!root) return;
  const csrf = document.getElementById("admin").dataset.csrf;
  const s = JSON.parse(root.dataset.strings);
  const form = document.getElementById("survey-config");
  const status = document.getElementById("survey-status");
  const errorBox = document.getElementById("survey-error");

  function configuration() {
    return {
      enabled: form.elements.enabled.checked,
      questions: Array.from(form.querySelectorAll("tr[data-question]"), (row) => {
        const label = {};
        for (const lang of ["en", "de"]) {
          const text = row.querySelector('input[name="' + lang + '"]').value.trim();
          if (text) label[lang] = text;
        }
        return { name: row.dataset.question, enabled: row.querySelector('input[name="shown"]').checked, label: label };
      }),
    };
  }

  form.addEventListener("input", () => { status.textContent = s.unsaved; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const response = await fetch("/api/v1/survey", {
      method: "PUT", credentials: "same-origin", body: JSON.stringify(configuration()),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      errorBox.textContent = data.message || response.statusText;
      errorBox.hidden = false;
      return;
    }
    status.textContent = s.saved;
  });
})();
