"""In Chromium, with three people: a team lead finds the technician's running session on
the supervisor board, watches its chat live, read-only; the technician's pane says who
watches and when they stopped; the end user's page says nothing of it."""

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


async def test_a_team_lead_watches_a_session_live(live: LiveBroker, people: People) -> None:
    bob = await add_technician(live, "Bob Builder", "bob@example.com")
    anna = await add_technician(live, "Anna Lead", "anna@example.com")
    team = await live.broker.teams.create("Printers")
    for member in (bob, anna):
        await live.broker.teams.add_member(team.id, member.id)
    await live.broker.teams.set_lead(team.id, anna.id, True)

    technician = await people.page()
    await log_in(technician, live, "bob@example.com")
    session_id, pane = await start_session(technician)
    link = await pane.locator('[data-role="join-url"]').input_value()
    user = await people.page()
    await user.goto(link)
    await expect(user.locator("#status")).to_have_text("Connected")
    await say(user.locator("#text"), "My printer prints blank pages")

    lead = await people.page()
    await log_in(lead, live, "anna@example.com", empty=False)
    await lead.get_by_role("link", name="Supervise").click()
    row = lead.locator(f'.supervise-item[data-session-id="{session_id}"]')
    await expect(row).to_contain_text("Bob Builder")
    await expect(row).to_contain_text("Active")
    await row.get_by_role("link", name="Watch").click()
    messages = lead.locator("#watch-messages")
    await expect(message(messages, "My printer prints blank pages")).to_be_visible()
    await expect(lead.locator("#watch")).to_have_attribute("data-state", "live")

    note = pane.locator('[data-role="watching"]')
    await expect(note).to_have_text("Anna Lead is watching this session")
    await say(pane.locator('[data-role="composer"] textarea'), "Let me look into it.")
    await expect(message(messages, "Let me look into it.")).to_be_visible()
    await expect(lead.locator("#watch textarea, #watch input")).to_have_count(0)
    await screenshot(lead, "supervise-watch")
    await screenshot(technician, "supervise-watched")

    await lead.goto(live.url("/supervise"))
    await expect(note).to_have_text("Anna Lead stopped watching")
    # The end user was not told (docs/supervision.md).
    await expect(user.locator("body")).not_to_contain_text("watch")
