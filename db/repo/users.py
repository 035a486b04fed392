"""Users, their channel identities, conversations and roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    CursorResult,
    Integer,
    Table,
    and_,
    bindparam,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from db import fast_sql
from db.models import Area, Conversation, Identity, Membership, ProcessedUpdate, User
from db.types import UTCDateTime

ROLE_RANK = {"resident": 0, "volunteer": 1, "leader": 2, "admin": 3}


@dataclass(frozen=True)
class RoleGrant:
    role: str
    area_id: int
    area_code: str
    area_name: str

    def covers(self, area_code: str) -> bool:
        return area_code == self.area_code or area_code.startswith(self.area_code + ".")


@dataclass
class Loaded:
    """What one update needs to know before its handler runs, read in one statement."""

    processed: bool  # this update was handled before (a redelivery)
    user: User | None  # None: nobody has written from this account yet
    conversation: Conversation | None  # None: this chat has no conversation yet (not in the session)
    grants: list[RoleGrant]
    # Updates of this chat processed since `since` (flood control), counted up to `count_up_to`.
    recent_updates: int = 0


# The update path's statements are built once, with bound parameters, from table columns rather
# than entities: building a statement (and its cache key) on every update, or loading entities
# through the ORM, costs more than SQLite takes to run the statement.
_users, _identities, _conversations, _memberships, _areas, _processed = (
    cast(Table, model.__table__)
    for model in (User, Identity, Conversation, Membership, Area, ProcessedUpdate)
)
_LOCK_CONVERSATION = (
    select(_conversations.c.id)
    .where(_conversations.c.channel == bindparam("channel"),
           _conversations.c.chat_id == bindparam("chat_id"))
    .with_for_update()
)
# One row even when nothing else matches, so that the dedupe answer always comes back.
_ONE_ROW = select(literal(1).label("one")).subquery("one_row")
# The chat's updates processed since :since, read from ix_processed_updates_chat_recent alone and
# at most :count_up_to of them, so a chat that floods costs no more to count than one at the limit.
_RECENT = (
    select(literal(1).label("one"))
    .where(_processed.c.channel == bindparam("channel"),
           _processed.c.chat_id == bindparam("chat_id"),
           _processed.c.processed_at > bindparam("since"))
    .limit(bindparam("count_up_to", type_=Integer))
    .subquery("recent")
)
_LOAD = (
    select(
        select(literal(True))
        .where(_processed.c.channel == bindparam("channel"),
               _processed.c.update_id == bindparam("update_id"))
        .scalar_subquery(),
        select(func.count()).select_from(_RECENT).scalar_subquery(),
        _users.c.id, _users.c.display_name, _users.c.locale, _users.c.created_at,
        _conversations.c.id, _conversations.c.user_id, _conversations.c.state,
        _conversations.c.offered, _conversations.c.offered_prompt, _conversations.c.version,
        _conversations.c.updated_at, _memberships.c.role, _areas.c.id, _areas.c.code, _areas.c.name,
    )
    .select_from(_ONE_ROW)
    .outerjoin(_identities, and_(_identities.c.channel == bindparam("channel"),
                                 _identities.c.external_id == bindparam("sender_id")))
    .outerjoin(_users, _users.c.id == _identities.c.user_id)
    .outerjoin(_conversations, and_(_conversations.c.channel == bindparam("channel"),
                                    _conversations.c.chat_id == bindparam("chat_id")))
    .outerjoin(_memberships, _memberships.c.user_id == _users.c.id)
    .outerjoin(_areas, _areas.c.id == _memberships.c.area_id)
    .order_by(_areas.c.code, _memberships.c.role)
)
_INSERT_CONVERSATION = insert(_conversations)
_INSERT_USER = insert(_users)
_INSERT_IDENTITY = insert(_identities)
# The same three INSERTs with their columns named, for the driver-level path (db/fast_sql.py).
_NEW_CONVERSATION = insert(_conversations).values(
    channel=bindparam("channel"), chat_id=bindparam("chat_id"), user_id=bindparam("user_id"),
    state=bindparam("state", type_=_conversations.c.state.type),
    offered=bindparam("offered", type_=_conversations.c.offered.type),
    version=bindparam("version"), updated_at=bindparam("updated_at", type_=UTCDateTime()),
).returning(_conversations.c.id)
_NEW_USER = insert(_users).values(
    display_name=bindparam("display_name"), created_at=bindparam("created_at", type_=UTCDateTime()),
    locale=bindparam("locale", type_=_users.c.locale.type),
).returning(_users.c.id)
_NEW_IDENTITY = insert(_identities).values(
    user_id=bindparam("user_id"), channel=bindparam("channel"), external_id=bindparam("external_id"),
    created_at=bindparam("created_at", type_=UTCDateTime()),
)
# PostgreSQL: a first message's user, identity and conversation in one statement (SQLite has no
# INSERT inside WITH: three statements there).
_FIRST_CONTACT_PG = text("""
WITH u AS (
    INSERT INTO users (display_name, created_at, locale, reminders_off)
    VALUES (:display_name, :created_at, :locale, false) RETURNING id
), i AS (
    INSERT INTO identities (user_id, channel, external_id, created_at)
    VALUES ((SELECT id FROM u), :channel, :external_id, :created_at)
), c AS (
    INSERT INTO conversations (channel, chat_id, user_id, state, offered, version, updated_at)
    VALUES (:channel, :chat_id, (SELECT id FROM u), :state, :offered, 1, :created_at) RETURNING id
)
SELECT (SELECT id FROM u), (SELECT id FROM c)
""").bindparams(bindparam("created_at", type_=UTCDateTime()), bindparam("state", type_=JSON()),
                bindparam("offered", type_=JSON()))
_SAVE_CONVERSATION = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"),
           _conversations.c.version == bindparam("loaded_version"))
    .values(
        state=bindparam("new_state", type_=_conversations.c.state.type),
        offered=bindparam("new_offered", type_=_conversations.c.offered.type),
        offered_prompt=bindparam("new_offered_prompt", type_=_conversations.c.offered_prompt.type),
        updated_at=bindparam("new_updated_at", type_=_conversations.c.updated_at.type),
        version=_conversations.c.version + 1,
    )
)


_E = TypeVar("_E")


def _filled(model: type[_E], **values: Any) -> _E:
    """An entity with these attribute values, filled in as the ORM's loading does: without the
    constructor's per-attribute events, which cost more than the statement that read them."""
    entity = cast(_E, inspect(model).class_manager.new_instance())
    entity.__dict__.update(values)
    return entity


