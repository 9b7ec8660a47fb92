"""File transfer in real headless Chromium: drag and drop on both pages and the "Send a
file" button, progress with speed on both sides, cancelling, and downloads through the
file cards that are byte for byte what was sent."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .browser_support import (
    LiveBroker,
    People,
    add_technician,
    expect,
    live_broker,
    log_in,
    require_chromium,
    screenshot,
    start_session,
)
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser

# Slow enough that people (and the test) see the progress: 6 MB take about 2 seconds.
RATE = 3_000_000


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    require_chromium()
    async with live_broker(tmp_path / "data", transfer_rate_bytes_per_second=RATE,
                           transfer_min_free_bytes=0) as broker:
        yield broker


async def drop_file(page: Any, target: Any, path: Path) -> None:
    """Drag a file from the desktop onto `target`: the page gets real dragenter, dragover
    and drop events whose DataTransfer holds the file (read from `path` by the browser)."""
    picker = await page.evaluate_handle(
        "() => { const i = document.createElement('input'); i.type = 'file';"
        " i.style.display = 'none'; document.body.append(i); return i; }")
    await picker.as_element().set_input_files(str(path))
    transfer = await page.evaluate_handle(
        "(input) => { const dt = new DataTransfer(); dt.items.add(input.files[0]);"
        " input.remove(); return dt; }", picker)
    for kind in ("dragenter", "dragover"):
        await target.dispatch_event(kind, {"dataTransfer": transfer})
    await expect(page.locator(".drop-overlay")).to_be_visible()
    await target.dispatch_event("drop", {"dataTransfer": transfer})
    await expect(page.locator(".drop-overlay")).to_be_hidden()


async def download(page: Any, card: Any, into: Path) -> bytes:
    async with page.expect_download() as info:
        await card.get_by_role("link", name="Download").click()
    got = await info.value
    target = into / got.suggested_filename
    await got.save_as(str(target))
    return target.read_bytes()


async def test_files_both_ways_with_progress_and_identical_bytes(
        live: LiveBroker, people: People, tmp_path: Path) -> None:
    await add_technician(live, "Alice Example")
    dash = await people.page()
    await log_in(dash, live, "alice@example.com")
    _, pane = await start_session(dash)
    user = await people.page()
    await user.goto(await pane.locator('[data-role="join-url"]').input_value())
    await expect(user.locator("#status")).to_have_text("Connected")

    # The end user drags a file onto the chat.
    report = tmp_path / "Störungsbericht.pdf"
    report.write_bytes(b"%PDF-1.7\n" + os.urandom(6_000_000))
    await drop_file(user, user.locator("#chat"), report)
    outgoing = user.locator(".transfer.outgoing")
    await expect(outgoing).to_be_visible()
    await expect(outgoing.locator("progress")).to_be_visible()
    await expect(outgoing).to_contain_text("Sending Störungsbericht.pdf")
    await expect(outgoing.locator(".transfer-note")).to_have_text(
        re.compile(r"\d.* of 6\.0 MB · .*/s"))
    # The technician watches it come in.
    incoming = pane.locator(".transfer")
    await expect(incoming).to_contain_text("Guest is sending Störungsbericht.pdf")
    await expect(incoming.locator("progress")).to_be_visible()
    await screenshot(user, "files-01-enduser-sending")
    await screenshot(dash, "files-02-technician-receiving")

    card = pane.locator(".file-card")
    await expect(card).to_be_visible(timeout=20_000)
    await expect(incoming).to_have_count(0)
    await expect(outgoing).to_have_count(0)
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    await expect(card).to_contain_text("Guest sent a file")
    await expect(card.locator(".file-name")).to_have_text("Störungsbericht.pdf")
    await expect(card.locator(".file-meta")).to_have_text("6.0 MB · application/pdf")
    await expect(card.locator(".file-hash")).to_have_text("SHA-256 " + digest)
    await expect(user.locator(".file-card")).to_contain_text("You sent a file")
    await screenshot(dash, "files-03-technician-file-card")
    (tmp_path / "tech").mkdir()
    assert await download(dash, card, tmp_path / "tech") == report.read_bytes()

    # The other way: the technician drops a file on the session; the end user downloads.
    notes = tmp_path / "fix-steps.txt"
    notes.write_bytes(b"1. Unplug the printer.\n" * 300_000)  # 6.9 MB
    await drop_file(dash, pane.locator('[data-role="messages"]'), notes)
    await expect(pane.locator(".transfer.outgoing progress")).to_be_visible()
    await expect(user.locator(".transfer")).to_contain_text(
        "Alice Example is sending fix-steps.txt")
    await screenshot(user, "files-04-enduser-receiving")
    user_card = user.locator(".file-card", has_text="fix-steps.txt")
    await expect(user_card).to_be_visible(timeout=20_000)
    await expect(user_card).to_contain_text("Alice Example sent a file")
    await expect(user_card.locator(".file-hash")).to_have_text(
        "SHA-256 " + hashlib.sha256(notes.read_bytes()).hexdigest())
    await screenshot(user, "files-05-enduser-file-card")
    (tmp_path / "user").mkdir()
    assert await download(user, user_card, tmp_path / "user") == notes.read_bytes()
    people.assert_clean()


async def test_sender_cancels_and_refusals_are_explained(live: LiveBroker, people: People,
                                                         tmp_path: Path) -> None:
    await add_technician(live, "Alice Example")
    dash = await people.page()
    await log_in(dash, live, "alice@example.com")
    _, pane = await start_session(dash)
    user = await people.page()
    await user.goto(await pane.locator('[data-role="join-url"]').input_value())
    await expect(user.locator("#status")).to_have_text("Connected")

    big = tmp_path / "backup.zip"
    big.write_bytes(b"PK\x03\x04" + os.urandom(20_000_000))  # about 7 s at the test's rate
    async with user.expect_file_chooser() as chooser:  # the button this time
        await user.get_by_role("button", name="Send a file").click()
    await (await chooser.value).set_files(str(big))
    outgoing = user.locator(".transfer.outgoing")
    await expect(pane.locator(".transfer")).to_contain_text("backup.zip")
    await outgoing.get_by_role("button", name="Cancel").click()
    await expect(outgoing).to_have_count(0)
    await expect(pane.locator(".messages .sys", has_text="Sending backup.zip was cancelled")
                 ).to_be_visible()
    await expect(pane.locator(".transfer")).to_have_count(0)
    await expect(user.locator(".file-card")).to_have_count(0)
    people.assert_clean()
