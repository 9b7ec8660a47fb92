"""The post-session survey on the end user's chat page in real Chromium, in English and
German, on a desktop window and a 390 px phone: it appears when the technician ends the
session, says what to do when nothing is chosen, sends the answers once, thanks the end
user, and a reload shows the thanks instead of the form. An admin's own wording replaces
the standard one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.survey import SurveyConfig

from .browser_support import (
    PASSWORD,
    SCREENSHOTS,
    LiveBroker,
    People,
    expect,
    live_broker,
    require_chromium,
    screenshot,
)
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import PHONE, assert_fits, log_in_as
from .test_pages_browser_enduser import chat_with

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 850}
WORDS = {
    "en": {"title": "How did we do?", "none": "Answer at least one question.",
           "solved": "Was your problem solved?", "yes": "Yes", "send": "Send feedback",
           "thanks": "Thank you for your feedback.", "rating": "How happy are you?"},
    "de": {"title": "Wie war unser Support?", "none": "Beantworten Sie bitte mindestens "
           "eine Frage.", "solved": "Wurde Ihr Problem gelöst?", "yes": "Ja",
           "send": "Feedback senden", "thanks": "Vielen Dank für Ihr Feedback.",
           "rating": "Wie zufrieden sind Sie?"},
}


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    require_chromium()
    async with live_broker(tmp_path / "data") as broker:
        await broker.broker.survey.set_config({"questions": [{"name": "rating", "label": {
            "en": WORDS["en"]["rating"], "de": WORDS["de"]["rating"]}}]})
        yield broker


@pytest.mark.parametrize(("lang", "viewport"), [("en", DESKTOP), ("de", PHONE),
                                                 ("en", PHONE), ("de", DESKTOP)])
async def test_the_end_user_answers_the_survey(live: LiveBroker, people: People, lang: str,
                                               viewport: dict[str, int]) -> None:
    words = WORDS[lang]
    options: dict[str, Any] = {"viewport": viewport, "locale": lang,
                               "extra_http_headers": {"Accept-Language": lang}}
    user, technician, session_id = await chat_with(live, people, **options)
    survey = user.locator("#survey")
    await expect(survey).to_be_hidden()  # nothing to rate while the session runs
    await live.broker.sessions.end(session_id, live.broker.sessions.technician_actor(
        technician), "ended_by_technician")
    await expect(survey).to_be_visible()
    await expect(survey.locator("h2")).to_have_text(words["title"])
    await expect(survey.locator(".survey-rating legend")).to_have_text(words["rating"])
    await expect(survey.locator(".survey-solved legend")).to_have_text(words["solved"])
    await survey.get_by_role("button", name=words["send"]).click()
    await expect(survey.get_by_role("alert")).to_have_text(words["none"])
    await survey.locator(".rating-choice", has_text="4").click()
    await expect(survey.get_by_role("alert")).to_be_hidden()  # answered now
    await survey.get_by_text(words["yes"], exact=True).click()
    await survey.locator("textarea").fill("Der Drucker läuft wieder" if lang == "de"
                                          else "The printer works again")
    phone = viewport == PHONE
    if phone:
        await assert_fits(user)
    await screenshot(user, f"survey-{lang}-{'phone' if phone else 'desktop'}")
    await survey.get_by_role("button", name=words["send"]).click()
    await expect(survey.get_by_role("status")).to_have_text(words["thanks"])
    await expect(user.locator("#survey-form")).to_be_hidden()
    stored = await live.broker.survey.response(session_id)
    assert stored is not None
    assert (stored.answers.rating, stored.answers.solved, stored.language) == (4, True, lang)
    assert stored.answers.comment in ("Der Drucker läuft wieder", "The printer works again")
    await user.reload()
    await expect(survey).to_be_visible()
    await expect(survey.get_by_role("status")).to_have_text(words["thanks"])
    await expect(user.locator("#survey-form")).to_be_hidden()
    if phone:
        await assert_fits(user)
        await screenshot(user, f"survey-{lang}-phone-thanks")
    people.assert_clean()


async def test_a_survey_switched_off_is_not_shown(live: LiveBroker, people: People) -> None:
    await live.broker.survey.set_config(SurveyConfig(enabled=False).to_json())
    user, technician, session_id = await chat_with(live, people)
    await live.broker.sessions.end(session_id, live.broker.sessions.technician_actor(
        technician), "ended_by_technician")
    await expect(user.locator("#ended-banner")).to_be_visible()
    await expect(user.locator("#survey")).to_have_count(0)
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_an_admin_words_a_question_in_the_admin_page(live: LiveBroker, people: People,
                                                           lang: str) -> None:
    await live.broker.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
    page = await people.page(viewport=DESKTOP, locale=lang)
    await log_in_as(page, live, "root@example.com", lang)
    await page.goto(live.url("/admin"))
    section = page.locator("#survey-admin")
    row = section.locator('tr[data-question="comment"]')
    await expect(row.locator('input[name="de"]')).to_have_value("")
    await row.locator('input[name="de"]').fill("Was können wir besser machen?")
    await section.locator('tr[data-question="solved"] input[name="shown"]').uncheck()
    await section.locator("#survey-status").scroll_into_view_if_needed()
    await section.get_by_role("button").click()
    await expect(section.locator("#survey-status")).to_have_text(
        {"en": "Saved.", "de": "Gespeichert."}[lang])
    await section.screenshot(path=str(SCREENSHOTS / f"survey-admin-{lang}.png"),
                             animations="disabled", caret="hide")
    config = await live.broker.survey.config()
    assert config.question("comment").text("de") == "Was können wir besser machen?"
    assert not config.question("solved").enabled and config.question("rating").enabled
    people.assert_clean()
