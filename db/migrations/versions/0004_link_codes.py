"""link codes: one user behind a Telegram and a Zalo account

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('link_codes',
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_link_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_link_codes'))
    )
    op.create_index(op.f('ix_link_codes_user_id'), 'link_codes', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_link_codes_user_id'), table_name='link_codes')
    op.drop_table('link_codes')
