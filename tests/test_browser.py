"""End to end in real headless Chromium: the technician's dashboard and the end user's chat.

Each test runs the broker on a loopback port and drives one browser context per person
(separate cookies, like two computers). Tests wait on what people see, never on timers,
and save screenshots under `screenshots/` for a human to look at.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from broker.keys import format_code

from .browser_support import (
    KEY_PATTERN,
    PASSWORD,
    Console,
    LiveBroker,
    People,
    add_technician,
    confirm,
    expect,
    log_in,
    message,
    say,
    screenshot,
    start_session,
)
from .browser_support import console as console  # noqa: F401 - a fixture
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser

MOBILE = {"width": 390, "height": 844}




async def assert_fits_width(page: Any) -> None:
    width = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert width <= 0, f"page is {width}px wider than the window"


async def assert_fits_window(page: Any) -> None:
    """The page itself never scrolls sideways, and the chat pages not at all: only their
    message lists do, so the box to type in stays in view."""
    width, height = await page.evaluate(
        "[document.documentElement.scrollWidth - document.documentElement.clientWidth,"
        " document.documentElement.scrollHeight - document.documentElement.clientHeight]")
    assert width <= 0, f"page is {width}px wider than the window"
    assert height <= 0, f"page is {height}px taller than the window"


async def test_technician_and_end_user_chat_until_the_technician_ends_it(
        live: LiveBroker, people: People) -> None:
    await add_technician(live, "Alice Example")
    dash = await people.page()
    await log_in(dash, live, "alice@example.com", shot="01-login")
    await expect(dash.locator("#empty-state")).to_be_visible()
    await screenshot(dash, "01b-dashboard-empty")

    session_id, pane = await start_session(dash)
    await expect(pane.locator('[data-role="key"]')).to_have_text(KEY_PATTERN)
    await expect(pane.locator('[data-role="countdown"]')).to_have_text(
        re.compile(r"^Expires in (59|60):\d\d$"))
    join_url = pane.locator('[data-role="join-url"]')
    await expect(join_url).to_have_value(re.compile(
        "^" + re.escape(live.url("/j/")) + r"[\w-]+$"))
    await expect(pane.locator('[data-role="state"]')).to_have_text("Waiting for customer")
    await expect(dash.locator(f'#list-waiting [data-session-id="{session_id}"]')).to_be_visible()
    await screenshot(dash, "02-dashboard-waiting")

    # The end user opens the link on another computer: straight into the chat.
    user = await people.page()
    await user.goto(await join_url.input_value())
    await expect(user).to_have_url(live.url(f"/s/{session_id}"))
    await expect(user.locator("#peer-name")).to_have_text("Alice Example")
    await expect(user.locator("#status")).to_have_text("Connected")

    await expect(pane.locator('[data-role="state"]')).to_have_text(re.compile("^Connected with"))
    await expect(pane.locator('[data-role="key-block"]')).to_be_hidden()
    await expect(dash.locator(f'#list-active [data-session-id="{session_id}"]')).to_be_visible()
    await expect(dash.locator("#list-waiting")).to_contain_text("None")

    tech_box, user_box = pane.locator("textarea"), user.locator("#text")
    tech_messages, user_messages = pane.locator('[data-role="messages"]'), user.locator("#messages")
    await say(tech_box, "Hello, this is Alice. How can I help?")
    await expect(message(user_messages, "How can I help?")).to_be_visible()
    await say(user_box, "My printer only prints blank pages.")
    await expect(message(tech_messages, "only prints blank pages")).to_be_visible()
    await say(tech_box, "Let us check the driver first. Which model is it?")
    await expect(message(user_messages, "Which model is it?")).to_be_visible()
    await say(user_box, "A LaserJet 4000, it is quite old.")
    await expect(message(tech_messages, "LaserJet 4000")).to_be_visible()
    # Each side sees its own lines as its own, and the other's as the other's.
    await expect(user_messages.locator(".msg.mine")).to_have_count(2)
    await expect(tech_messages.locator(".msg.mine")).to_have_count(2)
    await expect(user_messages.locator(".msg.mine .who").first).to_have_text("You")
    await expect(tech_messages.locator(".msg:not(.mine) .who").first).to_have_text("Guest")
    await expect(user_messages.locator(".msg:not(.mine) .who").first).to_have_text(
        "Alice Example")
    await screenshot(dash, "03-dashboard-active-chat")
    await screenshot(user, "04-enduser-chat")

    await pane.get_by_role("button", name="End session").click()
    await confirm(dash, "End session")
    await expect(user.locator("#ended-banner")).to_be_visible()
    await expect(user.locator("#ended-banner")).to_contain_text("This session has ended")
    await expect(user.locator("#composer")).to_be_hidden()
    await expect(user.locator("#status")).to_have_text("Session ended")
    await expect(pane.locator('[data-role="state"]')).to_have_text("Ended by the technician")
    await expect(pane.locator('[data-role="composer"]')).to_be_hidden()
    await expect(pane.get_by_role("button", name="End session")).to_be_hidden()
    await expect(dash.locator(f'#list-ended [data-session-id="{session_id}"]')).to_be_visible()
    await screenshot(dash, "07-dashboard-ended")
    await screenshot(user, "08-enduser-ended")
    people.assert_clean()


async def test_end_user_types_the_key_at_join_and_a_used_link_says_so(
        live: LiveBroker, people: People) -> None:
    technician = await add_technician(live, "Bob Builder", "bob@example.com")
    session, key = await live.broker.sessions.start(technician)
    digits = key.code

    user = await people.page()
    await user.goto(live.url("/join"))
    key_box = user.get_by_label("Support key")
    await expect(key_box).to_be_focused()
    # A typo shows the form again with the reason.
    await key_box.fill("482 913")
    await user.get_by_role("button", name="Join", exact=True).click()
    await expect(user.get_by_role("alert")).to_contain_text("A support key has nine digits")
    await expect(key_box).to_have_value("482 913")

    typed = f" {digits[:3]}-{digits[3:6]} {digits[6:]} "
    await key_box.fill(typed)
    await user.get_by_label("Your name (optional)").fill("Carla")
    await screenshot(user, "05-join")
    await user.get_by_role("button", name="Join", exact=True).click()
    await expect(user).to_have_url(live.url(f"/s/{session.id}"))
    await expect(user.locator("#peer-name")).to_have_text("Bob Builder")
    await expect(user.locator("#status")).to_have_text("Connected")
    await expect(user.locator("#messages .sys", has_text="Carla joined")).to_be_visible()

    # The same key's link, opened later (or by someone else), is used up.
    other = await people.page()
    response = await other.goto(live.url(f"/j/{key.token}"))
    assert response is not None and response.status == 409
    await expect(other.get_by_role("heading")).to_have_text(
        "This support key has already been used")
    await expect(other.locator("[data-error-code]")).to_have_attribute("data-error-code",
                                                                       "key_used")
    await expect(other.get_by_role("link", name="Enter a support key")).to_have_attribute(
        "href", "/join")
    await screenshot(other, "06-error-key-used")

    # Typing the used key again at /join lands on the same explanation.
    await other.goto(live.url("/join"))
    await other.get_by_label("Support key").fill(format_code(digits))
    await other.get_by_role("button", name="Join", exact=True).click()
    await expect(other.get_by_role("heading")).to_have_text(
        "This support key has already been used")
    people.assert_clean()


async def test_chat_text_is_text_and_urls_are_links_also_on_a_phone(
        live: LiveBroker, people: People, console: Console) -> None:
    long_name = "Maximiliane Alexandra Konstantinopoulou-Wittelsbach"
    await add_technician(live, long_name, "max@example.com")
    dash = await console("max@example.com")
    session_id, pane = await start_session(dash)
    key = await pane.locator('[data-role="key"]').inner_text()

    phone = await people.page(viewport=MOBILE, is_mobile=True, has_touch=True,
                              device_scale_factor=2)
    await phone.goto(live.url("/join"))
    await phone.get_by_label("Support key").fill(key)
    customer = "Bartholomew Fitzgerald-Oppenheimer of Customer Relations Department"
    await phone.get_by_label("Your name (optional)").fill(customer)
    await phone.get_by_role("button", name="Join", exact=True).click()
    await expect(phone).to_have_url(live.url(f"/s/{session_id}"))
    await expect(phone.locator("#status")).to_have_text("Connected")

    hostile = ('<b>x</b><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
               " see https://example.com/help?a=1&b=2.")
    await say(phone.locator("#text"), hostile)
    tech_messages = pane.locator('[data-role="messages"]')
    for messages in (tech_messages, phone.locator("#messages")):
        text = message(messages, "<b>x</b>")
        await expect(text).to_contain_text("<script>window.__pwned = 1</script>")
        await expect(text).to_contain_text('<img src=x onerror="window.__pwned=2">')
        assert await text.locator("b, script, img").count() == 0
        link = text.get_by_role("link", name="https://example.com/help?a=1&b=2")
        await expect(link).to_have_attribute("href", "https://example.com/help?a=1&b=2")
        await expect(link).to_have_attribute("target", "_blank")
        await expect(link).to_have_attribute("rel", re.compile("noopener"))
    for page in (dash, phone):
        assert await page.evaluate("window.__pwned") is None

    long_url = "https://support.example.com/kb/" + "very-long-article-slug-" * 8 + "end"
    await say(pane.locator("textarea"),
              f"Please read {long_url} and tell me if it helps. Antidisestablishmentarianism"
              "-style-words-without-any-spaces-should-wrap-too-" * 1)
    phone_link = phone.get_by_role("link", name=long_url)
    await expect(phone_link).to_be_visible()
    await say(phone.locator("#text"), "Thanks, reading it now!")
    await expect(message(tech_messages, "reading it now")).to_be_visible()
    await expect(pane.locator('[data-role="state"]')).to_contain_text(customer)

    # Nothing on the phone is wider than the phone, and the box to type in stays in view.
    await assert_fits_window(phone)
    await expect(phone.locator("#text")).to_be_in_viewport()
    await expect(phone.locator("#messages .msg").last).to_be_in_viewport()
    await screenshot(phone, "09-enduser-mobile")
    await screenshot(dash, "10-dashboard-long-names")

    # The HTML transcript escapes the same text and links the URL.
    response = await dash.request.get(
        live.url(f"/api/v1/sessions/{session_id}/transcript?format=html"))
    assert response.status == 200
    html = await response.text()
    assert "&lt;script&gt;" in html and "<script>window" not in html
    assert '<a href="https://example.com/help?a=1&amp;b=2"' in html
    people.assert_clean()


async def test_an_ended_session_reopens_from_the_ended_list_with_its_transcript(
        live: LiveBroker, people: People, console: Console) -> None:
    await add_technician(live, "Dana Scully", "dana@example.com")
    dash = await console("dana@example.com")
    session_id, pane = await start_session(dash)
    key = await pane.locator('[data-role="key"]').inner_text()

    # The end user joins and writes through the API: this test is about the dashboard.
    sessions = live.broker.sessions
    redemption = await sessions.redeem(code=key, token=None, name="Fox")
    await sessions.post_message(session_id, redemption.actor, "The screen flickers.", "c1")
    await expect(pane.locator('[data-role="state"]')).to_have_text("Connected with Fox")
    await say(pane.locator("textarea"), "Try another cable, please.")
    for n in range(30):  # more than fits: the message list scrolls, not the page
        await sessions.post_message(session_id, redemption.actor, f"Still flickering ({n}).")
    await sessions.post_message(session_id, redemption.actor, "That fixed it, thanks!", "c2")
    await expect(message(pane.locator('[data-role="messages"]'), "fixed it")).to_be_visible()
    await pane.get_by_role("button", name="End session").click()
    await confirm(dash, "End session")
    await expect(pane.locator('[data-role="state"]')).to_have_text(re.compile("^Ended"))

    # Later: a fresh dashboard (a new browser tab: a reload would reopen the tab), the
    # session in the Ended list, opened again.
    dash = await people.another_tab(dash)
    await dash.goto(live.url("/dashboard"))
    await expect(dash.locator("#empty-state")).to_be_visible()
    item = dash.locator(f'#list-ended [data-session-id="{session_id}"]')
    await expect(item).to_contain_text("Fox")
    await item.click()
    reopened = dash.locator(f'.pane[data-session-id="{session_id}"]')
    messages = reopened.locator('[data-role="messages"]')
    texts = messages.locator(".msg .text")
    await expect(texts).to_have_count(33)
    await expect(texts.first).to_have_text("The screen flickers.")
    await expect(texts.nth(1)).to_have_text("Try another cable, please.")
    await expect(texts.last).to_have_text("That fixed it, thanks!")
    await expect(texts.last).to_be_in_viewport()
    await assert_fits_window(dash)
    await expect(messages.locator(".sys").last).to_contain_text("Session ended")
    await expect(reopened.locator('[data-role="state"]')).to_have_text(re.compile("^Ended"))
    await expect(reopened.locator('[data-role="composer"]')).to_be_hidden()
    await expect(reopened.locator('[data-role="key-block"]')).to_be_hidden()
    await expect(reopened.get_by_role("link", name="Transcript")).to_have_attribute(
        "href", f"/sessions/{session_id}/transcript")
    await expect(item).to_have_class(re.compile("current"))
    await screenshot(dash, "11-dashboard-ended-transcript")

    # Closing the tab brings the empty state back.
    await dash.locator(f'.tab[data-session-id="{session_id}"] .tab-close').click()
    await expect(reopened).to_have_count(0)
    await expect(dash.locator("#empty-state")).to_be_visible()
    people.assert_clean()


async def test_revoking_a_waiting_key_ends_the_session_and_its_link(
        live: LiveBroker, people: People, console: Console) -> None:
    await add_technician(live, "Erin Admin-on-a-phone", "erin@example.com")
    dash = await console("erin@example.com", viewport=MOBILE)
    session_id, pane = await start_session(dash)
    link = await pane.locator('[data-role="join-url"]').input_value()
    await expect(dash.locator(f'#list-waiting [data-session-id="{session_id}"]')).to_have_text(
        re.compile(r"^\d{3} \d{3} \d{3}"))  # waiting sessions are listed by their key
    await screenshot(dash, "12-dashboard-phone-waiting")
    await assert_fits_width(dash)

    await pane.get_by_role("button", name="Revoke key").click()
    await confirm(dash, "Revoke key")
    await expect(pane.locator('[data-role="state"]')).to_have_text("Ended: key withdrawn")
    await expect(pane.locator('[data-role="key-row"]')).to_be_hidden()
    await expect(dash.locator(f'#list-ended [data-session-id="{session_id}"]')).to_be_visible()
    await expect(dash.locator("#list-waiting")).to_contain_text("None")

    user = await people.page()
    response = await user.goto(link)
    assert response is not None and response.status == 410
    await expect(user.get_by_role("heading")).to_have_text("This support key was withdrawn")
    people.assert_clean()


async def test_the_pages_speak_the_browsers_language(live: LiveBroker, people: People) -> None:
    """The dashboard's and the chat's script-made lines come translated from the server."""
    await add_technician(live, "Frieda Schmidt", "frieda@example.com")
    dash = await people.page(locale="de-DE")
    await dash.goto(live.url("/login"))
    await dash.locator('input[name="email"]').fill("frieda@example.com")
    await dash.locator('input[name="password"]').fill(PASSWORD)
    await dash.locator('form button[type="submit"]').click()
    await expect(dash).to_have_url(live.url("/dashboard"))
    await expect(dash.locator("html")).to_have_attribute("lang", "de")
    await dash.get_by_role("button", name="Sitzung starten").click()
    pane = dash.locator(".pane")
    await expect(pane.locator(".sys")).to_contain_text("Sitzung erstellt")
    await expect(pane.locator('[data-role="countdown"]')).to_have_text(
        re.compile(r"^Läuft ab in (59|60):\d\d$"))
    await expect(dash.locator("#list-active")).to_have_text("Keine")
    link = await pane.locator('[data-role="join-url"]').input_value()

    user = await people.page(locale="de-DE")
    await user.goto(link)
    await expect(user.locator("#status")).to_have_text("Verbunden")
    await say(user.locator("#text"), "Hallo, mein Drucker druckt nicht.")
    await expect(user.locator("#messages .msg.mine .who")).to_have_text("Sie")
    await expect(message(pane.locator('[data-role="messages"]'), "Drucker")).to_be_visible()
    await expect(pane.locator(".sys").last).to_contain_text("ist beigetreten")
    await expect(pane.locator('[data-role="state"]')).to_have_text(re.compile("^Verbunden mit "))
    await screenshot(dash, "13-dashboard-de")
    await pane.get_by_role("button", name="Sitzung beenden").click()
    await confirm(dash, "Sitzung beenden")
    await expect(user.locator("#status")).to_have_text("Sitzung beendet")
    await expect(user.locator("#ended-banner")).to_be_visible()
    await screenshot(user, "14-enduser-ended-de")
    await expect(pane.locator('[data-role="state"]')).to_have_text("Vom Techniker beendet")
    people.assert_clean()
