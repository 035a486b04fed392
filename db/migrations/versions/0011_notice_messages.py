"""notice messages: where each visit request's notice landed, so that taking it edits them all

A table `notice_messages` (key, channel, chat id, the platform's message id, created_at),
indexed by key ("request:<id>"). Rows are written after a notice is sent; nothing existing
is changed.

Revision ID: 0011_notice_messages
Revises: 0010_status_checks
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0011_notice_messages'
down_revision: str | None = '0010_status_checks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notice_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('chat_id', sa.String(length=100), nullable=False),
    sa.Column('message_ref', sa.String(length=40), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_messages'))
    )
    op.create_index('ix_notice_messages_key', 'notice_messages', ['key'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notice_messages_key', table_name='notice_messages')
    op.drop_table('notice_messages')
