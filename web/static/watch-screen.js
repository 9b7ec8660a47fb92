/* The shared screen on the watch page (docs/supervision.md, "The shared screen"). While a
   screen is shared in the session, this page asks for it (watch.ready) and the
   technician's page sends it on over a peer connection of its own: video only, one way,
   no control. The page says plainly what is so: no screen shared, paused, connecting,
   showing (only once frames arrive), or lost (and then it asks again). */
"use strict";
(function () {
  const P = window.SBProtocol;  // the watch.* frames: broker/protocol/supervision.py
  const W = window.SBWatch;
  const LIVE = new Set(P.share.live);
  const OFFER_WITHIN_MS = 12000;   // no offer by then: the technician's page does not relay
  const DISCONNECTED_MS = 5000;    // "disconnected" this long counts as lost
  const root = document.getElementById("watch-screen");
  const s = JSON.parse(root.dataset.strings);
  const note = root.querySelector('[data-role="screen-status"]');
  const video = root.querySelector("video");
  const shares = new Map();  // share id -> {id, state, sharer name}
  let synced = false;
  let ended = false;
  let relay = null;          // {id, share, config, pc, pending, timer}
  let retry = null;
  let attempt = 0;
  let frames = 0;

  function setState(state, share) {
    root.dataset.state = state;
    video.hidden = state !== "showing";
    const text = { none: s.none, paused: s.paused, connecting: s.connecting, lost: s.lost,
                   ended: s.ended, showing: s.showing }[state];
    note.textContent = SB.fill(text, { name: share ? share.name : "" });
  }

  function current() {
    for (const share of shares.values()) if (LIVE.has(share.state)) return share;
    return null;
  }

  /* What to do now that something changed. */
  function reconcile() {
    const share = current();
    if (ended || !share || share.state !== P.share.state.ACTIVE) {
      closeRelay();
      clearTimeout(retry);
      retry = null;
      attempt = 0;
      setState(ended ? "ended" : share && share.state === P.share.state.PAUSED ? "paused" : "none");
      return;
    }
    if (!synced || retry || (relay && relay.share === share.id)) return;
    ask(share);
  }

  function ask(share) {
    closeRelay();
    if (!W.send({ type: P.frame.WATCH_READY, share: share.id })) return;
    relay = { id: null, share: share.id, config: null, pc: null, pending: [] };
    relay.timer = setTimeout(lost, OFFER_WITHIN_MS);
    setState("connecting", share);
  }

  /* The relay did not come or broke: say so, and ask again a little later. */
  function lost() {
    closeRelay();
    const share = current();
    if (ended || !share || share.state !== P.share.state.ACTIVE) { reconcile(); return; }
    setState("lost", share);
    clearTimeout(retry);
    retry = setTimeout(() => { retry = null; reconcile(); }, Math.min(15000, 1500 * 2 ** attempt));
    attempt += 1;
  }

  function closeRelay() {
    if (!relay) return;
    clearTimeout(relay.timer);
    if (relay.pc) relay.pc.close();
    if (relay.id) W.send({ type: P.frame.WATCH_STOP, id: relay.id, reason: "stopped" });
    relay = null;
    video.srcObject = null;
  }

  function send(type, fields) {
    if (relay && relay.id) W.send(Object.assign({ type: type, id: relay.id }, fields));
  }

  async function offered(f) {
    const r = relay;
    clearTimeout(r.timer);
    if (r.pc) r.pc.close();
    const pc = new RTCPeerConnection(r.config || { iceServers: [] });
    r.pc = pc;
    pc.ontrack = (e) => {
      if (relay !== r) return;
      video.srcObject = e.streams[0] || new MediaStream([e.track]);
      video.play().catch(() => {});
    };
    pc.onicecandidate = (e) => {
      if (relay !== r) return;
      const c = e.candidate;
      send(P.frame.WATCH_CANDIDATE, c
        ? { candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex }
        : { candidate: "", sdp_mid: null, sdp_mline_index: null });
    };
    pc.onconnectionstatechange = () => {
      if (relay !== r) return;
      clearTimeout(r.timer);
      const state = pc.connectionState;
      if (state === "failed" || state === "closed") lost();
      else if (state === "disconnected") {
        setState("lost", current());
        r.timer = setTimeout(lost, DISCONNECTED_MS);
      }
    };
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: f.sdp });
      for (const c of r.pending.splice(0)) await addCandidate(pc, c);
      await pc.setLocalDescription(await pc.createAnswer());
      if (relay === r) send(P.frame.WATCH_ANSWER, { sdp: pc.localDescription.sdp });
      r.timer = setTimeout(() => { if (root.dataset.state !== "showing") lost(); }, OFFER_WITHIN_MS);
    } catch (e) { if (relay === r) lost(); }
  }

  async function addCandidate(pc, c) {
    try {
      await pc.addIceCandidate(c.candidate
        ? { candidate: c.candidate, sdpMid: c.sdp_mid, sdpMLineIndex: c.sdp_mline_index } : null);
    } catch (e) { /* of an earlier connection */ }
  }

  /* "Showing" only while connected and once frames arrive: counted as the page paints
     them, and from the connection's statistics (a hidden video may paint none). */
  function arrived() {
    if (relay && relay.pc && relay.pc.connectionState === "connected" && root.dataset.state !== "showing") {
      clearTimeout(relay.timer);
      attempt = 0;
      setState("showing", current());
    }
  }
  function onFrame() {
    frames += 1;
    video.dataset.frames = String(frames);
    arrived();
    video.requestVideoFrameCallback(onFrame);
  }
  video.requestVideoFrameCallback(onFrame);
  setInterval(async () => {
    const r = relay;
    if (!r || !r.pc || root.dataset.state === "showing") return;
    let decoded = 0;
    try {
      (await r.pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") decoded = s.framesDecoded || 0;
      });
    } catch (e) { return; }
    if (relay === r && decoded > (r.decoded || 0)) { r.decoded = decoded; arrived(); }
  }, 1000);

  W.on({
    event(e) {
      if (e.type === P.event.ENDED) ended = true;
      const next = P.share.events[e.type];
      if (next) {
        const share = shares.get(e.share_id) || { id: e.share_id };
        share.state = next;
        share.name = e.sharer_name || share.name || "";
        shares.set(share.id, share);
      }
      reconcile();
    },
    frame(f) {
      if (!relay) return;
      if (f.type === P.frame.WATCH_CONFIG && !relay.id && f.share === relay.share) {
        relay.id = f.id;
        relay.config = { iceServers: f.ice_servers, iceTransportPolicy: f.ice_transport_policy };
      } else if (f.id !== relay.id) {
        return;
      } else if (f.type === P.frame.WATCH_OFFER) {
        offered(f);
      } else if (f.type === P.frame.WATCH_CANDIDATE) {
        if (relay.pc && relay.pc.remoteDescription) addCandidate(relay.pc, f);
        else relay.pending.push(f);
      } else if (f.type === P.frame.WATCH_STOP) {
        relay.id = null;  // closed on the other side already
        lost();
      }
    },
    error(err) {
      // Refused: the screen stopped meanwhile, or the technician's page is gone.
      if (relay && (!err.ref || err.ref === relay.id)) lost();
    },
    status(state) {
      synced = state === "live";
      if (!synced) { if (relay) relay.id = null; closeRelay(); }
      reconcile();
    },
  });
  setState("none");
})();
