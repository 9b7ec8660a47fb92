/* On the dashboard: the screen of a session goes on to the supervisors who watch it
   (docs/supervision.md, "The shared screen"). For each watch.peer_ready this page opens
   one more RTCPeerConnection, sends the screen it receives (or shows) on it, video only
   and one way, and speaks the watch.* frames through the session socket; the broker
   relays them to the supervisor's watch page. The end user's page and the agent do not
   take part, and nothing from the supervisor reaches them. A relay closes when the share
   pauses or stops, when the supervisor leaves (watch.stop "left"), or when it fails. */
"use strict";
(function () {
  const P = window.SBProtocol;  // the watch.* frames: broker/protocol/supervision.py
  const WAIT_FOR_SCREEN_MS = 15000;  // a watcher asks before this page has the picture

  class Relays {
    constructor(ctl) {
      this.ctl = ctl;
      this.relays = new Map();  // relay id -> {id, share, pc, track, pending, since}
      this.chain("onFrame", (f) => this.frame(f));
      this.chain("onError", (err) => this.error(err));
      setInterval(() => this.tick(), 1000);
    }

    /* Frames and errors of the relays are ours; the rest goes on to the others. */
    chain(name, mine) {
      const h = this.ctl.socket.handlers;
      const theirs = h[name];
      h[name] = (...args) => {
        if (mine(...args)) return true;
        return theirs ? theirs(...args) : false;
      };
    }

    send(relay, type, fields) {
      return this.ctl.socket.sendFrame(Object.assign({ type: type, id: relay.id }, fields || {}));
    }

    /* The screen this page has now for `shareId`: the one it receives, or its own. */
    track(shareId) {
      const link = this.ctl.link;
      if (!link || link.id !== shareId || link.share.state !== P.share.state.ACTIVE) return null;
      const stream = link.sharing ? link.stream : this.ctl.viewer.video.srcObject;
      const track = stream ? stream.getVideoTracks()[0] : null;
      return track && track.readyState === "live" ? track : null;
    }

    frame(f) {
      if (!f.type || !f.type.startsWith("watch.")) return false;
      if (f.type === P.frame.WATCH_PEER_READY) {
        this.close(f.id);
        this.relays.set(f.id, { id: f.id, share: f.share, pc: null, track: null, pending: [], since: Date.now() });
        this.mark();
        this.offer(this.relays.get(f.id));
        return true;
      }
      const relay = this.relays.get(f.id);
      if (!relay) return true;
      if (f.type === P.frame.WATCH_ANSWER && relay.pc && relay.pc.signalingState === "have-local-offer") {
        relay.pc.setRemoteDescription({ type: "answer", sdp: f.sdp })
          .then(() => this.flush(relay)).catch(() => this.fail(relay, "failed"));
      } else if (f.type === P.frame.WATCH_CANDIDATE) {
        relay.pending.push(f);
        if (relay.pc && relay.pc.remoteDescription) this.flush(relay);
      } else if (f.type === P.frame.WATCH_STOP) {
        this.close(f.id);
      }
      return true;
    }

    error(err) {
      if (!err.ref || !this.relays.has(err.ref)) return false;
      this.close(err.ref);  // the share ended meanwhile, say: the watcher asks again
      return true;
    }

    async offer(relay) {
      const track = this.track(relay.share);
      if (!track) return;  // not yet: tick() tries again
      const pc = new RTCPeerConnection((this.ctl.link && this.ctl.link.config) || { iceServers: [] });
      relay.pc = pc;
      relay.track = track;
      pc.addTransceiver(track, { direction: "sendonly" });
      pc.onicecandidate = (e) => {
        if (relay.pc !== pc) return;
        const c = e.candidate;
        this.send(relay, P.frame.WATCH_CANDIDATE, c
          ? { candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex }
          : { candidate: "", sdp_mid: null, sdp_mline_index: null });
      };
      pc.onconnectionstatechange = () => {
        if (relay.pc === pc && pc.connectionState === "failed") this.fail(relay, "failed");
      };
      try {
        await pc.setLocalDescription(await pc.createOffer());
        if (relay.pc === pc) this.send(relay, P.frame.WATCH_OFFER, { sdp: pc.localDescription.sdp });
      } catch (e) { this.fail(relay, "failed"); }
    }

    async flush(relay) {
      const waiting = relay.pending;
      relay.pending = [];
      for (const c of waiting) {
        try {
          await relay.pc.addIceCandidate(c.candidate
            ? { candidate: c.candidate, sdpMid: c.sdp_mid, sdpMLineIndex: c.sdp_mline_index } : null);
        } catch (e) { /* a candidate of an earlier connection */ }
      }
    }

    tick() {
      for (const relay of [...this.relays.values()]) {
        const track = this.track(relay.share);
        if (!relay.pc) {
          if (track) this.offer(relay);
          else if (Date.now() - relay.since > WAIT_FOR_SCREEN_MS) this.fail(relay, "no_screen");
        } else if (track && track !== relay.track) {
          // The share's own connection was renewed: the relay sends the new picture.
          relay.track = track;
          for (const sender of relay.pc.getSenders()) sender.replaceTrack(track).catch(() => {});
        }
      }
    }

    fail(relay, reason) {
      this.send(relay, P.frame.WATCH_STOP, { reason: reason });
      this.close(relay.id);
    }

    close(id) {
      const relay = this.relays.get(id);
      if (!relay) return;
      this.relays.delete(id);
      if (relay.pc) relay.pc.close();
      this.mark();
    }

    /* How many supervisors this pane sends the screen to, on the pane (for tests). */
    mark() {
      const pane = this.ctl.view.mount.root;
      if (this.relays.size) pane.dataset.relays = String(this.relays.size);
      else delete pane.dataset.relays;
    }

    closeAll() { for (const id of [...this.relays.keys()]) this.close(id); }

    /* -- SBScreen's hooks ---------------------------------------------------------- */

    onEvent(e) {
      if (e.type === P.event.SHARE_PAUSED || e.type === P.event.SHARE_STOPPED) this.closeAll();
    }

    onDrop() { this.closeAll(); }
  }

  SBScreen.extend((ctl) => (ctl.role === "technician" ? new Relays(ctl) : {}));
})();
