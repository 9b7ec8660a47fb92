"""The technician's closing form: categories admins keep, and per session a category,
whether it was resolved and a ticket number, recorded after the end."""

from .model import Category, Closing, ClosingConfig
from .service import ClosingService

__all__ = ["Category", "Closing", "ClosingConfig", "ClosingService"]
