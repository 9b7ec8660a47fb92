"""The ``supportbroker`` command: serve, and manage technicians and their API tokens."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .clock import SystemClock
from .db import create_engine, migrate
from .errors import BrokerError
from .handoff import TeamStore
from .hashing import Hasher, load_or_create_secret
from .settings import Settings
from .technicians import TechnicianStore

# The collector's thresholds while serving (generation 0 allocations, then how many
# collections of the younger generation before an older one is collected).
GC_THRESHOLDS = (20_000, 50, 100)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(Path(args.config) if args.config else None)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from web import create_app
    from web.state import get_broker

    settings = _settings(args)
    app = create_app(settings)

    async def announce_admin(app: web.Application) -> None:
        created = await get_broker(app).ensure_admin()
        if created is not None:
            admin, password = created
            print(f"\nCreated the first technician (an admin).\n"
                  f"  Log in at {settings.base_url}/login\n"
                  f"  email:    {admin.email}\n  password: {password}\n"
                  f"This password is shown only now. Add your own technicians with\n"
                  f"  supportbroker technician add --email you@example.com --name 'Your Name'\n",
                  flush=True)

    async def freeze_startup_objects(app: web.Application) -> None:
        # Everything built at start-up (modules, templates, the app) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise pause
        # every socket for tens of milliseconds now and then. And collect less often: a
        # thousand busy sessions met the default thresholds (700, 10, 10) with a full
        # pass of 60-130 ms every few seconds (bench/core.py, docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    app.on_startup.append(announce_admin)
    app.on_startup.append(freeze_startup_objects)
    print(f"Support broker on {settings.base_url} (data in {settings.data_dir.resolve()})",
          flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None)
    return 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Accounts:
    """What the management commands need: the stores, on the migrated database. Not a
    whole Broker: no bus, journal writer or file-store clean-up beside a running server."""

    technicians: TechnicianStore
    teams: TeamStore


async def _with_accounts(settings: Settings,
                         work: Callable[[_Accounts], Awaitable[Any]]) -> Any:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        await migrate(engine)
        clock = SystemClock()
        hasher = Hasher(load_or_create_secret(settings.data_dir))
        return await work(_Accounts(TechnicianStore(engine, hasher, clock),
                                    TeamStore(engine, clock)))
    finally:
        await engine.dispose()


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise BrokerError("The passwords differ.")
    return first


def _technician_add(args: argparse.Namespace) -> int:
    password = _read_password()
    technician = asyncio.run(_with_accounts(_settings(args), lambda b: b.technicians.add(
        args.email, args.name, password, is_admin=args.admin)))
    role = "admin" if technician.is_admin else "technician"
    print(f"Added {role} {technician.display_name} <{technician.email}>.")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    async def create(broker: _Accounts) -> str:
        technician = await broker.technicians.by_email(args.email)
        return await broker.technicians.create_token(technician.id)

    print(asyncio.run(_with_accounts(_settings(args), create)))
    return 0


def _team_add(args: argparse.Namespace) -> int:
    team = asyncio.run(_with_accounts(_settings(args), lambda b: b.teams.create(args.name)))
    print(f"Added team {team.name} (id {team.id}).")
    return 0


def _team_member(args: argparse.Namespace) -> int:
    async def change(broker: _Accounts) -> str:
        team = await broker.teams.by_name(args.team)
        technician = await broker.technicians.by_email(args.email)
        if args.remove:
            await broker.teams.remove_member(team.id, technician.id)
            return f"{technician.display_name} left {team.name}."
        await broker.teams.add_member(team.id, technician.id)
        return f"{technician.display_name} is in {team.name}."

    print(asyncio.run(_with_accounts(_settings(args), change)))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="supportbroker", description=__doc__)
    root.add_argument("--config", help="a TOML settings file (BROKER_* variables override it)")
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the broker")
    serve.add_argument("--config", help="a TOML settings file", default=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    technician = commands.add_parser("technician", help="manage technicians")
    tech_commands = technician.add_subparsers(dest="action", required=True)
    add = tech_commands.add_parser(
        "add", help="add a technician (password from stdin when piped, else prompted)")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--admin", action="store_true")
    add.add_argument("--config", default=argparse.SUPPRESS)
    add.set_defaults(run=_technician_add)

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="action", required=True)
    create = token_commands.add_parser("create", help="print a new API token for a technician")
    create.add_argument("--email", required=True)
    create.add_argument("--config", default=argparse.SUPPRESS)
    create.set_defaults(run=_token_create)
    team = commands.add_parser("team", help="manage teams (each has a queue)")
    team_commands = team.add_subparsers(dest="action", required=True)
    team_add = team_commands.add_parser("add", help="add a team")
    team_add.add_argument("name")
    team_add.add_argument("--config", default=argparse.SUPPRESS)
    team_add.set_defaults(run=_team_add)
    member = team_commands.add_parser("member", help="put a technician into a team (or out)")
    member.add_argument("--team", required=True)
    member.add_argument("--email", required=True)
    member.add_argument("--remove", action="store_true")
    member.add_argument("--config", default=argparse.SUPPRESS)
    member.set_defaults(run=_team_member)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except BrokerError as error:
        print(f"supportbroker: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
