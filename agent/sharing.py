"""The agent's own shares: the question before anybody sees this screen, the screen sent
while the share is live (paused and resumed with it), and remote control on top of it.

Every decision is taken again from the share as the events describe it (`reconcile`), after
each event and after each (re)connection: a share the agent was sending before a restart
is sent again at once (the technician's viewer gets a new offer with no action there), and
a request nobody answered yet is asked again.
"""

from __future__ import annotations

import logging
from typing import Protocol

from broker.protocol import events
from broker.protocol.rtc import ShareConsent, ShareStart, ShareState, ShareStop

from .backend import Backend
from .capture import CaptureError
from .connection import Send
from .consent import Controlled, RemoteControl
from .control import ControlSession
from .files import answer_clipboard
from .peer import SharerPeer
from .settings import AgentSettings
from .shares import ShareBook, ShareView
from .tasks import Tasks
from .ui import UI

log = logging.getLogger(__name__)


class RestoreTokens(Protocol):
    """Where the desktop's screen-cast restore token is kept (beside the credential)."""

    @property
    def restore_token(self) -> str: ...
    def keep_restore_token(self, token: str) -> None: ...


class Sharing:
    """This computer's screen in the session's shares."""

    def __init__(self, settings: AgentSettings, ui: UI, send: Send, book: ShareBook,
                 tasks: Tasks, control: RemoteControl, backend: Backend,
                 tokens: RestoreTokens) -> None:
        self._settings, self._ui, self._send = settings, ui, send
        self._book, self._tasks = book, tasks
        self.control = control
        self._backend = backend
        self._tokens = tokens
        self.link: SharerPeer | None = None
        self._opening: str | None = None  # the share whose screen is being opened
        self._asked: set[str] = set()   # shares whose view question was put to the person

    async def reconcile(self, share: ShareView, why: str | None) -> None:
        """Act on one of the agent's shares as the events describe it; `why` is the event
        that just changed it (None after a (re)connection)."""
        if share.sharer != self._book.me:
            return
        if not share.state.live:
            self._ui.withdraw(f"share:{share.id}")
            self.control.withdraw(share)
            await self.drop_link(share.id)
            if why == events.ShareStopped.TYPE:
                self._ui.say("Screen sharing has stopped.")
            return
        if share.state is ShareState.REQUESTED:
            if share.id not in self._asked:
                self._asked.add(share.id)
                self._tasks.spawn(self._ask(share))
            return
        if self.link is None or self.link.share_id != share.id:
            if self._opening != share.id:
                self._opening = share.id
                self._tasks.spawn(self._start_link(share))
            return
        if why in (events.SharePaused.TYPE, events.ShareResumed.TYPE):
            await self.link.set_paused(share.state is ShareState.PAUSED)
            self._ui.say("Screen sharing is paused." if share.state is ShareState.PAUSED
                         else "Screen sharing continues.")
        await self.control.reconcile(share)

    async def reconnected(self) -> None:
        """The socket is back: the link takes what waited, every share is looked at again."""
        if self.link is not None:
            await self.link.ready(fresh=False)  # the same connection takes what waited
        for share in self._book.mine():
            await self.reconcile(share, None)

    async def _ask(self, share: ShareView) -> None:
        if self._backend.unavailable:  # nothing to ask: this screen cannot be shared
            self._ui.say(self._backend.unavailable)
            await self._send(ShareStop(share.id, "screen_unavailable"))
            return
        allowed = await self._ui.ask(
            f"share:{share.id}",
            f"{share.viewer_name or 'Your technician'} asks to see your screen "
            f"({self._backend.monitor_text(self._settings.monitor)}).")
        current = self._book.get(share.id)
        if current is None or current.state is not ShareState.REQUESTED:
            return
        await self._send(ShareConsent(share.id, allowed))
        if not allowed:
            self._ui.say("Your screen is not shared.")

    async def _start_link(self, share: ShareView) -> None:
        """Open the screen (on Wayland the desktop may ask first), then send it; on a task
        of its own, so that the session's frames go on meanwhile."""
        await self.drop_link(None)

        def ended() -> None:
            self._tasks.spawn(self._desktop_ended(share.id))
        try:
            source, token = await self._backend.open_source(
                self._settings.monitor, self._settings.stamp, self._tokens.restore_token,
                on_ended=ended)
        except Exception as exc:  # CaptureError, or anything the desktop's libraries raise
            self._opening = None
            if not isinstance(exc, CaptureError):
                log.exception("the screen could not be opened")
            self._ui.say(f"Your screen cannot be captured: {exc}")
            await self._send(ShareStop(share.id, getattr(exc, "reason", "capture_failed")))
            return
        self._opening = None
        if token and token != self._tokens.restore_token:
            self._tokens.keep_restore_token(token)
        share = self._book.get(share.id) or share
        if not share.state.live or share.state is ShareState.REQUESTED or \
                (self.link is not None and self.link.share_id == share.id):
            source.close()  # stopped while the screen was being opened
            return
        await self.drop_link(None)
        control = ControlSession(self._backend.injector(), source.monitor)
        link = SharerPeer(share.id, self._send, source, self._settings.limits(), control,
                          self._settings.codec,
                          on_channel=lambda m: answer_clipboard(m, control.granted, self._ui))
        self.link = link
        self.control.attach(Controlled(share.id, control, link.send_channel))
        link.paused = share.state is ShareState.PAUSED
        if share.state in (ShareState.ACTIVE, ShareState.PAUSED):
            link.offer_on_config = True  # the viewer will not ask: offer at once
            self._ui.say("Resuming screen sharing.")
        else:
            await self._send(ShareStart(share.id))
            self._ui.say(f"Your screen is being shared with {share.viewer_name}. Type /quit "
                         "to stop.")
        await link.ready(fresh=True)
        await self.control.reconcile(share)

    async def _desktop_ended(self, share_id: str) -> None:
        """The desktop stopped the screen cast (its own indicator): the share ends."""
        if self.link is not None and self.link.share_id == share_id:
            self._ui.say("Your desktop stopped the screen sharing.")
            await self.drop_link(share_id)
            await self._send(ShareStop(share_id, "stopped"))

    async def drop_link(self, share_id: str | None) -> None:
        """Stop sending (the share `share_id`, or whichever is sent)."""
        link = self.link
        if link is None or (share_id is not None and link.share_id != share_id):
            return
        self.control.detach()
        self.link = None
        await link.close()
        link.source.close()