def _as_loaded(session: AsyncSession, entity: _E) -> _E:
    """`entity` (filled in from a row) put in the session as if loaded there: changes to it (a
    new locale) are flushed as usual."""
    make_transient_to_detached(entity)
    session.add(entity)
    return entity


async def load_for_update(
    session: AsyncSession, *, channel: str, update_id: str, sender_id: str, chat_id: str, lock: bool,
    since: datetime | None = None, count_up_to: int = 1000,
) -> Loaded:
    """Whether the update was processed, the sender's user and roles, the chat's conversation and
    how many updates of the chat were processed after `since` (up to `count_up_to`; 0 without
    `since`): one statement (one row per role grant, at least one row). With `lock` (PostgreSQL)
    the conversation row is first locked FOR UPDATE, so that updates of one chat take turns and
    this read (and count) sees the previous one's commit, whichever worker made it; SQLite
    serializes writers anyway.

    The user is a session object as usual. The conversation is not in the session: the update
    path writes it back with `save_conversation`, one UPDATE instead of the unit of work."""
    params = {"channel": channel, "update_id": update_id, "sender_id": sender_id, "chat_id": chat_id,
              "since": since, "count_up_to": count_up_to}
    rows: Any
    if (direct := fast_sql.direct(session)) is not None:
        if lock:
            await direct.run(_LOCK_CONVERSATION, params)
        rows = await direct.fetch(_LOAD, params)
    else:
        if lock:
            await session.execute(_LOCK_CONVERSATION, params)
        rows = (await session.execute(_LOAD, params)).all()
    (processed, recent, user_id, display_name, locale, created_at,
     conversation_id, owner_id, state, offered, prompt, version, updated_at) = rows[0][:13]
    user = None
    if user_id is not None:
        # Made from the row and put in the session as if loaded there: changes to it (a new
        # locale) are flushed as usual.
        user = _as_loaded(session, _filled(User, id=user_id, display_name=display_name, locale=locale,
                                           created_at=created_at))
    conversation = None
    if conversation_id is not None:
        conversation = _filled(
            Conversation, id=conversation_id, channel=channel, chat_id=chat_id, user_id=owner_id,
            state=state or {}, offered=offered or [], offered_prompt=prompt, version=version,
            updated_at=updated_at,
        )
    return Loaded(
        processed=bool(processed),
        user=user,
        conversation=conversation,
        grants=[RoleGrant(role, area_id, code, name)
                for *_, role, area_id, code, name in rows if role is not None],
        recent_updates=int(recent or 0),
    )


