"""Shared by the handoff tests: an active session, a transfer with a note, a team."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from .conftest import Tech, join, start_session

MakeTech = Callable[..., Awaitable[Tech]]


async def _json(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _active(client: TestClient, owner: Tech) -> tuple[str, str]:
    started = await start_session(client, owner)
    joined = await join(client, started["key"])
    return started["session_id"], joined["participant_token"]


async def _transfer(client: TestClient, owner: Tech, session_id: str, **body: Any) -> Any:
    body.setdefault("note", "Printer driver issue; customer already rebooted twice.")
    return await client.post(f"/api/v1/sessions/{session_id}/transfer", headers=owner.auth,
                             json=body)


async def _team(client: TestClient, admin: Tech, name: str, *members: Tech) -> int:
    team = await _json(await client.post("/api/v1/teams", headers=admin.auth,
                                         json={"name": name}), 201)
    for member in members:
        await _json(await client.post(f"/api/v1/teams/{team['team_id']}/members",
                                      headers=admin.auth,
                                      json={"technician_id": member.technician.id}), 200)
    return int(team["team_id"])
