"""The service's tables (`dreamnodes serve`): idempotency keys, batches, notifications.

Before Alembic they were made when the service opened the store, so a file adopted at 0002
may have them already: each is made only where it is missing.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REAL: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "service_keys" not in present:
        op.create_table(
            "service_keys",
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("fingerprint", sa.Text, nullable=False),
            sa.Column("target", sa.Text),
            sa.Column("created_at", REAL, nullable=False),
        )
    if "service_batches" not in present:
        op.create_table(
            "service_batches",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("node", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("total", sa.Integer, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("finished_at", sa.Text),
            sa.Column("notify_url", sa.Text),
            sa.Column("items", sa.Text, nullable=False),
        )
    if "service_notifications" not in present:
        op.create_table(
            "service_notifications",
            sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("url", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("last_error", sa.Text),
            sa.Column("at", sa.Text, nullable=False),
        )
        op.create_index("service_notifications_by_target", "service_notifications", ["target"])


def downgrade() -> None:
    op.drop_table("service_notifications")
    op.drop_table("service_batches")
    op.drop_table("service_keys")
