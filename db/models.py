"""The domain model of design.md section 2.

Areas form a tree addressed by dotted codes (`danang.hai-van.ta-lang`); a role held in an area
covers every area whose code starts with it. Step records are append-only and unique per
(run, step, attempt) so that a redelivered update can never count a step twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conversations.state import RunStatus, StepOutcome
from db.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

def one_of(column: str, values: type[RunStatus] | type[StepOutcome]) -> CheckConstraint:
    """The database refuses any value of `column` outside the enum (migration 0010)."""
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Area(Base):
    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    official_code: Mapped[str | None] = mapped_column(String(20))
    target_households: Mapped[int | None] = mapped_column(Integer)
    target_digital_ready: Mapped[int | None] = mapped_column(Integer)
    # A run untouched this many days reminds its volunteer (handlers/follow_ups.py).
    paused_after_days: Mapped[int] = mapped_column(Integer, default=3, server_default="3")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]
    # /reminders off: no follow-ups (leaders' announcements still reach staff).
    reminders_off: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Identity(Base):
    """One account of a user on one channel (Telegram user id, Zalo user id, console name)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "area_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    granted_at: Mapped[datetime]
    invite_code: Mapped[str | None] = mapped_column(String(40))


class Invite(Base):
    __tablename__ = "invites"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class InviteAttempt(Base):
    """An invite code that did not grant a role: wrong (unknown, used or expired) or not even
    looked at (the sender or everyone was held off). Counted for the lockout and the global
    ceiling (db/repo/invites.py); each one is also in the audit log."""

    __tablename__ = "invite_attempts"
    __table_args__ = (
        Index("ix_invite_attempts_user_at", "user_id", "at"),
        Index("ix_invite_attempts_outcome_at", "outcome", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(12))  # wrong | held_off | ceiling


class LinkCode(Base):
    """A one-time code that joins another channel's account to this user (/link)."""

    __tablename__ = "link_codes"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Household(Base):
    __tablename__ = "households"
    __table_args__ = (
        # /stats reads households per area from this index alone (no table rows); archived
        # households are left out by the last column.
        Index("ix_households_area_reached", "area_id", "last_step_at", "volunteer_id", "archived_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    head_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(20))
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # When a step was last recorded for this household (None: never reached). Kept with the
    # step records in the same transaction so that "households reached" is a count, not a
    # search through millions of step records.
    last_step_at: Mapped[datetime | None]
    # Archived by a leader (a junk or duplicate record): kept with its history, restorable, but
    # out of the stats and the lists. Who archived it and why is in the audit log.
    archived_at: Mapped[datetime | None]


class Resident(Base):
    """A member of a household: only what serves (no full citizen ID, ever)."""

    __tablename__ = "residents"
    __table_args__ = (
        # "Households with a digital-ready member": one probe per household into a small index.
        Index("ix_residents_digital_ready", "household_id",
              sqlite_where=text("digital_ready = 1"), postgresql_where=text("digital_ready")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    citizen_id_masked: Mapped[str | None] = mapped_column(String(20))
    citizen_id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    digital_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class FlowRun(Base):
    __tablename__ = "flow_runs"
    __table_args__ = (
        one_of("status", RunStatus),
        Index("ix_flow_runs_household_status", "household_id", "status"),
        Index("ix_flow_runs_flow_status", "flow_id", "status"),
        # Everything /stats counts about runs, per area, from this index alone.
        Index("ix_flow_runs_area_report", "area_id", "flow_id", "status", "started_at", "finished_at",
              "updated_at", "volunteer_id"),
        # Completed per week (the chart): only the weeks asked for are read.
        Index("ix_flow_runs_completed", "finished_at", "area_id", "status",
              sqlite_where=text(f"status = '{RunStatus.COMPLETED}'"),
              postgresql_where=text(f"status = '{RunStatus.COMPLETED}'")),
        # Volunteers active in the last 7 days, residents supported in a period: recent runs only.
        Index("ix_flow_runs_recent", "updated_at", "area_id", "volunteer_id", "resident_id"),
        # Residents supported, all time: distinct residents read in order, no sorting.
        Index("ix_flow_runs_resident", "resident_id", "area_id",
              sqlite_where=text("resident_id IS NOT NULL"), postgresql_where=text("resident_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(60))
    flow_version: Mapped[int] = mapped_column(Integer)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    # The household's area, copied when the run starts (and rewritten with the household's when
    # a volunteer corrects its village): reports count runs per area without joining two
    # million rows to households.
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=RunStatus.ACTIVE.value)
    current_step: Mapped[str | None] = mapped_column(String(60))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Optimistic locking: every UPDATE of a run (the ORM's, and the flow step's own in db/repo/
    # flows.py write_run_state) says `WHERE version = <as loaded>` and counts it up, so a write
    # based on a stale copy of the run (another transaction changed it since) updates nothing and
    # raises StaleDataError instead of overwriting. A run moved on by a button or an answer is
    # read FOR UPDATE on PostgreSQL (db/repo/flows.py load_run_for_step); on
    # SQLite, and when starting a procedure resumes the open run it finds, no lock is taken, and
    # one household's run can be moved on from two chats (linked Telegram and Zalo accounts).
    version: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # When its volunteer was last reminded that it is paused (then weekly while untouched).
    paused_reminded_at: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": version}


class StepRecord(Base):
    """Append-only: what happened at one step of one run."""

    __tablename__ = "step_records"
    __table_args__ = (
        UniqueConstraint("run_id", "step_id", "attempt"),
        one_of("outcome", StepOutcome),
        Index("ix_step_records_recorded_at", "recorded_at"),
        # Reports read these indexes alone: drop-off per step, and the reasons of Problems.
        Index("ix_step_records_drop_off", "flow_id", "area_id", "step_id", "outcome", "run_id"),
        Index("ix_step_records_blocked", "area_id", "flow_id", "reason", "recorded_at",
              sqlite_where=text(f"outcome = '{StepOutcome.BLOCKED}'"),
              postgresql_where=text(f"outcome = '{StepOutcome.BLOCKED}'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("flow_runs.id"), index=True)
    # The run's procedure and area, copied (the area changes only when a household's village is
    # corrected): a city's reports aggregate two million records per area and procedure without
    # joining them to runs.
    flow_id: Mapped[str] = mapped_column(String(60))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    step_id: Mapped[str] = mapped_column(String(60))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    outcome: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(300))
    value: Mapped[str | None] = mapped_column(String(300))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime]
    source_update: Mapped[str | None] = mapped_column(String(80))


class Conversation(Base):
    """Per (channel, chat) state. Updates of one chat take turns (the row is locked FOR UPDATE
    on PostgreSQL, SQLite has one writer), and `save_conversation` also writes only over the
    `version` it loaded (else StaleDataError): a lost update cannot pass unnoticed."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    offered: Mapped[list[Any]] = mapped_column(default=list)
    # The question that offered `offered`, so that a wrong answer gets it again with its options.
    offered_prompt: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]


class ProcessedUpdate(Base):
    """A platform update handled once, with the replies it produced (a transactional outbox)."""

    __tablename__ = "processed_updates"
    __table_args__ = (
        # Flood control counts a chat's recent updates from this index alone.
        Index("ix_processed_updates_chat_recent", "channel", "chat_id", "processed_at"),
    )

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime] = mapped_column(index=True)
    replies: Mapped[list[Any] | None] = mapped_column(JSON)
    send_lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class Notice(Base):
    """A reply addressed to a chat on another channel than the update that produced it (a Zalo
    resident's visit request to a Telegram volunteer): written in the update's transaction and
    sent by a worker of that channel (bot/channels/notice_relay.py)."""

    __tablename__ = "notices"
    __table_args__ = (
        Index("ix_notices_pending", "channel", "sent_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    send_lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # What made it, when counted later: "announcement:<id>", a follow-up's kind; None: a reply.
    origin: Mapped[str | None] = mapped_column(String(40), index=True)


class ScheduledJob(Base):
    """Due work (conversations/follow_up_kinds.py JobKind): written with the event that caused
    it, claimed with a lease by whichever worker is up, done once (handlers/follow_up_runner.py).
    `key` is unique, so scheduling the same thing twice keeps one row."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(120), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(12), default="pending")
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Announcement(Base):
    """A leader's /announce: its delivered / failed counts are its notices' (origin)."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    audience: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    send_at: Mapped[datetime]
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class NoticeMessage(Base):
    """A message the bot sent that a later event edits: where each visit request's notice landed
    (`key` "request:<id>"; the platform's message id per chat), so that once a volunteer takes
    the request every copy reads "✅ taken by …" and no Take button stays live. Recorded by the
    channel after sending (only platforms that can edit give an id)."""

    __tablename__ = "notice_messages"
    __table_args__ = (
        Index("ix_notice_messages_key", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    message_ref: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]


class SharedFile(Base):
    """A file a platform fetches from the bot by URL (Zalo takes photos only so): kept in the
    database, so any worker on any machine can serve it, until `expires_at`."""

    __tablename__ = "shared_files"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(40))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SupportRequest(Base):
    __tablename__ = "support_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    question: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(12), default="open")
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    taken_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_note: Mapped[str | None] = mapped_column(Text)


class FaqMiss(Base):
    __tablename__ = "faq_misses"

    id: Mapped[int] = mapped_column(primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text, index=True)
    locale: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(20))
    faq_id: Mapped[str | None] = mapped_column(String(60))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    created_at: Mapped[datetime]


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FlowVersion(Base):
    """The YAML of every flow version ever started, so runs pinned to it survive file edits."""

    __tablename__ = "flow_versions"

    flow_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime]
