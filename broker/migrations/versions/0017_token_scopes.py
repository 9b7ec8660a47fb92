"""API tokens get scopes, a name, an optional expiry and a last-used time. Tokens made
before keep their owner's full rights: they get every scope (docs/api.md says so).

Revision ID: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"

_ALL_SCOPES = "sessions:read sessions:write deliveries admin"


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scopes", sa.String(200), nullable=False,
                                   server_default=_ALL_SCOPES))
        batch.add_column(sa.Column("name", sa.String(100), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("expires_at", sa.Float))
        batch.add_column(sa.Column("last_used_at", sa.Float))
    # New tokens name their scopes: no default that would hand out everything.
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("scopes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("name")
        batch.drop_column("scopes")
