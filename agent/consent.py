"""Remote control of this computer, as the person at it decides: asked for by the
technician, allowed (or not) here, on while both say so, and off at once when the person
takes it back (the bar's button, the hotkey, `/stop`).

Consent belongs to this run of the agent: control the broker says is granted, but that
nobody allowed in this process (an earlier run did, before a restart), is ended at once.

Taking control back wins at any moment. Between the person's "yes" and the broker's
`control.granted` there is a round trip; a stop in it must not be lost: an answer not sent
yet is sent as "no", a consent already sent is followed by `control.stop`, and the
`control.granted` that still arrives for it switches nothing on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from broker.protocol.channel import ChannelMessage, Control
from broker.protocol.rtc import ControlConsent, ControlState, ControlStop

from .connection import Send
from .control import ControlSession, InputUnavailable
from .shares import ShareBook, ShareView
from .tasks import Tasks
from .ui import UI


@dataclasses.dataclass(frozen=True, slots=True)
class Controlled:
    """The share being sent: its input (injected only while granted) and its channel to
    the technician's page."""

    share_id: str
    session: ControlSession
    tell: Callable[[ChannelMessage], None]


class RemoteControl:
    """Who may control this computer, and the questions asked about it."""

    def __init__(self, ui: UI, send: Send, book: ShareBook, tasks: Tasks,
                 hotkey_text: str) -> None:
        self._ui, self._send, self._book, self._tasks = ui, send, book, tasks
        self.hotkey_text = hotkey_text
        self.target: Controlled | None = None
        self._asking: set[str] = set()   # shares whose control question is open
        self._given: set[str] = set()    # shares the person allowed control of, here
        # Shares whose control this run ended before it was on here (granted to an earlier
        # run, or taken back before the broker confirmed): their control.granted is no news.
        self._ended: set[str] = set()
        self._revocations = 0            # how often the person took control back
        self._opening: set[str] = set()  # shares whose input session is being opened

    def attach(self, target: Controlled) -> None:
        self.target = target

    def detach(self) -> None:
        self.disable()
        self.target = None

    async def reconcile(self, share: ShareView) -> None:
        """Act on the share's control state as the events describe it."""
        if share.control is ControlState.REQUESTED:
            if not share.control_asked and share.id not in self._asking:
                share.control_asked = True
                self._asking.add(share.id)
                self._tasks.spawn(self._ask(share))
            return
        self._ui.withdraw(_key(share.id))
        self._asking.discard(share.id)
        if share.control is ControlState.GRANTED:
            if share.id in self._given:
                self._enable(share)
            elif share.id not in self._ended:
                # Granted to an earlier run of the agent: that consent is not this one's.
                self._ended.add(share.id)
                await self._send(ControlStop(share.id, "agent_restarted"))
            return
        self._given.discard(share.id)
        self.disable()

    def withdraw(self, share: ShareView) -> None:
        """The share ended: its control question, if open, is no longer needed."""
        self._ui.withdraw(_key(share.id))

    async def _ask(self, share: ShareView) -> None:
        revocations = self._revocations
        allowed = await self._ui.ask(
            _key(share.id),
            f"{share.viewer_name or 'Your technician'} asks to control this computer's "
            f"mouse and keyboard. You can stop it at any time with {self.hotkey_text}.")
        self._asking.discard(share.id)
        current = self._book.get(share.id)
        if current is None or current.control is not ControlState.REQUESTED \
                or not current.state.live:
            return
        allowed = allowed and revocations == self._revocations  # a stop since: no
        if allowed:
            self._given.add(share.id)
        if not await self._send(ControlConsent(share.id, allowed)):
            self._given.discard(share.id)

    def _enable(self, share: ShareView) -> None:
        target = self.target
        if target is None or target.share_id != share.id or target.session.granted:
            return
        if target.session.opens_input:
            if share.id not in self._opening:
                self._opening.add(share.id)
                self._tasks.spawn(self._open_input(share, target))
            return
        self._grant(share, target)

    async def _open_input(self, share: ShareView, target: Controlled) -> None:
        """Wayland: the desktop's remote-desktop session first (its own dialog may ask);
        when it does not give input, the technician is told, never left controlling
        nothing."""
        revocations = self._revocations
        try:
            await target.session.open_input(lambda: self.revoke("revoked"))
        except Exception as exc:  # InputUnavailable, or whatever the desktop's bus raised
            self._given.discard(share.id)
            self._ended.add(share.id)
            self._ui.say(f"Remote control is not possible: {exc}.")
            reason = exc.reason if isinstance(exc, InputUnavailable) else "input_failed"
            await self._send(ControlStop(share.id, reason))
            return
        finally:
            self._opening.discard(share.id)
        current = self._book.get(share.id)
        if revocations != self._revocations or self.target is not target or current is None \
                or current.control is not ControlState.GRANTED:
            target.session.close_input()   # taken back or ended while the desktop asked
            return
        self._grant(current, target)

    def _grant(self, share: ShareView, target: Controlled) -> None:
        target.session.grant()
        self._ui.controlled(share.viewer_name or "Your technician", self.hotkey_text)
        target.tell(Control(granted=True))

    def disable(self) -> None:
        target = self.target
        if target is None or not target.session.granted:
            return
        target.session.revoke()
        self._ui.controlled(None, self.hotkey_text)
        target.tell(Control(granted=False))

    def revoke(self, reason: str) -> None:
        """The person at this computer takes control back (hotkey, bar, /stop): at once,
        whether control is on, allowed and on its way, or still being asked about."""
        self._revocations += 1
        self.disable()
        for share_id in list(self._asking):
            self._ui.withdraw(_key(share_id))   # an open question counts as "no"
        for share_id in sorted(self._given):
            self._given.discard(share_id)
            self._ended.add(share_id)
            self._tasks.spawn(self._send(ControlStop(share_id, reason)))


def _key(share_id: str) -> str:
    """The UI's name for the control question about a share."""
    return f"control:{share_id}"
