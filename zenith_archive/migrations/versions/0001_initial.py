"""The archive's tables, its full-text index, and the Node console's two tables when they are missing.

An archive the Node console made already holds ``flux_job_archive`` and ``flux_system_logs``:
they are left exactly as they are (columns, rows, indexes), so the Node console keeps reading
and writing them.

This first revision creates the tables as :mod:`zenith_archive.schema` describes them. A later
revision that changes a table does it with ``op`` calls of its own, and this one then gets a
frozen copy of the tables as they were here (the migration tests compare a migrated database
with the schema module, so a drift cannot go unnoticed).

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

from zenith_archive.fts import create_fts, drop_fts
from zenith_archive.schema import legacy_metadata, metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    legacy_metadata.create_all(bind, checkfirst=True)  # an existing legacy table is kept as it is
    metadata.create_all(bind, checkfirst=False)
    create_fts(bind)


def downgrade() -> None:
    bind = op.get_bind()
    drop_fts(bind)
    metadata.drop_all(bind)  # the legacy tables stay: they may be the Node console's
