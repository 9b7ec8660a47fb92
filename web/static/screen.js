/* Screen sharing in the browser: the technician's "Request screen" / "Share my screen",
   the end user's consent prompt and sharing bar, the viewer (fit, actual size, full
   screen), and the WebRTC peer connection behind them. Speaks the share.* and rtc.*
   frames of docs/protocol.md over the page's SessionSocket; the broker only relays.

   A share's state is rebuilt from the session's share.* events (so a reload or a
   reconnect shows the same thing); signaling happens only once the socket is synced. */
"use strict";
window.SBScreen = (function () {
  const VIEW = "end_user_to_technician";
  const SHOW = "technician_to_end_user";
  const LIVE = new Set(["requested", "consented", "active", "paused"]);
  const SIGNALING = new Set(["consented", "active", "paused"]);
  const RESTART_AFTER_MS = 4000;  // "disconnected" this long: restart ICE
  const fill = (t, v) => SB.fill(t || "", v);

  let cached = null;
  function strings() {
    if (cached) return cached;
    const el = document.querySelector("[data-screen-strings]");
    cached = el ? JSON.parse(el.dataset.screenStrings) : {};
    return cached;
  }

  /* The system line of a share.* event, for chat-core's renderEvent. */
  SB.lines.share = function (event) {
    const s = strings();
    const name = event.author ? event.author.name : "";
    const key = event.type === "share.stopped" && s["share.stopped." + event.reason]
      ? "share.stopped." + event.reason : event.type;
    const text = s[key];
    return text ? { text: fill(text, { name: name }), className: "share-line" } : null;
  };

  function clone(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

  function newShareId() { return "s-" + SB.newId().replace(/[^A-Za-z0-9_-]/g, "").slice(0, 40); }

  /* The <video> and its toolbar: fit to window, actual size, full screen, stats. */
  class Viewer {
    constructor(el) {
      this.el = el;
      this.video = el.querySelector("video");
      this.stage = el.querySelector('[data-role="stage"]');
      this.stats = el.querySelector('[data-role="stats"]');
      this.firstFrameAt = null;
      for (const button of el.querySelectorAll("[data-size]")) {
        button.addEventListener("click", () => this.size(button.dataset.size));
      }
      el.querySelector('[data-action="fullscreen"]').addEventListener("click", () => {
        if (document.fullscreenElement) document.exitFullscreen();
        else if (this.stage.requestFullscreen) this.stage.requestFullscreen();
      });
      this.size("fit");
    }
    size(mode) {
      this.stage.dataset.size = mode;
      for (const button of this.el.querySelectorAll("[data-size]")) {
        button.setAttribute("aria-pressed", button.dataset.size === mode ? "true" : "false");
      }
    }
    show(stream) {
      this.video.srcObject = stream;
      this.video.muted = true;
      this.video.play().catch(() => {});
      const mark = () => {
        if (this.firstFrameAt === null) {
          this.firstFrameAt = Date.now();
          this.video.dataset.firstFrameAt = String(this.firstFrameAt);
        }
      };
      if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(mark);
      else this.video.addEventListener("loadeddata", mark, { once: true });
    }
    /* framesDecoded and the picture size from getStats, shown and kept for tests. */
    async measure(pc, s) {
      if (!pc) return;
      let report;
      try { report = await pc.getStats(); } catch (e) { return; }
      report.forEach((r) => {
        if (r.type !== "inbound-rtp" || r.kind !== "video") return;
        const frames = r.framesDecoded || 0;
        const fps = r.framesPerSecond ? Math.round(r.framesPerSecond) : 0;
        this.video.dataset.framesDecoded = String(frames);
        this.stats.textContent = r.frameWidth
          ? fill(s.stats, { size: r.frameWidth + "×" + r.frameHeight, fps: fps }) : "";
      });
    }
    clear() {
      this.video.srcObject = null;
      this.stats.textContent = "";
      delete this.video.dataset.framesDecoded;
      delete this.video.dataset.firstFrameAt;
      this.firstFrameAt = null;
      if (document.fullscreenElement === this.stage) document.exitFullscreen();
    }
  }

  /* One share as this page sees it, with its peer connection while it has one. */
  class Link {
    constructor(ctl, share) {
      this.ctl = ctl;
      this.share = share;
      this.pc = null;
      this.config = null;
      this.stream = null;        // our captured screen (sharing side)
      this.pending = [];         // remote candidates before the remote description
      this.restartTimer = null;
      this.readied = false;
    }
    get id() { return this.share.id; }
    get sharing() { return this.share.sharer === this.ctl.me; }
    send(type, fields) { return this.ctl.socket.sendFrame(Object.assign({ type: type, id: this.id }, fields || {})); }

    ready() {
      const fresh = !this.readied;
      if (this.send("rtc.ready", { fresh: fresh })) this.readied = true;
    }

    async frame(msg) {
      if (msg.type === "rtc.config") {
        this.config = { iceServers: msg.ice_servers, iceTransportPolicy: msg.ice_transport_policy };
        if (!this.sharing && !this.pc) this.newPc();
      } else if (msg.type === "rtc.peer_ready" && this.sharing) {
        await this.offer(false);
      } else if (msg.type === "rtc.restart" && this.sharing) {
        await this.offer(true);
      } else if (msg.type === "rtc.offer" && !this.sharing) {
        // An offer that is no ICE restart comes from a new connection of the sharing side
        // (a restarted agent, say): answer it with a new one too.
        if (!this.pc || (!msg.restart && this.pc.remoteDescription)) {
          const waiting = this.pending;
          this.newPc();
          this.pending = waiting;
        }
        await this.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
        await this.flushCandidates();
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.send("rtc.answer", { sdp: this.pc.localDescription.sdp });
      } else if (msg.type === "rtc.answer" && this.sharing && this.pc) {
        if (this.pc.signalingState === "have-local-offer") {
          await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
          await this.flushCandidates();
        }
      } else if (msg.type === "rtc.candidate") {
        this.pending.push(msg);
        if (this.pc && this.pc.remoteDescription) await this.flushCandidates();
      }
    }

    async flushCandidates() {
      const waiting = this.pending;
      this.pending = [];
      for (const c of waiting) {
        try {
          await this.pc.addIceCandidate(c.candidate
            ? { candidate: c.candidate, sdpMid: c.sdp_mid, sdpMLineIndex: c.sdp_mline_index }
            : null);
        } catch (e) { /* a candidate of an earlier connection: not for this one */ }
      }
    }

    newPc() {
      this.closePc();
      const pc = new RTCPeerConnection(this.config || { iceServers: [] });
      this.pc = pc;
      pc.onicecandidate = (e) => {
        if (this.pc !== pc) return;
        const c = e.candidate;
        this.send("rtc.candidate", c
          ? { candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex }
          : { candidate: "", sdp_mid: null, sdp_mline_index: null });
      };
      pc.oniceconnectionstatechange = () => {
        if (this.pc !== pc) return;
        const state = pc.iceConnectionState;
        clearTimeout(this.restartTimer);
        if (state === "failed") this.restartIce();
        else if (state === "disconnected") this.restartTimer = setTimeout(() => this.restartIce(), RESTART_AFTER_MS);
        this.ctl.render();
      };
      if (!this.sharing) {
        pc.ontrack = (e) => {
          const stream = e.streams[0] || new MediaStream([e.track]);
          this.ctl.viewer.show(stream);
        };
        // The agent's control channel (remote control, control.js).
        pc.ondatachannel = (e) => { if (this.pc === pc) this.ctl.hook("onChannel", this, e.channel); };
      }
      return pc;
    }

    restartIce() {
      if (!this.pc || !SIGNALING.has(this.share.state)) return;
      if (this.sharing) this.offer(true);
      else this.send("rtc.restart");
    }

    async offer(restart) {
      if (!this.stream) return;
      let pc = this.pc;
      if (!restart || !pc) {
        pc = this.newPc();
        const track = this.stream.getVideoTracks()[0];
        const sender = pc.addTrack(track, this.stream);
        if (this.share.state === "paused") await sender.replaceTrack(null);
      } else {
        pc.restartIce();
      }
      const description = await pc.createOffer(restart ? { iceRestart: true } : {});
      if (this.pc !== pc) return;
      await pc.setLocalDescription(description);
      this.send("rtc.offer", { sdp: pc.localDescription.sdp, restart: Boolean(restart) });
    }

    /* Pausing stops the frames at the source: nothing is sent while paused. */
    async pauseMedia(paused) {
      if (!this.sharing || !this.pc || !this.stream) return;
      const track = paused ? null : this.stream.getVideoTracks()[0];
      for (const sender of this.pc.getSenders()) await sender.replaceTrack(track);
    }

    closePc() {
      clearTimeout(this.restartTimer);
      if (this.pc) { this.pc.close(); this.pc = null; }
      this.pending = [];
    }

    close() {
      this.closePc();
      this.ctl.hook("onDrop", this);
      if (this.stream) { for (const t of this.stream.getTracks()) t.stop(); this.stream = null; }
      if (!this.sharing) this.ctl.viewer.clear();
    }
  }

  /* Everything about screen sharing on one page, for one session socket. */
  class Controller {
    constructor(socket, opts) {
      this.socket = socket;
      this.role = opts.role;            // "technician" or "end_user"
      this.mount = opts.mount;
      this.s = strings();
      this.shares = new Map();          // id -> {id, direction, sharer, viewer, state, pausedBy, names}
      this.link = null;                 // the live share this page takes part in
      this.synced = false;
      this.everSynced = false;
      this.capturing = false;
      this.ended = false;
      this.requestSource = "browser";   // "agent" while the end user's agent is there
      this.extensions = [];
      this.build();
      this.hookSocket();
      for (const make of extensionFactories) this.extensions.push(make(this));
      setInterval(() => this.tick(), 1000);
    }

    get me() { return this.socket.me ? this.socket.me.sender : null; }

    /* Call `name` on every extension that has it (control.js is one). */
    hook(name, ...args) {
      for (const ext of this.extensions || []) if (ext[name]) ext[name](...args);
    }

    build() {
      const m = this.mount;
      this.viewer = new Viewer(clone("screen-viewer"));
      this.viewer.el.hidden = true;
      m.viewerBefore.before(this.viewer.el);
      const bar = this.viewer.el;
      bar.querySelector('[data-action="pause"]').addEventListener("click", () => this.act("share.pause"));
      bar.querySelector('[data-action="resume"]').addEventListener("click", () => this.act("share.resume"));
      bar.querySelector('[data-action="stop"]').addEventListener("click", () => this.act("share.stop"));
      if (this.role === "technician") {
        this.actions = clone("screen-actions");
        m.actions.prepend(this.actions);
        this.actions.querySelector('[data-action="request-screen"]').addEventListener("click", () => this.request());
        this.actions.querySelector('[data-action="share-screen"]').addEventListener("click", () => this.shareMine());
      } else {
        this.consent = clone("screen-consent");
        this.consent.hidden = true;
        m.overlay.append(this.consent);
        this.consent.querySelector('[data-action="accept"]').addEventListener("click", () => this.accept());
        this.consent.querySelector('[data-action="refuse"]').addEventListener("click", () => this.answer(false));
      }
      this.sharingBar = clone("screen-sharing");
      this.sharingBar.hidden = true;
      m.viewerBefore.before(this.sharingBar);
      this.sharingBar.querySelector('[data-action="pause"]').addEventListener("click", () => this.act("share.pause"));
      this.sharingBar.querySelector('[data-action="resume"]').addEventListener("click", () => this.act("share.resume"));
      this.sharingBar.querySelector('[data-action="stop"]').addEventListener("click", () => this.act("share.stop"));
      this.note = clone("screen-note");
      this.note.hidden = true;
      m.viewerBefore.before(this.note);
    }

    /* Chain onto the page's socket handlers: pages keep their own, we add ours. */
    hookSocket() {
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
      chain("onStatus", (state) => this.status(state), false);
      chain("onError", (err) => this.error(err), true);
      chain("onFrame", (f) => this.frame(f), true);
    }

    /* -- from the socket ----------------------------------------------------------- */

    event(e) {
      if (e.type === "joined") { this.joined = true; this.render(); }
      if (e.type === "ended") { this.ended = true; this.drop(); this.render(); return; }
      this.hook("onEvent", e);
      if (!e.type.startsWith("share.") && !e.type.startsWith("control.")) return;
      let share = this.shares.get(e.share_id);
      if (!share) {
        share = { id: e.share_id, state: e.direction === SHOW ? "consented" : "requested",
                  pausedBy: null, names: {} };
        this.shares.set(share.id, share);
      }
      Object.assign(share, { direction: e.direction, sharer: e.sharer, viewer: e.viewer, placeholder: false,
                             source: e.source || "browser", control: e.control || "none" });
      if (e.sharer_name) share.names[e.sharer] = e.sharer_name;
      if (e.viewer_name) share.names[e.viewer] = e.viewer_name;
      if (e.author) share.names[e.author.sender] = e.author.name;
      const next = { "share.requested": "requested", "share.consented": "consented",
                     "share.refused": "refused", "share.started": "active",
                     "share.paused": "paused", "share.resumed": "active",
                     "share.stopped": "stopped" }[e.type];
      if (next) share.state = next;
      if (next) share.pausedBy = next === "paused" && e.author ? e.author.sender : null;
      if (e.type === "share.refused" && share.viewer === this.me) this.flash(fill(this.s.refused_note, { name: e.author.name }));
      if (this.synced) this.reconcile(share, e.type);
      this.render();
    }

    status(state) {
      const was = this.synced;
      this.synced = state === "connected";
      if (this.synced && !was) {
        const first = !this.everSynced;
        this.everSynced = true;
        // Back on a new socket: the same peer connection takes what waited for it.
        if (this.link && this.link.readied) this.link.send("rtc.ready", { fresh: false });
        else if (this.link) this.link.ready();
        for (const share of this.shares.values()) this.reconcile(share, null, first);
      }
      if (state === "ended") { this.ended = true; this.drop(); }
      this.render();
    }

    frame(f) {
      if (!f.type || !f.type.startsWith("rtc.")) return false;
      if (this.link && this.link.id === f.id) {
        this.link.frame(f).catch((e) => this.flash(String(e && e.message || e)));
      }
      return true;
    }

    error(err) {
      const share = err.ref ? this.shares.get(err.ref) : null;
      if (!share) return false;
      if (share.placeholder) {
        // Our own share.request was refused (busy, waiting, ended): give the screen back.
        this.shares.delete(share.id);
        if (this.link && this.link.id === share.id) this.drop();
        this.flash(err.message);
      } else if (err.code === "share_unknown" || err.code === "share_ended") {
        if (LIVE.has(share.state)) share.state = "stopped";
        if (this.link && this.link.id === share.id) this.drop();
      } else {
        this.flash(err.message);
      }
      this.render();
      return true;
    }

    /* What this page must do for a share now that it is in `share.state`. */
    reconcile(share, why, firstSync) {
      const live = LIVE.has(share.state);
      if (!live) {
        if (this.link && this.link.id === share.id) this.drop();
        return;
      }
      const peer = share.sharer === this.me || share.viewer === this.me;
      if (!peer || !SIGNALING.has(share.state)) return;
      if (share.sharer === this.me) {
        if (this.link && this.link.id === share.id && this.link.stream) {
          if (why === "share.paused") this.link.pauseMedia(true);
          if (why === "share.resumed") this.link.pauseMedia(false);
          return;
        }
        if (this.pendingId === share.id || this.capturing) return;  // the capture is on its way
        if (firstSync) {
          // This page was reloaded (or opened anew): the capture of the old one is gone.
          this.socket.sendFrame({ type: "share.stop", id: share.id, reason: "reloaded" });
        }
        return;
      }
      // The viewing side: a fresh peer connection as soon as the share is consented.
      if (!this.link || this.link.id !== share.id) {
        this.drop();
        this.link = new Link(this, share);
      }
      if (!this.link.readied) this.link.ready();
    }

    drop() {
      if (this.link) { this.link.close(); this.link = null; }
    }

    /* -- what people click ----------------------------------------------------------- */

    live() {
      for (const share of this.shares.values()) if (LIVE.has(share.state)) return share;
      return null;
    }

    act(type) {
      const share = this.live();
      if (!share) return;
      const frame = { type: type, id: share.id };
      if (type === "share.stop" && share.state === "requested") frame.reason = "cancelled";
      this.socket.sendFrame(frame);
    }

    request() {
      const share = this.live();
      if (share) this.socket.sendFrame({ type: "share.stop", id: share.id, reason: "switched" });
      this.socket.sendFrame({ type: "share.request", id: newShareId(), direction: VIEW, source: this.requestSource });
    }

    capture() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
        return Promise.reject(new Error(this.s.unsupported));
      }
      return navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 15, max: 30 } }, audio: false,
      });
    }

    /* The technician shows their own screen: capture first (needs the click), then share. */
    async shareMine() {
      this.capturing = true;
      this.render();
      let stream;
      try { stream = await this.capture(); } catch (e) {
        this.capturing = false;
        this.flash(this.s.capture_failed);
        this.render();
        return;
      }
      const current = this.live();
      if (current) this.socket.sendFrame({ type: "share.stop", id: current.id, reason: "switched" });
      const id = newShareId();
      this.startSharing(id, stream, () => {
        this.socket.sendFrame({ type: "share.request", id: id, direction: SHOW, source: "browser" });
        this.socket.sendFrame({ type: "share.start", id: id });
      });
      this.capturing = false;
    }

    /* The end user accepts: getDisplayMedia must run inside the click. */
    accept() {
      const share = this.live();
      if (!share) return;
      this.answer(true);
      this.capturing = true;
      this.pendingId = share.id;
      this.render();
      this.capture().then((stream) => {
        this.capturing = false;
        if (!LIVE.has(share.state)) { for (const t of stream.getTracks()) t.stop(); return; }
        this.startSharing(share.id, stream, () => {
          this.socket.sendFrame({ type: "share.start", id: share.id });
        });
      }, (e) => {
        this.capturing = false;
        this.pendingId = null;
        const reason = e && e.name === "NotAllowedError" ? "cancelled" : "capture_failed";
        this.socket.sendFrame({ type: "share.stop", id: share.id, reason: reason });
        this.render();
      });
    }

    answer(accept) {
      const share = this.live();
      if (!share) return;
      this.socket.sendFrame({ type: "share.consent", id: share.id, accept: accept });
    }

    /* Our captured screen becomes the share's media; `announce` sends the share frames
       that must reach the broker before this page says rtc.ready. */
    startSharing(id, stream, announce) {
      this.drop();
      let share = this.shares.get(id);
      if (!share) {
        // Our own share, until its first event arrives.
        share = { id: id, direction: SHOW, sharer: this.me, viewer: null, state: "consented",
                  pausedBy: null, names: {}, placeholder: true };
        this.shares.set(id, share);
      }
      this.link = new Link(this, share);
      this.link.stream = stream;
      const track = stream.getVideoTracks()[0];
      // The browser's own "Stop sharing" button ends the track.
      track.addEventListener("ended", () => {
        if (this.link && this.link.id === id) {
          this.socket.sendFrame({ type: "share.stop", id: id, reason: "ended_by_user" });
        }
      });
      announce();
      this.link.ready();
      this.pendingId = null;
      this.render();
    }

    /* -- what people see -------------------------------------------------------------- */

    flash(text) {
      this.note.textContent = text;
      this.note.hidden = !text;
      clearTimeout(this.noteTimer);
      if (text) this.noteTimer = setTimeout(() => { this.note.hidden = true; }, 8000);
    }

    nameOf(share, sender) {
      if (share.names[sender]) return share.names[sender];
      return sender && sender[0] === "p" ? this.s.customer : this.s.technician;
    }

    render() {
      const share = this.live();
      const s = this.s;
      const mine = share && share.sharer === this.me;
      const viewing = share && share.viewer === this.me;
      const state = share ? share.state : "none";
      // Technician's buttons.
      if (this.actions) {
        const canStart = this.synced && !this.ended && this.joined;
        const requestBtn = this.actions.querySelector('[data-action="request-screen"]');
        const shareBtn = this.actions.querySelector('[data-action="share-screen"]');
        requestBtn.hidden = this.ended || Boolean(share && share.direction === VIEW);
        shareBtn.hidden = this.ended || Boolean(mine);
        requestBtn.disabled = !canStart || this.capturing;
        shareBtn.disabled = !canStart || this.capturing;
        this.actions.hidden = this.ended;
      }
      // End user's consent prompt.
      if (this.consent) {
        const ask = share && mine && state === "requested" && !this.ended;
        if (ask) {
          const who = this.nameOf(share, share.viewer);
          this.consent.querySelector('[data-role="title"]').textContent = fill(s.consent_title, { name: who });
          this.consent.querySelector('[data-role="body"]').textContent = fill(s.consent_body, { name: who });
        }
        const wasHidden = this.consent.hidden;
        this.consent.hidden = !ask;
        if (ask && wasHidden) this.consent.querySelector('[data-action="accept"]').focus();
      }
      // Our own screen going out.
      const sending = share && mine && (state === "active" || state === "paused" || (state === "consented" && (this.capturing || this.link)));
      this.sharingBar.hidden = !sending;
      if (sending) {
        const other = this.nameOf(share, share.viewer || "");
        const text = state === "paused" ? s.sharing_paused
          : state === "consented" ? s.sharing_starting : fill(s.sharing_with, { name: other });
        this.sharingBar.querySelector('[data-role="text"]').textContent = text;
        this.sharingBar.dataset.state = state;
        const mayResume = state === "paused";
        this.sharingBar.querySelector('[data-action="pause"]').hidden = state !== "active";
        this.sharingBar.querySelector('[data-action="resume"]').hidden = !mayResume;
      }
      // Someone else's screen coming in.
      const v = this.viewer;
      const showViewer = Boolean(share && viewing && state !== "requested");
      const waiting = Boolean(share && viewing && state === "requested");
      v.el.hidden = !(showViewer || waiting);
      v.el.dataset.state = state;
      if (showViewer || waiting) {
        const other = this.nameOf(share, share.sharer);
        let text;
        if (waiting) text = fill(s.waiting_consent, { name: other });
        else if (state === "consented") text = fill(s.waiting_screen, { name: other });
        else if (state === "paused") text = share.pausedBy === this.me ? s.paused_by_you : fill(s.paused_by, { name: other });
        else text = fill(s.viewing, { name: other });
        if (this.link && this.link.pc && ["disconnected", "failed"].includes(this.link.pc.iceConnectionState)) {
          text = s.media_reconnecting;
        }
        v.el.querySelector('[data-role="text"]').textContent = text;
        v.el.querySelector('[data-role="paused"]').hidden = state !== "paused";
        v.el.querySelector('[data-role="paused"]').textContent = state === "paused" ? text : "";
        v.el.querySelector('[data-action="pause"]').hidden = state !== "active";
        const mayResume = state === "paused" && share.pausedBy === this.me;
        v.el.querySelector('[data-action="resume"]').hidden = !mayResume;
        v.el.querySelector('[data-role="view-tools"]').hidden = waiting;
        v.stage.hidden = waiting;
        v.el.querySelector('[data-action="stop"]').textContent = waiting ? s.cancel_request : s.stop_viewing;
      }
      this.mount.root.classList.toggle("with-screen", showViewer);
      this.hook("onRender", share, { viewing: Boolean(viewing), showViewer: showViewer });
    }

    tick() {
      if (this.link && !this.link.sharing && this.link.pc) this.viewer.measure(this.link.pc, this.s);
    }
  }

  function attach(socket, opts) { return new Controller(socket, opts); }

  /* Pages' extensions (control.js): make(controller) -> object with any of onEvent(e),
     onRender(share, view), onChannel(link, channel), onDrop(link). */
  const extensionFactories = [];
  function extend(make) { extensionFactories.push(make); }

  return { attach, extend };
})();
