"""Options offered in a chat, and how a typed answer picks one of them.

What was last offered in a chat (the labels, their payloads and the question that offered
them) is kept on the conversation, so an answer is checked against it on the server, whichever
worker or channel session receives it, and a question can be asked again with its options.

`read_answer` is pure: a typed answer picks an option by its number (on channels that show
numbers), its whole label, or a distinctive part of the label, without diacritics, case or
emoji ("ta lang", "Tà Lang", "hai van" pick "Thôn Tà Lang" / "Phường Hải Vân"); a small typo
in a longer answer is forgiven. A part that fits several labels is `Ambiguous`; a number that
is not on the list is `NoSuchNumber`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from conversations.folding import strip_marks
from handlers.types import Reply

# Channels that render buttons as numbered lines ("[1] Label" / "1. Label").
NUMBERED_CHANNELS = frozenset({"console", "zalo"})
# "2", "[2]", "2.", and the way people say it: "số 2", "so 2", "số2" (matched on folded text).
_NUMBER = re.compile(r"^\s*(?:so\s*)?\[?(\d{1,3})[\].)]?\s*$")
_LEADING_NUMBER = re.compile(r"^\s*\[?\d{1,3}[\].)]?\s+")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
# A number-like answer ("0", "-1", "1.5", "12/3"): never a question, never a label part.
NUMBER_LIKE = re.compile(r"^[\s\d.,:;+\-–/#()\[\]]*\d[\s\d.,:;+\-–/#()\[\]]*$")
MAX_ANSWER = 200
MIN_PART = 2  # characters a part of a label needs to pick it
MIN_WORD = 4  # characters one word alone needs to pick a label ("hỏi" is in too many)
MIN_FUZZY = 5  # characters an answer needs before a typo in it is forgiven


def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics (đ included), spaces collapsed."""
    return " ".join(strip_marks(text).split())


def words(text: str) -> tuple[str, ...]:
    """The folded words of a text: letters and digits only (emoji, marks and dashes dropped)."""
    return tuple(w for w in _NOT_WORD.split(fold(text)) if w)


@dataclass(frozen=True)
class Offer:
    """What a chat is answering: the options (label, payload) and the question they came with."""

    options: list[list[str]]
    prompt: str


def offered_from(replies: list[Reply]) -> Offer | None:
    """The options the user sees last in this chat, or None if these replies offer none."""
    for reply in reversed(replies):
        if reply.to is None and reply.buttons:
            return Offer([[b.label, b.payload] for b in reply.buttons], reply.text)
    return None


# -- reading a typed answer -----------------------------------------------------------------

@dataclass(frozen=True)
class Picked:
    index: int  # 0-based


@dataclass(frozen=True)
class NoSuchNumber:
    number: int
    count: int


@dataclass(frozen=True)
class Ambiguous:
    indices: tuple[int, ...]


@dataclass(frozen=True)
class NoMatch:
    pass


Answer = Picked | NoSuchNumber | Ambiguous | NoMatch


def read_answer(text: str, labels: Sequence[str], *, numbered: bool, tolerant: bool = True) -> Answer:
    """Which of `labels` a typed `text` picks. `numbered`: the chat shows option numbers, so "2"
    is the second; `tolerant`: a part of a label or a typo may pick it (off while a dialog waits
    for typed text, where only the whole label counts as a press)."""
    if not text or len(text) > MAX_ANSWER or not labels:
        return NoMatch()
    number = _NUMBER.match(fold(text)) if numbered else None
    if number:
        index = int(number.group(1))
        if 1 <= index <= len(labels):
            return Picked(index - 1)
        return NoSuchNumber(index, len(labels))
    typed = words(_LEADING_NUMBER.sub("", text) if numbered else text)
    if not typed:
        return NoMatch()
    options = [words(label) for label in labels]
    exact = [i for i, option in enumerate(options) if option == typed]
    if exact or not tolerant:
        return Picked(exact[0]) if exact else NoMatch()
    everyday = _everyday(typed, options)
    if everyday is not None:
        return everyday
    if NUMBER_LIKE.match(text) or len("".join(typed)) < (MIN_WORD if len(typed) == 1 else MIN_PART):
        return NoMatch()
    return _chosen([i for i, option in enumerate(options) if _is_part(typed, option)]) or \
        _chosen(_close(typed, options)) or NoMatch()


