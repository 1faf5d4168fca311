"""PostgreSQL: finer statistics on the full-text column, so that a rare word is looked up in its index.

With the default statistics target, ``ANALYZE`` keeps only the hundred or so most common words
of ``search_tsv`` and the planner guesses that any other word matches 0.5% of the jobs. For a
search ordered by id with a limit it then walks the primary key backwards, filtering every row,
hoping to meet the page early; a word held by a few dozen jobs among a million made it read most
of the table (seconds). With a target of 1,000, ``ANALYZE`` tracks words down to about 1 job in
10,000, the planner estimates the others as rare, and it reads them from the GIN index (a few
milliseconds); common words still walk the key. ``ANALYZE`` samples more rows (300,000) to do so.

SQLite and MySQL/MariaDB are left as they are.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-18
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEARCH_TSV_STATISTICS = 1000
"""The statistics target of ``zenith_jobs.search_tsv`` (PostgreSQL's default is 100)."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE zenith_jobs ALTER COLUMN search_tsv SET STATISTICS {SEARCH_TSV_STATISTICS}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE zenith_jobs ALTER COLUMN search_tsv SET STATISTICS -1")
