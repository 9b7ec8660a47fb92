/* The technician's closing form (_closing.html, broker/closing): a category from the list
   admins keep, resolved yes or no, a ticket number. Optional: ending a session never waits
   for it. On the dashboard it appears in an ended session's pane (after "End session")
   until it is saved or skipped; on the transcript page of an ended session it changes what
   was recorded. Saved with PUT /api/v1/sessions/{id}/closing; the broker checks it, and
   every refusal is shown in the form. */
"use strict";
(function () {
  const template = document.getElementById("closing-form");
  if (!template) return;
  const strings = JSON.parse(template.dataset.strings);
  const lang = document.documentElement.lang || "en";
  const SKIPPED = "sb-closing-skipped";
  const SAVED = "sb-closing-saved";
  let categories = null;  // a promise of the categories, fetched once per page

  async function call(method, path, csrf, body) {
    const response = await fetch(path, {
      method, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      // The refusals a person can cause are said in the page's language.
      throw new Error(strings["error_" + data.error] || data.message || response.statusText);
    }
    return data;
  }

  function nameOf(category) {
    const label = category.label || {};
    return label[lang] || label.en || Object.values(label)[0] || category.id;
  }

  function summary(closing) {
    const parts = [];
    if (closing.category) parts.push(nameOf(closing.category));
    if (closing.resolved !== null) parts.push(closing.resolved ? strings.yes : strings.no);
    if (closing.ticket) parts.push(closing.ticket);
    return parts.join(" · ") + " (" + SB.fill(strings.recorded, { name: closing.recorded_by.name }) + ")";
  }

  /* The form for session `id`, in `container` before `before`; `onSkip` removes it, and
     `onSaved(closing)` is told after a save. Returns the card. */
  function mount(container, before, id, csrf, opts) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.sessionId = id;
    const q = (role) => card.querySelector('[data-role="' + role + '"]');
    const form = q("form");
    const status = q("status");
    const error = q("error");
    const change = card.querySelector('[data-action="change"]');
    const select = form.elements.category;
    container.insertBefore(card, before);

    function showError(text) {
      error.textContent = text;
      error.hidden = !text;
    }
    function show(closing) {
      q("summary").textContent = closing ? summary(closing) : strings.none;
      q("summary").hidden = !closing;
      form.hidden = Boolean(closing);
      change.hidden = !closing;
      if (!closing) return;
      select.value = closing.category ? closing.category.id : "";
      if (closing.category && select.value !== closing.category.id) {
        select.append(new Option(nameOf(closing.category), closing.category.id, false, true));
      }
      for (const radio of form.elements.resolved) {
        radio.checked = closing.resolved !== null && radio.value === (closing.resolved ? "yes" : "no");
      }
      form.elements.ticket.value = closing.ticket || "";
    }

    change.addEventListener("click", () => {
      form.hidden = false;
      change.hidden = true;
      status.textContent = "";
      select.focus();
    });
    card.querySelector('[data-action="skip"]').hidden = !opts.onSkip;
    card.querySelector('[data-action="skip"]').addEventListener("click", () => opts.onSkip(card));
    form.addEventListener("input", () => { showError(""); status.textContent = ""; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      const resolved = form.elements.resolved.value;
      const body = { category: select.value || null,
        resolved: resolved === "" ? null : resolved === "yes",
        ticket: form.elements.ticket.value.trim() || null };
      try {
        const closing = await call("PUT", "/api/v1/sessions/" + encodeURIComponent(id) + "/closing", csrf, body);
        show(closing);
        status.textContent = strings.saved;
        if (opts.onSaved) opts.onSaved(closing);
      } catch (e) { showError(SB.fill(strings.failed, { reason: e.message })); }
    });

    (async () => {
      try {
        categories = categories || call("GET", "/api/v1/closing-categories", csrf);
        for (const category of (await categories).categories) {
          select.append(new Option(nameOf(category), category.id));
        }
        const found = await call("GET", "/api/v1/sessions/" + encodeURIComponent(id) + "/closing", csrf);
        show(found.closing);
      } catch (e) { showError(SB.fill(strings.load_failed, { reason: e.message })); }
    })();
    return card;
  }

  function skipped() {
    try { return new Set(JSON.parse(sessionStorage.getItem(SKIPPED)) || []); } catch (e) { return new Set(); }
  }

  /* The dashboard: the pane of an ended session that its end user had joined gets the
     form, unless it was skipped in this browser tab. */
  const dash = window.SBDashboard;
  if (dash) {
    dash.on("sessionChanged", (s, pane) => {
      const id = pane.dataset.sessionId;
      // Not for a session nobody joined (its key expired or was withdrawn): nothing to close.
      if (s.state !== "ended" || !s.started_at || pane.querySelector('[data-role="closing"]') || skipped().has(id)) return;
      mount(pane, pane.querySelector('[data-role="composer"]'), id, dash.csrf, {
        onSkip: (card) => {
          const ids = skipped();
          ids.add(id);
          try { sessionStorage.setItem(SKIPPED, JSON.stringify([...ids].slice(-200))); } catch (e) { /* this page only */ }
          card.remove();
        },
      });
    });
  }

  /* The transcript page: saving reloads it, so that its Closing section says what is
     stored now; the form then says it was saved. */
  const page = document.getElementById("closing-page");
  if (page) {
    const id = page.dataset.sessionId;
    const card = mount(page, null, id, page.dataset.csrf, {
      onSaved: () => {
        try { sessionStorage.setItem(SAVED, id); } catch (e) { /* no note after the reload */ }
        location.reload();
      },
    });
    if (sessionStorage.getItem(SAVED) === id) {
      sessionStorage.removeItem(SAVED);
      card.querySelector('[data-role="status"]').textContent = strings.saved;
    }
  }
})();
