"""In Chromium: the dashboard's alerts (issue 16). A message in a session that is not in
front of the technician, an end user joining, an incoming transfer or queue item: an
unread count on the tab and in the title, the alert sound played, a pop-up and a desktop
notification (Chromium's permission granted). The preferences panel saves to the broker
and governs alerts while the technician is in a session. Transfers count down, and one
that lapses, is taken back or is taken by someone else says so."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from broker.intake import AlertLevel, TargetAlert
from broker.sessions.service import technician_topic

from .browser_support import (
    LiveBroker,
    People,
    add_technician,
    expect,
    joined_by,
    live_broker,
    log_in,
    require_chromium,
    screenshot,
    start_session,
)
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture
from .portal_support import api

pytestmark = pytest.mark.browser

# Records the desktop notifications Chromium really showed (their "show" event).
WATCH_NOTIFICATIONS = """(() => {
  const Real = window.Notification;
  window.__shown = [];
  class Watched extends Real {
    constructor(title, options) {
      super(title, options);
      this.addEventListener("show", () => window.__shown.push([title, options && options.body]));
    }
  }
  Object.defineProperty(Watched, "permission", { get: () => Real.permission });
  Watched.requestPermission = Real.requestPermission.bind(Real);
  window.Notification = Watched;
})();"""


async def notified_console(people: People, live: LiveBroker, email: str) -> Any:
    page = await people.page()
    await page.context.grant_permissions(["notifications"], origin=live.base_url)
    await page.context.add_init_script(WATCH_NOTIFICATIONS)
    await log_in(page, live, email)
    return page


async def sound_played(page: Any) -> bool:
    return bool(await page.evaluate("document.getElementById('alert-sound').played.length > 0"))


async def test_a_message_elsewhere_counts_rings_and_pops_up(live: LiveBroker,
                                                            people: People) -> None:
    alice = await add_technician(live, "Alice Example")
    dash = await notified_console(people, live, "alice@example.com")
    base_title = await dash.title()
    first, first_pane = await start_session(dash)
    maria = await joined_by(live, first_pane, "Maria", wait=False)
    await expect(first_pane.locator('[data-role="state"]')).to_have_text("Connected with Maria")
    second, _ = await start_session(dash)  # a waiting session in front: not "in a session"

    await live.broker.sessions.post_message(first, maria, "The printer is on fire!", "m1")
    tab = dash.locator(f'.tab[data-session-id="{first}"]')
    await expect(tab.locator(".unread")).to_have_text("1")
    await expect(dash).to_have_title("(1) " + base_title)
    toast = dash.locator(".toast")
    await expect(toast).to_contain_text("New message from Maria")
    await expect(toast).to_contain_text("The printer is on fire!")
    await dash.wait_for_function("window.__shown.length > 0")
    assert (await dash.evaluate("window.__shown"))[0] == [
        "New message from Maria", "The printer is on fire!"]
    assert await sound_played(dash)
    await live.broker.sessions.post_message(first, maria, "Hello?", "m2")
    await expect(tab.locator(".unread")).to_have_text("2")
    await expect(dash.locator(f'.session-item[data-session-id="{first}"] .unread')
                 ).to_have_text("2")
    await expect(dash).to_have_title("(2) " + base_title)
    await screenshot(dash, "33-dashboard-alert")

    # One pop-up per session, the latest; seen, count and pop-up go.
    await expect(toast).to_have_count(1)
    await expect(toast).to_contain_text("Hello?")
    await toast.get_by_role("button", name="Show").click()
    await expect(tab).to_have_class(re.compile("current"))
    await expect(tab.locator(".unread")).to_be_hidden()
    await expect(dash).to_have_title(base_title)
    await expect(toast).to_have_count(0)

    # In a session (Maria's, in front), an end user joining elsewhere only counts ...
    second_pane = dash.locator(f'.pane[data-session-id="{second}"]')
    notified = await dash.evaluate("window.__shown.length")
    ben = await joined_by(live, second_pane, "Ben", wait=False)
    await expect(dash.locator(f'.tab[data-session-id="{second}"] .unread')).to_have_text("1")
    await expect(dash).to_have_title("(1) " + base_title)
    await expect(toast).to_have_count(0)
    assert await dash.evaluate("window.__shown.length") == notified

    # ... until the technician asks for alerts in sessions too, saved on the server.
    await dash.get_by_role("button", name="Alerts and sounds").click()
    settings = dash.get_by_role("dialog", name="Alerts and sounds")
    await expect(settings.get_by_label("Show pop-ups for (seconds, 0 for none)")).to_have_value(
        "30")
    await expect(settings).to_contain_text("This browser shows desktop notifications.")
    await settings.get_by_label("Show pop-ups for (seconds, 0 for none)").fill("90")
    await settings.get_by_label("Show alerts").check()
    await screenshot(dash, "34-dashboard-alert-settings")
    await settings.get_by_role("button", name="Save").click()
    await expect(settings).to_be_hidden()
    stored = await live.broker.preferences.get(alice.id)
    assert (stored.popup_seconds, stored.in_session_alerts, stored.in_session_sound) == (
        90, True, False)
    await live.broker.sessions.post_message(second, ben, "Are you there?", "b1")
    await expect(toast).to_contain_text("New message from Ben")
    await expect(dash.locator(f'.tab[data-session-id="{second}"] .unread')).to_have_text("2")

    await dash.reload()
    await dash.get_by_role("button", name="Alerts and sounds").click()
    await expect(settings.get_by_label("Show pop-ups for (seconds, 0 for none)")).to_have_value(
        "90")
    await expect(settings.get_by_label("Show alerts")).to_be_checked()
    await expect(settings.get_by_label("Play the sound", exact=True)).not_to_be_checked()
    people.assert_clean()


async def test_transfers_count_down_and_say_what_became_of_them(tmp_path: Path,
                                                                people: People) -> None:
    require_chromium()
    async with live_broker(tmp_path / "data", handoff_timeout_seconds=4,
                           sweep_interval_seconds=0.5) as live:
        alice = await add_technician(live, "Alice Example")
        bob = await add_technician(live, "Bob Berger", "bob@example.com")
        carol = await add_technician(live, "Carol Clark", "carol@example.com")
        team = await live.broker.teams.create("Tier 2")
        for member in (bob, carol):
            await live.broker.teams.add_member(team.id, member.id)
        dash = await notified_console(people, live, "bob@example.com")
        base_title = await dash.title()
        handoffs = live.broker.handoffs
        sessions = [(await live.broker.sessions.start(alice))[0].id for _ in range(3)]

        # Offered to Bob: a pop-up, a count, and the time left to answer, counting down.
        offer = await handoffs.transfer(sessions[0], alice, note="Printer on fire.",
                                        to_technician_id=bob.id)
        card = dash.locator(f'.handoff-card[data-handoff-id="{offer.id}"]')
        await expect(card.locator(".handoff-deadline")).to_have_text(
            re.compile(r"^Answer within 00:0[0-4]$"))
        await expect(dash.locator(".toast")).to_contain_text("Transfer from Alice Example")
        await expect(dash).to_have_title("(1) " + base_title)
        await dash.wait_for_function("window.__shown.length > 0")
        assert await sound_played(dash)
        await screenshot(dash, "35-dashboard-transfer-countdown")
        # Nobody answers: it lapses, and says so instead of vanishing.
        await expect(card).to_contain_text(
            "Not answered in time: the session went back to Alice Example.", timeout=15000)
        await expect(dash).to_have_title(base_title)
        await card.get_by_role("button", name="Dismiss").click()
        await expect(card).to_have_count(0)

        # Taken back by its sender.
        offer = await handoffs.transfer(sessions[1], alice, note="Second one.",
                                        to_technician_id=bob.id)
        card = dash.locator(f'.handoff-card[data-handoff-id="{offer.id}"]')
        await expect(card).to_contain_text("Second one.")
        await handoffs.cancel(offer.id, alice)
        await expect(card).to_contain_text("Alice Example took the session back.")

        # A queue item that Carol takes first.
        queued = await handoffs.transfer(sessions[2], alice, note="For Tier 2.",
                                         to_team_id=team.id)
        card = dash.locator(f'.handoff-card[data-handoff-id="{queued.id}"]')
        await expect(card).to_contain_text("For Tier 2.")
        await expect(dash.locator(".toast").last).to_contain_text(
            "New in the Tier 2 queue, from Alice Example")
        await handoffs.accept(queued.id, carol)
        await expect(card).to_contain_text("Carol Clark took this session.")
        await expect(card.get_by_role("button", name="Accept")).to_have_count(0)
        await screenshot(dash, "36-dashboard-transfer-taken")
        people.assert_clean()


async def test_a_customers_request_alerts_its_team_before_and_after_its_target(
        live: LiveBroker, people: People) -> None:
    """Issue 18 on the dashboard: a request is the customer's by name ("Customer request"
    where no technician sent it), its first line a sentence; request.alert (80 % of the
    target, then missed) pops up and marks its queue item."""
    bob = await add_technician(live, "Bob Berger", "bob@example.com")
    team = await live.broker.teams.create("Tier 1")
    await live.broker.teams.add_member(team.id, bob.id)
    dash = await notified_console(people, live, "bob@example.com")
    async with asyncio.timeout(5):  # the open dashboard makes the team available
        while not live.broker.presence.online(bob.id):
            await asyncio.sleep(0.02)
    made = await api(live, "POST", "/api/v1/requests", 201, team="tier-1",
                     name="Dana Scully", email="dana@example.com",
                     description="The printer prints blank pages.")
    card = dash.locator(".handoff-card", has_text="Tier 1 queue")
    await expect(card).to_contain_text("Customer request")
    await expect(card).to_contain_text("Customer: Dana Scully")
    await expect(card).not_to_contain_text("null")
    await card.get_by_role("button", name="Preview").click()
    preview = dash.get_by_role("dialog")
    await expect(preview).to_contain_text(
        "Dana Scully asked for help; the request waits in the queue Tier 1")
    await expect(preview).not_to_contain_text("request.opened")
    await dash.keyboard.press("Escape")

    # The sweep's alerts, as it publishes them (its timing: tests/test_intake_targets.py).
    request = await live.broker.intake.get(made["request_id"])
    for level, title, line in (
            (AlertLevel.DUE_SOON, "The request of Dana Scully is due soon",
             "Response target nearly missed"),
            (AlertLevel.BREACHED, "The request of Dana Scully missed its response target",
             "Response target missed")):
        live.broker.bus.publish(technician_topic(bob.id), TargetAlert(level, request, "Tier 1"))
        await expect(dash.locator(".toast", has_text=title)).to_be_visible()
        await expect(card.locator(".handoff-due")).to_have_text(line)
    await expect(card.locator(".handoff-due")).to_have_class(re.compile("breached"))
    await screenshot(dash, "24-dashboard-request-breached")
    people.assert_clean()
