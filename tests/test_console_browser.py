"""In Chromium, a technician's working day in the dashboard (issue 16): a pane that turns
read-only at once after a handoff, lines the broker refuses or can no longer take shown
as failed with the reason, tabs and drafts that survive a reload (and nothing left in
the browser after logging out), questions before ending a session or revoking a key, and
sessions named as they are ("Nobody joined", "Gast" in German)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from broker.technicians import Technician

from .browser_support import (
    KEY_PATTERN,
    PASSWORD,
    Console,
    LiveBroker,
    People,
    add_technician,
    confirm,
    expect,
    joined_by,
    message,
    say,
    screenshot,
    start_session,
)
from .browser_support import console as console  # noqa: F401 - a fixture
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser


async def hand_over(live: LiveBroker, session_id: str, sender: Technician,
                    receiver: Technician) -> None:
    handoff = await live.broker.handoffs.transfer(session_id, sender, note="Over to you.",
                                                  to_technician_id=receiver.id)
    await live.broker.handoffs.accept(handoff.id, receiver)


async def test_the_previous_owner_reads_on_and_nothing_hangs(
        live: LiveBroker, people: People, console: Console) -> None:
    alice = await add_technician(live, "Alice Example")
    bob = await add_technician(live, "Bob Berger", "bob@example.com")
    dash = await console("alice@example.com")
    session_id, pane = await start_session(dash)
    await joined_by(live, pane, "Maria")
    box, messages = pane.locator("textarea"), pane.locator('[data-role="messages"]')

    # A line the broker refuses (more bytes than a message may have) says so, in the pane.
    await say(box, "ü" * 4000)
    refused = messages.locator(".msg.failed")
    await expect(refused).to_have_count(1)
    await expect(refused.locator(".pending-note")).to_have_text(
        "Not sent. Messages are limited to 4096 bytes.")
    await say(box, "Let me hand you to Bob.")
    await expect(message(messages, "Let me hand you to Bob.")).to_have_count(1)

    # Offline, Alice types on; meanwhile the session goes to Bob. Back online, her line
    # fails with the reason instead of waiting for ever, and the pane is read-only.
    await dash.context.set_offline(True)
    await expect(pane.locator('[data-role="conn"]')).to_be_visible()
    await say(box, "Typed while offline")
    await expect(messages.locator(".msg.pending")).to_have_count(1)
    await hand_over(live, session_id, alice, bob)
    await dash.context.set_offline(False)
    typed = messages.locator(".msg.failed", has_text="Typed while offline")
    await expect(typed.locator(".pending-note")).to_have_text(
        "Not sent. You no longer take part in this session.")
    await expect(messages.locator(".msg.pending")).to_have_count(0)
    await expect(box).to_be_disabled()
    await expect(pane.locator('[data-role="notice"]')).to_be_visible()
    await expect(pane.get_by_role("button", name="End session")).to_be_hidden()
    people.assert_clean()


async def test_a_handoff_turns_the_pane_read_only_at_once(
        live: LiveBroker, people: People, console: Console) -> None:
    alice = await add_technician(live, "Alice Example")
    bob = await add_technician(live, "Bob Berger", "bob@example.com")
    dash = await console("alice@example.com")
    session_id, pane = await start_session(dash)
    maria = await joined_by(live, pane, "Maria")
    await say(pane.locator("textarea"), "Bob knows printers best.")

    await hand_over(live, session_id, alice, bob)
    notice = pane.locator('[data-role="notice"]')
    await expect(notice).to_have_text(
        "Bob Berger now owns this session. You can read it, but not write in it any more.")
    await expect(pane.locator("textarea")).to_be_disabled()
    await expect(pane.get_by_role("button", name="Send", exact=True)).to_be_disabled()
    await expect(pane.locator('[data-role="state"]')).to_have_text("Handed over to Bob Berger")
    await expect(pane.get_by_role("button", name="End session")).to_be_hidden()
    # Still in Alice's list, marked, and its chat goes on being readable.
    item = dash.locator(f'#list-active [data-session-id="{session_id}"]')
    await expect(item).to_contain_text("Maria")
    await expect(item).to_contain_text("Handed over to Bob Berger")
    await live.broker.sessions.post_message(session_id, maria, "Hello Bob!", "m1")
    await expect(message(pane.locator('[data-role="messages"]'), "Bob knows printers")
                 ).to_be_visible()
    await assert_read_only(pane, "Bob Berger now owns this session.")
    await screenshot(dash, "30-dashboard-handed-over")

    # After a reload the pane is just as read-only; the transcript stays Alice's to read.
    await dash.reload()
    await assert_read_only(pane, "Bob Berger now owns this session.")
    await expect(pane.locator('[data-role="state"]')).to_have_text("Handed over to Bob Berger")
    link = pane.get_by_role("link", name="Transcript", exact=True)
    await expect(link).to_have_attribute("href", f"/sessions/{session_id}/transcript")
    async with dash.context.expect_page() as opened:
        await link.click()
    transcript = await opened.value
    await expect(transcript.locator(".transcript-lines")).to_contain_text(
        "Bob knows printers best.")
    await expect(transcript.locator(".transcript-lines")).to_contain_text("Hello Bob!")
    await screenshot(dash, "30b-dashboard-handed-over-reloaded")
    people.assert_clean()


async def assert_read_only(pane: Any, notice: str) -> None:
    """The pane says why it is read-only and shows no tool that could not be used."""
    await expect(pane.locator('[data-role="notice"]')).to_contain_text(notice)
    await expect(pane.locator("textarea")).to_be_disabled()
    for role, name in (("button", "Request screen"), ("button", "Share my screen"),
                       ("button", "Send a file"), ("button", "Canned responses"),
                       ("button", "Transfer"), ("button", "Invite"), ("button", "Notes"),
                       ("button", "End session"), ("button", "Request control")):
        await expect(pane.get_by_role(role, name=name)).to_have_count(0)
    # Nor hidden-but-disabled ones waiting to be shown: every button left works.
    for button in await pane.locator("button:visible").all():
        assert await button.is_enabled() or await button.inner_text() == "Send"


async def test_a_reload_keeps_tabs_and_drafts_and_logout_leaves_nothing(
        live: LiveBroker, people: People, console: Console) -> None:
    await add_technician(live, "Alice Example")
    dash = await console("alice@example.com")
    first, first_pane = await start_session(dash)
    await joined_by(live, first_pane, "Maria")
    second, second_pane = await start_session(dash)
    await first_pane.page.locator(f'.tab[data-session-id="{first}"]').click()
    await first_pane.locator("textarea").fill("Half a thought for Maria")
    await dash.locator(f'.tab[data-session-id="{second}"]').click()
    await second_pane.locator("textarea").fill("Draft in the waiting one")
    await dash.locator(f'.tab[data-session-id="{first}"]').click()

    await dash.reload()
    tabs = dash.locator("#tabs .tab")
    await expect(tabs).to_have_count(2)
    assert [await tab.get_attribute("data-session-id") for tab in await tabs.all()] == [
        first, second]
    await expect(dash.locator(f'.tab[data-session-id="{first}"]')).to_have_class(
        re.compile("current"))
    await expect(first_pane.locator("textarea")).to_have_value("Half a thought for Maria")
    await expect(second_pane.locator("textarea")).to_have_value("Draft in the waiting one")
    await expect(first_pane.locator('[data-role="state"]')).to_have_text("Connected with Maria")
    # Sending a draft forgets it: another reload brings back an empty box.
    await first_pane.locator("textarea").press("Enter")
    await expect(message(first_pane.locator('[data-role="messages"]'), "Half a thought")
                 ).to_have_count(1)
    await dash.reload()
    await expect(first_pane.locator("textarea")).to_have_value("")
    await expect(second_pane.locator("textarea")).to_have_value("Draft in the waiting one")
    assert await dash.evaluate("localStorage.length") == 0

    await dash.locator("#account summary").click()
    await dash.get_by_role("button", name="Log out").click()
    await expect(dash).to_have_url(live.url("/login"))
    assert await dash.evaluate("Object.keys(sessionStorage).concat(Object.keys(localStorage))"
                               ) == []
    await dash.get_by_label("Email").fill("alice@example.com")
    await dash.get_by_label("Password").fill(PASSWORD)
    await dash.get_by_role("button", name="Log in").click()
    # Logging out may end the sessions meanwhile (docs/handoff.md): in a list either way.
    await expect(dash.locator(f'.session-item[data-session-id="{second}"]')).to_be_visible()
    await expect(dash.locator("#empty-state")).to_be_visible()
    await expect(tabs).to_have_count(0)
    people.assert_clean()


async def test_the_owner_sees_the_live_key_in_any_browser(
        live: LiveBroker, people: People, console: Console) -> None:
    """Defect 2: the key, link, Copy and Send buttons are not the starting browser's alone."""
    await add_technician(live, "Alice Example")
    await live.broker.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
    await add_technician(live, "Eve Other", "eve@example.com")
    first = await console("alice@example.com")
    session_id, pane = await start_session(first)
    key = await pane.locator('[data-role="key"]').inner_text()
    assert KEY_PATTERN.match(key)
    link = await pane.locator('[data-role="join-url"]').input_value()

    # Alice on another computer (nothing shared with the first browser), and an admin.
    for email in ("alice@example.com", "root@example.com"):
        other = await console(email, empty=False)
        await other.locator(f'#list-waiting [data-session-id="{session_id}"]').click()
        there = other.locator(f'.pane[data-session-id="{session_id}"]')
        await expect(there.locator('[data-role="key"]')).to_have_text(key)
        await expect(there.locator('[data-role="join-url"]')).to_have_value(link)
        await expect(there.locator('[data-role="countdown"]')).to_have_text(
            re.compile(r"^Expires in \d\d:\d\d$"))
        for name in ("Copy", "Send SMS", "Send email"):
            await expect(there.get_by_role("button", name=name, exact=True)).to_be_visible()
        assert await other.evaluate("localStorage.length") == 0
    await screenshot(other, "33-dashboard-key-elsewhere")
    # Anyone else sees no key: not even the session in their list.
    eve = await console("eve@example.com")
    await expect(eve.locator(f'[data-session-id="{session_id}"]')).to_have_count(0)
    # Once the customer joined, the key is gone from every browser.
    await joined_by(live, there, "Maria")
    await expect(pane.locator('[data-role="key-row"]')).to_be_hidden()
    await expect(there.locator('[data-role="key-row"]')).to_be_hidden()
    people.assert_clean()


