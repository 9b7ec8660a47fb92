"""Second factors through the pages, on a real broker with a fake clock: enrolling an
authenticator app, the login's second step (nothing reachable before it), replayed,
stale and guessed codes, recovery codes, fresh sign-ins, the policy, admins' resets."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from broker.factors import Requirement

from .conftest import PASSWORD, Tech, csrf_from, login
from .factor_support import code_at, recovery_codes_from, secret_from


async def _post(client: TestClient, path: str, data: dict[str, str] | None = None,
                page: str = "/login") -> Any:
    """A form as a browser sends it: with the CSRF token of a page it holds."""
    html = await (await client.get(page)).text()
    return await client.post(path, data={**(data or {}), "_csrf": csrf_from(html)},
                             allow_redirects=False)


async def _password(client: TestClient, email: str) -> Any:
    return await _post(client, "/login", {"email": email, "password": PASSWORD})


async def enrol_totp(client: TestClient, clock: FakeClock, *, page: str) -> tuple[str, list[str]]:
    """Set up an authenticator app from `page` (where the browser is); the secret and the
    recovery codes shown."""
    started = await _post(client, "/account/totp/new", page=page)
    assert started.status == 303 and started.headers["Location"] == "/account/totp"
    shown = await (await client.get("/account/totp")).text()
    assert "<svg" in shown  # the QR code
    secret = secret_from(shown)
    confirmed = await _post(client, "/account/totp", {"code": code_at(secret, clock)},
                            page="/account/totp")
    assert confirmed.status == 200, await confirmed.text()
    return secret, recovery_codes_from(await confirmed.text())


async def _enrolled(client: TestClient, clock: FakeClock, tech: Tech) -> tuple[str, list[str]]:
    await login(client, tech.technician.email)
    found = await enrol_totp(client, clock, page="/account/security")
    await _post(client, "/logout", page="/dashboard")
    clock.advance(30)  # the enrolment's code was its step's; a new one follows
    return found


async def test_a_login_with_an_app_needs_its_code_and_reaches_nothing_before(
        client: TestClient, clock: FakeClock, tech: Tech) -> None:
    secret, _ = await _enrolled(client, clock, tech)
    response = await _password(client, tech.technician.email)
    assert response.headers["Location"] == "/login/factor"
    # Only the password was given: no page, no API call with the cookie, no socket.
    for path in ("/dashboard", "/account/security", "/admin", "/sessions"):
        reached = await client.get(path, allow_redirects=False)
        assert reached.status in (303, 401, 403) and reached.headers.get(
            "Location", "/login") == "/login", path
    assert (await client.get("/api/v1/sessions")).status == 401
    assert (await client.get("/api/v1/me/factors")).status == 401
    assert (await _post(client, "/login/factor", {"code": "000000"},
                        page="/login/factor")).status == 401
    passed = await _post(client, "/login/factor", {"code": code_at(secret, clock)},
                         page="/login/factor")
    assert passed.status == 303 and passed.headers["Location"] == "/dashboard"
    assert (await client.get("/api/v1/sessions")).status == 200


async def test_replayed_and_stale_codes_are_refused(client: TestClient, clock: FakeClock,
                                                    tech: Tech) -> None:
    secret, _ = await _enrolled(client, clock, tech)
    code = code_at(secret, clock)
    await _password(client, tech.technician.email)
    assert (await _post(client, "/login/factor", {"code": code},
                        page="/login/factor")).status == 303
    await _post(client, "/logout", page="/dashboard")
    # The same code again, within its 30 seconds: used once, never again.
    await _password(client, tech.technician.email)
    assert (await _post(client, "/login/factor", {"code": code},
                        page="/login/factor")).status == 401
    # A code of a minute ago (a step beyond the allowed drift) is too old.
    clock.advance(30)
    assert (await _post(client, "/login/factor", {"code": code_at(secret, clock, -60)},
                        page="/login/factor")).status == 401
    # The previous step's code is still allowed (phones drift), once.
    assert (await _post(client, "/login/factor", {"code": code_at(secret, clock, -30)},
                        page="/login/factor")).status == 401  # that step was the one used
    assert (await _post(client, "/login/factor", {"code": code_at(secret, clock)},
                        page="/login/factor")).status == 303


async def test_recovery_codes_work_once_each(client: TestClient, clock: FakeClock,
                                             tech: Tech, broker: Broker) -> None:
    _, recovery = await _enrolled(client, clock, tech)
    await _password(client, tech.technician.email)
    # Typed as people type them: upper case, without the dash.
    typed = recovery[0].upper().replace("-", " ")
    assert (await _post(client, "/login/factor", {"code": typed},
                        page="/login/factor")).status == 303
    assert (await broker.factors.status(tech.technician)).recovery_codes_left == 9
    await _post(client, "/logout", page="/dashboard")
    await _password(client, tech.technician.email)
    assert (await _post(client, "/login/factor", {"code": recovery[0]},
                        page="/login/factor")).status == 401
    assert (await _post(client, "/login/factor", {"code": recovery[1]},
                        page="/login/factor")).status == 303


async def test_guessing_codes_is_limited_per_technician(client: TestClient, clock: FakeClock,
                                                        tech: Tech, broker: Broker) -> None:
    secret, _ = await _enrolled(client, clock, tech)
    await _password(client, tech.technician.email)
    free = broker.settings.factor_free_failures
    for guess in range(free + 1):  # the free ones, then the first that starts a delay
        wrong = await _post(client, "/login/factor", {"code": f"{guess:06d}"},
                            page="/login/factor")
        assert wrong.status == 401
    # Now even the right code waits (from any browser: the count is the technician's).
    right = await _post(client, "/login/factor", {"code": code_at(secret, clock)},
                        page="/login/factor")
    assert right.status == 429
    clock.advance(2)
    right = await _post(client, "/login/factor", {"code": code_at(secret, clock)},
                        page="/login/factor")
    assert right.status == 303


async def test_changing_factors_needs_a_fresh_sign_in(client: TestClient, clock: FakeClock,
                                                      tech: Tech, broker: Broker) -> None:
    await login(client, tech.technician.email)
    clock.advance(301)
    started = await _post(client, "/account/totp/new", page="/account/security")
    assert started.headers["Location"] == "/account/confirm?next=/account/security"
    wrong = await _post(client, "/account/confirm", {"password": "not it"},
                        page="/account/confirm")
    assert wrong.status == 400 and "Wrong password." in await wrong.text()
    confirmed = await _post(client, "/account/confirm", {"password": PASSWORD,
                                                         "next": "/account/security"},
                            page="/account/confirm")
    assert confirmed.headers["Location"] == "/account/security"
    await enrol_totp(client, clock, page="/account/security")
    # Removing it later needs it again.
    clock.advance(301)
    removed = await _post(client, "/account/totp/remove", page="/account/security")
    assert removed.headers["Location"].startswith("/account/confirm")
    assert (await broker.factors.status(tech.technician)).totp
    # Fresh API tokens change nothing: the API only reads one's factors.
    mine = await client.get("/api/v1/me/factors", headers=tech.auth)
    assert (await mine.json())["totp"] is True


async def test_the_policy_leads_through_enrolment_first(
        client: TestClient, clock: FakeClock, make_tech: Any, broker: Broker) -> None:
    root = await make_tech("Root", admin=True)
    maria = await make_tech("Maria")
    changed = await client.put("/api/v1/factor-policy", json={"required": "everyone"},
                               headers=root.auth)
    assert changed.status == 200
    assert await broker.factors.requirement() is Requirement.EVERYONE
    response = await _password(client, maria.technician.email)
    assert response.headers["Location"] == "/account/security"
    page = await (await client.get("/account/security")).text()
    assert "requires a second factor" in page
    for path in ("/dashboard", "/sessions", "/password"):
        reached = await client.get(path, allow_redirects=False)
        assert reached.headers.get("Location") == "/login", path
    assert (await client.get("/api/v1/sessions")).status == 401
    _, recovery = await enrol_totp(client, clock, page="/account/security")
    assert len(recovery) == 10
    # The codes were shown; "Continue" starts the login.
    going = await _post(client, "/login/factor", page="/account/security")
    assert going.headers["Location"] == "/dashboard"
    assert (await client.get("/api/v1/sessions")).status == 200
    # The last factor cannot go while it is required.
    removed = await _post(client, "/account/totp/remove", page="/account/security")
    assert removed.status == 409
    # "admins" leaves Maria free to remove it.
    await client.put("/api/v1/factor-policy", json={"required": "admins"}, headers=root.auth)
    assert (await _post(client, "/account/totp/remove", page="/account/security")).status == 303
    assert not (await broker.factors.status(maria.technician)).any


async def test_admins_reset_factors_of_others_never_their_own(
        client: TestClient, clock: FakeClock, make_tech: Any, broker: Broker) -> None:
    root, other_admin = await make_tech("Root", admin=True), await make_tech("Ops", admin=True)
    maria = await make_tech("Maria")
    await _enrolled(client, clock, maria)
    refused = await client.post(f"/api/v1/technicians/{maria.technician.id}/factors/reset",
                                headers=maria.auth)
    assert refused.status == 403
    reset = await client.post(f"/api/v1/technicians/{maria.technician.id}/factors/reset",
                              headers=root.auth)
    assert reset.status == 200 and (await reset.json())["second_factor"] is False
    assert not (await broker.factors.status(maria.technician)).any
    # Root's own: only another admin.
    await _enrolled(client, clock, root)
    own = await client.post(f"/api/v1/technicians/{root.technician.id}/factors/reset",
                            headers=root.auth)
    assert own.status == 403 and (await own.json())["error"] == "own_factors"
    other = await client.post(f"/api/v1/technicians/{root.technician.id}/factors/reset",
                              headers=other_admin.auth)
    assert other.status == 200
