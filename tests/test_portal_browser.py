"""The support portal in real Chromium (issue 18): a customer fills the pre-chat form,
lands in the chat waiting in the queue, watches their place move up as others are
served, and is taken by a technician, whose name replaces "Our support team"; refused
answers stand next to their fields; with nobody online the portal takes a message; the
honeypot is for robots only; English and German, on a desktop and a 390 px phone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .browser_support import LiveBroker, People, expect, message, screenshot
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import assert_fits
from .portal_support import (
    DESKTOP,
    PHONE,
    customer,
    said_by_customer,
    take,
    team,
    technician,
    write,
)
from .portal_support import live as live  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser
WAIT = re.compile(r"Estimated wait: (less than a minute|about one minute|about \d+ minutes)\.$")


async def fill(page: Any, **values: str) -> None:
    for name, value in values.items():
        await page.locator(f'#portal-form [name="{name}"]').fill(value)


def card(page: Any) -> Any:
    return page.locator("#queue")


async def test_a_customer_waits_in_the_queue_and_a_technician_takes_them(
        live: LiveBroker, people: People) -> None:
    alice = await technician(live, "Alice Example")
    await team(live, "Tier 1", alice)
    before = [await customer(live, "tier-1", name) for name in ("Early One", "Early Two")]
    page = await people.page(viewport=DESKTOP)
    await page.goto(live.url("/support/tier-1"))
    await expect(page.get_by_role("heading", name="Contact support · Tier 1")).to_be_visible()
    await expect(page.locator("#availability")).to_have_text(re.compile(
        "^A technician is available"))
    await screenshot(page, "portal-en-desktop")

    # The browser's hints first: nothing is sent while required fields are empty.
    await page.get_by_role("button", name="Start chat").click()
    await expect(page.locator("#f-name-error")).to_have_text("Please fill in this field.")
    await expect(page.get_by_label("Your name")).to_have_attribute("aria-invalid", "true")
    # An address the browser takes but the broker does not: its word, next to the field.
    await fill(page, name="Carla Kunde", email="carla@example",
               description="The printer prints nothing since this morning.")
    await page.get_by_label("How urgent is it?").select_option("bugfix")  # due after theirs
    await page.get_by_role("button", name="Start chat").click()
    await expect(page.locator("#f-email-error")).to_have_text(
        "Please enter a valid email address, like name@example.com.")
    await expect(page.locator("#f-name-error")).to_be_hidden()
    await expect(page.get_by_label("Email address")).to_be_focused()
    await screenshot(page, "portal-en-refused")
    await fill(page, email="carla@example.com")
    await page.get_by_role("button", name="Start chat").click()

    # The chat, waiting: third in the queue, no technician yet.
    await expect(page).to_have_url(re.compile(r"/s/[\w-]+$"))
    session_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("#peer-name")).to_have_text("Our support team")
    await expect(card(page)).to_contain_text("A technician will be with you shortly.")
    await expect(card(page).locator('[data-role="place"]')).to_have_text(
        "You are number 3 in the queue.")
    await expect(page.locator("#messages")).to_contain_text("You asked Tier 1 for help.")
    await expect(page.locator("#presence-note")).to_be_hidden()
    # Lines typed while waiting wait for whoever takes the request.
    await page.locator("#text").fill("It says paper jam, but there is no paper in it.")
    await page.locator("#text").press("Enter")
    await expect(message(page.locator("#messages"), "paper jam")).to_be_visible()

    # Others are served: the place moves up by itself.
    await take(live, alice, before[0])
    await expect(card(page).locator('[data-role="place"]')).to_have_text(
        "You are number 2 in the queue.")
    await take(live, alice, before[1])
    await expect(card(page).locator('[data-role="place"]')).to_have_text(
        "You are next in the queue.")
    # Requests taken of late tell the next customer how long they would wait.
    await expect(card(page).locator('[data-role="wait"]')).to_have_text(WAIT)
    other = await people.page(viewport=DESKTOP)
    await other.goto(live.url("/support/tier-1"))
    await expect(other.locator("#availability")).to_have_text(re.compile(
        r"^A technician is available\. .* Estimated wait: "))
    await expect(other.locator("#availability")).to_contain_text(WAIT)
    await screenshot(page, "portal-en-waiting")

    # Alice takes Carla's request: her name replaces the team's, the card goes.
    await take(live, alice, session_id)
    await expect(page.locator("#peer-name")).to_have_text("Alice Example")
    await expect(card(page)).to_be_hidden()
    await expect(page.locator("#messages")).to_contain_text(
        "You are now connected with Alice Example")
    await write(live, alice, session_id, "Hello Carla, I see your message about the jam.")
    await expect(message(page.locator("#messages"), "Hello Carla")).to_be_visible()
    assert await said_by_customer(live, alice, session_id) == [
        "It says paper jam, but there is no paper in it."]
    # A reload: still Alice, no card.
    await page.reload()
    await expect(page.locator("#peer-name")).to_have_text("Alice Example")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(card(page)).to_be_hidden()
    await screenshot(page, "portal-en-taken")
    people.assert_clean()


async def test_the_portal_in_german_on_a_phone(live: LiveBroker, people: People) -> None:
    alice = await technician(live, "Alice Example")
    await team(live, "Tier 1", alice)
    await team(live, "Tier 2", await technician(live, "Bob Builder"), online=False)
    await customer(live, "tier-1", "Early One")
    page = await people.page(viewport=PHONE, locale="de-DE")
    await page.goto(live.url("/support"))
    await expect(page.get_by_role("heading", name="Support kontaktieren")).to_be_visible()
    await expect(page.locator("#availability")).to_have_text(
        "Wählen Sie ein Team und sagen Sie uns, was Sie brauchen.")
    # The team decides what the page says: Tier 2 has nobody online.
    await page.get_by_label("Team").select_option(label="Tier 2")
    await expect(page.locator("#availability")).to_contain_text("Gerade ist niemand online.")
    await expect(page.get_by_role("button", name="Nachricht senden")).to_be_visible()
    await page.get_by_label("Team").select_option(label="Tier 1")
    await expect(page.locator("#availability")).to_contain_text("Ein Techniker ist erreichbar.")
    await assert_fits(page)
    await screenshot(page, "portal-de-phone")
    await fill(page, name="Jana Novak", email="jana@example.com", phone="030 1234",
               description="Outlook fragt ständig nach dem Passwort.")
    await page.get_by_role("button", name="Chat starten").click()
    await expect(page.locator("#f-phone-error")).to_have_text(re.compile(
        "^Bitte geben Sie eine gültige Telefonnummer ein"))
    await assert_fits(page)
    await screenshot(page, "portal-de-phone-refused")
    await fill(page, phone="+49 30 12345678")
    await page.get_by_role("button", name="Chat starten").click()
    await expect(page).to_have_url(re.compile(r"/s/[\w-]+$"))
    await expect(page.locator("#peer-name")).to_have_text("Unser Support-Team")
    await expect(card(page).locator('[data-role="place"]')).to_have_text(
        "Sie sind Nummer 2 in der Warteschlange.")
    await expect(page.locator("#messages")).to_contain_text(
        "Sie haben Tier 1 um Hilfe gebeten.")
    await assert_fits(page)
    await screenshot(page, "portal-de-phone-waiting")
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_portal_fits_a_phone(live: LiveBroker, people: People, lang: str) -> None:
    await team(live, "Tier 1", await technician(live, "Alice Example"))
    page = await people.page(viewport=PHONE)
    await page.goto(live.url(f"/support/tier-1?lang={lang}"))
    await expect(page.locator("#portal")).to_have_attribute("data-state", "online")
    await assert_fits(page)
    await screenshot(page, f"portal-{lang}-phone")
    desktop = await people.page(viewport=DESKTOP)
    await desktop.goto(live.url(f"/support/tier-1?lang={lang}"))
    await expect(desktop.locator("#portal")).to_have_attribute("data-state", "online")
    await assert_fits(desktop)
    await screenshot(desktop, f"portal-{lang}-desktop")
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_with_nobody_online_the_customer_leaves_a_message(
        live: LiveBroker, people: People, lang: str) -> None:
    bob = await technician(live, "Bob Builder")
    team_id = await team(live, "Tier 1", bob, online=False)
    words = {"en": ("Nobody is online right now. Leave a message and we will answer you "
                    "by email.", "Send message", "Email address",
                    "Nobody is online right now: leave your email address so that we can "
                    "answer you.", "Thank you, your message has arrived.",
                    "We will answer you by email at carla@example.com."),
             "de": ("Gerade ist niemand online. Hinterlassen Sie eine Nachricht, wir "
                    "antworten Ihnen per E-Mail.", "Nachricht senden", "E-Mail-Adresse",
                    "Gerade ist niemand online: Geben Sie Ihre E-Mail-Adresse an, damit "
                    "wir Ihnen antworten können.", "Vielen Dank, Ihre Nachricht ist "
                    "angekommen.", "Wir antworten Ihnen per E-Mail an carla@example.com.")}
    offline, send, email, needed, thanks, answer = words[lang]
    page = await people.page(viewport=PHONE)
    await page.goto(live.url(f"/support/tier-1?lang={lang}"))
    await expect(page.locator("#availability")).to_have_text(offline)
    await fill(page, name="Carla Kunde", description="Our VPN is down.")
    await page.get_by_role("button", name=send).click()
    # The address is needed to answer: the page asks for it before anything is sent.
    await expect(page.locator("#f-email-error")).to_have_text(needed)
    await expect(page.get_by_label(email)).to_be_focused()
    await fill(page, email="carla@example.com")
    await page.get_by_role("button", name=send).click()
    await expect(page.locator("#portal-sent h2")).to_have_text(thanks)
    await expect(page.locator('#portal-sent [data-role="sent-to"]')).to_have_text(answer)
    await expect(page.locator("#portal-form")).to_be_hidden()
    await assert_fits(page)
    await screenshot(page, f"portal-{lang}-message-sent")
    (request,) = await live.broker.intake.listed(bob, team_id=team_id)
    assert request.kind.value == "message" and request.email == "carla@example.com"
    assert request.description == "Our VPN is down." and request.language == lang
    people.assert_clean()


async def test_the_honeypot_is_for_robots_only(live: LiveBroker, people: People) -> None:
    alice = await technician(live, "Alice Example")
    team_id = await team(live, "Tier 1", alice)
    page = await people.page(viewport=DESKTOP)
    await page.goto(live.url("/support/tier-1"))
    trap = page.locator('input[name="website"]')
    await expect(trap).to_be_hidden()
    assert "Website" not in await page.locator("#portal").aria_snapshot()
    # Tab order: from the first field through the form, never into the trap.
    await page.get_by_label("Your name").focus()
    for _ in range(8):
        await page.keyboard.press("Tab")
        assert await trap.evaluate("(el) => el !== document.activeElement")
    # A robot that fills it gets the answer of a message, and nothing is made.
    await trap.evaluate("(el) => { el.value = 'http://spam.example'; }")
    await fill(page, name="Robot", email="robot@example.com", description="Buy now")
    await page.get_by_role("button", name="Start chat").click()
    await expect(page.locator("#portal-sent")).to_be_visible()
    assert await live.broker.intake.listed(alice, team_id=team_id) == []
    people.assert_clean()
