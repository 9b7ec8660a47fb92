"""Limits that held only for one request at a time (issue 17): seats taken by logins at
the same moment, password guesses spread over many addresses, agent links redeemed more
than once, and agent frames from a browser's socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from broker.clock import FakeClock
from broker.db import create_engine
from broker.errors import RateLimited
from broker.handoff.logins import LoginStore, SeatsTaken
from broker.ratelimit import GuessLimiter
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD


class Browser:
    """A browser of its own (cookies) at the broker `base`, from `address` (a proxy's
    X-Forwarded-For)."""

    def __init__(self, base: str, address: str | None = None) -> None:
        self.base = base
        self.headers = {"X-Forwarded-For": address} if address else {}
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""  # of the last page shown

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.close()

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, str | None, str]:
        """The status, Retry-After and page of a form sent; keeps the page's CSRF token."""
        async with self.http.post(f"{self.base}{path}", headers=self.headers,
                                  data={**data, "_csrf": self.csrf},
                                  allow_redirects=False) as response:
            page = await response.text()
        self._keep_csrf(page)
        if response.status == 303 and response.headers["Location"] == "/dashboard":
            async with self.http.get(f"{self.base}/dashboard") as dashboard:
                self._keep_csrf(await dashboard.text())
        return response.status, response.headers.get("Retry-After"), page

    async def log_in(self, email: str,
                     password: str = PASSWORD) -> tuple[int, str | None, str]:
        async with self.http.get(f"{self.base}/login") as page:
            self._keep_csrf(await page.text())
        return await self.post("/login", {"email": email, "password": password})

    @property
    def known(self) -> str:
        """The browser token this browser got at its last login (sb_known)."""
        return self.http.cookie_jar.filter_cookies(URL(f"{self.base}/login"))["sb_known"].value

    @known.setter
    def known(self, token: str) -> None:
        self.http.cookie_jar.update_cookies({"sb_known": token}, URL(self.base))

    def _keep_csrf(self, page: str) -> None:
        found = re.search(r'(?:name="_csrf" value|data-csrf)="([^"]+)"', page)
        if found:
            self.csrf = found.group(1)


async def seat_race(base: str | tuple[str, str], emails: list[str],
                    password: str = PASSWORD) -> list[int]:
    """Two technicians take both seats; the others try, are shown the seats page and
    press "Try again" all at once after the two logged out (no password check spreads
    them out then; with two bases, alternately at each). The statuses of that try."""
    bases = (base, base) if isinstance(base, str) else base
    async with contextlib.AsyncExitStack() as stack:
        browsers = [await stack.enter_async_context(Browser(bases[n % 2]))
                    for n in range(len(emails))]
        holders, waiting = browsers[:2], browsers[2:]
        for browser, email in zip(browsers, emails, strict=True):
            status, _, page = await browser.log_in(email, password)
            if browser in holders:
                assert status == 303
            else:
                # Asked to wait, or (admins) to end another technician's login.
                assert status == 409 and "All seats are taken" in page
                assert "2 technicians may be logged in at once" in page
        for browser in holders:
            assert (await browser.post("/logout", {}))[0] == 303
        tries = await asyncio.gather(*(b.post("/login/seat", {}) for b in waiting))
    return sorted(status for status, _, _ in tries)


# -- seats ---------------------------------------------------------------------------------

@pytest.fixture
async def two_seats(aiohttp_client: Any, tmp_path: Path, clock: FakeClock,
                    database_url: str) -> TestClient:
    return await aiohttp_client(create_app(Settings(
        data_dir=tmp_path / "seats", seats=2, database_url=database_url), clock=clock))


