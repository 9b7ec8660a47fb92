"""The closing form as the webhook `closing.recorded` (broker/webhooks/feed.py reads the
saves by itself): every save goes out once, after the session's `session.ended`, signed
(verified with the `standardwebhooks` package by the loopback receiver)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings

from .conftest import Tech, join, start_session
from .webhook_support import Receiver

MakeTech = Callable[..., Awaitable[Tech]]


@pytest.fixture
def clock() -> FakeClock:
    # Real time: the receiver checks signatures' timestamps against the wall clock.
    return FakeClock(start=float(int(time.time())))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    webhook_allow_private_targets=True, webhook_http_hosts="127.0.0.1",
                    webhook_poll_seconds=0.05, webhook_timeout_seconds=0.5)


async def test_each_save_goes_out_after_the_end(client: TestClient, make_tech: MakeTech,
                                                tech: Tech) -> None:
    root = await make_tech("Root", admin=True)
    await client.put("/api/v1/closing-categories", headers=root.auth, json={
        "categories": [{"label": {"en": "Printer", "de": "Drucker"}}]})
    receiver = await Receiver().start()
    try:
        made = await client.post("/api/v1/webhooks", headers=root.auth, json={
            "url": receiver.url, "events": ["session.ended", "closing.recorded"]})
        assert made.status == 201, await made.text()
        receiver.secrets.append((await made.json())["secret"])
        started = await start_session(client, tech)
        session_id = started["session_id"]
        await join(client, started["key"])
        # Ended and closed at once, then changed by an admin.
        await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
        path = f"/api/v1/sessions/{session_id}/closing"
        for who, body in ((tech, {"category": "printer", "ticket": "INC-9"}),
                          (root, {"category": "printer", "resolved": True, "ticket": "INC-9"})):
            saved = await client.put(path, headers=who.auth, json=body)
            assert saved.status == 200, await saved.text()
        await receiver.wait_for(lambda got: len(receiver.unique()) == 3)
        assert receiver.first_order(session_id) == [
            "session.ended", "closing.recorded", "closing.recorded"]
        last = list(receiver.unique().values())[-1]
        assert last["data"]["session_id"] == session_id
        assert last["data"]["actor"] == {"role": "technician", "name": "Root"}
        assert {k: v for k, v in last["data"]["closing"].items() if k != "recorded_at"} == {
            "category": {"id": "printer", "label": {"en": "Printer", "de": "Drucker"}},
            "resolved": True, "ticket": "INC-9"}
        assert last["data"]["session"]["end_reason"] == "ended_by_technician"
        assert not receiver.unverified
    finally:
        await receiver.stop()
