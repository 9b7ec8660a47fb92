"""The agent on Wayland (docs/agent.md, "Wayland"): the screen through a screen cast the
desktop hands out (PipeWire, read with GStreamer), input through a remote-desktop session;
both from the desktop's portal or, with `--wayland-api mutter`, from GNOME's compositor
directly. Imported only in a Wayland session: it needs dbus-fast and the system's
python3-gi."""

from __future__ import annotations

import os


def wayland_session() -> bool:
    """Whether this process runs in a Wayland session (not X11, not a text console)."""
    return bool(os.environ.get("WAYLAND_DISPLAY")) or \
        os.environ.get("XDG_SESSION_TYPE", "").lower() == "wayland"
