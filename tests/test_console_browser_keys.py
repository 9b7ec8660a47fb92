"""In Chromium, the dashboard's composer and keyboard (issue 16): "Maria is typing…" both
ways, canned responses at company, team and personal level picked in the composer
(filtered as one types, inserted for editing with their placeholders filled in, then
sent), and the console's shortcuts with their help overlay: switching tabs, accepting and
declining a transfer, ending the current session (with its question), sending a file,
opening the canned responses."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import FileChooser

from .browser_support import (
    PASSWORD,
    Console,
    LiveBroker,
    People,
    add_technician,
    expect,
    joined_by,
    message,
    screenshot,
    start_session,
)
from .browser_support import console as console  # noqa: F401 - a fixture
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser


async def test_typing_shows_both_ways(live: LiveBroker, people: People,
                                      console: Console) -> None:
    await add_technician(live, "Alice Example")
    dash = await console("alice@example.com")
    _, pane = await start_session(dash)
    link = await pane.locator('[data-role="join-url"]').input_value()
    user = await people.page()
    await user.goto(link)
    await expect(user.locator("#status")).to_have_text("Connected")
    tech_sees, user_sees = pane.locator('[data-role="typing"]'), user.locator("#typing")

    # The end user types: the technician sees it until the message arrives.
    await user.locator("#text").press_sequentially("My printer")
    await expect(tech_sees).to_have_text("Guest is typing…")
    await screenshot(dash, "38-dashboard-typing")
    await user.locator("#text").press("Enter")
    await expect(message(pane.locator('[data-role="messages"]'), "My printer")).to_be_visible()
    await expect(tech_sees).to_be_hidden()

    # The technician types, and empties the box again: the end user is told both.
    box = pane.locator("textarea")
    await box.press_sequentially("Hel")
    await expect(user_sees).to_have_text("Alice Example is typing…")
    await box.fill("")
    await box.dispatch_event("input")
    await expect(user_sees).to_be_hidden()

    await box.press_sequentially("Hello, Alice here.")
    await expect(user_sees).to_have_text("Alice Example is typing…")
    await box.press("Enter")
    await expect(message(user.locator("#messages"), "Hello, Alice here.")).to_be_visible()
    await expect(user_sees).to_be_hidden()
    people.assert_clean()


async def test_canned_responses_from_all_three_shelves(live: LiveBroker, people: People,
                                                       console: Console) -> None:
    boss = await live.broker.technicians.add("boss@example.com", "Boss", PASSWORD,
                                             is_admin=True)
    alice = await add_technician(live, "Alice Example")
    bob = await add_technician(live, "Bob Berger", "bob@example.com")
    team = await live.broker.teams.create("Printers")
    await live.broker.teams.add_member(team.id, alice.id)
    canned = live.broker.canned
    await canned.add(boss, scope="company", team_id=None, title="Greeting", shortcut="hello",
                     text="Hello {customer}, this is {technician}. How can I help?")
    await canned.add(boss, scope="team", team_id=team.id, title="Printer driver",
                     shortcut="driver", text="Please reinstall the printer driver.")
    await canned.add(alice, scope="personal", team_id=None, title="Goodbye", shortcut="bye",
                     text="Glad it works again, {customer}!")
    await canned.add(bob, scope="personal", team_id=None, title="Bob's secret",
                     shortcut="secret", text="Only Bob may use this.")

    dash = await console("alice@example.com")
    session_id, pane = await start_session(dash)
    await joined_by(live, pane, "Maria")
    box, messages = pane.locator("textarea"), pane.locator('[data-role="messages"]')
    picker = pane.locator(".canned-picker")
    options = picker.get_by_role("option")

    # "/" at the start of a message opens the list: the company's, the team's, her own.
    await box.press("/")
    await expect(picker).to_be_visible()
    await expect(options).to_have_count(3)
    await expect(picker).not_to_contain_text("Bob's secret")
    await expect(options.nth(0)).to_contain_text("Goodbye")
    await expect(options.nth(0)).to_contain_text("Personal")
    await expect(picker.get_by_role("option", name=re.compile("Printer driver"))
                 ).to_contain_text("Printers")
    await box.press_sequentially("hel")
    await expect(options).to_have_count(1)
    await expect(options.first).to_contain_text("/hello")
    await screenshot(dash, "37-dashboard-canned")
    await box.press("Enter")  # inserts it, for editing
    await expect(picker).to_be_hidden()
    await expect(box).to_have_value("Hello Maria, this is Alice Example. How can I help?")
    await box.press_sequentially(" :)")
    await box.press("Enter")  # sends it
    await expect(message(messages, "Hello Maria, this is Alice Example. How can I help? :)")
                 ).to_have_count(1)

    # The button opens a list with a filter of its own; Up, Down and Enter choose.
    await pane.get_by_role("button", name="Canned responses").click()
    search = picker.get_by_role("combobox", name="Filter canned responses")
    await expect(search).to_be_focused()
    await search.fill("print")
    await expect(options).to_have_count(1)
    await search.fill("")
    await expect(options).to_have_count(3)
    await search.press("ArrowDown")
    await search.press("ArrowDown")
    await expect(options.nth(2)).to_have_attribute("aria-selected", "true")
    await search.press("ArrowUp")
    await search.press("Enter")
    await expect(box).to_be_focused()
    await expect(box).to_have_value("Hello Maria, this is Alice Example. How can I help?")
    await box.fill("")
    await box.press("/")
    await box.press("Escape")  # closes the list, the "/" stays to be sent or deleted
    await expect(picker).to_be_hidden()
    await expect(box).to_have_value("/")
    people.assert_clean()


async def test_the_console_from_the_keyboard(live: LiveBroker, people: People,
                                             console: Console) -> None:
    alice = await add_technician(live, "Alice Example")
    bob = await add_technician(live, "Bob Berger", "bob@example.com")
    dash = await console("alice@example.com")
    # Listen for the file picker long before "f" is pressed: Playwright turns Chromium's
    # picker interception on without waiting, so a listener added just before the key
    # can miss a picker that opens at once (CI saw that).
    chosen: asyncio.Future[FileChooser] = asyncio.get_running_loop().create_future()
    dash.on("filechooser", lambda c: chosen.done() or chosen.set_result(c))
    first, first_pane = await start_session(dash)
    await joined_by(live, first_pane, "Maria")
    second, _ = await start_session(dash)
    tab = lambda session_id: dash.locator(f'.tab[data-session-id="{session_id}"]')  # noqa: E731
    current = re.compile(r"\bcurrent\b")

    await dash.locator("body").click(position={"x": 5, "y": 400})  # out of every field
    await dash.keyboard.press("?")
    help_ = dash.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_).to_be_visible()
    await expect(help_).to_contain_text("End the current session (asks first)")
    await dash.keyboard.press("Escape")
    await expect(help_).to_be_hidden()

    await dash.keyboard.press("Alt+1")
    await expect(tab(first)).to_have_class(current)
    await dash.keyboard.press("j")
    await expect(tab(second)).to_have_class(current)
    await dash.keyboard.press("k")
    await expect(tab(first)).to_have_class(current)

    # Alt+digit works while typing; Escape leaves the box so that letters are keys again.
    await dash.keyboard.press("r")
    await expect(first_pane.locator("textarea")).to_be_focused()
    await dash.keyboard.type("just a")
    await dash.keyboard.press("Alt+2")
    await expect(tab(second)).to_have_class(current)
    await dash.keyboard.press("Alt+1")
    await expect(first_pane.locator("textarea")).to_have_value("just a")
    await first_pane.locator("textarea").focus()
    await dash.keyboard.press("Escape")
    await dash.keyboard.press("c")
    await expect(first_pane.get_by_role("combobox", name="Filter canned responses")
                 ).to_be_focused()
    await dash.keyboard.press("Escape")   # closes the list, back in the message box
    await expect(first_pane.locator("textarea")).to_be_focused()
    await dash.keyboard.press("Escape")   # leaves the box: letters are keys again
    await dash.wait_for_function("document.activeElement === document.body")

    await expect(first_pane.locator('[data-action="attach-file"]')).to_be_enabled()
    assert not chosen.done()
    await dash.keyboard.press("f")
    assert (await asyncio.wait_for(chosen, 10)).is_multiple()

    await dash.keyboard.press("e")
    question = dash.get_by_role("dialog", name="End this session?")
    await expect(question).to_contain_text("The chat with Maria ends")
    await dash.keyboard.press("Escape")
    await expect(question).to_be_hidden()

    # Transfers from Bob: "a" accepts the first, "d" declines (asking why).
    first_offer = await live.broker.sessions.start(bob)
    offer = await live.broker.handoffs.transfer(first_offer[0].id, bob, note="Take this one.",
                                                to_technician_id=alice.id)
    await expect(dash.locator(f'.handoff-card[data-handoff-id="{offer.id}"]')).to_be_visible()
    await dash.keyboard.press("a")
    await expect(tab(first_offer[0].id)).to_have_class(current)
    await dash.locator("body").click(position={"x": 5, "y": 400})
    second_offer = await live.broker.sessions.start(bob)
    offer = await live.broker.handoffs.transfer(second_offer[0].id, bob, note="And this?",
                                                to_technician_id=alice.id)
    await expect(dash.locator(f'.handoff-card[data-handoff-id="{offer.id}"]')).to_be_visible()
    await dash.keyboard.press("d")
    reason = dash.get_by_role("dialog", name="Decline this transfer?")
    await reason.get_by_label("Why do you decline? (the sender sees this)").fill("Lunch.")
    await reason.get_by_role("button", name="Decline").click()
    await expect(dash.locator(f'.handoff-card[data-handoff-id="{offer.id}"]')).to_have_count(0)
    declined = await live.broker.handoffs.get(offer.id)
    assert (declined.state.value, declined.reason) == ("declined", "Lunch.")

    await dash.keyboard.press("Alt+1")
    await dash.keyboard.press("e")
    await dash.get_by_role("dialog", name="End this session?").get_by_role(
        "button", name="End session").click()
    await expect(first_pane.locator('[data-role="state"]')).to_have_text("Ended by the technician")
    assert (await live.broker.sessions.get(first)).state.value == "ended"
    people.assert_clean()
