/* The supervisor board (/supervise, docs/supervision.md): the live sessions of the
   supervisor's teams (admins: all) from the supervision socket, which sends the whole
   board first and then every change. Waits and durations tick in the page. */
"use strict";
(function () {
  const P = window.SBProtocol;
  const root = document.getElementById("supervise");
  const strings = JSON.parse(root.dataset.strings);
  const list = document.getElementById("supervise-list");
  const count = document.getElementById("supervise-count");
  const errorBox = document.getElementById("supervise-error");
  const entries = new Map();  // session_id -> entry, with `seen`: when it arrived here

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => values[name]);
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? h + ":" + two(m) + ":" + two(r) : m + ":" + two(r);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* Seconds since the broker computed the entry, so that the clocks run on. */
  function since(entry) { return (Date.now() - entry.seen) / 1000; }

  function timing(entry) {
    if (entry.duration_seconds === null) {
      return format(strings.waiting, { time: clock(entry.wait_seconds + since(entry)) });
    }
    return format(strings.running, { time: clock(entry.duration_seconds + since(entry)) }) +
      " · " + format(strings.waited, { time: clock(entry.wait_seconds) });
  }

  function row(entry) {
    const item = el("li", "history-item supervise-item");
    item.dataset.sessionId = entry.session_id;
    const name = entry.end_user_name;
    item.append(el("span", "history-who" + (name ? "" : " muted"), name || strings.nobody));
    const state = el("span", "history-state", strings["state_" + entry.state] || entry.state);
    state.dataset.state = entry.state;
    item.append(state);
    item.append(el("span", "history-tech", entry.technician.name || strings.customer_request));
    item.append(el("span", "history-tech supervise-time", timing(entry)));
    const end = el("span", "supervise-end");
    const share = el("span", "supervise-sharing", entry.sharing ? strings.sharing : "");
    share.hidden = !entry.sharing;
    const watch = el("a", "supervise-watch", strings.watch);
    watch.href = "/supervise/" + encodeURIComponent(entry.session_id);
    end.append(share, watch, ...SBSupervisorActs.buttons(entry.session_id, name));
    item.append(end);
    return item;
  }

  function render() {
    const live = [...entries.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    list.replaceChildren(...live.map(row));
    count.textContent = live.length ? format(strings.count, { count: live.length }) : strings.none;
  }

  function tick() {
    for (const item of list.children) {
      const entry = entries.get(item.dataset.sessionId);
      if (entry) item.querySelector(".supervise-time").textContent = timing(entry);
    }
  }

  function changed(entry) {
    if (entry.live) entries.set(entry.session_id, { ...entry, seen: Date.now() });
    else entries.delete(entry.session_id);
    render();
  }

  function listen(attempt) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/api/v1/supervision/ws");
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === P.frame.SUPERVISION_UPDATE) changed(msg.entry);
    };
    ws.onopen = () => { attempt = 0; errorBox.hidden = true; entries.clear(); };
    ws.onclose = (e) => {
      if (e.code === P.close.UNAUTHENTICATED || e.code === P.close.FORBIDDEN) {
        location.reload();  // logged out, or no longer a supervisor: the page says so
        return;
      }
      errorBox.textContent = strings.offline;
      errorBox.hidden = false;
      setTimeout(() => listen(attempt + 1), Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random()));
    };
  }

  render();
  listen(0);
  setInterval(tick, 1000);
})();
