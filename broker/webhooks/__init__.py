"""Signed webhooks to help desks (docs/webhooks.md): endpoints admins register, the events
they subscribe to, durable ordered delivery with retries, per the Standard Webhooks
specification."""

from .model import TEST_EVENT, Endpoint, EventType, Message, MessageStatus
from .service import WebhookService

__all__ = ["TEST_EVENT", "Endpoint", "EventType", "Message", "MessageStatus", "WebhookService"]
