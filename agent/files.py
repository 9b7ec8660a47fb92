"""Files and clipboard text between this computer and the technician, each on request.

Files travel over the broker's HTTP file API (agent/transfer.py), never on the control
channel; clipboard text travels on the control channel, only while control is granted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from broker.errors import ProtocolError
from broker.protocol.channel import (
    ChannelMessage,
    Clipboard,
    ClipboardDone,
    ClipboardGet,
    ClipboardSet,
    Refused,
    channel_from_dict,
)

from . import clipboard, transfer
from .state import ResumeState
from .tasks import Tasks
from .ui import UI


class Files:
    """Sends the person's files, and saves (verified) the ones the technician sends."""

    def __init__(self, http: aiohttp.ClientSession, state: ResumeState, ui: UI,
                 download_dir: Path | None, tasks: Tasks) -> None:
        self._http, self._state, self._ui, self._tasks = http, state, ui, tasks
        self._download_dir = download_dir
        # Files offered after this event are new here; a resumed agent also fetches the
        # ones offered while it was away.
        self._after = state.last_seq

    def offered(self, event: dict[str, Any], synced: bool) -> None:
        """A file.offered event: the technician's new files are fetched."""
        author = event.get("author") or {}
        if (author.get("role") == "technician" and self._download_dir is not None
                and (synced or self._after > 0) and event["seq"] > self._after):
            self._tasks.spawn(self._download(event, self._download_dir))

    def send(self, name: str) -> None:
        self._tasks.spawn(self._upload(name))

    async def _upload(self, name: str) -> None:
        path = await asyncio.to_thread(lambda: Path(name).expanduser())
        try:
            await transfer.upload(self._http, self._state.base_url, self._state.session_id,
                                  self._state.participant_token, path)
        except (OSError, transfer.TransferError, aiohttp.ClientError) as exc:
            self._ui.say(f"Could not send {path.name}: {exc}")
            return
        self._ui.say(f"Sent {path.name}.")

    async def _download(self, event: dict[str, Any], directory: Path) -> None:
        url = event["url"]
        url = self._state.base_url + url if url.startswith("/") else url
        try:
            saved = await transfer.download(self._http, url, self._state.participant_token,
                                            event["sha256"], directory, event["name"])
        except (OSError, transfer.TransferError, aiohttp.ClientError) as exc:
            self._ui.say(f"Could not receive {event['name']}: {exc}")
            return
        self._ui.say(f"Your technician sent {event['name']}: saved as {saved} (checked).")


async def answer_clipboard(data: dict[str, Any], granted: bool, ui: UI) -> ChannelMessage:
    """The technician asks for this computer's clipboard text, or sends some (a
    clipboard.get or clipboard.set of the control channel)."""
    if not granted:
        return Refused("not_granted", "The clipboard is shared only under remote control.")
    try:
        message = channel_from_dict(data)
        if isinstance(message, ClipboardGet):
            text = await clipboard.read_text()
            ui.say("Your technician copied the text in your clipboard.")
            return Clipboard(text)
        if isinstance(message, ClipboardSet):
            await clipboard.write_text(message.text)
            ui.say("Your technician put text into your clipboard.")
            return ClipboardDone()
    except ProtocolError as exc:
        return Refused(exc.code, str(exc))
    except clipboard.ClipboardError as exc:
        return Refused("clipboard", str(exc))
    return Refused("bad_event", "unknown clipboard request")
