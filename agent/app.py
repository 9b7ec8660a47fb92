"""The agent in a session: its socket to the broker (with reconnects that resume by sequence
number), the shares it takes part in, the questions it asks, and what it does with the
answers.

Like the browser pages, it rebuilds every share's state from the session's events, so a
restarted agent (after a reboot, `--resume`) knows at once what was going on: a share it was
sending is sent again (the technician's viewer gets a new offer, with no action there), a
request nobody answered yet is asked again, and remote control granted to an earlier run
of the agent is ended, because consent belongs to the person who gave it to that run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import platform
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from . import __version__, autostart, clipboard, transfer
from .adapt import Limits
from .capture import CaptureError, ScreenSource
from .control import ControlSession, Injector
from .hotkey import DEFAULT_HOTKEY, Hotkey, describe
from .peer import SharerPeer
from .state import ResumeState, StateStore
from .ui import UI

log = logging.getLogger(__name__)
FINAL_CODES = {4000, 4010, 4401, 4403}
LIVE = {"requested", "consented", "active", "paused"}
NEXT_STATE = {"share.requested": "requested", "share.consented": "consented",
              "share.refused": "refused", "share.started": "active", "share.paused": "paused",
              "share.resumed": "active", "share.stopped": "stopped"}
END_REASONS = {
    "reconnect_timeout": "the session ended because this computer was away longer than the "
                         "reconnect window (10 minutes). Ask your technician for a new key if "
                         "you still need help.",
    "ended_by_technician": "the technician ended the session.",
}


class ExitCode:
    DONE = 0            # the session ended, or the user quit
    FAILED = 1
    REFUSED = 3         # resuming is refused: the session is over
    CREDENTIAL = 4      # the broker no longer accepts this agent
    UNREACHABLE = 5     # the broker could not be reached for too long


@dataclasses.dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the person starting the agent (or the autostart entry) chose."""

    monitor: int = 1
    max_fps: float = 30.0
    max_width: int = 1920
    codec: str = "vp8"
    hotkey: str = DEFAULT_HOTKEY
    download_dir: Path | None = None   # None: files the technician sends are not saved
    autostart: bool = False
    stamp: bool = False                # benchmarks: the capture time drawn into each frame
    give_up_seconds: float = 11 * 60   # reconnecting longer than this is pointless
    heartbeat_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.codec not in ("vp8", "h264"):
            raise ValueError("codec must be vp8 or h264")
        Limits(max_fps=self.max_fps, max_width=self.max_width,
               min_fps=min(5.0, self.max_fps), min_width=min(640, self.max_width))


@dataclasses.dataclass(slots=True)
class ShareView:
    """A share as the events describe it."""

    id: str
    state: str
    sharer: str
    viewer: str
    source: str
    viewer_name: str
    control: str = "none"
    control_asked: int = 0   # the seq of the control request last asked about


