"""Everything one handler call may use, passed explicitly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.faq_match import FaqIndex
from conversations.flow_model import FlowRegistry
from db.models import Conversation, User
from db.repo.users import RoleGrant, top_role
from handlers.conversation_state import ConversationState
from handlers.i18n import RESIDENT, Translator, pick_locale, translator
from handlers.types import Incoming


class HandlerSettings(Protocol):
    """What the handlers read of the settings. bot/config.py's Settings is one (mypy checks it
    where bot/ builds the Services); handlers/ may not import bot/, so the type is this protocol."""

    @property
    def locale(self) -> str: ...

    @property
    def secret_key(self) -> str: ...

    @property
    def send_lease_seconds(self) -> float: ...


@dataclass
class Services:
    """Long-lived, read-only things the handlers need (settings, flow registry, FAQ index)."""

    settings: HandlerSettings
    clock: Callable[[], datetime]
    flows: FlowRegistry | None = None
    faq: FaqIndex | None = None  # None: the shipped index, built on first use (handlers/faq.py)
    retired_flows: frozenset[str] = frozenset()  # known only from stored versions: no new runs
    is_sqlite: bool = True
    # Opens a read-only session for reports (Database.read_session); None: use the update's own.
    read_session: Callable[[], AbstractAsyncContextManager[AsyncSession]] | None = None
    # The Telegram bot's username, for invite deep links (TELEGRAM_BOT_USERNAME, or getMe when
    # `gocua run telegram` starts); None: invites show the code only.
    bot_username: str | None = None
    # Per channel, how to fetch the bytes of a file someone sent (IncomingFile.ref); a channel
    # adapter registers its own when it starts. Absent: files cannot be read on that channel.
    fetch_file: dict[str, Callable[[str], Awaitable[bytes]]] = field(default_factory=dict)


@dataclass
class Context:
    session: AsyncSession
    incoming: Incoming
    user: User
    conversation: Conversation
    grants: list[RoleGrant]
    now: datetime
    services: Services
    # Updates of this chat processed within the flood window before this one (counted by the
    # pipeline's load, up to just over FLOOD_LIMIT: enough for any flood verdict).
    recent_updates: int = 0
    locale: str = field(init=False)

    def __post_init__(self) -> None:
        self.relocalise()

    def relocalise(self) -> None:
        settings = self.services.settings
        self.locale = pick_locale(self.user.locale, self.incoming.language_hint, settings.locale)

    @property
    def t(self) -> Translator:
        """Texts in the user's language, and in the polite register if the user is a resident
        (follows a role gained during this update, e.g. by an invite code)."""
        return translator(self.locale, RESIDENT if self.role == "resident" else None)

    @property
    def role(self) -> str:
        return top_role(self.grants)

    @property
    def state(self) -> ConversationState:
        """The chat's dialog state, read-only (handlers/conversation_state.py): set_state
        replaces it."""
        return ConversationState.from_json(self.conversation.state)

    def set_state(self, state: Mapping[str, Any] | None) -> None:
        """Replace the dialog state with a new JSON value (None: no dialog)."""
        self.conversation.state = ConversationState.from_json(state).to_json()

    def has_role(self, *roles: str) -> bool:
        return any(g.role in roles for g in self.grants)