async def test_simultaneous_logins_take_exactly_the_seats(two_seats: TestClient) -> None:
    broker = get_broker(two_seats.app)
    technicians = [await broker.technicians.add(f"t{n}@example.com", f"Tech {n}", PASSWORD)
                   for n in range(8)]
    outcomes = await asyncio.gather(*(broker.logins.start(t.id) for t in technicians),
                                    return_exceptions=True)
    started = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert len(started) == 2, outcomes
    assert all(isinstance(o, SeatsTaken) for o in refused), refused
    assert len({login.technician_id for login in await broker.logins.active()}) == 2
    # A technician who holds a seat may log in again (another browser) when all are taken.
    holder = (await broker.logins.active())[0].technician_id
    await broker.logins.start(holder)


async def test_simultaneous_logins_at_two_nodes_take_exactly_the_seats(
        two_seats: TestClient) -> None:
    """Two nodes: each its own engine (its own connections) on the same database."""
    broker = get_broker(two_seats.app)
    other = create_engine(broker.settings.sqlalchemy_url)
    try:
        stores = [broker.logins, LoginStore(other, broker.clock, broker.settings.seats,
                                            broker.bus, broker.audit)]
        technicians = [await broker.technicians.add(f"t{n}@example.com", f"Tech {n}",
                                                    PASSWORD) for n in range(8)]
        outcomes = await asyncio.gather(*(stores[n % 2].start(t.id)
                                          for n, t in enumerate(technicians)),
                                        return_exceptions=True)
    finally:
        await other.dispose()
    assert sum(isinstance(o, str) for o in outcomes) == 2, outcomes
    assert all(isinstance(o, (str, SeatsTaken)) for o in outcomes), outcomes
    assert len({login.technician_id for login in await broker.logins.active()}) == 2


async def test_simultaneous_form_logins_take_exactly_the_seats(two_seats: TestClient) -> None:
    broker = get_broker(two_seats.app)
    for n in range(8):
        await broker.technicians.add(f"t{n}@example.com", f"Tech {n}", PASSWORD)
    statuses = await seat_race(str(two_seats.make_url("")).rstrip("/"),
                               [f"t{n}@example.com" for n in range(8)])
    assert statuses == [303, 303, 409, 409, 409, 409], statuses
    assert len(await broker.logins.active()) == 2


# -- password guesses at one account --------------------------------------------------------

@pytest.fixture
async def behind_proxy(aiohttp_client: Any, tmp_path: Path, clock: FakeClock,
                       database_url: str) -> TestClient:
    return await aiohttp_client(create_app(Settings(
        data_dir=tmp_path / "proxy", trust_forwarded_for=True, database_url=database_url),
        clock=clock))


async def test_guesses_from_many_addresses_at_one_account_are_delayed(
        behind_proxy: TestClient, clock: FakeClock) -> None:
    broker = get_broker(behind_proxy.app)
    await broker.technicians.add("ann@example.com", "Ann", PASSWORD)
    await broker.technicians.add("ben@example.com", "Ben", PASSWORD)
    base = str(behind_proxy.make_url("")).rstrip("/")
    async with Browser(base, "192.0.2.1") as usual:
        assert (await usual.log_in("ann@example.com"))[0] == 303  # Ann's own browser
        assert (await usual.post("/logout", {}))[0] == 303

    # Every guess from an address of its own, far from that address's limit: five free
    # failures at the account, the sixth starts its delays.
    statuses = []
    for n in range(7):
        async with Browser(base, f"10.0.{n}.1") as guesser:
            status, retry_after, _ = await guesser.log_in("ANN@example.com ", "wrong pw 1")
            statuses.append(status)
    assert statuses == [401] * 6 + [429]
    assert retry_after is not None
    async with Browser(base, "10.1.0.1") as elsewhere:
        assert (await elsewhere.log_in("ann@example.com"))[0] == 429  # even the right one
        assert (await elsewhere.log_in("ben@example.com"))[0] == 303  # other accounts: no
    # Ann's usual browser is counted apart: the guesses do not delay her there.
    async with Browser(base, "10.2.0.1") as again:
        again.known = usual.known
        assert (await again.log_in("ann@example.com"))[0] == 303

    # After the delay the next guess is answered, and delays the account twice as long;
    # the right password works as soon as that is over.
    clock.advance(int(retry_after))
    async with Browser(base, "10.3.0.1") as guesser:
        assert (await guesser.log_in("ann@example.com", "wrong pw 2"))[0] == 401
        clock.advance(1.5)
        status, retry_after, _ = await guesser.log_in("ann@example.com")
        assert status == 429 and retry_after is not None
    clock.advance(0.5)
    async with Browser(base, "10.4.0.1") as new_laptop:
        assert (await new_laptop.log_in("ann@example.com"))[0] == 303


