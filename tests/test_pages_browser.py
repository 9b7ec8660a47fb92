"""The technician's transcript page in real Chromium (issue 16): sentences instead of
event codes, in English and German, at times in the browser's own time zone, with the
notes and every transfer's note; it fits a 390 px phone in both languages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_time

from .browser_support import LiveBroker, People, expect, screenshot
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import (
    DESKTOP,
    NOTE,
    NOTES,
    PHONE,
    Story,
    add_people,
    assert_fits,
    http_sender,
    log_in_as,
    tell_story,
)

pytestmark = pytest.mark.browser

SENTENCES = {
    "en": ["Administrator created the session", "Dana Scully joined",
           "Dana Scully paused screen sharing", "Dana Scully sent the file printer-log.txt",
           "Administrator offered the session to Maria Weber: Can you take this?",
           "Maria Weber declined the transfer: In a meeting until noon",
           f"Administrator handed the session to Bob Berger: {NOTE}",
           "Bob Berger ended the session"],
    "de": ["Administrator hat die Sitzung erstellt", "Dana Scully ist beigetreten",
           "Dana Scully hat die Bildschirmfreigabe angehalten",
           "Dana Scully hat die Datei printer-log.txt gesendet",
           "Administrator hat die Sitzung Maria Weber angeboten: Can you take this?",
           "Maria Weber hat die Übergabe abgelehnt: In a meeting until noon",
           f"Administrator hat die Sitzung an Bob Berger übergeben: {NOTE}",
           "Bob Berger hat die Sitzung beendet"],
}
HEADINGS = {"en": "Support session transcript", "de": "Protokoll der Support-Sitzung"}
ZONES = {"America/New_York": {"en": "Eastern Time", "de": "Nordamerikanische Ostküstenzeit"},
         "Asia/Tokyo": {"en": "Japan Time", "de": "Japanische Zeit"}}


async def story_of(live: LiveBroker) -> Story:
    return await tell_story(live.broker, http_sender(live),
                            people=await add_people(live.broker))


async def read_transcript(page: Any, live: LiveBroker, story: Story, lang: str,
                          zone: str) -> None:
    """The transcript page as `page` shows it: headings, sentences, notes, times."""
    created = (await live.broker.sessions.events_after(story.session_id))[0].at
    await expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[lang])
    lines = page.locator(".transcript-lines .line")
    for sentence in SENTENCES[lang]:
        await expect(lines.filter(has_text=sentence)).to_have_count(1)
    await expect(lines.filter(has_text="share.")).to_have_count(0)
    await expect(page.locator(".transcript-note")).to_have_text(NOTES)
    await expect(page.locator(".transcript-facts")).to_contain_text(
        f"{ZONES[zone][lang]} ({zone})")
    first = format_time(datetime.fromtimestamp(created, UTC), "medium",
                        tzinfo=ZoneInfo(zone), locale=lang)
    await expect(lines.first.locator("time")).to_have_text(first)


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_transcript_page_reads_in_the_readers_language_and_zone(
        live: LiveBroker, people: People, lang: str) -> None:
    story = await story_of(live)
    page = await people.page(viewport=DESKTOP, locale=lang, timezone_id="America/New_York")
    await log_in_as(page, live, "admin@example.com", lang)  # the dashboard notes the zone
    await page.goto(live.url(f"/sessions/{story.session_id}/transcript"))
    await read_transcript(page, live, story, lang, "America/New_York")
    link = page.locator(".transcript-lines .msg a", has_text="example.com/help")
    await expect(link).to_have_attribute("href", "https://example.com/help")
    await expect(page.get_by_role("link", name="HTML")).to_have_attribute(
        "href", f"/api/v1/sessions/{story.session_id}/transcript?format=html"
                "&tz=America%2FNew_York")
    await assert_fits(page)
    await screenshot(page, f"pages-transcript-{lang}", full_page=True)
    people.assert_clean()


async def test_a_transcript_opened_without_the_zone_loads_again_in_it(
        live: LiveBroker, people: People) -> None:
    story = await story_of(live)
    page = await people.page(locale="en", timezone_id="Asia/Tokyo")
    await log_in_as(page, live, "admin@example.com")
    await page.context.clear_cookies(name="tz")
    await page.goto(live.url(f"/sessions/{story.session_id}/transcript"))
    await expect(page).to_have_url(live.url(
        f"/sessions/{story.session_id}/transcript?tz=Asia%2FTokyo"))
    await read_transcript(page, live, story, "en", "Asia/Tokyo")
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_transcript_page_fits_a_phone(live: LiveBroker, people: People,
                                                lang: str) -> None:
    story = await story_of(live)
    page = await people.page(viewport=PHONE, locale=lang, timezone_id="America/New_York")
    await log_in_as(page, live, "admin@example.com", lang)
    await page.goto(live.url(f"/sessions/{story.session_id}/transcript"))
    await read_transcript(page, live, story, lang, "America/New_York")
    await assert_fits(page)
    await screenshot(page, f"pages-transcript-phone-{lang}")
    people.assert_clean()
