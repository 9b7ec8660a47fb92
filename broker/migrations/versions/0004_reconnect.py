"""Reconnect windows: the absolute deadline by which a dropped end user must be back.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("reconnect_deadline", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("reconnect_deadline")
