"""The system clipboard, as text, through the platform's own tools: ``xclip`` or ``xsel``
on X11, ``wl-copy``/``wl-paste`` on Wayland, ``pbcopy``/``pbpaste`` on macOS, PowerShell's
``Get-Clipboard``/``Set-Clipboard`` on Windows. Each transfer happens only when the
technician asks for it (the control channel's ``clipboard.get`` / ``clipboard.set``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

MAX_CHARS = 64 * 1024


class ClipboardError(RuntimeError):
    """No clipboard tool here, or it failed."""


def _commands() -> tuple[list[str], list[str]]:
    """(read, write) command lines for this desktop."""
    if sys.platform == "darwin":
        return ["pbpaste"], ["pbcopy"]
    if sys.platform == "win32":
        return (["powershell", "-NoProfile", "-Command", "Get-Clipboard -Raw"],
                ["powershell", "-NoProfile", "-Command", "$input | Set-Clipboard"])
    if os.environ.get("WAYLAND_DISPLAY") and shutil.which("wl-paste"):
        return ["wl-paste", "--no-newline"], ["wl-copy"]
    if shutil.which("xclip"):
        return (["xclip", "-selection", "clipboard", "-o"],
                ["xclip", "-selection", "clipboard", "-i"])
    if shutil.which("xsel"):
        return ["xsel", "--clipboard", "--output"], ["xsel", "--clipboard", "--input"]
    raise ClipboardError("no clipboard tool found (install xclip, xsel or wl-clipboard)")


async def read_text(seconds: float = 5) -> str:
    command = _commands()[0]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise ClipboardError(f"{command[0]} did not answer") from exc
    if process.returncode != 0:
        # An empty clipboard is an error for some tools: it is empty text to us.
        if b"target" in err.lower() or b"no selection" in err.lower() or not err:
            return ""
        raise ClipboardError(err.decode(errors="replace").strip()[:200])
    return out.decode("utf-8", errors="replace")[:MAX_CHARS]


async def write_text(text: str, seconds: float = 5) -> None:
    if len(text) > MAX_CHARS:
        raise ClipboardError(f"at most {MAX_CHARS} characters")
    command = _commands()[1]
    # The X11 tools stay in the background to serve the selection: no pipes kept open.
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    assert process.stdin is not None
    process.stdin.write(text.encode())
    await process.stdin.drain()
    process.stdin.close()
    try:
        code = await asyncio.wait_for(process.wait(), seconds)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise ClipboardError(f"{command[0]} did not finish") from exc
    if code != 0:
        raise ClipboardError(f"{command[0]} failed ({code})")
