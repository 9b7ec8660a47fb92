"""In Chromium, the dashboard and the end user's chat on a 390x844 phone, the dashboard
on a 1366x850 desktop, in English and German (issue 16): no element is wider than the
window or sticks out of it (measured in the page), the connection pill wraps instead of
squeezing the technician's name, and the Send button says all of "Senden". Screenshots
for a human to look at."""

from __future__ import annotations

from typing import Any

import pytest

from .browser_support import PASSWORD, LiveBroker, People, expect, screenshot
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 850}
WORDS = {
    "en": {"locale": "en-US", "start": "Start session", "send": "Send",
           "lost": "Connection lost. Reconnecting…", "connected": "Connected with",
           "offline": "You are offline"},
    "de": {"locale": "de-DE", "start": "Sitzung starten", "send": "Senden",
           "lost": "Verbindung unterbrochen. Verbindung wird wiederhergestellt…",
           "connected": "Verbunden mit", "offline": "Sie sind offline"},
}
CUSTOMER = "Bartholomew Fitzgerald-Oppenheimer"

# Every visible element that is wider than the window, or sticks out of it without a
# scrolling (or clipping) box around it that keeps it in.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className
       ? "." + el.className.trim().split(/\\s+/).join(".") : "")
    + (el.dataset.role ? "[" + el.dataset.role + "]" : "");
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    let kept = false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") { kept = true; break; }
    }
    if (box.width > width + 0.5 || (!kept && (box.left < -0.5 || box.right > width + 0.5))) {
      found.push(name(el) + " " + Math.round(box.left) + ".." + Math.round(box.right));
    }
  }
  return found;
}"""


async def assert_nothing_overflows(page: Any) -> None:
    assert await page.evaluate(OVERFLOWING) == []
    assert await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0


async def assert_not_cut(locator: Any) -> None:
    """Its text fits its box: nothing clipped or ellipsed."""
    await expect(locator).to_be_visible()
    scroll, client = await locator.evaluate("(el) => [el.scrollWidth, el.clientWidth]")
    assert scroll <= client, f"{await locator.inner_text()!r} is cut: {scroll} > {client}"


async def dashboard_in_use(live: LiveBroker, people: People, lang: str,
                           viewport: dict[str, int]) -> tuple[Any, Any]:
    """A logged-in technician with a session whose end user (a long name) has written."""
    words = WORDS[lang]
    phone = viewport == PHONE
    page = await people.page(viewport=viewport, locale=words["locale"], is_mobile=phone,
                             has_touch=phone, device_scale_factor=2 if phone else 1)
    email = f"frieda-{lang}-{viewport['width']}@example.com"
    await live.broker.technicians.add(email, "Frieda Schmidt", PASSWORD)
    await page.goto(live.url("/login"))
    await page.locator('input[name="email"]').fill(email)
    await page.locator('input[name="password"]').fill(PASSWORD)
    await page.locator('form button[type="submit"]').click()
    await page.get_by_role("button", name=words["start"]).click()
    pane = page.locator(".pane").first
    key = await pane.locator('[data-role="key"]').inner_text()
    redemption = await live.broker.sessions.redeem(code=key, token=None, name=CUSTOMER)
    session_id = await pane.get_attribute("data-session-id")
    assert session_id
    await live.broker.sessions.post_message(session_id, redemption.actor,
                                            "My printer prints blank pages.", "m1")
    await expect(pane.locator('[data-role="state"]')).to_contain_text(words["connected"])
    await expect(pane.locator(".msg .text")).to_have_text("My printer prints blank pages.")
    return page, pane


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_dashboard_fits_a_phone(live: LiveBroker, people: People, lang: str) -> None:
    words = WORDS[lang]
    page, pane = await dashboard_in_use(live, people, lang, PHONE)
    await assert_nothing_overflows(page)
    await assert_not_cut(page.locator(".topbar .who"))
    send = pane.get_by_role("button", name=words["send"], exact=True)
    await assert_not_cut(send)
    await expect(send).to_have_text(words["send"])
    await screenshot(page, f"40-dashboard-phone-{lang}", full_page=True)

    # Offline: the pill says so in full and wraps; nothing else gives way.
    await page.context.set_offline(True)
    conn = pane.locator('[data-role="conn"]')
    await expect(conn).to_have_text(words["lost"])
    await assert_nothing_overflows(page)
    await assert_not_cut(conn)
    await assert_not_cut(page.locator(".topbar .who"))
    assert (await page.locator(".topbar .who").bounding_box() or {}).get("width", 0) > 60
    await screenshot(page, f"41-dashboard-phone-offline-{lang}")
    await page.context.set_offline(False)
    await expect(conn).to_be_hidden()

    # The canned responses and the confirmation fit too.
    await pane.locator("textarea").fill("/")
    await expect(pane.locator(".canned-picker")).to_be_visible()
    await assert_nothing_overflows(page)
    await pane.locator("textarea").press("Escape")
    await pane.locator('[data-action="end"]').click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await assert_nothing_overflows(page)
    await screenshot(page, f"42-dashboard-phone-confirm-{lang}")
    await page.keyboard.press("Escape")
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_chat_fits_a_phone(live: LiveBroker, people: People, lang: str) -> None:
    """The end user's side: the pill ("You are offline…") wraps under the technician's name."""
    words = WORDS[lang]
    technician = await live.broker.technicians.add(
        f"max-{lang}@example.com", "Maximilian Schmidt-Hohenberg", PASSWORD)
    _, key = await live.broker.sessions.start(technician)
    phone = await people.page(viewport=PHONE, locale=words["locale"], is_mobile=True,
                              has_touch=True, device_scale_factor=2)
    await phone.goto(live.url(f"/j/{key.token}"))
    await expect(phone.locator("#peer-name")).to_have_text("Maximilian Schmidt-Hohenberg")
    await phone.context.set_offline(True)
    await expect(phone.locator("#status")).to_contain_text(words["offline"])
    await assert_nothing_overflows(phone)
    await assert_not_cut(phone.locator("#peer-name"))
    await assert_not_cut(phone.locator("#status"))
    send = phone.get_by_role("button", name=words["send"], exact=True)
    await assert_not_cut(send)
    await screenshot(phone, f"45-enduser-phone-offline-{lang}")
    await phone.context.set_offline(False)
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_dashboard_on_a_desktop(live: LiveBroker, people: People, lang: str) -> None:
    words = WORDS[lang]
    page, pane = await dashboard_in_use(live, people, lang, DESKTOP)
    await page.get_by_role("button", name=words["start"]).click()  # a second tab, waiting
    await expect(page.locator("#tabs .tab")).to_have_count(2)
    await assert_nothing_overflows(page)
    await assert_not_cut(page.get_by_role("button", name=words["send"], exact=True).last)
    await screenshot(page, f"43-dashboard-desktop-{lang}")
    await page.keyboard.press("?")
    await expect(page.locator("#shortcuts-help")).to_be_visible()
    await screenshot(page, f"44-dashboard-shortcuts-{lang}")
    people.assert_clean()
