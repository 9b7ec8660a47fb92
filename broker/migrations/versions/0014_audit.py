"""The audit log (broker/audit): `audit_records`, hash-chained, and `audit_chain`, the
head every writer locks.

Revision ID: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(64)),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(100)),
        sa.Column("session_id", sa.String(32)),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    op.create_index("ix_audit_records_session_id", "audit_records", ["session_id"])
    op.create_index("ix_audit_records_action", "audit_records", ["action"])
    op.create_index("ix_audit_records_actor", "audit_records", ["actor_kind", "actor_id"])
    chain = op.create_table(
        "audit_chain",
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(chain, [{"name": "head", "last_id": 0, "last_hash": "0" * 64}])


def downgrade() -> None:
    op.drop_table("audit_chain")
    op.drop_table("audit_records")
