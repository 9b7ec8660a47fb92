"""The broker's parts, built once from Settings and handed to the web edge."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import sqlite
from .bus import EventBus, LocalBus
from .clock import Clock, SystemClock
from .db import cluster_id, create_engine, migrate
from .delivery import DeliveryService
from .delivery.senders import build_senders
from .handoff import HandoffService, LoginStore, PresenceBoard, TeamStore
from .hashing import Hasher, Sealer, load_or_create_secret
from .keys import KeyStore
from .metrics import Metrics
from .nodes import LocalRoster, SharedRoster
from .ratelimit import Guesses, GuessLimiter, KeyedBuckets
from .rtc import ShareService
from .sessions import Journal, SessionService
from .settings import Settings
from .technicians import Technician, TechnicianStore
from .transfer import TransferService
from .transfer.store import load_master_key

log = logging.getLogger(__name__)


async def _bus_for(settings: Settings, metrics: Metrics, engine: AsyncEngine) -> EventBus:
    if not settings.redis_url:
        return LocalBus()
    from .buscodec import broker_codec
    from .redisbus import RedisBus
    # Channels are named after the cluster (its database), so that brokers of different
    # databases can share one Redis.
    prefix = f"sb:{await cluster_id(engine)}:"
    return RedisBus(settings.redis_url, broker_codec(), metrics, node_id=settings.node_id,
                    prefix=prefix)


def _guess_limits(settings: Settings, clock: Clock, bus: EventBus) -> tuple[Guesses, Guesses]:
    """The limits on guessing keys and passwords: in memory on one node, counted in Redis
    for all nodes on several (docs/security.md)."""
    redeem = GuessLimiter(clock, free=settings.redeem_free_failures,
                          base_delay=settings.redeem_base_delay_seconds,
                          max_delay=settings.redeem_max_delay_seconds,
                          global_per_minute=settings.redeem_global_failures_per_minute)
    login = GuessLimiter(clock, free=settings.login_failures_per_minute, base_delay=1.0,
                         max_delay=900.0, global_per_minute=None)
    if not settings.several_nodes:
        return redeem, login
    from .redisbus import RedisBus
    from .redislimits import RedisGuessLimiter
    if not isinstance(bus, RedisBus):
        raise TypeError("several nodes (redis_url set) need the Redis bus")
    return (RedisGuessLimiter(bus.client, f"{bus.prefix}guess:redeem:", clock, redeem),
            RedisGuessLimiter(bus.client, f"{bus.prefix}guess:login:", clock, login))


@dataclasses.dataclass(frozen=True, slots=True)
class Broker:
    """Everything the edge needs, with one owner for their lifetimes."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    hasher: Hasher
    sealer: Sealer
    bus: EventBus
    metrics: Metrics
    journal: Journal
    technicians: TechnicianStore
    sessions: SessionService
    redeem_limiter: Guesses
    login_limiter: Guesses
    deliveries: DeliveryService
    teams: TeamStore
    logins: LoginStore
    presence: PresenceBoard
    roster: LocalRoster
    handoffs: HandoffService
    shares: ShareService
    transfers: TransferService

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None,
                   bus: EventBus | None = None) -> Broker:
        clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        hasher = Hasher(load_or_create_secret(settings.data_dir))
        sealer = Sealer(load_or_create_secret(settings.data_dir, "seal-key"))
        metrics = Metrics()
        engine = create_engine(settings.sqlalchemy_url)
        await migrate(engine)
        if bus is None:
            bus = await _bus_for(settings, metrics, engine)
        await bus.start()
        shared = settings.several_nodes
        roster = (SharedRoster(engine, clock, settings.node_id, settings.base_url,
                               heartbeat_seconds=settings.node_heartbeat_seconds,
                               timeout_seconds=settings.node_timeout_seconds)
                  if shared else LocalRoster())
        journal = Journal(engine, bus, clock, metrics, shared=shared)
        await journal.start()
        keys = KeyStore(hasher, sealer)
        sms, email = build_senders(settings)
        transfers = TransferService(
            settings, engine, journal, bus, clock,
            load_master_key(settings.transfer_master_key, settings.data_dir))
        await transfers.start()
        technicians = TechnicianStore(engine, hasher, clock)
        sessions = SessionService(
            settings, engine, journal, keys, hasher, bus, clock,
            KeyedBuckets(clock, rate=settings.chat_rate_per_second, burst=settings.chat_burst),
            metrics, roster)
        teams = TeamStore(engine, clock)
        logins = LoginStore(engine, clock, settings.seats)
        presence = roster.board
        shares = ShareService(settings, engine, journal, bus, clock)
        redeem_limiter, login_limiter = _guess_limits(settings, clock, bus)
        return cls(
            settings=settings, clock=clock, engine=engine, hasher=hasher, sealer=sealer,
            bus=bus, metrics=metrics,
            journal=journal,
            technicians=technicians, sessions=sessions,
            redeem_limiter=redeem_limiter, login_limiter=login_limiter,
            deliveries=DeliveryService(settings, engine, keys, bus, clock, sms=sms, email=email,
                                       metrics=metrics, node_id=settings.node_id),
            teams=teams, logins=logins, presence=presence, roster=roster,
            handoffs=HandoffService(settings, engine, sessions, technicians, teams, logins,
                                    presence, bus, clock, on_new_owner=shares.stop_all),
            shares=shares,
            transfers=transfers,
        )

    async def go_live(self) -> int:
        """Start serving: join the cluster (several nodes) and give the end users who were
        connected to this process before it (re)started their reconnect windows. Returns
        how many sessions wait for their end users now."""
        lost = await self.roster.start()
        if not self.settings.several_nodes:
            # One node: nobody can be connected to a broker that just started.
            return await self.sessions.recover_after_restart()
        return await self.sessions.recover_after_restart(lost)

    async def sweep_forever(self) -> None:
        """Periodic housekeeping; the web app owns the task that runs this. With several
        nodes every node sweeps: each step is idempotent (the database decides)."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_seconds)
            try:
                dead = await self.roster.sweep_dead()
                if dead.nodes:
                    await self.sessions.recover_after_restart(list(dead.sessions))
                    await self.deliveries.recover_interrupted(list(dead.nodes))
            except Exception:
                log.exception("sweep of stopped nodes failed; trying again next time")
            try:
                await self.sessions.end_unjoined()
                await self.sessions.end_lapsed()
                await self.handoffs.expire_due()
                await self.handoffs.rehome_orphans()
            except Exception:
                log.exception("sweep failed; trying again next time")
            try:
                await self.transfers.sweep()
            except Exception:
                log.exception("file transfer sweep failed; trying again next time")

    async def checkpoint_forever(self) -> None:
        """Keep SQLite's write-ahead log short from a thread of its own (broker/sqlite.py);
        returns at once on other databases. The web app owns the task that runs this."""
        path = sqlite.database_path(self.settings.sqlalchemy_url)
        if path is not None:
            await sqlite.checkpoint_forever(path)

    async def readiness(self) -> dict[str, str]:
        """Whether the database and the bus answer: "ok" or what went wrong, per part."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2), self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"{type(exc).__name__}: {exc}"[:200]
        if self.settings.several_nodes:
            try:
                await self.bus.ping()
                checks["bus"] = "ok"
            except Exception as exc:
                checks["bus"] = f"{type(exc).__name__}: {exc}"[:200]
        return checks

    async def close(self) -> None:
        await self.transfers.close()
        await self.shares.close()
        await self.deliveries.close()
        await self.journal.close()
        try:
            await self.roster.close()
        except Exception:
            log.exception("could not leave the cluster; the others will notice")
        await self.bus.close()
        await self.engine.dispose()

    async def ensure_admin(self) -> tuple[Technician, str] | None:
        """On an empty database, create an admin and return it with its one-time password."""
        if await self.technicians.count():
            return None
        password = secrets.token_urlsafe(12)
        admin = await self.technicians.add(self.settings.admin_email, "Administrator", password,
                                           is_admin=True)
        return admin, password
