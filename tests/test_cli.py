"""The supportbroker command, run as a real process."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from broker.cli import main
from broker.core import Broker
from broker.errors import BrokerError, InvalidInput
from broker.settings import Settings

CLI = [sys.executable, "-m", "broker"]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env.update({"BROKER_DATA_DIR": str(data_dir), **extra})
    return env


async def _run(*args: str, env: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_technician_add_and_token(tmp_path: Path) -> None:
    env = _env(tmp_path)
    code, out, err = await _run("technician", "add", "--email", "Ana@Example.com",
                                "--name", "Ana Lopez", env=env, stdin="s3cret-password\n")
    assert code == 0, err
    assert "Added technician Ana Lopez <ana@example.com>" in out
    code, out, err = await _run("technician", "add", "--email", "ana@example.com",
                                "--name", "Again", env=env, stdin="s3cret-password\n")
    assert code == 1 and "exists" in err and "Traceback" not in err
    code, out, err = await _run("technician", "add", "--email", "b@example.com",
                                "--name", "B", env=env, stdin="short\n")
    assert code == 1 and "at least 8" in err
    code, out, err = await _run("token", "create", "--email", "ana@example.com", env=env)
    assert code == 0 and re.fullmatch(r"sbt_[A-Za-z0-9_-]{40,}\n", out)
    assert "every scope" in err  # as before scopes existed
    code, _, err = await _run("token", "create", "--email", "nobody@example.com", env=env)
    assert code == 1 and "No technician" in err and "Traceback" not in err


def test_scoped_tokens_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """In this process (main() as the console script calls it): a process each is slow."""
    for name in [k for k in os.environ if k.startswith("BROKER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BROKER_DATA_DIR", str(tmp_path))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    asyncio.run(_add_technician(tmp_path))
    code, out, err = run("token", "create", "--email", "ana@example.com", "--scope",
                         "sessions:read,deliveries", "--expires", "2099-01-31", "--name", "Desk")
    assert code == 0 and re.fullmatch(r"sbt_[A-Za-z0-9_-]{40,}\n", out) and not err, err
    code, out, err = run("token", "list", "--email", "ana@example.com")
    assert out.split("\t") == ["1", "ana@example.com", "Desk", "sessions:read,deliveries",
                                "expires 2099-01-31T00:00:00+00:00", "used never\n"]
    code, out, err = run("token", "revoke", "1")
    assert code == 0 and "Revoked token 1 (Desk)" in out, err
    code, out, err = run("token", "list")
    assert code == 0 and out == "", err
    code, _, err = run("token", "revoke", "1")
    assert code == 1 and "No such API token" in err
    for bad, says in ((["--scope", "everything"], "not a scope"),
                      (["--scope", "admin", "--expires", "soon"], "no expiry"),
                      (["--scope", "admin", "--expires", "2001-01-01"], "future")):
        code, _, err = run("token", "create", "--email", "ana@example.com", *bad)
        assert code == 1 and says in err, err


def test_reset_password_is_the_emergency_way_in(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A one-time password from the command line: it logs in (once it must be replaced),
    the old password no longer does."""
    for name in [k for k in os.environ if k.startswith("BROKER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BROKER_DATA_DIR", str(tmp_path))
    asyncio.run(_add_technician(tmp_path))
    assert main(["technician", "reset-password", "--email", "ana@example.com"]) == 0
    printed = capsys.readouterr().out
    password = re.search(r"ana@example.com: (\S+)", printed)
    assert password, printed

    async def log_in(secret: str) -> bool:
        core = await Broker.open(Settings(data_dir=tmp_path))
        try:
            technician = await core.technicians.login("ana@example.com", secret)
            return technician.must_change_password
        except BrokerError:
            return False
        finally:
            await core.close()

    assert asyncio.run(log_in(password.group(1))) is True
    assert asyncio.run(log_in("s3cret-password")) is False


async def _add_technician(data_dir: Path) -> None:
    core = await Broker.open(Settings(data_dir=data_dir))
    try:
        await core.technicians.add("ana@example.com", "Ana", "s3cret-password")
    finally:
        await core.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_creates_admin_and_serves(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "broker.toml"
    config.write_text(f'port = {port}\nproduct_name = "Acme Help"\n', encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(config), env=_env(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not any("password:" in line for line in lines):
                line = (await process.stdout.readline()).decode()
                assert line, "".join(lines)
                lines.append(line)
        password = next(line for line in lines if "password:" in line).split()[-1]
        assert "admin@localhost" in "".join(lines)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/login") as response:
                            assert response.status == 200
                            page = await response.text()
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
            assert "Acme Help" in page
            csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
            assert csrf
            login = f"http://127.0.0.1:{port}/login"
            async with http.post(login, allow_redirects=False, data={
                    "email": "admin@localhost", "password": password,
                    "_csrf": csrf.group(1)}) as response:
                assert response.status == 303
                # The printed password is a one-time password: choose your own first.
                assert response.headers["Location"] == "/password"
            async with http.get(f"http://127.0.0.1:{port}/dashboard",
                                allow_redirects=False) as response:
                assert response.status == 303
                assert response.headers["Location"] == "/password"
            async with http.get(f"http://127.0.0.1:{port}/password") as response:
                csrf = re.search(r'name="_csrf" value="([^"]+)"', await response.text())
                assert csrf
            async with http.post(f"http://127.0.0.1:{port}/password", allow_redirects=False,
                                 data={"current": password, "new": "my own password",
                                       "repeat": "my own password",
                                       "_csrf": csrf.group(1)}) as response:
                assert response.status == 303
                assert response.headers["Location"] == "/dashboard"
            async with http.get(f"http://127.0.0.1:{port}/dashboard",
                                allow_redirects=False) as response:
                assert response.status == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert (tmp_path / "data" / "broker.db").exists()
    assert (tmp_path / "data" / "server-secret").stat().st_mode & 0o077 == 0


def test_settings_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('port = 9000\nhost = "127.0.0.2"\nkey_lifetime_seconds = 1800\n')
    settings = Settings.load(config, {"BROKER_PORT": "9100", "BROKER_DATA_DIR": "/srv/sb",
                                      "BROKER_TRUST_FORWARDED_FOR": "yes"})
    assert settings.port == 9100 and settings.host == "127.0.0.2"
    assert settings.data_dir == Path("/srv/sb") and settings.trust_forwarded_for
    assert settings.key_lifetime_seconds == 1800
    assert settings.base_url == "http://127.0.0.2:9100"


@pytest.mark.parametrize("text, env", [
    ("port = 99999\n", {}),
    ("colour = 'blue'\n", {}),
    ("port = \n", {}),
    ("", {"BROKER_PORT": "eighty"}),
    ("", {"BROKER_TRUST_FORWARDED_FOR": "maybe"}),
    ("port = 8080.9\n", {}),
    ("chat_burst = true\n", {}),
    ("chat_rate_per_second = 0\n", {}),
    ("key_lifetime_seconds = 999999\n", {}),
])
def test_bad_settings_are_clear_errors(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(text)
    with pytest.raises(InvalidInput):
        Settings.load(config, env)


async def test_bad_config_exits_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text("port = 'x'\n")
    code, _, err = await _run("serve", "--config", str(config), env=_env(tmp_path))
    assert code == 1
    assert "setting port" in err and "Traceback" not in err


async def test_teams_from_the_command_line(tmp_path: Path) -> None:
    env = _env(tmp_path)
    await _run("technician", "add", "--email", "t@example.com", "--name", "Tia", env=env,
               stdin="long enough pw\n")
    code, out, err = await _run("team", "add", "Tier 2", env=env)
    assert code == 0 and "Added team Tier 2" in out, err
    code, _, err = await _run("team", "add", "tier 2", env=env)
    assert code == 1 and "exists" in err
    code, out, _ = await _run("team", "member", "--team", "tier 2", "--email", "t@example.com",
                              env=env)
    assert code == 0 and out.strip() == "Tia is in Tier 2."
    code, _, err = await _run("team", "member", "--team", "Nope", "--email", "t@example.com",
                              env=env)
    assert code == 1 and "No team" in err
