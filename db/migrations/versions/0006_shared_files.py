"""shared files: charts Zalo fetches by URL, servable by any worker

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 10:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('shared_files',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('media_type', sa.String(length=40), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_shared_files'))
    )
    op.create_index(op.f('ix_shared_files_expires_at'), 'shared_files', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_shared_files_expires_at'), table_name='shared_files')
    op.drop_table('shared_files')
