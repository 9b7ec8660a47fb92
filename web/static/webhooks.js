/* The admin page's webhooks (web/templates/_webhooks.html): list, add (the secret shown
   once), edit events, enable/disable, rotate, test, delete, and each one's delivery log. */
"use strict";
(function () {
  const root = document.getElementById("webhooks");
  const admin = document.getElementById("admin");
  if (!root || !admin) return;
  const strings = JSON.parse(root.dataset.strings);
  const errorBox = document.getElementById("webhook-error");
  const secretBox = document.getElementById("webhook-secret");
  const logBox = document.getElementById("webhook-log");
  const lang = document.documentElement.lang || undefined;
  let eventTypes = [];
  let openLog = null;
  let refresh = null;
  const BADGE = { delivered: "ok", failed: "bad", retrying: "off", pending: "quiet", sending: "quiet" };

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => values[name] ?? "");
  }
  function when(iso) {
    return iso ? new Date(iso).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }) : "";
  }
  async function api(method, path, body) {
    const response = await fetch(path, {
      method, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": admin.dataset.csrf },
    });
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || response.statusText);
    return data;
  }
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }
  function cell(label, ...children) {
    const td = el("td");
    td.dataset.label = label;
    td.append(...children);
    return td;
  }
  function button(label, fn) {
    const b = el("button", label);
    b.type = "button";
    b.addEventListener("click", () => run(fn));
    return b;
  }
  async function run(fn) {
    errorBox.hidden = true;
    try { await fn(); } catch (e) { errorBox.textContent = e.message; errorBox.hidden = false; }
  }
  function checkboxes(container, chosen) {
    container.querySelectorAll("label").forEach((label) => label.remove());
    for (const type of eventTypes) {
      const label = el("label", undefined, "small check");
      const box = el("input");
      box.type = "checkbox";
      box.value = type;
      box.checked = chosen.includes(type);
      label.append(box, " " + type);
      container.append(label);
    }
  }
  function picked(container) {
    const chosen = [...container.querySelectorAll("input:checked")].map((box) => box.value);
    if (!chosen.length) throw new Error(strings.pick_events);
    return chosen;
  }
  function showSecret(made) {
    secretBox.querySelector('[data-role="for"]').textContent = fill(strings.secret_for, { url: made.url });
    secretBox.querySelector('[data-role="secret"]').textContent = made.secret;
    secretBox.hidden = false;
  }
  const headings = [...root.querySelectorAll(":scope > table th")].map((th) => th.textContent);

  function editor(hook, tr) {
    const row = el("tr", undefined, "webhook-editor");
    const box = el("fieldset", undefined, "webhook-events");
    checkboxes(box, hook.events);
    const td = el("td");
    td.colSpan = 4;
    td.append(box, button(strings.save, async () => {
      await api("PATCH", "/api/v1/webhooks/" + hook.id, { events: picked(box) });
      await load();
    }), button(strings.cancel, async () => row.remove()));
    row.append(td);
    tr.after(row);
  }

  function hookRow(hook) {
    const tr = el("tr");
    if (!hook.enabled) tr.className = "disabled";
    const name = el("div", hook.description || hook.url);
    const url = el("div", hook.description ? hook.url : "", "muted small webhook-url");
    const status = el("span", hook.enabled ? strings.enabled : strings.disabled,
      "badge " + (hook.enabled ? "ok" : "off"));
    const notes = [hook.disabled_reason, hook.failing_since &&
      fill(strings.failing_since, { time: when(hook.failing_since) })].filter(Boolean);
    const actions = el("div", undefined, "row-actions");
    actions.append(
      button(strings.edit_events, async () => editor(hook, tr)),
      button(strings.send_test, async () => {
        await api("POST", "/api/v1/webhooks/" + hook.id + "/test");
        await showLog(hook);
      }),
      button(strings.deliveries, async () => showLog(hook)),
      button(strings.rotate, async () => {
        if (!confirm(fill(strings.confirm_rotate, { url: hook.url }))) return;
        showSecret(await api("POST", "/api/v1/webhooks/" + hook.id + "/rotate"));
        await load();
      }),
      button(hook.enabled ? strings.disable : strings.enable, async () => {
        await api("PATCH", "/api/v1/webhooks/" + hook.id, { enabled: !hook.enabled });
        await load();
      }),
      button(strings.delete, async () => {
        if (!confirm(fill(strings.confirm_delete, { url: hook.url }))) return;
        await api("DELETE", "/api/v1/webhooks/" + hook.id);
        if (openLog === hook.id) logBox.hidden = true;
        await load();
      }));
    tr.append(cell(headings[0], name, url), cell(headings[1], hook.events.join(", ")),
      cell(headings[2], status, ...notes.map((note) => el("div", note, "small muted"))),
      cell(headings[3], actions));
    return tr;
  }

  async function showLog(hook) {
    openLog = hook.id;
    const data = await api("GET", "/api/v1/webhooks/" + hook.id + "/deliveries?limit=50");
    logBox.querySelector('[data-role="url"]').textContent = hook.url;
    const labels = [...logBox.querySelectorAll("th")].map((th) => th.textContent);
    const rows = data.deliveries.map((d) => {
      const tr = el("tr");
      const due = d.next_attempt_at ? fill(strings.next_attempt, { time: when(d.next_attempt_at) }) : "";
      tr.append(cell(labels[0], el("div", d.type), el("div", d.event_id, "muted small webhook-url")),
        cell(labels[1], el("span", strings["status_" + d.status] || d.status, "badge " + BADGE[d.status])),
        cell(labels[2], String(d.attempts)),
        cell(labels[3], d.response_status ? String(d.response_status) : "–",
          ...(d.error ? [el("div", d.error, "small muted")] : [])),
        cell(labels[4], when(d.updated_at), ...(due ? [el("div", due, "small muted")] : [])));
      return tr;
    });
    if (!rows.length) {
      const td = el("td", strings.no_deliveries, "muted");
      td.colSpan = 5;
      rows.push(el("tr"));
      rows[0].append(td);
    }
    logBox.querySelector("tbody").replaceChildren(...rows);
    logBox.hidden = false;
    // While something is on its way, the log follows it.
    clearTimeout(refresh);
    if (data.deliveries.some((d) => d.status === "pending" || d.status === "sending")) {
      refresh = setTimeout(() => { if (openLog === hook.id && !logBox.hidden) run(() => showLog(hook)); }, 1000);
    }
  }

  async function load() {
    const data = await api("GET", "/api/v1/webhooks");
    eventTypes = data.event_types;
    const list = document.getElementById("webhook-list");
    list.replaceChildren(...data.webhooks.map(hookRow));
    if (!data.webhooks.length) {
      const tr = el("tr");
      const td = el("td", strings.none, "muted");
      td.colSpan = 4;
      tr.append(td);
      list.append(tr);
    }
    const events = document.getElementById("new-webhook-events");
    if (!events.querySelector("input")) checkboxes(events, ["session.created", "session.ended"]);
    const shown = data.webhooks.find((hook) => hook.id === openLog);
    if (shown && !logBox.hidden) await showLog(shown);
  }

  document.getElementById("new-webhook").addEventListener("submit", (e) => {
    e.preventDefault();
    run(async () => {
      const form = e.target;
      const made = await api("POST", "/api/v1/webhooks", {
        url: form.url.value.trim(), description: form.description.value.trim(),
        events: picked(document.getElementById("new-webhook-events")) });
      form.url.value = "";
      form.description.value = "";
      showSecret(made);
      await load();
    });
  });
  secretBox.querySelector('[data-action="copy-secret"]').addEventListener("click", (e) => {
    const text = secretBox.querySelector('[data-role="secret"]').textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => { e.target.textContent = strings.copied; }, () => {});
  });
  secretBox.querySelector('[data-action="hide-secret"]').addEventListener("click", () => {
    secretBox.hidden = true;
    secretBox.querySelector('[data-role="secret"]').textContent = "";
  });
  logBox.querySelector('[data-action="close-log"]').addEventListener("click", () => {
    logBox.hidden = true;
    openLog = null;
  });
  run(load);
})();
