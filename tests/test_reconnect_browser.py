"""In Chromium: the end user's network drops while the technician keeps typing, and
comes back; the end user sees every message exactly once, and what they typed offline
arrives once too."""

from __future__ import annotations

import pytest

from .browser_support import (
    LiveBroker,
    People,
    add_technician,
    expect,
    log_in,
    message,
    say,
    screenshot,
    start_session,
)
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser




async def test_offline_and_back_loses_and_repeats_nothing(live: LiveBroker,
                                                          people: People) -> None:
    await add_technician(live, "Alice Example")
    dash = await people.page()
    await log_in(dash, live, "alice@example.com")
    session_id, pane = await start_session(dash)
    link = await pane.locator('[data-role="join-url"]').input_value()

    user = await people.page()
    await user.goto(link)
    status = user.locator("#status")
    await expect(status).to_have_text("Connected")
    tech_box = pane.locator("textarea")
    await say(tech_box, "Hello, I am here.")
    user_messages = user.locator("#messages")
    await expect(message(user_messages, "Hello, I am here.")).to_have_count(1)

    await user.context.set_offline(True)
    await expect(status).to_contain_text("offline")
    state = pane.locator('[data-role="state"]')
    await expect(state).to_contain_text("Waiting for Guest to reconnect")
    tech_messages = pane.locator('[data-role="messages"]')
    await expect(tech_messages).to_contain_text("Guest lost the connection")
    for n in range(5):
        await say(tech_box, f"While you were away {n}")
    await say(user.locator("#text"), "Typed while offline")
    await expect(user_messages.locator(".pending")).to_have_count(1)
    await screenshot(user, "17-enduser-offline")
    await screenshot(dash, "18-dashboard-reconnecting")

    await user.context.set_offline(False)
    await expect(status).to_have_text("Connected")
    for n in range(5):
        await expect(message(user_messages, f"While you were away {n}")).to_have_count(1)
    await expect(message(user_messages, "Hello, I am here.")).to_have_count(1)
    await expect(user_messages.locator(".pending")).to_have_count(0)
    await expect(message(user_messages, "Typed while offline")).to_have_count(1)
    await expect(message(tech_messages, "Typed while offline")).to_have_count(1)
    await expect(tech_messages).to_contain_text("Guest is back")
    await expect(state).to_contain_text("Connected with Guest")

    stored = await live.broker.sessions.events_after(session_id)
    texts = [e.data["text"] for e in stored if e.type == "message"]
    assert texts.count("Typed while offline") == 1
    shown = await user_messages.locator(".msg .text").all_inner_texts()
    assert shown == texts  # the end user's view is the transcript: nothing lost or doubled
    people.assert_clean()
