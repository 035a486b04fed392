"""follow-ups: scheduled jobs, announcements, reminder opt-out, the pause threshold per area

- `scheduled_jobs`: due work (a come-back reminder, an escalation, a digest, an announcement
  waiting for the end of quiet hours). `key` is unique: scheduling the same thing twice (a
  redelivered update, two workers planning the Monday digest) keeps one row. A worker claims
  due rows with a lease (`claimed_until`); a worker killed with claimed rows leaves them to
  be claimed again after the lease (handlers/follow_up_runner.py).
- `announcements`: what a leader sent with /announce, to whom, how many recipients.
- `users.reminders_off`: /reminders off (announcements from leaders still arrive).
- `notices.origin`: what made a notice ("announcement:12", "come_back"), to count an
  announcement's delivered / failed notices.
- `areas.paused_after_days`: a run untouched this many days reminds its volunteer (default 3).
- `flow_runs.paused_reminded_at`: when that reminder was last sent (then weekly).

Revision ID: 0012_follow_ups
Revises: 0011_notice_messages
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision: str = '0012_follow_ups'
down_revision: str | None = '0011_notice_messages'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'scheduled_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('area_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('due_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('claimed_until', UTCDateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_scheduled_jobs_user_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_scheduled_jobs_area_id_areas')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_jobs')),
        sa.UniqueConstraint('key', name=op.f('uq_scheduled_jobs_key')),
    )
    op.create_index('ix_scheduled_jobs_due', 'scheduled_jobs', ['state', 'due_at'], unique=False)
    op.create_table(
        'announcements',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('area_id', sa.Integer(), nullable=False),
        sa.Column('audience', sa.String(length=20), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('send_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_announcements_area_id_areas')),
        sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_announcements_author_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_announcements')),
    )
    op.create_index(op.f('ix_announcements_area_id'), 'announcements', ['area_id'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('reminders_off', sa.Boolean(), nullable=False, server_default=sa.text('false')))
    with op.batch_alter_table('notices') as batch:
        batch.add_column(sa.Column('origin', sa.String(length=40), nullable=True))
    op.create_index('ix_notices_origin', 'notices', ['origin'], unique=False)
    with op.batch_alter_table('areas') as batch:
        batch.add_column(sa.Column('paused_after_days', sa.Integer(), nullable=False, server_default='3'))
    with op.batch_alter_table('flow_runs') as batch:
        batch.add_column(sa.Column('paused_reminded_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flow_runs') as batch:
        batch.drop_column('paused_reminded_at')
    with op.batch_alter_table('areas') as batch:
        batch.drop_column('paused_after_days')
    op.drop_index('ix_notices_origin', table_name='notices')
    with op.batch_alter_table('notices') as batch:
        batch.drop_column('origin')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('reminders_off')
    op.drop_index(op.f('ix_announcements_area_id'), table_name='announcements')
    op.drop_table('announcements')
    op.drop_index('ix_scheduled_jobs_due', table_name='scheduled_jobs')
    op.drop_table('scheduled_jobs')
