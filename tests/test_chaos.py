"""Chaos: many sessions chat while both sides drop at random moments (and, in a variant,
the broker process is killed with SIGKILL and started again). At the end every
participant's view equals the stored transcript: nothing lost, nothing doubled, in order."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .chaos import ChaosParticipant, compare, midway

SESSIONS = 10
LINES = 25


async def _setup_sessions(http: aiohttp.ClientSession, base: str, token: str
                          ) -> list[tuple[str, str]]:
    auth = {"Authorization": f"Bearer {token}"}
    pairs = []
    for i in range(SESSIONS):
        async with http.post(f"{base}/api/v1/sessions", headers=auth) as response:
            started = await response.json()
        async with http.post(f"{base}/api/v1/join",
                             json={"key": started["key"], "name": f"User{i}"}) as response:
            joined = await response.json()
        pairs.append((started["session_id"], joined["participant_token"]))
    return pairs


async def _transcript(http: aiohttp.ClientSession, base: str, token: str,
                      session_id: str) -> list[dict[str, Any]]:
    async with http.get(f"{base}/api/v1/sessions/{session_id}/events?limit=10000",
                        headers={"Authorization": f"Bearer {token}"}) as response:
        return list((await response.json())["events"])


async def _verify(http: aiohttp.ClientSession, base: str, token: str,
                  people: list[tuple[str, ChaosParticipant]], label: str) -> None:
    lost = extra = duplicates = out_of_order = disconnects = sent = 0
    for session_id, person in people:
        await person.catch_up()
        transcript = await _transcript(http, base, token, session_id)
        missing, surplus = compare(person, transcript)
        assert all(e["seq"] <= person.synced_to for e in transcript if e["type"] == "message")
        lost += missing
        extra += surplus
        duplicates += person.tally.duplicates
        out_of_order += person.tally.out_of_order
        disconnects += person.tally.disconnects
        sent += len(person.sent_ids)
        stored_ids = [e.get("client_id") for e in transcript if e["type"] == "message"
                      and e["author"]["name"] == person.name]
        assert sorted(stored_ids) == sorted(person.sent_ids), person.name  # each once
        assert not person.unacked, person.name
    print(f"\nchaos ({label}): {len(people) // 2} sessions, {sent} lines written, "
          f"{disconnects} disconnects, lost {lost}, duplicated {duplicates}, "
          f"out of order {out_of_order}, never stored {extra}")
    assert (lost, duplicates, out_of_order, extra) == (0, 0, 0, 0)


def _people(http: aiohttp.ClientSession, base: str, pairs: list[tuple[str, str]],
            tech_token: str, seed: int) -> list[tuple[str, ChaosParticipant]]:
    rng = random.Random(seed)
    people = []
    for i, (session_id, participant_token) in enumerate(pairs):
        people.append((session_id, ChaosParticipant(
            http, base, session_id, tech_token, "Tech", random.Random(rng.random()))))
        people.append((session_id, ChaosParticipant(
            http, base, session_id, participant_token, f"User{i}", random.Random(rng.random()))))
    return people


async def test_chaos_with_random_drops(aiohttp_server: Any, tmp_path: Path,
                                       database_url: str) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", chat_burst=1000,
                              database_url=database_url))
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    broker = get_broker(app)
    technician = await broker.technicians.add("tech@example.com", "Tech", "long enough pw")
    token = await broker.technicians.create_token(technician.id)
    async with aiohttp.ClientSession() as http:
        pairs = await _setup_sessions(http, base, token)
        people = _people(http, base, pairs, token, seed=8)
        deadline = asyncio.get_running_loop().time() + 60
        async with asyncio.timeout(90):
            await asyncio.gather(*(person.run(LINES, deadline) for _, person in people))
            await _verify(http, base, token, people, "random drops")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "broker", *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def _start(env: dict[str, str], base: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "broker", "serve", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        while True:
            try:
                async with http.get(f"{base}/join"):
                    return process
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


async def test_chaos_with_sigkill_and_restart(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env.update(BROKER_DATA_DIR=str(tmp_path / "data"), BROKER_PORT=str(port),
               BROKER_CHAT_BURST="1000")
    await _cli(env, "technician", "add", "--email", "tech@example.com", "--name", "Tech",
               stdin="long enough pw\n")
    token = (await _cli(env, "token", "create", "--email", "tech@example.com")).strip()
    process = await _start(env, base)
    try:
        async with aiohttp.ClientSession() as http:
            pairs = await _setup_sessions(http, base, token)
            people = _people(http, base, pairs, token, seed=9)

            async def kill_and_restart() -> None:
                nonlocal process
                await midway([person for _, person in people], LINES * 2)
                process.send_signal(signal.SIGKILL)
                await process.wait()
                await asyncio.sleep(0.3)
                process = await _start(env, base)

            deadline = asyncio.get_running_loop().time() + 90
            async with asyncio.timeout(120):
                await asyncio.gather(kill_and_restart(),
                                     *(person.run(LINES * 2, deadline) for _, person in people))
                assert sum(p.tally.connect_failures for _, p in people) > 0  # it did go down
                await _verify(http, base, token, people, "SIGKILL and restart")
    finally:
        process.terminate()
        await process.wait()