async def test_a_forged_browser_token_counts_as_the_account(
        behind_proxy: TestClient) -> None:
    broker = get_broker(behind_proxy.app)
    await broker.technicians.add("ann@example.com", "Ann", PASSWORD)
    base = str(behind_proxy.make_url("")).rstrip("/")
    async with Browser(base, "192.0.2.1") as bens:
        await broker.technicians.add("ben@example.com", "Ben", PASSWORD)
        assert (await bens.log_in("ben@example.com"))[0] == 303
        token = bens.known
    nonce = token.partition(".")[0]
    statuses = []
    for n, forged in enumerate([token, f"{nonce}.{'0' * 64}", "x.y", ""] * 2):
        async with Browser(base, f"10.0.{n}.1") as guesser:
            guesser.known = forged
            statuses.append((await guesser.log_in("ann@example.com", "wrong pw"))[0])
    assert statuses == [401] * 6 + [429] * 2  # Ben's token does not speak for Ann's account


def _day_of_guesses(settings: Settings, rest_after: int | None) -> int:
    """Wrong passwords one account takes in 24 hours against the real limiter (attempts
    from endless addresses, at most one a millisecond): guessing whenever allowed, and with
    `rest_after` = k, staying quiet after the free failures and k more until the account
    starts over (unless the day ends first)."""
    clock = FakeClock(0.0)
    limiter = GuessLimiter(clock, free=settings.login_account_free_failures, base_delay=1.0,
                           max_delay=settings.login_account_max_delay_seconds,
                           global_per_minute=None)
    day, guesses, run, quiet_from = 86400.0, 0, 0, 0.0
    while True:
        try:
            limiter.check("account", include_global=False)
        except RateLimited as locked:
            clock.advance(locked.retry_after)
            continue
        if clock.now() >= day:
            return guesses
        starts_over = quiet_from + settings.login_account_max_delay_seconds + 1e-6
        if (rest_after is not None and run > settings.login_account_free_failures + rest_after
                and starts_over < day):
            clock.advance(starts_over - clock.now())
            run = 0
            continue
        limiter.failure("account", include_global=False)
        guesses, run = guesses + 1, run + 1
        try:
            limiter.check("account", include_global=False)
            quiet_from = clock.now()
        except RateLimited as locked:
            quiet_from = clock.now() + locked.retry_after
        clock.advance(0.001)


def _daily_account_guesses(settings: Settings) -> tuple[int, int]:
    """The most guesses of any plan, and how many guesses a round of the best one has."""
    return max((_day_of_guesses(settings, k), settings.login_account_free_failures + k + 1)
               for k in range(-1, 24))


def test_security_states_the_most_guesses_an_account_gets_a_day(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "broker.ratelimit")  # a day of lockout lines
    defaults = Settings()
    text = " ".join((Path(__file__).parent.parent / "docs" / "security.md").read_text(
        encoding="utf-8").split())
    most, round_of = _daily_account_guesses(defaults)
    assert f"**{most:,} wrong passwords a day**" in text, most
    assert f"the best plan is rounds of {round_of} guesses" in text, round_of
    # Pacing alone (a guess whenever the delay allows) gets far fewer.
    paced = _day_of_guesses(defaults, None)
    assert paced < most / 4 and f"allows gets only {paced}" in text
    assert (f"`login_account_free_failures` = {defaults.login_account_free_failures}"
            in text)
    assert (f"`login_account_max_delay_seconds` = "
            f"{defaults.login_account_max_delay_seconds:.0f}" in text)
