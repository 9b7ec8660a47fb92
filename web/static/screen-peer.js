/* Screen sharing in the browser, the WebRTC side: one share's peer connection and its
   negotiation (offers from the sharing side, answers from the viewer, candidates both
   ways, ICE restarts). A Link speaks the rtc.* frames of docs/protocol.md through its
   controller (screen.js), which decides when a share has a Link. */
"use strict";
window.SBScreenPeer = (function () {
  const P = window.SBProtocol;  // the share's states and frames: broker/protocol/rtc.py
  const SIGNALING = new Set(P.share.signaling);
  const RESTART_AFTER_MS = 4000;  // "disconnected" this long: restart ICE

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
      if (this.send(P.frame.RTC_READY, { fresh: fresh })) this.readied = true;
    }

    async frame(msg) {
      if (msg.type === P.frame.RTC_CONFIG) {
        this.config = { iceServers: msg.ice_servers, iceTransportPolicy: msg.ice_transport_policy };
        if (!this.sharing && !this.pc) this.newPc();
      } else if (msg.type === P.frame.RTC_PEER_READY && this.sharing) {
        await this.offer(false);
      } else if (msg.type === P.frame.RTC_RESTART && this.sharing) {
        await this.offer(true);
      } else if (msg.type === P.frame.RTC_OFFER && !this.sharing) {
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
        this.send(P.frame.RTC_ANSWER, { sdp: this.pc.localDescription.sdp });
      } else if (msg.type === P.frame.RTC_ANSWER && this.sharing && this.pc) {
        if (this.pc.signalingState === "have-local-offer") {
          await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
          await this.flushCandidates();
        }
      } else if (msg.type === P.frame.RTC_CANDIDATE) {
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
        this.send(P.frame.RTC_CANDIDATE, c
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
      else this.send(P.frame.RTC_RESTART);
    }

    async offer(restart) {
      if (!this.stream) return;
      let pc = this.pc;
      if (!restart || !pc) {
        pc = this.newPc();
        const track = this.stream.getVideoTracks()[0];
        const sender = pc.addTrack(track, this.stream);
        if (this.share.state === P.share.state.PAUSED) await sender.replaceTrack(null);
      } else {
        pc.restartIce();
      }
      const description = await pc.createOffer(restart ? { iceRestart: true } : {});
      if (this.pc !== pc) return;
      await pc.setLocalDescription(description);
      this.send(P.frame.RTC_OFFER, { sdp: pc.localDescription.sdp, restart: Boolean(restart) });
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

  return { Link };
})();