async def save_conversation(session: AsyncSession, conversation: Conversation, now: datetime) -> None:
    """Writes the state and options of a conversation from `load_for_update` or `new_conversation`
    over the version it was loaded at, and counts its version up; StaleDataError (nothing
    written) if another transaction wrote it since."""
    params = conversation_params(conversation, now)
    if (direct := fast_sql.direct(session)) is not None:
        count = await direct.run(_SAVE_CONVERSATION, params)
    else:  # DML results are CursorResults (execute is typed for any statement)
        count = cast(CursorResult[Any], await session.execute(_SAVE_CONVERSATION, params)).rowcount
    conversation_saved(conversation, count, now)


def conversation_params(conversation: Conversation, now: datetime) -> dict[str, Any]:
    """The parameters of the conversation's UPDATE over its loaded version."""
    return {"conversation_id": conversation.id, "new_state": conversation.state or {},
            "new_offered": conversation.offered or [], "new_offered_prompt": conversation.offered_prompt,
            "new_updated_at": now, "loaded_version": conversation.version}


def conversation_saved(conversation: Conversation, count: int, now: datetime) -> None:
    """After the conversation's UPDATE matched `count` rows: StaleDataError unless one."""
    if count != 1:
        raise StaleDataError(f"conversation {conversation.id} changed since version {conversation.version}")
    conversation.version = (conversation.version or 0) + 1
    conversation.updated_at = now


async def in_dialog(session: AsyncSession, channel: str, chat_id: str) -> bool:
    """Whether the chat is in a dialog (a procedure's step, a form being filled)."""
    state = await session.scalar(select(Conversation.state).where(
        Conversation.channel == channel, Conversation.chat_id == chat_id))
    return isinstance(state, dict) and bool(state.get("dialog"))


async def chat_locale(session: AsyncSession, channel: str, chat_id: str) -> str | None:
    """The language set by the user behind a chat (None: not set, or no such user)."""
    return await session.scalar(select(User.locale).join(Identity, Identity.user_id == User.id)
                                .where(Identity.channel == channel, Identity.external_id == chat_id))


async def offer_in_chat(
    session: AsyncSession, channel: str, chat_id: str, offered: list[list[str]], now: datetime,
    prompt: str | None = None,
) -> bool:
    """Make `offered` the current options of another chat (a notice sent there, `prompt` its
    text), if it exists; returns whether it does."""
    result = cast(CursorResult[Any], await session.execute(
        update(Conversation)
        .where(Conversation.channel == channel, Conversation.chat_id == chat_id)
        .values(offered=offered, offered_prompt=prompt, updated_at=now, version=Conversation.version + 1)
    ))
    return bool(result.rowcount)


async def new_conversation(
    session: AsyncSession, channel: str, chat_id: str, user_id: int, now: datetime
) -> Conversation:
    """The conversation of a chat seen for the first time (inserted now; not in the session, see
    `load_for_update`)."""
    row = {"channel": channel, "chat_id": chat_id, "user_id": user_id, "state": {}, "offered": [],
           "version": 1, "updated_at": now}
    if (direct := fast_sql.direct(session)) is not None:
        conversation_id = (await direct.fetch(_NEW_CONVERSATION, row))[0][0]
    else:
        result = cast(CursorResult[Any], await session.execute(_INSERT_CONVERSATION, row))
        key = result.inserted_primary_key
        assert key is not None  # a single-row INSERT
        conversation_id = key[0]
    return _conversation(conversation_id, channel, chat_id, user_id, now)


