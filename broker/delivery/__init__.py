"""Sending a support key to the end user by SMS (Twilio) or email (SMTP), through a queue."""

from .model import Channel, Delivery, DeliveryStatus
from .service import DeliveryService

__all__ = ["Channel", "Delivery", "DeliveryService", "DeliveryStatus"]
