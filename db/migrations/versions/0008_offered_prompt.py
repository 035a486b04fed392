"""offered prompt: the question a chat's options came with, to ask it again

Revision ID: 0008_offered_prompt
Revises: 0007_household_archive
Create Date: 2026-12-04 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_offered_prompt'
down_revision: str | None = '0007_household_archive'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('offered_prompt', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('offered_prompt')
