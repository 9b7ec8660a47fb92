"""Translations: the German catalog is complete, languages are negotiated, and the end
user's pages (the join form, join links and the error pages for every bad key) speak German.

The catalog checks extract the template strings with Babel itself, so a new ``_("...")``
without a German translation fails here until ``make i18n`` has been run and the new
entries in web/locale/de/LC_MESSAGES/messages.po are translated.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from broker.clock import FakeClock

from .conftest import Tech, csrf_from, join, start_session

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "web" / "templates"
LOCALE = ROOT / "web" / "locale"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")

EN_JOIN_HEADING = "Join a support session"
DE_JOIN_HEADING = "An einer Support-Sitzung teilnehmen"
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}
ENGLISH = {"Accept-Language": "en"}


# -- the catalogs ------------------------------------------------------------------------


def _source_messages() -> Iterator[tuple[str, str]]:
    """(msgid, "file:line") for every _() string in the templates and in web/ and broker/."""
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix in (".html", ".txt"):
            for lineno, message, _comments, _context in extract_from_file(
                    babel_extract, str(path)):
                for msgid in message if isinstance(message, tuple) else (message,):
                    if msgid:
                        yield msgid, f"{path.relative_to(ROOT)}:{lineno}"
    for package in ("web", "broker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for lineno, message, _comments, _context in extract_from_file("python", str(path)):
                for msgid in message if isinstance(message, tuple) else (message,):
                    if msgid:
                        yield msgid, f"{path.relative_to(ROOT)}:{lineno}"


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.fixture(scope="module")
def source_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for msgid, where in _source_messages():
        found.setdefault(msgid, where)
    return found


@pytest.fixture(scope="module")
def german() -> Catalog:
    return _read(LOCALE / "de" / "LC_MESSAGES" / "messages.po", "de")


def test_templates_have_translatable_strings(source_messages: dict[str, str]) -> None:
    # Guards the extraction itself: if the extractor found nothing, the checks below
    # would pass vacuously.
    assert len(source_messages) > 50
    assert "Join a support session" in source_messages
    assert "%(name)s joined" in source_messages  # inside chat.html's JSON dict


def test_every_template_string_has_a_german_translation(
        source_messages: dict[str, str], german: Catalog) -> None:
    missing = []
    for msgid, where in source_messages.items():
        message = german.get(msgid)
        if message is None or not message.string or not str(message.string).strip():
            missing.append(f"{where}: {msgid!r}")
        elif message.fuzzy:
            missing.append(f"{where}: {msgid!r} (fuzzy)")
    assert not missing, "untranslated (run `make i18n`, then translate):\n" + "\n".join(missing)


def test_german_translations_keep_their_placeholders(german: Catalog) -> None:
    for message in german:
        if message.id and message.string:
            assert sorted(PLACEHOLDER.findall(str(message.id))) == sorted(
                PLACEHOLDER.findall(str(message.string))), message.id
    assert not [(message.id, errors) for message, errors in german.check()]


def test_template_file_lists_every_string(source_messages: dict[str, str]) -> None:
    template = _read(LOCALE / "messages.pot")
    stale = sorted(msgid for msgid in source_messages if template.get(msgid) is None)
    assert not stale, f"messages.pot is out of date (run `make i18n`): {stale}"


def test_german_catalog_is_real_utf8_german(german: Catalog) -> None:
    raw = (LOCALE / "de" / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    assert "Schlüssel" in raw and "\\u00" not in raw
    assert german.get("Support key") is not None
    assert german.get("Support key").string == "Support-Schlüssel"


# -- helpers -----------------------------------------------------------------------------


def _heading(page: str) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert match, page
    return html.unescape(match.group(1)).strip()


def _html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]*)"', page)
    assert match, page[:200]
    return match.group(1)


def _chat_strings(page: str) -> dict[str, str]:
    """The translated system lines chat.html hands to its script as JSON."""
    match = re.search(r"data-strings='([^']*)'", page)
    assert match, "chat page has no data-strings"
    return dict(json.loads(html.unescape(match.group(1))))


def _token(started: dict[str, Any]) -> str:
    return str(started["join_url"]).rsplit("/j/", 1)[1]


def _assert_error_page(page: str, code: str) -> None:
    assert f'data-error-code="{code}"' in page, page
    assert "Traceback" not in page and 'File "' not in page
    assert _html_lang(page) == "de"


async def _form_join(client: TestClient, headers: dict[str, str], **fields: str) -> Any:
    form = await client.get("/join", headers=headers)
    assert form.status == 200
    return await client.post("/join", data={"_csrf": csrf_from(await form.text()), **fields},
                             headers=headers, allow_redirects=False)


# -- language negotiation ----------------------------------------------------------------


async def test_accept_language_german_gives_german_pages(client: TestClient) -> None:
    response = await client.get("/join", headers=GERMAN)
    page = await response.text()
    assert response.status == 200
    assert _heading(page) == DE_JOIN_HEADING
    assert "Geben Sie den neunstelligen Support-Schlüssel ein" in page
    assert EN_JOIN_HEADING not in page
    assert _html_lang(page) == "de"


async def test_accept_language_english_gives_english_pages(client: TestClient) -> None:
    response = await client.get("/join", headers=ENGLISH)
    page = await response.text()
    assert _heading(page) == EN_JOIN_HEADING
    assert _html_lang(page) == "en"


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
    assert _html_lang(page) == lang
    assert _heading(page) == (DE_JOIN_HEADING if lang == "de" else EN_JOIN_HEADING)


async def test_query_parameter_beats_header_and_cookie(client: TestClient) -> None:
    page = await (await client.get("/join?lang=de", headers=ENGLISH)).text()
    assert _heading(page) == DE_JOIN_HEADING and _html_lang(page) == "de"
    page = await (await client.get("/join?lang=en", headers=GERMAN)).text()
    assert _heading(page) == EN_JOIN_HEADING and _html_lang(page) == "en"
    client.session.cookie_jar.update_cookies({"lang": "en"})
    page = await (await client.get("/join?lang=de")).text()
    assert _heading(page) == DE_JOIN_HEADING


async def test_unknown_query_language_falls_back(client: TestClient) -> None:
    page = await (await client.get("/join?lang=xx", headers=GERMAN)).text()
    assert _heading(page) == DE_JOIN_HEADING
    page = await (await client.get("/join?lang=xx")).text()
    assert _heading(page) == EN_JOIN_HEADING


async def test_language_switch_sets_cookie_and_redirects(client: TestClient) -> None:
    response = await client.get("/lang/de", params={"next": "/join?key=123"},
                                headers=ENGLISH, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/join?key=123"
    assert response.cookies["lang"].value == "de"
    # The cookie now beats the browser's Accept-Language.
    page = await (await client.get("/join", headers=ENGLISH)).text()
    assert _heading(page) == DE_JOIN_HEADING and _html_lang(page) == "de"

    response = await client.get("/lang/en", params={"next": "/join"}, headers=GERMAN,
                                allow_redirects=False)
    assert response.cookies["lang"].value == "en"
    page = await (await client.get("/join", headers=GERMAN)).text()
    assert _heading(page) == EN_JOIN_HEADING and _html_lang(page) == "en"


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
    assert _heading(await response.text()) == EN_JOIN_HEADING


@pytest.mark.parametrize(("lang", "heading"), [("de", DE_JOIN_HEADING),
                                                ("en", EN_JOIN_HEADING)])
async def test_switcher_marks_the_current_language(
        client: TestClient, lang: str, heading: str) -> None:
    page = await (await client.get(f"/join?lang={lang}")).text()
    assert _heading(page) == heading
    assert f"<strong>{lang.upper()}</strong>" in page
    other = "en" if lang == "de" else "de"
    assert f'href="/lang/{other}?next=' in page


# -- the end user's pages in German ------------------------------------------------------


async def test_join_link_page_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await client.get(f"/j/{_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 200
    assert _html_lang(page) == "de"
    assert _heading(page) == "Sie werden mit Ihrer Support-Sitzung verbunden…"
    assert "Sie werden betreut von Alice." in page
    assert "Chat beitreten" in page


async def test_chat_page_strings_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await _form_join(client, GERMAN, key=started["key"], name="Bob")
    assert response.status == 303
    chat = await client.get(response.headers["Location"], headers=GERMAN)
    page = await chat.text()
    assert chat.status == 200
    assert _html_lang(page) == "de"
    assert "Sie chatten mit" in page and 'placeholder="Nachricht eingeben…"' in page
    strings = _chat_strings(page)
    assert strings["connecting"] == "Verbindung wird hergestellt…"
    assert strings["joined"] == "%(name)s ist beigetreten"
    assert strings["ended"] == (
        "Diese Sitzung wurde beendet. Sie können dieses Fenster jetzt schließen.")
    english = _chat_strings(
        await (await client.get(response.headers["Location"], headers=ENGLISH)).text())
    assert english["joined"] == "%(name)s joined"
    assert strings.keys() == english.keys()


async def test_used_link_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    await join(client, started["key"])

    response = await client.get(f"/j/{_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 409
    _assert_error_page(page, "key_used")
    assert _heading(page) == "Dieser Support-Schlüssel wurde bereits verwendet"
    assert "bereits" in page
    assert "kann nur einmal verwendet werden" in page

    for fields in ({"token": _token(started)}, {"key": started["key"]}):
        response = await _form_join(client, GERMAN, **fields)
        page = await response.text()
        assert response.status == 409, fields
        _assert_error_page(page, "key_used")
        assert "bereits" in page


async def test_revoked_key_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    revoked = await client.post(f"/api/v1/sessions/{started['session_id']}/revoke",
                                headers=tech.auth)
    assert revoked.status == 200, await revoked.text()

    response = await client.get(f"/j/{_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 410
    _assert_error_page(page, "key_revoked")
    assert _heading(page) == "Dieser Support-Schlüssel wurde zurückgezogen"
    assert "Ihr Techniker hat diesen Schlüssel zurückgezogen" in page

    for fields in ({"token": _token(started)}, {"key": started["key"]}):
        response = await _form_join(client, GERMAN, **fields)
        page = await response.text()
        assert response.status == 410, fields
        _assert_error_page(page, "key_revoked")
        assert "zurückgezogen" in page


async def test_expired_key_in_german(client: TestClient, tech: Tech, clock: FakeClock) -> None:
    started = await start_session(client, tech)
    clock.advance(3601)

    response = await client.get(f"/j/{_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 410
    _assert_error_page(page, "key_expired")
    assert _heading(page) == "Dieser Support-Schlüssel ist abgelaufen"
    assert "nur begrenzte Zeit gültig" in page

    for fields in ({"token": _token(started)}, {"key": started["key"]}):
        response = await _form_join(client, GERMAN, **fields)
        page = await response.text()
        assert response.status == 410, fields
        _assert_error_page(page, "key_expired")
        assert "abgelaufen" in page


async def test_unknown_link_in_german(client: TestClient) -> None:
    unknown = "A" * 32  # well formed, but no key has it
    response = await client.get(f"/j/{unknown}", headers=GERMAN)
    page = await response.text()
    assert response.status == 404
    _assert_error_page(page, "key_unknown")
    assert _heading(page) == "Wir konnten diesen Support-Schlüssel nicht finden"
    assert "Überprüfen Sie den Link oder die Ziffern" in page

    response = await _form_join(client, GERMAN, token=unknown)
    page = await response.text()
    assert response.status == 404
    _assert_error_page(page, "key_unknown")


async def test_unknown_typed_key_shows_the_form_again_in_german(client: TestClient) -> None:
    response = await _form_join(client, GERMAN, key="000 000 001")
    page = await response.text()
    assert response.status == 404
    assert _html_lang(page) == "de"
    assert _heading(page) == DE_JOIN_HEADING  # the form again, to correct the digits
    assert "Wir konnten diesen Support-Schlüssel nicht finden. Überprüfen Sie die Ziffern" in page
    assert 'value="000 000 001"' in page
    assert "Traceback" not in page


async def test_malformed_link_in_german(client: TestClient) -> None:
    response = await client.get("/j/abc-cut-off", headers=GERMAN)
    page = await response.text()
    assert response.status == 400
    _assert_error_page(page, "key_malformed")
    assert _heading(page) == "Das ist kein vollständiger Support-Schlüssel"
    assert "Der Link wurde möglicherweise abgeschnitten" in page

    response = await _form_join(client, GERMAN, token="abc-cut-off")
    page = await response.text()
    assert response.status == 400
    _assert_error_page(page, "key_malformed")


async def test_malformed_typed_key_shows_the_form_again_in_german(client: TestClient) -> None:
    response = await _form_join(client, GERMAN, key="12345")
    page = await response.text()
    assert response.status == 400
    assert _html_lang(page) == "de"
    assert _heading(page) == DE_JOIN_HEADING
    assert "Ein Support-Schlüssel hat neun Ziffern" in page
    assert "Traceback" not in page


async def test_each_bad_key_has_its_own_german_message(
        client: TestClient, tech: Tech, clock: FakeClock) -> None:
    """The five error pages differ from each other and from the generic fallback."""
    used = await start_session(client, tech)
    revoked = await start_session(client, tech)
    expired = await start_session(client, tech)
    await join(client, used["key"])
    await client.post(f"/api/v1/sessions/{revoked['session_id']}/revoke", headers=tech.auth)
    clock.advance(3601)
    headings = {}
    for code, token in (("key_used", _token(used)), ("key_revoked", _token(revoked)),
                        ("key_expired", _token(expired)), ("key_unknown", "B" * 32),
                        ("key_malformed", "short")):
        page = await (await client.get(f"/j/{token}", headers=GERMAN)).text()
        _assert_error_page(page, code)
        headings[code] = _heading(page)
    assert len(set(headings.values())) == 5, headings
    assert "Es ist ein Fehler aufgetreten" not in headings.values()


async def test_error_pages_in_english_when_asked(client: TestClient) -> None:
    page = await (await client.get("/j/short", headers=ENGLISH)).text()
    assert _heading(page) == "This is not a complete support key"
    assert _html_lang(page) == "en"
    page = await (await client.get("/j/short?lang=en", headers=GERMAN)).text()
    assert _heading(page) == "This is not a complete support key"


async def test_not_found_page_in_german(client: TestClient) -> None:
    response = await client.get("/no-such-page", headers=GERMAN)
    page = await response.text()
    assert response.status == 404
    _assert_error_page(page, "not_found")
    assert _heading(page) == "Seite nicht gefunden"


async def test_expired_form_in_german(client: TestClient) -> None:
    response = await client.post("/join", data={"key": "123456789", "_csrf": "wrong"},
                                 headers=GERMAN, allow_redirects=False)
    page = await response.text()
    assert response.status == 403
    _assert_error_page(page, "csrf_failed")
    assert _heading(page) == "Die Seite ist abgelaufen"


async def test_chat_of_someone_else_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await client.get(f"/s/{started['session_id']}", headers=GERMAN)
    page = await response.text()
    assert response.status == 403
    _assert_error_page(page, "no_participant")
    assert _heading(page) == "Dieser Chat ist in diesem Browser nicht geöffnet"


# -- <html lang> -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/join", "/login", "/j/short", "/no-such-page"])
@pytest.mark.parametrize("lang", ["de", "en"])
async def test_html_lang_attribute_matches(client: TestClient, path: str, lang: str) -> None:
    page = await (await client.get(path, params={"lang": lang})).text()
    assert _html_lang(page) == lang
    page = await (await client.get(path, headers={"Accept-Language": lang})).text()
    assert _html_lang(page) == lang


async def test_login_page_in_german(client: TestClient) -> None:
    page = await (await client.get("/login", headers=GERMAN)).text()
    assert _heading(page) == "Anmeldung für Techniker"
    assert "Passwort" in page and "E-Mail" in page
