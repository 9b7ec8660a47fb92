"""The resume credential on disk: which broker, which session, and the agent's participant
token, so that the agent rejoins the same session after a reboot or a kill (`--resume`).

The file lives in the user's configuration directory (``$XDG_CONFIG_HOME`` or
``~/.config`` on Linux, ``~/Library/Application Support`` on macOS, ``%APPDATA%`` on
Windows), under ``supportbroker-agent/``, and is readable by its owner only (mode 0600, the
directory 0700): the token lets whoever holds it act as the end user in that one session.
It is written atomically and removed when the session ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker.credentials import is_participant_token

from . import autostart

APP_DIR = "supportbroker-agent"
STATE_FILE = "session.json"
_VERSION = 1


class StateError(Exception):
    """The state file exists but cannot be used (unreadable, damaged, wrong version)."""


def config_dir() -> Path:
    """The user's configuration directory for the agent."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / APP_DIR


@dataclasses.dataclass(frozen=True, slots=True)
class ResumeState:
    """Everything the agent needs to rejoin its session."""

    base_url: str
    session_id: str
    participant_token: str
    name: str = ""
    technician_name: str = ""
    # The last event sequence number this agent acted on (files offered after it are new).
    last_seq: int = 0
    # Wayland: the desktop portal's screen-cast restore token (the same screen again after a
    # restart, without the desktop's dialog); forgotten with the session.
    restore_token: str = ""

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        if not is_participant_token(self.participant_token):
            raise ValueError("participant_token must be a participant token (sbp_...)")
        if not self.session_id or self.last_seq < 0:
            raise ValueError("a session id and a last_seq >= 0 are required")


class StateStore:
    """Reads and writes one ResumeState file, owner-only."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / STATE_FILE

    def load(self) -> ResumeState | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc}") from exc
        self._tighten()
        try:
            data: Any = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                raise StateError(f"{self.path} is not a state file of this agent version")
            fields = {f.name for f in dataclasses.fields(ResumeState)}
            return ResumeState(**{k: v for k, v in data.items() if k in fields})
        except (ValueError, TypeError) as exc:
            raise StateError(f"{self.path} is damaged: {exc}") from exc

    def save(self, state: ResumeState) -> None:
        """Write atomically: a new owner-only file, then rename over the old one."""
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = directory / f".{self.path.name}.{os.getpid()}.tmp"
        data = {"version": _VERSION, **dataclasses.asdict(state)}
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o600)  # an existing file keeps its mode through O_TRUNC
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def _tighten(self) -> None:
        """A state file others can read is made owner-only again (a copy, an umask)."""
        if sys.platform == "win32":
            return
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                os.chmod(self.path, 0o600)
        except OSError:
            pass


class ResumeRecord:
    """This run's resume credential: kept roughly current on disk (its `last_seq` at most
    every 2 s), and forgotten, with the autostart entry, once the session is over here."""

    def __init__(self, state: ResumeState, store: StateStore, autostart_chosen: bool,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self._store = store
        self._autostart = autostart_chosen
        self._now = now
        self._saved_at = 0.0
        self.forgotten = False

    def save(self, last_seq: int, force: bool = False) -> None:
        if self.forgotten:
            return
        now = self._now()
        if not force and now - self._saved_at < 2:
            return
        self._saved_at = now
        state = dataclasses.replace(self.state, last_seq=max(self.state.last_seq, last_seq))
        if state != self.state or force:
            self.state = state
            with contextlib.suppress(OSError):
                self._store.save(state)

    @property
    def restore_token(self) -> str:
        return self.state.restore_token

    def keep_restore_token(self, token: str) -> None:
        """The portal's new restore token (each one is good for one restore only)."""
        self.state = dataclasses.replace(self.state, restore_token=token)
        self.save(0, force=True)

    def forget(self) -> None:
        self.forgotten = True
        self._store.clear()
        if self._autostart or autostart.installed():
            autostart.remove()
