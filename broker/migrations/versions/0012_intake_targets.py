"""A customer's request keeps the response target it was given (`target_seconds`, and
whether it counts business hours): an admin may change the targets later, and the
request's breach is measured against its own.

Revision ID: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.add_column("intake_requests", sa.Column("target_seconds", sa.Integer, nullable=False,
                                               server_default="0"))
    op.add_column("intake_requests", sa.Column("business_hours", sa.Boolean, nullable=False,
                                               server_default=sa.false()))
    # Requests made before: the time from their arrival to their due time, on the clock.
    op.execute("UPDATE intake_requests SET target_seconds = "
               "CAST(ROUND(due_at - created_at) AS INTEGER)")


def downgrade() -> None:
    with op.batch_alter_table("intake_requests") as batch:
        batch.drop_column("business_hours")
        batch.drop_column("target_seconds")
