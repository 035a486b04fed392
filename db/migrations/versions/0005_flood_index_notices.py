"""flood control index on processed_updates; notices to chats on another channel

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 08:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_processed_updates_chat_recent', 'processed_updates',
                    ['channel', 'chat_id', 'processed_at'], unique=False)
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('chat_id', sa.String(length=100), nullable=False),
    sa.Column('reply', sa.JSON(), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('send_lease_until', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices'))
    )
    op.create_index('ix_notices_pending', 'notices', ['channel', 'sent_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notices_pending', table_name='notices')
    op.drop_table('notices')
    op.drop_index('ix_processed_updates_chat_recent', table_name='processed_updates')
