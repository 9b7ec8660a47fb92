"""What the person starting the agent chose, and the agent's exit statuses."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

from .adapt import Limits
from .hotkey import DEFAULT_HOTKEY


class ExitCode(enum.IntEnum):
    """The agent's exit statuses (docs/agent.md, "Command line")."""

    DONE = 0            # the session ended, or the user quit
    FAILED = 1          # another copy took over, or an error
    USAGE = 2           # not a link or key
    REFUSED = 3         # resuming is refused: the session is over, or nothing is stored
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
        self.limits()

    def limits(self) -> Limits:
        """The frame-rate adapter's bounds: at most what was chosen, at least 5 fps and
        640 pixels (or the chosen maximum, when it is lower)."""
        return Limits(max_fps=self.max_fps, max_width=self.max_width,
                      min_fps=min(5.0, self.max_fps), min_width=min(640, self.max_width))