def _conversation(
    conversation_id: int, channel: str, chat_id: str, user_id: int, now: datetime
) -> Conversation:
    return _filled(Conversation, id=conversation_id, channel=channel, chat_id=chat_id, user_id=user_id,
                   state={}, offered=[], offered_prompt=None, version=1, updated_at=now)


async def create_user(
    session: AsyncSession, channel: str, external_id: str, display_name: str, now: datetime,
    locale: str | None = None,
) -> User:
    """A new resident behind a channel account seen for the first time (`locale`: the language
    their app is set to, if GoCua has it)."""
    name = _user_name(display_name, external_id)
    # Two plain INSERTs (issue 19: a burst of first messages), not two unit-of-work flushes; the
    # user is put in the session as if loaded, so a change to it (a locale) is flushed as usual.
    user = {"display_name": name, "created_at": now, "locale": locale}
    identity = {"channel": channel, "external_id": external_id, "created_at": now}
    if (direct := fast_sql.direct(session)) is not None:
        user_id = (await direct.fetch(_NEW_USER, user))[0][0]
        await direct.run(_NEW_IDENTITY, {**identity, "user_id": user_id})
    else:
        result = cast(CursorResult[Any], await session.execute(_INSERT_USER, user))
        key = result.inserted_primary_key
        assert key is not None  # a single-row INSERT
        user_id = key[0]
        await session.execute(_INSERT_IDENTITY, {**identity, "user_id": user_id})
    return _new_user(session, user_id, name, locale, now)


def _user_name(display_name: str | None, external_id: str) -> str:
    return (display_name or external_id)[:200]


def _new_user(session: AsyncSession, user_id: int, name: str, locale: str | None, now: datetime) -> User:
    """The user just inserted, in the session as if loaded (a later change, a locale, is flushed
    as usual)."""
    return _as_loaded(session, _filled(User, id=user_id, display_name=name, locale=locale, created_at=now))


async def create_user_and_conversation(
    session: AsyncSession, channel: str, external_id: str, chat_id: str, display_name: str,
    now: datetime, locale: str | None = None,
) -> tuple[User, Conversation]:
    """A first message: `create_user` and `new_conversation` for a sender and a chat never seen.
    On PostgreSQL with the driver-level path, one statement."""
    direct = fast_sql.direct(session)
    if direct is None or direct.is_sqlite:
        user = await create_user(session, channel, external_id, display_name, now, locale=locale)
        return user, await new_conversation(session, channel, chat_id, user.id, now)
    name = _user_name(display_name, external_id)
    ((user_id, conversation_id),) = await direct.fetch(_FIRST_CONTACT_PG, {
        "display_name": name, "created_at": now, "locale": locale, "channel": channel,
        "external_id": external_id, "chat_id": chat_id, "state": {}, "offered": [],
    })
    user = _new_user(session, user_id, name, locale, now)
    return user, _conversation(conversation_id, channel, chat_id, user_id, now)


async def role_grants(session: AsyncSession, user_id: int) -> list[RoleGrant]:
    rows = await session.execute(
        select(Membership.role, Area.id, Area.code, Area.name)
        .join(Area, Area.id == Membership.area_id)
        .where(Membership.user_id == user_id)
        .order_by(Area.code)
    )
    return [RoleGrant(role, area_id, code, name) for role, area_id, code, name in rows]


def top_role(grants: list[RoleGrant]) -> str:
    return max((g.role for g in grants), key=ROLE_RANK.__getitem__, default="resident")


async def offer_in_own_chat(
    session: AsyncSession, channel: str, chat_id: str, offered: list[list[str]], now: datetime,
    prompt: str | None = None,
) -> None:
    """Make `offered` the current options of a chat whose sender is its own chat id (a console
    user shown the notices that waited for them): the conversation is made if the user never
    wrote yet, so that "1" answers the notice's first button."""
    if await offer_in_chat(session, channel, chat_id, offered, now, prompt):
        return
    user_id = await session.scalar(select(Identity.user_id).where(
        Identity.channel == channel, Identity.external_id == chat_id))
    if user_id is not None:
        conversation = await new_conversation(session, channel, chat_id, user_id, now)
        await session.execute(update(Conversation).where(Conversation.id == conversation.id)
                              .values(offered=offered, offered_prompt=prompt))
