"""The agent in a session: its socket to the broker (with reconnects that resume by sequence
number), the shares it takes part in, the questions it asks, and what it does with the
answers.

Like the browser pages, it rebuilds every share's state from the session's events, so a
restarted agent (after a reboot, `--resume`) knows at once what was going on: a share it was
sending is sent again (the technician's viewer gets a new offer, with no action there), a
request nobody answered yet is asked again, and remote control granted to an earlier run
of the agent is ended, because consent belongs to the person who gave it to that run.

The parts: `connection` (the socket, reconnecting), `shares` (the shares as the events
describe them), `sharing` (the agent's own shares and their media), `consent` (remote
control as the person here decides), `files` (files and clipboard text), `state` (the
resume credential). This module joins them and reads the person's typed lines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import platform
import uuid
from typing import Any

import aiohttp

from broker.protocol import Message, events
from broker.protocol.agent import AgentHello
from broker.protocol.chat import ChatSend
from broker.protocol.rtc import SharePause, ShareResume, ShareState, ShareStop
from broker.protocol.session import CloseCode, Error, EventFrame, Presence, Synced, Welcome

from . import __version__
from .backend import Backend
from .connection import Backoff, SessionSocket
from .consent import RemoteControl
from .files import Files
from .hotkey import Hotkey, describe
from .peer import Signal
from .settings import AgentSettings, ExitCode
from .shares import SHARE_KINDS, ShareBook
from .sharing import Sharing
from .state import ResumeRecord, ResumeState, StateStore
from .tasks import Tasks
from .ui import UI

END_REASONS = {
    "reconnect_timeout": "the session ended because this computer was away longer than the "
                         "reconnect window (10 minutes). Ask your technician for a new key if "
                         "you still need help.",
    "ended_by_technician": "the technician ended the session.",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Ending:
    """The session ended: why, and whether this process learnt it before it was ever in
    sync since its last connection (then it could not resume)."""

    reason: str
    before_sync: bool


class Agent:
    """One agent process in one session."""

    def __init__(self, settings: AgentSettings, state: ResumeState, store: StateStore,
                 ui: UI, http: aiohttp.ClientSession, backend: Backend) -> None:
        self.settings = settings
        self.ui = ui
        self.resume = ResumeRecord(state, store, settings.autostart)
        self.socket = SessionSocket(http, settings.heartbeat_seconds)
        self.backoff = Backoff(settings.give_up_seconds)
        self.tasks = Tasks()
        self.book = ShareBook()
        self.control = RemoteControl(ui, self.socket.send, self.book, self.tasks,
                                     describe(settings.hotkey))
        self.backend = backend
        self.sharing = Sharing(settings, ui, self.socket.send, self.book, self.tasks,
                               self.control, backend, self.resume)
        self.files = Files(http, state, ui, settings.download_dir, self.tasks)
        self._hotkey = Hotkey(settings.hotkey, lambda: self.control.revoke("hotkey"))
        self.ending: Ending | None = None
        self._greeted = False
        self.quitting = False

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> int:
        self.ui.start(on_stop_control=lambda: self.control.revoke("revoked"))
        self._hotkey.start()
        said = await self.backend.start()
        if said:
            self.ui.say(said)
        self.tasks.spawn(self._commands())
        try:
            return await self._socket_loop()
        finally:
            await self._shutdown()

    def quit(self) -> None:
        """The person asked the agent to stop: sharing stops, nothing is resumed."""
        self.quitting = True
        self.tasks.spawn(self._leave())

    async def _leave(self) -> None:
        share = self.book.my_live_share()
        if share is not None:
            await self.socket.send(ShareStop(share.id, "stopped"))
        await self.socket.close()

    async def _shutdown(self) -> None:
        await self.sharing.drop_link(None)
        self._hotkey.stop()
        await self.tasks.close()
        await self.backend.close()
        self.save(force=True)
        self.ui.close()

    async def _socket_loop(self) -> int:
        while True:
            try:
                code = await self.socket.connect(self.resume.state, self._frame)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                code, why = None, str(exc) or type(exc).__name__
            else:
                why = f"closed ({code})"
            if self.ending is None and code == CloseCode.ENDED:  # its event unseen
                self.ending = Ending("", before_sync=not self.backoff.connected)
            if self.ending is not None:
                return self._finished(self.ending)
            if code == CloseCode.REPLACED:
                self.ui.say("Another copy of the agent has taken over this session; this one "
                            "stops.")
                return ExitCode.FAILED
            if code in (CloseCode.UNAUTHENTICATED, CloseCode.FORBIDDEN):
                self.ui.say("The support service no longer accepts this agent for the "
                            "session. Ask your technician for a new key.")
                self.resume.forget()
                return ExitCode.CREDENTIAL
            if self.quitting:
                self.resume.forget()
                self.ui.say("The agent has stopped. Nothing is shared any more.")
                return ExitCode.DONE
            delay = self.backoff.next_delay()
            if delay is None:
                self.ui.say("The support service could not be reached for too long; the agent "
                            "stops. Start it again with --resume to try once more.")
                return ExitCode.UNREACHABLE
            self.ui.say(f"Connection to the support service lost ({why}); trying again in "
                        f"{delay:.0f} s…")
            await asyncio.sleep(delay)

    # -- frames -----------------------------------------------------------------------------

    async def _frame(self, frame: Message) -> None:
        if isinstance(frame, Welcome):
            self.book.me = frame.you["sender"]
            technician = frame.session["technician"]["name"]
            if technician != self.resume.state.technician_name:
                self.resume.state = dataclasses.replace(self.resume.state,
                                                        technician_name=technician)
        elif isinstance(frame, EventFrame):
            await self._event(frame.event)
        elif isinstance(frame, Synced):
            await self._synced()
        elif isinstance(frame, Presence):
            if not frame.technician:
                self.ui.say("Your technician is not connected right now.")
        elif isinstance(frame, Error):
            await self._error(frame)
        elif isinstance(frame, Signal):
            link = self.sharing.link
            if link is not None and frame.id == link.share_id:
                link.handle(frame)

    async def _synced(self) -> None:
        self.backoff.succeeded()
        if self.ending is not None:
            return
        await self.socket.send(AgentHello(__version__, platform.system()[:40]))
        if not self._greeted:
            self._greeted = True
            self.ui.say(f"Connected to the support session with "
                        f"{self.resume.state.technician_name or 'your technician'}. Type a "
                        f"line to chat; /quit stops the agent.")
        await self.sharing.reconnected()
        self.save(force=True)

    async def _error(self, frame: Error) -> None:
        share = self.book.get(frame.ref or "")
        if share is not None and frame.code in ("share_unknown", "share_ended"):
            share.state = ShareState.STOPPED
            await self.sharing.reconcile(share, None)
        elif frame.code not in ("illegal_transition",):
            self.ui.say(f"The support service refused something: {frame.message}")

    async def _event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        author = event.get("author") or {}
        synced = self.socket.synced
        if kind in SHARE_KINDS:
            share = self.book.apply(event)
            if synced:
                await self.sharing.reconcile(share, kind)
        elif kind == events.ChatMessage.TYPE and synced and author.get("sender") != self.book.me:
            self.ui.say(f"{author.get('name', '?')}: {event.get('text', '')}")
        elif kind == events.FileOffered.TYPE:
            self.files.offered(event, synced)
        elif kind == events.HandedOver.TYPE and synced:
            self.ui.say(f"You are now connected with {event.get('to')}.")
        elif kind == events.Ended.TYPE:
            self.ending = Ending(str(event.get("reason", "")),
                                 before_sync=not self.backoff.connected)
        self.save()

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
                self.files.send(line[6:].strip())
            elif line in ("/pause", "/resume"):
                share = self.book.my_live_share()
                if share is not None:
                    change = SharePause if line == "/pause" else ShareResume
                    await self.socket.send(change(share.id))
            elif line.startswith("/"):
                self.ui.say("Commands: /stop (end remote control), /pause, /resume, "
                            "/send FILE, /quit. Anything else is a chat message.")
            elif not await self.socket.send(ChatSend(str(uuid.uuid4()), line)):
                self.ui.say("Not sent: not connected right now.")

    # -- leaving -------------------------------------------------------------------------------

    def save(self, force: bool = False) -> None:
        """Keep the resume credential's last_seq roughly current (not once it is over)."""
        if self.ending is None and not self.quitting:
            self.resume.save(self.socket.last_seq, force)

    def _finished(self, ending: Ending) -> int:
        self.resume.forget()
        text = END_REASONS.get(ending.reason, "the session has ended.")
        if ending.before_sync:
            self.ui.say(f"Cannot resume: {text}")
            return ExitCode.REFUSED
        self.ui.say(f"The support session has ended: {text}")
        return ExitCode.DONE
