"""The docs tell the truth: the curl walkthrough in docs/api.md and the protocol client
example run as written against a real broker. That every route, setting and wire code the
code knows is documented: test_docs_reference.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from broker.settings import Settings
from web import (
    create_app,
)
from web.state import get_broker

from .docs_support import DOCS, FENCE

DOC_BASE = "http://127.0.0.1:8080"  # what the docs say; the test swaps in its own port
MARK = "@@docs-block {}@@"


@dataclasses.dataclass
class Block:
    code: str
    expected: str | None
    line: int


def sh_blocks(markdown: str) -> list[Block]:
    """Every ```sh block, with the ```text block that follows it (if any) as its output."""
    fences = list(FENCE.finditer(markdown))
    blocks: list[Block] = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "sh":
            continue
        expected = None
        following = fences[index + 1] if index + 1 < len(fences) else None
        if (following is not None and following.group(1) == "text"
                and not markdown[fence.end():following.start()].strip()):
            expected = following.group(2)
        blocks.append(Block(fence.group(2), expected, markdown.count("\n", 0, fence.start()) + 1))
    return blocks


def output_pattern(expected: str) -> re.Pattern[str]:
    """'...' matches anything within a line; a line of only '...' matches any lines."""
    parts = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*?".join(re.escape(piece) for piece in line.rstrip().split("..."))
                         + r"\n")
    return re.compile("".join(parts))


def normalised(output: str) -> str:
    return "".join(line.rstrip() + "\n" for line in output.strip("\n").splitlines())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclasses.dataclass
class Server:
    base: str
    data_dir: Path
    app: web.Application


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[Server]:
    """A real broker on a loopback port, with the admin that `serve` creates on first start."""
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", port=port, database_url=database_url)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        await get_broker(runner.app).technicians.add(
            "admin@localhost", "Administrator", "correct horse battery", is_admin=True)
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        yield Server(f"http://127.0.0.1:{port}", settings.data_dir, runner.app)
    finally:
        await runner.cleanup()


async def test_api_walkthrough_runs_as_written(server: Server, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl") if shutil.which(tool) is None]
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"the walkthrough needs {' and '.join(missing)}")
    blocks = sh_blocks((DOCS / "api.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 10, "docs/api.md lost its curl walkthrough"
    script = ["set -euo pipefail"]
    for number, block in enumerate(blocks):
        script += [f"echo '{MARK.format(number)}'", block.code.replace(DOC_BASE, server.base)]
    script.append(f"echo '{MARK.format(len(blocks))}'")
    work = tmp_path / "shell"
    work.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("BROKER_")}
    # The command line of this venv, and the broker's database, as a reader's shell has them.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["BROKER_DATA_DIR"] = str(server.data_dir)
    if get_broker(server.app).settings.database_url:
        env["BROKER_DATABASE_URL"] = get_broker(server.app).settings.database_url
    # Not subprocess.run: the broker answers from this test's event loop.
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", "\n".join(script), cwd=work, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    out, err = stdout.decode(), stderr.decode()
    # One piece per started block; after the last block's output comes the final marker.
    outputs = re.split(r"^@@docs-block \d+@@\n", out, flags=re.MULTILINE)[1:]
    started = len(outputs) - 1
    if process.returncode != 0 or started < len(blocks):
        failed = blocks[max(0, min(started, len(blocks) - 1))]
        pytest.fail(f"the sh block at docs/api.md line {failed.line} failed "
                    f"(exit {process.returncode}):\n{failed.code}\n--- stdout\n"
                    f"{outputs[-1] if outputs else out}\n--- stderr\n{err}")
    for block, output in zip(blocks, outputs, strict=False):
        if block.expected is None:
            continue
        actual = normalised(output.replace(server.base, DOC_BASE))
        assert output_pattern(block.expected).fullmatch(actual), (
            f"the sh block at docs/api.md line {block.line} printed\n{actual}\n"
            f"instead of\n{block.expected}")
    assert (work / f"transcript-{_session_id(outputs)}.html").exists()


async def test_protocol_client_example_runs(server: Server, tmp_path: Path) -> None:
    """The Python client in docs/protocol.md talks to a real broker as the text says."""
    examples = [code for kind, code in FENCE.findall(
        (DOCS / "protocol.md").read_text(encoding="utf-8")) if kind == "python"]
    assert len(examples) == 1
    script = tmp_path / "client.py"
    script.write_text(examples[0], encoding="utf-8")
    # The session and the participant, made through the same API the docs describe.
    async with ClientSession(server.base) as http:
        async with http.post("/api/v1/join", json={"key": await _new_key(server)}) as joined:
            assert joined.status == 200, await joined.text()
            body = await joined.json()
    env = {**os.environ, "BASE": server.base, "SESSION_ID": body["session_id"],
           "PTOKEN": body["participant_token"]}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().splitlines() == [
        "1 created ", "2 joined ", "3 message Sent over the socket."], stderr.decode()


async def _new_key(server: Server) -> str:
    token = await _admin_token(server)
    async with ClientSession(server.base) as http:
        async with http.post("/api/v1/sessions",
                             headers={"Authorization": f"Bearer {token}"}) as started:
            assert started.status == 201, await started.text()
            return str((await started.json())["key"])


async def _admin_token(server: Server) -> str:
    broker = get_broker(server.app)
    admin = await broker.technicians.by_email("admin@localhost")
    return await broker.technicians.create_token(admin.id)


def _session_id(outputs: list[str]) -> str:
    match = re.search(r'"session_id": "([\w-]+)"', "".join(outputs))
    assert match
    return match.group(1)


def test_output_patterns() -> None:
    pattern = output_pattern('{"seq": ...}\n...\nlast\n')
    assert pattern.fullmatch('{"seq": 3}\nanything\nat all\nlast\n')
    assert pattern.fullmatch('{"seq": 3}\nlast\n')
    assert not pattern.fullmatch('{"seq": 3}\n')
    assert not output_pattern("a...b").fullmatch("a\nb\n")
    blocks = sh_blocks("```sh\necho 1\n```\n\n```text\n1\n```\n```sh\ntrue\n```\ntext\n")
    assert [(b.code, b.expected) for b in blocks] == [("echo 1\n", "1\n"), ("true\n", None)]
