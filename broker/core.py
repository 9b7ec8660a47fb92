"""The broker's parts, built once from Settings and handed to the web edge."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import sqlite
from .audit import AuditService
from .bus import EventBus, LocalBus
from .canned import CannedService
from .clock import Clock, SystemClock
from .closing import ClosingService
from .datadir import secure_data_dir
from .db import cluster_id, create_engine, create_reader, migrate
from .delivery import DeliveryService
from .delivery.senders import build_senders
from .factors import Factors, FactorStore, Passkeys
from .handoff import HandoffService, LoginStore, PresenceBoard, TeamStore
from .hashing import Hasher, Sealer, load_or_create_secret
from .intake import IntakeService
from .keys import KeyStore
from .metrics import Metrics
from .nodes import LocalRoster, SharedRoster
from .preferences import PreferenceStore
from .ratelimit import (
    Floods,
    Guesses,
    GuessLimiter,
    KeyedBuckets,
    LocalFloods,
    PasswordGuesses,
)
from .reports import Reports
from .rtc import ShareService, ShareSignaling
from .rtc.agents import AgentService
from .sessions import Journal, SessionService
from .sessions.attendance import AttendanceService
from .sessions.history import History
from .settings import Settings
from .supervision import SupervisionService
from .supervision.relay import WatchRelay
from .survey import SurveyService
from .technicians import TECHNICIANS_TOPIC, Accounts, Technician, TechnicianStore
from .technicians.accounts import one_time_password
from .transcriptmail import TranscriptMail
from .transcripts import Transcripts
from .transfer import TransferService
from .transfer.records import load_master_key
from .webhooks import WebhookService

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


def _guess_limits(settings: Settings, clock: Clock, bus: EventBus,
                  hasher: Hasher) -> tuple[Guesses, PasswordGuesses, Guesses]:
    """The limits on guessing keys, passwords and second-factor codes: in memory on one
    node, counted in Redis for all nodes on several (docs/security.md)."""
    redeem = GuessLimiter(clock, free=settings.redeem_free_failures,
                          base_delay=settings.redeem_base_delay_seconds,
                          max_delay=settings.redeem_max_delay_seconds,
                          global_per_minute=settings.redeem_global_failures_per_minute)
    login = GuessLimiter(clock, free=settings.login_failures_per_minute, base_delay=1.0,
                         max_delay=900.0, global_per_minute=None)
    account = GuessLimiter(clock, free=settings.login_account_free_failures, base_delay=1.0,
                           max_delay=settings.login_account_max_delay_seconds,
                           global_per_minute=None)
    factor = GuessLimiter(clock, free=settings.factor_free_failures, base_delay=1.0,
                          max_delay=settings.factor_max_delay_seconds, global_per_minute=None)
    if not settings.several_nodes:
        return redeem, PasswordGuesses(login, account, hasher), factor
    from .redisbus import RedisBus
    from .redislimits import RedisGuessLimiter
    if not isinstance(bus, RedisBus):
        raise TypeError("several nodes (redis_url set) need the Redis bus")
    prefix = f"{bus.prefix}guess:"
    return (RedisGuessLimiter(bus.client, f"{prefix}redeem:", clock, redeem),
            PasswordGuesses(
                RedisGuessLimiter(bus.client, f"{prefix}login:", clock, login),
                RedisGuessLimiter(bus.client, f"{prefix}account:", clock, account), hasher),
            RedisGuessLimiter(bus.client, f"{prefix}factor:", clock, factor))


def floods(settings: Settings, clock: Clock, bus: EventBus, name: str, *, rate: float,
           burst: int) -> Floods:
    """Token buckets against floods named `name`: in memory on one node, in Redis for all
    nodes on several (so N nodes do not allow N times the limit)."""
    local = LocalFloods(clock, rate=rate, burst=burst)
    if not settings.several_nodes:
        return local
    from .redisbus import RedisBus
    from .redislimits import RedisFloods
    if not isinstance(bus, RedisBus):
        raise TypeError("several nodes (redis_url set) need the Redis bus")
    return RedisFloods(bus.client, f"{bus.prefix}flood:{name}:", clock, local,
                       rate=rate, burst=burst)


async def _leave_cluster(roster: LocalRoster) -> None:
    try:
        await roster.close()
    except Exception:
        log.exception("could not leave the cluster; the others will notice")


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
    accounts: Accounts
    sessions: SessionService
    history: History
    reports: Reports
    redeem_limiter: Guesses
    login_limiter: PasswordGuesses
    deliveries: DeliveryService
    teams: TeamStore
    logins: LoginStore
    presence: PresenceBoard
    roster: LocalRoster
    handoffs: HandoffService
    shares: ShareService
    signaling: ShareSignaling
    transfers: TransferService

    agents: AgentService
    attendance: AttendanceService
    canned: CannedService
    preferences: PreferenceStore
    intake: IntakeService
    webhooks: WebhookService
    audit: AuditService
    survey: SurveyService
    closing: ClosingService
    factors: Factors
    passkeys: Passkeys
    transcripts: Transcripts
    transcript_mail: TranscriptMail
    supervision: SupervisionService
    watch_relay: WatchRelay
    # What open() started, undone in reverse by close().
    _started: contextlib.AsyncExitStack = dataclasses.field(repr=False, compare=False)

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None,
                   bus: EventBus | None = None) -> Broker:
        """Build and start every part. When a step fails, what already started is
        closed again before the error propagates."""
        clock = clock or SystemClock()
        secure_data_dir(settings)
        hasher = Hasher(load_or_create_secret(settings.data_dir))
        sealer = Sealer(load_or_create_secret(settings.data_dir, "seal-key"))
        metrics = Metrics()
        async with contextlib.AsyncExitStack() as started:
            engine = create_engine(settings.sqlalchemy_url)
            started.push_async_callback(engine.dispose)
            await migrate(engine)
            if bus is None:
                bus = await _bus_for(settings, metrics, engine)
            started.push_async_callback(bus.close)
            await bus.start()
            shared = settings.several_nodes
            roster = (SharedRoster(engine, clock, settings.node_id, settings.base_url,
                                   heartbeat_seconds=settings.node_heartbeat_seconds,
                                   timeout_seconds=settings.node_timeout_seconds)
                      if shared else LocalRoster())
            started.push_async_callback(_leave_cluster, roster)
            audit = AuditService(engine, clock,
                                 retention_seconds=settings.audit_retention_seconds)
            started.push_async_callback(audit.close)
            journal = Journal(engine, bus, clock, metrics, shared=shared, observer=audit)
            started.push_async_callback(journal.close)
            await journal.start()
            keys = KeyStore(hasher, sealer)
            sms, email = build_senders(settings)
            deliveries = DeliveryService(settings, engine, keys, bus, clock, sms=sms,
                                         email=email, metrics=metrics,
                                         node_id=settings.node_id, audit=audit,
                                         sealer=sealer)
            started.push_async_callback(deliveries.close)
            shares = ShareService(engine, journal, clock)
            signaling = ShareSignaling(settings, engine, bus, clock)
            started.push_async_callback(signaling.close)
            transfers = TransferService(
                settings, engine, journal, bus, clock,
                load_master_key(settings.transfer_master_key, settings.data_dir), audit=audit)
            started.push_async_callback(transfers.close)
            await transfers.start()
            reader = create_reader(settings.sqlalchemy_url)
            if reader is not None:
                started.push_async_callback(reader.dispose)
            technicians = TechnicianStore(engine, hasher, clock, audit)
            # Every node forgets the cached tokens of a technician changed on any node
            # (and all of them when messages between nodes may have been lost).
            started.callback(bus.subscribe(
                TECHNICIANS_TOPIC, lambda change: technicians.forget(change.technician_id),
                technicians.forget))
            sessions = SessionService(
                settings, engine, journal, keys, hasher, bus, clock,
                KeyedBuckets(clock, rate=settings.chat_rate_per_second,
                             burst=settings.chat_burst),
                metrics, roster, audit)
            teams = TeamStore(engine, clock, audit)
            logins = LoginStore(engine, clock, settings.seats, bus, audit)
            redeem_limiter, login_limiter, factor_limiter = _guess_limits(
                settings, clock, bus, hasher)
            handoffs = HandoffService(settings, engine, sessions, technicians, teams, logins,
                                      roster.board, bus, clock, on_new_owner=shares.stop_all)
            supervision = SupervisionService(engine, teams, clock, bus, audit, sessions, handoffs,
                                             tell_end_user=settings.supervision_tell_end_user)
            # Says who watches to the participants who arrive on any node (a reload).
            started.callback(supervision.listen())
            intake = IntakeService(settings, engine, sessions, handoffs, teams, roster.board,
                                   roster, deliveries, bus, clock, (
                floods(settings, clock, bus, "intake-address",
                       rate=settings.intake_address_per_hour / 3600,
                       burst=settings.intake_address_burst),
                floods(settings, clock, bus, "intake-all",
                       rate=settings.intake_global_per_minute / 60,
                       burst=settings.intake_global_per_minute)), audit)
            started.push_async_callback(intake.close)
            factors = Factors(engine, FactorStore(engine, clock), sealer, hasher,
                              factor_limiter, logins, bus, clock, audit,
                              issuer=settings.product_name)
            survey = SurveyService(engine, sessions, journal, clock, settings.default_language)
            closing = ClosingService(engine, sessions, clock, audit)
            transcripts = Transcripts(sessions, handoffs, survey, closing)
            preferences = PreferenceStore(engine, clock)
            transcript_mail = TranscriptMail(settings, engine, sessions, transcripts,
                                             deliveries, teams, preferences, hasher,
                                             redeem_limiter, clock)
            sessions.after_end(transcript_mail.session_ended)
            # Reads the journal's stored events by itself (broker/webhooks/feed.py).
            webhooks = WebhookService(settings, engine, sealer, bus, clock, audit)
            started.push_async_callback(webhooks.close)
            await webhooks.start()
            return cls(
                settings=settings, clock=clock, engine=engine, hasher=hasher, sealer=sealer,
                bus=bus, metrics=metrics, journal=journal,
                technicians=technicians, sessions=sessions, history=History(engine, reader),
                reports=Reports(reader or engine),
                accounts=Accounts(engine, technicians, logins, bus, clock, audit),
                redeem_limiter=redeem_limiter, login_limiter=login_limiter,
                deliveries=deliveries, teams=teams, logins=logins, presence=roster.board,
                roster=roster,
                handoffs=handoffs,
                shares=shares, signaling=signaling, transfers=transfers,
                agents=AgentService(settings, engine, journal, sessions, hasher, sealer,
                                    clock),
                attendance=AttendanceService(settings, sessions, roster, bus),
                canned=CannedService(engine, teams, clock,
                                     max_text_bytes=settings.chat_max_bytes, audit=audit),
                preferences=preferences, intake=intake,
                webhooks=webhooks, audit=audit,
                survey=survey, closing=closing, transcripts=transcripts,
                transcript_mail=transcript_mail,
                factors=factors,
                passkeys=Passkeys(factors, factors.store, hasher, clock,
                                  origin=settings.base_url, name=settings.product_name),
                supervision=supervision,
                watch_relay=WatchRelay(settings, engine, bus, clock, hasher, sessions,
                                       supervision),
                _started=started.pop_all(),
            )

    async def go_live(self) -> int:
        """Start serving: join the cluster (several nodes) and give the end users who were
        connected to this process before it (re)started their reconnect windows. Returns
        how many sessions wait for their end users now."""
        lost = await self.roster.start()
        if not self.settings.several_nodes:
            # One node: nobody can be connected to a broker that just started.
            return await self.sessions.window.recover_after_restart()
        return await self.sessions.window.recover_after_restart(lost)

    async def sweep_forever(self) -> None:
        """Periodic housekeeping; the web app owns the task that runs this. With several
        nodes every node sweeps: each step is idempotent (the database decides)."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_seconds)
            try:
                dead = await self.roster.sweep_dead()
                if dead.nodes:
                    await self.sessions.window.recover_after_restart(list(dead.sessions))
                    await self.deliveries.recover_interrupted(list(dead.nodes))
                    await self.webhooks.recover_interrupted(list(dead.nodes))
            except Exception:
                log.exception("sweep of stopped nodes failed; trying again next time")
            try:
                await self.sessions.end_unjoined()
                await self.sessions.window.end_lapsed()
                await self.handoffs.expire_due()
                await self.logins.end_expired()
                await self.handoffs.orphans.rehome()
                await self.intake.sweep()
            except Exception:
                log.exception("sweep failed; trying again next time")
            try:
                await self.audit.sweep()
            except Exception:
                log.exception("audit log upkeep failed; trying again next time")
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
        """Stop every part, the last started first."""
        await self._started.aclose()

    async def ensure_admin(self) -> tuple[Technician, str] | None:
        """On an empty database, create an admin and return it with its one-time password,
        which must be changed at the first login."""
        if await self.technicians.count():
            return None
        password = one_time_password()
        admin = await self.technicians.add(self.settings.admin_email, "Administrator", password,
                                           is_admin=True, must_change_password=True)
        return admin, password
