"""coturn (Debian's `turnserver`) on 127.0.0.1 for a test, with its own config file."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from .rtc_support import must_run

REALM = "supportbroker.test"


@dataclasses.dataclass
class Turn:
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


def _prepare(workdir: Path, port: int, secret: str) -> tuple[Path, Path]:
    """coturn's config file and log, in the test's own directory."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "turnserver.log"
    config = workdir / "turnserver.conf"
    config.write_text("\n".join([
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        f"listening-port={port}",
        "min-port=49160", "max-port=49400",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        "fingerprint",
        "no-cli", "no-tls", "no-dtls", "no-tcp-relay",
        # Relaying between loopback addresses is refused unless allowed.
        "allow-loopback-peers",
        "no-software-attribute",
        f"pidfile={workdir / 'turnserver.pid'}",
        f"log-file={log}", "simple-log", "verbose",
        "",
    ]), encoding="utf-8")
    return config, log


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


@contextlib.asynccontextmanager
async def coturn(workdir: Path, secret: str) -> AsyncIterator[Turn]:
    """Start turnserver with use-auth-secret on a free loopback port; stop it after."""
    binary = shutil.which("turnserver")
    if binary is None:
        must_run("coturn is not installed (apt-get install coturn)")
        raise AssertionError("unreachable")
    port = _free_port()
    config, log = _prepare(workdir, port, secret)
    process = await asyncio.create_subprocess_exec(
        binary, "-c", str(config), "--no-stdout-log",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await _wait_listening(port, process)
        yield Turn(port, secret, log)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    """coturn listens on TCP too: connecting there says it is up (bounded in time)."""
    async with asyncio.timeout(10):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"turnserver exited with {process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
