"""Asking again: the replies to an answer that does not fit the question the chat is on.

Every one of them shows the way forward: the question again with its options (kept on the
conversation, handlers/options.py), only the options that fit an ambiguous answer, or, where
nothing is offered, the commands to type.
"""

from __future__ import annotations

from dataclasses import replace

from handlers.buttons import MoreButton
from handlers.context import Context
from handlers.i18n import N_
from handlers.options import NUMBERED_CHANNELS, NoSuchNumber, is_number, read_answer
from handlers.router import Router, out_of_date
from handlers.types import Button, Reply

NO_SUCH_OPTION = N_("There is no option {number}; choose 1–{count}.")
NO_SUCH_OPTION_ONE = N_("There is no option {number}; the only option is 1.")
NOT_AN_OPTION_NUMBERED = N_("“{text}” is not one of the options. Answer with a number from the list "
                            "(or type a /command: /help lists them).")
NOT_AN_OPTION_BUTTONS = N_("“{text}” is not one of the options. Press one of the buttons "
                           "(or type a /command: /help lists them).")
CHOOSE_ONE = N_("Choose one:")
WHICH_ONE = N_("Several options fit “{text}”. Which one?")
NOTHING_TO_CHOOSE = N_("There is nothing to choose here. Type /help to see what you can do.")
NOTHING_HERE_VOLUNTEER = N_("There is nothing to choose here. Type /households to see your "
                            "households, or /help.")
NOTHING_HERE_LEADER = N_("There is nothing to choose here. Type /stats to see your area, or /help.")
NOTHING_HERE_RESIDENT = N_("There is nothing to choose here. Write your question in words, "
                           "or type /help.")
QUOTE_MAX = 40
MORE = N_("More")
CONTINUED = N_("(continued)")
# Channels that show at most PAGE options a message, "More" for the rest (the console shows all).
PAGED_CHANNELS = frozenset({"zalo"})
PAGE = 8
BACK_MARKS = ("⬅️", "⬆️")  # a way back: always the last option, on every page

router = Router("choices")


def numbered(ctx: Context) -> bool:
    """Whether this chat shows option numbers (console, Zalo) and a number may pick one."""
    return ctx.incoming.channel in NUMBERED_CHANNELS and not ctx.state.get("expects_text")


def _columns(buttons: tuple[Button, ...]) -> int:
    return 2 if len(buttons) > 4 and all(len(b.label) <= 20 for b in buttons) else 1


def _quoted(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_MAX else text[: QUOTE_MAX - 1] + "…"


def ask_again(ctx: Context, note: str | None = None) -> list[Reply]:
    """`note`, then the question the chat is answering again with its options (a message of
    its own, so that it stays the question the options answer)."""
    offered = ctx.conversation.offered or []
    if not offered:
        return [Reply("\n".join(filter(None, [note, ctx.t(NOTHING_TO_CHOOSE)])))]
    buttons = tuple(Button(label, payload) for label, payload in offered)
    prompt = ctx.conversation.offered_prompt or ctx.t(CHOOSE_ONE)
    question = Reply(prompt, buttons=buttons, columns=_columns(buttons))
    return [Reply(note), question] if note else [question]


def wrong_answer(ctx: Context) -> list[Reply]:
    """The answer just typed fits none of the options: say why, and ask again."""
    text = (ctx.incoming.text or "").strip()
    offered = ctx.conversation.offered or []
    answer = read_answer(text, [label for label, _ in offered], numbered=numbered(ctx))
    if isinstance(answer, NoSuchNumber):
        return ask_again(ctx, no_such_option(ctx, answer))
    if not text:
        return ask_again(ctx)
    msgid = NOT_AN_OPTION_NUMBERED if ctx.incoming.channel in NUMBERED_CHANNELS else NOT_AN_OPTION_BUTTONS
    return ask_again(ctx, ctx.t(msgid, text=_quoted(text)))


def no_such_option(ctx: Context, answer: NoSuchNumber) -> str:
    if answer.count == 1:
        return ctx.t(NO_SUCH_OPTION_ONE, number=answer.number)
    return ctx.t(NO_SUCH_OPTION, number=answer.number, count=answer.count)


def which_one(ctx: Context, text: str, indices: tuple[int, ...]) -> Reply:
    """An answer that fits several options: only those, to pick from."""
    offered = ctx.conversation.offered or []
    buttons = tuple(Button(*offered[i]) for i in indices)
    return Reply(ctx.t(WHICH_ONE, text=_quoted(text)), buttons=buttons, columns=_columns(buttons))


def nothing_to_choose(ctx: Context) -> Reply:
    """A stray number or staff text where nothing is asked: where to go instead."""
    if ctx.role == "volunteer":
        return Reply(ctx.t(NOTHING_HERE_VOLUNTEER))
    if ctx.role in ("leader", "admin"):
        return Reply(ctx.t(NOTHING_HERE_LEADER))
    return Reply(ctx.t(NOTHING_HERE_RESIDENT))


def is_stray(ctx: Context, text: str) -> bool:
    """Text outside any question that is no resident's question: a bare number from anyone,
    any text from staff (only residents' questions go to the FAQ)."""
    return ctx.role != "resident" or is_number(text)


# -- long lists on Zalo: 8 options a message, "More" for the rest -------------------------------

def paged(ctx: Context, replies: list[Reply]) -> list[Reply]:
    """On a paged channel, the last question offering more than PAGE options shows the first
    PAGE - 2, then "More", then its way back (if it ends with one): the same numbers on every
    level, Back always last. The rest waits in the chat's state for "More"."""
    if ctx.incoming.channel not in PAGED_CHANNELS:
        return replies
    for i in range(len(replies) - 1, -1, -1):
        reply = replies[i]
        if reply.to is not None or not reply.buttons:
            continue
        if len(reply.buttons) <= PAGE:
            return replies
        back = reply.buttons[-1:] if reply.buttons[-1].label.startswith(BACK_MARKS) else ()
        items = reply.buttons[:len(reply.buttons) - len(back)]
        shown, rest = items[:PAGE - 2], items[PAGE - 2:]
        ctx.set_state({**ctx.state, "more": [[b.label, b.payload] for b in (*rest, *back)]})
        more = Button("➡️ " + ctx.t(MORE), MoreButton())
        return [*replies[:i], replace(reply, buttons=(*shown, more, *back)), *replies[i + 1:]]
    return replies


@router.button(MoreButton)
async def more_options(ctx: Context, data: MoreButton) -> list[Reply]:
    """The next options of a long list, under its heading."""
    waiting = ctx.state.get("more") or []
    if not waiting:
        return [out_of_date(ctx)]
    continued = ctx.t(CONTINUED)
    heading = (ctx.conversation.offered_prompt or "").strip().split("\n", 1)[0].strip()
    heading = heading.removesuffix(continued).strip()
    text = f"{heading} {continued}" if heading else ctx.t(CHOOSE_ONE)
    return [Reply(text, buttons=tuple(Button(label, payload) for label, payload in waiting))]
