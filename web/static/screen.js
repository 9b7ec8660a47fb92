/* Screen sharing in the browser: a page's shares and what it does about them. Speaks the
   share.* frames of docs/protocol.md over the page's SessionSocket and keeps one Link (the
   peer connection, screen-peer.js) for the live share this page takes part in; what people
   see is screen-view.js. The broker only relays.

   A share's state is rebuilt from the session's share.* events (so a reload or a
   reconnect shows the same thing); signaling happens only once the socket is synced. */
"use strict";
window.SBScreen = (function () {
  const P = window.SBProtocol;  // the share's states and frames: broker/protocol/rtc.py
  const Link = SBScreenPeer.Link;
  const VIEW = P.share.direction.END_USER_TO_TECHNICIAN;
  const SHOW = P.share.direction.TECHNICIAN_TO_END_USER;
  const LIVE = new Set(P.share.live);
  const SIGNALING = new Set(P.share.signaling);
  const fill = (t, v) => SB.fill(t || "", v);

  function newShareId() { return "s-" + SB.newId().replace(/[^A-Za-z0-9_-]/g, "").slice(0, 40); }

  /* Everything about screen sharing on one page, for one session socket. */
  class Controller {
    constructor(socket, opts) {
      this.socket = socket;
      this.role = opts.role;            // "technician" or "end_user"
      this.s = SBScreenView.strings();
      this.shares = new Map();          // id -> {id, direction, sharer, viewer, state, pausedBy, names}
      this.link = null;                 // the live share this page takes part in
      this.synced = false;
      this.everSynced = false;
      this.capturing = false;
      this.ended = false;
      this.requestSource = P.share.source.BROWSER;  // AGENT while the end user's agent is there
      this.extensions = [];
      this.view = new SBScreenView.View(this, opts.mount);
      this.viewer = this.view.viewer;   // the <video> and its toolbar (control.js uses them)
      this.actions = this.view.actions;  // the technician's buttons, if this page has them
      this.hookSocket();
      for (const make of extensionFactories) this.extensions.push(make(this));
      setInterval(() => this.tick(), 1000);
    }

    get me() { return this.socket.me ? this.socket.me.sender : null; }

    /* Call `name` on every extension that has it (control.js is one). */
    hook(name, ...args) {
      for (const ext of this.extensions || []) if (ext[name]) ext[name](...args);
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
      if (e.type === P.event.JOINED) { this.joined = true; this.render(); }
      if (e.type === P.event.ENDED) { this.ended = true; this.drop(); this.render(); return; }
      this.hook("onEvent", e);
      if (!e.type.startsWith("share.") && !e.type.startsWith("control.")) return;
      let share = this.shares.get(e.share_id);
      if (!share) {
        share = { id: e.share_id, state: P.share.first[e.direction] || P.share.state.REQUESTED,
                  pausedBy: null, names: {} };
        this.shares.set(share.id, share);
      }
      Object.assign(share, { direction: e.direction, sharer: e.sharer, viewer: e.viewer, placeholder: false,
                             source: e.source || P.share.source.BROWSER, control: e.control || P.control.state.NONE });
      if (e.sharer_name) share.names[e.sharer] = e.sharer_name;
      if (e.viewer_name) share.names[e.viewer] = e.viewer_name;
      if (e.author) share.names[e.author.sender] = e.author.name;
      const next = P.share.events[e.type];  // the state this event leaves the share in
      if (next) share.state = next;
      if (next) share.pausedBy = next === P.share.state.PAUSED && e.author ? e.author.sender : null;
      if (e.type === P.event.SHARE_REFUSED && share.viewer === this.me) this.flash(fill(this.s.refused_note, { name: e.author.name }));
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
        if (this.link && this.link.readied) this.link.send(P.frame.RTC_READY, { fresh: false });
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
        if (LIVE.has(share.state)) share.state = P.share.state.STOPPED;
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
          if (why === P.event.SHARE_PAUSED) this.link.pauseMedia(true);
          if (why === P.event.SHARE_RESUMED) this.link.pauseMedia(false);
          return;
        }
        if (this.pendingId === share.id || this.capturing) return;  // the capture is on its way
        if (firstSync) {
          // This page was reloaded (or opened anew): the capture of the old one is gone.
          this.socket.sendFrame({ type: P.frame.SHARE_STOP, id: share.id, reason: "reloaded" });
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
      if (type === P.frame.SHARE_STOP && share.state === P.share.state.REQUESTED) frame.reason = "cancelled";
      this.socket.sendFrame(frame);
    }

    request() {
      const share = this.live();
      if (share) this.socket.sendFrame({ type: P.frame.SHARE_STOP, id: share.id, reason: "switched" });
      this.socket.sendFrame({ type: P.frame.SHARE_REQUEST, id: newShareId(), direction: VIEW, source: this.requestSource });
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
      if (current) this.socket.sendFrame({ type: P.frame.SHARE_STOP, id: current.id, reason: "switched" });
      const id = newShareId();
      this.startSharing(id, stream, () => {
        this.socket.sendFrame({ type: P.frame.SHARE_REQUEST, id: id, direction: SHOW, source: P.share.source.BROWSER });
        this.socket.sendFrame({ type: P.frame.SHARE_START, id: id });
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
          this.socket.sendFrame({ type: P.frame.SHARE_START, id: share.id });
        });
      }, (e) => {
        this.capturing = false;
        this.pendingId = null;
        const reason = e && e.name === "NotAllowedError" ? "cancelled" : "capture_failed";
        this.socket.sendFrame({ type: P.frame.SHARE_STOP, id: share.id, reason: reason });
        this.render();
      });
    }

    answer(accept) {
      const share = this.live();
      if (!share) return;
      this.socket.sendFrame({ type: P.frame.SHARE_CONSENT, id: share.id, accept: accept });
    }

    /* Our captured screen becomes the share's media; `announce` sends the share frames
       that must reach the broker before this page says rtc.ready. */
    startSharing(id, stream, announce) {
      this.drop();
      let share = this.shares.get(id);
      if (!share) {
        // Our own share, until its first event arrives.
        share = { id: id, direction: SHOW, sharer: this.me, viewer: null, state: P.share.first[SHOW],
                  pausedBy: null, names: {}, placeholder: true };
        this.shares.set(id, share);
      }
      this.link = new Link(this, share);
      this.link.stream = stream;
      const track = stream.getVideoTracks()[0];
      // The browser's own "Stop sharing" button ends the track.
      track.addEventListener("ended", () => {
        if (this.link && this.link.id === id) {
          this.socket.sendFrame({ type: P.frame.SHARE_STOP, id: id, reason: "ended_by_user" });
        }
      });
      announce();
      this.link.ready();
      this.pendingId = null;
      this.render();
    }

    /* -- what people see (screen-view.js) ---------------------------------------------- */

    render() { this.view.render(); }
    flash(text) { this.view.flash(text); }
    nameOf(share, sender) { return this.view.nameOf(share, sender); }

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
