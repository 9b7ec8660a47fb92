"""In Chromium: a team lead takes a session over from the supervisor board with a note in
the page's dialog; the old technician's dashboard says so with the note, the end user is
connected with the lead; joining then is refused in the page. The end user's chat says a
supervisor watches only when the setting says so, and gets no frame otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .browser_support import (
    LiveBroker,
    People,
    add_technician,
    expect,
    live_broker,
    log_in,
    message,
    require_chromium,
    say,
    screenshot,
    start_session,
)
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser


@pytest.fixture
async def telling(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    """A broker whose operator tells end users when a supervisor watches."""
    require_chromium()
    async with live_broker(tmp_path / "data", supervision_tell_end_user=True) as broker:
        yield broker


async def _scene(live: LiveBroker, people: People) -> tuple[Any, Any, Any, Any, str, list[str]]:
    """Bob's session with an end user, and Anna (Bob's lead) on the board. Also the
    frame types the end user's page received."""
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
    frames: list[str] = []
    user.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: frames.append(str(payload))))
    await user.goto(link)
    await expect(user.locator("#status")).to_have_text("Connected")
    await say(user.locator("#text"), "My printer prints blank pages")
    lead = await people.page()
    await log_in(lead, live, "anna@example.com", empty=False)
    await lead.get_by_role("link", name="Supervise").click()
    return technician, pane, user, lead, session_id, frames


async def test_a_lead_takes_a_session_over_from_the_board(
        telling: LiveBroker, people: People) -> None:
    technician, pane, user, lead, session_id, frames = await _scene(telling, people)
    row = lead.locator(f'.supervise-item[data-session-id="{session_id}"]')
    await expect(row).to_contain_text("Bob Builder")

    # Watching: the end user is told (the setting is on), and when it stops.
    await row.get_by_role("link", name="Watch").click()
    await expect(lead.locator("#watch")).to_have_attribute("data-state", "live")
    note = user.locator("#supervision-note")
    await expect(note).to_have_text("A supervisor is watching this session")
    await screenshot(user, "supervise-told-end-user")
    await user.reload()  # the frame is not stored: the broker says it again
    await expect(note).to_have_text("A supervisor is watching this session")
    await technician.reload()
    await expect(technician.locator('[data-role="watching"]')).to_have_text(
        "Anna Lead is watching this session")
    await lead.goto(telling.url("/supervise"))
    await expect(note).to_have_text("The supervisor stopped watching")
    assert any("supervision.notice" in frame for frame in frames)

    # Take over: the note is asked for in the page's dialog, and required.
    await row.get_by_role("button", name="Take over").click()
    dialog = lead.locator("#take-over-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Take over").click()
    await expect(dialog.locator('[data-role="error"]')).to_have_text(
        "Write a note for the technician.")
    await dialog.locator("textarea").fill("The customer asked for me; I finish this one.")
    await screenshot(lead, "supervise-take-over-dialog")
    await dialog.get_by_role("button", name="Take over").click()
    await expect(dialog).to_be_hidden()
    result = lead.locator("#supervise-result")
    await expect(result).to_have_text("The session is yours now. Open it on the dashboard")
    await expect(row).to_contain_text("Anna Lead")

    # The old technician is told, with the note; the end user talks to Anna now.
    told = "Anna Lead took this session over: The customer asked for me; I finish this one."
    await expect(technician.get_by_text(told).first).to_be_visible()
    await expect(pane.locator('[data-role="messages"]')).to_contain_text(
        "Anna Lead took the session over from Bob Builder")
    await expect(user.locator("#peer-name")).to_have_text("Anna Lead")
    await expect(user.locator("#messages")).to_contain_text(
        "You are now connected with Anna Lead")
    await expect(user.locator("#messages")).not_to_contain_text("I finish this one")
    await screenshot(technician, "supervise-taken-over")

    # Joining a session one owns is refused, in the page.
    await row.get_by_role("button", name="Join").click()
    await expect(result).to_have_text("You are in this session already.")
    await expect(result).to_have_attribute("data-outcome", "refused")
    people.assert_clean()


async def test_the_end_user_is_not_told_without_the_setting(
        live: LiveBroker, people: People) -> None:
    technician, pane, user, lead, session_id, frames = await _scene(live, people)
    row = lead.locator(f'.supervise-item[data-session-id="{session_id}"]')
    await row.get_by_role("link", name="Watch").click()
    await expect(pane.locator('[data-role="watching"]')).to_have_text(
        "Anna Lead is watching this session")
    await say(pane.locator('[data-role="composer"] textarea'), "Let me look into it.")
    await expect(message(user.locator("#messages"), "Let me look into it.")).to_be_visible()
    await lead.goto(live.url("/supervise"))
    await expect(pane.locator('[data-role="watching"]')).to_have_text(
        "Anna Lead stopped watching")
    await say(pane.locator('[data-role="composer"] textarea'), "Found it.")
    await expect(message(user.locator("#messages"), "Found it.")).to_be_visible()
    await expect(user.locator("#supervision-note")).to_be_hidden()
    assert not [frame for frame in frames if "supervision.notice" in frame]
    people.assert_clean()
