"""Limits on visit requests, so that one resident cannot flood the volunteers of an area.

- At most MAX_OPEN_REQUESTS requests of a resident are open (not closed) at once; asking for
  another one says so and offers to add what is needed to an open one instead (buttons
  `visitadd:<id>`), which tells only the volunteer who took it, nobody else.
- Making a request counts as several messages in the flood limit (handlers/flood.py
  `request_verdict`); over it the resident is asked to wait a minute.
"""

from __future__ import annotations

from collections.abc import Callable

from conversations.redact import redact_citizen_ids
from db.models import SupportRequest, User
from db.repo.support import addresses_of, open_requests_of, requests_made_since
from handlers.access import row_of_button
from handlers.buttons import RequestButton, VisitAddButton
from handlers.context import Context
from handlers.flood import FLOOD_EXEMPT, FLOOD_WINDOW, request_verdict, slow_down
from handlers.i18n import N_, translator
from handlers.options import NUMBERED_CHANNELS
from handlers.router import Router, out_of_date
from handlers.types import Address, Button, Reply
from handlers.validation import check

MAX_OPEN_REQUESTS = 3
MAX_QUESTION = 2000  # characters a request's text may grow to by additions

router = Router("visit_limits")


async def refusal(ctx: Context, question: str = "") -> list[Reply] | None:
    """None when the resident may make one more request now; otherwise the replies that say
    why not (and what to do instead). `question` is what they asked, kept to be added to an
    open request with one press."""
    open_ones = await open_requests_of(ctx.session, ctx.user.id)
    if len(open_ones) >= MAX_OPEN_REQUESTS:
        return _too_many_open(ctx, open_ones, question)
    if ctx.incoming.channel not in FLOOD_EXEMPT:
        made = await requests_made_since(ctx.session, ctx.user.id, ctx.now - FLOOD_WINDOW)
        if request_verdict(ctx.recent_updates, made) != "allow":
            ctx.set_state(None)
            return [slow_down(ctx.t)]
    return None


def _too_many_open(ctx: Context, open_ones: list[SupportRequest], question: str) -> list[Reply]:
    ctx.set_state({"dialog": "visit_add", "question": question[:1000]})
    lines = [ctx.t("You already have {count} open visit requests; a volunteer will come for them. "
                   "You can add what you need to one of them:", count=len(open_ones))]
    lines += [f"#{r.id}: {r.question[:80]}" for r in open_ones]
    buttons = tuple(Button(ctx.t("Add to #{id}", id=r.id), VisitAddButton(r.id)) for r in open_ones)
    return [Reply("\n".join(lines), buttons=buttons)]


@router.button(VisitAddButton)
async def add_button(ctx: Context, data: VisitAddButton) -> list[Reply]:
    request = await ctx.session.get(SupportRequest, data.request_id)
    if request is None or request.requester_id != ctx.user.id or request.status == "closed":
        return [out_of_date(ctx)]
    question = str(ctx.state.get("question") or "") if ctx.state.get("dialog") == "visit_add" else ""
    if question:
        return await _add(ctx, request, question)
    ctx.set_state({"dialog": "visit_add", "request_id": request.id})
    return [Reply(ctx.t("What do you want to add to request #{id}? Write it in a few words "
                        "(or /cancel).", id=request.id))]


@router.dialog("visit_add")
async def add_text(ctx: Context, text: str) -> list[Reply]:
    if "request_id" not in ctx.state:  # text instead of a press: the choice again
        question = str(ctx.state.get("question") or "")
        open_ones = await open_requests_of(ctx.session, ctx.user.id)
        if not open_ones:
            ctx.set_state(None)
            return [out_of_date(ctx)]
        return _too_many_open(ctx, open_ones, question)
    request = await row_of_button(ctx.session, SupportRequest, str(ctx.state.get("request_id", "")))
    if request is None or request.requester_id != ctx.user.id or request.status == "closed":
        ctx.set_state(None)
        return [out_of_date(ctx)]
    value, error = check("text", text, ctx.now)
    if error:
        return [Reply(ctx.t(error.msgid, **error.values))]
    return await _add(ctx, request, str(value))


async def _add(ctx: Context, request: SupportRequest, text: str) -> list[Reply]:
    """Append `text` to the request; the volunteer who took it is told (nobody else is pushed)."""
    ctx.set_state(None)
    addition = redact_citizen_ids(text.strip())
    request.question = f"{request.question}\n+ {addition}"[:MAX_QUESTION]
    replies = [Reply(ctx.t("Added to your request #{id}. The volunteer will see it. "
                           "Type /help to see what else I can do.", id=request.id))]
    if request.volunteer_id is not None:
        for _, channel, chat_id in await addresses_of(ctx.session, [request.volunteer_id]):
            t = translator(await _locale_of(ctx, request.volunteer_id))
            how, close = close_offer(t, channel, request.id)
            replies.append(Reply("\n".join([t("The resident added to request #{id}:", id=request.id)
                                            + f"\n“{addition}”", *how]),
                                 buttons=close, to=Address(channel, chat_id)))
    return replies


async def _locale_of(ctx: Context, user_id: int) -> str | None:
    user = await ctx.session.get(User, user_id)
    return user.locale if user is not None else None


# On channels without buttons a request is closed with a word ("ĐÓNG 12", handlers/visits.py
# request_word), so that its option never takes the numbers of what the volunteer is doing.
CLOSE_BY_WORD = N_("To close it, type CLOSE {id}.")


def close_offer(t: Callable[..., str], channel: str, request_id: int) -> tuple[list[str], tuple[Button, ...]]:
    """How a volunteer closes a request: a button, or on channels without buttons a word."""
    if channel in NUMBERED_CHANNELS:
        return [t(CLOSE_BY_WORD, id=request_id)], ()
    return [], (Button(t("Close it"), RequestButton(request_id, "close")),)
