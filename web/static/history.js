/* "My sessions": the technician's history from GET /api/v1/sessions (docs/api.md), with
   search, filters and cursor paging ("More"); admins filter by technician. The filters
   live in the page's address, so that reloading or going back keeps them. */
"use strict";
(function () {
  const root = document.getElementById("history");
  const strings = JSON.parse(root.dataset.strings);
  const form = document.getElementById("history-filters");
  const list = document.getElementById("history-list");
  const more = document.getElementById("history-more");
  const count = document.getElementById("history-count");
  const errorBox = document.getElementById("history-error");
  const lang = document.documentElement.lang;
  const when = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  let cursor = null;
  let query = null;
  let loading = 0;  // a newer search makes older answers stale

  /* The API's query from the form: dates are the reader's days, sent as UTC instants. */
  function apiQuery() {
    const params = new URLSearchParams();
    const data = new FormData(form);
    const q = String(data.get("q") || "").trim();
    if (q) params.set("q", q);
    if (data.get("state")) params.set("state", data.get("state"));
    if (data.get("technician_id")) params.set("technician_id", data.get("technician_id"));
    const day = (value, next) => {
      const [y, m, d] = value.split("-").map(Number);
      return new Date(y, m - 1, d + (next ? 1 : 0)).toISOString();
    };
    if (data.get("from")) params.set("from", day(data.get("from"), false));
    if (data.get("to")) params.set("to", day(data.get("to"), true));  // the whole day
    return params;
  }

  function remember() {
    const shown = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) shown.set(name, value);
    history.replaceState(null, "", location.pathname + (shown.toString() ? "?" + shown : ""));
  }

  function restore() {
    const shown = new URLSearchParams(location.search);
    for (const el of form.elements) if (el.name && shown.has(el.name)) el.value = shown.get(el.name);
  }

  function item(session) {
    const li = document.createElement("li");
    li.className = "history-item";
    li.dataset.sessionId = session.session_id;
    // A customer's own request (the portal) has no technician until one takes it.
    const unowned = !session.technician || session.technician.id === null;
    const name = session.end_user_name || (unowned ? strings.customer_request : strings.nobody);
    const who = SB.isolated("span", name, "history-who");
    if (!session.end_user_name) who.classList.add("muted");
    const state = document.createElement("span");
    state.className = "history-state";
    state.dataset.state = session.state;
    state.textContent = strings["state_" + session.state] || session.state;
    const time = document.createElement("time");
    time.dateTime = session.created_at;
    time.textContent = when.format(new Date(session.created_at));
    const tech = SB.isolated("span", unowned ? "–" : session.technician.name, "history-tech");
    const link = document.createElement("a");
    link.href = "/sessions/" + encodeURIComponent(session.session_id) + "/transcript";
    link.textContent = strings.transcript;
    link.className = "history-link";
    link.setAttribute("aria-label", strings.transcript + ": " + SB.inert(name));
    li.append(who, state, time, tech, link);
    return li;
  }

  async function fetchPage(fresh) {
    const mine = ++loading;
    errorBox.hidden = true;
    more.disabled = true;
    if (fresh) { query = apiQuery(); cursor = null; }
    const params = new URLSearchParams(query);
    if (cursor) params.set("cursor", cursor);
    try {
      const response = await fetch("/api/v1/sessions?" + params, { credentials: "same-origin" });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.message || response.statusText);
      if (mine !== loading) return;
      const items = body.sessions.map(item);
      if (fresh) list.replaceChildren(...items); else list.append(...items);
      cursor = body.next_cursor || null;
      more.hidden = !cursor;
      const shown = list.children.length;
      count.textContent = shown ? SB.fill(strings.count, { count: shown }) : strings.none;
    } catch (err) {
      if (mine !== loading) return;
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    } finally {
      more.disabled = false;
    }
  }

  async function technicians() {
    const select = form.elements.technician_id;
    if (!select) return;
    const response = await fetch("/api/v1/technicians", { credentials: "same-origin" });
    if (!response.ok) return;
    const wanted = new URLSearchParams(location.search).get("technician_id");
    for (const t of (await response.json()).technicians) {
      const option = document.createElement("option");
      option.value = t.id;
      option.textContent = SB.inert(t.name);
      select.append(option);
    }
    if (wanted) select.value = wanted;
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    remember();
    fetchPage(true);
  });
  more.addEventListener("click", () => fetchPage(false));
  restore();
  technicians().finally(() => fetchPage(true));
})();
