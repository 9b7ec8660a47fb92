"""The one MetaData every table of the schema is defined on."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
