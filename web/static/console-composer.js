/* The dashboard composer: "Maria is typing…" both ways (SB.wireTyping), and canned
   responses (docs/api.md, Canned responses): a list
   filtered as the technician types, opened with its button, the "c" shortcut or by typing
   "/" and a shortcut at the start of the message. The chosen one is inserted for editing,
   with its placeholders filled in; Enter then sends it as any message.
   Keys in the list: Up and Down choose, Enter or Tab insert, Escape closes. */
"use strict";
(function () {
  const dash = window.SBDashboard;
  const strings = JSON.parse(document.getElementById("console-strings").dataset.strings);
  const me = document.getElementById("dashboard").dataset.name;
  let loaded = null;  // a promise of the responses the technician may use
  const pickers = new Map();  // session id -> picker

  function responses(fresh) {
    if (!loaded || fresh) {
      const next = dash.api("GET", "/api/v1/canned-responses").then((data) => data.canned_responses);
      // A failed refresh keeps what was loaded before.
      loaded = loaded ? next.catch(() => loaded) : next.catch(() => []);
    }
    return loaded;
  }

  /* Best matches first: a shortcut that starts with the query, then a title, then any text. */
  function matching(items, query) {
    const q = query.trim().toLowerCase();
    const rank = (r) => {
      if (!q) return 0;
      if ((r.shortcut || "").startsWith(q)) return 0;
      if (r.title.toLowerCase().startsWith(q)) return 1;
      return [r.shortcut || "", r.title, r.text].some((t) => t.toLowerCase().includes(q)) ? 2 : -1;
    };
    return items.map((r) => [rank(r), r]).filter(([n]) => n >= 0)
      .sort((a, b) => a[0] - b[0] || a[1].title.localeCompare(b[1].title)).map(([, r]) => r);
  }

  function scopeName(r) {
    return r.scope === "team" ? r.team_name || strings.scope_team : strings["scope_" + r.scope] || r.scope;
  }

  function picker(id, pane) {
    const composer = pane.querySelector('[data-role="composer"]');
    const area = composer.querySelector("textarea");
    const box = document.getElementById("canned-picker").content.firstElementChild.cloneNode(true);
    const filter = box.querySelector("input");
    const list = box.querySelector('[role="listbox"]');
    const empty = box.querySelector('[data-role="empty"]');
    list.id = "canned-" + id;
    filter.setAttribute("aria-controls", list.id);
    composer.before(box);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "canned-button";
    button.dataset.action = "canned";
    button.title = strings.canned;
    button.setAttribute("aria-label", strings.canned);
    button.setAttribute("aria-expanded", "false");
    const buttonLabel = document.createElement("span");
    buttonLabel.className = "canned-label";  // hidden on phones: the icon says it
    buttonLabel.textContent = strings.canned;
    button.append(buttonLabel);
    composer.insertBefore(button, composer.querySelector('button[type="submit"]'));
    let mode = null;  // null (closed), "filter" (its own box) or "slash" (the message is the query)
    let shown = [];
    let chosen = 0;

    function render() {
      list.replaceChildren(...shown.map((r, n) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.id = list.id + "-" + n;
        li.setAttribute("aria-selected", n === chosen ? "true" : "false");
        const head = document.createElement("div");
        head.className = "canned-head";
        const title = document.createElement("strong");
        title.textContent = r.title;
        head.append(title);
        if (r.shortcut) {
          const cut = document.createElement("span");
          cut.className = "canned-shortcut";
          cut.textContent = "/" + r.shortcut;
          head.append(cut);
        }
        const scope = document.createElement("span");
        scope.className = "canned-scope";
        scope.textContent = scopeName(r);
        head.append(scope);
        const text = document.createElement("div");
        text.className = "canned-text";
        text.textContent = fill(r.text);
        li.append(head, text);
        li.addEventListener("mousedown", (e) => e.preventDefault());  // keep the focus
        li.addEventListener("click", () => { chosen = n; insert(); });
        return li;
      }));
      empty.hidden = shown.length > 0;
      const current = list.children[chosen];
      filter.setAttribute("aria-activedescendant", current ? current.id : "");
      if (current) current.scrollIntoView({ block: "nearest" });
    }

    async function update(fresh) {
      const query = mode === "slash" ? area.value.slice(1) : filter.value;
      shown = matching(await responses(fresh), query);
      chosen = Math.min(chosen, Math.max(0, shown.length - 1));
      if (mode) render();
    }

    function open(how) {
      mode = how;
      chosen = 0;
      box.hidden = false;
      filter.hidden = how !== "filter";
      button.setAttribute("aria-expanded", "true");
      if (how === "filter") { filter.value = ""; filter.focus(); }
      update(true);
    }

    function close(focus) {
      mode = null;
      box.hidden = true;
      button.setAttribute("aria-expanded", "false");
      if (focus) area.focus();
    }

    function fill(text) {
      const s = dash.sessions.get(id) || {};
      const customer = s.end_user_name ? SB.personName(s.end_user_name, dash.strings) : dash.strings.guest;
      return text.replaceAll("{customer}", customer).replaceAll("{technician}", me);
    }

    /* Into the message, for editing before it is sent. */
    function insert() {
      const r = shown[chosen];
      if (!r) return;
      const text = fill(r.text);
      const [from, to] = mode === "slash" ? [0, area.value.length] : [area.selectionStart, area.selectionEnd];
      area.value = area.value.slice(0, from) + text + area.value.slice(to);
      close(true);
      area.setSelectionRange(from + text.length, from + text.length);
      area.dispatchEvent(new Event("input", { bubbles: true }));  // the draft, the typing notice
    }

    /* Up, Down, Enter, Tab and Escape belong to the open list, before the composer sees them. */
    function keys(e) {
      if (!mode || e.isComposing) return;
      const handled = {
        ArrowDown: () => { chosen = Math.min(shown.length - 1, chosen + 1); render(); },
        ArrowUp: () => { chosen = Math.max(0, chosen - 1); render(); },
        Enter: () => { if (shown.length) insert(); else if (mode === "filter") close(true); else return false; },
        Tab: () => { if (shown.length) insert(); else return false; },
        Escape: () => close(true),
      }[e.key];
      if (handled && handled() !== false) { e.preventDefault(); e.stopImmediatePropagation(); }
    }
    composer.addEventListener("keydown", keys, true);
    box.addEventListener("keydown", keys);
    filter.addEventListener("input", () => update(false));
    area.addEventListener("input", () => {
      if (/^\/\S*$/.test(area.value)) { if (mode !== "slash") open("slash"); else update(false); }
      else if (mode === "slash") close(false);
    });
    box.addEventListener("focusout", (e) => {
      if (mode === "filter" && !box.contains(e.relatedTarget)) close(false);
    });
    button.addEventListener("click", () => { if (mode) close(true); else open("filter"); });
    return { open: () => open("filter") };
  }

  dash.on("paneOpened", (id, pane, socket) => {
    pickers.set(id, picker(id, pane));
    SB.wireTyping(socket, pane.querySelector('[data-role="composer"] textarea'),
      pane.querySelector('[data-role="typing"]'), dash.strings);
  });
  /* For the keyboard shortcut: the list of the session in front. */
  dash.openCanned = () => {
    const p = pickers.get(dash.active());
    if (p) p.open();
  };
})();
