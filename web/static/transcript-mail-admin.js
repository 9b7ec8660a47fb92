/* The admin page's section on transcripts by email (_transcript_mail_admin.html): each
   level's form is sent whole with PUT; the broker checks it. */
"use strict";
(function () {
  const root = document.getElementById("transcript-mail-admin");
  if (!root) return;
  const csrf = document.getElementById("admin").dataset.csrf;
  const s = JSON.parse(root.dataset.strings);
  for (const form of root.querySelectorAll("form.transcript-level")) {
    const status = form.querySelector('[data-role="status"]');
    const errorBox = form.querySelector('[data-role="error"]');
    form.addEventListener("input", () => { status.textContent = s.unsaved; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errorBox.hidden = true;
      const body = {
        enabled: form.elements.enabled.checked,
        addresses: form.elements.addresses.value.split(/[\n,;]+/).map((a) => a.trim()).filter(Boolean),
        language: form.elements.language.value,
        time_zone: form.elements.time_zone.value.trim() || "UTC",
      };
      const response = await fetch(form.dataset.path, {
        method: "PUT", credentials: "same-origin", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        errorBox.textContent = data.message || response.statusText;
        errorBox.hidden = false;
        return;
      }
      form.elements.addresses.value = data.addresses.join("\n");
      status.textContent = s.saved;
    });
  }
})();
