"""How fast and how large the screen is sent: a small controller that lowers the frame rate,
then the width, when the computer's CPU or the network runs short, and raises them again
when there is room. It only decides; the capture track applies its decisions.

Every `window` seconds the track reports what happened: CPU seconds this process used, the
frames it delivered, and the fraction of packets the viewer reported lost (RTCP). Too much
CPU (over `cpu_budget` of one core), falling behind (fewer than 80 % of the frames asked
for: the encoder or the capture cannot keep up) or loss over 5 % step down; three calm
windows in a row step back up. aiortc's encoder adapts its bit rate to the viewer's
bandwidth estimate (REMB) by itself; this adds what it cannot do: fewer and smaller frames.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The settings the controller stays within."""

    max_fps: float = 30.0
    max_width: int = 1920
    min_fps: float = 5.0
    min_width: int = 640
    cpu_budget: float = 0.9  # of one core, for the whole agent process

    def __post_init__(self) -> None:
        if not 0 < self.min_fps <= self.max_fps <= 120:
            raise ValueError("frame rates must satisfy 0 < min_fps <= max_fps <= 120")
        if not 160 <= self.min_width <= self.max_width:
            raise ValueError("widths must satisfy 160 <= min_width <= max_width")
        if self.cpu_budget <= 0:
            raise ValueError("cpu_budget must be positive")


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """What one window looked like."""

    seconds: float       # wall time the window lasted
    cpu_seconds: float   # CPU time this process used meanwhile (all threads)
    frames: int          # frames delivered to the encoder
    loss: float = 0.0    # fraction of packets lost, as the viewer reported (0..1)


class Adapter:
    """Frame rate and width for the next window, from the last ones."""

    STEP = 0.75
    CALM_WINDOWS = 3

    def __init__(self, limits: Limits, screen_width: int) -> None:
        self.limits = limits
        self.fps = limits.max_fps
        self.width = min(limits.max_width, screen_width)
        self._top_width = self.width
        self._calm = 0
        self.reason = ""  # why the last change was made, for the log

    def observe(self, sample: Sample) -> bool:
        """Take one window's sample; True if fps or width changed."""
        if sample.seconds <= 0:
            return False
        cpu = sample.cpu_seconds / sample.seconds
        achieved = sample.frames / sample.seconds
        short = ""
        if cpu > self.limits.cpu_budget:
            short = f"CPU {cpu:.0%} of a core"
        elif achieved < 0.8 * self.fps:
            short = f"{achieved:.1f} of {self.fps:.0f} fps delivered"
        elif sample.loss > 0.05:
            short = f"{sample.loss:.0%} packet loss"
        if short:
            self._calm = 0
            return self._down(short)
        calm = cpu < 0.6 * self.limits.cpu_budget and sample.loss < 0.01
        self._calm = self._calm + 1 if calm else 0
        if self._calm >= self.CALM_WINDOWS:
            self._calm = 0
            return self._up()
        return False

    def _down(self, why: str) -> bool:
        if self.fps > self.limits.min_fps:
            self.fps = max(self.limits.min_fps, round(self.fps * self.STEP, 1))
        elif self.width > self.limits.min_width:
            self.width = max(self.limits.min_width, int(self.width * self.STEP))
        else:
            return False
        self.reason = why
        return True

    def _up(self) -> bool:
        if self.width < self._top_width:
            self.width = min(self._top_width, int(self.width / self.STEP) + 1)
        elif self.fps < self.limits.max_fps:
            self.fps = min(self.limits.max_fps, round(self.fps / self.STEP, 1))
        else:
            return False
        self.reason = "room to spare"
        return True
