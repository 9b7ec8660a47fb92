"""One broker for a whole test module: the route matrix and the fuzzers make thousands of
calls, and a broker per test would spend their time budget on start-ups. On SQLite, or in
the PostgreSQL pass on a schema of its own (tests/conftest.py, database_for_tests)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD, Tech, database_for_tests


@contextlib.asynccontextmanager
async def module_broker(directory: Path, **overrides: Any) -> AsyncIterator[TestClient]:
    """A broker on a loopback port, with a fake clock, until the block ends."""
    async with database_for_tests() as url:
        settings = Settings(data_dir=directory / "data", database_url=url, **overrides)
        client = TestClient(TestServer(create_app(settings, clock=FakeClock())))
        await client.start_server()
        try:
            yield client
        finally:
            await client.close()


async def add_tech(client: TestClient, name: str, *, admin: bool = False) -> Tech:
    broker = get_broker(client.app)
    technician = await broker.technicians.add(f"{name.lower()}@example.com", name, PASSWORD,
                                              is_admin=admin)
    return Tech(technician, await broker.technicians.create_token(technician.id))


class ErrorLog(logging.Handler):
    """Every log record at ERROR or above, from anywhere in the process."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @contextlib.contextmanager
    def installed(self) -> Iterator[ErrorLog]:
        root = logging.getLogger()
        root.addHandler(self)
        try:
            yield self
        finally:
            root.removeHandler(self)

    def take(self) -> list[str]:
        """The messages logged since the last take (with their exceptions' types)."""
        found = [f"{r.name}: {r.getMessage()}"
                 + (f" ({r.exc_info[0].__name__})" if r.exc_info and r.exc_info[0] else "")
                 for r in self.records]
        self.records.clear()
        return found


def router_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the broker's router, as the router spells them."""
    with tempfile.TemporaryDirectory() as directory:
        app = create_app(Settings(data_dir=Path(directory)))
        return [(route.method, route.resource.canonical) for route in app.router.routes()
                if route.resource is not None]


@dataclasses.dataclass
class Live:
    """A module's broker and the ERROR lines it logged."""

    client: TestClient
    errors: ErrorLog