async def test_ending_and_revoking_ask_first(live: LiveBroker, people: People,
                                             console: Console) -> None:
    await add_technician(live, "Alice Example")
    dash = await console("alice@example.com")
    session_id, pane = await start_session(dash)
    key = await pane.locator('[data-role="key"]').inner_text()

    await pane.get_by_role("button", name="Revoke key").click()
    dialog = dash.get_by_role("dialog", name="Revoke this key?")
    await expect(dialog).to_contain_text(f"The key {key} and its join link stop working")
    await expect(dialog.get_by_role("button", name="Revoke key")).to_be_focused()
    await screenshot(dash, "31-dashboard-confirm-revoke")
    await dash.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await pane.get_by_role("button", name="Revoke key").click()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(pane.locator('[data-role="state"]')).to_have_text("Waiting for customer")

    await joined_by(live, pane, "Maria")
    await pane.get_by_role("button", name="End session").click()
    dialog = dash.get_by_role("dialog", name="End this session?")
    await expect(dialog).to_contain_text("The chat with Maria ends for both of you.")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(pane.locator('[data-role="state"]')).to_have_text("Connected with Maria")
    session = await live.broker.sessions.get(session_id)
    assert session.state.value == "active"
    await pane.get_by_role("button", name="End session").click()
    await confirm(dash, "End session")
    await expect(pane.locator('[data-role="state"]')).to_have_text("Ended by the technician")
    people.assert_clean()


