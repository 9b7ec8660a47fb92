"""The screen as an aiortc video track: mss grabs one monitor, on a thread of its own, and
each grab becomes an `av.VideoFrame` (scaled to the width the adapter allows, in the
yuv420p the encoders want), paced to the adapter's frame rate.

The conversion happens on the capture thread, so that it runs beside the encoder (which
aiortc runs on another thread) instead of after it. A frame whose pixels did not change
since the last one is not converted again: screens are mostly still.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import fractions
import logging
import time
from typing import Any, Protocol

import av
from aiortc import MediaStreamTrack

from .adapt import Adapter, Limits, Sample

log = logging.getLogger(__name__)
CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)
STAMP_BITS = 48
STAMP_CELL = 16  # pixels per bit of the benchmark's timestamp


class CaptureError(RuntimeError):
    """The screen cannot be captured (no display, a monitor that does not exist, the
    person refused the desktop's own question); `reason` goes to the technician with the
    share's end (`share.stop`)."""

    def __init__(self, message: str, *, reason: str = "capture_failed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class Monitor:
    """One monitor in the virtual screen's coordinates, as mss numbers them (1 = first)."""

    index: int
    left: int
    top: int
    width: int
    height: int

    def contains(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height


def list_monitors() -> list[Monitor]:
    """Every monitor; index 0 is all of them together."""
    import mss

    try:
        with mss.MSS() as grabber:
            return [Monitor(i, m["left"], m["top"], m["width"], m["height"])
                    for i, m in enumerate(grabber.monitors)]
    except Exception as exc:  # mss raises its own errors and plain ones for a bad DISPLAY
        raise CaptureError(f"cannot reach the screen: {exc}") from exc


class FrameSource(Protocol):
    """Where the screen's pictures come from (mss on X11, Windows and macOS; PipeWire on
    Wayland, agent/wayland/)."""

    monitor: Monitor

    async def frame(self, width: int) -> av.VideoFrame: ...

    async def news(self, until: float, gap: float) -> bool:
        """Wait for a picture `frame` has not handed out yet, coming at least `gap` seconds
        after the last new one it did, or until `until` (time.monotonic()), whichever is
        first; True when such a picture came. A source that cannot tell waits and says
        False."""
        ...

    def close(self) -> None: ...


class ScreenSource:
    """Grabs one monitor on a dedicated thread; mss objects stay on that thread."""

    def __init__(self, monitor: int = 1, *, stamp: bool = False) -> None:
        monitors = list_monitors()
        if not 0 <= monitor < len(monitors):
            raise CaptureError(f"there is no monitor {monitor}: this computer has "
                               f"{len(monitors) - 1} (use --list-monitors)")
        self.monitor = monitors[monitor]
        self.stamp = stamp  # draw the capture time into the frame (benchmarks)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="capture")
        self._grabber: Any = None
        self._last_raw: bytes | None = None
        self._last_frame: av.VideoFrame | None = None
        self._last_width = 0

    async def news(self, until: float, gap: float) -> bool:
        """mss cannot tell when the screen changes: every frame is grabbed at its time."""
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        return False

    async def frame(self, width: int) -> av.VideoFrame:
        """The screen now, as a yuv420p frame at most `width` pixels wide."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._grab, width)

    def _grab(self, width: int) -> av.VideoFrame:
        import mss

        if self._grabber is None:
            self._grabber = mss.MSS()
        m = self.monitor
        shot = self._grabber.grab({"left": m.left, "top": m.top, "width": m.width,
                                   "height": m.height})
        raw = bytes(shot.raw)
        captured_at = time.time()
        if self.stamp:
            raw = draw_stamp(raw, shot.width, int(captured_at * 1000))
        if raw == self._last_raw and width == self._last_width and self._last_frame is not None:
            return self._last_frame
        frame = to_video_frame(raw, shot.width, shot.height, "bgra", width)
        self._last_raw, self._last_frame, self._last_width = raw, frame, width
        return frame

    def close(self) -> None:
        def release() -> None:
            if self._grabber is not None:
                self._grabber.close()
                self._grabber = None
        try:
            self._pool.submit(release).result(timeout=5)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self._pool.shutdown(wait=False, cancel_futures=True)


def to_video_frame(raw: bytes, width: int, height: int, pixel_format: str, max_width: int
                   ) -> av.VideoFrame:
    """Packed 4-byte pixels (`bgra` from mss, `bgr0` from PipeWire) as a yuv420p frame at
    most `max_width` wide. Rows in `raw` may be padded: its stride is len(raw) // height."""
    source = av.VideoFrame(width, height, pixel_format)
    plane = source.planes[0]
    row, stride = width * 4, len(raw) // height
    if plane.line_size == stride:
        plane.update(raw if len(raw) == stride * height else raw[:stride * height])
    else:  # a different row stride: copy row by row
        padded = bytearray(plane.line_size * height)
        for y in range(height):
            padded[y * plane.line_size:y * plane.line_size + row] = raw[y * stride:y * stride + row]
        plane.update(bytes(padded))
    out_w, out_h = scaled(width, height, max_width)
    return source.reformat(width=out_w, height=out_h, format="yuv420p")


def scaled(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The frame size for at most `max_width`, keeping the aspect ratio; even numbers, as
    yuv420p needs."""
    if width > max_width:
        height = round(height * max_width / width)
        width = max_width
    return max(2, width - width % 2), max(2, height - height % 2)


def draw_stamp(raw: bytes, width: int, millis: int) -> bytes:
    """The benchmark's timestamp: 48 bits, most significant first, as black or white
    cells of STAMP_CELL pixels in the top row of the picture (read back in the browser)."""
    buffer = bytearray(raw)
    row = width * 4
    white, black = b"\xff" * (STAMP_CELL * 4), b"\x00\x00\x00\xff" * STAMP_CELL
    for bit in range(STAMP_BITS):
        cell = white if (millis >> (STAMP_BITS - 1 - bit)) & 1 else black
        x = bit * STAMP_CELL * 4
        for y in range(STAMP_CELL):
            buffer[y * row + x:y * row + x + len(cell)] = cell
    return bytes(buffer)


class ScreenTrack(MediaStreamTrack):
    """A video track of the screen, paced and sized by an Adapter.

    The next frame is captured (on the capture thread, at its scheduled time) while the
    encoder still works on the current one: aiortc asks for a frame only after encoding
    the last, so capturing on demand would put capture and encoding end to end.

    A source that knows when the screen changed (a Wayland screen cast) has a new picture
    sent as soon as it comes, at most one a frame period, instead of at the next tick:
    on a still screen, a typed key's echo goes out without waiting up to a frame period
    (bench/agent_wayland.py's key to frame).
    """

    kind = "video"

    def __init__(self, source: FrameSource, limits: Limits, *, window: float = 2.0) -> None:
        super().__init__()
        self.source = source
        self.adapter = Adapter(limits, source.monitor.width)
        self.window = window
        self.loss = 0.0  # the viewer's last reported loss fraction; set by the peer
        self.frames = 0
        self._start: float | None = None
        self._next = 0.0
        self._ahead: asyncio.Task[tuple[av.VideoFrame, float, bool]] | None = None
        self._window_start = 0.0
        self._window_cpu = 0.0
        self._window_frames = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            from aiortc.mediastreams import MediaStreamError

            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = self._next = self._window_start = now
            self._window_cpu = time.process_time()
        if self._ahead is None:
            self._ahead = asyncio.ensure_future(self._capture_at(self._next))
        frame, captured, early = await self._ahead
        # The next one: one frame period later (after a new picture sent early: after
        # that one), but never more than a second behind (after a pause or a slow spell,
        # do not rush to catch up).
        period = 1.0 / self.adapter.fps
        self._next = (captured + period if early else
                      max(self._next + period, time.monotonic() - 1.0))
        self._ahead = asyncio.ensure_future(self._capture_at(self._next))
        frame.pts = int((captured - self._start) * CLOCK_RATE)
        frame.time_base = TIME_BASE
        self.frames += 1
        self._window_frames += 1
        self._review()
        return frame

    async def _capture_at(self, when: float) -> tuple[av.VideoFrame, float, bool]:
        early = await self.source.news(when, 1.0 / self.adapter.fps)
        captured = time.monotonic()
        return await self.source.frame(self.adapter.width), captured, early

    def stop(self) -> None:
        super().stop()
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None

    def _review(self) -> None:
        now = time.monotonic()
        if now - self._window_start < self.window:
            return
        cpu = time.process_time()
        sample = Sample(now - self._window_start, cpu - self._window_cpu, self._window_frames,
                        self.loss)
        if self.adapter.observe(sample):
            log.info("sending %.0f fps at %d px wide (%s)", self.adapter.fps,
                     self.adapter.width, self.adapter.reason)
        self._window_start, self._window_cpu, self._window_frames = now, cpu, 0
