"""docs/security.md states what the code does with the default settings."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app

SECURITY = Path(__file__).parent.parent / "docs" / "security.md"


async def test_concurrent_guess_figure_is_the_defaults(aiohttp_client: Any, tmp_path: Path,
                                                       clock: FakeClock,
                                                       database_url: str) -> None:
    client = await aiohttp_client(create_app(
        Settings(data_dir=tmp_path / "data", database_url=database_url), clock=clock))
    responses = await asyncio.gather(*(
        client.post("/api/v1/join", json={"key": "111111111"}) for _ in range(40)))
    answered = sum(r.status == 404 for r in responses)
    assert answered + sum(r.status == 429 for r in responses) == 40
    text = " ".join(SECURITY.read_text(encoding="utf-8").split())
    stated = re.search(r"of 40 concurrent guesses from one address, (\d+) are answered "
                       r"and (\d+) get 429", text)
    assert stated, "docs/security.md no longer states the concurrent-guess figure"
    assert (int(stated.group(1)), int(stated.group(2))) == (answered, 40 - answered)
