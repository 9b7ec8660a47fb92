/* Screen sharing in the browser, what people see: the system lines of share.* events,
   the viewer (the <video> and its toolbar: fit, actual size, full screen, stats), the
   technician's "Request screen" / "Share my screen", the end user's consent prompt and
   sharing bar, and a short note. A View shows its controller's shares (screen.js) and
   passes the clicks back to it. */
"use strict";
window.SBScreenView = (function () {
  const P = window.SBProtocol;  // the share's states and events: broker/protocol/rtc.py
  const VIEW = P.share.direction.END_USER_TO_TECHNICIAN;
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
    const key = event.type === P.event.SHARE_STOPPED && s["share.stopped." + event.reason]
      ? "share.stopped." + event.reason : event.type;
    const text = s[key];
    return text ? { nodes: SB.fillNodes(text, { name: name }), className: "share-line" } : null;
  };

  function clone(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

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

  /* The screen-sharing elements of one page, for one controller. */
  class View {
    constructor(ctl, mount) {
      this.ctl = ctl;
      this.mount = mount;
      this.s = strings();
      const m = mount;
      this.viewer = new Viewer(clone("screen-viewer"));
      this.viewer.el.hidden = true;
      m.viewerBefore.before(this.viewer.el);
      const bar = this.viewer.el;
      bar.querySelector('[data-action="pause"]').addEventListener("click", () => ctl.act(P.frame.SHARE_PAUSE));
      bar.querySelector('[data-action="resume"]').addEventListener("click", () => ctl.act(P.frame.SHARE_RESUME));
      bar.querySelector('[data-action="stop"]').addEventListener("click", () => ctl.act(P.frame.SHARE_STOP));
      if (ctl.role === "technician") {
        this.actions = clone("screen-actions");
        m.actions.prepend(this.actions);
        this.actions.querySelector('[data-action="request-screen"]').addEventListener("click", () => ctl.request());
        this.actions.querySelector('[data-action="share-screen"]').addEventListener("click", () => ctl.shareMine());
      } else {
        this.consent = clone("screen-consent");
        this.consent.hidden = true;
        m.overlay.append(this.consent);
        this.consent.querySelector('[data-action="accept"]').addEventListener("click", () => ctl.accept());
        this.consent.querySelector('[data-action="refuse"]').addEventListener("click", () => ctl.answer(false));
      }
      this.sharingBar = clone("screen-sharing");
      this.sharingBar.hidden = true;
      m.viewerBefore.before(this.sharingBar);
      this.sharingBar.querySelector('[data-action="pause"]').addEventListener("click", () => ctl.act(P.frame.SHARE_PAUSE));
      this.sharingBar.querySelector('[data-action="resume"]').addEventListener("click", () => ctl.act(P.frame.SHARE_RESUME));
      this.sharingBar.querySelector('[data-action="stop"]').addEventListener("click", () => ctl.act(P.frame.SHARE_STOP));
      this.note = clone("screen-note");
      this.note.hidden = true;
      m.viewerBefore.before(this.note);
    }

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
      const ctl = this.ctl;
      const share = ctl.live();
      const s = this.s;
      const mine = share && share.sharer === ctl.me;
      const viewing = share && share.viewer === ctl.me;
      const state = share ? share.state : "none";
      // Technician's buttons.
      if (this.actions) {
        const canStart = ctl.synced && !ctl.ended && ctl.joined;
        const requestBtn = this.actions.querySelector('[data-action="request-screen"]');
        const shareBtn = this.actions.querySelector('[data-action="share-screen"]');
        requestBtn.hidden = ctl.ended || Boolean(share && share.direction === VIEW);
        shareBtn.hidden = ctl.ended || Boolean(mine);
        requestBtn.disabled = !canStart || ctl.capturing;
        shareBtn.disabled = !canStart || ctl.capturing;
        this.actions.hidden = ctl.ended;
      }
      // End user's consent prompt.
      if (this.consent) {
        const ask = share && mine && state === P.share.state.REQUESTED && !ctl.ended;
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
      const sending = share && mine && (state === P.share.state.ACTIVE || state === P.share.state.PAUSED
        || (state === P.share.state.CONSENTED && (ctl.capturing || ctl.link)));
      this.sharingBar.hidden = !sending;
      if (sending) {
        const other = this.nameOf(share, share.viewer || "");
        const text = state === P.share.state.PAUSED ? s.sharing_paused
          : state === P.share.state.CONSENTED ? s.sharing_starting : fill(s.sharing_with, { name: other });
        this.sharingBar.querySelector('[data-role="text"]').textContent = text;
        this.sharingBar.dataset.state = state;
        const mayResume = state === P.share.state.PAUSED;
        this.sharingBar.querySelector('[data-action="pause"]').hidden = state !== P.share.state.ACTIVE;
        this.sharingBar.querySelector('[data-action="resume"]').hidden = !mayResume;
      }
      // Someone else's screen coming in.
      const v = this.viewer;
      const showViewer = Boolean(share && viewing && state !== P.share.state.REQUESTED);
      const waiting = Boolean(share && viewing && state === P.share.state.REQUESTED);
      v.el.hidden = !(showViewer || waiting);
      v.el.dataset.state = state;
      if (showViewer || waiting) {
        const other = this.nameOf(share, share.sharer);
        let text;
        if (waiting) text = fill(s.waiting_consent, { name: other });
        else if (state === P.share.state.CONSENTED) text = fill(s.waiting_screen, { name: other });
        else if (state === P.share.state.PAUSED) text = share.pausedBy === ctl.me ? s.paused_by_you : fill(s.paused_by, { name: other });
        else text = fill(s.viewing, { name: other });
        if (ctl.link && ctl.link.pc && ["disconnected", "failed"].includes(ctl.link.pc.iceConnectionState)) {
          text = s.media_reconnecting;
        }
        v.el.querySelector('[data-role="text"]').textContent = text;
        v.el.querySelector('[data-role="paused"]').hidden = state !== P.share.state.PAUSED;
        v.el.querySelector('[data-role="paused"]').textContent = state === P.share.state.PAUSED ? text : "";
        v.el.querySelector('[data-action="pause"]').hidden = state !== P.share.state.ACTIVE;
        const mayResume = state === P.share.state.PAUSED && share.pausedBy === ctl.me;
        v.el.querySelector('[data-action="resume"]').hidden = !mayResume;
        v.el.querySelector('[data-role="view-tools"]').hidden = waiting;
        v.stage.hidden = waiting;
        v.el.querySelector('[data-action="stop"]').textContent = waiting ? s.cancel_request : s.stop_viewing;
      }
      this.mount.root.classList.toggle("with-screen", showViewer);
      ctl.hook("onRender", share, { viewing: Boolean(viewing), showViewer: showViewer });
    }
  }

  return { strings, View };
})();
