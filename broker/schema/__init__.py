"""The database schema, one module per domain, all on one MetaData.

The schema is changed only by Alembic migrations in ``broker/migrations``; these Tables are
what the Core statements use. A new domain's tables go in a module of their own here.
"""

from __future__ import annotations

from .audit import audit_chain, audit_records
from .base import metadata
from .closing import closing_config, session_closings
from .cluster import broker_meta, node_dashboards, node_sessions, nodes
from .delivery import deliveries, delivery_attempts
from .factors import (
    factor_challenges,
    factor_passkeys,
    factor_policy,
    factor_recovery_codes,
    factor_totp,
)
from .intake import intake_config, intake_requests
from .people import (
    api_tokens,
    canned_responses,
    logins,
    team_members,
    teams,
    technician_preferences,
    technicians,
)
from .rtc import share_signals, shares
from .sessions import (
    agent_participants,
    events,
    handoffs,
    participants,
    session_members,
    session_technicians,
    session_texts,
    sessions,
    support_keys,
)
from .survey import survey_config, survey_responses
from .transcriptmail import transcript_copies, transcript_mail_levels, transcript_mails
from .transfer import transfers
from .webhooks import webhook_cursors, webhook_endpoints, webhook_messages

__all__ = [
    "agent_participants",
    "api_tokens",
    "audit_chain",
    "audit_records",
    "broker_meta",
    "canned_responses",
    "closing_config",
    "deliveries",
    "delivery_attempts",
    "events",
    "factor_challenges",
    "factor_passkeys",
    "factor_policy",
    "factor_recovery_codes",
    "factor_totp",
    "handoffs",
    "intake_config",
    "intake_requests",
    "logins",
    "metadata",
    "node_dashboards",
    "node_sessions",
    "nodes",
    "participants",
    "session_closings",
    "session_members",
    "session_technicians",
    "session_texts",
    "sessions",
    "share_signals",
    "shares",
    "support_keys",
    "survey_config",
    "survey_responses",
    "team_members",
    "teams",
    "technician_preferences",
    "technicians",
    "transcript_copies",
    "transcript_mail_levels",
    "transcript_mails",
    "transfers",
    "webhook_cursors",
    "webhook_endpoints",
    "webhook_messages",
]
