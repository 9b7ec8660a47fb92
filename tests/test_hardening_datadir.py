"""The data directory is private whatever the umask: 0700, every file in it 0600; a
directory others may read stops the broker, unless the operator says it may."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.clock import FakeClock
from broker.core import Broker
from broker.errors import InvalidInput
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD
from .hardening_support import journey, running


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    """Every entry under `root` (and `root` itself as "."), with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _assert_private(root: Path) -> None:
    for name, mode in _modes(root).items():
        expected = 0o700 if (root / name).is_dir() else 0o600
        assert mode == expected, f"{name} is {mode:04o}, not {expected:04o}"


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask-022", "umask-000"])
async def test_everything_in_data_dir_is_private(tmp_path: Path, clock: FakeClock,
                                                 mask: int) -> None:
    data = tmp_path / "data"
    with umask(mask):
        app = create_app(Settings(data_dir=data, transfer_min_free_bytes=0), clock=clock)
        async with running(app, tmp_path) as broker:
            core = get_broker(app)
            technician = await core.technicians.add("ana@example.com", "Ana", PASSWORD)
            await journey(broker, "ana@example.com",
                          await core.technicians.create_token(technician.id))
            names = set(_modes(data))
            assert {"broker.db", "broker.db-wal", "broker.db-shm", "server-secret",
                    "cookie-secret", "seal-key", "transfer-master-key", "files"} <= names
            assert any(name.startswith("files/") for name in names)  # the stored file
            _assert_private(data)
        _assert_private(data)


async def test_an_open_data_dir_stops_the_broker(tmp_path: Path, clock: FakeClock) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # noqa: S103 - what an older version made under umask 022
    with pytest.raises(InvalidInput, match="open to other users.*chmod 700"):
        await Broker.open(Settings(data_dir=data), clock)
    assert not (data / "broker.db").exists()  # refused before anything was written
    broker = await Broker.open(Settings(data_dir=data, data_dir_shared_ok=True), clock)
    await broker.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o755  # the operator's choice, left alone
    assert stat.S_IMODE((data / "server-secret").stat().st_mode) == 0o600


async def test_an_older_loose_data_dir_is_tightened(tmp_path: Path, clock: FakeClock) -> None:
    """What an older version left (files 0644, directories 0755) in a directory the
    operator has made private: made 0600/0700 at the next start."""
    data = tmp_path / "data"
    await (await Broker.open(Settings(data_dir=data), clock)).close()
    (data / "files").mkdir(exist_ok=True)
    (data / "files" / "old-blob").write_bytes(b"x")
    for path in (data / "broker.db", data / "server-secret", data / "files" / "old-blob"):
        os.chmod(path, 0o644)
    os.chmod(data / "files", 0o755)  # noqa: S103 - likewise
    await (await Broker.open(Settings(data_dir=data), clock)).close()
    _assert_private(data)


async def test_serve_says_why_it_refuses_an_open_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o750)  # noqa: S103 - open to the group
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env.update({"BROKER_DATA_DIR": str(data), "BROKER_PORT": "1"})
    for command in (["serve"], ["token", "create", "--email", "a@example.com"]):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "broker", *command, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 1, (command, out, err)
        assert "open to other users (mode 0750)" in err.decode(), err
        assert "Traceback" not in err.decode() + out.decode()
