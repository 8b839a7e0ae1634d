"""Exactly once: units of work (an owner with a lease) and the generations each claimed
(the SQLite run log's schema version 2).

Every earlier run becomes a unit; one that may have sent a create and recorded no generation
keeps `sent_at`, so its lost create is looked for, never resent.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

REAL: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

# A run's start (ISO 8601 text) in seconds since the epoch, per database.
_EPOCH = {
    "sqlite": "(julianday(MIN(started_at)) - 2440587.5) * 86400.0",
    "postgresql": "EXTRACT(EPOCH FROM CAST(MIN(started_at) AS TIMESTAMPTZ))",
}


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.Text))
    op.add_column("runs", sa.Column("lease_until", REAL))
    op.execute("UPDATE runs SET resume_key = 'run:' || id WHERE resume_key IS NULL")
    op.create_table(
        "units",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text),
        sa.Column("lease_until", REAL),
        sa.Column("run_id", sa.Text),
        sa.Column("reserved_at", REAL, nullable=False),
        sa.Column("sent_at", REAL),
        sa.Column("generation_id", sa.Text),
    )
    op.create_table(
        "claims",
        sa.Column("generation_id", sa.Text, primary_key=True),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("claimed_at", REAL, nullable=False),
    )
    epoch = _EPOCH[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO units (key, reserved_at, sent_at, generation_id)"
        f" SELECT resume_key, {epoch},"
        f" CASE WHEN COUNT(generation_id) = 0 THEN {epoch} END, MAX(generation_id)"
        " FROM runs WHERE true GROUP BY resume_key ON CONFLICT DO NOTHING"
    )
    op.execute(
        "INSERT INTO claims (generation_id, unit, claimed_at)"
        " SELECT generation_id, resume_key, 0 FROM runs WHERE generation_id IS NOT NULL"
        " ON CONFLICT DO NOTHING"
    )
    owned = sa.text("owner IS NOT NULL")
    op.create_index(
        "units_by_owner", "units", ["owner"], sqlite_where=owned, postgresql_where=owned
    )


def downgrade() -> None:
    op.drop_table("claims")
    op.drop_table("units")
    op.drop_column("runs", "lease_until")
    op.drop_column("runs", "owner")
