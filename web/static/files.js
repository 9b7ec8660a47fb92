/* File transfer in the browser: the "Send a file" button and drag and drop on both pages,
   progress with speed (own uploads from the browser, the other side's from file.progress
   frames), cancel, and file cards in the chat with name, size, type, SHA-256 and a
   download link. Uploads speak tus 1.0 (docs/transfer.md) through tus.js. */
"use strict";
window.SBFiles = (function () {
  const P = window.SBProtocol;
  const TusUpload = window.SBTus.TusUpload;
  const fill = (t, v) => SB.fill(t || "", v);

  let cached = null;
  function strings() {
    if (cached) return cached;
    const el = document.querySelector("[data-files-strings]");
    cached = el ? JSON.parse(el.dataset.filesStrings) : {};
    return cached;
  }

  /* Sizes as the broker's messages write them: decimal units. */
  function formatBytes(n) {
    if (n < 1000) return n + " B";
    const units = ["kB", "MB", "GB", "TB"];
    let value = n, unit = "B";
    for (const u of units) {
      value /= 1000; unit = u;
      if (value < 1000) break;
    }
    return (value < 10 ? value.toFixed(1) : Math.round(value)) + " " + unit;
  }

  /* Speed over the last few seconds, for "12 MB of 50 MB · 3.4 MB/s". */
  class Meter {
    constructor() { this.samples = []; }
    add(bytes) {
      const now = performance.now();
      this.samples.push([now, bytes]);
      while (this.samples.length > 2 && now - this.samples[0][0] > 3000) this.samples.shift();
    }
    perSecond() {
      if (this.samples.length < 2) return 0;
      const [t0, b0] = this.samples[0];
      const [t1, b1] = this.samples[this.samples.length - 1];
      return t1 > t0 ? (b1 - b0) * 1000 / (t1 - t0) : 0;
    }
  }

  function progressText(done, total, speed) {
    return fill(strings().progress, { done: formatBytes(done), total: formatBytes(total),
                                      speed: formatBytes(Math.round(speed)) + "/s" });
  }

  /* The chat line of a file.* event, for chat-core's renderEvent. */
  SB.lines.file = function (event, mySender) {
    const s = strings();
    const file = event.name || "";
    if (event.type === P.event.FILE_OFFERED) return { node: card(event, mySender), className: "file-line" };
    if (event.type === P.event.FILE_DAMAGED) return { nodes: SB.fillNodes(s.damaged, { file }), className: "error" };
    if (event.type === P.event.FILE_REMOVED) return { nodes: SB.fillNodes(s.removed, { file }) };
    if (event.type === P.event.FILE_CANCELLED) {
      const text = s[event.reason] || s.cancelled;
      return { nodes: SB.fillNodes(text, { file }) };
    }
    return null;
  };

  function card(event, mySender) {
    const s = strings();
    const box = document.createElement("div");
    box.className = "file-card";
    box.dataset.uploadId = event.upload_id;
    const mine = event.author && event.author.sender === mySender;
    // Who sent it comes first: a person decides by the sender whether to download.
    const who = document.createElement("div");
    who.className = "file-who";
    if (mine) who.textContent = s.sent_by_you;
    else who.append(...SB.fillNodes(s.sent_by, { name: event.author ? event.author.name : "" }));
    const name = SB.isolated("div", event.name, "file-name");
    const meta = document.createElement("div");
    meta.className = "file-meta";
    meta.textContent = formatBytes(event.size) + " · " + (event.content_type || "");
    // The checksum is for those who compare it: folded away behind "Details".
    const details = document.createElement("details");
    details.className = "file-details";
    const summary = document.createElement("summary");
    summary.textContent = s.details;
    const hash = document.createElement("div");
    hash.className = "file-hash";
    hash.textContent = "SHA-256 " + event.sha256;
    details.append(summary, hash);
    const link = document.createElement("a");
    link.className = "button file-download";
    link.href = event.url;
    link.download = event.name;
    link.textContent = s.download;
    link.setAttribute("aria-label", fill(mine ? s.download_own : s.download_from,
      { file: event.name, name: event.author ? event.author.name : "" }));
    const gone = document.createElement("span");
    gone.className = "file-gone";
    gone.textContent = s.removed_note;
    gone.hidden = true;
    box.append(who, name, meta, link, gone, details);
    return box;
  }

  class Transfers {
    constructor(socket, opts) {
      this.socket = socket;
      this.opts = opts;  // sessionId, headers, mount: {root, list, composer}
      this.endpoint = "/api/v1/sessions/" + opts.sessionId + "/files/";
      this.rows = new Map();  // "in:<upload id>" or "out:<local id>" -> {li, bar, note, ...}
      this.outgoing = new Map();  // upload id -> the row of our own upload
      this.build();
      this.hook();
    }

    build() {
      const s = strings();
      const m = this.opts.mount;
      this.input = document.createElement("input");
      this.input.type = "file";
      this.input.multiple = true;
      this.input.hidden = true;
      this.input.dataset.role = "file-input";
      this.button = document.createElement("button");
      this.button.type = "button";
      this.button.className = "attach-file";
      this.button.dataset.action = "attach-file";
      this.button.title = s.attach;
      this.button.setAttribute("aria-label", s.attach);
      const label = document.createElement("span");
      label.className = "attach-label";  // hidden on phones: the paperclip says it
      label.textContent = s.attach;
      this.button.append(label);
      this.button.addEventListener("click", () => this.input.click());
      this.input.addEventListener("change", () => {
        for (const file of this.input.files) this.send(file);
        this.input.value = "";
      });
      const submit = m.composer.querySelector('button[type="submit"]');
      m.composer.insertBefore(this.button, submit);
      m.composer.append(this.input);
      this.tray = document.createElement("ul");
      this.tray.className = "transfers";
      this.tray.dataset.role = "transfers";
      this.tray.hidden = true;
      m.composer.before(this.tray);
      this.overlay = document.createElement("div");
      this.overlay.className = "drop-overlay";
      this.overlay.textContent = s.drop;
      this.overlay.hidden = true;
      m.root.append(this.overlay);
      let depth = 0;  // dragenter/dragleave fire for every child crossed
      const carriesFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
      m.root.addEventListener("dragenter", (e) => {
        if (!carriesFiles(e) || this.closed) return;
        e.preventDefault();
        depth += 1;
        this.overlay.hidden = false;
      });
      m.root.addEventListener("dragover", (e) => {
        if (!carriesFiles(e) || this.closed) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
      });
      m.root.addEventListener("dragleave", () => {
        depth = Math.max(0, depth - 1);
        if (!depth) this.overlay.hidden = true;
      });
      m.root.addEventListener("drop", (e) => {
        if (!carriesFiles(e)) return;
        e.preventDefault();
        depth = 0;
        this.overlay.hidden = true;
        if (this.closed) return;
        for (const file of e.dataTransfer.files) this.send(file);
      });
    }

    /* Chain onto the page's socket handlers, as screen.js does. */
    hook() {
      const h = this.socket.handlers;
      const chain = (name, mine, first) => {
        const theirs = h[name];
        h[name] = (...args) => {
          if (first && mine(...args)) return;
          if (theirs) theirs(...args);
          if (!first) mine(...args);
        };
      };
      chain("onEvent", (e) => this.event(e), false);
      chain("onFrame", (f) => this.frame(f), true);
    }

    event(e) {
      if (e.type === P.event.ENDED) { this.close(); return; }
      if (!e.type.startsWith("file.")) return;
      const incoming = this.rows.get("in:" + e.upload_id);
      if (incoming) this.drop("in:" + e.upload_id);
      if (e.type === P.event.FILE_REMOVED) {
        for (const box of this.opts.mount.list.querySelectorAll('.file-card[data-upload-id="' + CSS.escape(e.upload_id) + '"]')) {
          box.classList.add("removed");
          box.querySelector(".file-download").remove();
          box.querySelector(".file-gone").hidden = false;
        }
      }
    }

    frame(f) {
      if (f.type !== P.frame.FILE_PROGRESS) return false;
      const me = this.socket.me && this.socket.me.sender;
      if (f.sender && f.sender.sender === me) {
        // Our own: what the broker has stored is the truth (the browser counts what it
        // handed to the network, and buffers on the way can hold megabytes).
        const own = this.outgoing.get(f.upload_id);
        if (own) {
          own.confirmed = true;
          this.update(own, f.received, f.size, f.bytes_per_second);
        }
        return true;
      }
      const key = "in:" + f.upload_id;
      let entry = this.rows.get(key);
      if (!entry) {
        entry = this.row(key, fill(strings().receiving, { name: f.sender ? f.sender.name : "", file: f.name }), false);
      }
      entry.meter.add(f.received);
      this.update(entry, f.received, f.size, f.bytes_per_second || entry.meter.perSecond());
      clearTimeout(entry.stale);
      entry.stale = setTimeout(() => { entry.note.textContent = strings().stalled; }, 10000);
      return true;
    }

    row(key, title, cancellable) {
      const s = strings();
      const li = document.createElement("li");
      li.className = "transfer";
      li.dataset.key = key;
      const name = document.createElement("span");
      name.className = "transfer-name";
      name.textContent = title;
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = 0;
      const note = document.createElement("span");
      note.className = "transfer-note";
      const action = document.createElement("button");
      action.type = "button";
      action.className = "transfer-action";
      action.textContent = s.cancel;
      action.hidden = !cancellable;
      li.append(name, bar, note, action);
      this.tray.append(li);
      this.tray.hidden = false;
      const entry = { li, bar, note, action, meter: new Meter(), stale: null };
      this.rows.set(key, entry);
      return entry;
    }

    update(entry, done, total, speed) {
      entry.bar.max = Math.max(1, total);
      entry.bar.value = done;
      entry.note.textContent = progressText(done, total, speed);
    }

    drop(key) {
      const entry = this.rows.get(key);
      if (!entry) return;
      if (entry.uploadId) this.outgoing.delete(entry.uploadId);
      clearTimeout(entry.stale);
      clearInterval(entry.waitTimer);
      entry.li.remove();
      this.rows.delete(key);
      this.tray.hidden = this.rows.size === 0;
    }

    send(file) {
      const s = strings();
      const key = "out:" + SB.newId();
      const entry = this.row(key, fill(s.sending, { file: file.name }), true);
      entry.li.classList.add("outgoing");
      this.update(entry, 0, file.size, 0);
      const upload = new TusUpload(file, {
        endpoint: this.endpoint,
        headers: this.opts.headers,
        onCreated: (id) => {
          clearInterval(entry.waitTimer);
          entry.li.classList.remove("waiting");
          entry.note.textContent = "";
          entry.uploadId = id;
          this.outgoing.set(id, entry);
        },
        onProgress: (sent) => {
          entry.meter.add(sent);
          if (!entry.confirmed) this.update(entry, sent, file.size, entry.meter.perSecond());
        },
        onRetry: () => { entry.note.textContent = s.resuming; },
        onWait: (seconds) => {
          entry.li.classList.add("waiting");
          const until = Date.now() + seconds * 1000;
          const tick = () => {
            entry.note.textContent = fill(s.waiting, { seconds: Math.max(0, Math.ceil((until - Date.now()) / 1000)) });
          };
          clearInterval(entry.waitTimer);
          tick();
          entry.waitTimer = setInterval(tick, 500);
        },
        onDone: () => this.drop(key),  // the file.offered event shows it in the chat
        onFail: (error) => {
          entry.li.classList.add("failed");
          entry.note.textContent = fill(s.failed, { file: file.name,
                                                    reason: s["error_" + error.code] || error.message });
          entry.action.textContent = s.dismiss;
          entry.action.onclick = () => this.drop(key);
        },
      });
      entry.action.onclick = () => { upload.cancel(); this.drop(key); };
      upload.start();
    }

    close() {
      this.closed = true;
      this.button.disabled = true;
    }
  }

  function attach(socket, opts) { return new Transfers(socket, opts); }

  return { attach, formatBytes, TusUpload };
})();
