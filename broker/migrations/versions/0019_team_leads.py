"""Team leads: a member of a team may lead it and supervise its live sessions
(broker/supervision). Nobody leads a team before an admin says so.

Revision ID: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    with op.batch_alter_table("team_members") as batch:
        batch.add_column(sa.Column("lead", sa.Boolean, nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("team_members") as batch:
        batch.drop_column("lead")
