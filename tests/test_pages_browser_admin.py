"""The admin page, the history page and the account menu in real Chromium (issue 16):
an admin adds a technician (who must choose a password at first login), makes and
unmakes admins, puts them in a team with the labelled picker, resets a password (a
one-time password, to be changed at the next login) and disables them (they cannot log
in any more); "My sessions" searches the end user's name, the chat and the notes, filters
by state, lists sessions handed over and opens their transcript; every technician
changes their password from the account menu, in English and German, on a phone too."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .browser_support import PASSWORD, TIMEOUT_MS, LiveBroker, People, expect, screenshot
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import (
    DESKTOP,
    PHONE,
    add_people,
    assert_fits,
    http_sender,
    log_in_as,
    tell_story,
)

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a much longer passphrase"
# Whether the history list shows exactly these sessions (sorted ids).
SHOWN = """(ids) => JSON.stringify([...document.querySelectorAll(".history-item")]
  .map((li) => li.dataset.sessionId).sort()) === JSON.stringify(ids)"""


async def admin_page(people: People, live: LiveBroker, **options: Any) -> Any:
    page = await people.page(viewport=DESKTOP, **options)
    page.on("dialog", lambda dialog: dialog.accept())  # "Disable …?", "Reset …?"
    await log_in_as(page, live, "admin@example.com")
    await page.goto(live.url("/admin"))
    return page


async def first_login(people: People, live: LiveBroker, email: str, password: str) -> Any:
    """Log in with a one-time password: the password page comes first; choose one."""
    page = await people.page(viewport=DESKTOP)
    await page.goto(live.url("/login"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(live.url("/password"))
    await expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    await page.goto(live.url("/dashboard"))  # nothing else before a password is chosen
    await expect(page).to_have_url(live.url("/password"))
    await page.get_by_label("One-time password").fill(password)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Save password").click()
    await expect(page).to_have_url(live.url("/dashboard"))
    return page


async def test_the_first_admin_replaces_the_printed_password(live: LiveBroker,
                                                             people: People) -> None:
    """Defect 8: the password `serve` prints for the first admin is a one-time one."""
    created = await live.broker.ensure_admin()
    assert created is not None
    admin, printed = created
    page = await first_login(people, live, admin.email, printed)
    await expect(page.locator("#account .who")).to_have_text(admin.display_name)
    assert not (await live.broker.technicians.get(admin.id)).must_change_password
    people.assert_clean()


async def test_an_admin_manages_technicians_in_the_browser(live: LiveBroker,
                                                           people: People) -> None:
    await add_people(live.broker)  # Administrator, Maria Weber, Bob Berger; team Tier 2
    admin = await admin_page(people, live)
    rows = admin.locator("#technicians tr")
    await expect(rows).to_have_count(3)

    # Adding: the one-time password is shown once; the new technician must replace it.
    form = admin.locator("#new-technician")
    await form.get_by_label("Name").fill("Carla Nowak")
    await form.get_by_label("Email").fill("carla@example.com")
    await form.get_by_role("button", name="Add technician").click()
    one_time = admin.locator("#one-time")
    await expect(one_time).to_contain_text("One-time password for Carla Nowak:")
    password = await one_time.locator("code").inner_text()
    assert len(password) >= 12
    carla_row = rows.filter(has_text="carla@example.com")
    await expect(carla_row).to_contain_text("must choose a password")
    await screenshot(admin, "60-admin-added")
    await one_time.get_by_role("button", name="Done").click()
    await expect(one_time).to_be_hidden()
    carla = await first_login(people, live, "carla@example.com", password)
    await admin.reload()
    await expect(carla_row).not_to_contain_text("must choose a password")

    # Admin rights: given, then taken back.
    await carla_row.get_by_role("button", name="Make admin").click()
    await expect(carla_row.locator(".badge", has_text="admin")).to_be_visible()
    assert (await live.broker.technicians.by_email("carla@example.com")).is_admin
    await carla_row.get_by_role("button", name="Remove admin").click()
    await expect(carla_row.locator(".badge", has_text="admin")).to_have_count(0)
    assert not (await live.broker.technicians.by_email("carla@example.com")).is_admin

    # The team picker is labelled with its team; the new member shows as a chip.
    team_row = admin.locator("#teams tr", has_text="Tier 2")
    await team_row.get_by_label("Add to Tier 2").select_option(label="Carla Nowak")
    await team_row.get_by_role("button", name="Add", exact=True).click()
    await expect(team_row.locator(".chip", has_text="Carla Nowak")).to_be_visible()
    await expect(carla_row).to_contain_text("Tier 2")
    await team_row.get_by_role("button", name="Remove Carla Nowak from Tier 2").click()
    await expect(team_row.locator(".chip", has_text="Carla Nowak")).to_have_count(0)

    # A reset: a new one-time password; her login ends, and she must choose again.
    await carla_row.get_by_role("button", name="Reset password").click()
    await expect(one_time).to_contain_text("One-time password for Carla Nowak:")
    reset = await one_time.locator("code").inner_text()
    assert reset != password
    await expect(carla_row).to_contain_text("must choose a password")
    await carla.goto(live.url("/dashboard"))
    await expect(carla).to_have_url(re.compile(r"/login$"))
    await carla.context.close()
    carla = await first_login(people, live, "carla@example.com", reset)

    # Disabled: marked, and her logins end; the login form refuses her.
    await carla_row.get_by_role("button", name="Disable").click()
    await expect(carla_row.locator(".badge", has_text="disabled")).to_be_visible()
    await expect(carla_row.get_by_role("button", name="Enable")).to_be_visible()
    await carla.goto(live.url("/dashboard"))
    await expect(carla).to_have_url(re.compile(r"/login$"))
    await carla.get_by_label("Email").fill("carla@example.com")
    await carla.get_by_label("Password").fill(NEW_PASSWORD)
    await carla.get_by_role("button", name="Log in").click()
    await expect(carla.get_by_role("alert")).to_be_visible()
    await expect(carla).to_have_url(re.compile(r"/login$"))
    await screenshot(admin, "61-admin-disabled")
    people.assert_clean()


async def test_my_sessions_searches_and_opens_transcripts(live: LiveBroker,
                                                          people: People) -> None:
    staff = await add_people(live.broker)
    send = http_sender(live)
    printer = await tell_story(live.broker, send, people=staff)  # Bob took it over
    mail = await tell_story(live.broker, send, people=staff, end_user_name="Fox Mulder")
    admin, _, bob = staff
    waiting, _ = await live.broker.sessions.start(admin)
    await live.broker.sessions.set_notes(mail.session_id, bob, "Mailbox quota raised.")

    # The administrator handed both over to Bob: still in his list, searchable.
    page = await people.page(viewport=DESKTOP)
    await log_in_as(page, live, "admin@example.com")
    await page.goto(live.url("/sessions"))
    items = page.locator(".history-item")
    await expect(items).to_have_count(3)
    search = page.get_by_role("searchbox", name="Search")
    for words, found in (("Fox", [mail.session_id]), ("Scully", [printer.session_id]),
                         ("quota raised", [mail.session_id]),  # the notes
                         ("spooler", [mail.session_id, printer.session_id])):
        await search.fill(words)
        await search.press("Enter")
        await page.wait_for_function(SHOWN, arg=sorted(found), timeout=TIMEOUT_MS)
    await expect(page).to_have_url(re.compile(r"\?q=spooler$"))
    await search.fill("")
    await page.get_by_label("State").select_option(label="Waiting for customer")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(items).to_have_count(1)
    await expect(items.first).to_have_attribute("data-session-id", waiting.id)
    await page.get_by_label("State").select_option(label="Ended")
    await search.fill("nothing like this")
    await search.press("Enter")
    await expect(page.locator("#history-count")).to_have_text("No sessions match.")
    await screenshot(page, "62-history-none")

    # Bob's own list, and a transcript from it.
    bobs = await people.page(viewport=DESKTOP)
    await log_in_as(bobs, live, "bob@example.com")
    await bobs.goto(live.url("/sessions?q=Fox"))
    bob_items = bobs.locator(".history-item")
    await expect(bob_items).to_have_count(1)
    await expect(bob_items.first).to_contain_text("Fox Mulder")
    await expect(bob_items.first).to_contain_text("Bob Berger")
    await bob_items.first.get_by_role("link", name="Transcript").click()
    await expect(bobs).to_have_url(live.url(f"/sessions/{mail.session_id}/transcript"))
    await expect(bobs.locator(".transcript-note")).to_have_text("Mailbox quota raised.")

    # In German on a phone: the same search, and nothing wider than the screen.
    phone = await people.page(viewport=PHONE, locale="de-DE")
    await log_in_as(phone, live, "admin@example.com", "de")
    await phone.goto(live.url("/sessions?q=spooler"))
    await phone.wait_for_function(SHOWN, arg=sorted([mail.session_id, printer.session_id]),
                                  timeout=TIMEOUT_MS)
    await expect(phone.locator("#history-count")).to_have_text("2 Sitzungen angezeigt")
    await expect(phone.locator(".history-item").first).to_contain_text("Beendet")
    await assert_fits(phone)
    await screenshot(phone, "64-history-phone-de")
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_account_menu_changes_the_password(live: LiveBroker, people: People,
                                                    lang: str) -> None:
    words = {"en": ("Change password", "Change your password", "Log out", "Save password",
                    "Current password"),
             "de": ("Passwort ändern", "Passwort ändern", "Abmelden", "Passwort speichern",
                    "Aktuelles Passwort")}[lang]
    change, heading, log_out, save, current = words
    await live.broker.technicians.add("maria@example.com", "Maria Weber-Schönfeld", PASSWORD)
    for viewport in (PHONE, DESKTOP):
        page = await people.page(viewport=viewport, locale=lang)
        await log_in_as(page, live, "maria@example.com", lang)
        menu = page.locator("#account")
        await expect(menu.get_by_role("link", name=change)).to_be_hidden()
        await menu.locator("summary").click()
        await expect(menu.get_by_role("link", name=change)).to_be_visible()
        await expect(menu.get_by_role("button", name=log_out)).to_be_visible()
        await assert_fits(page)
        await screenshot(page, f"63-account-menu-{lang}-{viewport['width']}")
        await page.keyboard.press("Escape")
        await expect(menu.get_by_role("link", name=change)).to_be_hidden()
        # The same menu on the history page.
        await page.goto(live.url("/sessions"))
        await page.locator("#account summary").click()
        await page.locator("#account").get_by_role("link", name=change).click()
        await expect(page).to_have_url(live.url("/password"))
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        await assert_fits(page)
        if viewport is DESKTOP:
            await page.get_by_label(current).fill(PASSWORD)
            await page.locator('input[name="new"]').fill(NEW_PASSWORD)
            await page.locator('input[name="repeat"]').fill(NEW_PASSWORD)
            await page.get_by_role("button", name=save).click()
            await expect(page).to_have_url(live.url("/dashboard"))
            technician = await live.broker.technicians.by_email("maria@example.com")
            assert await live.broker.technicians.login(technician.email, NEW_PASSWORD)
    people.assert_clean()
