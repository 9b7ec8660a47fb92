"""``supportbroker-agent``: join a support session as this computer, or resume the one it
was in. See docs/agent.md.

    supportbroker-agent <join link, agent link or key> [options]
    supportbroker-agent --resume [options]
    supportbroker-agent --send FILE [FILE ...]        (into the stored session)
    supportbroker-agent --list-monitors | --remove-autostart
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from . import __version__, autostart
from .app import Agent
from .hotkey import DEFAULT_HOTKEY
from .settings import AgentSettings, ExitCode
from .state import ResumeState, StateError, StateStore
from .target import JoinTarget, TargetError, parse_target
from .ui import UI, TerminalUI, TkUI, tk_available

log = logging.getLogger("agent")


class JoinRefused(Exception):
    """The broker would not let the agent in; the message is for people."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supportbroker-agent",
        description="Show this computer's screen to your support technician and, if you "
                    "allow it, let them control mouse and keyboard.")
    parser.add_argument("target", nargs="?",
                        help="the join link, the agent link from the chat page, or the key")
    parser.add_argument("--broker", default=os.environ.get("SUPPORTBROKER_URL"),
                        help="the support service's address, for a typed key "
                             "(default: $SUPPORTBROKER_URL)")
    parser.add_argument("--name", help="your name, shown to the technician (when joining "
                                       "with a key or join link)")
    parser.add_argument("--resume", action="store_true",
                        help="rejoin the session this computer was in (after a restart)")
    parser.add_argument("--monitor", type=int, default=1,
                        help="which monitor to share: 1 the first (default), 0 all of them")
    parser.add_argument("--list-monitors", action="store_true", help="list monitors and exit")
    parser.add_argument("--max-fps", type=float, default=30.0,
                        help="most frames per second to send (default 30)")
    parser.add_argument("--max-width", type=int, default=1920,
                        help="widest picture to send, in pixels (default 1920)")
    parser.add_argument("--codec", choices=("vp8", "h264"), default="vp8",
                        help="video codec (default vp8)")
    parser.add_argument("--ui", choices=("auto", "terminal", "tk"), default="auto",
                        help="where questions are asked: windows (tk) when possible, or the "
                             "terminal")
    parser.add_argument("--hotkey", default=DEFAULT_HOTKEY,
                        help=f"key combination that ends remote control (default "
                             f"{DEFAULT_HOTKEY})")
    parser.add_argument("--download-dir", type=Path,
                        default=Path.home() / "Downloads" / "supportbroker",
                        help="where files your technician sends are saved")
    parser.add_argument("--no-downloads", action="store_true",
                        help="do not save files your technician sends")
    parser.add_argument("--autostart", action="store_true",
                        help="come back by itself after a restart (until the session ends)")
    parser.add_argument("--remove-autostart", action="store_true",
                        help="remove the autostart entry and exit")
    parser.add_argument("--send", nargs="+", type=Path, metavar="FILE",
                        help="send files to your technician in the stored session, and exit")
    parser.add_argument("--state-file", type=Path,
                        help="where the resume credential is kept (default: your config "
                             "directory)")
    parser.add_argument("--wayland-api", choices=("auto", "portal", "mutter"), default="auto",
                        help="on Wayland: the desktop's portal (auto: in a Wayland session), "
                             "or GNOME's compositor directly, without its dialog (mutter)")
    parser.add_argument("--stamp", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.list_monitors:
        return _list_monitors()
    if args.remove_autostart and not (args.target or args.resume):
        print("Autostart entry removed." if autostart.remove() else "There was none.")
        return ExitCode.DONE
    store = StateStore(args.state_file)
    try:
        settings = AgentSettings(
            monitor=args.monitor, max_fps=args.max_fps, max_width=args.max_width,
            codec=args.codec, hotkey=args.hotkey,
            download_dir=None if args.no_downloads else args.download_dir,
            autostart=args.autostart, stamp=args.stamp)
    except ValueError as exc:
        parser.error(str(exc))
    if args.send:
        return asyncio.run(_send_files(store, args.send))
    if not args.resume and not args.target:
        parser.error("give the join link, the agent link or the key, or --resume")
    target = None
    if not args.resume:
        try:
            target = parse_target(args.target, args.broker)
        except TargetError as exc:
            print(f"supportbroker-agent: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    try:
        return asyncio.run(_run(settings, store, target, args))
    except KeyboardInterrupt:
        return ExitCode.DONE


async def _run(settings: AgentSettings, store: StateStore, target: JoinTarget | None,
               args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=20)
                                     ) as http:
        if target is None:
            try:
                state = store.load()
            except StateError as exc:
                print(f"Cannot resume: {exc}", file=sys.stderr)
                return ExitCode.REFUSED
            if state is None:
                print("Cannot resume: this computer is not in a support session (nothing "
                      f"stored in {store.path}).", file=sys.stderr)
                if autostart.installed():
                    autostart.remove()
                return ExitCode.REFUSED
        else:
            try:
                state = await join(http, target, args.name)
            except JoinRefused as exc:
                print(f"Cannot join: {exc}", file=sys.stderr)
                return ExitCode.CREDENTIAL
            except aiohttp.ClientError as exc:
                print(f"Cannot reach the support service at {target.base_url}: {exc}",
                      file=sys.stderr)
                return ExitCode.UNREACHABLE
            store.save(state)
        if settings.autostart:
            extra = [] if args.state_file is None else ["--state-file", str(args.state_file)]
            extra += _carried_options(args)
            print(f"The agent will come back after a restart ({autostart.install(extra)}).")
        ui = choose_ui(args.ui)
        from .backend import choose_backend
        from .control import PynputInjector

        backend = choose_backend(args.wayland_api, PynputInjector, ui.say)
        agent = Agent(settings, state, store, ui, http, backend)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers
            loop.add_signal_handler(signal.SIGINT, agent.quit)
        return await agent.run()


def _carried_options(args: argparse.Namespace) -> list[str]:
    """The chosen options an autostarted agent keeps."""
    out = ["--monitor", str(args.monitor), "--max-fps", str(args.max_fps), "--max-width",
           str(args.max_width), "--codec", args.codec, "--hotkey", args.hotkey,
           "--wayland-api", args.wayland_api]
    if args.no_downloads:
        out.append("--no-downloads")
    else:
        out += ["--download-dir", str(args.download_dir)]
    return out


def choose_ui(choice: str) -> UI:
    if choice == "tk" or (choice == "auto" and _has_display() and tk_available()):
        return TkUI()
    return TerminalUI()


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


async def join(http: aiohttp.ClientSession, target: JoinTarget, name: str | None
               ) -> ResumeState:
    """Redeem the key, join link or agent link; the resume credential it gives."""
    # Always the agent's own door: the participant it gets is marked as the agent, the only
    # kind that may say agent.hello.
    body: dict[str, Any]
    if target.agent_link is not None:
        body = {"link": target.agent_link}
    else:
        body = {"key": target.key} if target.key is not None else {"token": target.token}
        if name:
            body["name"] = name
    async with http.post(f"{target.base_url}/api/v1/agent/join", json=body) as answer:
        try:
            data: Any = await answer.json(content_type=None)
        except ValueError:
            data = {}
        if answer.status != 200 or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else None
            raise JoinRefused(message or f"the support service answered {answer.status}")
    return ResumeState(target.base_url, data["session_id"], data["participant_token"],
                       name=data.get("name", ""), technician_name=data.get(
                           "technician_name", ""))


async def _send_files(store: StateStore, paths: list[Path]) -> int:
    from . import transfer

    try:
        state = store.load()
    except StateError as exc:
        print(f"supportbroker-agent: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    if state is None:
        print("supportbroker-agent: this computer is not in a support session.",
              file=sys.stderr)
        return ExitCode.REFUSED
    failed = 0
    async with aiohttp.ClientSession() as http:
        for path in paths:
            try:
                await transfer.upload(http, state.base_url, state.session_id,
                                      state.participant_token, path)
                print(f"Sent {path.name}.")
            except (OSError, transfer.TransferError, aiohttp.ClientError) as exc:
                print(f"Could not send {path}: {exc}", file=sys.stderr)
                failed += 1
    return ExitCode.FAILED if failed else ExitCode.DONE


def _list_monitors() -> int:
    from .capture import CaptureError, list_monitors

    try:
        monitors = list_monitors()
    except CaptureError as exc:
        print(f"supportbroker-agent: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    for m in monitors:
        label = "all monitors" if m.index == 0 else f"monitor {m.index}"
        print(f"{m.index}: {label}, {m.width}x{m.height} at ({m.left}, {m.top})")
    return ExitCode.DONE


__all__ = ["build_parser", "join", "main"]
