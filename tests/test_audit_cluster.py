"""Two broker nodes (real processes sharing PostgreSQL and Redis) writing the audit log at
once keep one hash chain: one order, no gaps, no forks (docs/audit.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from broker.audit import AuditService
from broker.clock import SystemClock
from broker.db import create_engine
from broker.settings import Settings

from .cluster import cluster

SESSIONS_PER_NODE = 15


async def test_two_nodes_writing_at_once_keep_one_chain(tmp_path: Path) -> None:
    async with cluster(tmp_path) as nodes:
        token = await nodes.technician("ana@example.com", "Ana")
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http:

            async def start(base: str) -> str:
                async with http.post(f"{base}/api/v1/sessions", headers=auth) as response:
                    assert response.status == 201, await response.text()
                    return str((await response.json())["session_id"])

            async with asyncio.timeout(120):
                started = await asyncio.gather(*(
                    start(node.base) for _ in range(SESSIONS_PER_NODE)
                    for node in nodes.nodes))
        # Read as `supportbroker audit verify` and `export` do (tests/test_audit.py runs
        # those as processes), while the nodes run.
        engine = create_engine(Settings(database_url=nodes.env["BROKER_DATABASE_URL"])
                               .sqlalchemy_url)
        try:
            audit = AuditService(engine, SystemClock())
            verdict = await audit.verify()
            exported = [record.public() async for record in audit.records()]
        finally:
            await engine.dispose()
    # The first admin (serve makes one), the technician and the token, then two acts per
    # session (started, key issued).
    count = 3 + 2 * len(started)
    assert verdict.ok and verdict.checked == count, verdict
    assert [record["id"] for record in exported] == list(range(1, count + 1))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(exported, exported[1:],
                                                           strict=False))
    per_session: dict[str, list[str]] = {}
    for record in exported[3:]:
        per_session.setdefault(record["session_id"], []).append(record["action"])
    assert per_session == {session_id: ["session.started", "key.issued"]
                           for session_id in started}
