"""households.last_step_at and an index for block reasons, for /stats at city scale

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('households') as batch:
        batch.add_column(sa.Column('last_step_at', db.types.UTCDateTime(timezone=True), nullable=True))
    # Households reached before this column existed: the time of their latest step record.
    op.execute(
        "UPDATE households SET last_step_at = ("
        " SELECT max(s.recorded_at) FROM step_records s JOIN flow_runs r ON r.id = s.run_id"
        " WHERE r.household_id = households.id)"
    )
    op.create_index('ix_step_records_outcome_recorded_at', 'step_records', ['outcome', 'recorded_at'])


def downgrade() -> None:
    op.drop_index('ix_step_records_outcome_recorded_at', table_name='step_records')
    with op.batch_alter_table('households') as batch:
        batch.drop_column('last_step_at')
