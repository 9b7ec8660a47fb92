/* A waiting session's key on the dashboard: the key and its countdown, the join link with
   Copy, and sending both by SMS or email (with each delivery's live status). The key comes
   from the broker (SBDashboard.keys, filled from POST and GET /api/v1/sessions), so every
   browser of its owner shows it; nothing is kept in the browser. */
"use strict";
(function () {
  const P = window.SBProtocol;
  const dash = window.SBDashboard;
  const root = document.getElementById("dashboard");
  const strings = dash.strings;
  const deliveries = new Map();  // session id -> Map(delivery id -> delivery JSON)

  function deliveryText(d) {
    const head = SB.fill(d.channel === "sms" ? strings.sms_to : strings.email_to, { to: d.to });
    const state = strings["delivery_" + d.status] || d.status;
    return head + " · " + state + (d.error ? ": " + d.error : "");
  }

  function renderDeliveries(id) {
    const pane = dash.pane(id);
    if (!pane) return;
    const list = pane.querySelector('[data-role="deliveries"]');
    const items = [...(deliveries.get(id) || new Map()).values()]
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
    list.replaceChildren(...items.map((d) => {
      const li = document.createElement("li");
      li.dataset.status = d.status;
      li.dataset.deliveryId = d.delivery_id;
      li.textContent = deliveryText(d);
      li.title = d.history.map((h) => new Date(h.at).toLocaleTimeString() + " " + h.detail).join("\n");
      return li;
    }));
    list.hidden = items.length === 0;
  }

  function rememberDelivery(d) {
    if (!deliveries.has(d.session_id)) deliveries.set(d.session_id, new Map());
    const known = deliveries.get(d.session_id).get(d.delivery_id);
    // Live updates may overtake the answer to our own request: every change adds to
    // the history, so the longer history is the newer news.
    if (known && known.history.length > d.history.length) return;
    deliveries.get(d.session_id).set(d.delivery_id, d);
    renderDeliveries(d.session_id);
  }

  function mailtoHref(id) {
    const key = dash.keys.get(id);
    if (!key) return "#";
    const base = new URL(key.url).origin;
    const subject = SB.fill(strings.mailto_subject, { name: root.dataset.name });
    const body = SB.fill(strings.mailto_body, { link: key.url, join: base + "/join", key: key.key });
    return "mailto:?subject=" + encodeURIComponent(subject) + "&body=" + encodeURIComponent(body);
  }

  function wireSending(id, pane) {
    const note = pane.querySelector('[data-role="sent-note"]');
    for (const channel of ["sms", "email"]) {
      const form = pane.querySelector('[data-role="' + channel + '-form"]');
      const error = form.querySelector('[data-role="form-error"]');
      const setup = root.dataset[channel];
      form.elements.language.value = root.dataset.defaultLang || "en";
      pane.querySelector('[data-action="show-' + channel + '"]').addEventListener("click", () => {
        for (const other of pane.querySelectorAll(".send-form")) other.hidden = other !== form;
        note.hidden = true;
        error.hidden = true;
        const setupNote = form.querySelector('[data-role="setup-note"]');
        setupNote.textContent = setup;
        setupNote.hidden = !setup;
        form.querySelector('button[type="submit"]').disabled = Boolean(setup);
        const mailto = form.querySelector('[data-role="mailto"]');
        if (mailto) mailto.href = mailtoHref(id);
        form.elements.to.focus();
      });
      form.querySelector('[data-action="cancel-send"]').addEventListener("click", () => { form.hidden = true; });
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        error.hidden = true;
        const submit = form.querySelector('button[type="submit"]');
        submit.disabled = true;
        try {
          const d = await dash.api("POST", "/api/v1/sessions/" + id + "/deliveries",
            { channel: channel, to: form.elements.to.value, language: form.elements.language.value });
          rememberDelivery(d);
          form.hidden = true;
          form.reset();
          form.elements.language.value = root.dataset.defaultLang || "en";
          note.textContent = SB.fill(strings.queued_to, { to: d.to });
          note.hidden = false;
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        } finally {
          submit.disabled = Boolean(setup);
        }
      });
    }
  }

  async function loadDeliveries(id) {
    try {
      const data = await dash.api("GET", "/api/v1/sessions/" + id + "/deliveries");
      for (const d of data.deliveries) rememberDelivery(d);
    } catch (e) { /* the list fills from live updates */ }
  }

  function tickCountdown(id, pane) {
    const s = dash.sessions.get(id) || {};
    const el = pane.querySelector('[data-role="countdown"]');
    if (s.state !== "waiting" || !s.key_expires_at) { el.textContent = ""; return; }
    const left = Math.max(0, Math.round((new Date(s.key_expires_at) - Date.now()) / 1000));
    el.textContent = left > 0 ? SB.fill(strings.expires_in, { time: dash.mmss(left) }) : strings.key_expired;
    el.classList.toggle("expired", left === 0);
  }

  function show(s, pane) {
    const q = (role) => pane.querySelector('[data-role="' + role + '"]');
    const key = dash.keys.get(s.session_id);
    // Its owner's, and an admin's: whoever the broker handed the key to.
    const waiting = s.state === "waiting" && (dash.involved(s) || Boolean(key));
    q("key").textContent = key ? key.key : "– – –";
    q("join-url").value = key ? key.url : "";
    q("key-row").hidden = !waiting;
    q("link-block").hidden = !waiting || !key;
    if (!waiting) for (const form of pane.querySelectorAll(".send-form")) form.hidden = true;
    tickCountdown(s.session_id, pane);
  }

  dash.on("paneOpened", (id, pane) => {
    pane.querySelector('[data-action="copy"]').addEventListener("click", async () => {
      const input = pane.querySelector('[data-role="join-url"]');
      try { await navigator.clipboard.writeText(input.value); }
      catch (e) { input.select(); document.execCommand("copy"); }
      const note = pane.querySelector('[data-role="copied"]');
      note.hidden = false;
      setTimeout(() => { note.hidden = true; }, 2000);
    });
    wireSending(id, pane);
    loadDeliveries(id);
  });
  dash.on("sessionChanged", show);
  dash.on("frame", (msg) => { if (msg.type === P.frame.DELIVERY_UPDATE) rememberDelivery(msg.delivery); });
  setInterval(() => {
    for (const id of dash.order()) tickCountdown(id, dash.pane(id));
  }, 1000);
})();
