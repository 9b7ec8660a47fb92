"""Second factors: authenticator apps (TOTP), recovery codes, passkeys, passkey
challenges, and the policy that requires a second factor (broker/schema/factors.py).

Revision ID: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def _technician(*, primary_key: bool = False, nullable: bool = True,
                index: bool = False) -> sa.Column[int]:
    return sa.Column("technician_id", sa.Integer,
                     sa.ForeignKey("technicians.id", ondelete="CASCADE"),
                     primary_key=primary_key, nullable=nullable, index=index)


def upgrade() -> None:
    op.create_table(
        "factor_totp",
        _technician(primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("confirmed_at", sa.Float),
        sa.Column("last_step", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "factor_recovery_codes",
        sa.Column("id", sa.Integer, primary_key=True),
        _technician(nullable=False, index=True),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float),
        sa.UniqueConstraint("technician_id", "code_hash"),
    )
    op.create_table(
        "factor_passkeys",
        sa.Column("id", sa.Integer, primary_key=True),
        _technician(nullable=False, index=True),
        sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
    )
    op.create_table(
        "factor_challenges",
        sa.Column("challenge_hash", sa.String(64), primary_key=True),
        _technician(),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
    )
    op.create_table(
        "factor_policy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("required", sa.String(10), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.Integer,
                  sa.ForeignKey("technicians.id", ondelete="SET NULL")),
    )


def downgrade() -> None:
    for table in ("factor_policy", "factor_challenges", "factor_passkeys",
                  "factor_recovery_codes", "factor_totp"):
        op.drop_table(table)
