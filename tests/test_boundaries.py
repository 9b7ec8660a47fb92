"""Domains keep to their own: every state string is written through its enum, and the
session domain reaches handoffs only through the hooks the handoff service implements."""

from __future__ import annotations

import ast
import enum
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.core import Broker
from broker.delivery.model import DeliveryStatus
from broker.handoff.model import HandoffState
from broker.intake.model import RequestStatus
from broker.protocol.rtc import ControlState, ShareState
from broker.sessions.model import SessionState
from broker.transfer.model import UploadState
from broker.webhooks.model import MessageStatus

from .conftest import Tech, join, start_session

ROOT = Path(__file__).resolve().parent.parent
STATE_ENUMS: tuple[type[enum.StrEnum], ...] = (
    SessionState, HandoffState, ShareState, ControlState, DeliveryStatus, UploadState,
    RequestStatus, MessageStatus)
STATES = frozenset(member.value for kind in STATE_ENUMS for member in kind)
VOCABULARIES = [frozenset(member.value for member in kind) for kind in STATE_ENUMS]
# A name that holds a state: `state`, `status`, `session_state`, `handoffs.c.state`...
STATEFUL = re.compile(r"(^|_)(state|status)$")
_VALUES = "|".join(sorted(STATES))
# The same in SQL text: state = 'pending', s.status IN ('sent', 'failed'), status <> 'x'.
SQL_STATE = re.compile(
    rf"\b\w*(state|status)\s*(=|!=|<>|\bin\s*\(|\bnot\s+in\s*\()\s*'({_VALUES})'",
    re.IGNORECASE)


def _name(node: ast.expr) -> str:
    """The last name in `a.b.c` or `a`, '' for anything else."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _states_in(node: ast.expr) -> Iterator[str]:
    """State values written as string constants in `node` (itself, or a tuple, list or
    set of them)."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    for item in items:
        if isinstance(item, ast.Constant) and isinstance(item.value, str) \
                and item.value in STATES:
            yield item.value


def _spelled_out(node: ast.Tuple | ast.List | ast.Set) -> bool:
    """Two or more strings, every one a state of the same enum: its states written again."""
    words = {item.value for item in node.elts
             if isinstance(item, ast.Constant) and isinstance(item.value, str)}
    return (len(words) >= 2 and len(words) == len(node.elts)
            and any(words <= vocabulary for vocabulary in VOCABULARIES))


