"""A real OpenID provider for the single sign-on tests: the npm package oidc-provider
(tests/oidc/provider.mjs, its version pinned in tests/oidc/package-lock.json), run with
the machine's Node.js on 127.0.0.1. `.ci/run` installs it with `npm ci`; elsewhere run
`cd tests/oidc && npm ci` once. Without it the tests skip, except on CI, where they fail."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

HERE = Path(__file__).resolve().parent / "oidc"
CLIENT_SECRET = "broker-client-secret-for-tests"


def require_provider() -> None:
    reason = None
    if shutil.which("node") is None:
        reason = "Node.js is missing (apt-get install nodejs npm)"
    elif not (HERE / "node_modules" / "oidc-provider").is_dir():
        reason = "the test provider is not installed (cd tests/oidc && npm ci)"
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the single sign-on tests must run on CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Provider:
    def __init__(self, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"

    async def set_mode(self, mode: str) -> None:
        """"wrong_audience": ID tokens for another client; "": as they should be."""
        async with aiohttp.ClientSession() as http, http.post(
                f"{self.issuer}/test/mode", data=json.dumps({"mode": mode})) as response:
            assert response.status == 204


@contextlib.asynccontextmanager
async def oidc_provider(port: int, redirect_uri: str,
                        accounts: dict[str, dict[str, Any]]) -> AsyncIterator[Provider]:
    require_provider()
    env = {**os.environ, "PORT": str(port), "CLIENT_SECRET": CLIENT_SECRET,
           "REDIRECT_URI": redirect_uri, "ACCOUNTS": json.dumps(accounts)}
    process = await asyncio.create_subprocess_exec(
        "node", str(HERE / "provider.mjs"), cwd=HERE, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            printed = ""
            while "ready" not in printed:
                line = (await process.stdout.readline()).decode()
                assert line, f"the OpenID provider stopped: {printed}"
                printed += line
        drain = asyncio.create_task(process.stdout.read())
        yield Provider(port)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        with contextlib.suppress(NameError):
            await drain
