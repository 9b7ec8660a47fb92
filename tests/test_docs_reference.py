"""The docs tell the truth: every route, setting, error and close code, frame, event and
channel message the code knows is documented, with its default where it has one, and the
odds in docs/security.md are the limiter's. The walkthroughs: test_docs.py."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from broker.errors import BrokerError
from broker.protocol import CLIENT, SERVER
from broker.protocol.channel import CHANNEL
from broker.protocol.events import EVENTS
from broker.protocol.session import CloseCode
from broker.settings import Settings
from web import (
    agent,
    api,
    console,
    handoff,
    intake,
    ops,
    pages,
    technicians,
    webhooks,
    ws,
)

from .docs_support import DOCS, FENCE, ROOT


def _routes() -> list[tuple[str, str]]:
    found = []
    for table in (api.routes, ws.routes, ops.routes, agent.routes, console.routes,
                  intake.routes, webhooks.routes, handoff.routes, technicians.routes,
                  pages.routes):
        for route in table:
            assert isinstance(route, web.RouteDef)
            found.append((route.method, route.path))
    return found


def test_every_api_route_is_documented() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [f"{method} {path}" for method, path in _routes()
               if f"{method} {path}" not in text]
    assert not missing, f"docs/api.md does not document {missing}"


def test_every_setting_is_documented_with_its_default() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for field in dataclasses.fields(Settings):
        assert f"`BROKER_{field.name.upper()}`" in text, field.name
        assert f"`{field.name}`" in text, field.name
    samples = [code for kind, code in FENCE.findall(text) if kind == "toml"]
    assert samples, "docs/configuration.md has no ```toml sample"
    import tomllib
    every = tomllib.loads(samples[0])
    assert sorted(every) == sorted(f.name for f in dataclasses.fields(Settings)), (
        "the first TOML sample should list every setting with its default")


def test_documented_defaults_are_the_defaults(tmp_path: Path) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    sample = next(code for kind, code in FENCE.findall(text) if kind == "toml")
    config = tmp_path / "broker.toml"
    config.write_text(sample, encoding="utf-8")
    assert Settings.load(config, environ={}) == Settings()
    for kind, code in FENCE.findall(text):
        if kind == "toml":  # every sample must load
            config.write_text(code, encoding="utf-8")
            Settings.load(config, environ={})


def _wire_codes() -> set[str]:
    """Every error code the broker can send: the error tree's and the literal code= ones."""
    codes = {cls.code for cls in _subclasses(BrokerError)} - {"error"}
    for path in [*(ROOT / "broker").rglob("*.py"), *(ROOT / "web").rglob("*.py")]:
        source = path.read_text(encoding="utf-8")
        codes.update(re.findall(r'\bcode="([a-z_]+)"', source))
        codes.update(re.findall(r'^KEY_\w+ = "([a-z_]+)"', source, re.MULTILINE))
        codes.update(re.findall(r'Error\("([a-z_]+)",', source))
    return codes


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_error_code_is_documented() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8") + (
        DOCS / "protocol.md").read_text(encoding="utf-8")
    missing = sorted(code for code in _wire_codes() if f"`{code}`" not in text)
    assert not missing, f"error codes missing from docs/api.md and docs/protocol.md: {missing}"


