"""Smoke test of an installed broker: `make test` runs it after pytest, as CI does.

Every test runs an editable install, which reads templates and static files from the
source tree; a file the package leaves out shows only in a real install. So this builds
the wheel from the tracked files, installs it with its dependencies into a fresh virtual
environment, checks that every file of the packages arrived, and walks a user's journey
through `supportbroker serve` from that environment: the admin it prints logs in, sessions
start, end users join by key, link and agent link, everybody chats, a file goes up and
comes down, and both transcripts are exported.

    python -m tests.smoke_installed [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from yarl import URL

from tests.hardening_support import Broker, journey

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("broker", "web", "agent")
STARTUP_SECONDS = 60


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd,  # noqa: S603 - our own
                          env=_clean_env(), capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH (the source tree must not be importable) and no BROKER_* settings."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith("BROKER_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def _package_files() -> list[str]:
    """The files of the packages in the source tree (tracked, or new and not ignored)."""
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard", "--",
                  *PACKAGES, cwd=ROOT)
    return sorted(name for name in listed.splitlines()
                  if "__pycache__" not in name and (ROOT / name).is_file())


def build_and_install(work: Path) -> Path:
    """The wheel of the source tree's package files, installed into work/venv."""
    source = work / "source"
    for name in [*_package_files(), "setup.cfg", "pyproject.toml", "README.md"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         work / "dist", source)
    wheel = next((work / "dist").glob("supportbroker-*.whl"))
    # The environment gets no pip of its own: this one's installs into it, and skips
    # compiling every module of the dependencies ahead of time (a minute on a busy CI box).
    _run(sys.executable, "-m", "venv", "--without-pip", work / "venv")
    _run(sys.executable, "-m", "pip", "--python", work / "venv" / "bin" / "python", "install",
         "--quiet", "--no-compile", wheel)
    return work / "venv"


def check_files(venv: Path, work: Path) -> None:
    """Every file of the packages is in the installed environment."""
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import web, pathlib; "
                     "print(pathlib.Path(web.__file__).parent.parent)", cwd=work).strip())
    if ROOT in site.parents or site == ROOT:
        sys.exit(f"the installed broker was imported from the source tree ({site})")
    missing = [name for name in _package_files() if not (site / name).is_file()]
    if missing:
        sys.exit("the package leaves out (see setup.cfg, [options.package_data]):\n  "
                 + "\n  ".join(missing))
    print(f"all {len(_package_files())} package files installed in {site}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def serve_and_walk(venv: Path, work: Path) -> None:
    port = _free_port()
    env = _clean_env(BROKER_DATA_DIR=str(work / "data"), BROKER_PORT=str(port),
                     BROKER_TRANSFER_MIN_FREE_BYTES="0")
    supportbroker = str(venv / "bin" / "supportbroker")
    process = await asyncio.create_subprocess_exec(
        supportbroker, "serve", cwd=work, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not any("password:" in line for line in output):
                line = (await process.stdout.readline()).decode()
                if not line:
                    sys.exit("supportbroker serve stopped:\n" + "".join(output))
                output.append(line)
        password = next(line for line in output if "password:" in line).split()[-1]
        token = await asyncio.create_subprocess_exec(
            supportbroker, "token", "create", "--email", "admin@localhost", cwd=work,
            env=env, stdout=asyncio.subprocess.PIPE)
        api_token = (await token.communicate())[0].decode().strip()
        drain = asyncio.create_task(_collect(process.stdout, output))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            broker = Broker(http, URL(f"http://127.0.0.1:{port}/"))
            async with asyncio.timeout(STARTUP_SECONDS):
                while True:
                    try:
                        await broker.request("GET", "/healthz", status=200)
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
            try:
                await journey(broker, "admin@localhost", api_token, password)
                await _static_files(broker)
            except AssertionError:
                await asyncio.sleep(0.5)  # the broker's log of what failed
                print("".join(output), file=sys.stderr)
                raise
        drain.cancel()
    finally:
        process.terminate()
        await process.wait()


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


async def _static_files(broker: Broker) -> None:
    """Every static file the pages name is served (with its version tag)."""
    import re

    seen = set()
    for path in ("/login", "/join"):
        _, _, page = await broker.request("GET", path, status=200)
        seen |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.decode()))
    assert seen, "the pages name no static files"
    for path in sorted(seen):
        await broker.request("GET", path, status=200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work in DIR and leave it there")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sb-installed-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        venv = build_and_install(work)
        print(f"wheel built and installed in {time.monotonic() - started:.0f} s")
        check_files(venv, work)
        asyncio.run(serve_and_walk(venv, work))
    print(f"installed broker: smoke journey passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
