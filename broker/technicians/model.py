"""A technician as the rest of the broker sees them, and the refusals about their account."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from ..errors import Forbidden


@dataclasses.dataclass(frozen=True, slots=True)
class Technician:
    id: int
    email: str
    display_name: str
    is_admin: bool
    disabled_at: float | None = None
    # Logged in with a one-time password: must choose their own before anything else.
    must_change_password: bool = False
    created_at: float = 0.0

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


class AccountDisabled(Forbidden):
    """The technician's account is disabled."""

    code = "technician_disabled"


class PasswordChangeRequired(Forbidden):
    """The technician logged in with a one-time password and must choose their own first."""

    code = "password_change_required"


def from_row(row: sa.Row[tuple[object, ...]]) -> Technician:
    return Technician(row.id, row.email, row.display_name, row.is_admin, row.disabled_at,
                      row.must_change_password, row.created_at)


def named(technician: Technician) -> dict[str, object]:
    """A technician as audit records name them."""
    return {"id": technician.id, "name": technician.display_name, "email": technician.email}