def state_literals(source: str) -> list[tuple[int, str]]:
    """(line, value) of each state value written as a bare string where a state is compared
    or set: `x.state == "pending"`, `status in ("sent", ...)`, `.values(state="...")`,
    `{"status": "..."}`, `row.state = "..."`, `state = 'pending'` in SQL text, and a list
    of one enum's states written out. Words that happen to equal a state elsewhere (a reason
    "stopped", an event "ended") are not states and are not reported."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and _spelled_out(node):
            found += [(node.lineno, value) for value in _states_in(node)]
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(STATEFUL.search(_name(operand)) for operand in operands):
                for operand in operands:
                    found += [(node.lineno, value) for value in _states_in(operand)]
        elif isinstance(node, ast.keyword) and node.arg and STATEFUL.search(node.arg):
            found += [(node.value.lineno, value) for value in _states_in(node.value)]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                        and STATEFUL.search(key.value):
                    found += [(value.lineno, state) for state in _states_in(value)]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(
                    isinstance(t, ast.Attribute) and STATEFUL.search(t.attr) for t in targets):
                found += [(node.lineno, value) for value in _states_in(node.value)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, match.group(3)) for match in SQL_STATE.finditer(node.value)]
    return sorted(found)


def _modules(package: str) -> Iterator[Path]:
    # Migrations are history: each one keeps the words its schema had, on purpose.
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.relative_to(ROOT).parts:
            yield path


def test_no_state_literal_outside_its_enum() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}"
             for path in _modules("broker")
             for line, value in state_literals(path.read_text())]
    assert not found, "write these states through their enums:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    # What broker/sessions/service.py did before the handoff service had a hook.
    'q = handoffs.update().where(handoffs.c.state == "pending").values(\n'
    '    state="cancelled", decided_at=now, reason="The session ended")',
    'offered = sa.select(handoffs.c.id).where(handoffs.c.state == "pending")',
    'if session.state != "ended": pass',
    'if delivery.status in ("sent", "delivered"): pass',
    'frame = {"type": "share", "state": "active"}',
    'row.status = "failed"',
    # What broker/metrics.py did before the session service counted by state.
    'SESSION_STATES = ("waiting", "active", "reconnecting", "ended")',
    'conn.execute(sa.text("UPDATE uploads SET x = 1 WHERE state = \'receiving\'"))',
    'conn.execute(sa.text("SELECT 1 FROM d WHERE d.status IN (\'queued\', \'sent\')"))',
])
def test_state_literals_are_found(source: str) -> None:
    assert state_literals(source)


@pytest.mark.parametrize("source", [
    'reason = reason if _REASON.match(reason) else "stopped"',
    'await journal.append(session_id, "ended", {"reason": reason})',
    'if handoffs.c.state == HandoffState.PENDING.value: pass',
    'outcome = "failed"',
    'if self.smtp_tls not in ("none", "starttls", "tls"): pass',
    'text = "the session ended; the share stopped"',
])
def test_other_words_are_not_states(source: str) -> None:
    assert not state_literals(source)


def _imports(path: Path) -> Iterator[tuple[str, str]]:
    """(module, name) for each name a module imports, with relative modules resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            yield from ((module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from ((alias.name, "") for alias in node.names)


def test_sessions_reach_handoffs_only_through_hooks() -> None:
    """broker/handoff uses the session service; the other way round would be a cycle."""
    reaches = [f"{path.relative_to(ROOT)}: {module} {name}"
               for path in _modules("broker/sessions")
               for module, name in _imports(path)
               if module.startswith("broker.handoff")
               or (module == "broker.schema" and name in {"handoffs", "team_members", "teams"})]
    assert not reaches


# Which domain writes each table (broker/schema/); others ask that domain's service.
WRITERS = {
    "broker/sessions": {"sessions", "participants", "events", "session_texts"},
    "broker/handoff": {"handoffs", "teams", "team_members", "session_technicians", "logins"},
    "broker/keys": {"support_keys"},
    "broker/rtc": {"shares", "share_signals", "agent_participants"},
    "broker/transfer": {"transfers"},
    "broker/delivery": {"deliveries", "delivery_attempts"},
    "broker/technicians": {"technicians", "api_tokens"},
    "broker/nodes.py": {"nodes", "node_sessions", "node_dashboards"},
    "broker/db.py": {"broker_meta"},
    "broker/canned": {"canned_responses"},
    "broker/preferences.py": {"technician_preferences"},
    "broker/intake": {"intake_requests", "intake_config"},
}
# Known, and why: a handoff's decision moves the session's owner and its place in a team
# queue (columns of `sessions`) in the same conditional transaction; see the report of
# issue 15 for what moving them behind the session service would take.
ALSO_WRITES = {"broker/handoff": {"sessions"}}


def table_writes(source: str, tables: set[str]) -> list[tuple[int, str]]:
    """(line, table) of each `table.insert()`, `.update()`, `.delete()`, `sa.insert(table)`
    (and update, delete) of the given tables."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        verb, subject = node.func.attr, node.func.value
        if verb not in {"insert", "update", "delete"}:
            continue
        if isinstance(subject, ast.Name) and subject.id in tables:
            found.append((node.lineno, subject.id))
        elif isinstance(subject, ast.Name) and subject.id == "sa" and node.args \
                and isinstance(node.args[0], ast.Name) and node.args[0].id in tables:
            found.append((node.lineno, node.args[0].id))
    return found


def _owner(path: Path) -> str:
    relative = path.relative_to(ROOT).as_posix()
    return next((owner for owner in WRITERS
                 if relative == owner or relative.startswith(owner + "/")), relative)


def test_each_table_is_written_by_its_domain() -> None:
    every = set().union(*WRITERS.values())
    reaches = []
    for path in _modules("broker"):
        owner = _owner(path)
        allowed = WRITERS.get(owner, set()) | ALSO_WRITES.get(owner, set())
        reaches += [f"{path.relative_to(ROOT)}:{line}: writes {table}"
                    for line, table in table_writes(path.read_text(), every - allowed)]
    assert not reaches, "ask the owning domain's service instead:\n" + "\n".join(reaches)


@pytest.mark.parametrize("source", [
    # What broker/sessions/service.py did before the handoff service had a hook.
    'await conn.execute(handoffs.update().where(handoffs.c.session_id == s))',
    # What broker/rtc/agents.py did before the session service admitted the agent.
    'result = await conn.execute(participants.insert().values(session_id=s))',
    'await conn.execute(sa.delete(handoffs).where(handoffs.c.id == h))',
])
def test_table_writes_are_found(source: str) -> None:
    assert table_writes(source, {"handoffs", "participants"})


# -- the end of a session, as the handoff service takes part in it ---------------------------

async def _queued(client: TestClient, broker: Broker, tech: Tech) -> tuple[str, str]:
    """An active session of `tech`'s, waiting in a team queue: (session id, handoff id)."""
    started = await start_session(client, tech)
    await join(client, started["key"])
    team = await broker.teams.create("Tier 2")
    await broker.teams.add_member(team.id, tech.technician.id)
    handoff = await broker.handoffs.transfer(started["session_id"], tech.technician,
                                             note="Needs a driver", to_team_id=team.id)
    return started["session_id"], handoff.id


async def test_ending_a_session_cancels_its_offers_through_the_handoff_service(
        client: TestClient, broker: Broker, tech: Tech) -> None:
    session_id, handoff_id = await _queued(client, broker, tech)
    ended = await broker.sessions.end(session_id, None, "closed_by_technician")
    handoff = await broker.handoffs.get(handoff_id)
    assert handoff.state is HandoffState.CANCELLED
    assert (handoff.reason, handoff.decided_at) == ("The session ended", ended.ended_at)
    assert [waiting for _, waiting in await broker.handoffs.queues(tech.technician)] == [[]]


class _Refuses:
    """A part of the session's end that fails (as a lost database connection would)."""

    async def session_ended(self, conn: AsyncConnection, session_id: str, now: float) -> None:
        raise OSError("connection lost")


async def test_an_end_that_fails_cancels_nothing(client: TestClient, broker: Broker,
                                                 tech: Tech) -> None:
    """The handoff service cancels in the transaction that ends the session: if the end
    rolls back, so does the cancel."""
    session_id, handoff_id = await _queued(client, broker, tech)
    broker.sessions.on_end(_Refuses())
    with pytest.raises(OSError):
        await broker.sessions.end(session_id, None, "closed_by_technician")
    assert (await broker.handoffs.get(handoff_id)).state is HandoffState.PENDING
    assert (await broker.sessions.get(session_id)).state is SessionState.ACTIVE
