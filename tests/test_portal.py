"""The customer-facing pages over HTTP (docs/portal.md): the portal renders the admin's
form, the chat button's script carries its words, only the pages the button embeds may
be framed and only by `widget_origins`, the public APIs answer those sites by CORS and no
other, and a technician's ``goto:`` line is recognised as ``open:`` is."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.errors import InvalidInput
from broker.sessions.webpage import goto_url, open_url
from broker.settings import Settings

from .conftest import Tech, join, open_socket, start_session
from .intake_support import Factory, MakeTech, json_of, team_of, tech_of
from .intake_support import make_client as make_client  # noqa: F401 - a fixture
from .intake_support import settings as settings  # noqa: F401 - a fixture

SHOP = "https://shop.example.com"
ELSEWHERE = "https://evil.example.net"
GERMAN = {"Accept-Language": "de"}
WIDGET_SOURCE = (Path(__file__).resolve().parent.parent / "web" / "static" / "widget.js"
                 ).read_text(encoding="utf-8")


def test_widget_origins_are_origins_as_browsers_send_them(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, widget_origins=(
        " https://Shop.Example.com/ ,http://127.0.0.1:8081, https://x.org:443"))
    assert settings.widget_origin_list == (SHOP, "http://127.0.0.1:8081", "https://x.org")
    assert Settings(data_dir=tmp_path).widget_origin_list == ()
    for wrong in ("shop.example.com", "ftp://shop.example.com", "https://shop.example.com/x",
                  "https://*.example.com", "*", "https://me@shop.example.com",
                  "https://shop.example.com:99999", "https://shop.example.com?x=1"):
        with pytest.raises(InvalidInput, match="widget_origins"):
            Settings(data_dir=tmp_path, widget_origins=wrong)


async def _page(client: TestClient, path: str, status: int = 200, **headers: str) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status == status, await response.text()
    return response


async def test_only_the_embedded_pages_may_be_framed_and_only_by_the_listed_sites(
        make_client: Factory, make_tech: MakeTech) -> None:
    client = await make_client(widget_origins=f"{SHOP},http://localhost:8000")
    await team_of(client, "Tier 1", await tech_of(client, "Alice"))
    listed = f"frame-ancestors {SHOP} http://localhost:8000;"
    for path in ("/support/tier-1?embed=1", "/support?embed=1", "/s/anything/embed"):
        response = await _page(client, path)
        assert listed in response.headers["Content-Security-Policy"], path
        assert "X-Frame-Options" not in response.headers, path
    for path in ("/support/tier-1", "/support", "/join", "/login"):
        response = await _page(client, path)
        assert "frame-ancestors 'none';" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Frame-Options"] == "DENY", path
    # Nothing else of the policy changes for the embedded pages.
    policy = (await _page(client, "/support?embed=1")).headers["Content-Security-Policy"]
    plain = (await _page(client, "/support")).headers["Content-Security-Policy"]
    assert policy.replace(listed, "frame-ancestors 'none';") == plain


async def test_without_listed_sites_nothing_may_frame_the_embedded_pages(
        client: TestClient, make_tech: MakeTech) -> None:
    await team_of(client, "Tier 1", await make_tech("Alice"))
    for path in ("/support?embed=1", "/s/anything/embed"):
        response = await _page(client, path)
        assert "frame-ancestors 'none';" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_the_public_apis_answer_the_listed_sites_by_cors(make_client: Factory) -> None:
    client = await make_client(widget_origins=SHOP)
    await team_of(client, "Tier 1", await tech_of(client, "Alice"))
    allowed = await client.get("/api/v1/availability?team=tier-1", headers={"Origin": SHOP})
    assert (await json_of(allowed, 200))["online"] is True
    assert allowed.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in allowed.headers.getall("Vary")
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    refused = await client.get("/api/v1/availability?team=tier-1",
                               headers={"Origin": ELSEWHERE})
    assert "Access-Control-Allow-Origin" not in refused.headers
    # A listed site's own form posts JSON: the browser asks first.
    ask = {"Origin": SHOP, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    preflight = await client.options("/api/v1/requests", headers=ask)
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"
    denied = await client.options("/api/v1/requests", headers={**ask, "Origin": ELSEWHERE})
    assert denied.status == 403 and "Access-Control-Allow-Origin" not in denied.headers
    posted = await client.post("/api/v1/requests", headers={"Origin": SHOP}, json={
        "name": "Carla", "email": "carla@example.com", "description": "Help", "team": "tier-1"})
    assert posted.status == 201 and posted.headers["Access-Control-Allow-Origin"] == SHOP
    # Other API routes answer no other site, listed or not.
    other = await client.get("/api/v1/intake-form", headers={"Origin": SHOP})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_the_chat_buttons_script_carries_its_words_in_both_languages(
        client: TestClient) -> None:
    response = await _page(client, "/widget.js")
    assert response.content_type == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    source = await response.text()
    assert "/*TEXT*/" not in source
    assert '"chat": "Chat with us"' in source and '"chat": "Chatten Sie mit uns"' in source
    assert '"close": "Chat schließen"' in source
    assert source == WIDGET_SOURCE.replace(
        "/*TEXT*/{}", source.split("const TEXT = ", 1)[1].split(";\n", 1)[0])


def _fields(page: str) -> list[str]:
    return re.findall(r'<div class="field" data-field="([a-z_0-9]+)"', page)


async def test_the_portal_renders_the_admins_form(client: TestClient, make_tech: MakeTech
                                                  ) -> None:
    admin = await make_tech("Ada", admin=True)
    await team_of(client, "Tier 1", admin)
    await team_of(client, "Tier 2", await make_tech("Bob"), online=False)
    form = {"fields": [
        {"name": "contract", "kind": "short_text", "required": True,
         "label": {"en": "Contract number", "de": "Vertragsnummer"}},
        {"name": "name"}, {"name": "email"},
        {"name": "product", "kind": "choice", "label": "Product",
         "choices": ["Printer", "Scanner"]},
        {"name": "description"}, {"name": "severity"}, {"name": "phone", "enabled": False},
        {"name": "team"},
    ]}
    await json_of(await client.put("/api/v1/intake-form", json=form, headers=admin.auth), 200)
    page = await (await _page(client, "/support", **GERMAN)).text()
    # The admin's order, the disabled phone left out, labels in German; no team in
    # the address and two teams: the customer chooses, and the page knows who is online.
    assert _fields(page) == ["contract", "name", "email", "product", "description",
                             "severity", "team"]
    assert 'for="f-contract">Vertragsnummer<' in page
    assert 'for="f-product">Product <span class="optional">(freiwillig)' in page  # no German
    assert re.search(r'<select id="f-team" name="team"[^>]* required>', page)
    online = html.unescape(re.search(r"data-online='([^']*)'", page).group(1))
    assert online in ('{"1": true, "2": false}', '{"2": false, "1": true}')
    # The honeypot is out of sight and out of the accessibility tree.
    assert re.search(r'<div class="hp" aria-hidden="true"><label>Website <input '
                     r'name="website" tabindex="-1" autocomplete="off"></label></div>', page)
    one_team = await (await _page(client, "/support/tier-1")).text()
    assert "f-team" not in one_team and 'data-team="1"' in one_team
    missing = await _page(client, "/support/no-such-team", 404)
    assert "Page not found" in await missing.text()


async def test_a_goto_line_is_recognised_as_open_is(client: TestClient, tech: Tech) -> None:
    assert goto_url("goto: example.com/pricing now") == "https://example.com/pricing"
    assert goto_url("GOTO: http://localhost:8080/x") == "http://localhost:8080/x"
    for line in ("goto: javascript:alert(1)", "goto: the settings page", "goto:",
                 "open: example.com", "please goto: example.com"):
        assert goto_url(line) is None, line
    assert open_url("goto: example.com") is None
    session = await start_session(client, tech)
    user = await open_socket(client, session["session_id"],
                             (await join(client, session["key"]))["participant_token"])
    for text in ("goto: example.com/pricing", "goto: javascript:alert(1)"):
        said = await client.post(f"/api/v1/sessions/{session['session_id']}/messages",
                                 json={"text": text}, headers=tech.auth)
        assert said.status == 201, await said.text()
    pushed = await user.next_event("message")
    assert pushed["goto_url"] == "https://example.com/pricing" and "open_url" not in pushed
    assert "goto_url" not in await user.next_event("message")
    # The end user's own goto: line is only text.
    await user.say("goto: example.com", "c1")
    assert "goto_url" not in await user.next_event("message")
    await user.close()
