/* API tokens (web/templates/_tokens.html): a technician's own on /tokens (list, create
   with the token shown once, revoke), everybody's on the admin page (list, revoke). */
"use strict";
(function () {
  const root = document.getElementById("tokens");
  if (!root) return;
  const strings = JSON.parse(root.dataset.strings);
  const everybody = root.dataset.all === "1";
  const list = document.getElementById("token-list");
  const errorBox = document.getElementById("token-error");
  const form = document.getElementById("new-token");
  const secretBox = document.getElementById("token-secret");
  const lang = document.documentElement.lang || undefined;
  const headings = [...root.querySelectorAll("thead th")].map((th) => th.textContent);

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => values[name] ?? "");
  }
  function when(iso) {
    return new Date(iso).toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
  }
  async function api(method, path, body) {
    const response = await fetch(path, {
      method, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
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
  async function run(fn) {
    errorBox.hidden = true;
    try { await fn(); } catch (e) { errorBox.textContent = e.message; errorBox.hidden = false; }
  }
  function row(token) {
    const tr = el("tr");
    tr.dataset.tokenId = token.id;
    const cells = [el("span", token.name || strings.unnamed, token.name ? "" : "muted")];
    if (everybody) cells.push(document.createTextNode(token.technician.name || ""));
    const scopes = el("span");
    for (const scope of token.scopes) scopes.append(el("code", scope, "scope"), " ");
    cells.push(scopes);
    cells.push(token.expired ? el("span", strings.expired, "badge bad")
      : document.createTextNode(token.expires_at ? when(token.expires_at) : strings.never));
    cells.push(document.createTextNode(token.last_used_at ? when(token.last_used_at) : strings.not_yet));
    const revoke = el("button", strings.revoke);
    revoke.type = "button";
    revoke.addEventListener("click", () => run(async () => {
      if (!confirm(fill(strings.confirm_revoke, { name: token.name || strings.unnamed }))) return;
      await api("DELETE", `/api/v1/tokens/${token.id}`);
      await load();
    }));
    cells.push(revoke);
    cells.forEach((child, i) => {
      const td = el("td");
      td.dataset.label = headings[i] || "";
      td.append(child);
      tr.append(td);
    });
    return tr;
  }
  async function load() {
    const data = await api("GET", everybody ? "/api/v1/tokens?all=true" : "/api/v1/tokens");
    list.replaceChildren(...data.tokens.map(row));
    if (!data.tokens.length) {
      const td = el("td", strings.none, "muted");
      td.colSpan = headings.length;
      list.append(el("tr"));
      list.lastChild.append(td);
    }
  }
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run(async () => {
        const scopes = [...form.querySelectorAll('input[name="scope"]:checked')].map((box) => box.value);
        if (!scopes.length) throw new Error(strings.pick_scopes);
        const body = { name: form.elements.name.value, scopes };
        if (form.elements.expires.value) body.expires_in_days = Number(form.elements.expires.value);
        const made = await api("POST", "/api/v1/tokens", body);
        secretBox.querySelector('[data-role="for"]').textContent = fill(strings.token_for, { name: made.name || strings.unnamed });
        secretBox.querySelector('[data-role="token"]').textContent = made.token;
        secretBox.hidden = false;
        form.reset();
        await load();
      });
    });
    secretBox.querySelector('[data-action="copy-token"]').addEventListener("click", (e) => {
      const text = secretBox.querySelector('[data-role="token"]').textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => { e.target.textContent = strings.copied; }, () => {});
    });
    secretBox.querySelector('[data-action="hide-token"]').addEventListener("click", () => {
      secretBox.querySelector('[data-role="token"]').textContent = "";
      secretBox.hidden = true;
    });
  }
  run(load);
})();
