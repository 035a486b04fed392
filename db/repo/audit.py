"""The audit log's one writer: who did what to which target, and the details.

Every entry of `audit_log` is added here, by the handlers (refusals, household and member
changes, abandoned runs, exports) and the repositories (targets, invites, links), so each row
has the same shape: `who` is the acting user's id (None for the command line), `action` a
dotted name (`household.reassign`), `target` what it touched (`household:HV-TL-001`, cut to
the column's 200 characters) and `details` a small JSON object. The entry is added to the
caller's session, so it commits or rolls back with the change it records.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditLog

TARGET_LENGTH = 200  # audit_log.target


def audit(session: AsyncSession, at: datetime, who: int | None, action: str, target: str,
          details: Mapping[str, Any] | None = None) -> None:
    """Add one audit entry to the session's transaction."""
    session.add(AuditLog(at=at, actor_id=who, action=action, target=target[:TARGET_LENGTH],
                         details=dict(details) if details else {}))
