"""Technicians' second factors (broker/factors): authenticator apps (TOTP), recovery
codes, passkeys, the challenges of passkey ceremonies, and the policy that requires them."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# One authenticator app per technician. `secret` is sealed (AES-GCM, a data-directory
# key): the server must read it back to check codes. Unconfirmed (confirmed_at NULL)
# while the technician has not yet typed a first code from it.
factor_totp = sa.Table(
    "factor_totp", metadata,
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("confirmed_at", sa.Float),
    # The newest 30-second time step whose code was used: it and older ones never again.
    sa.Column("last_step", sa.BigInteger, nullable=False, default=0),
)

# Ten single-use codes, keyed hashes only (like API tokens).
factor_recovery_codes = sa.Table(
    "factor_recovery_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.UniqueConstraint("technician_id", "code_hash"),
)

# WebAuthn credentials: several per technician, each named.
factor_passkeys = sa.Table(
    "factor_passkeys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),  # base64url
    sa.Column("public_key", sa.LargeBinary, nullable=False),  # COSE
    sa.Column("sign_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
)

# A passkey ceremony's challenge, usable once (deleted when used) until it expires.
factor_challenges = sa.Table(
    "factor_challenges", metadata,
    sa.Column("challenge_hash", sa.String(64), primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE")),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# Who must have a second factor: one row (id 1), absent until an admin chose.
factor_policy = sa.Table(
    "factor_policy", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("required", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.Integer, sa.ForeignKey("technicians.id", ondelete="SET NULL")),
)
