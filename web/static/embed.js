/* The chat page inside a website's chat button (portal_chat.html, docs/portal.md). A
   framed page gets no cookies, so the button puts the participant token in the URL
   fragment (#token=…&host=<the site's origin>): fragments never reach the server or its
   logs. This script runs before the chat's own: it hands the token to the page as the
   cookie-based chat page has it, fetches file downloads with it (a plain link would need
   the cookie), and tells the button what it must act on, by postMessage to that origin
   only (a page of any other origin gets nothing): the technician's goto: address, and
   that the technician wrote, the end of the session. */
"use strict";
window.SBEmbed = (function () {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token") || "";
  const host = params.get("host");
  for (const el of document.querySelectorAll("[data-token]")) el.dataset.token = token;
  // Nothing else on the page needs to see it again; the script keeps it.
  history.replaceState(null, "", location.pathname + location.search);

  function tell(message) {
    if (host && window.parent !== window) window.parent.postMessage(message, host);
  }

  // Downloads with the token as a bearer credential, saved from memory.
  document.addEventListener("click", async (e) => {
    const link = e.target.closest && e.target.closest("a.file-download");
    if (!link || !token) return;
    e.preventDefault();
    const response = await fetch(link.href, { headers: { Authorization: "Bearer " + token } });
    if (!response.ok) return;
    const url = URL.createObjectURL(await response.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = link.download || "";
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }, true);

  /* The host page goes to `url` (the technician's goto:); false when there is no host
     page to move (the chat is not framed by a chat button). */
  function navigate(url) {
    if (!host || window.parent === window) return false;
    tell({ widget: "goto", url: url });
    return true;
  }

  function attach(socket) {
    const P = window.SBProtocol;
    const h = socket.handlers;
    const status = h.onStatus;
    const event = h.onEvent;
    let live = false;  // past the first catch-up: what comes now is news
    h.onStatus = (state, info) => {
      if (status) status(state, info);
      if (state === "connected") live = true;
      // Over, or no longer this browser's: the button forgets the chat.
      if (state === "ended" || state === "closed") tell({ widget: "ended" });
    };
    h.onEvent = (e) => {
      if (event) event(e);
      // A closed panel shows that the technician wrote.
      if (live && e.type === P.event.MESSAGE && e.author && e.author.role === "technician") tell({ widget: "unread" });
    };
  }

  return { navigate, attach };
})();
