"""Passkeys over HTTP with a software authenticator (tests/passkey_support.py): the
second step and the sign-in alone work with a right answer; a replayed answer (its
challenge used up), one for another origin, another technician's passkey, and a passkey
alone that did not verify its user are refused; asking for options is rate limited."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from broker.core import Broker

from .conftest import PASSWORD, Tech, csrf_from
from .passkey_support import SoftAuthenticator


async def _csrf(client: TestClient, page: str) -> str:
    html = await (await client.get(page)).text()
    found = re.search(r'data-csrf="([^"]+)"', html)
    return found.group(1) if found else csrf_from(html)


async def _options(client: TestClient, path: str, page: str) -> dict[str, Any]:
    response = await client.post(path, headers={"X-CSRF-Token": await _csrf(client, page)})
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def _post(client: TestClient, path: str, data: dict[str, str], page: str) -> Any:
    return await client.post(path, data={**data, "_csrf": await _csrf(client, page)},
                             allow_redirects=False)


async def _password(client: TestClient, email: str) -> str:
    response = await _post(client, "/login", {"email": email, "password": PASSWORD}, "/login")
    return str(response.headers["Location"])


async def _log_out(client: TestClient) -> None:
    await _post(client, "/logout", {}, "/dashboard")


async def _register(client: TestClient, broker: Broker, tech: Tech) -> SoftAuthenticator:
    assert await _password(client, tech.technician.email) == "/dashboard"
    key = SoftAuthenticator(broker.settings.base_url)
    options = await _options(client, "/account/passkeys/options", "/account/security")
    added = await _post(client, "/account/passkeys", {
        "name": "Laptop", "credential": key.register(options)}, "/account/security")
    assert added.status == 200 and len(re.findall(r"<li><code>", await added.text())) == 10
    await _log_out(client)
    return key


async def test_the_second_step_and_the_sign_in_alone(client: TestClient, broker: Broker,
                                                     tech: Tech) -> None:
    key = await _register(client, broker, tech)
    assert await _password(client, tech.technician.email) == "/login/factor"
    options = await _options(client, "/login/passkey/options", "/login/factor")
    assert [c["id"] for c in options["allowCredentials"]] == [key.credential_b64]
    answer = key.sign(options)
    passed = await _post(client, "/login/passkey", {"credential": answer}, "/login/factor")
    assert passed.headers["Location"] == "/dashboard"
    await _log_out(client)

    # The same answer again: its challenge is used up.
    assert await _password(client, tech.technician.email) == "/login/factor"
    replayed = await _post(client, "/login/passkey", {"credential": answer}, "/login/factor")
    assert replayed.status == 401
    # An answer made for another site.
    options = await _options(client, "/login/passkey/options", "/login/factor")
    forged = key.sign(options, origin="https://phish.example.com")
    assert (await _post(client, "/login/passkey", {"credential": forged},
                        "/login/factor")).status == 401
    await client.get("/login")  # start over: no pending sign-in is needed below
    await _post(client, "/logout", {}, "/login")

    # Alone from the login page, only with the user verified.
    options = await _options(client, "/login/passkey/options", "/login")
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    unverified = key.sign(options, verified=False)
    assert (await _post(client, "/login/passkey", {"credential": unverified},
                        "/login")).status == 401
    options = await _options(client, "/login/passkey/options", "/login")
    alone = await _post(client, "/login/passkey", {"credential": key.sign(options)}, "/login")
    assert alone.headers["Location"] == "/dashboard"
    assert (await client.get("/api/v1/me/factors")).status == 200


async def test_another_technicians_passkey_is_no_second_step(
        client: TestClient, broker: Broker, make_tech: Any) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    alices = await _register(client, broker, alice)
    await _register(client, broker, bob)
    assert await _password(client, bob.technician.email) == "/login/factor"
    options = await _options(client, "/login/passkey/options", "/login/factor")
    refused = await _post(client, "/login/passkey", {"credential": alices.sign(options)},
                          "/login/factor")
    assert refused.status == 401
    assert (await client.get("/dashboard", allow_redirects=False)).headers[
        "Location"] == "/login"


async def test_asking_for_options_is_rate_limited(client: TestClient) -> None:
    csrf = await _csrf(client, "/login")
    statuses = [(await client.post("/login/passkey/options",
                                   headers={"X-CSRF-Token": csrf})).status for _ in range(21)]
    assert statuses == [200] * 20 + [429]