class Agent:
    """One agent process in one session."""

    def __init__(self, settings: AgentSettings, state: ResumeState, store: StateStore,
                 ui: UI, http: aiohttp.ClientSession,
                 injector_factory: Callable[[], Injector]) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.ui = ui
        self.http = http
        self._injector_factory = injector_factory
        self._injector: Injector | None = None
        self.me: str | None = None
        self.shares: dict[str, ShareView] = {}
        self.link: SharerPeer | None = None
        self.control: ControlSession | None = None
        self.last_seq = 0                 # what this process has seen (socket resume)
        self.files_after = state.last_seq  # files offered after this are new to us
        self.resumed = state.last_seq > 0
        self.ended: dict[str, Any] | None = None
        self.ended_before_sync = False
        self.synced = False
        self.connected_once = False
        self._greeted = False
        self.quitting = False
        self._asked: set[str] = set()
        self._granted_here: set[str] = set()
        self._stopped_stale: set[str] = set()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._saved_at = 0.0
        self._forgotten = False
        self._hotkey: Hotkey | None = None
        self.hotkey_text = describe(settings.hotkey)

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> int:
        self.ui.start(on_stop_control=lambda: self.revoke("revoked"))
        self._hotkey = Hotkey(self.settings.hotkey, lambda: self.revoke("hotkey"))
        self._hotkey.start()
        self._spawn(self._commands())
        try:
            return await self._socket_loop()
        finally:
            await self._shutdown()

    def quit(self) -> None:
        """The person asked the agent to stop: sharing stops, nothing is resumed."""
        self.quitting = True
        self._spawn(self._leave())

    async def _leave(self) -> None:
        share = self._my_live_share()
        if share is not None:
            await self.send({"type": "share.stop", "id": share.id, "reason": "stopped"})
        if self._ws is not None:
            await self._ws.close()

    async def _shutdown(self) -> None:
        if self.link is not None:
            await self.link.close()
            self.link.source.close()
            self.link = None
        if self._hotkey is not None:
            self._hotkey.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.save(force=True)
        self.ui.close()

    async def _socket_loop(self) -> int:
        failing_since: float | None = None
        attempt = 0
        while True:
            self.synced = False
            try:
                code = await self._connect_once()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                code, why = None, str(exc) or type(exc).__name__
            else:
                why = f"closed ({code})"
            if self.ended is not None:
                return self._finished()
            if code == 4000:
                self.ui.say("Another copy of the agent has taken over this session; this one "
                            "stops.")
                return ExitCode.FAILED
            if code in (4401, 4403):
                self.ui.say("The support service no longer accepts this agent for the "
                            "session. Ask your technician for a new key.")
                self._forget_session()
                return ExitCode.CREDENTIAL
            if self.quitting:
                self._forget_session()
                self.ui.say("The agent has stopped. Nothing is shared any more.")
                return ExitCode.DONE
            now = time.monotonic()
            if self.connected_once:
                failing_since, attempt, self.connected_once = now, 0, False
            failing_since = failing_since or now
            if now - failing_since > self.settings.give_up_seconds:
                self.ui.say("The support service could not be reached for too long; the agent "
                            "stops. Start it again with --resume to try once more.")
                return ExitCode.UNREACHABLE
            delay = min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random())  # noqa: S311
            attempt += 1
            self.ui.say(f"Connection to the support service lost ({why}); trying again in "
                        f"{delay:.0f} s…")
            await asyncio.sleep(delay)

    async def _connect_once(self) -> int | None:
        url = self.state.base_url.replace("http", "ws", 1) + (
            f"/api/v1/sessions/{self.state.session_id}/ws")
        async with self.http.ws_connect(url, heartbeat=self.settings.heartbeat_seconds,
                                        max_msg_size=256 * 1024) as ws:
            self._ws = ws
            await ws.send_json({"type": "hello", "token": self.state.participant_token,
                                "after": self.last_seq})
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._frame(json.loads(message.data))
            self._ws = None
            return ws.close_code

    async def send(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_json(frame)
        except (ConnectionError, RuntimeError):
            return False
        return True

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- frames -----------------------------------------------------------------------------

    async def _frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "welcome":
            self.me = frame["you"]["sender"]
            technician = frame["session"]["technician"]["name"]
            if technician != self.state.technician_name:
                self.state = dataclasses.replace(self.state, technician_name=technician)
        elif kind == "event":
            await self._event(frame["event"])
        elif kind == "synced":
            await self._synced()
        elif kind == "presence":
            if not frame.get("technician"):
                self.ui.say("Your technician is not connected right now.")
        elif kind == "error":
            await self._error(frame)
        elif isinstance(kind, str) and kind.startswith("rtc."):
            if self.link is not None and frame.get("id") == self.link.share_id:
                self.link.handle(frame)

    async def _synced(self) -> None:
        self.synced = True
        self.connected_once = True
        if self.ended is not None:
            return
        await self.send({"type": "agent.hello", "version": __version__,
                         "platform": platform.system()[:40]})
        if not self._greeted:
            self._greeted = True
            self.ui.say(f"Connected to the support session with "
                        f"{self.state.technician_name or 'your technician'}. Type a line to "
                        f"chat; /quit stops the agent.")
        if self.link is not None:
            await self.link.ready(fresh=False)  # the same connection takes what waited
        for share in list(self.shares.values()):
            await self._reconcile(share, None)
        self.save(force=True)

    async def _error(self, frame: dict[str, Any]) -> None:
        ref, code = frame.get("ref"), frame.get("code")
        share = self.shares.get(ref or "")
        if share is not None and code in ("share_unknown", "share_ended"):
            share.state = "stopped"
            await self._reconcile(share, None)
        elif code not in ("illegal_transition",):
            self.ui.say(f"The support service refused something: {frame.get('message')}")

    async def _event(self, event: dict[str, Any]) -> None:
        if event["seq"] <= self.last_seq:
            return
        self.last_seq = event["seq"]
        kind = event["type"]
        author = event.get("author") or {}
        if kind.startswith(("share.", "control.")):
            share = self._apply(event)
            if self.synced:
                await self._reconcile(share, kind)
        elif kind == "message" and self.synced and author.get("sender") != self.me:
            self.ui.say(f"{author.get('name', '?')}: {event.get('text', '')}")
        elif kind == "file.offered":
            # New files only: those sent while this agent runs, or while it was away.
            if (author.get("role") == "technician" and self.settings.download_dir is not None
                    and (self.synced or self.resumed) and event["seq"] > self.files_after):
                self._spawn(self._download(event))
        elif kind == "handed_over" and self.synced:
            self.ui.say(f"You are now connected with {event.get('to')}.")
        elif kind == "ended":
            self.ended = event
            self.ended_before_sync = not self.connected_once
        self.save()

    def _apply(self, event: dict[str, Any]) -> ShareView:
        share = self.shares.get(event["share_id"])
        if share is None:
            share = ShareView(event["share_id"], "requested", event["sharer"], event["viewer"],
                              event.get("source", "browser"), event.get("viewer_name", ""))
            self.shares[share.id] = share
        share.state = NEXT_STATE.get(event["type"], share.state)
        share.control = event.get("control", share.control)
        if event["type"] == "control.requested":
            share.control_asked = 0  # a new request: ask again
        return share

    # -- what the events mean here ------------------------------------------------------------

    def _my_live_share(self) -> ShareView | None:
        for share in self.shares.values():
            if share.sharer == self.me and share.state in LIVE:
                return share
        return None

    async def _reconcile(self, share: ShareView, why: str | None) -> None:
        if share.sharer != self.me:
            return
        if share.state not in LIVE:
            self.ui.withdraw(f"share:{share.id}")
            self.ui.withdraw(f"control:{share.id}")
            await self._drop_link(share.id)
            if why == "share.stopped":
                self.ui.say("Screen sharing has stopped.")
            return
        if share.state == "requested":
            key = f"share:{share.id}"
            if key not in self._asked:
                self._asked.add(key)
                self._spawn(self._ask_share(share))
            return
        if self.link is None or self.link.share_id != share.id:
            await self._start_link(share)
        elif why in ("share.paused", "share.resumed"):
            await self.link.set_paused(share.state == "paused")
            self.ui.say("Screen sharing is paused." if share.state == "paused"
                        else "Screen sharing continues.")
        await self._reconcile_control(share)

    async def _reconcile_control(self, share: ShareView) -> None:
        key = f"control:{share.id}"
        if share.control == "requested":
            if share.control_asked == 0 and key not in self._asked:
                share.control_asked = self.last_seq
                self._asked.add(key)
                self._spawn(self._ask_control(share))
            return
        self.ui.withdraw(key)
        self._asked.discard(key)
        if share.control == "granted":
            if share.id in self._granted_here:
                self._enable_control(share)
            elif share.id not in self._stopped_stale:
                # Granted to an earlier run of the agent: that consent is not this one's.
                self._stopped_stale.add(share.id)
                await self.send({"type": "control.stop", "id": share.id,
                                 "reason": "agent_restarted"})
            return
        self._granted_here.discard(share.id)
        self._disable_control()

    async def _ask_share(self, share: ShareView) -> None:
        monitor = self._monitor_text()
        allowed = await self.ui.ask(
            f"share:{share.id}",
            f"{share.viewer_name or 'Your technician'} asks to see your screen ({monitor}).")
        current = self.shares.get(share.id)
        if current is None or current.state != "requested":
            return
        await self.send({"type": "share.consent", "id": share.id, "accept": allowed})
        if not allowed:
            self.ui.say("Your screen is not shared.")

    async def _ask_control(self, share: ShareView) -> None:
        key = f"control:{share.id}"
        allowed = await self.ui.ask(
            key, f"{share.viewer_name or 'Your technician'} asks to control this computer's "
                 f"mouse and keyboard. You can stop it at any time with {self.hotkey_text}.")
        self._asked.discard(key)
        current = self.shares.get(share.id)
        if current is None or current.control != "requested" or current.state not in LIVE:
            return
        if allowed:
            self._granted_here.add(share.id)
        if not await self.send({"type": "control.consent", "id": share.id,
                                "accept": allowed}):
            self._granted_here.discard(share.id)

    def _monitor_text(self) -> str:
        try:
            from .capture import list_monitors

            m = list_monitors()[self.settings.monitor]
            return f"monitor {m.index}, {m.width}×{m.height}"
        except (CaptureError, IndexError):
            return f"monitor {self.settings.monitor}"

    async def _start_link(self, share: ShareView) -> None:
        await self._drop_link(None)
        try:
            source = await asyncio.to_thread(ScreenSource, self.settings.monitor,
                                             stamp=self.settings.stamp)
        except CaptureError as exc:
            self.ui.say(f"Your screen cannot be captured: {exc}")
            await self.send({"type": "share.stop", "id": share.id, "reason": "capture_failed"})
            return
        if self._injector is None:
            try:
                self._injector = self._injector_factory()
            except Exception as exc:  # no display for input, a missing permission
                self.ui.say(f"Remote control is not possible here: {exc}")
                from .control import RecordingInjector

                self._injector = RecordingInjector()
        self.control = ControlSession(self._injector, source.monitor)
        limits = Limits(max_fps=self.settings.max_fps, max_width=self.settings.max_width,
                        min_fps=min(5.0, self.settings.max_fps),
                        min_width=min(640, self.settings.max_width))
        link = SharerPeer(share.id, self.send, source, limits, self.control,
                          self.settings.codec, on_channel=self._clipboard)
        self.link = link
        resumed = share.state in ("active", "paused")
        link.paused = share.state == "paused"
        if resumed:
            link.offer_on_config = True  # the viewer will not ask: offer at once
            self.ui.say("Resuming screen sharing.")
        else:
            await self.send({"type": "share.start", "id": share.id})
            self.ui.say(f"Your screen is being shared with {share.viewer_name}. Type /quit "
                        "to stop.")
        await link.ready(fresh=True)

    async def _drop_link(self, share_id: str | None) -> None:
        link = self.link
        if link is None or (share_id is not None and link.share_id != share_id):
            return
        self._disable_control()
        self.link, self.control = None, None
        await link.close()
        link.source.close()

    # -- control ------------------------------------------------------------------------------

    def _enable_control(self, share: ShareView) -> None:
        if self.control is None or self.control.granted:
            return
        self.control.grant()
        self.ui.controlled(share.viewer_name or "Your technician", self.hotkey_text)
        if self.link is not None:
            self.link.send_channel({"t": "control", "granted": True})

    def _disable_control(self) -> None:
        if self.control is None or not self.control.granted:
            return
        self.control.revoke()
        self.ui.controlled(None, self.hotkey_text)
        if self.link is not None:
            self.link.send_channel({"t": "control", "granted": False})

    def revoke(self, reason: str) -> None:
        """The person at this computer takes control back (hotkey, bar, /stop): at once."""
        if self.control is None or not self.control.granted:
            return
        share_id = self.link.share_id if self.link is not None else None
        self._disable_control()
        if share_id is not None:
            self._granted_here.discard(share_id)
            self._spawn(self.send({"type": "control.stop", "id": share_id, "reason": reason}))

    async def _clipboard(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The technician asks for this computer's clipboard text, or sends some."""
        if self.control is None or not self.control.granted:
            return {"t": "error", "code": "not_granted",
                    "message": "The clipboard is shared only under remote control."}
        try:
            if message.get("t") == "clipboard.get":
                text = await clipboard.read_text()
                self.ui.say("Your technician copied the text in your clipboard.")
                return {"t": "clipboard", "text": text}
            if message.get("t") == "clipboard.set" and isinstance(message.get("text"), str):
                await clipboard.write_text(message["text"])
                self.ui.say("Your technician put text into your clipboard.")
                return {"t": "clipboard.done"}
        except clipboard.ClipboardError as exc:
            return {"t": "error", "code": "clipboard", "message": str(exc)}
        return {"t": "error", "code": "bad_event", "message": "unknown clipboard request"}

    # -- the person's lines -------------------------------------------------------------------

    async def _commands(self) -> None:
        while True:
            line = await self.ui.lines.get()
            if line is None:
                return  # no terminal (autostart without one): answers come from windows
            line = line.strip()
            if not line:
                continue
            if line == "/quit":
                self.quit()
            elif line.startswith("/send "):
                self._spawn(self._upload(line[6:].strip()))
            elif line in ("/pause", "/resume"):
                share = self._my_live_share()
                if share is not None:
                    await self.send({"type": f"share.{line[1:]}", "id": share.id})
            elif line.startswith("/"):
                self.ui.say("Commands: /stop (end remote control), /pause, /resume, "
                            "/send FILE, /quit. Anything else is a chat message.")
            elif not await self.send({"type": "chat.send", "id": str(uuid.uuid4()),
                                      "text": line}):
                self.ui.say("Not sent: not connected right now.")

    async def _upload(self, name: str) -> None:
        path = await asyncio.to_thread(lambda: Path(name).expanduser())
        try:
            await transfer.upload(self.http, self.state.base_url, self.state.session_id,
                                  self.state.participant_token, path)
        except (OSError, transfer.TransferError, aiohttp.ClientError) as exc:
            self.ui.say(f"Could not send {path.name}: {exc}")
            return
        self.ui.say(f"Sent {path.name}.")

    async def _download(self, event: dict[str, Any]) -> None:
        assert self.settings.download_dir is not None
        url = event["url"]
        url = self.state.base_url + url if url.startswith("/") else url
        try:
            saved = await transfer.download(self.http, url, self.state.participant_token,
                                            event["sha256"], self.settings.download_dir,
                                            event["name"])
        except (OSError, transfer.TransferError, aiohttp.ClientError) as exc:
            self.ui.say(f"Could not receive {event['name']}: {exc}")
            return
        self.ui.say(f"Your technician sent {event['name']}: saved as {saved} (checked).")

    # -- leaving -------------------------------------------------------------------------------

    def save(self, force: bool = False) -> None:
        """Keep the resume credential's last_seq roughly current (at most every 2 s)."""
        if self.ended is not None or self.quitting or self._forgotten:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < 2:
            return
        self._saved_at = now
        state = dataclasses.replace(self.state, last_seq=max(self.state.last_seq,
                                                             self.last_seq))
        if state != self.state or force:
            self.state = state
            with contextlib.suppress(OSError):
                self.store.save(state)

    def _forget_session(self) -> None:
        self._forgotten = True
        self.store.clear()
        if self.settings.autostart or autostart.installed():
            autostart.remove()

    def _finished(self) -> int:
        assert self.ended is not None
        reason = str(self.ended.get("reason", ""))
        self._forget_session()
        text = END_REASONS.get(reason, "the session has ended.")
        if self.ended_before_sync:
            self.ui.say(f"Cannot resume: {text}")
            return ExitCode.REFUSED
        self.ui.say(f"The support session has ended: {text}")
        return ExitCode.DONE
