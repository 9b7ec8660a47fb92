"""A screen cast's PipeWire stream as the agent's frame source: GStreamer's `pipewiresrc`
into an `appsink` (BGRx), through the system's PyGObject (`python3-gi`; PyGObject has no
wheels, so the agent imports `gi` only here, when the Wayland backend is chosen).

The compositor sends a frame only when the screen changed: on a still screen nothing comes,
and the source hands out its last picture again, so the video keeps its frame rate.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any

import av

from ..capture import CaptureError, Monitor, draw_stamp, to_video_frame
from .desktop import Cast

FIRST_FRAME_SECONDS = 20.0  # a loaded machine: the first picture can take seconds
RECONNECT_SECONDS = 4.0
log = logging.getLogger(__name__)


def load_gstreamer() -> Any:
    """GStreamer through python3-gi, or CaptureError saying what to install."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        from gi.repository import Gst, GstApp  # noqa: F401 - GstApp types the appsink
    except (ImportError, ValueError) as exc:
        raise CaptureError(
            "the Wayland screen needs GStreamer for Python (Debian/Ubuntu: apt install "
            "python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 "
            "gstreamer1.0-pipewire; install the agent with system site packages, see "
            f"docs/agent.md): {exc}", reason="capture_failed") from exc
    Gst.init(None)
    if Gst.ElementFactory.find("pipewiresrc") is None:
        raise CaptureError("GStreamer's PipeWire plugin is missing (apt install "
                           "gstreamer1.0-pipewire)", reason="capture_failed")
    return Gst


class PipeWireSource:
    """Frames of one screen-cast stream, pulled and converted on a thread of its own."""

    def __init__(self, cast: Cast, *, stamp: bool = False,
                 on_close: Callable[[], None] | None = None) -> None:
        self.cast = cast
        self.stamp = stamp
        self._on_close = on_close
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pipewire")
        self._pipeline: Any = None
        self._gst: Any = None
        self._sink: Any = None
        self._last_frame: av.VideoFrame | None = None
        self._last_width = 0
        self._last_raw: bytes | None = None
        self._size = (0, 0)
        self.samples = 0  # pictures the compositor delivered (the rest are repeats)
        self._fresh_at = float("-inf")  # when frame() last handed out a new picture
        self.monitor = Monitor(1, 0, 0, cast.width, cast.height)

    @classmethod
    async def open(cls, cast: Cast, *, stamp: bool = False,
                   on_close: Callable[[], None] | None = None) -> PipeWireSource:
        """Started, with its first picture (which gives the monitor's size)."""
        source = cls(cast, stamp=stamp, on_close=on_close)
        try:
            await asyncio.get_running_loop().run_in_executor(source._pool, source._start)
        except BaseException:
            source.close()
            raise
        return source

    def _start(self) -> None:
        gst = self._gst = load_gstreamer()
        fd = f"fd={self.cast.fd} " if self.cast.fd is not None else ""
        self._pipeline = gst.parse_launch(
            f"pipewiresrc {fd}path={self.cast.node_id} do-timestamp=true ! videoconvert ! "
            "video/x-raw,format=BGRx ! appsink name=sink max-buffers=1 drop=true sync=false")
        self._sink = self._pipeline.get_by_name("sink")
        self._pipeline.set_state(gst.State.PLAYING)
        start = time.monotonic()
        connected = start
        failures = 0
        while not self._pull(250_000_000):
            failure = self._bus_error(gst)
            if failure is not None:
                failures += 1
                if failures > 2:
                    raise CaptureError(f"the screen cast failed: {failure}",
                                       reason="capture_failed")
            now = time.monotonic()
            if now - start > FIRST_FRAME_SECONDS:
                raise CaptureError("the desktop's screen cast sent no picture",
                                   reason="capture_failed")
            if failure is not None or now - connected > RECONNECT_SECONDS:
                # A still screen sends nothing after a first picture that got lost, and
                # the first format negotiation with the compositor failed now and then
                # (both seen under load): connecting again gets a picture.
                log.info("no picture (%s): connecting to the stream again",
                         failure or f"none after {now - connected:.0f} s")
                self._pipeline.set_state(gst.State.NULL)
                self._pipeline.set_state(gst.State.PLAYING)
                connected = now
        width, height = self._size
        self.monitor = Monitor(1, 0, 0, width, height)

    def _bus_error(self, gst: Any) -> str | None:
        message = self._pipeline.get_bus().pop_filtered(gst.MessageType.ERROR)
        if message is None:
            return None
        error, debug = message.parse_error()
        return f"{error.message} ({debug})"

    def _pull(self, timeout_ns: int) -> bool:
        """Take the newest picture, if one came; True when it did."""
        sample = self._sink.try_pull_sample(timeout_ns)
        if sample is None:
            return False
        caps = sample.get_caps().get_structure(0)
        width, height = caps.get_value("width"), caps.get_value("height")
        buffer = sample.get_buffer()
        ok, info = buffer.map(self._gst.MapFlags.READ)
        if not ok:
            return False
        try:
            raw = bytes(info.data)
        finally:
            buffer.unmap(info)
        self._size = (width, height)
        self._last_raw = raw
        self._last_frame = None
        self.samples += 1
        return True

    async def news(self, until: float, gap: float) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._news, until, gap)

    def _news(self, until: float, gap: float) -> bool:
        time.sleep(max(0.0, min(until, self._fresh_at + gap) - time.monotonic()))
        remaining = until - time.monotonic()
        if remaining <= 0:
            return False
        # A picture frame() has not handed out yet (pulled meanwhile), or the next one.
        return self._last_frame is None or self._pull(int(remaining * 1e9))

    async def frame(self, width: int) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._frame, width)

    def _frame(self, width: int) -> av.VideoFrame:
        self._pull(0)
        if self._last_frame is None:
            self._fresh_at = time.monotonic()
        elif width == self._last_width and not self.stamp:
            return self._last_frame  # a still screen: the same picture again
        assert self._last_raw is not None
        raw = self._last_raw
        w, h = self._size
        if self.stamp:
            raw = draw_stamp(raw, len(raw) // h // 4, int(time.time() * 1000))
        frame = to_video_frame(raw, w, h, "bgr0", width)
        self._last_frame, self._last_width = frame, width
        return frame

    def close(self) -> None:
        def stop() -> None:
            if self._pipeline is not None:
                self._pipeline.set_state(self._gst.State.NULL)
                self._pipeline = None
        try:
            self._pool.submit(stop).result(timeout=5)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
