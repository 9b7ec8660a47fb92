"""The two spellings of a support key and how input is read back into them."""

from __future__ import annotations

import re
import secrets

from ..errors import KEY_MALFORMED, InvalidInput, KeyRejected

CODE_DIGITS = 9
_TOKEN_BYTES = 24  # 192 bits; the URL form is 32 characters of base64url.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015.]+")


def generate_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def generate_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def format_code(code: str) -> str:
    """Group in threes for reading aloud: ``482 913 075``."""
    return " ".join(code[i:i + 3] for i in range(0, len(code), 3))


def parse_code(text: str) -> str:
    """Accept what people type: spaces, dashes and dots are ignored."""
    digits = _SEPARATORS.sub("", text)
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        raise KeyRejected("A support key has nine digits.", code=KEY_MALFORMED)
    return digits


def parse_token(text: str) -> str:
    token = text.strip()
    if not _TOKEN_RE.match(token):
        raise KeyRejected("That join link is incomplete.", code=KEY_MALFORMED)
    return token


def parse_key(code: str | None, token: str | None) -> dict[str, str]:
    """The key a joining end user gave, as KeyStore.find takes it: the link's token if
    there is one, else the typed code."""
    if token is not None:
        return {"token": parse_token(token)}
    if code is not None:
        return {"code": parse_code(code)}
    raise InvalidInput("A key or a token is required.", code="key_malformed")
