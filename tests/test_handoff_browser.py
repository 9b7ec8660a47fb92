"""In Chromium, with three people: technician A hands a session to technician B with a
note; B reads the note and the transcript before accepting; the end user is told who
they are talking to now, on the same connection."""

from __future__ import annotations

import pytest

from .browser_support import (
    LiveBroker,
    People,
    add_technician,
    expect,
    log_in,
    message,
    say,
    screenshot,
    start_session,
)
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser

NOTE = "Printer prints blank pages; driver reinstalled, still blank. Needs Tier 2."




async def test_transfer_with_a_note_between_three_people(live: LiveBroker,
                                                         people: People) -> None:
    await add_technician(live, "Alice Example", "alice@example.com")
    await add_technician(live, "Bob Builder", "bob@example.com")
    alice = await people.page()
    await log_in(alice, live, "alice@example.com")
    bob = await people.page()
    await log_in(bob, live, "bob@example.com")
    session_id, pane = await start_session(alice)
    link = await pane.locator('[data-role="join-url"]').input_value()

    user = await people.page()
    sockets: list[str] = []
    user.on("websocket", lambda ws: sockets.append(ws.url))
    await user.goto(link)
    await expect(user.locator("#status")).to_have_text("Connected")
    await say(pane.locator('[data-role="composer"] textarea'), "Let me look into it.")
    await say(user.locator("#text"), "Thank you!")

    await pane.get_by_role("button", name="Transfer").click()
    form = pane.locator(".handoff-form")
    await form.locator('select[name="technician"]').select_option(label="Bob Builder (online)")
    await form.get_by_label("Note for the receiver (required)").fill(NOTE)
    await form.get_by_role("button", name="Send transfer").click()
    await expect(pane.locator(".handoff-status")).to_contain_text("Waiting for Bob Builder")
    await screenshot(alice, "19-dashboard-transfer-sent")

    offer = bob.locator(".handoff-card")
    await expect(offer).to_contain_text(NOTE)
    await expect(offer).to_contain_text("From Alice Example")
    await screenshot(bob, "20-dashboard-transfer-offered")
    await offer.get_by_role("button", name="Preview").click()
    preview = bob.locator("#handoff-preview")
    await expect(preview).to_contain_text("Let me look into it.")
    await expect(preview).to_contain_text("Thank you!")
    await screenshot(bob, "21-dashboard-transfer-preview")
    await preview.get_by_role("button", name="Close").click()
    await offer.get_by_role("button", name="Accept").click()

    bob_pane = bob.locator(f'.pane[data-session-id="{session_id}"]')
    await expect(bob_pane).to_be_visible()
    await expect(bob_pane.locator('[data-role="messages"]')).to_contain_text("Thank you!")
    await expect(user.locator("#peer-name")).to_have_text("Bob Builder")
    await expect(user.locator("#messages")).to_contain_text(
        "You are now connected with Bob Builder")
    await expect(pane.locator(".handoff-status")).to_contain_text("Bob Builder took over")
    await say(bob_pane.locator('[data-role="composer"] textarea'), "Hi, Bob here from Tier 2.")
    await expect(message(user.locator("#messages"), "Hi, Bob here from Tier 2.")).to_have_count(1)
    await expect(user.locator("#status")).to_have_text("Connected")
    assert len(sockets) == 1, sockets  # the end user never reconnected
    await screenshot(user, "22-enduser-after-transfer")
    people.assert_clean()


async def test_admin_page_shows_queues_teams_and_seats(live: LiveBroker, people: People) -> None:
    broker = live.broker
    root = await broker.technicians.add("root@example.com", "Root Admin", "correct horse battery",
                                        is_admin=True)
    alice = await add_technician(live, "Alice Example", "alice@example.com")
    team = await broker.teams.create("Tier 2")
    await broker.teams.add_member(team.id, alice.id)
    page = await people.page()
    await log_in(page, live, "root@example.com")
    session, _ = await broker.sessions.start(root)
    await broker.handoffs.transfer(session.id, root, note="Please help", to_team_id=team.id)
    await page.get_by_role("link", name="Administration").click()
    await expect(page.locator("#queues")).to_contain_text("Tier 2")
    await expect(page.locator("#teams")).to_contain_text("Alice Example")
    await expect(page.locator("#logins")).to_contain_text("Root Admin")
    await page.locator("#new-team input").fill("Tier 3")
    await page.get_by_role("button", name="Add team").click()
    await expect(page.locator("#teams")).to_contain_text("Tier 3")
    await screenshot(page, "23-admin")
    people.assert_clean()
