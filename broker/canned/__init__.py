"""Canned responses at company, team and personal level (seed 000)."""

from .model import PLACEHOLDERS, CannedResponse, Scope, Shelf
from .service import CannedService, Listed

__all__ = ["PLACEHOLDERS", "CannedResponse", "CannedService", "Listed", "Scope", "Shelf"]
