"""An autostart entry that runs ``supportbroker-agent --resume`` when the user logs in, so
the agent comes back after a reboot by itself. It is installed on request (``--autostart``)
and removed again when the session ends, when resuming is refused, or with
``--remove-autostart``.

- Linux and other XDG desktops: ``~/.config/autostart/supportbroker-agent.desktop``
  (``Terminal=true``, so the consent questions have a terminal);
- macOS: ``~/Library/LaunchAgents/org.supportbroker.agent.plist`` (``RunAtLoad``);
- Windows: ``supportbroker-agent.cmd`` in the user's Startup folder.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

NAME = "supportbroker-agent"


def entry_path() -> Path:
    if sys.platform == "win32":
        appdata = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
        return appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup" / (
            NAME + ".cmd")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "LaunchAgents" / "org.supportbroker.agent.plist"
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "autostart" / (NAME + ".desktop")


def command(extra: list[str]) -> list[str]:
    """This very program, resuming: the Python that runs it, so a pipx install works."""
    return [sys.executable, "-m", "agent", "--resume", *extra]


def render(argv: list[str]) -> str:
    if sys.platform == "win32":
        return "@echo off\r\n" + subprocess.list2cmdline(argv) + "\r\n"
    if sys.platform == "darwin":
        items = "".join(f"<string>{_xml(a)}</string>" for a in argv)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC '
                '"-//Apple//DTD PLIST 1.0//EN" '
                '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">'
                "<dict><key>Label</key><string>org.supportbroker.agent</string>"
                f"<key>ProgramArguments</key><array>{items}</array>"
                "<key>RunAtLoad</key><true/></dict></plist>\n")
    exec_line = " ".join(_desktop_quote(a) for a in argv)
    return ("[Desktop Entry]\nType=Application\nName=Support agent (resume)\n"
            "Comment=Rejoins the running support session after a restart\n"
            f"Exec={exec_line}\nTerminal=true\nX-GNOME-Autostart-enabled=true\n"
            "NoDisplay=true\n")


def install(extra: list[str]) -> Path:
    path = entry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(command(extra)), encoding="utf-8")
    return path


def remove() -> bool:
    """Remove the entry; True if there was one."""
    path = entry_path()
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def installed() -> bool:
    return entry_path().exists()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _desktop_quote(arg: str) -> str:
    """The Desktop Entry spec's quoting for Exec (reserved characters in double quotes)."""
    if arg and all(c.isalnum() or c in "-_./=:+,@" for c in arg):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return '"' + escaped.replace("%", "%%") + '"' if arg else shlex.quote(arg)
