"""invite attempts: failed invite codes, counted for the lockout and the global ceiling

Revision ID: 0009_invite_attempts
Revises: 0008_offered_prompt
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0009_invite_attempts'
down_revision: str | None = '0008_offered_prompt'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('invite_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_invite_attempts_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invite_attempts'))
    )
    op.create_index('ix_invite_attempts_user_at', 'invite_attempts', ['user_id', 'at'], unique=False)
    op.create_index('ix_invite_attempts_outcome_at', 'invite_attempts', ['outcome', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_invite_attempts_outcome_at', table_name='invite_attempts')
    op.drop_index('ix_invite_attempts_user_at', table_name='invite_attempts')
    op.drop_table('invite_attempts')
