/* The support portal's pre-chat form (docs/portal.md). The browser's own checks only
   hint (required, lengths, the shape of an address); the broker checks every answer and
   names the field it refuses, and the message stands next to that field. A chat request
   goes to the chat page; a message left while nobody is online ends in a confirmation.
   Embedded in a website's chat button (?embed=1), the page tells the button (its parent,
   by postMessage to the origin the button named) about the new chat, because the framed
   chat gets no cookies: the participant token travels in the URL fragment instead. */
"use strict";
(function () {
  const root = document.getElementById("portal");
  const form = document.getElementById("portal-form");
  if (!form) return;  // no team set up yet
  const strings = JSON.parse(root.dataset.strings);
  const online = JSON.parse(root.dataset.online);
  const waits = JSON.parse(root.dataset.waits);
  const errorBox = document.getElementById("portal-error");
  const embedded = root.dataset.embedded === "yes";
  const teamSelect = form.elements.namedItem("team");
  const email = form.elements.namedItem("email");
  const emailRequired = email ? email.required : false;
  // The chat button says which site it is on; nothing is sent to another.
  const host = new URLSearchParams(location.hash.slice(1)).get("host");

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, k) => String(values[k] ?? ""));
  }

  /* "Estimated wait: …" in whole minutes (queue.js says it the same way). */
  function waitText(seconds) {
    const minutes = Math.round(seconds / 60);
    return seconds < 60 ? strings.wait_soon : minutes === 1 ? strings.wait_minute
      : fill(strings.wait_minutes, { minutes: minutes });
  }

  /* online, offline, or choose (a team first): what the page says and the button does. */
  function state() {
    const team = root.dataset.team || (teamSelect ? teamSelect.value : "");
    if (!team) return "choose";
    return online[team] ? "online" : "offline";
  }

  function showState() {
    const now = state();
    root.dataset.state = now;
    const team = root.dataset.team || (teamSelect ? teamSelect.value : "");
    const seconds = now === "online" ? waits[team] : undefined;
    const wait = seconds === undefined ? "" : " " + waitText(seconds);
    document.getElementById("availability").textContent = strings.states[now][0] + wait;
    form.querySelector('button[type="submit"]').textContent = strings.states[now][1];
    // A message needs an address to answer to.
    if (email) {
      email.required = emailRequired || now === "offline";
      email.closest(".field").querySelector(".optional")?.toggleAttribute("hidden", email.required);
    }
  }

  function fieldOf(name) { return form.querySelector('.field[data-field="' + CSS.escape(name) + '"]'); }

  function showError(name, text) {
    const field = fieldOf(name);
    if (!field) { errorBox.textContent = text; errorBox.hidden = false; return null; }
    const input = field.querySelector("input, textarea, select");
    const note = field.querySelector(".field-error");
    note.textContent = text;
    note.hidden = false;
    input.setAttribute("aria-invalid", "true");
    return input;
  }

  function clearErrors() {
    errorBox.hidden = true;
    for (const note of form.querySelectorAll(".field-error")) { note.hidden = true; note.textContent = ""; }
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  /* The browser's hint for one field, in the page's words; null when it looks right. */
  function hint(input) {
    const v = input.validity;
    if (v.valid) return null;
    if (v.valueMissing) return input.name === "email" && state() === "offline" ? strings.email_needed : strings.field_required;
    if (v.typeMismatch) return strings.invalid_email;
    if (v.tooLong) return fill(strings.field_too_long, { max: input.maxLength });
    return strings.field_required;
  }

  function answers() {
    const values = {};
    for (const input of form.querySelectorAll("input[name], textarea[name], select[name]")) {
      if (input.value.trim() !== "") values[input.name] = input.value;
    }
    if (root.dataset.team) values.team = root.dataset.team;
    return values;
  }

  function refused(data, status) {
    if (status === 429) return { field: null, text: strings[data.error] || strings.rate_limited };
    let text = strings[data.error] || data.message || strings.failed;
    if (data.error === "field_required" && data.field === "email" && state() === "offline") text = strings.email_needed;
    const input = data.field && form.elements.namedItem(data.field);
    if (data.error === "field_too_long" && input) text = fill(strings.field_too_long, { max: input.maxLength });
    return { field: data.field || null, text: text };
  }

  function opened(data) {
    if (!embedded) {
      location.assign("/s/" + encodeURIComponent(data.session_id));  // the answer set its cookie
      return;
    }
    const chat = { session_id: data.session_id, token: data.participant_token };
    if (host && window.parent !== window) window.parent.postMessage({ widget: "session", ...chat }, host);
    const fragment = new URLSearchParams({ token: chat.token });
    if (host) fragment.set("host", host);
    location.replace("/s/" + encodeURIComponent(chat.session_id) + "/embed?lang=" + root.dataset.lang + "#" + fragment);
  }

  function sent(values) {
    form.hidden = true;
    const box = document.getElementById("portal-sent");
    box.querySelector('[data-role="sent-to"]').textContent = fill(strings.sent_to, { email: values.email || "" });
    box.hidden = false;
    box.focus();
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    let first = null;
    for (const input of form.querySelectorAll(".field input, .field textarea, .field select")) {
      const text = hint(input);
      if (text) first = first || showError(input.name, text);
    }
    if (first) { first.focus(); return; }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const values = answers();
    try {
      const response = await fetch("/api/v1/requests?lang=" + encodeURIComponent(root.dataset.lang), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(values),
      });
      const data = await response.json().catch(() => ({}));
      if (response.status === 201) { opened(data); return; }
      if (response.status === 202) { sent(values); return; }
      const problem = refused(data, response.status);
      const input = problem.field ? showError(problem.field, problem.text) : null;
      if (input) input.focus();
      else { errorBox.textContent = problem.text; errorBox.hidden = false; }
    } catch (err) {
      errorBox.textContent = strings.failed;
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  if (teamSelect) teamSelect.addEventListener("change", showState);
  showState();
})();
