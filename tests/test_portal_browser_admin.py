"""The admin page's section on customers' requests in real Chromium (issue 18): an admin
adds, orders and removes custom fields of the pre-chat form, makes fields required or
hides them, sets response targets, and the portal shows the form as saved; a refused
form is explained; the chat button's snippet names the broker's public address and the
team, and is copied with one click; each team's address for messages is set; English
and German, on a desktop and a 390 px phone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .browser_support import LiveBroker, People, expect, screenshot
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import assert_fits, log_in_as
from .portal_support import DESKTOP, PHONE, team, technician
from .portal_support import live as live  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser


def section(page: Any) -> Any:
    return page.locator("#intake-admin")


def row(page: Any, name: str) -> Any:
    return section(page).locator(f'.intake-field[data-field="{name}"]')


async def order(page: Any) -> list[str]:
    return list(await section(page).locator(".intake-field").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.field)"))


async def add_field(page: Any, label: str, kind: str) -> None:
    form = section(page).locator("#intake-new-field")
    await form.locator('[name="label"]').fill(label)
    await form.locator('[name="kind"]').select_option(kind)
    await form.locator('button[type="submit"]').click()


async def test_an_admin_shapes_the_form_and_the_portal_follows(
        live: LiveBroker, people: People) -> None:
    ada = await technician(live, "Ada Admin", admin=True)
    await team(live, "Tier 1", ada)
    page = await people.page(viewport=DESKTOP)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await log_in_as(page, live, "ada@example.com")
    await page.goto(live.url("/admin"))
    await expect(section(page).get_by_role("heading", name="Customer requests")).to_be_visible()
    await expect(section(page).locator(".intake-field")).to_have_count(6)
    assert await order(page) == ["name", "email", "phone", "description", "severity", "team"]

    # A short text, required, with a German label; a choice list, moved to the top.
    await add_field(page, "Contract number", "short_text")
    contract = row(page, "contract_number")
    await expect(contract).to_be_visible()
    await contract.get_by_label("Label (German)").fill("Vertragsnummer")
    await contract.get_by_label("Required").check()
    await add_field(page, "Product", "choice")
    await row(page, "product").get_by_label("Options, one per line").fill("Printer\nScanner\n")
    up = row(page, "product").get_by_role("button", name="Move Product up")
    for _ in range(7):
        await up.click()
    await expect(up).to_be_disabled()
    # A field added by mistake goes again; the phone is not asked for.
    await add_field(page, "Mistake", "long_text")
    await row(page, "mistake").get_by_role("button", name="Remove Mistake").click()
    await row(page, "phone").get_by_label("Shown").uncheck()
    # Critical requests: answered within 15 minutes.
    critical = section(page).locator('.intake-target[data-level="critical"]')
    await critical.get_by_role("spinbutton").fill("15")
    await expect(section(page).locator("#intake-status")).to_have_text("Not saved yet.")
    await section(page).get_by_role("button", name="Save form and targets").click()
    await expect(section(page).locator("#intake-status")).to_have_text("Saved.")
    assert await order(page) == ["product", "name", "email", "phone", "description",
                                 "severity", "team", "contract_number"]
    await screenshot(page, "admin-intake-en-desktop", full_page=True)
    form = (await live.broker.intake.form()).to_json()
    assert form["severities"][0] == {"level": "critical", "target_seconds": 900,
                                     "business_hours": False}

    # The portal, in German, shows what was saved.
    customer = await people.page(viewport=DESKTOP, locale="de-DE")
    await customer.goto(live.url("/support/tier-1"))
    fields = await customer.locator("#portal-form .field").evaluate_all(
        "(els) => els.map((e) => e.dataset.field)")
    assert fields == ["product", "name", "email", "description", "severity", "contract_number"]
    await expect(customer.get_by_label("Vertragsnummer")).to_have_attribute("required", "")
    await expect(customer.get_by_label("Product (freiwillig)")).to_contain_text("Scanner")

    # A choice list without options: the broker refuses the whole form, in its words.
    await add_field(page, "Colour", "choice")
    await section(page).get_by_role("button", name="Save form and targets").click()
    await expect(section(page).locator("#intake-error")).to_contain_text("choices")
    await expect(section(page).locator("#intake-status")).to_have_text("Not saved yet.")

    # The chat button's snippet, for one team or any, copied with one click.
    snippet = section(page).get_by_label("Chat button code for your website")
    await expect(snippet).to_have_value(
        f'<script src="{live.base_url}/widget.js" async></script>')
    await section(page).locator("#widget-team").select_option(label="Tier 1")
    await expect(snippet).to_have_value(
        f'<script src="{live.base_url}/widget.js" data-team="tier-1" async></script>')
    await section(page).get_by_role("button", name="Copy", exact=True).click()
    await expect(section(page).locator("#widget-copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == await snippet.input_value()
    await expect(section(page).locator("#widget-origins")).to_have_text(re.compile(
        "^No website may show it yet"))

    # Where Tier 1's messages go while nobody is online.
    mail = section(page).locator('#intake-mail li[data-team="1"]')
    await mail.get_by_label("Email for messages to Tier 1").fill("desk@example.com")
    await mail.get_by_role("button", name="Save").click()
    await expect(mail).to_contain_text("Saved.")
    assert (await live.broker.teams.get(1)).message_email == "desk@example.com"
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_section_in_both_languages_fits_a_phone(
        live: LiveBroker, people: People, lang: str, tmp_path: Path) -> None:
    ada = await technician(live, "Ada Admin", admin=True)
    await team(live, "Tier 1", ada)
    for size, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page = await people.page(viewport=size)
        await log_in_as(page, live, "ada@example.com", lang)
        await page.goto(live.url(f"/admin?lang={lang}"))
        heading = {"en": "Customer requests", "de": "Kundenanfragen"}[lang]
        await expect(section(page).get_by_role("heading", name=heading)).to_be_visible()
        await expect(section(page).locator(".intake-field")).to_have_count(6)
        await expect(section(page).locator(".intake-target")).to_have_count(5)
        await add_field(page, {"en": "Contract number", "de": "Vertragsnummer"}[lang],
                        "choice")
        if name == "phone":
            await assert_fits(page)
        await section(page).scroll_into_view_if_needed()
        await screenshot(page, f"admin-intake-{lang}-{name}-new-field")
    people.assert_clean()
