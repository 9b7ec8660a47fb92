"""The /reports page in Chromium, in English and German: an admin on a desktop sees the
four charts drawn (uPlot's canvases) with a table of the same days under each, and the
tables per technician and team; a technician on a phone sees only their own figures, and
nothing is wider than the phone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from broker.schema import sessions, teams

from .browser_support import People, expect, live_broker, screenshot
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import DESKTOP, PHONE, add_people, assert_fits, log_in_as
from .report_support import fortnight

pytestmark = pytest.mark.browser
WORDS = {
    "en": {"title": "Reports", "sessions": "Sessions per day", "team": "Per team",
           "started": "Started", "printer": "Printer"},
    "de": {"title": "Berichte", "sessions": "Sitzungen pro Tag", "team": "Pro Team",
           "started": "Begonnen", "printer": "Drucker"},
}


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_reports_page_draws_charts_and_tables(tmp_path: Path, people: People,
                                                    lang: str) -> None:
    words = WORDS[lang]
    async with live_broker(tmp_path / "data") as live:
        _, maria, bob = await add_people(live.broker)
        async with live.broker.engine.connect() as conn:
            team = await conn.scalar(sa.select(teams.c.id).where(teams.c.name == "Tier 2"))
        await fortnight(live.broker, time.time(), [maria.id, bob.id], team)
        # One of Maria's ended sessions has a closing form, in a category.
        await live.broker.closing.set_config({"categories": [
            {"label": {"en": "Printer", "de": "Drucker"}}]})
        async with live.broker.engine.connect() as conn:
            ended = await conn.scalar(sa.select(sessions.c.id).where(
                sessions.c.technician_id == maria.id, sessions.c.ended_at.is_not(None))
                .order_by(sessions.c.created_at.desc()).limit(1))
        await live.broker.closing.record(ended, maria, {"category": "printer", "resolved": True})

        page = await people.page(viewport=DESKTOP, locale=lang, timezone_id="Europe/Berlin")
        await log_in_as(page, live, "admin@example.com", lang)
        await page.get_by_role("link", name=words["title"]).first.click()
        await expect(page).to_have_url(live.url("/reports"))
        root = page.locator("#reports")
        await expect(root).to_have_attribute("data-loaded", "1")
        people.assert_clean()
        await expect(page.get_by_role("heading", name=words["sessions"])).to_be_visible()
        assert await root.locator(".report-chart canvas").count() == 4
        await root.locator('[data-chart="sessions"] summary').click()  # the table, opened
        days = await root.locator('[data-chart="sessions"] .report-table tbody tr').count()
        assert days == 30  # the default: the 30 days up to today
        for chart in ("sessions", "times", "requests", "survey"):
            await expect(root.locator(f'[data-chart="{chart}"] .u-legend')).to_be_visible()
        await expect(root.locator('[data-chart="sessions"] .report-table thead')).to_contain_text(
            words["started"])
        people_table = root.locator('[data-table="technicians"] tbody')
        await expect(people_table).to_contain_text("Maria Weber")
        await expect(people_table).to_contain_text("Bob Berger")
        await expect(root.locator('[data-table="teams"] tbody')).to_contain_text("Tier 2")
        await expect(root.locator('[data-table="categories"] tbody tr')).to_have_text(
            [f"{words['printer']}1100"])
        csv = await page.locator("#csv-teams").get_attribute("href")
        assert csv is not None and "format=csv" in csv and csv.startswith("/api/v1/reports/teams")
        await screenshot(page, f"reports-admin-{lang}-desktop")
        await screenshot(page, f"reports-admin-{lang}-desktop-full", full_page=True)

        phone = await people.page(viewport=PHONE, locale=lang, timezone_id="Europe/Berlin")
        await log_in_as(phone, live, "maria@example.com", lang)
        await phone.goto(live.url("/reports"))
        own = phone.locator("#reports")
        await expect(own).to_have_attribute("data-loaded", "1")
        assert await own.locator(".report-chart canvas").count() == 4
        assert await own.locator('[data-table="teams"]').count() == 0
        rows = own.locator('[data-table="technicians"] tbody tr')
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text("Maria Weber")
        await expect(own.locator('[data-table="categories"] tbody')).to_contain_text(
            words["printer"])
        await assert_fits(phone)
        await screenshot(phone, f"reports-technician-{lang}-phone")
        await screenshot(phone, f"reports-technician-{lang}-phone-full", full_page=True)
