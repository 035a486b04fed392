"""households can be archived by a leader: kept, restorable, out of stats and lists

Revision ID: 0007_household_archive
Revises: 0006
Create Date: 2026-12-04 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0007_household_archive'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('households', sa.Column('archived_at', db.types.UTCDateTime(timezone=True), nullable=True))
    op.drop_index('ix_households_area_reached', table_name='households')
    op.create_index('ix_households_area_reached', 'households',
                    ['area_id', 'last_step_at', 'volunteer_id', 'archived_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_households_area_reached', table_name='households')
    op.create_index('ix_households_area_reached', 'households', ['area_id', 'last_step_at', 'volunteer_id'],
                    unique=False)
    with op.batch_alter_table('households') as batch:
        batch.drop_column('archived_at')
