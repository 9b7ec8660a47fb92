"""A fault answers 500 `internal` with a reference that is in the log line; the exception's
own text stays in the log."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.core import Broker
from broker.transcripts import TEMPLATES as TRANSCRIPT_TEMPLATES

from .conftest import Tech, join, start_session

WEB = Path(__file__).parent.parent / "web"


def _logged(caplog: pytest.LogCaptureFixture, reference: str) -> logging.LogRecord:
    found = [r for r in caplog.records
             if r.levelno >= logging.ERROR and reference in r.getMessage()]
    assert len(found) == 1, [r.getMessage() for r in caplog.records]
    assert found[0].exc_info is not None  # the traceback is in the log
    return found[0]


async def test_a_template_missing_from_the_install_is_internal(
        client: TestClient, tech: Tech, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """What an install without transcript.txt did: aiohttp_jinja2 raises a 500
    HTTPException whose reason named the template, and that became the error code."""
    templates = tmp_path / "templates"
    shutil.copytree(WEB / "templates", templates)
    shutil.copytree(TRANSCRIPT_TEMPLATES, templates, dirs_exist_ok=True)  # web/app.py loads both
    (templates / "transcript.txt").unlink()
    aiohttp_jinja2.get_env(client.app).loader = jinja2.FileSystemLoader(templates)
    session_id = (await start_session(client, tech))["session_id"]
    response = await client.get(f"/api/v1/sessions/{session_id}/transcript?format=text",
                                headers=tech.auth)
    assert response.status == 500
    text = await response.text()
    body = await response.json()
    assert body["error"] == "internal" and re.fullmatch(r"[0-9a-f]{12}", body["reference"])
    assert body["reference"] in body["message"]
    assert "transcript" not in text.lower() and "template" not in text.lower()
    assert "transcript.txt" in str(_logged(caplog, body["reference"]).exc_info[1])
    html = await client.get(f"/api/v1/sessions/{session_id}/transcript?format=html",
                            headers=tech.auth)
    assert html.status == 200  # the other template is still there


async def test_a_database_fault_is_internal_on_pages_and_api(
        client: TestClient, broker: Broker, tech: Tech,
        caplog: pytest.LogCaptureFixture) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    async with broker.engine.begin() as conn:  # the database loses a table under the broker
        await conn.execute(sa.text("ALTER TABLE participants RENAME TO participants_gone"))
    response = await client.get(f"/api/v1/sessions/{joined['session_id']}", headers={
        "Authorization": f"Bearer {joined['participant_token']}"})
    assert response.status == 500
    body: dict[str, Any] = await response.json()
    assert body["error"] == "internal"
    assert "participants" not in await response.text()
    _logged(caplog, body["reference"])

    client.session.cookie_jar.update_cookies(
        {f"sb_participant_{joined['session_id']}": joined["participant_token"]})
    page = await client.get(f"/s/{joined['session_id']}")
    assert page.status == 500
    html = await page.text()
    found = re.search(r"<code data-reference>([0-9a-f]{12})</code>", html)
    assert found, html
    assert "participants" not in html and "Traceback" not in html
    _logged(caplog, found.group(1))