# Everyday replies ("ok", "có", "không", "xong") and the options they mean: an answer of a kind
# picks the one option whose label starts with a word of that kind (then of the fallback kind).
_YES, _NO, _DONE = "yes", "no", "done"
EVERYDAY: dict[tuple[str, ...], str] = {
    **dict.fromkeys([("ok",), ("oke",), ("okay",), ("co",), ("vang",), ("da", "vang"), ("u",),
                     ("dong", "y"), ("yes",), ("co", "a"), ("vang", "a"), ("ok", "a")], _YES),
    **dict.fromkeys([("khong",), ("ko",), ("k",), ("no",), ("khong", "a"), ("chua",),
                     ("chua", "a")], _NO),
    **dict.fromkeys([("xong",), ("xong", "roi"), ("done",), ("roi",), ("da", "xong"),
                     ("xong", "a"), ("xong", "roi", "a")], _DONE),
}
_LABEL_WORDS = {
    _YES: frozenset({"co", "yes", "ok", "dong", "vang"}),
    _NO: frozenset({"khong", "no", "chua"}),
    _DONE: frozenset({"xong", "done", "tiep", "continue", "hoan"}),
}
_FALLBACK = {_YES: _DONE, _DONE: None, _NO: None}  # "ok" at a "✅ Xong" step is done


def _everyday(typed: tuple[str, ...], options: list[tuple[str, ...]]) -> Answer | None:
    """"ok" / "có" / "không" / "xong" where exactly one option means it (a "Có …" or "✅ Xong"
    label); None when it is no everyday reply or no single option fits."""
    kind: str | None = EVERYDAY.get(typed)
    while kind is not None:
        fits = [i for i, option in enumerate(options) if option and option[0] in _LABEL_WORDS[kind]]
        if len(fits) == 1:
            return Picked(fits[0])
        if fits:
            return None
        kind = _FALLBACK[kind]
    return None


def is_number(text: str) -> bool:
    """A number-like answer, or one said as "số 2": never a question for the FAQ."""
    return bool(NUMBER_LIKE.match(text) or _NUMBER.match(fold(text)))


def is_everyday(text: str) -> bool:
    """Whether `text` is an everyday reply ("ok", "có", "không", "xong"): never a question."""
    return words(text) in EVERYDAY


def _chosen(indices: list[int]) -> Answer | None:
    if not indices:
        return None
    return Picked(indices[0]) if len(indices) == 1 else Ambiguous(tuple(indices))


def _is_part(typed: tuple[str, ...], option: tuple[str, ...]) -> bool:
    """`typed` is a run of the option's words; its last word may be the start of one ("hai v")."""
    n = len(typed)
    for start in range(len(option) - n + 1):
        window = option[start:start + n]
        if window[:-1] == typed[:-1] and (
            window[-1] == typed[-1] or (len(typed[-1]) >= 3 and window[-1].startswith(typed[-1]))
        ):
            return True
    return False


def _close(typed: tuple[str, ...], options: list[tuple[str, ...]]) -> list[int]:
    """Options that contain the answer up to one typo (two in a long answer; a swap of two
    letters is one), the closest ones."""
    wanted = " ".join(typed)
    if len(wanted) < MIN_FUZZY:
        return []
    allowed = 1 if len(wanted) < 10 else 2
    scored: list[tuple[int, int]] = []
    for i, option in enumerate(options):
        n = len(typed)
        windows = [" ".join(option[s:s + n]) for s in range(max(1, len(option) - n + 1))]
        best = min(OSA.distance(wanted, w, score_cutoff=allowed + 1) for w in windows)
        if best <= allowed:
            scored.append((best, i))
    if not scored:
        return []
    least = min(d for d, _ in scored)
    return [i for d, i in scored if d == least]
