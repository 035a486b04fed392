"""What /stats needs at city scale: households.last_step_at, the area (and procedure) copied
onto runs and step records, and indexes that answer the reports alone

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
    op.drop_index('ix_households_area_id', table_name='households')
    op.create_index('ix_households_area_reached', 'households', ['area_id', 'last_step_at', 'volunteer_id'])

    with op.batch_alter_table('flow_runs') as batch:
        batch.add_column(sa.Column('area_id', sa.Integer(), nullable=True))
    op.execute("UPDATE flow_runs SET area_id = (SELECT h.area_id FROM households h WHERE h.id = flow_runs.household_id)")
    with op.batch_alter_table('flow_runs') as batch:
        batch.alter_column('area_id', existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(batch.f('fk_flow_runs_area_id_areas'), 'areas', ['area_id'], ['id'])
    op.create_index('ix_flow_runs_area_report', 'flow_runs',
                    ['area_id', 'flow_id', 'status', 'started_at', 'finished_at', 'updated_at',
                     'volunteer_id'])
    op.create_index('ix_flow_runs_recent', 'flow_runs', ['updated_at', 'area_id', 'volunteer_id', 'resident_id'])
    op.create_index('ix_flow_runs_resident', 'flow_runs', ['resident_id', 'area_id'],
                    sqlite_where=sa.text('resident_id IS NOT NULL'),
                    postgresql_where=sa.text('resident_id IS NOT NULL'))
    op.create_index('ix_flow_runs_completed', 'flow_runs', ['finished_at', 'area_id', 'status'],
                    sqlite_where=sa.text("status = 'completed'"),
                    postgresql_where=sa.text("status = 'completed'"))

    op.create_index('ix_residents_digital_ready', 'residents', ['household_id'],
                    sqlite_where=sa.text('digital_ready = 1'), postgresql_where=sa.text('digital_ready'))

    with op.batch_alter_table('step_records') as batch:
        batch.add_column(sa.Column('flow_id', sa.String(length=60), nullable=True))
        batch.add_column(sa.Column('area_id', sa.Integer(), nullable=True))
    op.execute("UPDATE step_records SET"
               " flow_id = (SELECT r.flow_id FROM flow_runs r WHERE r.id = step_records.run_id),"
               " area_id = (SELECT r.area_id FROM flow_runs r WHERE r.id = step_records.run_id)")
    with op.batch_alter_table('step_records') as batch:
        batch.alter_column('flow_id', existing_type=sa.String(length=60), nullable=False)
        batch.alter_column('area_id', existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(batch.f('fk_step_records_area_id_areas'), 'areas', ['area_id'], ['id'])
    op.create_index('ix_step_records_drop_off', 'step_records',
                    ['flow_id', 'area_id', 'step_id', 'outcome', 'run_id'])
    op.create_index('ix_step_records_blocked', 'step_records', ['area_id', 'flow_id', 'reason', 'recorded_at'],
                    sqlite_where=sa.text("outcome = 'blocked'"),
                    postgresql_where=sa.text("outcome = 'blocked'"))


def downgrade() -> None:
    op.drop_index('ix_step_records_blocked', table_name='step_records')
    op.drop_index('ix_step_records_drop_off', table_name='step_records')
    with op.batch_alter_table('step_records') as batch:
        batch.drop_constraint('fk_step_records_area_id_areas', type_='foreignkey')
        batch.drop_column('area_id')
        batch.drop_column('flow_id')
    op.drop_index('ix_residents_digital_ready', table_name='residents')
    op.drop_index('ix_flow_runs_resident', table_name='flow_runs')
    op.drop_index('ix_flow_runs_recent', table_name='flow_runs')
    op.drop_index('ix_flow_runs_completed', table_name='flow_runs')
    op.drop_index('ix_flow_runs_area_report', table_name='flow_runs')
    with op.batch_alter_table('flow_runs') as batch:
        batch.drop_constraint('fk_flow_runs_area_id_areas', type_='foreignkey')
        batch.drop_column('area_id')
    op.drop_index('ix_households_area_reached', table_name='households')
    op.create_index('ix_households_area_id', 'households', ['area_id'])
    with op.batch_alter_table('households') as batch:
        batch.drop_column('last_step_at')
