"""Every error the broker raises on purpose, as one tree.

    BrokerError
    ├── NotFound                 the thing does not exist, or the caller may not know it does
    │   └── Gone                 it existed and was removed (a cancelled or expired upload)
    ├── Unauthenticated          no valid credential
    ├── Forbidden                a valid credential that does not reach this thing
    ├── InvalidInput             malformed or out-of-range input
    │   ├── ProtocolError        a WebSocket message that does not decode
    │   ├── TooLarge             a file over the size limit or the session's quota
    │   ├── TypeNotAllowed       a file type that is not allowed, judged by its content
    │   └── ChecksumMismatch     data that does not match the checksum its sender declared
    ├── Conflict                 the thing is in a state that does not allow this
    │   └── IllegalTransition    a session state change the transition table forbids
    ├── KeyRejected              a support key that cannot be redeemed (code says why)
    ├── DeliveryFailed           an SMS or email the provider did not take (transient or not)
    ├── InsufficientStorage      the broker's disk is too full to take a file
    └── RateLimited              too many attempts; retry_after says when to try again

No HTTP status codes live here: `web.errors` maps these at the edge, and the
WebSocket loop turns them into ``{"type": "error", "code": ...}``.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every deliberate broker error. `code` is the stable wire name."""

    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class NotFound(BrokerError):
    """Not found."""

    code = "not_found"


class Unauthenticated(BrokerError):
    """A valid credential is required."""

    code = "unauthenticated"


class Forbidden(BrokerError):
    """This credential does not reach that resource."""

    code = "forbidden"


class InvalidInput(BrokerError):
    """The input is malformed."""

    code = "invalid_input"


class ProtocolError(InvalidInput):
    """The message does not follow the protocol."""

    code = "protocol_error"


class TooLarge(InvalidInput):
    """The file is larger than allowed."""

    code = "file_too_large"


class TypeNotAllowed(InvalidInput):
    """Files of this type are not accepted."""

    code = "type_not_allowed"


class ChecksumMismatch(InvalidInput):
    """The data does not match the checksum that was sent with it."""

    code = "checksum_mismatch"


class Gone(NotFound):
    """It was removed."""

    code = "gone"


class InsufficientStorage(BrokerError):
    """The broker has too little free disk space to take this file now."""

    code = "insufficient_storage"


class Conflict(BrokerError):
    """The resource is in a state that does not allow this."""

    code = "conflict"


class IllegalTransition(Conflict):
    """That state change is not allowed."""

    code = "illegal_transition"


class KeyRejected(BrokerError):
    """The support key cannot be used. `code` is one of the KEY_* names below."""

    code = "key_unknown"


KEY_EXPIRED = "key_expired"
KEY_USED = "key_used"
KEY_REVOKED = "key_revoked"
KEY_UNKNOWN = "key_unknown"
KEY_MALFORMED = "key_malformed"


class DeliveryFailed(BrokerError):
    """A message could not be handed to the SMS or mail provider. `transient` failures
    (connection refused, timeouts, 5xx, 429) are retried; permanent ones are not."""

    code = "delivery_failed"

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class RateLimited(BrokerError):
    """Too many attempts."""

    code = "rate_limited"

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or "Too many attempts; try again later.")
        self.retry_after = retry_after
