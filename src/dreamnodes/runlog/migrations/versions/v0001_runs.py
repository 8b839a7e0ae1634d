"""Runs and their attempts (the SQLite run log's schema version 1).

Revision ID: 0001
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite: an INTEGER primary key is the rowid; PostgreSQL: a bigserial.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REAL: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("finished_at", sa.Text),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("context", sa.Text),
        sa.Column("request", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("generation_id", sa.Text),
        sa.Column("resume_key", sa.Text),
        sa.Column("options", sa.Text, nullable=False),
    )
    op.create_table(
        "attempts",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("seconds", REAL, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("runs_by_status", "runs", ["status", "seq"])
    op.create_index("runs_by_node", "runs", ["node", "seq"])
    keyed = sa.text("resume_key IS NOT NULL")
    op.create_index(
        "runs_by_resume_key",
        "runs",
        ["resume_key", "seq"],
        sqlite_where=keyed,
        postgresql_where=keyed,
    )
    op.create_index("attempts_by_run", "attempts", ["run_id", "seq"])


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("runs")
