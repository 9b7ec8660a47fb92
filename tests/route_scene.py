"""The world the route matrix calls routes in (tests/test_route_matrix.py): the people
(an owner, another technician, an admin), an API client, and a scene (a session with
its end user, and the objects each route's path names)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession, CookieJar, DummyCookieJar
from aiohttp.test_utils import TestClient
from yarl import URL

from web.state import get_broker

from .conftest import PASSWORD, Tech, csrf_from
from .route_policy import SECRET, _canned, _webhook


@dataclasses.dataclass
class People:
    """Made once per module: technicians, and end users of sessions that are not the scene's."""

    alice: Tech  # the scene's technician
    bob: Tech  # another technician
    root: Tech  # an admin
    erin: Tech  # a third technician: transfers and teams involve her
    other_user: str  # the end user of Bob's running session
    ended_user: str  # the end user of Bob's ended session


class Api:
    """Calls with bearer tokens and no cookies, to set scenes up."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, token: str | None = None, *,
                   ok: int | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with ClientSession(cookie_jar=DummyCookieJar()) as http:
            async with http.request(method, self.client.make_url(path),
                                    headers={**headers, **kwargs.pop("headers", {})},
                                    **kwargs) as response:
                if ok is not None:
                    assert response.status == ok, (method, path, await response.text())
                if response.content_type == "application/json":
                    return await response.json()
                return response

    async def start(self, tech: Tech) -> dict[str, Any]:
        return dict(await self.call("POST", "/api/v1/sessions", tech.token, ok=201))

    async def join_new(self, tech: Tech) -> dict[str, Any]:
        started = await self.start(tech)
        return dict(await self.call("POST", "/api/v1/join", json={"key": started["key"]},
                                    ok=200))


class Scene:
    """Alice's running session with its end user and a message; everything else a route
    needs (uploads, transfers, a team, a login, fresh keys) is made when first asked for."""

    def __init__(self, client: TestClient, people: People) -> None:
        self.client = client
        self.people = people
        self.api = Api(client)
        self.session_id = ""
        self.own_user = ""
        self.lang = "de"
        self._made: dict[str, str] = {}
        self._jars: list[ClientSession] = []
        # Undone after each call: what would change later calls' logins.
        self._after_call: list[Callable[[], Awaitable[None]]] = []

    async def start(self) -> Scene:
        joined = await self.api.join_new(self.people.alice)
        self.session_id, self.own_user = joined["session_id"], joined["participant_token"]
        await self.api.call("POST", f"/api/v1/sessions/{self.session_id}/messages",
                            self.people.alice.token, json={"text": SECRET}, ok=201)
        return self

    async def close(self) -> None:
        await self.settle()
        for jar in self._jars:
            await jar.close()

    async def settle(self) -> None:
        while self._after_call:
            await self._after_call.pop()()

    async def param(self, name: str) -> str:
        """A path parameter: the scene's attribute, or made now by `make_<name>`."""
        if name in ("session_id", "lang"):
            return str(getattr(self, name))
        if name not in self._made:
            self._made[name] = await getattr(self, f"make_{name}")()
        return self._made[name]

    async def counter(self) -> int:
        self._count = getattr(self, "_count", 0) + 1
        return self._count

    async def new_link_token(self) -> str:
        started = await self.api.start(self.people.alice)
        return str(URL(started["join_url"]).path.rsplit("/", 1)[-1])

    async def agent_link(self) -> str:
        made = await self.api.call("POST", f"/api/v1/sessions/{self.session_id}/agent-link",
                                   self.own_user, ok=201)
        return str(made["link"])

    async def make_passkey_id(self) -> str:
        """A passkey of Alice's, stored as a registration would store it."""
        store = get_broker(self.client.app).factors.store
        alice = self.people.alice.technician.id
        credential = f"credential-{self.session_id}-{await self.counter()}"
        await store.add_passkey(alice, credential, b"key", 0, "Laptop", [])
        found = await store.passkey(credential)
        assert found is not None

        async def remove() -> None:  # else Alice's next logins would ask for it
            await store.remove_passkey(alice, found.id)
            self._made.pop("passkey_id", None)
        self._after_call.append(remove)
        return str(found.id)

    async def make_token(self) -> str:
        return await self.new_link_token()

    async def make_upload_done(self) -> str:
        path = await self._upload(b"hello")
        return path

    async def make_upload_open(self) -> str:
        return await self._upload(b"")

    async def _upload(self, data: bytes) -> str:
        created = await self.api.call(
            "POST", f"/api/v1/sessions/{self.session_id}/files/", self.own_user, ok=201,
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data) or 10),
                     "Upload-Metadata": "filename bm90ZS50eHQ="})
        location = created.headers["Location"]
        if data:
            await self.api.call("PATCH", location, self.own_user, ok=204, data=data, headers={
                "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream"})
        return str(location.rsplit("/", 1)[-1])

    async def make_handoff_to_own(self) -> str:
        erin, alice = self.people.erin, self.people.alice
        joined = await self.api.join_new(erin)
        made = await self.api.call(
            "POST", f"/api/v1/sessions/{joined['session_id']}/transfer", erin.token, ok=201,
            json={"note": "Yours?", "to_technician_id": alice.technician.id})
        return str(made["handoff_id"])

    async def make_handoff_from_own(self) -> str:
        made = await self.api.call(
            "POST", f"/api/v1/sessions/{self.session_id}/transfer", self.people.alice.token,
            ok=201, json={"note": "Yours?", "to_technician_id": self.people.erin.technician.id})
        return str(made["handoff_id"])

    async def make_canned_id(self) -> str:
        """A personal canned response of Alice's."""
        made = await self.api.call("POST", "/api/v1/canned-responses", self.people.alice.token,
                                   ok=201, json=await _canned(self))
        return str(made["id"])

    async def make_token_id(self) -> str:
        """An API token of Alice's."""
        made = await self.api.call("POST", "/api/v1/tokens", self.people.alice.token, ok=201,
                                   json={"name": "Script", "scopes": ["sessions:read"]})
        return str(made["id"])

    async def make_webhook_id(self) -> str:
        made = await self.api.call("POST", "/api/v1/webhooks", self.people.root.token,
                                   ok=201, json=await _webhook(self))
        return str(made["id"])

    async def make_team_id(self) -> str:
        root = self.people.root.token
        team = await self.api.call("POST", "/api/v1/teams", root, ok=201,
                                   json={"name": f"Desk {self.session_id}"})
        await self.api.call("POST", f"/api/v1/teams/{team['team_id']}/members", root, ok=200,
                            json={"technician_id": self.people.erin.technician.id})
        return str(team["team_id"])

    async def make_request_id(self) -> str:
        """A message left for the scene's team (nobody of it is online)."""
        made = await self.api.call("POST", "/api/v1/requests", ok=202, json={
            "team": await self.param("team_id"), "name": "Dana", "email": "dana@example.com",
            "description": "Nobody there?"})
        return str(made["request_id"])

    async def make_technician_id(self) -> str:
        await self.param("team_id")  # a member of the scene's team
        return str(self.people.erin.technician.id)

    async def make_login_id(self) -> str:
        """A login of Erin's (ending it logs nobody else out)."""
        await self.jar(self.people.erin)
        logins = await self.api.call("GET", "/api/v1/logins", self.people.root.token, ok=200)
        mine = [login for login in logins["logins"]
                if login["technician"]["id"] == self.people.erin.technician.id]
        return str(mine[-1]["login_id"])

    async def jar(self, tech: Tech | None = None) -> ClientSession:
        """A browser: logged in as `tech`, or anonymous."""
        http = ClientSession(self.client.make_url("/"), cookie_jar=CookieJar(unsafe=True))
        self._jars.append(http)
        if tech is not None:
            page = await (await http.get("/login")).text()
            response = await http.post("/login", allow_redirects=False, data={
                "email": tech.technician.email, "password": PASSWORD,
                "_csrf": csrf_from(page)})
            assert response.status == 303, await response.text()
        return http
