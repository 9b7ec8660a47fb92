"""The ``supportbroker`` command: serve, manage technicians and their API tokens, and check
and export the audit log."""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import gc
import getpass
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .audit import ActorKind, AuditActor, AuditService
from .audit import context as audit_context
from .clock import SystemClock, isoformat
from .datadir import secure_data_dir
from .db import create_engine, migrate
from .errors import BrokerError
from .handoff import TeamStore
from .hashing import Hasher, load_or_create_secret
from .settings import Settings
from .technicians import ALL_SCOPES, ApiToken, TechnicianStore
from .technicians.tokens import parse_expiry, parse_scopes, scope_text

# The collector's thresholds while serving (generation 0 allocations, then how many
# collections of the younger generation before an older one is collected).
GC_THRESHOLDS = (20_000, 50, 100)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(Path(args.config) if args.config else None)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from web import create_app
    from web.accesslog import RedactingAccessLogger, RedactingFormatter
    from web.state import get_broker

    for handler in logging.getLogger().handlers:  # no credential in any line (security.md)
        handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    settings = _settings(args)
    app = create_app(settings)

    async def announce_admin(app: web.Application) -> None:
        created = await get_broker(app).ensure_admin()
        if created is not None:
            admin, password = created
            print(f"\nCreated the first technician (an admin).\n"
                  f"  Log in at {settings.base_url}/login\n"
                  f"  email:    {admin.email}\n  password: {password}\n"
                  f"This password is shown only now; at the first login you choose your\n"
                  f"own. Add your own technicians with\n"
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
    # The access log with credentials cut from the addresses (join links and the like).
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                access_log_class=RedactingAccessLogger)
    return 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Accounts:
    """What the management commands need: the stores, on the migrated database. Not a
    whole Broker: no bus, journal writer or file-store clean-up beside a running server."""

    technicians: TechnicianStore
    teams: TeamStore
    audit: AuditService


async def _with_accounts(settings: Settings,
                         work: Callable[[_Accounts], Awaitable[Any]]) -> Any:
    secure_data_dir(settings)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        await migrate(engine)
        clock = SystemClock()
        hasher = Hasher(load_or_create_secret(settings.data_dir))
        audit = AuditService(engine, clock)
        # What these commands do is done by whoever runs them on the server.
        audit_context.set_actor(AuditActor(ActorKind.SYSTEM, None, "command line"))
        return await work(_Accounts(TechnicianStore(engine, hasher, clock, audit),
                                    TeamStore(engine, clock, audit), audit))
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


def _technician_reset_password(args: argparse.Namespace) -> int:
    async def reset(broker: _Accounts) -> str:
        technician = await broker.technicians.by_email(args.email)
        return await broker.technicians.set_one_time_password(technician.id)

    password = asyncio.run(_with_accounts(_settings(args), reset))
    print(f"One-time password for {args.email}: {password}\n"
          "It works once, also while passwords are turned off for single sign-on; "
          "at that login\nthey choose a new password.")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    if args.scope:
        scopes = parse_scopes(args.scope)
    else:  # as before scopes existed; scripts that read the token from stdout keep working
        scopes = ALL_SCOPES
        print("supportbroker: no --scope given: the token has every scope "
              f"({scope_text(ALL_SCOPES)}).", file=sys.stderr)

    async def create(broker: _Accounts) -> str:
        technician = await broker.technicians.by_email(args.email)
        expires_at = None if args.expires is None else parse_expiry(args.expires, time.time())
        return (await broker.technicians.tokens.create(
            technician.id, scopes, name=args.name, expires_at=expires_at))[1]

    print(asyncio.run(_with_accounts(_settings(args), create)))
    return 0


