/* Join and Take over a session, from the supervisor board and the watch page
   (docs/supervision.md). Take over asks for the note in a dialog; what happened, or why
   not, is shown in the page (#supervise-result). */
"use strict";
window.SBSupervisorActs = (function () {
  const holder = document.getElementById("supervisor-acts");
  const strings = JSON.parse(holder.dataset.strings);
  const result = document.getElementById("supervise-result");
  const dialog = document.getElementById("take-over-dialog");
  const noteBox = dialog.querySelector('[data-role="note"]');
  const keepBox = dialog.querySelector('[data-role="keep"]');
  const dialogError = dialog.querySelector('[data-role="error"]');
  let pending = null;  // the session the dialog is about: {id, name}
  const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, name) => values[name]);

  async function post(path, body) {
    let response;
    try {
      response = await fetch(path, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": holder.dataset.csrf },
        body: JSON.stringify(body || {}) });
    } catch (e) {
      const error = new Error(strings.offline);
      error.code = "offline";
      throw error;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.message || response.statusText);
      error.code = data.error;
      throw error;
    }
    return data;
  }

  function reason(error) {
    return strings[error.code] || fill(strings.failed, { reason: error.message });
  }

  /* Said in the page: a success with a link to the dashboard, or a refusal. */
  function show(text, ok) {
    result.replaceChildren(document.createTextNode(text));
    if (ok) {
      const link = document.createElement("a");
      link.href = "/dashboard";
      link.textContent = strings.open_dashboard;
      result.append(" ", link);
    }
    result.classList.toggle("alert", !ok);
    result.classList.toggle("notice", ok);
    result.dataset.outcome = ok ? "done" : "refused";
    result.hidden = false;
    result.scrollIntoView({ block: "nearest" });
  }

  function path(id, act) {
    return "/api/v1/sessions/" + encodeURIComponent(id) + "/supervision/" + act;
  }

  async function join(id, name) {
    try {
      await post(path(id, "join"));
      show(strings.joined, true);
    } catch (e) { show(reason(e), false); }
  }

  function takeOver(id, name) {
    pending = { id: id, name: name || strings.nobody };
    dialog.querySelector('[data-role="title"]').textContent = strings.take_over + ": " + pending.name;
    noteBox.value = "";
    keepBox.checked = true;
    dialogError.hidden = true;
    dialog.showModal();
    noteBox.focus();
  }

  dialog.querySelector('[data-action="take-over"]').addEventListener("click", async (event) => {
    event.preventDefault();  // the dialog stays open until the broker answered
    const note = noteBox.value.trim();
    if (!note) {
      dialogError.textContent = strings.note_required;
      dialogError.hidden = false;
      noteBox.focus();
      return;
    }
    try {
      await post(path(pending.id, "take-over"), { note: note, keep_owner: keepBox.checked });
      dialog.close();
      show(strings.taken, true);
    } catch (e) {
      if (e.code === "note_required" || e.code === "note_too_long" || e.code === "offline") {
        dialogError.textContent = reason(e);
        dialogError.hidden = false;
        return;
      }
      dialog.close();
      show(reason(e), false);
    }
  });

  /* Two buttons for a session, for a row or a page header. */
  function buttons(id, name) {
    const joinButton = document.createElement("button");
    joinButton.type = "button";
    joinButton.className = "link-button";
    joinButton.dataset.action = "join";
    joinButton.textContent = strings.join;
    joinButton.addEventListener("click", () => join(id, name));
    const takeButton = document.createElement("button");
    takeButton.type = "button";
    takeButton.className = "link-button";
    takeButton.dataset.action = "take-over";
    takeButton.textContent = strings.take_over;
    takeButton.addEventListener("click", () => takeOver(id, name));
    return [joinButton, takeButton];
  }

  // A page's own place for them (the watch page): <… data-supervisor-acts data-session-id data-name>
  for (const place of document.querySelectorAll("[data-supervisor-acts]")) {
    place.append(...buttons(place.dataset.sessionId, place.dataset.name));
  }

  return { buttons: buttons, join: join, takeOver: takeOver };
})();
