"""Helpers for the page tests (tests/test_pages_browser*.py) and the screenshot script
(tests/screenshots.py): a story of a whole session told through the broker's own
services and API, logging in in either language, and measuring a page's width."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from broker.clock import FakeClock
from broker.core import Broker
from broker.sessions import Actor
from broker.technicians import Technician

from .browser_support import PASSWORD, LiveBroker, expect

DESKTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}
NOTE = "Printer driver reinstalled, still prints blank pages. Please check the spooler."
NOTES = "Customer uses an HP LaserJet on the second floor.\nCall back after 3 pm."
LOGIN_BUTTON = {"en": "Log in", "de": "Anmelden"}


@dataclasses.dataclass
class Story:
    """A finished session with something of every kind in it."""

    session_id: str
    admin: Technician
    maria: Technician
    bob: Technician
    end_user: Actor
    participant_token: str


FileSender = Callable[[str, str, str, bytes], Awaitable[None]]


def tus_headers(token: str, name: str, size: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0",
            "Upload-Length": str(size),
            "Upload-Metadata": "filename " + base64.b64encode(name.encode()).decode()}


def http_sender(live: LiveBroker) -> FileSender:
    """Send a file to a live broker as a browser does (tus 1.0: create, then PATCH)."""
    async def send(session_id: str, token: str, name: str, data: bytes) -> None:
        headers = tus_headers(token, name, len(data))
        async with aiohttp.ClientSession() as http:
            async with http.post(live.url(f"/api/v1/sessions/{session_id}/files/"),
                                 headers=headers) as created:
                assert created.status == 201, await created.text()
                location = created.headers["Location"]
            async with http.patch(live.url(location), data=data, headers={
                    "Authorization": headers["Authorization"], "Tus-Resumable": "1.0.0",
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream"}) as patched:
                assert patched.status == 204, await patched.text()
    return send


async def tell_story(broker: Broker, send_file: FileSender, *,
                     people: tuple[Technician, Technician, Technician],
                     end_user_name: str = "Dana Scully", clock: FakeClock | None = None,
                     end: bool = True) -> Story:
    """Administrator starts a session; Dana joins, chats, shares her screen (paused and
    resumed), sends a file; a transfer to Maria is declined; the session goes to Bob with
    a note; notes are written; Bob ends it. With a fake `clock`, a minute passes between
    the steps."""
    def later() -> None:
        if clock is not None:
            clock.advance(60)

    admin, maria, bob = people
    sessions = broker.sessions
    session, key = await sessions.start(admin)
    later()
    joined = await sessions.redeem(code=key.code, name=end_user_name)
    dana = joined.actor
    admin_actor = sessions.technician_actor(admin)
    later()
    await sessions.post_message(session.id, dana, "Hello, my printer only prints blank pages.")
    await sessions.post_message(session.id, admin_actor,
                                "Hi Dana, let me have a look. Please read this first:")
    await sessions.post_message(session.id, admin_actor, "open: example.com/help")
    later()
    share = await broker.shares.request(session.id, admin_actor, "s-demo")
    await broker.shares.consent(session.id, dana, share.id, True)
    await broker.shares.start(session.id, dana, share.id)
    await broker.shares.pause(session.id, dana, share.id)
    await broker.shares.resume(session.id, dana, share.id)
    await broker.shares.stop(session.id, dana, share.id)
    later()
    await send_file(session.id, joined.participant_token, "printer-log.txt",
                    b"spooler: job 42 failed\n" * 40)
    later()
    declined = await broker.handoffs.transfer(session.id, admin, note="Can you take this?",
                                              to_technician_id=maria.id)
    await broker.handoffs.decline(declined.id, maria, "In a meeting until noon")
    later()
    handoff = await broker.handoffs.transfer(session.id, admin, note=NOTE,
                                             to_technician_id=bob.id)
    await broker.handoffs.accept(handoff.id, bob)
    await sessions.set_notes(session.id, bob, NOTES)
    later()
    await sessions.post_message(session.id, sessions.technician_actor(bob),
                                "Hello Dana, Bob here. I restarted the spooler; try again?")
    await sessions.post_message(session.id, dana, "It works now, thank you!")
    if end:
        later()
        await sessions.end(session.id, sessions.technician_actor(bob), "ended_by_technician")
    return Story(session.id, admin, maria, bob, dana, joined.participant_token)


async def add_people(broker: Broker) -> tuple[Technician, Technician, Technician]:
    technicians = broker.technicians
    admin = await technicians.add("admin@example.com", "Administrator", PASSWORD,
                                  is_admin=True)
    maria = await technicians.add("maria@example.com", "Maria Weber", PASSWORD)
    bob = await technicians.add("bob@example.com", "Bob Berger", PASSWORD)
    team = await broker.teams.create("Tier 2")
    await broker.teams.add_member(team.id, bob.id)
    return admin, maria, bob


async def log_in_as(page: Any, live: LiveBroker, email: str, lang: str = "en") -> None:
    """Log in through the login page in `lang` (the choice is remembered in a cookie)."""
    await page.goto(live.url(f"/login?lang={lang}"))
    await page.locator('input[name="email"]').fill(email)
    await page.locator('input[name="password"]').fill(PASSWORD)
    await page.get_by_role("button", name=LOGIN_BUTTON[lang], exact=True).click()
    await expect(page).to_have_url(live.url("/dashboard"))


# Every visible element's box, outside scrolling boxes (whose content may be wider):
# [tag, class, left, right] of those that stick out of the window, and [tag, class,
# "content", by how much] of those whose content is wider than they are.
_TOO_WIDE = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  const scrolls = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const walk = (el) => {
    for (const child of el.children) {
      const style = getComputedStyle(child);
      if (style.display === "none" || style.visibility === "hidden") continue;
      const box = child.getBoundingClientRect();
      if (box.width > 0 && (box.right > width + 0.5 || box.left < -0.5)) {
        out.push([child.tagName, String(child.className), Math.round(box.left),
                  Math.round(box.right)]);
      }
      // Content spilling out of its own box (a button's label cut off by its neighbour).
      if (style.overflowX === "visible" && child.clientWidth > 0
          && child.scrollWidth > child.clientWidth + 1) {
        out.push([child.tagName, String(child.className), "content",
                  child.scrollWidth - child.clientWidth]);
      }
      if (!scrolls(child)) walk(child);
    }
  };
  walk(document.body);
  return [width, document.documentElement.scrollWidth, out];
}"""


async def assert_fits(page: Any) -> None:
    """No element is wider than the window, and the page does not scroll sideways."""
    width, scroll_width, wide = await page.evaluate(_TOO_WIDE)
    assert not wide, f"wider than the {width}px window: {wide}"
    assert scroll_width <= width, f"the page scrolls sideways: {scroll_width} > {width}"
