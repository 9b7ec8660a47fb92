"""Transcripts by email: to the company, teams and technicians at a session's end, and to
the end user at an address confirmed with a single-use code."""

from .model import Copy, Level, Recipient, recipients
from .service import COMPANY, TEAM, TranscriptMail, copy_json

__all__ = ["COMPANY", "TEAM", "Copy", "Level", "Recipient", "TranscriptMail", "copy_json",
           "recipients"]
