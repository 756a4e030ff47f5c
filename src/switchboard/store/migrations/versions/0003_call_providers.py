"""Every provider that served a call: ``calls.providers`` (a failover adds one).

Existing records served by one provider get ``[provider]``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite alters by copying the table
        batch.add_column(sa.Column("providers", sa.JSON(), nullable=True))
    calls = sa.table(
        "calls", sa.column("provider", sa.String(32)), sa.column("providers", sa.JSON())
    )
    rows = op.get_bind().execute(
        sa.select(calls.c.provider).where(calls.c.provider.is_not(None)).distinct()
    )
    for (provider,) in rows.all():  # one update per provider name: a handful at most
        op.execute(calls.update().where(calls.c.provider == provider).values(providers=[provider]))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("providers")
