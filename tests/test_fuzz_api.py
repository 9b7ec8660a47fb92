"""Every JSON body of the /api/v1 API (each operation of the OpenAPI description with an
`application/json` request body, which tests/test_openapi.py holds to the router), valid
and mutated (tests/fuzz_support.py: wrong types, missing and extra members, huge numbers,
NaN, deep nesting, odd Unicode, NUL and lone surrogates, bodies over 64 KiB, no JSON),
sent with the right credential to a live broker, at path parameters that name real things
(tests/openapi_world.py).

tests/test_openapi_fuzz.py (schemathesis) checks answers against the description; this
file sends what schemathesis does not: bodies broken in the ways that have broken the
broker. No answer may be a 5xx; every 4xx carries a (status, code) pair docs/api.md
lists, and a refused call changed nothing in the database; the broker logs no error; and
after each operation's cases the shared session still carries chat lines both ways.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from typing import Any, Final

import pytest
import requests
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from broker.clock import FakeClock
from broker.schema import metadata
from broker.sessions import search
from web.openapi import document
from web.state import get_broker

from .fuzz_support import (
    KINDS,
    REFUSE,
    SMALL_INTS,
    Case,
    Field,
    api_codes,
    cases,
    fuzz_settings,
    texts,
)
from .live_broker import ErrorLog
from .openapi_world import BrokerThread, World
from .test_openapi_fuzz import END_USER_ONLY, SETTINGS

pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies")
CODES: Final = api_codes()
DOCUMENT: Final = document()
BODY_LIMIT: Final = 64 * 1024  # create_app's client_max_size
# Operations whose members left out keep their defaults (docs/api.md), although the
# description (shared with the answer, which has them all) calls them required.
DEFAULTS_FOR_LEFT_OUT: Final = {("PUT", "/api/v1/intake-form"), ("PUT", "/api/v1/survey")}
FORM: Final = "@form"  # in real values: (name, required) of the pre-chat form's fields
# What changes without any call of this test, or on every call whatever it is: node
# heartbeats, the webhook worker's retries (World's endpoint refuses them) and how long
# an endpoint has been failing, deliveries the worker sends, the last use of a token or
# login; and the audit log, which keeps some refusals on purpose (failed key guesses).
# None: the whole table.
VOLATILE: Final[dict[str, set[str] | None]] = {
    "broker_meta": None, "nodes": None, "node_sessions": None, "node_dashboards": None,
    "webhook_messages": None, "webhook_cursors": None, "deliveries": None,
    "delivery_attempts": None, "api_tokens": None, "logins": None,
    "webhook_endpoints": {"failing_since", "updated_at"}, "audit_records": None,
    "audit_chain": None}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _kinds(schema: dict[str, Any]) -> frozenset[str]:
    kind = schema.get("type")
    if kind is None and "enum" in schema:
        return frozenset({"string"} if all(isinstance(v, str) for v in schema["enum"])
                         else set())
    return frozenset([kind] if isinstance(kind, str) else kind or [])


def values_of(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values a schema describes (roughly: bounds are kept, formats not)."""
    schema = _resolve(schema)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    made = []
    for kind in sorted(_kinds(schema)) or ["string"]:
        if kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            made.append(st.one_of(st.integers(low, high), SMALL_INTS) if low is not None
                        else SMALL_INTS)
        elif kind == "string":
            made.append(texts(min(schema.get("maxLength", 40), 200)))
        elif kind == "array" and depth < 3:
            made.append(st.lists(values_of(schema.get("items", {}), depth + 1), max_size=3))
        elif kind == "object" and depth < 3:
            fields = body_fields(schema, {}, depth + 1)
            made.append(st.fixed_dictionaries(
                {f.name: f.values for f in fields if f.required},
                optional={f.name: f.values for f in fields if not f.required}))
        else:
            made.append(KINDS.get(kind, st.none()))
    return st.one_of(made)


def body_fields(schema: dict[str, Any], real: dict[str, list[Any]],
                depth: int = 0) -> tuple[Field, ...]:
    """The members of an object schema; where `real` knows values (a key that exists, a
    technician's id), mostly those."""
    schema = _resolve(schema)
    required = set(schema.get("required", []))
    properties = dict(schema.get("properties", {}))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):  # a flat form of answers: the pre-chat form's fields
        form = dict(real.get(FORM, []))
        properties.update({name: extra for name in form if name not in properties})
        required |= {name for name, needed in form.items() if needed}
    fields = []
    for name, member in properties.items():
        values = values_of(member, depth)
        if real.get(name):
            values = st.one_of(st.sampled_from(real[name]), st.sampled_from(real[name]),
                               values)
        fields.append(Field(name, _kinds(_resolve(member)), name in required, values))
    return tuple(fields)


def json_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation that takes a JSON body."""
    return sorted((method.upper(), path) for path, operations in DOCUMENT["paths"].items()
                  for method, operation in operations.items()
                  if "application/json" in operation.get("requestBody", {}).get("content", {}))


class Digest:
    """A fingerprint of every table but the VOLATILE ones, read on the broker's loop."""

    def __init__(self, broker: BrokerThread) -> None:
        self._broker = broker

    def take(self) -> dict[str, str]:
        async def read() -> dict[str, str]:
            assert self._broker.app is not None
            engine = get_broker(self._broker.app).engine
            found = {}
            async with engine.begin() as conn:
                # The history search's words settle first: the journal's writer adds them
                # in quiet moments (broker/sessions/search.py), which may fall anywhere.
                await search.catch_up(conn)
            async with engine.connect() as conn:
                for table in metadata.sorted_tables:
                    volatile = VOLATILE.get(table.name, set())
                    if volatile is not None:
                        rows = (await conn.execute(sa.select(*(
                            c for c in table.columns if c.name not in volatile)))).all()
                        found[table.name] = hashlib.sha256(
                            repr(sorted(map(repr, rows))).encode()).hexdigest()
            return found
        return self._broker.run(read())


