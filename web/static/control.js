/* The native agent in the pages: its presence (agent.* events), remote control of an agent
   share (control.* frames through the broker for consent; mouse and keyboard on the
   WebRTC data channel "control" straight to the agent), the remote cursor, clipboard text
   on request, and on the end user's page the command that starts the agent.

   An extension of screen.js (SBScreen.extend): it sees the same events and peer
   connections. docs/protocol.md ("The control channel") lists the channel's messages. */
"use strict";
(function () {
  const P = window.SBProtocol;  // the channel's messages: broker/protocol/channel.py
  const fill = (t, v) => SB.fill(t || "", v);
  const KEYS = new Set(P.keys);  // the named keys; any other key is one character
  const BUTTONS = P.buttons;     // by MouseEvent.button: 0 left, 1 middle, 2 right

  let cached = null;
  function strings() {
    if (cached) return cached;
    const el = document.querySelector("[data-control-strings]");
    cached = el ? JSON.parse(el.dataset.controlStrings) : {};
    return cached;
  }

  function line(event) {
    const s = strings();
    const name = event.author ? event.author.name : "";
    const key = event.type === P.event.CONTROL_STOPPED && s["control.stopped." + event.reason]
      ? "control.stopped." + event.reason : event.type;
    return s[key] ? { nodes: SB.fillNodes(s[key], { name: name }), className: "share-line" } : null;
  }
  SB.lines.agent = line;
  SB.lines.control = line;

  function clone(id) {
    const template = document.getElementById(id);
    return template ? template.content.firstElementChild.cloneNode(true) : null;
  }

  /* One page's agent and control, attached to screen.js's controller. */
  class Control {
    constructor(ctl) {
      this.ctl = ctl;
      this.s = strings();
      this.agent = null;      // {name, platform, connected}
      this.channel = null;
      this.screen = null;     // {w, h}: the agent's screen, the coordinates of every event
      this.share = null;      // the share the toolbar is for
      this.moveQueued = null;
      this.build();
    }

    build() {
      const stage = this.ctl.viewer.stage;
      this.cursor = document.createElement("div");
      this.cursor.className = "remote-cursor";
      this.cursor.hidden = true;
      stage.append(this.cursor);
      const bar = this.ctl.viewer.el.querySelector(".screen-bar");
      this.tools = clone("control-tools");
      this.clip = null;  // the clipboard panel, made when first needed
      if (this.tools) {
        bar.querySelector('[data-role="view-tools"]').before(this.tools);
        const on = (action, fn) => this.tools.querySelector(`[data-action="${action}"]`).addEventListener("click", fn);
        on("request-control", () => this.sendShare(P.frame.CONTROL_REQUEST));
        on("cancel-control", () => this.sendShare(P.frame.CONTROL_STOP, { reason: "cancelled" }));
        on("stop-control", () => this.sendShare(P.frame.CONTROL_STOP, { reason: "stopped" }));
        on("clipboard-get", () => this.send({ t: P.channel.CLIPBOARD_GET }));
        on("clipboard-send", () => this.openClipboard());
      }
      if (this.ctl.actions) {
        this.badge = clone("agent-badge");
        if (this.badge) this.ctl.actions.append(this.badge);
      }
      this.wireInput(stage);
      if (this.ctl.role === "end_user") this.wireAgentHelp();
    }

    /* -- from screen.js ------------------------------------------------------------------ */

    onEvent(e) {
      if (e.type === P.event.AGENT_CONNECTED || e.type === P.event.AGENT_DISCONNECTED) {
        this.agent = { name: e.author ? e.author.name : "", platform: e.platform || (this.agent && this.agent.platform) || "",
                       connected: e.type === P.event.AGENT_CONNECTED };
        this.ctl.requestSource = this.agent.connected ? P.share.source.AGENT : P.share.source.BROWSER;
        this.renderAgent();
        this.ctl.render();
      } else if (e.type === P.event.CONTROL_REFUSED && e.author && this.ctl.me && e.viewer === this.ctl.me) {
        this.ctl.flash(fill(this.s.control_refused_note, { name: e.author.name }));
      } else if (e.type === P.event.SHARE_REQUESTED && e.source === P.share.source.AGENT && this.ctl.role === "end_user"
                 && !(this.agent && this.agent.connected)) {
        this.showAgentHelp(fill(this.s.agent_needed, { name: e.author ? e.author.name : "" }));
      }
    }

    onChannel(link, channel) {
      this.channel = channel;
      channel.onmessage = (m) => {
        let message;
        try { message = JSON.parse(m.data); } catch (err) { return; }
        this.received(message);
      };
      channel.onclose = () => { if (this.channel === channel) { this.channel = null; this.cursor.hidden = true; } };
    }

    onDrop() {
      this.channel = null;
      this.screen = null;
      this.cursor.hidden = true;
      if (this.clip) this.clip.hidden = true;
    }

    onRender(share, view) {
      this.share = share;
      if (!this.tools) return;
      const agentShare = Boolean(share && view.viewing && share.source === P.share.source.AGENT
        && (share.state === P.share.state.ACTIVE || share.state === P.share.state.PAUSED));
      const control = agentShare ? share.control || P.control.state.NONE : P.control.state.NONE;
      this.tools.hidden = !agentShare;
      const show = (action, visible) => { this.tools.querySelector(`[data-action="${action}"]`).hidden = !visible; };
      const granted = control === P.control.state.GRANTED;
      show("request-control", control === P.control.state.NONE);
      show("cancel-control", control === P.control.state.REQUESTED);
      show("stop-control", granted);
      show("clipboard-get", granted);
      show("clipboard-send", granted);
      if (!granted && this.clip) this.clip.hidden = true;
      const stage = this.ctl.viewer.stage;
      stage.classList.toggle("controlling", granted);
      stage.tabIndex = granted ? 0 : -1;
      if (agentShare) {
        const text = this.ctl.viewer.el.querySelector('[data-role="text"]');
        if (control === P.control.state.REQUESTED) text.textContent = fill(this.s.waiting_control, { name: this.ctl.nameOf(share, share.sharer) });
        else if (granted && share.state === P.share.state.ACTIVE) text.textContent = this.s.controlling;
      }
    }

    /* -- the agent's messages -------------------------------------------------------------- */

    received(message) {
      if (message.t === P.channel.SCREEN) {
        this.screen = { w: message.w, h: message.h };
      } else if (message.t === P.channel.CURSOR) {
        this.lastCursor = message.x === null ? null : [message.x, message.y];
        this.placeCursor();
      } else if (message.t === P.channel.CLIPBOARD) {
        this.showClipboard(message.text);
      } else if (message.t === P.channel.CLIPBOARD_DONE) {
        this.ctl.flash(this.s.clipboard_sent);
        if (this.clip) this.clip.hidden = true;
      } else if (message.t === P.channel.ERROR && message.code !== "not_granted") {
        this.ctl.flash(message.message);
      }
    }

    /* The displayed picture inside the <video>: letterboxed when fitted. */
    geometry() {
      const video = this.ctl.viewer.video;
      if (!this.screen || !video.videoWidth) return null;
      const rect = video.getBoundingClientRect();
      const scale = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
      const width = video.videoWidth * scale;
      const height = video.videoHeight * scale;
      return { left: rect.left + (rect.width - width) / 2, top: rect.top + (rect.height - height) / 2,
               width: width, height: height };
    }

    toScreen(clientX, clientY) {
      const g = this.geometry();
      if (!g) return null;
      const x = Math.floor((clientX - g.left) / g.width * this.screen.w);
      const y = Math.floor((clientY - g.top) / g.height * this.screen.h);
      if (x < 0 || y < 0 || x >= this.screen.w || y >= this.screen.h) return null;
      return { x: x, y: y };
    }

    placeCursor() {
      const g = this.geometry();
      if (!g || !this.lastCursor) { this.cursor.hidden = true; return; }
      const stage = this.ctl.viewer.stage.getBoundingClientRect();
      const [x, y] = this.lastCursor;
      this.cursor.style.left = (g.left - stage.left + this.ctl.viewer.stage.scrollLeft + (x + 0.5) * g.width / this.screen.w) + "px";
      this.cursor.style.top = (g.top - stage.top + this.ctl.viewer.stage.scrollTop + (y + 0.5) * g.height / this.screen.h) + "px";
      this.cursor.hidden = false;
    }

    /* -- sending ---------------------------------------------------------------------------- */

    granted() {
      return Boolean(this.share && this.share.control === P.control.state.GRANTED && this.channel
        && this.channel.readyState === "open");
    }

    send(message) {
      if (!this.channel || this.channel.readyState !== "open") return false;
      this.channel.send(JSON.stringify(message));
      return true;
    }

    sendShare(type, fields) {
      if (!this.share) return;
      this.ctl.socket.sendFrame(Object.assign({ type: type, id: this.share.id }, fields || {}));
    }

    wireInput(stage) {
      const point = (e) => this.granted() ? this.toScreen(e.clientX, e.clientY) : null;
      stage.addEventListener("pointermove", (e) => {
        const p = point(e);
        if (!p) return;
        // At most one move per animation frame: the newest position.
        const first = this.moveQueued === null;
        this.moveQueued = p;
        if (first) requestAnimationFrame(() => {
          const q = this.moveQueued;
          this.moveQueued = null;
          if (q) this.send({ t: P.channel.MOVE, x: q.x, y: q.y });
        });
      });
      const button = (kind) => (e) => {
        const p = point(e);
        if (!p || !BUTTONS[e.button]) return;
        e.preventDefault();
        if (kind === P.channel.DOWN) { stage.focus(); stage.setPointerCapture(e.pointerId); }
        this.send({ t: kind, x: p.x, y: p.y, b: BUTTONS[e.button] });
      };
      stage.addEventListener("pointerdown", button(P.channel.DOWN));
      stage.addEventListener("pointerup", button(P.channel.UP));
      stage.addEventListener("contextmenu", (e) => { if (this.granted()) e.preventDefault(); });
      stage.addEventListener("wheel", (e) => {
        if (!this.granted()) return;
        e.preventDefault();
        const steps = (d) => Math.max(-P.maxScroll, Math.min(P.maxScroll, Math.round(d / 100) || Math.sign(d)));
        this.send({ t: P.channel.WHEEL, dx: steps(e.deltaX), dy: -steps(e.deltaY) });
      }, { passive: false });
      const key = (down) => (e) => {
        if (!this.granted() || !(KEYS.has(e.key) || e.key.length === 1)) return;
        e.preventDefault();
        this.send({ t: P.channel.KEY, k: e.key, down: down });
      };
      stage.addEventListener("keydown", key(true));
      stage.addEventListener("keyup", key(false));
    }

    clipboardPanel() {
      if (!this.clip) {
        this.clip = clone("control-clipboard");
        this.ctl.viewer.el.querySelector(".screen-bar").after(this.clip);
        this.clip.querySelector('[data-action="clipboard-put"]').addEventListener("click", () => {
          this.send({ t: P.channel.CLIPBOARD_SET, text: this.clip.querySelector("textarea").value });
        });
        this.clip.querySelector('[data-action="clipboard-close"]').addEventListener("click", () => { this.clip.hidden = true; });
      }
      return this.clip;
    }

    openClipboard() {
      this.clipboardPanel();
      this.clip.hidden = false;
      this.clip.querySelector('[data-role="label"]').textContent = this.clip.dataset.putLabel
        || (this.clip.dataset.putLabel = this.clip.querySelector('[data-role="label"]').textContent);
      const area = this.clip.querySelector("textarea");
      this.clip.querySelector('[data-action="clipboard-put"]').hidden = false;
      area.readOnly = false;
      area.value = "";
      if (navigator.clipboard && navigator.clipboard.readText) {
        navigator.clipboard.readText().then((text) => { if (!area.value) area.value = text; }, () => {});
      }
      area.focus();
    }

    showClipboard(text) {
      this.clipboardPanel();
      if (!this.clip.dataset.putLabel) this.clip.dataset.putLabel = this.clip.querySelector('[data-role="label"]').textContent;
      this.clip.hidden = false;
      const area = this.clip.querySelector("textarea");
      area.value = text;
      area.readOnly = true;
      this.clip.querySelector('[data-role="label"]').textContent = this.s.clipboard_got;
      this.clip.querySelector('[data-action="clipboard-put"]').hidden = true;
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).catch(() => {});
    }

    /* -- presence -------------------------------------------------------------------------- */

    renderAgent() {
      const connected = Boolean(this.agent && this.agent.connected);
      if (this.badge) {
        this.badge.hidden = !this.agent;
        this.badge.dataset.state = connected ? "connected" : "away";
        this.badge.textContent = connected
          ? fill(this.s.agent_badge, { platform: this.agent.platform || "?" }) : this.s.agent_away;
      }
      const help = document.getElementById("agent-help");
      if (help) help.querySelector('[data-role="agent-connected"]').hidden = !connected;
    }

    /* The end user's page: the command that starts the agent, made on request. */
    wireAgentHelp() {
      const help = document.getElementById("agent-help");
      if (!help) return;
      const make = help.querySelector('[data-action="agent-command"]');
      const out = help.querySelector('[data-role="agent-command"]');
      const copy = help.querySelector('[data-action="copy-agent-command"]');
      make.addEventListener("click", async () => {
        make.disabled = true;
        try {
          const response = await fetch("/api/v1/sessions/" + help.dataset.sessionId + "/agent-link", {
            method: "POST", headers: { Authorization: "Bearer " + help.dataset.token } });
          if (!response.ok) throw new Error(String(response.status));
          const body = await response.json();
          out.querySelector("input").value = body.command;
          out.hidden = false;
        } catch (err) {
          this.ctl.flash(this.s.link_failed);
        } finally {
          make.disabled = false;
        }
      });
      copy.addEventListener("click", () => {
        const input = out.querySelector("input");
        input.select();
        const done = () => { copy.textContent = this.s.copied; };
        if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(input.value).then(done, () => {});
      });
    }

    showAgentHelp(text) {
      const help = document.getElementById("agent-help");
      if (!help) return;
      help.open = true;
      const note = help.querySelector('[data-role="agent-note"]');
      note.textContent = text;
      note.hidden = false;
    }
  }

  SBScreen.extend((ctl) => new Control(ctl));
})();
