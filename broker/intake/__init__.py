"""Customers who start the contact: pre-chat form, requests in team queues, messages left
while nobody is online, response targets by severity (docs/portal.md)."""

from .model import (
           AlertLevel,
           Availability,
           Request,
           RequestKind,
           RequestStatus,
           Severity,
           TargetAlert,
)
from .service import IntakeService, QueueFull, Submitted

__all__ = ["AlertLevel", "Availability", "IntakeService", "QueueFull", "Request",
           "RequestKind", "RequestStatus", "Severity", "Submitted", "TargetAlert"]