async def test_sessions_are_named_for_what_they_are(live: LiveBroker, people: People) -> None:
    await live.broker.technicians.add("frieda@example.com", "Frieda Schmidt", PASSWORD)
    dash = await people.page(locale="de-DE")
    await dash.goto(live.url("/login"))
    await dash.locator('input[name="email"]').fill("frieda@example.com")
    await dash.locator('input[name="password"]').fill(PASSWORD)
    await dash.locator('form button[type="submit"]').click()
    await expect(dash).to_have_url(live.url("/dashboard"))

    # Nobody ever joined this one: it is not a "customer" in the Ended list.
    unjoined, pane = await start_session_de(dash)
    await pane.get_by_role("button", name="Schlüssel widerrufen").click()
    await confirm(dash, "Schlüssel widerrufen")
    item = dash.locator(f'#list-ended [data-session-id="{unjoined}"]')
    await expect(item).to_contain_text("Niemand beigetreten")

    # An English visitor who gives no name is "Guest" to themselves, "Gast" here.
    _, pane = await start_session_de(dash)
    link = await pane.locator('[data-role="join-url"]').input_value()
    user = await people.page(locale="en-US")
    await user.goto(link)
    await expect(user.locator("#messages")).to_contain_text("Guest joined")
    await expect(pane.locator(".sys").last).to_have_text(re.compile("Gast ist beigetreten$"))
    await expect(pane.locator('[data-role="state"]')).to_have_text("Verbunden mit Gast")
    await say(user.locator("#text"), "Hallo?")
    await expect(pane.locator(".msg .who").last).to_have_text("Gast")
    await screenshot(dash, "32-dashboard-guest-de")
    people.assert_clean()


async def start_session_de(page: Any) -> tuple[str, Any]:
    tabs = page.locator("#tabs .tab")
    before = await tabs.count()
    await page.get_by_role("button", name="Sitzung starten").click()
    await expect(tabs).to_have_count(before + 1)
    session_id = await tabs.nth(before).get_attribute("data-session-id")
    assert session_id
    return session_id, page.locator(f'.pane[data-session-id="{session_id}"]')
