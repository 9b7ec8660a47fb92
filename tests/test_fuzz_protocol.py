"""Every frame a client may send (the CLIENT registry of broker/protocol/, so a new frame
type is fuzzed without a word here), valid and mutated (tests/fuzz_support.py: wrong
types, missing and extra fields, huge numbers, NaN, deep nesting, odd Unicode, NUL and
lone surrogates, oversize frames, binary frames), over real sockets of a live broker: the
technician's, the end user's and the agent's.

After each frame the socket must answer a marker frame (so it lives on and read the frame
before it); every `error` it sent has a code docs/protocol.md lists, a frame the documents
refuse is refused with its code and stores no event, and the broker logs no error. After
every frame type a chat line still goes from the end user to the technician and back; the
first frame of a fresh socket is fuzzed as well (refused frames close it with 4401/4403).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import types
import typing
from collections.abc import Iterator
from typing import Any, Final

import aiohttp
import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from broker import protocol
from broker.protocol.rtc import Direction, Source
from web.state import get_broker

from .fuzz_support import (
    KINDS,
    REFUSE,
    SMALL_INTS,
    Case,
    Field,
    cases,
    fuzz_settings,
    protocol_codes,
    strings_pool,
)
from .live_broker import ErrorLog
from .openapi_world import BrokerThread, Person
from .rtc_support import CANDIDATE, SDP
from .share_scripts import ROLES, SCRIPTS

pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies")
CODES: Final = protocol_codes()
# docs/protocol.md, Errors: the code of each kind of frame that does not decode.
FRAME_CODES: Final = {"wrong_type": "bad_message", "missing": "bad_message",
                      "huge": "bad_message", "not_object": "bad_message"}
SETTINGS: Final = {"chat_burst": 1_000_000, "transfer_min_free_bytes": 0}
SECONDS: Final = 15
# What string fields name: shares (a few ids, so that frames meet earlier ones), their
# directions, sources and reasons, signaling, the agent.
STRINGS: Final = ("s1", "s2", "s3", *Direction, *Source, "stopped", "cancelled", SDP,
                  CANDIDATE, "0", "Linux", "1.0")


def _kinds(hint: Any) -> frozenset[str]:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    names = {str: "string", int: "integer", float: "number", bool: "boolean",
             type(None): "null"}
    return frozenset(names.get(kind) or ("object" if typing.get_origin(kind) is dict
                                         else "array") for kind in allowed)


def frame_fields(cls: type[protocol.Message]) -> tuple[Field, ...]:
    fields = []
    for name, hint, required in protocol._fields(cls):
        kinds = _kinds(hint)
        made = [{"string": strings_pool(*STRINGS), "integer": SMALL_INTS}.get(kind, KINDS[kind])
                for kind in sorted(kinds)]
        fields.append(Field(name, kinds, required, st.one_of(made)))
    return tuple(fields)


@st.composite
def frames(draw: st.DrawFn, kind: str, valid_percent: int = 35) -> Case:
    """A frame of type `kind` (tests/fuzz_support.py), or now and then one of the broker's
    own frames or a binary frame."""
    pick = draw(st.integers(0, 19))
    if pick == 0:
        name = draw(st.sampled_from(sorted(protocol.SERVER)))
        return Case(f'{{"type":"{name}"}}', "unknown_type", "a broker's frame")
    if pick == 1:
        return Case(b'{"type":"ping"}', "bad_message", "binary")
    return draw(cases(frame_fields(protocol.CLIENT[kind]), {"type": kind}, FRAME_CODES,
                      size_limit=protocol.MAX_FRAME, oversize_code="frame_too_large",
                      valid_percent=valid_percent))


class Peer:
    """One open session socket; a task reads everything it is sent into a queue."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self.frames.put(message.json())
        await self.frames.put(None)  # closed

    async def next(self, kind: str | None = None) -> dict[str, Any]:
        async with asyncio.timeout(SECONDS):
            while True:
                frame = await self.frames.get()
                assert frame is not None, f"the socket closed ({self.ws.close_code})"
                if kind is None or frame["type"] == kind:
                    return frame

    def drop_pending(self) -> None:
        while not self.frames.empty():
            if self.frames.get_nowait() is None:
                raise AssertionError(f"the socket closed ({self.ws.close_code})")

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


