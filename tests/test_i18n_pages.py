"""Translations: the end user's pages (the join form, join links and the error pages for
every bad key) speak German, and <html lang> says which language a page is in.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock

from .conftest import Tech, join, start_session
from .i18n_support import (
    DE_JOIN_HEADING,
    ENGLISH,
    GERMAN,
    assert_error_page,
    chat_strings,
    form_join,
    h1_text,
    html_lang,
    link_token,
)

# -- the end user's pages in German ------------------------------------------------------


async def test_join_link_page_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await client.get(f"/j/{link_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 200
    assert html_lang(page) == "de"
    assert h1_text(page) == "Sie werden mit Ihrer Support-Sitzung verbunden…"
    assert "Sie werden betreut von Alice." in page
    assert "Chat beitreten" in page


async def test_chat_page_strings_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await form_join(client, GERMAN, key=started["key"], name="Bob")
    assert response.status == 303
    chat = await client.get(response.headers["Location"], headers=GERMAN)
    page = await chat.text()
    assert chat.status == 200
    assert html_lang(page) == "de"
    assert "Sie chatten mit" in page and 'placeholder="Nachricht eingeben…"' in page
    strings = chat_strings(page)
    assert strings["connecting"] == "Verbindung wird hergestellt…"
    assert strings["joined"] == "%(name)s ist beigetreten"
    assert strings["ended"] == (
        "Diese Sitzung wurde beendet. Sie können dieses Fenster jetzt schließen.")
    english = chat_strings(
        await (await client.get(response.headers["Location"], headers=ENGLISH)).text())
    assert english["joined"] == "%(name)s joined"
    assert strings.keys() == english.keys()


async def test_used_link_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    await join(client, started["key"])

    response = await client.get(f"/j/{link_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 409
    assert_error_page(page, "key_used")
    assert h1_text(page) == "Dieser Support-Schlüssel wurde bereits verwendet"
    assert "bereits" in page
    assert "kann nur einmal verwendet werden" in page

    for fields in ({"token": link_token(started)}, {"key": started["key"]}):
        response = await form_join(client, GERMAN, **fields)
        page = await response.text()
        assert response.status == 409, fields
        assert_error_page(page, "key_used")
        assert "bereits" in page


async def test_revoked_key_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    revoked = await client.post(f"/api/v1/sessions/{started['session_id']}/revoke",
                                headers=tech.auth)
    assert revoked.status == 200, await revoked.text()

    response = await client.get(f"/j/{link_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 410
    assert_error_page(page, "key_revoked")
    assert h1_text(page) == "Dieser Support-Schlüssel wurde zurückgezogen"
    assert "Ihr Techniker hat diesen Schlüssel zurückgezogen" in page

    for fields in ({"token": link_token(started)}, {"key": started["key"]}):
        response = await form_join(client, GERMAN, **fields)
        page = await response.text()
        assert response.status == 410, fields
        assert_error_page(page, "key_revoked")
        assert "zurückgezogen" in page


async def test_expired_key_in_german(client: TestClient, tech: Tech, clock: FakeClock) -> None:
    started = await start_session(client, tech)
    clock.advance(3601)

    response = await client.get(f"/j/{link_token(started)}", headers=GERMAN)
    page = await response.text()
    assert response.status == 410
    assert_error_page(page, "key_expired")
    assert h1_text(page) == "Dieser Support-Schlüssel ist abgelaufen"
    assert "nur begrenzte Zeit gültig" in page

    for fields in ({"token": link_token(started)}, {"key": started["key"]}):
        response = await form_join(client, GERMAN, **fields)
        page = await response.text()
        assert response.status == 410, fields
        assert_error_page(page, "key_expired")
        assert "abgelaufen" in page


async def test_unknown_link_in_german(client: TestClient) -> None:
    unknown = "A" * 32  # well formed, but no key has it
    response = await client.get(f"/j/{unknown}", headers=GERMAN)
    page = await response.text()
    assert response.status == 404
    assert_error_page(page, "key_unknown")
    assert h1_text(page) == "Wir konnten diesen Support-Schlüssel nicht finden"
    assert "Überprüfen Sie den Link oder die Ziffern" in page

    response = await form_join(client, GERMAN, token=unknown)
    page = await response.text()
    assert response.status == 404
    assert_error_page(page, "key_unknown")


async def test_unknown_typed_key_shows_the_form_again_in_german(client: TestClient) -> None:
    response = await form_join(client, GERMAN, key="000 000 001")
    page = await response.text()
    assert response.status == 404
    assert html_lang(page) == "de"
    assert h1_text(page) == DE_JOIN_HEADING  # the form again, to correct the digits
    assert "Wir konnten diesen Support-Schlüssel nicht finden. Überprüfen Sie die Ziffern" in page
    assert 'value="000 000 001"' in page
    assert "Traceback" not in page


async def test_malformed_link_in_german(client: TestClient) -> None:
    response = await client.get("/j/abc-cut-off", headers=GERMAN)
    page = await response.text()
    assert response.status == 400
    assert_error_page(page, "key_malformed")
    assert h1_text(page) == "Das ist kein vollständiger Support-Schlüssel"
    assert "Der Link wurde möglicherweise abgeschnitten" in page

    response = await form_join(client, GERMAN, token="abc-cut-off")
    page = await response.text()
    assert response.status == 400
    assert_error_page(page, "key_malformed")


async def test_malformed_typed_key_shows_the_form_again_in_german(client: TestClient) -> None:
    response = await form_join(client, GERMAN, key="12345")
    page = await response.text()
    assert response.status == 400
    assert html_lang(page) == "de"
    assert h1_text(page) == DE_JOIN_HEADING
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
    for code, token in (("key_used", link_token(used)), ("key_revoked", link_token(revoked)),
                        ("key_expired", link_token(expired)), ("key_unknown", "B" * 32),
                        ("key_malformed", "short")):
        page = await (await client.get(f"/j/{token}", headers=GERMAN)).text()
        assert_error_page(page, code)
        headings[code] = h1_text(page)
    assert len(set(headings.values())) == 5, headings
    assert "Es ist ein Fehler aufgetreten" not in headings.values()


async def test_error_pages_in_english_when_asked(client: TestClient) -> None:
    page = await (await client.get("/j/short", headers=ENGLISH)).text()
    assert h1_text(page) == "This is not a complete support key"
    assert html_lang(page) == "en"
    page = await (await client.get("/j/short?lang=en", headers=GERMAN)).text()
    assert h1_text(page) == "This is not a complete support key"


async def test_not_found_page_in_german(client: TestClient) -> None:
    response = await client.get("/no-such-page", headers=GERMAN)
    page = await response.text()
    assert response.status == 404
    assert_error_page(page, "not_found")
    assert h1_text(page) == "Seite nicht gefunden"


async def test_expired_form_in_german(client: TestClient) -> None:
    response = await client.post("/join", data={"key": "123456789", "_csrf": "wrong"},
                                 headers=GERMAN, allow_redirects=False)
    page = await response.text()
    assert response.status == 403
    assert_error_page(page, "csrf_failed")
    assert h1_text(page) == "Die Seite ist abgelaufen"


async def test_chat_of_someone_else_in_german(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await client.get(f"/s/{started['session_id']}", headers=GERMAN)
    page = await response.text()
    assert response.status == 403
    assert_error_page(page, "no_participant")
    assert h1_text(page) == "Dieser Chat ist in diesem Browser nicht geöffnet"


# -- <html lang> -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/join", "/login", "/j/short", "/no-such-page"])
@pytest.mark.parametrize("lang", ["de", "en"])
async def test_html_lang_attribute_matches(client: TestClient, path: str, lang: str) -> None:
    page = await (await client.get(path, params={"lang": lang})).text()
    assert html_lang(page) == lang
    page = await (await client.get(path, headers={"Accept-Language": lang})).text()
    assert html_lang(page) == lang


async def test_login_page_in_german(client: TestClient) -> None:
    page = await (await client.get("/login", headers=GERMAN)).text()
    assert h1_text(page) == "Anmeldung für Techniker"
    assert "Passwort" in page and "E-Mail" in page
