"""Shared by the translation tests: the Accept-Language headers and what a page says."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from aiohttp.test_utils import TestClient

from .conftest import csrf_from

EN_JOIN_HEADING = "Join a support session"
DE_JOIN_HEADING = "An einer Support-Sitzung teilnehmen"
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}
ENGLISH = {"Accept-Language": "en"}


def h1_text(page: str) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert match, page
    return html.unescape(match.group(1)).strip()


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]*)"', page)
    assert match, page[:200]
    return match.group(1)


def chat_strings(page: str) -> dict[str, str]:
    """The translated system lines chat.html hands to its script as JSON."""
    match = re.search(r"data-strings='([^']*)'", page)
    assert match, "chat page has no data-strings"
    return dict(json.loads(html.unescape(match.group(1))))


def link_token(started: dict[str, Any]) -> str:
    return str(started["join_url"]).rsplit("/j/", 1)[1]


def assert_error_page(page: str, code: str) -> None:
    assert f'data-error-code="{code}"' in page, page
    assert "Traceback" not in page and 'File "' not in page
    assert html_lang(page) == "de"


async def form_join(client: TestClient, headers: dict[str, str], **fields: str) -> Any:
    form = await client.get("/join", headers=headers)
    assert form.status == 200
    return await client.post("/join", data={"_csrf": csrf_from(await form.text()), **fields},
                             headers=headers, allow_redirects=False)

