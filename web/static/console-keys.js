/* Keyboard shortcuts of the dashboard, listed in a help overlay ("?"). Single keys work
   while no text field has the focus (Escape leaves the message box); Alt+1 to Alt+9 work
   anywhere. The list in the overlay is the template's; this file only acts on it. */
"use strict";
(function () {
  const dash = window.SBDashboard;
  const help = document.getElementById("shortcuts-help");

  function typingIn(target) {
    return target instanceof HTMLElement
      && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function step(by) {
    const order = dash.order();
    if (!order.length) return;
    const at = order.indexOf(dash.active());
    dash.select(order[(at + by + order.length) % order.length]);
  }

  /* The first transfer or queue item waiting for an answer in the sidebar. */
  function offer(action) {
    const button = document.querySelector('.handoff-card:not(.handoff-over) [data-action="' + action + '"]');
    if (button) button.click();
  }

  function activePane() {
    return dash.active() ? dash.pane(dash.active()) : null;
  }

  const KEYS = {
    "?": () => { if (help.open) help.close(); else help.showModal(); },
    j: () => step(1),
    k: () => step(-1),
    a: () => offer("accept"),
    d: () => offer("decline"),
    e: () => { if (dash.active()) dash.endSession(dash.active()); },
    f: () => {
      const pane = activePane();
      const attach = pane && pane.querySelector('[data-action="attach-file"]');
      if (attach && !attach.disabled && attach.offsetParent) attach.click();
    },
    c: () => dash.openCanned(),
    r: () => {
      const pane = activePane();
      const area = pane && pane.querySelector('[data-role="composer"] textarea');
      if (area && !area.disabled && area.offsetParent) area.focus();
    },
  };

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if (e.altKey && !e.ctrlKey && !e.metaKey && /^Digit[1-9]$/.test(e.code)) {
      const id = dash.order()[Number(e.code.slice(5)) - 1];
      if (id) { e.preventDefault(); dash.select(id); }
      return;
    }
    if (e.key === "Escape" && e.target instanceof HTMLTextAreaElement && e.target.closest('[data-role="composer"]')) {
      e.target.blur();  // so that the single keys below work
      return;
    }
    if (e.altKey || e.ctrlKey || e.metaKey || typingIn(e.target)) return;
    if (document.querySelector("dialog[open]:not(#shortcuts-help)")) return;
    const action = KEYS[e.key];
    if (action) { e.preventDefault(); action(); }
  });
  document.getElementById("open-shortcuts").addEventListener("click", () => help.showModal());
})();
