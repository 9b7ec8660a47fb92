"""Bad input is refused with its code, nothing of it is stored, and nothing is logged as an
internal error (issue 17): JSON nested deeper than the stack, lone surrogates, whole
numbers no column holds, a Range header of 5,000 digits, forms that are no text."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from yarl import URL

from broker.settings import Settings

from .conftest import Socket, Tech, csrf_from, join, open_socket, start_session

DEEP = "[" * 60000
HUGE = 2**64 + 1  # beyond 64 bits
LONE = "\\ud800"  # as JSON writes it: an escaped lone surrogate
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    transfer_min_free_bytes=0)


@pytest.fixture(autouse=True)
def no_internal_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


@dataclasses.dataclass
class Scene:
    tech: Tech
    session_id: str
    participant: str

    @property
    def user(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.participant}"}


@pytest.fixture
async def scene(client: TestClient, tech: Tech) -> Scene:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    return Scene(tech, started["session_id"], joined["participant_token"])


async def _raw_post(client: TestClient, path: str, body: str, headers: dict[str, str] | None
                    = None, method: str = "POST") -> tuple[int, dict[str, Any]]:
    response = await client.request(method, path, data=body.encode(), headers={
        "Content-Type": "application/json", **(headers or {})})
    return response.status, await response.json()


async def _events(client: TestClient, scene: Scene) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/sessions/{scene.session_id}/events",
                                headers=scene.tech.auth)
    return list((await response.json())["events"])


async def _alive(socket: Socket, client_id: str = "alive") -> None:
    """The socket still carries a normal chat line."""
    await socket.say("still here", client_id)
    ack = await socket.next("chat.ack")
    assert ack["id"] == client_id


async def _error_then_alive(socket: Socket, frame: str, code: str) -> None:
    await socket.ws.send_str(frame)
    error = await socket.next("error")
    assert error["code"] == code, error
    await _alive(socket)


async def _first_frame(client: TestClient, session_id: str, frame: str) -> tuple[str, int]:
    """The error code and close code the broker answers a bad first frame with."""
    ws = await client.ws_connect(f"/api/v1/sessions/{session_id}/ws")
    try:
        await ws.send_str(frame)
        error = await ws.receive_json(timeout=5)
        closing = await ws.receive(timeout=5)
        assert closing.type == WSMsgType.CLOSE
        return str(error["code"]), int(closing.data)
    finally:
        await ws.close()


# -- deeply nested JSON --------------------------------------------------------------------


async def test_deeply_nested_body(client: TestClient, scene: Scene) -> None:
    assert await _raw_post(client, "/api/v1/join", DEEP) == (400, {
        "error": "bad_json", "message": "The body is not valid JSON (or is nested too deeply)."})
    status, body = await _raw_post(client, f"/api/v1/sessions/{scene.session_id}/messages",
                                   '{"text": ' + DEEP, scene.tech.auth)
    assert (status, body["error"]) == (400, "bad_json")


async def test_deeply_nested_first_frame(client: TestClient, scene: Scene) -> None:
    assert await _first_frame(client, scene.session_id, DEEP) == ("bad_json", 4401)


async def test_deeply_nested_frame_later(client: TestClient, scene: Scene) -> None:
    socket = await open_socket(client, scene.session_id, scene.participant)
    try:
        await _error_then_alive(socket, '{"type": "chat.send", "text": ' + DEEP, "bad_json")
    finally:
        await socket.close()


# -- lone surrogates -----------------------------------------------------------------------


async def test_lone_surrogate_in_a_name(client: TestClient, tech: Tech) -> None:
    key = (await start_session(client, tech))["key"]
    status, body = await _raw_post(client, "/api/v1/join",
                                   f'{{"key": "{key}", "name": "Dana{LONE}"}}')
    assert (status, body["error"]) == (400, "bad_text")
    joined = await join(client, key)  # the key was not used up
    assert joined["name"] == "Guest"


async def test_lone_surrogate_in_a_chat_line(client: TestClient, scene: Scene) -> None:
    before = await _events(client, scene)
    path = f"/api/v1/sessions/{scene.session_id}/messages"
    for headers in (scene.tech.auth, scene.user):
        status, body = await _raw_post(client, path, f'{{"text": "hi {LONE}"}}', headers)
        assert (status, body["error"]) == (400, "bad_text")
    socket = await open_socket(client, scene.session_id, scene.participant)
    try:
        await _error_then_alive(
            socket, f'{{"type": "chat.send", "id": "1", "text": "hi {LONE}"}}', "bad_text")
        # A lone surrogate as a key, and the other half alone, are refused the same way.
        await _error_then_alive(
            socket, '{"type": "chat.send", "id": "2", "text": "x", "\\udfff": 1}', "bad_text")
    finally:
        await socket.close()
    after = await _events(client, scene)
    assert [e["text"] for e in after[len(before):] if e["type"] == "message"] == ["still here"]


async def test_surrogate_pairs_are_text(client: TestClient, scene: Scene) -> None:
    status, body = await _raw_post(client, f"/api/v1/sessions/{scene.session_id}/messages",
                                   '{"text": "\\ud83d\\ude00"}', scene.user)
    assert status == 201, body
    assert (await _events(client, scene))[-1]["text"] == "\N{GRINNING FACE}"


async def test_lone_surrogate_first_frame(client: TestClient, scene: Scene) -> None:
    frame = f'{{"type": "hello", "token": "{scene.participant}{LONE}"}}'
    assert await _first_frame(client, scene.session_id, frame) == ("bad_text", 4401)


async def test_lone_surrogate_in_notes(client: TestClient, scene: Scene) -> None:
    path = f"/api/v1/sessions/{scene.session_id}/notes"
    assert (await client.put(path, json={"notes": "kept"}, headers=scene.tech.auth)).status == 200
    status, body = await _raw_post(client, path, f'{{"notes": "gone {LONE}"}}', scene.tech.auth,
                                   method="PUT")
    assert (status, body["error"]) == (400, "bad_text")
    notes = await (await client.get(path, headers=scene.tech.auth)).json()
    assert notes == {"notes": "kept"}


async def test_utf8_encoded_surrogates_are_no_utf8(client: TestClient, scene: Scene) -> None:
    """The bytes of a surrogate in UTF-8 form (which json.loads(bytes) would let through),
    whatever charset the request declares."""
    for charset in ("", "; charset=utf-8", "; charset=no-such-charset"):
        response = await client.post(
            f"/api/v1/sessions/{scene.session_id}/messages",
            data=b'{"text": "hi \xed\xa0\x80"}', headers={
                **scene.tech.auth, "Content-Type": "application/json" + charset})
        assert response.status == 400
        assert (await response.json())["error"] == "bad_json"


# -- whole numbers beyond 64 bits ----------------------------------------------------------


@pytest.mark.parametrize("query", [f"after={HUGE}", f"limit={HUGE}", "after=-1",
                                   "after=" + "9" * 5000, "after=\N{SUPERSCRIPT TWO}"])
async def test_event_query_numbers(client: TestClient, scene: Scene, query: str) -> None:
    response = await client.get(f"/api/v1/sessions/{scene.session_id}/events?{query}",
                                headers=scene.tech.auth)
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_input"


async def test_hello_after_beyond_64_bits(client: TestClient, scene: Scene) -> None:
    frame = json.dumps({"type": "hello", "token": scene.participant, "after": HUGE})
    assert await _first_frame(client, scene.session_id, frame) == ("bad_message", 4401)


async def test_frame_numbers_beyond_64_bits(client: TestClient, scene: Scene) -> None:
    socket = await open_socket(client, scene.session_id, scene.participant)
    try:
        await _error_then_alive(socket, json.dumps({
            "type": "rtc.candidate", "id": "s1", "candidate": "", "sdp_mline_index": HUGE}),
            "bad_message")
    finally:
        await socket.close()


async def test_ids_beyond_64_bits(client: TestClient, scene: Scene,
                                  make_tech: Callable[..., Awaitable[Tech]]) -> None:
    admin = await make_tech("Root", admin=True)
    team = await client.post("/api/v1/teams", json={"name": "Desk"}, headers=admin.auth)
    team_id = (await team.json())["team_id"]
    session = f"/api/v1/sessions/{scene.session_id}"
    for method, path, body, who in [
            ("POST", f"{session}/collaborators", {"technician_id": HUGE}, scene.tech),
            ("POST", f"{session}/transfer", {"note": "n", "to_technician_id": HUGE}, scene.tech),
            ("POST", f"{session}/transfer", {"note": "n", "to_team_id": -HUGE}, scene.tech),
            ("POST", f"/api/v1/teams/{team_id}/members", {"technician_id": HUGE}, admin),
            ("POST", f"/api/v1/teams/{HUGE}/members", {"technician_id": 1}, admin),
            ("DELETE", f"/api/v1/teams/{HUGE}/members/1", None, admin),
            ("DELETE", f"/api/v1/teams/{team_id}/members/{'9' * 5000}", None, admin)]:
        response = await client.request(method, path, json=body, headers=who.auth)
        assert response.status == 400, (method, path, body)
        assert (await response.json())["error"] == "invalid_input"
    handoffs = await client.get(f"{session}/handoffs", headers=scene.tech.auth)
    assert (await handoffs.json())["handoffs"] == []


# -- a Range header of 5,000 digits --------------------------------------------------------


@pytest.mark.parametrize("second", ["Équipe Süd", "équipe süd"])
async def test_team_names_differing_beyond_ascii(
        client: TestClient, make_tech: Callable[..., Awaitable[Tech]], second: str) -> None:
    """A team name taken, in any case: 409 team_exists (SQLite's lower() folds only ASCII;
    the same name again was an internal error there)."""
    admin = await make_tech("Root", admin=True)
    first = await client.post("/api/v1/teams", headers=admin.auth, json={"name": "Équipe Süd"})
    assert first.status == 201, await first.text()
    again = await client.post("/api/v1/teams", headers=admin.auth, json={"name": second})
    assert again.status == 409, await again.text()
    assert (await again.json())["error"] == "team_exists"


async def test_range_with_5000_digits(client: TestClient, scene: Scene) -> None:
    files = f"/api/v1/sessions/{scene.session_id}/files/"
    created = await client.post(files, headers={
        **TUS, **scene.user, "Upload-Length": "5", "Upload-Metadata": "filename bm90ZS50eHQ="})
    path = created.headers["Location"]
    sent = await client.patch(path, data=io.BytesIO(b"hello"), headers={
        **TUS, **scene.user, "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    assert sent.status == 204
    many = "9" * 5000
    for header, status, body in [(f"bytes={many}-", 416, None),
                                 (f"bytes=0-{many}", 206, b"hello"),
                                 (f"bytes=-{many}", 206, b"hello"),
                                 (f"bytes=1-{many}", 206, b"ello")]:
        response = await client.get(path, headers={**scene.user, "Range": header})
        assert response.status == status, header
        if body is not None:
            assert await response.read() == body


# -- forms that are not text ---------------------------------------------------------------


async def test_forms_that_are_no_text(client: TestClient) -> None:
    csrf = csrf_from(await (await client.get("/join")).text())
    multipart = (b'--x\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n'
                 + csrf.encode() + b'\r\n--x\r\nContent-Disposition: form-data; name="name"'
                 b'\r\n\r\n\xed\xa0\x80\r\n--x--\r\n')
    for body, content_type in [
            (f"_csrf={csrf}&key=1&name=".encode() + b"\xff\xfe",
             "application/x-www-form-urlencoded"),
            (f"_csrf={csrf}&key=1".encode(), "application/x-www-form-urlencoded; charset=nope"),
            (multipart, "multipart/form-data; boundary=x")]:
        response = await client.post("/join", data=body, headers={"Content-Type": content_type})
        assert response.status == 400, body
        assert "invalid_input" in await response.text()


# -- NUL characters (PostgreSQL's text types cannot hold them) -----------------------------


NUL = "\\u0000"  # as JSON writes it


async def test_nul_in_json_text(client: TestClient, tech: Tech, scene: Scene) -> None:
    key = (await start_session(client, tech))["key"]
    status, body = await _raw_post(client, "/api/v1/join",
                                   f'{{"key": "{key}", "name": "Da{NUL}na"}}')
    assert (status, body["error"]) == (400, "bad_text")
    assert (await join(client, key))["name"] == "Guest"  # the key was not used up
    notes = f"/api/v1/sessions/{scene.session_id}/notes"
    assert (await client.put(notes, json={"notes": "kept"}, headers=scene.tech.auth)).status == 200
    assert (await _raw_post(client, notes, f'{{"notes": "a{NUL}b"}}', scene.tech.auth,
                            method="PUT"))[1]["error"] == "bad_text"
    assert await (await client.get(notes, headers=scene.tech.auth)).json() == {"notes": "kept"}
    before = await _events(client, scene)
    messages = f"/api/v1/sessions/{scene.session_id}/messages"
    for headers in (scene.tech.auth, scene.user):
        for body_text in (f'{{"text": "hi {NUL}"}}', f'{{"text": "hi", "x{NUL}": 1}}'):
            status, body = await _raw_post(client, messages, body_text, headers)
            assert (status, body["error"]) == (400, "bad_text"), body_text
    socket = await open_socket(client, scene.session_id, scene.participant)
    try:
        await _error_then_alive(
            socket, f'{{"type": "chat.send", "id": "1", "text": "hi {NUL}"}}', "bad_text")
    finally:
        await socket.close()
    after = await _events(client, scene)
    assert [e["text"] for e in after[len(before):] if e["type"] == "message"] == ["still here"]


async def test_nul_first_frame(client: TestClient, scene: Scene) -> None:
    frame = f'{{"type": "hello", "token": "{scene.participant}{NUL}"}}'
    assert await _first_frame(client, scene.session_id, frame) == ("bad_text", 4401)


async def test_nul_in_paths_and_queries(client: TestClient, scene: Scene) -> None:
    session = f"/api/v1/sessions/{scene.session_id}"
    for path in ["/api/v1/sessions/a%00b", f"{session}/files/a%00b", "/api/v1/requests/a%00b",
                 "/api/v1/webhooks/a%00b/deliveries", "/api/v1/sessions?q=a%00b",
                 "/api/v1/canned-responses?q=%00", "/api/v1/sessions?x%00=1"]:
        response = await client.get(URL(path, encoded=True), headers=scene.tech.auth)
        assert response.status == 400, path
        assert (await response.json())["error"] == "bad_text", path
    for page in ["/j/a%00b", "/join?key=%00"]:
        response = await client.get(URL(page, encoded=True))
        assert response.status == 400, page
        assert "bad_text" in await response.text()


async def test_nul_in_forms(client: TestClient, tech: Tech) -> None:
    key = (await start_session(client, tech))["key"]
    for page, form in [("/join", {"key": key, "name": "Da\x00na"}),
                       ("/login", {"email": "alice\x00@example.com", "password": "x"})]:
        csrf = csrf_from(await (await client.get(page)).text())
        response = await client.post(page, data={"_csrf": csrf, **form})
        assert response.status == 400, page
        assert "bad_text" in await response.text()
    assert (await join(client, key))["name"] == "Guest"


async def test_request_line_over_8_kib_is_a_warning(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """aiohttp refuses it (400) and logged that as an error with a traceback quoting the
    line; it is a warning naming the fault (the autouse fixture allows no error)."""
    secret = "sbp_" + "s" * 9000
    response = await client.get(f"/api/v1/sessions/{secret}")
    assert response.status == 400
    warnings = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "LineTooLong" in warnings[0].getMessage()
    assert warnings[0].exc_info is None and "sss" not in warnings[0].getMessage()
