"""Support keys: a 9-digit code to read aloud and a link token, both naming one single-use key."""

from .codes import (
    format_code,
    generate_code,
    generate_token,
    parse_code,
    parse_key,
    parse_token,
)
from .store import IssuedKey, KeyRecord, KeyStore

__all__ = ["IssuedKey", "KeyRecord", "KeyStore", "format_code", "generate_code",
           "generate_token", "parse_code", "parse_key", "parse_token"]
