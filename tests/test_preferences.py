"""Per-technician console preferences: defaults, changes, validation, and whose they are."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.core import Broker
from broker.schema import technician_preferences

from .conftest import Tech, login

MakeTech = Callable[..., Awaitable[Tech]]
URL = "/api/v1/me/preferences"
DEFAULTS = {"popup_seconds": 30, "sound": True, "in_session_alerts": False,
            "in_session_sound": False, "desktop_notifications": True,
            "transcript_email": False, "transcript_language": "en"}


async def _get(client: TestClient, who: Tech) -> dict[str, Any]:
    response = await client.get(URL, headers=who.auth)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def _put(client: TestClient, who: Tech, body: Any, status: int = 200) -> dict[str, Any]:
    response = await client.put(URL, headers=who.auth, json=body)
    assert response.status == status, await response.text()
    return dict(await response.json())


async def _stored(broker: Broker, who: Tech) -> Any:
    async with broker.engine.connect() as conn:
        raw = await conn.scalar(sa.select(technician_preferences.c.preferences).where(
            technician_preferences.c.technician_id == who.technician.id))
    return None if raw is None else json.loads(raw)


async def test_defaults_until_changed_and_changes_are_kept(
        client: TestClient, broker: Broker, make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    assert await _get(client, alice) == DEFAULTS
    changed = await _put(client, alice, {"popup_seconds": 120, "in_session_alerts": True})
    assert changed == {**DEFAULTS, "popup_seconds": 120, "in_session_alerts": True}
    # A later change leaves the earlier one alone.
    await _put(client, alice, {"sound": False})
    assert await _get(client, alice) == {**DEFAULTS, "popup_seconds": 120,
                                         "in_session_alerts": True, "sound": False}
    assert await _get(client, bob) == DEFAULTS  # each technician has their own
    assert await _put(client, alice, {}) == await _get(client, alice)
    # Only what differs from the defaults is stored, so a new default reaches whoever
    # never chose otherwise.
    await _put(client, alice, {"popup_seconds": 30, "sound": True, "in_session_alerts": False,
                               "desktop_notifications": False})
    assert await _stored(broker, alice) == {"desktop_notifications": False}
    assert await _stored(broker, bob) is None


@pytest.mark.parametrize("body", [
    {"popup_seconds": 121},
    {"popup_seconds": -1},
    {"popup_seconds": "30"},
    {"popup_seconds": 30.5},
    {"popup_seconds": True},
    {"sound": "yes"},
    {"sound": 1},
    {"desktop_notifications": None},
    {"colour": "blue"},
    {"transcript_language": "fr"},
    {"transcript_language": 1},
    {"transcript_email": "yes"},
    {"sound": False, "popup_seconds": 500},  # nothing of a bad change is applied
])
async def test_bad_preferences_are_refused(client: TestClient, broker: Broker, tech: Tech,
                                           body: dict[str, Any]) -> None:
    refused = await _put(client, tech, body, 400)
    assert refused["error"] == "bad_preference"
    assert await _get(client, tech) == DEFAULTS
    assert await _stored(broker, tech) is None


async def test_the_extremes_are_allowed(client: TestClient, tech: Tech) -> None:
    assert (await _put(client, tech, {"popup_seconds": 0}))["popup_seconds"] == 0
    assert (await _put(client, tech, {"popup_seconds": 120}))["popup_seconds"] == 120
    refused = await _put(client, tech, ["sound"], 400)  # not an object
    assert refused["error"] == "bad_json"


async def test_changes_at_once_all_count(client: TestClient, tech: Tech) -> None:
    """Two changes of a technician who has none stored yet: neither is lost."""
    await asyncio.gather(_put(client, tech, {"sound": False}),
                         _put(client, tech, {"popup_seconds": 60}),
                         _put(client, tech, {"desktop_notifications": False}))
    assert await _get(client, tech) == {**DEFAULTS, "sound": False, "popup_seconds": 60,
                                        "desktop_notifications": False}


async def test_the_dashboard_login_reads_and_writes_them(client: TestClient,
                                                         tech: Tech) -> None:
    assert (await client.get(URL)).status == 401
    csrf = await login(client, tech.technician.email)
    assert (await client.put(URL, json={"sound": False})).status == 403  # no CSRF token
    response = await client.put(URL, json={"sound": False}, headers={"X-CSRF-Token": csrf})
    assert response.status == 200
    assert (await (await client.get(URL)).json())["sound"] is False
