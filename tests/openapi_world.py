"""A live broker in a thread of its own, and the real things schemathesis's calls name.

schemathesis calls the broker with `requests`, which blocks: the broker therefore runs on
its own event loop in another thread, on a loopback port, on SQLite or (in the PostgreSQL
pass) a schema of its own. `World` makes what path parameters stand for: sessions,
uploads, transfers, a team, canned responses, logins, customers' requests; shared where a
call leaves them usable, made afresh where a call uses them up (ending a session,
answering a transfer).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import re
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

import requests
from aiohttp import web

from broker.clock import Clock
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD, database_for_tests

T = TypeVar("T")
SESSION: Final = "/api/v1/sessions/{session_id}"
UPLOAD: Final = SESSION + "/files/{upload_id}"


class BrokerThread:
    """create_app served on 127.0.0.1 from a thread's event loop, until `stop`."""

    def __init__(self, directory: Path, clock: Clock | None = None, **overrides: Any) -> None:
        self._directory = directory
        self._clock = clock
        self._overrides = overrides
        self._loop = asyncio.new_event_loop()
        self._ready: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(),), name="openapi-broker")
        self.app: web.Application | None = None

    async def _serve(self) -> None:
        try:
            async with database_for_tests() as url:
                settings = Settings(data_dir=self._directory / "data", database_url=url,
                                    **self._overrides)
                self.app = create_app(settings, clock=self._clock)
                # Calls still open at the end (a webhook test event's delivery, say) get
                # a few seconds, not aiohttp's minute.
                runner = web.AppRunner(self.app, shutdown_timeout=5)
                await runner.setup()
                try:
                    site = web.TCPSite(runner, "127.0.0.1", 0)
                    await site.start()
                    port = runner.addresses[0][1]
                    self._stop = asyncio.Event()
                    self._ready.set_result(f"http://127.0.0.1:{port}")
                    await self._stop.wait()
                finally:
                    await runner.cleanup()
        except BaseException as exc:  # pytest's skip too: raised again in the test's thread
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """The base URL while the broker runs."""
        self._thread.start()
        try:
            yield self._ready.result(timeout=120)
        finally:
            if self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=120)
            assert not self._thread.is_alive(), "the broker did not stop within 2 minutes"
            self._loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run on the broker's loop (its domain objects are not thread-safe)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)


@dataclasses.dataclass
class Person:
    id: int
    email: str
    token: str


