/* A copy of the chat by email on the end user's page (web/templates/_copy.html): the
   address gets a code, and the copy goes once the code comes back. */
"use strict";
(function () {
  const root = document.getElementById("transcript-copy");
  if (!root) return;
  const strings = JSON.parse(root.dataset.strings);
  const ask = document.getElementById("copy-request");
  const confirm = document.getElementById("copy-confirm");
  const error = root.querySelector('[data-role="copy-error"]');
  const done = root.querySelector('[data-role="copy-done"]');
  const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (_, k) => values[k]);

  async function post(path, body) {
    const response = await fetch("/api/v1/sessions/" + encodeURIComponent(root.dataset.sessionId) + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + root.dataset.token },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new Error(data.message || String(response.status)), { code: data.error });
    return data;
  }

  function fail(err) {
    error.textContent = strings[err.code] || strings.failed + " " + err.message;
    error.hidden = false;
  }

  ask.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      const copy = await post("/transcript-copy", { email: ask.elements.email.value });
      confirm.querySelector('[data-role="sent-code"]').textContent = fill(strings.sent_code, { email: copy.email });
      ask.hidden = true;
      confirm.hidden = false;
      confirm.elements.code.focus();
    } catch (err) { fail(err); }
  });
  confirm.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      const copy = await post("/transcript-copy/confirm", { code: confirm.elements.code.value });
      confirm.hidden = true;
      done.textContent = fill(strings.done, { email: copy.email });
      done.hidden = false;
    } catch (err) { fail(err); }
  });
  confirm.querySelector('[data-action="other-address"]').addEventListener("click", () => {
    confirm.hidden = true;
    error.hidden = true;
    ask.hidden = false;
  });
})();
