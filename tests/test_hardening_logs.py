"""No credential in any log line: the access log cuts them from addresses, and nothing
else logs one. Every journey is run, then all log output is searched for every key, link
token, participant token, API token, password and cookie that was handed out."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import sys
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app
from web.accesslog import RedactingAccessLogger, redact

from .conftest import PASSWORD
from .hardening_support import Broker, Journey, journey, running

TOKEN = "Xb3kQ9_zz-Aq1LmN0pR7sT2uV5wY8aB4"  # 32 base64url characters, like a link token


@pytest.mark.parametrize("address, shown", [
    (f"/j/{TOKEN}", "/j/…"),
    (f"/j/{TOKEN}?lang=de", "/j/…?lang=de"),
    (f"/%6A/{TOKEN}", "/j/…"),  # routed as a join link all the same
    (f"/a/{TOKEN}", "/a/…"),
    (f"/lang/en?next=/j/{TOKEN}", "/lang/en?next=/j/…"),
    (f"/lang/en?next=%2Fj%2F{TOKEN}&x=1", "/lang/en?next=%2Fj%2F…&x=1"),
    ("/join?key=482913075", "/join?key=…"),
    ("/join?lang=de&KEY=482+913+075", "/join?lang=de&KEY=…"),
    ("/join?%6Bey=482913075", "/join?key=…"),
    (f"/x?token={TOKEN}&password=hunter22", "/x?token=…&password=…"),
    (f"https://support.example.com/j/{TOKEN}", "https://support.example.com/j/…"),
    (f"Bearer sbp_{TOKEN}", "Bearer sbp_…"),
    (f"/api/v1/sessions?t=sbt_{TOKEN}", "/api/v1/sessions?t=sbt_…"),
    ("/api/v1/sessions/abc/files/def?format=text", "/api/v1/sessions/abc/files/def?format=text"),
    ("/static/app.css", "/static/app.css"),
])
def test_redact_cuts_credentials_only(address: str, shown: str) -> None:
    assert redact(address) == shown


def test_every_route_with_a_credential_in_its_path_is_cut(tmp_path: Path) -> None:
    """A new route whose path takes a token, key, link or password is cut too (a record's
    id, such as `{token_id}` or `{passkey_id}`, names the record and is no credential)."""
    app = create_app(Settings(data_dir=tmp_path / "data"))
    credential = re.compile(
        r"\{(?!\w*_id[:}])(\w*(?:token|key|link|password|secret)\w*)(?::[^}]*)?\}")
    found = 0
    for resource in app.router.resources():
        template = resource.get_info().get("formatter", "")
        if credential.search(template):
            found += 1
            path = credential.sub(TOKEN, template)
            path = re.sub(r"\{\w+(?::[^}]*)?\}", "x", path)
            assert TOKEN not in redact(path), template
    assert found  # /j/{token} at least


def _leaks(text: str, j: Journey) -> list[str]:
    leaks = []
    for what, secret in j.secrets.items():
        spellings = {secret, urllib.parse.quote(secret, safe=""),
                     urllib.parse.quote_plus(secret)}
        digits = re.sub(r"[ .-]", "", secret)
        if re.fullmatch(r"\d{9}", digits):  # a typed code, in every spelling it is typed
            for sep in ("", " ", "+", "%20", "-", "."):
                spellings.add(sep.join((digits[:3], digits[3:6], digits[6:])))
        leaks += [what for spelling in spellings if spelling in text]
    return leaks


async def test_no_credential_in_any_log_line(tmp_path: Path, clock: FakeClock,
                                             database_url: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Every log record at DEBUG, the access log written by the class `serve` uses."""
    caplog.set_level(logging.DEBUG)
    app = create_app(Settings(data_dir=tmp_path / "data", database_url=database_url,
                              transfer_min_free_bytes=0), clock=clock)
    async with running(app, tmp_path, access_log_class=RedactingAccessLogger) as broker:
        from web.state import get_broker

        core = get_broker(app)
        technician = await core.technicians.add("ana@example.com", "Ana", PASSWORD)
        j = await journey(broker, "ana@example.com",
                          await core.technicians.create_token(technician.id))
    text = caplog.text
    assert '"GET /j/…?lang=de HTTP/1.1" 200' in text  # the access log was written
    assert "/api/v1/agent/join" in text
    assert not _leaks(text, j), _leaks(text, j)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_logs_no_credential(tmp_path: Path) -> None:
    """`supportbroker serve` as an operator runs it: all it writes to its log (stderr)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env.update({"BROKER_DATA_DIR": str(tmp_path / "data"), "BROKER_PORT": str(port),
                "BROKER_TRANSFER_MIN_FREE_BYTES": "0"})
    cli = [sys.executable, "-m", "broker"]
    process = await asyncio.create_subprocess_exec(
        *cli, "serve", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    try:
        printed = ""
        async with asyncio.timeout(60):
            while "password:" not in printed:
                line = (await process.stdout.readline()).decode()
                assert line, printed
                printed += line
        password = printed.split("password:")[1].split()[0]
        token_process = await asyncio.create_subprocess_exec(
            *cli, "token", "create", "--email", "admin@localhost", env=env,
            stdout=asyncio.subprocess.PIPE)
        token = (await asyncio.wait_for(token_process.communicate(), 60))[0].decode().strip()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            broker = Broker(http, URL(f"http://127.0.0.1:{port}/"))
            async with asyncio.timeout(30):
                while True:
                    try:
                        await broker.request("GET", "/healthz")
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
            j = await journey(broker, "admin@localhost", token, password)
            # A join link in a request line aiohttp cannot parse: reported as a warning that
            # names the fault only (aiohttp's own error quoted the line).
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /j/{j.link_token}?lang=\x01 HTTP/1.1\r\n\r\n".encode())
            assert (await reader.readline()).startswith(b"HTTP/1.0 400")
            writer.close()
            await broker.request("GET", "/healthz", status=200)  # the report is out by now
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    log = (await stderr).decode()
    assert '"GET /j/…?lang=de HTTP/1.1" 200' in log, log[-3000:]
    assert "refused a request from 127.0.0.1: " in log, log[-3000:]  # the report
    assert "Invalid char in url" not in log and "Traceback" not in log
    assert not _leaks(log, j), _leaks(log, j)