@dataclasses.dataclass
class Scene:
    """A session with its three participants' sockets, on the broker's loop."""

    http: aiohttp.ClientSession
    base: str
    tech: Person
    session_id: str
    tokens: dict[str, str]
    peers: dict[str, Peer] = dataclasses.field(default_factory=dict)
    last_seq: int = 0
    marks: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    async def call(self, method: str, path: str, token: str | None = None,
                   **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.base + path, headers=headers,
                                     **kwargs) as response:
            assert response.status < 300, (path, await response.text())
            return await response.json()

    async def open(self, role: str, first: str | bytes | None = None) -> Peer:
        ws = await self.http.ws_connect(f"{self.base}/api/v1/sessions/{self.session_id}/ws")
        peer = Peer(ws)
        await ws.send_json({"type": "hello", "token": self.tokens[role]})
        await peer.next("synced")
        if role == "agent":
            await ws.send_json({"type": "agent.hello", "version": "fuzz", "platform": "Linux"})
            while (await peer.next("event"))["event"]["type"] != "agent.connected":
                pass
        self.peers[role] = peer
        return peer

    async def peer(self, role: str) -> Peer:
        """The role's socket, opened again if a case before closed it (it failed then)."""
        peer = self.peers.get(role)
        if peer is None or peer.ws.closed:
            peer = await self.open(role)
        return peer

    async def stored(self) -> list[dict[str, Any]]:
        """The events stored since the last look."""
        events = (await self.call("GET", f"/api/v1/sessions/{self.session_id}/events"
                                  f"?after={self.last_seq}", self.tech.token))["events"]
        if events:
            self.last_seq = events[-1]["seq"]
        return list(events)

    async def exchange(self, role: str, case: Case) -> list[dict[str, Any]]:
        """Send the case, then a marker; every frame the socket got up to the marker's
        answer (an `unknown_type` error naming it)."""
        peer = await self.peer(role)
        peer.drop_pending()
        mark = f"fuzz.mark.{next(self.marks)}"
        if isinstance(case.raw, bytes):
            await peer.ws.send_bytes(case.raw)
        else:
            await peer.ws.send_str(case.raw)
        await peer.ws.send_str(f'{{"type":"{mark}"}}')
        got = []
        while True:
            frame = await peer.next()
            if frame["type"] == "error" and mark in frame["message"]:
                return got
            got.append(frame)

    async def round_trip(self, n: int) -> None:
        """A chat line from the end user reaches the technician, and one back."""
        for sender, receiver in (("end_user", "technician"), ("technician", "end_user")):
            text = f"still here {n} from {sender}"
            source, target = await self.peer(sender), await self.peer(receiver)
            await source.ws.send_json({"type": "chat.send", "id": f"rt{n}{sender}",
                                       "text": text})
            assert (await source.next("chat.ack"))["id"] == f"rt{n}{sender}"
            while (event := (await target.next("event"))["event"]).get("text") != text:
                pass
            assert event["author"]["role"] == sender.replace("agent", "end_user")


@dataclasses.dataclass
class Live:
    broker: BrokerThread
    errors: ErrorLog
    scene: Scene
    first: Scene  # a session of its own for the first-frame cases, which replace sockets

    def run(self, coroutine: Any) -> Any:
        return self.broker.run(coroutine)


async def _scene(http: aiohttp.ClientSession, base: str, tech: Person) -> Scene:
    scene = Scene(http, base, tech, "", {"technician": tech.token})
    made = await scene.call("POST", "/api/v1/sessions", tech.token)
    joined = await scene.call("POST", "/api/v1/join", json={"key": made["key"]})
    scene.session_id = made["session_id"]
    user = joined["participant_token"]
    link = await scene.call("POST", f"/api/v1/sessions/{scene.session_id}/agent-link", user)
    agent = await scene.call("POST", "/api/v1/agent/join", json={"link": link["link"]})
    scene.tokens.update(end_user=user, agent=agent["participant_token"])
    return scene


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    broker = BrokerThread(tmp_path_factory.mktemp("fuzz-protocol"), **SETTINGS)
    with ErrorLog().installed() as errors, broker.running() as base:
        http: aiohttp.ClientSession = broker.run(_client())
        scenes: list[Scene] = []
        try:
            tech = _technician(broker)
            scenes += [broker.run(_scene(http, base, tech)) for _ in range(2)]
            live = Live(broker, errors, *scenes)
            for role in ROLES:
                live.run(live.scene.open(role))
            live.run(live.scene.stored())
            assert not errors.take()
            yield live
        finally:
            broker.run(_close(http, scenes))


async def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def _close(http: aiohttp.ClientSession, scenes: list[Scene]) -> None:
    for scene in scenes:
        await _close_peers(scene)
    await http.close()


def _technician(broker: BrokerThread) -> Person:
    async def make() -> Person:
        assert broker.app is not None
        technicians = get_broker(broker.app).technicians
        technician = await technicians.add("fuzz@example.com", "Fuzz", "correct horse battery")
        return Person(technician.id, technician.email, await technicians.create_token(
            technician.id))
    return broker.run(make())


def _check(live: Live, case: Case, answers: list[dict[str, Any]], stored: list[Any]) -> None:
    errors = [frame for frame in answers if frame["type"] == "error"]
    undocumented = [e for e in errors if e["code"] not in CODES]
    assert not undocumented, f"{case}: codes docs/protocol.md does not list: {undocumented}"
    if case.expect is not None:
        assert errors, f"{case} was not refused: {answers}"
        assert case.expect == REFUSE or [e["code"] for e in errors] == [case.expect], (
            case, errors)
        assert not stored, f"{case} was refused, but stored {stored}"
    logged = live.errors.take()
    assert not logged, f"{case}: the broker logged errors: {logged}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", sorted(protocol.CLIENT))
