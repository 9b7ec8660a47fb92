/* The post-session survey on the end user's chat page (web/templates/_survey.html):
   chat.js shows it when the session has ended; this sends the answers, once. */
"use strict";
(function () {
  const root = document.getElementById("survey");
  const form = document.getElementById("survey-form");
  if (!root || !form) return;
  const strings = JSON.parse(root.dataset.strings);
  const error = form.querySelector('[data-role="survey-error"]');
  const thanks = root.querySelector('[data-role="survey-thanks"]');

  function answers() {
    const found = {};
    const rating = form.querySelector('input[name="rating"]:checked');
    if (rating) found.rating = Number(rating.value);
    const solved = form.querySelector('input[name="solved"]:checked');
    if (solved) found.solved = solved.value === "yes";
    const comment = form.querySelector('textarea[name="comment"]');
    if (comment && comment.value.trim()) found.comment = comment.value;
    return found;
  }

  function fail(text) {
    error.textContent = text;
    error.hidden = false;
  }

  form.addEventListener("change", () => { error.hidden = true; });
  form.addEventListener("input", () => { error.hidden = true; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = answers();
    if (!Object.keys(body).length) { fail(strings.none); return; }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await fetch("/api/v1/sessions/" + encodeURIComponent(root.dataset.sessionId) + "/survey", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + root.dataset.token },
        body: JSON.stringify(body),
      });
      const problem = response.ok ? null : await response.json().catch(() => ({}));
      if (response.ok || problem.error === "survey_done") {
        form.hidden = true;
        thanks.hidden = false;
        return;
      }
      fail(strings.failed + " " + (problem.message || response.status));
    } catch (e) {
      fail(strings.failed + " " + e.message);
    }
    button.disabled = false;
  });
})();