class World:
    """An admin (`root`, whose token schemathesis calls with) and a technician (`erin`),
    and what the path parameters of each operation should name."""

    def __init__(self, base: str, broker: BrokerThread) -> None:
        self.base = base
        self._keys: dict[str, str] = {}  # session id -> its support key
        self._teams = 0
        self._technicians = 0
        self.root = self._person(broker, "root@example.com", "Root", admin=True)
        self.erin = self._person(broker, "erin@example.com", "Erin", admin=False)
        self.session_id, self.participant = self.joined_session()
        self.call("POST", f"/api/v1/sessions/{self.session_id}/messages", self.root,
                  json={"text": "Hello"}, ok=201)
        self.team_id = str(self.new_team())
        self.upload_id = self.upload(b"hello")
        self.canned_id = self.new_canned()
        self.request_id = self.message()
        self.webhook_id = self.webhook()
        # (method, path) -> parameter -> a maker of a fresh value, for calls that use
        # their object up; other calls get the shared ones.
        self.fresh: dict[tuple[str, str], dict[str, Callable[[], str]]] = {
            ("POST", SESSION + "/end"): {"session_id": lambda: self.joined_session()[0]},
            ("POST", SESSION + "/revoke"): {"session_id": self.waiting_session},
            ("POST", SESSION + "/deliveries"): {"session_id": self.waiting_session},
            ("POST", SESSION + "/transfer"): {"session_id": lambda: self.joined_session()[0]},
            ("POST", SESSION + "/collaborators"): {
                "session_id": lambda: self.joined_session()[0]},
            ("POST", "/api/v1/handoffs/{handoff_id}/accept"): {"handoff_id": self.offer},
            ("POST", "/api/v1/handoffs/{handoff_id}/decline"): {"handoff_id": self.offer},
            ("POST", "/api/v1/handoffs/{handoff_id}/cancel"): {"handoff_id": self.transfer},
            ("DELETE", "/api/v1/canned-responses/{id}"): {"id": self.new_canned},
            ("POST", "/api/v1/logins/{login_id}/end"): {"login_id": self.login},
            ("POST", "/api/v1/requests/{request_id}/session"): {"request_id": self.message},
            ("DELETE", "/api/v1/webhooks/{id}"): {"id": self.webhook},
            ("DELETE", "/api/v1/tokens/{token_id}"): {"token_id": self.api_token},
            # Disabling or resetting a technician: not Erin, whom other makers need.
            ("PATCH", "/api/v1/technicians/{technician_id}"): {
                "technician_id": self.technician},
            ("POST", "/api/v1/technicians/{technician_id}/password-reset"): {
                "technician_id": self.technician},
            ("PATCH", UPLOAD): {"upload_id": lambda: self.upload(b"")},
            ("DELETE", UPLOAD): {"upload_id": lambda: self.upload(b"")},
            ("DELETE", "/api/v1/teams/{team_id}/members/{technician_id}"): {
                "team_id": lambda: str(self.new_team())},
        }
        self.shared = {"session_id": self.session_id, "team_id": self.team_id,
                       "technician_id": str(self.erin.id), "upload_id": self.upload_id,
                       "request_id": self.request_id}

    def _person(self, broker: BrokerThread, email: str, name: str, *, admin: bool) -> Person:
        async def make() -> Person:
            assert broker.app is not None
            technicians = get_broker(broker.app).technicians
            technician = await technicians.add(email, name, PASSWORD, is_admin=admin)
            return Person(technician.id, email, await technicians.create_token(technician.id))
        return broker.run(make())

    def call(self, method: str, path: str, who: Person | str | None = None, *,
             ok: int | None = None, **kwargs: Any) -> requests.Response:
        token = who.token if isinstance(who, Person) else who
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = requests.request(method, self.base + path, headers=headers, timeout=30,
                                    **kwargs)
        if ok is not None:
            assert response.status_code == ok, (method, path, response.text)
        return response

    def parameter(self, method: str, path: str, name: str) -> str:
        make = self.fresh.get((method, path), {}).get(name)
        if make is not None:
            return make()
        if name == "id":  # two kinds of thing are called {id}
            return self.webhook_id if path.startswith("/api/v1/webhooks/") else self.canned_id
        assert name in self.shared, f"World makes no {name!r} for {method} {path}"
        return self.shared[name]

    # -- the makers ---------------------------------------------------------------------

    def waiting_session(self, owner: Person | None = None) -> str:
        made = self.call("POST", "/api/v1/sessions", owner or self.root, ok=201).json()
        self._keys[made["session_id"]] = made["key"]
        return str(made["session_id"])

    def joined_session(self, owner: Person | None = None) -> tuple[str, str]:
        session_id = self.waiting_session(owner)
        joined = self.call("POST", "/api/v1/join", json={"key": self._keys[session_id]},
                           ok=200).json()
        return session_id, str(joined["participant_token"])

    def offer(self) -> str:
        """A transfer of Erin's session to Root, for Root to answer."""
        session_id, _ = self.joined_session(self.erin)
        made = self.call("POST", f"/api/v1/sessions/{session_id}/transfer", self.erin,
                         json={"note": "Yours?", "to_technician_id": self.root.id}, ok=201)
        return str(made.json()["handoff_id"])

    def transfer(self) -> str:
        """A transfer of Root's session to Erin, for Root to take back."""
        session_id, _ = self.joined_session()
        made = self.call("POST", f"/api/v1/sessions/{session_id}/transfer", self.root,
                         json={"note": "Yours?", "to_technician_id": self.erin.id}, ok=201)
        return str(made.json()["handoff_id"])

    def new_team(self) -> int:
        self._teams += 1
        team = self.call("POST", "/api/v1/teams", self.root, ok=201,
                         json={"name": f"Desk {self._teams}"}).json()
        self.call("POST", f"/api/v1/teams/{team['team_id']}/members", self.root, ok=200,
                  json={"technician_id": self.erin.id})
        return int(team["team_id"])

    def new_canned(self) -> str:
        made = self.call("POST", "/api/v1/canned-responses", self.root, ok=201, json={
            "scope": "personal", "title": "Greeting", "text": "Hello {customer}"})
        return str(made.json()["id"])

    def technician(self) -> str:
        self._technicians += 1
        made = self.call("POST", "/api/v1/technicians", self.root, ok=201, json={
            "email": f"tech{self._technicians}@example.com", "name": "Temp"})
        return str(made.json()["id"])

    def webhook(self) -> str:
        """An endpoint nothing listens at (its deliveries fail and are retried)."""
        made = self.call("POST", "/api/v1/webhooks", self.root, ok=201, json={
            "url": "https://127.0.0.1:9/hook", "events": ["session.created"]})
        return str(made.json()["id"])

    def api_token(self) -> str:
        """A token of Root's own, never used (revoking Root's own would stop the run)."""
        made = self.call("POST", "/api/v1/tokens", self.root, ok=201, json={
            "scopes": ["sessions:read"], "name": "spare"})
        return str(made.json()["id"])

    def message(self) -> str:
        """A customer's request left as a message (nobody has a dashboard open)."""
        made = self.call("POST", "/api/v1/requests", ok=202, json={
            "team": self.team_id, "name": "Carla", "email": "carla@example.com",
            "description": "The printer prints nothing."})
        return str(made.json()["request_id"])

    def upload(self, data: bytes) -> str:
        """Root's upload in the shared session: complete with `data`, or open (10 bytes
        announced, none sent)."""
        created = self.call("POST", f"/api/v1/sessions/{self.session_id}/files/", self.root,
                            ok=201, headers={"Tus-Resumable": "1.0.0",
                                             "Upload-Length": str(len(data) or 10),
                                             "Upload-Metadata": "filename bm90ZS50eHQ="})
        location = created.headers["Location"]
        if data:
            self.call("PATCH", location, self.root, ok=204, data=data, headers={
                "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream"})
        return location.rsplit("/", 1)[-1]

    def login(self) -> str:
        """A browser login of Erin's, for Root to end."""
        browser = requests.Session()
        page = browser.get(self.base + "/login", timeout=30).text
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
        assert csrf
        browser.post(self.base + "/login", allow_redirects=False, timeout=30, data={
            "email": self.erin.email, "password": PASSWORD, "_csrf": csrf.group(1)})
        logins = self.call("GET", "/api/v1/logins", self.root, ok=200).json()["logins"]
        return str([x for x in logins if x["technician"]["id"] == self.erin.id][-1]["login_id"])