def test_every_client_frame(live: Live, kind: str, role: str) -> None:
    scene = live.scene

    @fuzz_settings(6)
    @given(case=frames(kind))
    def one(case: Case) -> None:
        event(case.what.split()[0])
        answers = live.run(scene.exchange(role, case))
        stored = live.run(scene.stored())
        _check(live, case, answers, stored)

    live.run(scene.stored())  # what came before is not this test's
    one()
    live.run(scene.round_trip(len(protocol.CLIENT) * ROLES.index(role)
                              + sorted(protocol.CLIENT).index(kind)))
    assert not live.errors.take()


async def _first_frame(scene: Scene, case: Case) -> tuple[list[dict[str, Any]], int | None]:
    """What a fresh socket answers to `case` as its first frame: its frames up to the
    close (or the welcome's replay), and the close code."""
    async with scene.http.ws_connect(
            f"{scene.base}/api/v1/sessions/{scene.session_id}/ws") as ws:
        if isinstance(case.raw, bytes):
            await ws.send_bytes(case.raw)
        else:
            await ws.send_str(case.raw)
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(SECONDS):
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                got.append(message.json())
                if got[-1]["type"] == "synced":
                    return got, None
        return got, ws.close_code


def hellos() -> st.SearchStrategy[Case]:
    return st.one_of(*(frames(kind) for kind in sorted(protocol.CLIENT)))


def test_first_frames(live: Live) -> None:
    """The auth phase: a good hello is welcomed; anything else gets one documented
    `error` and the close code the documents give it (4401, 4403 for another session)."""
    scene = live.first
    tokens = [*scene.tokens.values(), *live.scene.tokens.values(), "sbp_" + "x" * 40,
              "sbt_nope"]
    first_hellos = cases((Field("token", frozenset({"string", "null"}), False,
                                st.one_of(st.sampled_from(tokens), st.none())),
                          *frame_fields(protocol.CLIENT["hello"])[1:]),
                         {"type": "hello"}, FRAME_CODES, size_limit=protocol.MAX_FRAME,
                         oversize_code="frame_too_large")

    @fuzz_settings(25)
    @given(case=st.one_of(first_hellos, first_hellos, hellos()))
    def one(case: Case) -> None:
        got, close = live.run(_first_frame(scene, case))
        if close is None:  # welcomed
            assert got[0]["type"] == "welcome" and case.expect is None, (case, got)
        else:
            assert [frame["type"] for frame in got] == ["error"], (case, got)
            assert got[0]["code"] in CODES, (case, got)
            expect = "unauthenticated" if case.what == "binary" else case.expect
            if expect not in (None, REFUSE):
                assert got[0]["code"] == expect, (case, got)
            assert close == (4403 if got[0]["code"] == "forbidden" else 4401), (case, close)
        logged = live.errors.take()
        assert not logged, f"{case}: the broker logged errors: {logged}"

    one()
    live.run(live.scene.round_trip(1000))


# -- sequences: the fuzz frames meet shares in every state ----------------------------------

@st.composite
def journeys(draw: st.DrawFn) -> list[tuple[str, Case]]:
    steps: list[tuple[str, Case]] = []
    for role, frame in SCRIPTS[draw(st.sampled_from(sorted(SCRIPTS)))]:
        while draw(st.integers(0, 2)) == 0:
            kind = draw(st.sampled_from(sorted(protocol.CLIENT)))
            case = draw(frames(kind, 60))
            if case.what == "valid" and "id" in protocol.CLIENT[kind].__slots__ and draw(
                    st.booleans()):  # about the script's share
                case = Case(json.dumps({**json.loads(case.raw), "id": frame["id"]}), None,
                            "valid, the script's share")
            steps.append((draw(st.sampled_from(ROLES)), case))
        steps.append((role, Case(json.dumps(frame), None, "step")))
    return steps


def test_frame_sequences(live: Live) -> None:
    """Shares driven through their states, with fuzz frames from anyone in between; each
    journey in a session of its own, which still carries chat lines at its end."""

    # A failing journey is shown whole: shrinking one costs minutes of sessions.
    @settings(fuzz_settings(4), phases=[Phase.explicit, Phase.generate])
    @given(steps=journeys())
    def one(steps: list[tuple[str, Case]]) -> None:
        scene = live.run(_scene(live.scene.http, live.scene.base, live.scene.tech))
        try:
            for role in ROLES:
                live.run(scene.open(role))
            live.run(scene.stored())
            for role, case in steps:
                answers = live.run(scene.exchange(role, case))
                _check(live, case, answers, live.run(scene.stored()))
            live.run(scene.round_trip(0))
        finally:
            live.run(_close_peers(scene))

    one()


async def _close_peers(scene: Scene) -> None:
    for peer in scene.peers.values():
        await peer.close()
