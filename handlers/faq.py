"""Residents' questions: plain text goes to the FAQ matcher; unanswered ones are kept as misses.

An answer comes with "Helpful" / "Not what I asked" / "Ask a volunteer". Below the matcher's
threshold GoCua says it has no reliable information, offers the two or three closest topics only
when they are really close, and always a volunteer and the ward's one-stop office: never a guess
as an answer.
"""

from __future__ import annotations

from dataclasses import replace

from conversations.faq_match import SOURCE_LINE, FaqIndex, default_index, normalize
from conversations.redact import redact_citizen_ids
from conversations.small_talk import SmallTalk, small_talk
from db.repo.support import record_miss, top_misses
from handlers.basic import greeting
from handlers.buttons import FaqButton, VisitButton
from handlers.choices import is_stray, nothing_to_choose, wrong_answer
from handlers.context import Context
from handlers.i18n import N_
from handlers.options import is_everyday
from handlers.router import LEADERS, Router, out_of_date
from handlers.types import Button, Reply

# Friendly answers to small talk, with what to do next (a greeting gets the /start greeting).
RESIDENT_SMALL_TALK = {
    SmallTalk.THANKS: N_("You're welcome! Ask me anything else, or type /visit to ask a volunteer "
                         "to come to your home."),
    SmallTalk.OK: N_("Good. If you have another question, just type it, or type /visit to ask a "
                     "volunteer to come to your home."),
    SmallTalk.BYE: N_("Goodbye! Come back whenever you have a question; type /help to see what I "
                      "can do."),
}
STAFF_SMALL_TALK = {
    SmallTalk.THANKS: N_("You're welcome! Type /help to see your commands."),
    SmallTalk.OK: N_("Noted. Type /help to see your commands."),
    SmallTalk.BYE: N_("Goodbye! Type /help when you need your commands."),
}

router = Router("faq")


def faq_index(ctx: Context) -> FaqIndex:
    """The app's FAQ index, or the shipped one (built on first use, then kept) when the app was
    opened without it (a command that answers no resident)."""
    return ctx.services.faq or default_index()


def _answer(ctx: Context, entry_id: str) -> Reply:
    entry = faq_index(ctx).by_id[entry_id]
    text = ctx.t(entry.answer)
    if entry.source:
        text += "\n" + ctx.t(SOURCE_LINE, url=entry.source[0])
    return Reply(text, buttons=(
        Button(ctx.t("Helpful"), FaqButton("ok", entry_id)),
        Button(ctx.t("Not what I asked"), FaqButton("no", entry_id)),
        Button(ctx.t("Ask a volunteer"), VisitButton("start")),
    ), preview=False)  # the source line's link stays a line, not a card


def _area_id(ctx: Context) -> int | None:
    return ctx.grants[0].area_id if ctx.grants else None


def _miss(ctx: Context, question: str, kind: str, faq_id: str | None) -> None:
    record_miss(ctx.session, question=question, normalized=normalize(question)[:500] or question[:500],
                locale=ctx.t.locale, kind=kind, faq_id=faq_id, user_id=ctx.user.id,
                area_id=_area_id(ctx), now=ctx.now)


def _suggest(ctx: Context, question: str, exclude: str | None = None) -> Reply:
    """An honest "I don't know": the two or three closest topics only when they are really close
    (FaqIndex.close), and always a volunteer (/visit) and the ward's one-stop office."""
    index = faq_index(ctx)
    closest = [m for m in index.close(question, 4) if m.id != exclude][:3]
    volunteer = Button(ctx.t("Ask a volunteer"), VisitButton("start"))
    unsure = ctx.t("I don't have reliable information about this yet.")
    elsewhere = ctx.t("A volunteer can help you: type /visit or press the button below. You can also "
                      "ask at the one-stop office of your ward or commune People's Committee.")
    if not closest:
        return Reply(f"{unsure}\n{elsewhere}", buttons=(volunteer,))
    buttons = tuple(Button(ctx.t(index.by_id[m.id].title), FaqButton("show", m.id)) for m in closest)
    maybe = ctx.t("It may be one of these topics:")
    return Reply(f"{unsure} {maybe}\n{elsewhere}", buttons=(*buttons, volunteer))


@router.text
async def faq_text(ctx: Context, text: str) -> list[Reply]:
    text = redact_citizen_ids(text)  # kept as a miss or for "Ask a volunteer": never a full ID
    kind = small_talk(text) or (SmallTalk.OK if is_everyday(text) else None)  # "không", "xong" too
    if kind is SmallTalk.GREETING:
        return [await greeting(ctx)]
    if kind is not None:  # a friendly answer, never "I don't know", never a miss
        answers = RESIDENT_SMALL_TALK if ctx.role == "resident" else STAFF_SMALL_TALK
        return [Reply(ctx.t(answers[kind]))]
    if is_stray(ctx, text):  # staff text, or a bare number: no question, no miss
        return wrong_answer(ctx) if ctx.conversation.offered else [nothing_to_choose(ctx)]
    ctx.set_state({"last_question": text[:500]})
    found = faq_index(ctx).match(text)
    if found is not None:
        return [_answer(ctx, found.id)]
    _miss(ctx, text, "unanswered", None)
    return [_suggest(ctx, text)]



EDITABLE_TEXT = 4000  # an answer kept with its thanks stays one message (Telegram's 4,096)


@router.button(FaqButton)
async def faq_button(ctx: Context, data: FaqButton) -> list[Reply]:
    verb, entry_id = data.verb, data.entry_id
    if entry_id not in faq_index(ctx).by_id:
        return [out_of_date(ctx)]
    question = str(ctx.state.get("last_question") or "")
    # Feedback edits the message it was given on (where the channel can): the answer keeps
    # its text and loses its buttons, a wrong one gives way to the other suggestions.
    if verb == "show":
        return [replace(_answer(ctx, entry_id), edit=True)]
    if verb == "ok":
        thanks = ctx.t("Thank you! Ask me anything else, or type /visit to ask a volunteer.")
        kept = f"{_answer(ctx, entry_id).text}\n\n👍 {thanks}"
        if ctx.incoming.tapped and len(kept) <= EDITABLE_TEXT:
            return [Reply(kept, edit=True, preview=False)]  # an answer cites its sources
        return [Reply(thanks)]
    if verb == "no":
        if question:
            _miss(ctx, question, "not_helpful", entry_id)
        return [replace(_suggest(ctx, question, exclude=entry_id), edit=True) if question else
                Reply(ctx.t("Sorry. Ask me in other words, or ask a volunteer."),
                      buttons=(Button(ctx.t("Ask a volunteer"), VisitButton("start")),), edit=True)]
    return [out_of_date(ctx)]


@router.command("/misses", roles=LEADERS, help=N_("questions GoCua could not answer"), order=33)
async def misses(ctx: Context, args: str) -> list[Reply]:
    codes = [g.area_code for g in ctx.grants if g.role in LEADERS]
    rows = await top_misses(ctx.session, codes)
    if not rows:
        return [Reply(ctx.t("No unanswered questions so far. Type /stats to see your area."))]
    lines = [ctx.t("Questions GoCua could not answer, most frequent first:")]
    lines += [f"{count}× “{example[:100]}”" for _, count, example in rows]
    return [Reply("\n".join(lines))]

