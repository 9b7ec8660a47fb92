"""Helpers for the portal's browser tests (tests/test_portal_browser*.py): a broker that
tells places in the queue at once, teams with members online, customers who send the
form over HTTP, technicians who take requests and write through the API, and small
websites on other loopback addresses that show the chat button."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from broker.technicians import Technician

from .browser_support import PASSWORD, LiveBroker, live_broker, require_chromium

DESKTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}
FORM = {"name": "Early Customer", "email": "early@example.com",
        "description": "Something is broken."}


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    """A broker whose customers hear of their places at once, availability answered
    fresh; the tests' forms all come from one address."""
    require_chromium()
    async with portal_broker(tmp_path) as broker:
        yield broker


def portal_broker(tmp_path: Path, **overrides: Any) -> Any:
    return live_broker(tmp_path / "data", intake_queue_update_seconds=0.02,
                       intake_address_burst=1000, intake_global_per_minute=1000,
                       availability_cache_seconds=0, **overrides)


async def technician(live: LiveBroker, name: str, *, admin: bool = False) -> Technician:
    email = name.split()[0].lower() + "@example.com"
    return await live.broker.technicians.add(email, name, PASSWORD, is_admin=admin)


async def team(live: LiveBroker, name: str, *members: Technician, online: bool = True) -> int:
    """A team with these members, online (their dashboards open, as the roster counts it)."""
    made = await live.broker.teams.create(name)
    for member in members:
        await live.broker.teams.add_member(made.id, member.id)
        if online:
            await live.broker.roster.dashboard_opened(member.id)
    return made.id


async def api(live: LiveBroker, method: str, path: str, status: int, *,
              who: Technician | None = None, **body: Any) -> Any:
    headers = {}
    if who is not None:
        headers["Authorization"] = "Bearer " + await live.broker.technicians.create_token(who.id)
    async with aiohttp.ClientSession() as http, http.request(
            method, live.url(path), json=body or None, headers=headers) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def customer(live: LiveBroker, team_ref: str, name: str) -> str:
    """Another customer's form, sent as a script would; their session's id."""
    made = await api(live, "POST", "/api/v1/requests", 201,
                     **{**FORM, "team": team_ref, "name": name})
    return str(made["session_id"])


async def take(live: LiveBroker, who: Technician, session_id: str) -> None:
    """`who` takes the waiting request of `session_id` from their team's queue."""
    queues = await api(live, "GET", "/api/v1/queues", 200, who=who)
    (item,) = [item for queue in queues["queues"] for item in queue["waiting"]
               if item["session_id"] == session_id]
    await api(live, "POST", f"/api/v1/handoffs/{item['handoff_id']}/accept", 200, who=who)


async def write(live: LiveBroker, who: Technician, session_id: str, text: str) -> None:
    await api(live, "POST", f"/api/v1/sessions/{session_id}/messages", 201, who=who,
              text=text)


async def said_by_customer(live: LiveBroker, who: Technician, session_id: str) -> list[str]:
    events = await api(live, "GET", f"/api/v1/sessions/{session_id}/events", 200, who=who)
    return [event["text"] for event in events["events"]
            if event["type"] == "message" and event["author"]["role"] == "end_user"]


def page_of_a_site(broker_url: str, title: str, snippet: str, lang: str) -> str:
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title></head><body><h1>{title}</h1>"
            "<p>Our products, our prices, our opening hours.</p>"
            f"{snippet.replace('BROKER', broker_url)}</body></html>")


class Website:
    """A small website on another loopback address (another site to the browser), whose
    pages (/<lang>/<name>) carry the chat button's snippet; `broker_url` is filled in
    once the broker runs (its widget_origins must name the site first)."""

    def __init__(self, address: str, snippet: str) -> None:
        self.snippet = snippet
        self.broker_url = ""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((address, 0))
        self.origin = f"http://{address}:{self._sock.getsockname()[1]}"
        app = web.Application()
        app.router.add_get("/{lang}/{page}", self._page)
        self._runner = web.AppRunner(app, handle_signals=False)

    def url(self, lang: str, page: str) -> str:
        return f"{self.origin}/{lang}/{page}"

    async def _page(self, request: web.Request) -> web.Response:
        name, lang = request.match_info["page"], request.match_info["lang"]
        return web.Response(text=page_of_a_site(self.broker_url, f"Shop {name}", self.snippet,
                                                lang), content_type="text/html")

    async def start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        await self._runner.cleanup()
        self._sock.close()


# Every visible element whose box sticks out of the window (the frames' documents are
# measured by their own evaluate).
WIDE = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll("body *")].filter((el) => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && getComputedStyle(el).visibility !== "hidden"
      && (box.right > width + 0.5 || box.left < -0.5 || box.width > width + 0.5);
  }).map((el) => el.tagName + "." + el.className);
}"""
