"""Client input refused before it reaches anything: JSON the parser chokes on, text that is
no Unicode (or holds a NUL), and whole numbers that no column holds.

Python's json module accepts more than the broker can use. Nesting deep enough to exhaust
the stack raises RecursionError (not ValueError); an escaped lone surrogate (``"\\ud800"``)
decodes to a string that fails only later, when it is stored or sent on (RFC 8259 leaves
such strings undefined); an escaped NUL (``"\\u0000"``) is valid JSON, but PostgreSQL's text
types cannot hold it (and no name, line or note needs one); and a number of any size is a
Python int until a database driver refuses it. Every API body and WebSocket frame goes
through `parse_json` (form fields, paths and query strings through `is_text`), and every
whole number from a path, a query or a body is held to `MAX_INT`, so each of these is a
refusal with a code instead of an internal error. Email addresses and phone numbers are
normalised here too, wherever they come from.
"""

from __future__ import annotations

import json
from typing import Any, Final

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from .errors import InvalidInput

# PostgreSQL's `integer`, the type of every Integer column (ids, sequence numbers): a
# larger number names nothing the broker stores.
MAX_INT: Final = 2**31 - 1
_MAX_DIGITS: Final = len(str(MAX_INT))
BAD_TEXT: Final = ("The input holds a NUL character or a lone surrogate (\\ud800-\\udfff), "
                   "which is no text.")


def parse_json(raw: str | bytes, error: type[InvalidInput] = InvalidInput) -> Any:
    """The JSON value in `raw` (bytes must be UTF-8, as RFC 8259 requires). Refuses, as
    `error`: `bad_json` for anything that does not parse (too deep included), `bad_text`
    for a string, key or value, with a lone surrogate or a NUL."""
    try:
        # Strict decoding: json.loads(bytes) would let UTF-8-encoded surrogates through.
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise error("The body is not valid JSON (or is nested too deeply).",
                    code="bad_json") from exc
    if not _is_text(data):
        raise error(BAD_TEXT, code="bad_text")
    return data


def is_text(value: str) -> bool:
    """Whether `value` is text the broker keeps: valid Unicode without a NUL."""
    if "\x00" in value:
        return False
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def _is_text(data: Any) -> bool:
    """Whether every string in `data` is text (`is_text`). Iterative: what json.loads just
    managed to parse may be nested nearly as deep as the stack allows."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not is_text(value):
                return False
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return True


def whole_number(raw: str, name: str, *, minimum: int = 0) -> int:
    """A whole number from a path or query string: ASCII digits only ("²".isdigit() is
    true), from `minimum` to MAX_INT."""
    digits = raw[1:] if raw.startswith("-") else raw
    if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_DIGITS:
        value = int(raw)
        if minimum <= value <= MAX_INT:
            return value
    raise InvalidInput(f"{name} must be a whole number from {minimum} to {MAX_INT}.")


def in_range(value: int, name: str) -> int:
    """A whole number from a JSON body, if a column can hold it."""
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise InvalidInput(f"{name} is out of range (at most {MAX_INT}).")
    return value


def email_address(text: str) -> str:
    """`text` as a normalised address; InvalidInput (`invalid_email`) if it is none."""
    try:
        return str(validate_email(text.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InvalidInput(f"{text.strip()[:80]!r} is not a valid email address: {exc}",
                           code="invalid_email") from exc


def phone_number(text: str, region: str) -> str:
    """`text` as an E.164 number (a local one read as `region`'s); InvalidInput
    (`invalid_phone`) if it is none."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"{text.strip()[:40]!r} is not a valid phone number.",
                           code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