def _token_list(args: argparse.Namespace) -> int:
    async def listed(broker: _Accounts) -> list[str]:
        owner = None if args.email is None else await broker.technicians.by_email(args.email)
        names = {t.id: t.email for t in await broker.technicians.all()}
        now = time.time()
        lines = []
        for token in await broker.technicians.tokens.listed(None if owner is None else owner.id):
            expires = "never" if token.expires_at is None else isoformat(token.expires_at)
            used = "never" if token.last_used_at is None else isoformat(token.last_used_at)
            lines.append("\t".join([
                str(token.id), names.get(token.technician_id, "?"), token.name or "-",
                scope_text(token.scopes).replace(" ", ","),
                f"expired {expires}" if token.expired(now) else f"expires {expires}",
                f"used {used}"]))
        return lines

    for line in asyncio.run(_with_accounts(_settings(args), listed)):
        print(line)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    async def revoke(broker: _Accounts) -> ApiToken:
        return await broker.technicians.tokens.revoke(None, args.id)

    token = asyncio.run(_with_accounts(_settings(args), revoke))
    print(f"Revoked token {token.id} ({token.name or 'unnamed'}).")
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


def _audit_verify(args: argparse.Namespace) -> int:
    verdict = asyncio.run(_with_accounts(_settings(args), lambda b: b.audit.verify()))
    if verdict.ok:
        print(f"The audit log is whole: {verdict.checked} records checked.")
        return 0
    print(f"The audit log is broken at record {verdict.broken_at}: {verdict.problem} "
          f"({verdict.checked} records before it are whole).", file=sys.stderr)
    return 2


_CSV_COLUMNS = ("id", "at", "timestamp", "actor_kind", "actor_id", "actor_name", "address",
                "session_id", "action", "details", "prev_hash", "hash")


def _audit_export(args: argparse.Namespace) -> int:
    since = None
    if args.since:
        from .sessions.history import parse_time
        since = parse_time(args.since, end_of_day=False)

    async def export(broker: _Accounts) -> None:
        out = sys.stdout
        writer = csv.writer(out, lineterminator="\n")
        if args.format == "csv":
            writer.writerow(_CSV_COLUMNS)
        async for record in broker.audit.records(since=since):
            shown = record.public()
            if args.format == "jsonl":
                out.write(json.dumps(shown, ensure_ascii=False, separators=(",", ":")) + "\n")
                continue
            actor = shown["actor"]
            writer.writerow([shown["id"], shown["at"], repr(record.at), actor["kind"],
                             actor["id"] or "", actor["name"], shown["address"] or "",
                             shown["session_id"] or "", shown["action"], record.details,
                             shown["prev_hash"], shown["hash"]])

    asyncio.run(_with_accounts(_settings(args), export))
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

    reset = tech_commands.add_parser(
        "reset-password", help="print a one-time password (the emergency way in, also "
        "while passwords are turned off for single sign-on)")
    reset.add_argument("--email", required=True)
    reset.add_argument("--config", default=argparse.SUPPRESS)
    reset.set_defaults(run=_technician_reset_password)

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="action", required=True)
    create = token_commands.add_parser("create", help="print a new API token for a technician")
    create.add_argument("--email", required=True)
    create.add_argument("--scope", action="append", help=(
        "what the token may do: sessions:read, sessions:write, deliveries, admin "
        "(repeat, or separate with commas; without it: all of them)"))
    create.add_argument("--expires", help="a lifetime (90d, 12h) or a date (2027-03-31)")
    create.add_argument("--name", default="", help="what the token is for")
    create.add_argument("--config", default=argparse.SUPPRESS)
    create.set_defaults(run=_token_create)
    listing = token_commands.add_parser(
        "list", help="list tokens not revoked (id, owner, name, scopes, expiry, last use)")
    listing.add_argument("--email", help="only this technician's")
    listing.add_argument("--config", default=argparse.SUPPRESS)
    listing.set_defaults(run=_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=int)
    revoke.add_argument("--config", default=argparse.SUPPRESS)
    revoke.set_defaults(run=_token_revoke)
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

    audit = commands.add_parser("audit", help="check and export the audit log")
    audit_commands = audit.add_subparsers(dest="action", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check the hash chain; names the first broken link (exit status 2)")
    verify.add_argument("--config", default=argparse.SUPPRESS)
    verify.set_defaults(run=_audit_verify)
    export = audit_commands.add_parser("export", help="write the records to stdout")
    export.add_argument("--since", help="only records from this ISO 8601 date or time on")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--config", default=argparse.SUPPRESS)
    export.set_defaults(run=_audit_export)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
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
