"""The audit log: one hash-chained, append-only record per security-relevant act
(docs/audit.md). `AuditService.record` is the one way in."""

from .model import ANONYMOUS, SYSTEM, Action, ActorKind, AuditActor, Record, Verdict
from .query import AuditPage, AuditQuery
from .service import AuditService

__all__ = ["ANONYMOUS", "SYSTEM", "Action", "ActorKind", "AuditActor", "AuditPage", "AuditQuery",
           "AuditService", "Record", "Verdict"]
