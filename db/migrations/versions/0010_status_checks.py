"""status checks: the database refuses a run status or a step outcome outside the vocabulary

A run's status is one of active, blocked, completed, abandoned and a step record's outcome one
of done, skipped, blocked (conversations/state.py RunStatus and StepOutcome); CHECK
constraints `ck_flow_runs_status` and `ck_step_records_outcome` now say so in the schema.

Existing data: step records with outcome 'abandoned' were written only by the synthetic seed
before it was fixed (commit a3b4631: the real /cancel writes no record, and no report counts
such a record); they are deleted, as that fix did for new seeds. Any other value outside the
vocabulary stops the upgrade with the rows to look at, rather than guessing what it meant.

SQLite cannot add a CHECK constraint to a table: batch mode copies each table (its indexes,
partial ones included, are made again from the models' definitions below).

Revision ID: 0010_status_checks
Revises: 0009_invite_attempts
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_status_checks'
down_revision: str | None = '0009_invite_attempts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here (a migration must not change when the code does).
RUN_STATUSES = ('active', 'blocked', 'completed', 'abandoned')
STEP_OUTCOMES = ('done', 'skipped', 'blocked')
LEGACY_OUTCOMES = ('abandoned',)  # the old synthetic seed's /cancel records


def _listed(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _refuse_unknown(table: str, column: str, allowed: Sequence[str]) -> None:
    rows = op.get_bind().execute(sa.text(
        f"SELECT {column}, count(*) FROM {table} WHERE {column} IS NULL OR {column} NOT IN "
        f"({_listed(allowed)}) GROUP BY {column}"
    )).all()
    if rows:
        found = ", ".join(f"{value!r} ({n} rows)" for value, n in rows)
        raise RuntimeError(
            f"{table}.{column} holds values outside {', '.join(allowed)}: {found}; "
            "correct them before upgrading (see db/migrations/versions/0010_status_checks.py)"
        )


def upgrade() -> None:
    op.execute(f"DELETE FROM step_records WHERE outcome IN ({_listed(LEGACY_OUTCOMES)})")
    _refuse_unknown('flow_runs', 'status', RUN_STATUSES)
    _refuse_unknown('step_records', 'outcome', STEP_OUTCOMES)
    with op.batch_alter_table('flow_runs') as batch:
        batch.create_check_constraint(op.f('ck_flow_runs_status'), f"status IN ({_listed(RUN_STATUSES)})")
    with op.batch_alter_table('step_records') as batch:
        batch.create_check_constraint(op.f('ck_step_records_outcome'), f"outcome IN ({_listed(STEP_OUTCOMES)})")


def downgrade() -> None:
    with op.batch_alter_table('step_records') as batch:
        batch.drop_constraint(op.f('ck_step_records_outcome'), type_='check')
    with op.batch_alter_table('flow_runs') as batch:
        batch.drop_constraint(op.f('ck_flow_runs_status'), type_='check')
