"""The native agent on Wayland: frames per second, the agent's CPU and key-to-frame latency,
at 1280x720 and 1920x1080 (VP8), under a headless GNOME compositor (mutter) with PipeWire
(tests/wayland_support.py), the agent using mutter's ScreenCast and RemoteDesktop APIs
(`--wayland-api mutter`).

- Frames per second: frames the technician's side decoded (an aiortc viewer in this
  process, not the dashboard: the figures of bench/agent.py's X11 runs are the browser's)
  over the measuring window, while a terminal on the screen prints several times a second.
- CPU: the agent process's user + system time over the window, in % of one core.
- Key to frame: the technician's key leaves on the control channel; the first decoded frame
  in which the terminal's echo of it shows (more than 20 pixels of the text area changed
  strongly) ends the measurement. Everything between counts: the data channel, the agent,
  D-Bus, mutter, the terminal, the screen cast, the agent (which sends a new picture as
  it comes, at most one a frame period), VP8 and the decoder. Each key is sent at a random
  point of the agent's frame period.

Runs in a network namespace of its own with only loopback (tests/netns.py), so as root.

    .venv/bin/python bench/agent.py --wayland [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c

from tests.agent_support import Viewer, agent_running, live_broker_with_clock
from tests.test_agent import technician_session, viewer_for
from tests.wayland_support import headless_mutter

SIZES = [(1280, 720), (1920, 1080)]
BUSY = """#!/bin/sh
while [ ! -e {stop} ]; do date +%T.%N; ls -l /usr/bin | head -30; sleep 0.2; done
clear
exec cat
"""


def changed(before: Any, after: Any, box: tuple[int, int, int, int]) -> int:
    """How many luma pixels in `box` (x, y, w, h) differ by more than 64."""
    x0, y0, w, h = box
    a, b = before.planes[0], after.planes[0]
    da, db = bytes(a), bytes(b)
    count = 0
    for y in range(y0, y0 + h):
        ra = da[y * a.line_size + x0:y * a.line_size + x0 + w]
        rb = db[y * b.line_size + x0:y * b.line_size + x0 + w]
        count += sum(1 for p, q in zip(ra, rb, strict=True) if abs(p - q) > 64)
    return count


async def key_to_frame(viewer: Viewer, keys: int, size: tuple[int, int]) -> list[float]:
    """Milliseconds from each key's send to the first frame showing its echo."""
    box = (0, 0, min(900, size[0]), 120)   # the first lines of the cleared terminal
    out: list[float] = []
    for i in range(keys):
        # A still screen before each key, at a random point of the agent's frame period
        # (a fixed pause would send every key at the same phase of it).
        await asyncio.sleep(0.25 + random.uniform(0, 1 / 30))
        before = viewer.last_frame
        char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        sent = time.monotonic()
        await viewer.control(t="key", k=char, down=True)
        await viewer.control(t="key", k=char, down=False)
        with contextlib.suppress(TimeoutError):   # not seen in 5 s: counted as missing
            async with asyncio.timeout(5):
                while True:
                    frame = viewer.last_frame
                    if frame is not before and changed(before, frame, box) > 20:
                        out.append(1000 * (time.monotonic() - sent))
                        break
                    await asyncio.sleep(0.002)
        if (i + 1) % 40 == 0:                # a new line now and then
            await viewer.control(t="key", k="Enter", down=True)
            await viewer.control(t="key", k="Enter", down=False)
    return sorted(out)


async def one(size: tuple[int, int], cfg: argparse.Namespace, log: Any) -> dict[str, Any]:
    width, height = size
    with tempfile.TemporaryDirectory(prefix="bench-wayland-") as tmp:
        root = Path(tmp)
        stop = root / "stop"
        shell = root / "busy.sh"
        shell.write_text(BUSY.format(stop=stop))
        shell.chmod(0o755)
        async with headless_mutter(size) as desktop:
            await desktop.start_client("weston-terminal", "--maximized", f"--shell={shell}")
            async with live_broker_with_clock(root / "data") as live:
                http, session, token = await technician_session(live)
                viewer = await viewer_for(http, session["session_id"], token, "bench")
                try:
                    async with agent_running(desktop, session["join_url"],  # type: ignore[arg-type]
                                             "--wayland-api", "mutter", "--max-width",
                                             str(width), "--max-fps", "30", "-v",
                                             state_file=root / "state.json") as agent:
                        await viewer.next_event("agent.connected", 30)
                        await viewer.share("share.request", source="agent")
                        await agent.expect("asks to see your screen")
                        await agent.type("y")
                        await viewer.next_event("share.consented")
                        await viewer.share("rtc.ready")
                        await asyncio.wait_for(viewer.got_frame.wait(), 20)
                        await asyncio.sleep(cfg.warmup)
                        frames0, cpu0 = viewer.frames, c.cpu_seconds(agent.process.pid)
                        own0, pressure0 = time.process_time(), c.cpu_pressure_us()
                        t0 = time.monotonic()
                        await asyncio.sleep(cfg.seconds)
                        t1 = time.monotonic()
                        fps = (viewer.frames - frames0) / (t1 - t0)
                        cpu = 100 * (c.cpu_seconds(agent.process.pid) - cpu0) / (t1 - t0)
                        own = 100 * (time.process_time() - own0) / (t1 - t0)
                        # The share of the window in which some task waited for a CPU.
                        contended = (c.cpu_pressure_us() - pressure0) / 1e6 / (t1 - t0)
                        got = (viewer.last_frame.width, viewer.last_frame.height)
                        log(f"  wayland {width}x{height} vp8: {fps:.1f} fps decoded, agent "
                            f"CPU {cpu:.0f}% of a core, frames {got[0]}x{got[1]}; this "
                            f"process (broker, viewer) {own:.0f}%; CPU contended "
                            f"{contended:.0%} of the time, load average "
                            f"{os.getloadavg()[0]:.1f}")
                        for line in agent.output:
                            if "fps at" in line or "ERROR" in line:
                                log(f"  agent: {line}")
                        stop.touch()
                        await viewer.share("control.request")
                        await agent.expect("asks to control")
                        await agent.type("y")
                        await viewer.channel_message("control", 15)
                        await asyncio.sleep(1.0)
                        keys = await key_to_frame(viewer, cfg.keys, got)
                        log(f"  key to frame: p50 {c.percentile(keys, 50):.0f} ms, p95 "
                            f"{c.percentile(keys, 95):.0f} ms ({len(keys)} of {cfg.keys} "
                            "keys seen within 5 s)")
                finally:
                    await viewer.close()
                    await http.close()
    return {"size": f"{width}x{height}", "codec": "vp8", "display": "wayland (mutter)",
            "fps": fps, "agent_cpu_pct": cpu, "key_to_frame_ms": keys,
            "cpu_contended": contended}


async def run(cfg: argparse.Namespace, log: Any) -> list[dict[str, Any]]:
    results = []
    for size in SIZES:
        log(f"wayland {size[0]}x{size[1]} vp8:")
        results.append(await one(size, cfg, log))
    return results


def summary(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"size": r["size"], "codec": "vp8", "display": "wayland",
             "fps": round(r["fps"], 1), "agent_cpu_pct": round(r["agent_cpu_pct"]),
             "key_to_frame_p50_ms": round(c.percentile(r["key_to_frame_ms"], 50)),
             "key_to_frame_p95_ms": round(c.percentile(r["key_to_frame_ms"], 95)),
             "cpu_contended_pct": round(100 * r["cpu_contended"])}
            for r in raw]
