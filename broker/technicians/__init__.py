"""Technicians: their accounts and passwords (store), their API tokens (tokens), and
managing them (accounts)."""

from .accounts import TECHNICIANS_TOPIC, Accounts, Ending, TechnicianChanged
from .model import AccountDisabled, PasswordChangeRequired, Technician
from .store import TechnicianStore
from .tokens import ALL_SCOPES, ApiToken, InsufficientScope, Scope, TokenGrant, TokenStore

__all__ = ["ALL_SCOPES", "TECHNICIANS_TOPIC", "AccountDisabled", "Accounts", "ApiToken",
           "Ending", "InsufficientScope", "PasswordChangeRequired", "Scope", "Technician",
           "TechnicianChanged", "TechnicianStore", "TokenGrant", "TokenStore"]