def test_every_close_code_is_documented() -> None:
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    missing = [code for code in [*CloseCode, 1001] if f"`{int(code)}`" not in text]
    assert not missing, f"close codes missing from docs/protocol.md: {missing}"


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table: its headings and its rows, as cells."""
    tables: list[tuple[list[str], list[list[str]]]] = []
    for block in re.findall(r"(?:^\|.*\n)+", text, re.MULTILINE):
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
                for line in block.splitlines()]
        tables.append((rows[0], [row for row in rows[2:]]))
    return tables


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def test_every_frame_event_and_channel_message_is_documented() -> None:
    """docs/protocol.md names each frame in a `type` table, each event kind in an event
    table (or in the event column of the frames that make it), each channel message in a
    `t` table; and every name in those columns is defined in broker/protocol."""
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    frames, events, channel = set(CLIENT) | set(SERVER), set(EVENTS), set(CHANNEL)
    typed: set[str] = set()
    kinds: set[str] = set()
    tagged: set[str] = set()
    for headings, rows in _tables(text):
        for row in rows:
            if headings[0] == "`type`":
                typed |= _names(row[0])
                if "event" in headings:
                    kinds |= _names(row[headings.index("event")])
            elif headings[0] == "event":
                kinds |= _names(row[0])
            elif headings[0] == "`t`":
                tagged |= _names(row[0])
    kinds |= typed & events  # the table of events names them as their `type`
    assert not frames - typed, f"frames missing from docs/protocol.md: {frames - typed}"
    assert not events - kinds, f"event kinds missing from docs/protocol.md: {events - kinds}"
    assert not channel - tagged, f"channel messages missing from the docs: {channel - tagged}"
    assert not typed - frames - events, f"documented, not defined: {typed - frames - events}"
    assert not kinds - events, f"documented events, not defined: {kinds - events}"
    assert not tagged - channel, f"documented channel messages, not defined: {tagged - channel}"


def _hourly_guesses(settings: Settings, trip_below: float) -> int:
    """Typed-code guesses one attacker with endless addresses gets in 60 minutes against
    the real GuessLimiter, one guess per millisecond at most, tripping the global limit
    only while its next lockout is at most `trip_below` seconds (or in the last minute)."""
    import collections

    from broker.clock import FakeClock
    from broker.errors import RateLimited
    from broker.ratelimit import GuessLimiter

    clock = FakeClock(0.0)
    limiter = GuessLimiter(clock, free=settings.redeem_free_failures,
                           base_delay=settings.redeem_base_delay_seconds,
                           max_delay=settings.redeem_max_delay_seconds,
                           global_per_minute=settings.redeem_global_failures_per_minute)
    limit = settings.redeem_global_failures_per_minute
    window: collections.deque[float] = collections.deque()  # own failures since the last trip
    trips = guesses = 0
    while clock.now() < 3600:
        client = f"198.51.100.{guesses}"
        try:
            limiter.check(client)
        except RateLimited as locked:
            clock.advance(locked.retry_after)
            continue
        now = clock.now()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= limit:  # the next failure trips the global limit
            next_lock = min(settings.redeem_base_delay_seconds * 2 ** trips,
                            settings.redeem_max_delay_seconds)
            if next_lock > trip_below and now < 3600 - 60:
                clock.advance(window[0] + 60 - now + 1e-6)  # wait for the window instead
                continue
            trips += 1
            window.clear()
        else:
            window.append(now)
        limiter.failure(client)
        guesses += 1
        clock.advance(0.001)
    return guesses


def _best_hourly_guesses(settings: Settings) -> int:
    return max(_hourly_guesses(settings, 2.0 ** k) for k in range(-1, 13))


def test_security_odds_match_the_limiter() -> None:
    """docs/security.md states G, the most typed-code guesses in one key lifetime, and
    the odds that follow; both must still follow from broker/ratelimit.py."""
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    defaults = Settings()
    assert defaults.key_lifetime_seconds == 3600
    best = _best_hourly_guesses(defaults)
    assert f"**G = {best:,}**" in text
    assert _hourly_guesses(defaults, 0.5) >= 3600  # pacing alone: 60 a minute
    for per_minute in (10, 1):
        g = _best_hourly_guesses(dataclasses.replace(
            defaults, redeem_global_failures_per_minute=per_minute))
        assert re.search(rf"\| {per_minute} \| {g:,} \|", text), (per_minute, g)
    for live, shown in ((10, "3.9 × 10⁻⁵"), (1_000, "3.9 × 10⁻³"), (100_000, "0.32")):
        assert f"**{shown}**" in text
        odds = 1 - (1 - live / 10**9) ** best
        assert f"{odds:.2g}" == f"{_number(shown):.2g}", (live, odds, shown)


def _number(shown: str) -> float:
    """'3.9 × 10⁻⁵' -> 3.9e-05."""
    mantissa, _, power = shown.partition(" × 10")
    exponent = power.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")) or "0"
    return float(mantissa) * 10.0 ** int(exponent)
