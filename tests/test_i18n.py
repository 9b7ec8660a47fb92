"""Translations: languages are negotiated (Accept-Language, ?lang=, the cookie) and the
language switch stays on the site. The catalog: test_i18n_catalog.py; the end user's pages
in German: test_i18n_pages.py.
"""

from __future__ import annotations

import html
import re

import pytest
from aiohttp.test_utils import TestClient

from .i18n_support import (
    DE_JOIN_HEADING,
    EN_JOIN_HEADING,
    ENGLISH,
    GERMAN,
    h1_text,
    html_lang,
)

# -- language negotiation ----------------------------------------------------------------


async def test_accept_language_german_gives_german_pages(client: TestClient) -> None:
    response = await client.get("/join", headers=GERMAN)
    page = await response.text()
    assert response.status == 200
    assert h1_text(page) == DE_JOIN_HEADING
    assert "Geben Sie den neunstelligen Support-Schlüssel ein" in page
    assert EN_JOIN_HEADING not in page
    assert html_lang(page) == "de"


async def test_accept_language_english_gives_english_pages(client: TestClient) -> None:
    response = await client.get("/join", headers=ENGLISH)
    page = await response.text()
    assert h1_text(page) == EN_JOIN_HEADING
    assert html_lang(page) == "en"


@pytest.mark.parametrize(("header", "lang"), [
    ("", "en"),                                  # no header: the default language
    ("fr-FR,fr;q=0.9", "en"),                    # nothing we speak: the default
    ("fr-FR,fr;q=0.9,de;q=0.5", "de"),           # the best language we speak
    ("en;q=0.4,de;q=0.8", "de"),                 # quality beats order
    ("de;q=0,en", "en"),                         # q=0 means "not this one"
    ("DE-at", "de"),
])
async def test_accept_language_choices(client: TestClient, header: str, lang: str) -> None:
    page = await (await client.get("/join", headers={"Accept-Language": header})).text()
    assert html_lang(page) == lang
    assert h1_text(page) == (DE_JOIN_HEADING if lang == "de" else EN_JOIN_HEADING)


async def test_query_parameter_beats_header_and_cookie(client: TestClient) -> None:
    page = await (await client.get("/join?lang=de", headers=ENGLISH)).text()
    assert h1_text(page) == DE_JOIN_HEADING and html_lang(page) == "de"
    page = await (await client.get("/join?lang=en", headers=GERMAN)).text()
    assert h1_text(page) == EN_JOIN_HEADING and html_lang(page) == "en"
    client.session.cookie_jar.update_cookies({"lang": "en"})
    page = await (await client.get("/join?lang=de")).text()
    assert h1_text(page) == DE_JOIN_HEADING


async def test_unknown_query_language_falls_back(client: TestClient) -> None:
    page = await (await client.get("/join?lang=xx", headers=GERMAN)).text()
    assert h1_text(page) == DE_JOIN_HEADING
    page = await (await client.get("/join?lang=xx")).text()
    assert h1_text(page) == EN_JOIN_HEADING


async def test_language_switch_sets_cookie_and_redirects(client: TestClient) -> None:
    response = await client.get("/lang/de", params={"next": "/join?key=123"},
                                headers=ENGLISH, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/join?key=123"
    assert response.cookies["lang"].value == "de"
    # The cookie now beats the browser's Accept-Language.
    page = await (await client.get("/join", headers=ENGLISH)).text()
    assert h1_text(page) == DE_JOIN_HEADING and html_lang(page) == "de"

    response = await client.get("/lang/en", params={"next": "/join"}, headers=GERMAN,
                                allow_redirects=False)
    assert response.cookies["lang"].value == "en"
    page = await (await client.get("/join", headers=GERMAN)).text()
    assert h1_text(page) == EN_JOIN_HEADING and html_lang(page) == "en"


async def test_language_switch_ignores_unknown_languages(client: TestClient) -> None:
    response = await client.get("/lang/xx", params={"next": "/join"}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/join"
    assert "lang" not in response.cookies


@pytest.mark.parametrize("target", [
    "https://evil.example",
    "https://evil.example/join",
    "//evil.example",
    "//evil.example/join",
    "http:/evil.example",
    "evil.example",
    "javascript:alert(1)",
    "",
])
async def test_language_switch_redirects_only_to_local_paths(
        client: TestClient, target: str) -> None:
    response = await client.get("/lang/de", params={"next": target}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"
    assert response.cookies["lang"].value == "de"


async def test_language_switch_without_next_goes_home(client: TestClient) -> None:
    response = await client.get("/lang/de", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"



@pytest.mark.parametrize("target", [
    "/\\evil.example",            # browsers read a backslash as a slash
    "/%2F/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
])
async def test_language_switch_never_leaves_the_site(client: TestClient, target: str) -> None:
    response = await client.get("/lang/de", params={"next": target}, allow_redirects=False)
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//"), location
    assert "\\" not in location


async def test_language_switcher_link_works_on_a_page_opened_with_lang(
        client: TestClient) -> None:
    page = await (await client.get("/join?lang=de")).text()
    match = re.search(r'href="(/lang/en\?next=[^"]*)"', page)
    assert match, "no link to English"
    response = await client.get(html.unescape(match.group(1)))
    assert h1_text(await response.text()) == EN_JOIN_HEADING


@pytest.mark.parametrize(("lang", "heading"), [("de", DE_JOIN_HEADING),
                                                ("en", EN_JOIN_HEADING)])
async def test_switcher_marks_the_current_language(
        client: TestClient, lang: str, heading: str) -> None:
    page = await (await client.get(f"/join?lang={lang}")).text()
    assert h1_text(page) == heading
    assert f"<strong>{lang.upper()}</strong>" in page
    other = "en" if lang == "de" else "de"
    assert f'href="/lang/{other}?next=' in page

