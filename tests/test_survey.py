"""The post-session survey (broker/survey): admins set the questions, the end user answers
once after the end and nobody else can, the answers are kept with the session, shown at
the end of the transcript, and sent as the `survey.completed` webhook (verified with the
`standardwebhooks` package by the loopback receiver)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings

from .conftest import Tech, join, start_session
from .webhook_support import Receiver

MakeTech = Callable[..., Awaitable[Tech]]


@pytest.fixture
def clock() -> FakeClock:
    # Real time: the webhook receiver checks signatures' timestamps against the wall clock.
    return FakeClock(start=float(int(time.time())))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    webhook_allow_private_targets=True, webhook_http_hosts="127.0.0.1",
                    webhook_poll_seconds=0.05, webhook_timeout_seconds=0.5)


@pytest.fixture
async def admin(make_tech: MakeTech) -> Tech:
    return await make_tech("Root", admin=True)


async def ended_session(client: TestClient, tech: Tech) -> tuple[str, dict[str, str]]:
    """A session Dana joined and Alice ended; the session's id and Dana's credential."""
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    ended = await client.post(f"/api/v1/sessions/{started['session_id']}/end", headers=tech.auth)
    assert ended.status == 200, await ended.text()
    return started["session_id"], {"Authorization": f"Bearer {joined['participant_token']}"}


async def answer(client: TestClient, session_id: str, auth: dict[str, str],
                 body: Any, status: int, **headers: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/sessions/{session_id}/survey", json=body,
                                 headers={**auth, **headers})
    assert response.status == status, await response.text()
    return dict(await response.json())


async def test_admins_choose_the_questions(client: TestClient, admin: Tech,
                                           tech: Tech) -> None:
    got = await (await client.get("/api/v1/survey", headers=tech.auth)).json()
    assert got == {"enabled": True, "questions": [
        {"name": name, "enabled": True, "label": {}} for name in ("rating", "solved",
                                                                  "comment")]}
    for bad in ({"enabled": "yes"}, {"questions": [{"name": "age"}]},
                {"questions": [{"name": "rating", "label": {"fr": "Note"}}]},
                {"questions": [{"name": "rating"}, {"name": "rating"}]},
                {"questions": [{"name": "rating", "label": {"en": "x" * 201}}]}):
        refused = await client.put("/api/v1/survey", headers=admin.auth, json=bad)
        assert refused.status == 400, bad
        assert (await refused.json())["error"] == "invalid_survey"
    assert (await client.put("/api/v1/survey", headers=tech.auth, json={})).status == 403
    stored = await client.put("/api/v1/survey", headers=admin.auth, json={"questions": [
        {"name": "comment", "enabled": False},
        {"name": "rating", "label": {"de": "  Wie  zufrieden\tsind Sie? ", "en": ""}}]})
    assert stored.status == 200, await stored.text()
    assert (await stored.json())["questions"] == [
        {"name": "rating", "enabled": True, "label": {"de": "Wie zufrieden sind Sie?"}},
        {"name": "solved", "enabled": True, "label": {}},
        {"name": "comment", "enabled": False, "label": {}}]
    assert await (await client.get("/api/v1/survey", headers=tech.auth)).json() == \
        await stored.json()


async def test_only_the_end_user_answers_once_after_the_end(
        client: TestClient, tech: Tech, make_tech: MakeTech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    dana = {"Authorization": f"Bearer {joined['participant_token']}"}
    early = await answer(client, started["session_id"], dana, {"rating": 5}, 409)
    assert early["error"] == "session_not_ended"
    await client.post(f"/api/v1/sessions/{started['session_id']}/end", headers=tech.auth)
    # Neither the session's technician nor another session's end user answers it.
    await answer(client, started["session_id"], tech.auth, {"rating": 1}, 403)
    other_id, other = await ended_session(client, await make_tech())
    await answer(client, started["session_id"], other, {"rating": 1}, 403)
    await answer(client, started["session_id"], {}, {"rating": 1}, 401)
    for bad, code in (({"rating": 6}, "invalid_answers"), ({"rating": True}, "invalid_answers"),
                      ({"solved": "yes"}, "invalid_answers"), ({"mood": 3}, "invalid_answers"),
                      ({"comment": "x" * 2001}, "invalid_answers"), ({}, "no_answers"),
                      ({"comment": " \n "}, "no_answers")):
        assert (await answer(client, started["session_id"], dana, bad, 400))["error"] == code, bad
    stored = await answer(client, started["session_id"], dana,
                          {"rating": 4, "solved": True, "comment": " Quick\r\nthanks "}, 201,
                          **{"Accept-Language": "de-DE"})
    assert {k: stored[k] for k in ("rating", "solved", "comment", "language")} == {
        "rating": 4, "solved": True, "comment": "Quick\nthanks", "language": "de"}
    again = await answer(client, started["session_id"], dana, {"rating": 1}, 409)
    assert again["error"] == "survey_done"
    read = await client.get(f"/api/v1/sessions/{started['session_id']}/survey", headers=tech.auth)
    assert (await read.json())["survey"] == stored
    unanswered = await client.get(f"/api/v1/sessions/{other_id}/survey", headers=tech.auth)
    assert unanswered.status == 403  # not Alice's session
    # The session's events tell it once, from the end user.
    events = await (await client.get(f"/api/v1/sessions/{started['session_id']}/events",
                                     headers=tech.auth)).json()
    told = [e for e in events["events"] if e["type"] == "survey.completed"]
    assert len(told) == 1 and told[0]["author"]["role"] == "end_user"
    assert (told[0]["rating"], told[0]["solved"]) == (4, True)


async def test_questions_that_are_off_are_not_answered(client: TestClient, admin: Tech,
                                                       tech: Tech) -> None:
    await client.put("/api/v1/survey", headers=admin.auth,
                     json={"questions": [{"name": "comment", "enabled": False}]})
    session_id, dana = await ended_session(client, tech)
    refused = await answer(client, session_id, dana, {"rating": 3, "comment": "hi"}, 400)
    assert refused["error"] == "invalid_answers"
    await answer(client, session_id, dana, {"rating": 3, "comment": None}, 201)
    await client.put("/api/v1/survey", headers=admin.auth, json={"enabled": False})
    later_id, later = await ended_session(client, tech)
    assert (await answer(client, later_id, later, {"rating": 3}, 409))["error"] == "survey_off"


async def test_the_transcript_ends_with_the_answers(client: TestClient, tech: Tech) -> None:
    session_id, dana = await ended_session(client, tech)
    base = f"/api/v1/sessions/{session_id}/transcript"
    before = await (await client.get(f"{base}?format=text&lang=en", headers=tech.auth)).text()
    assert "Survey" not in before
    await answer(client, session_id, dana,
                 {"rating": 2, "solved": False, "comment": "Printer \u202eoffline"}, 201)
    text = await (await client.get(f"{base}?format=text&lang=en", headers=tech.auth)).text()
    tail = text[text.index("== Survey =="):].splitlines()
    assert tail[:4] == ["== Survey ==", "Rating: 2 of 5", "Problem solved: No",
                        "Comment: Printer [U+202E]offline"]
    assert tail[4].startswith("Answered: ")
    assert "answered the survey" not in text  # no line of its own: the section tells it
    german = await (await client.get(f"{base}?format=text&lang=de", headers=tech.auth)).text()
    assert "== Umfrage ==\nBewertung: 2 von 5\nProblem gelöst: Nein" in german
    html = await (await client.get(f"{base}?format=html&lang=en", headers=tech.auth)).text()
    assert '<section class="transcript-survey">' in html and "2 of 5" in html
    assert html.index("transcript-survey") > html.index("transcript-log")


async def test_the_answers_go_out_as_a_webhook(client: TestClient, admin: Tech, tech: Tech,
                                               clock: FakeClock) -> None:
    receiver = await Receiver().start()
    try:
        made = await client.post("/api/v1/webhooks", headers=admin.auth, json={
            "url": receiver.url, "events": ["survey.completed"]})
        assert made.status == 201, await made.text()
        receiver.secrets.append((await made.json())["secret"])
        session_id, dana = await ended_session(client, tech)
        await answer(client, session_id, dana, {"rating": 5, "comment": "Thanks!"}, 201)
        await receiver.wait_for(lambda got: len(receiver.unique()) == 1)
        (event,) = receiver.unique().values()
        assert event["type"] == "survey.completed"
        assert event["data"]["session_id"] == session_id
        assert event["data"]["actor"]["role"] == "end_user"
        assert event["data"]["survey"] == {"rating": 5, "solved": None, "comment": "Thanks!"}
        assert event["data"]["session"]["end_reason"] == "ended_by_technician"
        assert not receiver.unverified
    finally:
        await receiver.stop()
