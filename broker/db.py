"""The schema and the async engine. SQLite by default; PostgreSQL through the same Core statements.

The schema is changed only by Alembic migrations in ``broker/migrations``, which run at start-up.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import sqlite

metadata = sa.MetaData()

technicians = sa.Table(
    "technicians", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"),
              nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("end_reason", sa.String(40)),
    sa.Column("end_user_name", sa.String(200)),
    # While the end user is away: when the session ends unless they are back (absolute,
    # so a restarted broker ends only sessions whose window really passed).
    sa.Column("reconnect_deadline", sa.Float),
    # Technicians' notes, never shown to the end user; kept with the transcript.
    sa.Column("notes", sa.Text),
    # The team whose queue the session waits in, and the last queue it was in.
    sa.Column("queue_team_id", sa.Integer),
    sa.Column("last_queue_team_id", sa.Integer),
)

teams = sa.Table(
    "teams", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

team_members = sa.Table(
    "team_members", metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              primary_key=True),
)

# Every technician who has been in a session besides its owner at the time: collaborators,
# and former owners who stayed. `left_at` is set when they leave.
session_technicians = sa.Table(
    "session_technicians", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"), primary_key=True),
    sa.Column("joined_at", sa.Float, nullable=False),
    sa.Column("left_at", sa.Float),
)

handoffs = sa.Table(
    "handoffs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("from_technician_id", sa.Integer, sa.ForeignKey("technicians.id"),
              nullable=False),
    sa.Column("to_technician_id", sa.Integer, sa.ForeignKey("technicians.id"), index=True),
    sa.Column("to_team_id", sa.Integer, sa.ForeignKey("teams.id"), index=True),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("keep_sender", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deadline", sa.Float),
    sa.Column("decided_at", sa.Float),
    sa.Column("decided_by", sa.Integer, sa.ForeignKey("technicians.id")),
    sa.Column("reason", sa.Text),
)

# Technicians' logins (one per browser login), for seats and for logout that sticks.
logins = sa.Table(
    "logins", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("ended_reason", sa.String(40)),
)

support_keys = sa.Table(
    "support_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, unique=True),
    # Keyed hashes only (HMAC-SHA256 with the server secret); never the key itself.
    sa.Column("code_hash", sa.String(64), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    # The live key, sealed (AES-GCM) so it can still be sent by SMS or email; erased when
    # the key is used, revoked or its session ends.
    sa.Column("sealed", sa.Text),
)

participants = sa.Table(
    "participants", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

events = sa.Table(
    "events", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(40), nullable=False),
    # Who caused it: "t<id>" for a technician, "p<id>" for a participant, NULL for the broker.
    sa.Column("sender", sa.String(40)),
    sa.Column("client_id", sa.String(64)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("session_id", "sender", "client_id", name="uq_events_client_id"),
)


deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"), nullable=False,
              index=True),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("language", sa.String(5), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("provider_id", sa.String(64), index=True),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The node sending it (status "sending"), so that only its own cut-off attempts count
    # as interrupted when a node restarts (or another node finds it dead).
    sa.Column("claimed_by", sa.String(64)),
)

delivery_attempts = sa.Table(
    "delivery_attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.String(32), sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


transfers = sa.Table(
    "transfers", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # The sender, as in events: a technician or a participant, with the name they had.
    sa.Column("sender_role", sa.String(20), nullable=False),
    sa.Column("sender_id", sa.Integer, nullable=False),
    sa.Column("sender_name", sa.String(200), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # Bytes stored as of the last commit; the tail file in the transfer directory is the
    # authority after a crash (see broker/transfer/store.py).
    sa.Column("received", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("completed_at", sa.Float),
    sa.Column("sha256", sa.String(64)),
    sa.Column("declared_sha256", sa.String(64)),
    # Upload-Metadata as the client sent it (tus echoes it on HEAD).
    sa.Column("upload_metadata", sa.Text, nullable=False),
    sa.Column("reason", sa.String(40)),
    # The file's name in the transfer directory, and its key wrapped by the master key.
    sa.Column("blob_id", sa.String(64), nullable=False, unique=True),
    sa.Column("wrapped_key", sa.Text, nullable=False),
)

# Facts about this database for all nodes (the cluster id that names its Redis channels).
broker_meta = sa.Table(
    "broker_meta", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# The running broker nodes (several share one PostgreSQL database), each with a heartbeat.
nodes = sa.Table(
    "nodes", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
)

# A row while the node has at least one socket of that role open to the session (written
# when the first opens, deleted when the last closes); void once the node's heartbeat stops.
node_sessions = sa.Table(
    "node_sessions", metadata,
    sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("session_id", sa.String(32), primary_key=True, index=True),
    sa.Column("role", sa.String(20), primary_key=True),
)

# Likewise for technicians' dashboards (their presence for handoffs).
node_dashboards = sa.Table(
    "node_dashboards", metadata,
    sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("technician_id", sa.Integer, primary_key=True),
)

# Screen shares (broker/rtc): each one's state, changed by a conditional update on
# `version`, and per peer the socket ready for its signaling (`*_conn`, a token naming the
# node process that has it) and whether it ever was ready. At most one live per session.
shares = sa.Table(
    "shares", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("share_id", sa.String(64), primary_key=True),
    sa.Column("direction", sa.String(30), nullable=False),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("sharer", sa.String(40), nullable=False),
    sa.Column("sharer_role", sa.String(20), nullable=False),
    sa.Column("sharer_name", sa.String(200), nullable=False),
    sa.Column("viewer", sa.String(40), nullable=False),
    sa.Column("viewer_role", sa.String(20), nullable=False),
    sa.Column("viewer_name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("paused_by", sa.String(40)),
    sa.Column("control", sa.String(20), nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sharer_conn", sa.String(64)),
    sa.Column("sharer_readied", sa.Boolean, nullable=False),
    sa.Column("viewer_conn", sa.String(64)),
    sa.Column("viewer_readied", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("uq_shares_live", "session_id", unique=True, sqlite_where=sa.text("live"),
             postgresql_where=sa.text("live")),
)

# Signaling frames waiting for a peer of a share that has no ready socket.
share_signals = sa.Table(
    "share_signals", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("share_id", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(40), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("frame", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_share_signals_line", "session_id", "share_id", "recipient"),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; NORMAL still survives a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Checkpoints run on a thread of their own, not inside a commit (broker/sqlite.py).
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer anyway, and a single connection rules out
        # "database is locked" between our own transactions. Statements run on the
        # event loop's thread (broker/sqlite.py).
        engine = create_async_engine(url, pool_size=1, max_overflow=0,
                                     async_creator=sqlite.connector(url))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10)


# Any fixed number: the advisory lock that serialises migrations of one database.
_MIGRATION_LOCK = 0x5B_0B_0B_01


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


async def cluster_id(engine: AsyncEngine) -> str:
    """This database's random id, made by the first node that asks (several may race)."""
    for _ in range(3):
        async with engine.connect() as conn:
            found = await conn.scalar(sa.select(broker_meta.c.value).where(
                broker_meta.c.name == "cluster_id"))
        if found is not None:
            return str(found)
        try:
            async with engine.begin() as conn:
                await conn.execute(broker_meta.insert().values(
                    name="cluster_id", value=secrets.token_hex(8)))
        except sa.exc.IntegrityError:
            continue  # another node made it first: read theirs
    raise RuntimeError("could not read or make the cluster id")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration. Safe to run on every start, also by
    several nodes at once: on PostgreSQL they take turns (an advisory lock held until the
    migrating transaction commits), and who comes second finds nothing left to do."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _MIGRATION_LOCK})
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))