class Live:
    def __init__(self, world: World, broker: BrokerThread, errors: ErrorLog) -> None:
        self.world, self.broker, self.errors = world, broker, errors
        self.digest = Digest(broker)
        self.emails = itertools.count()

    def real_values(self) -> dict[str, list[Any]]:
        """What body members name: things that exist (made afresh where a call uses them)."""
        world = self.world
        made = world.call("POST", "/api/v1/sessions", world.root, ok=201).json()
        joined_id, participant = world.joined_session()
        link = world.call("POST", f"/api/v1/sessions/{joined_id}/agent-link", participant,
                          ok=201).json()["link"]
        form = world.call("GET", "/api/v1/intake-form", world.root, ok=200).json()
        return {
            FORM: [(field["name"], field["required"]) for field in form["fields"]
                   if field["enabled"]],
            "key": [made["key"]], "token": [made["join_url"].rsplit("/", 1)[-1]],
            "link": [link], "technician_id": [world.erin.id],
            "to_technician_id": [world.erin.id], "to_team_id": [int(world.team_id)],
            "team_id": [int(world.team_id), None], "team": [world.team_id],
            "channel": ["email", "sms"], "to": ["dana@example.com", "+4915112345678"],
            "language": ["en", "de"], "email": [f"fz{next(self.emails)}@example.com", None],
            "url": ["https://127.0.0.1:9/hook"], "events": [["session.created"]],
            "name": ["Dana"], "description": ["The printer prints nothing."],
            "text": ["Hello"], "note": ["Yours?"]}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # A clock that stands still: nothing expires behind the calls' backs (a key of a
    # second's lifetime that a case made would end its session in the sweep).
    broker = BrokerThread(tmp_path_factory.mktemp("fuzz-api"), FakeClock(), **SETTINGS)
    with ErrorLog().installed() as errors, broker.running() as base:
        live = Live(World(base, broker), broker, errors)
        assert not errors.take()
        yield live


def _send(live: Live, method: str, path: str, token: str | None,
          case: Case) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    raw = case.raw.encode("utf-8") if isinstance(case.raw, str) else case.raw
    return requests.request(method, live.world.base + path, data=raw, headers=headers,
                            timeout=30)


def _check(case: Case, response: requests.Response, before: dict[str, str],
           after: dict[str, str]) -> None:
    status = response.status_code
    assert status < 500, f"{case}: {status} {response.text[:500]}"
    if status >= 400:
        body = response.json()
        assert (status, body.get("error")) in CODES, (
            f"{case}: {status} {body} is not in docs/api.md's errors")
        changed = sorted(name for name in after if after[name] != before.get(name))
        assert not changed, f"{case} was refused ({status}), but {changed} changed"
    if case.expect is not None:
        assert status >= 400, f"{case} was taken: {status} {response.text[:300]}"
        # A route may look at its object before the body (409: the session has not
        # ended); an answer about the body names what is wrong with it.
        if case.expect != REFUSE and status in (400, 413):
            assert response.json()["error"] == case.expect, (case, response.text[:300])


def _round_trip(live: Live, n: int) -> None:
    """The shared session still carries a chat line from the end user and one back."""
    world = live.world
    path = f"/api/v1/sessions/{world.session_id}"
    for n_, who in enumerate((world.participant, world.root)):
        text = f"still here {n}.{n_}"
        world.call("POST", f"{path}/messages", who, ok=201, json={"text": text})
        other = world.root if who == world.participant else world.participant
        events = world.call("GET", f"{path}/events", other, ok=200).json()["events"]
        assert events[-1]["text"] == text


OPERATIONS: Final = json_operations()


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_json_body(live: Live, method: str, path: str) -> None:
    world = live.world
    operation = DOCUMENT["paths"][path][method.lower()]
    # The admin's token, or the end user's where only they may call.
    schemes = {name for option in operation.get("security", [{}]) for name in option}
    token = (None if not schemes else world.root.token if "apiToken" in schemes
             and (method, path) not in END_USER_ONLY else world.participant)
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    state: dict[str, Any] = {}
    fresh = (method, path) in world.fresh  # a call that takes its object uses it up

    def prepare(real_values: bool) -> None:
        """Path parameters, and the values body members name (again after a call that
        may have used them up: a key, an agent link)."""
        state["path"] = path.format(**{
            name: world.parameter(method, path, name) for name in _placeholders(path)})
        if real_values:
            real = live.real_values()
            if method in ("PUT", "PATCH"):  # what the same path answers now is a real body
                current = world.call("GET", state["path"], token)
                if current.status_code == 200 and isinstance(current.json(), dict):
                    real.update({k: [v] for k, v in current.json().items()})
            lenient = {"missing": None} if (method, path) in DEFAULTS_FOR_LEFT_OUT else {}
            state["cases"] = cases(body_fields(schema, real), {}, lenient,
                                   size_limit=BODY_LIMIT,
                                   oversize_code="request_entity_too_large",
                                   null_is_absent=True)
        state["digest"] = live.digest.take()

    prepare(real_values=True)

    @fuzz_settings(6)
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        case = data.draw(state["cases"])
        response = _send(live, method, state["path"], token, case)
        after = live.digest.take()
        try:
            _check(case, response, state["digest"], after)
            logged = live.errors.take()
            assert not logged, f"{case}: the broker logged errors: {logged}"
        finally:
            state["digest"] = after
            if response.status_code < 400 and (fresh or token is None):
                prepare(real_values=token is None)

    one()
    _round_trip(live, OPERATIONS.index((method, path)))
    assert not live.errors.take()


def _placeholders(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
