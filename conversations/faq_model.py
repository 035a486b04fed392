"""The residents' FAQ as data: the entry dataclass, the YAML loader and the validator.

The knowledge base is conversations/faq/*.yaml, one file per topic group, each a list of entries:

    - id: residence.fee                   # stable id: lower-case words joined by dots
      title: Residence confirmation fee   # English msgid, <= 40 chars (button label)
      answer: |-                          # English msgid, <= 600 chars (one phone screen)
        Free: the residence confirmation (CT07) costs 0 VND ...
      source:                             # links, not translated; source[0] is shown
        - https://dichvucong.gov.vn/...   # under the answer (faq_match.answer_payload);
      related: [residence.where]          # [] only where no outside source exists
      checked: 2026-12-04                 # required: when the answer was last checked
                                          # against the law and its sources (a date)
      examples:                           # matching data only, never shown to anyone:
        vi: [..., ...]                    # >= 5 Vietnamese phrasings (with and without
        en: [..., ...]                    # diacritics, teen-code), >= 2 English ones

Only `title` and `answer` are read by the Babel extractor (conversations/babel_yaml.py); the
Vietnamese texts live in the catalogs. A broken file stops start-up with a FaqError naming the
file, the entry and the problem; so do duplicate ids and `related` ids that do not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from conversations.yaml_load import safe_load

FAQ_DIR = Path(__file__).resolve().parent / "faq"
ENTRY_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_ID = 48
MAX_TITLE = 40
MAX_ANSWER = 600
MAX_EXAMPLE = 300
MIN_EXAMPLES = {"vi": 5, "en": 2}
_KEYS = frozenset({"id", "title", "answer", "source", "related", "examples", "checked"})
_URL = re.compile(r"https?://\S+")

# The topics the issue asks for; tests check that each exists (more are welcome).
REQUIRED_IDS = frozenset({
    "vneid.levels", "vneid.register_level1", "vneid.register_level2", "vneid.activate",
    "vneid.forgot_password", "vneid.change_phone", "vneid.children", "vneid.scam",
    "vneid.has_account", "vneid.cost",
    "birth.documents", "birth.deadline_fee", "birth.linked",
    "residence.where", "residence.fee", "residence.validity", "residence.check_fine",
    "pension.eligibility", "pension.apply", "pension.both",
    "dvc.login", "signature.register", "visit.request",
    # Issue 14 §2: what residents ask next to our procedures.
    "residence.temporary", "residence.permanent", "idcard.reissue", "health.elderly_card",
    "death.registration", "allowance.disability",
})


class FaqError(ValueError):
    """An FAQ file that cannot be used: `file, entry 'x': problem`."""

    def __init__(self, filename: str, problem: str, entry: str | None = None) -> None:
        self.filename = filename
        self.entry = entry
        self.problem = problem
        where = f"{filename}, entry '{entry}'" if entry else filename
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class FaqEntry:
    id: str
    title: str
    answer: str
    source: tuple[str, ...]
    related: tuple[str, ...]
    examples_vi: tuple[str, ...]
    examples_en: tuple[str, ...]
    checked: date | None = None
    filename: str = ""

    @property
    def examples(self) -> tuple[str, ...]:
        return self.examples_vi + self.examples_en


def _text(value: Any, what: str, limit: int, filename: str, entry: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FaqError(filename, f"{what} must be a non-empty text", entry)
    if len(value) > limit:
        raise FaqError(filename, f"{what} is {len(value)} characters, at most {limit}", entry)
    return value


def _texts(value: Any, what: str, filename: str, entry: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise FaqError(filename, f"{what} must be a list", entry)
    return tuple(_text(v, f"{what} item", MAX_EXAMPLE, filename, entry) for v in value)


def _checked(value: Any, filename: str, entry: str) -> date:
    """The `checked:` date (YAML reads 2026-12-04 as a date; a quoted ISO text is fine too)."""
    if isinstance(value, str):
        with suppress(ValueError):
            value = date.fromisoformat(value)
    if not isinstance(value, date) or isinstance(value, datetime):
        raise FaqError(filename, f"checked must be the date the answer was last checked, like 2026-12-04; "
                                 f"got {value!r}", entry)
    return value


def _entry(raw: Any, filename: str, position: int) -> FaqEntry:
    if not isinstance(raw, dict):
        raise FaqError(filename, f"item {position} is not a mapping")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or len(entry_id) > MAX_ID or not ENTRY_ID.fullmatch(entry_id):
        raise FaqError(filename, f"item {position}: id {entry_id!r} is not like 'topic.name'")
    unknown = sorted(set(map(str, raw)) - _KEYS)
    if unknown:
        raise FaqError(filename, f"unknown keys {unknown}", entry_id)
    title = _text(raw.get("title"), "title", MAX_TITLE, filename, entry_id)
    answer = _text(raw.get("answer"), "answer", MAX_ANSWER, filename, entry_id)
    source = _texts(raw.get("source"), "source", filename, entry_id)
    for url in source:
        if not _URL.fullmatch(url):
            raise FaqError(filename, f"source {url!r} is not an http(s) link", entry_id)
    related = _texts(raw.get("related", []), "related", filename, entry_id)
    if len(set(related)) != len(related):
        raise FaqError(filename, "related lists an id twice", entry_id)
    if entry_id in related:
        raise FaqError(filename, "related lists the entry itself", entry_id)
    examples = raw.get("examples")
    if not isinstance(examples, dict) or set(examples) != set(MIN_EXAMPLES):
        raise FaqError(filename, "examples must have exactly the keys vi and en", entry_id)
    found = {lang: _texts(examples[lang], f"examples.{lang}", filename, entry_id) for lang in MIN_EXAMPLES}
    for lang, least in MIN_EXAMPLES.items():
        if len(found[lang]) < least:
            raise FaqError(filename, f"examples.{lang} has {len(found[lang])}, at least {least}", entry_id)
    checked = _checked(raw.get("checked"), filename, entry_id)
    return FaqEntry(entry_id, title, answer, source, related, found["vi"], found["en"], checked, filename)


def parse_faq(text: str, filename: str = "<faq>") -> list[FaqEntry]:
    """The entries of one YAML document (each checked on its own; see validate for the set)."""
    try:
        data = safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:  # PyYAML raises ValueError for a date like 2026-13-01
        raise FaqError(filename, f"not valid YAML: {exc}") from None
    if not isinstance(data, list) or not data:
        raise FaqError(filename, "must be a non-empty list of entries")
    return [_entry(raw, filename, n) for n, raw in enumerate(data, 1)]


def validate(entries: Iterable[FaqEntry]) -> tuple[FaqEntry, ...]:
    """Check the set: ids unique across files, every related id exists. Returns the entries."""
    entries = tuple(entries)
    seen: dict[str, FaqEntry] = {}
    for entry in entries:
        if entry.id in seen:
            raise FaqError(entry.filename, f"duplicate id (also in {seen[entry.id].filename})", entry.id)
        seen[entry.id] = entry
    for entry in entries:
        for other in entry.related:
            if other not in seen:
                raise FaqError(entry.filename, f"related id {other!r} does not exist", entry.id)
    return entries


def load_faq(directory: Path = FAQ_DIR) -> tuple[FaqEntry, ...]:
    """Load and validate every `*.yaml` file of the FAQ directory, in file-name order."""
    entries: list[FaqEntry] = []
    for path in sorted(directory.glob("*.yaml")):
        entries.extend(parse_faq(path.read_text(encoding="utf-8"), path.name))
    if not entries:
        raise FaqError(str(directory), "no FAQ entries found")
    return validate(entries)


# -- residents' questions that train the matcher ---------------------------------------------
QUESTIONS_DIR = FAQ_DIR / "questions"
# Residents'-style letters written by GoCua's team (a measuring set until 2026-12-06, now training).
LETTERS_DIR = FAQ_DIR / "letters"
MAX_QUESTION = 1000  # the matcher reads at most this much of a message (faq_match.MAX_QUESTION_CHARS)
_QUESTION_KEYS = frozenset({"q", "id", "source", "style", "doubt"})


@dataclass(frozen=True)
class TrainingQuestion:
    """A resident's question found on a public page (retold, not copied), labelled with the entry
    that would satisfy the asker, or None for a neighbouring topic GoCua must decline."""

    text: str
    entry_id: str | None
    source: str
    phone_style: bool = False
    doubt: str | None = None  # why the label was unsure, where it was
    written: bool = False  # one of our own letters (conversations/faq/letters/), not a page's


def parse_questions(text: str, known_ids: Iterable[str], filename: str = "<questions>",
                    *, written: bool = False) -> list[TrainingQuestion]:
    """The training questions of one YAML document; an unknown entry id is an error. `written`:
    our own letters, whose `source` may be "written" instead of a page's link."""
    known = frozenset(known_ids)
    try:
        data = safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise FaqError(filename, f"not valid YAML: {exc}") from None
    if not isinstance(data, list):
        raise FaqError(filename, "must be a list of questions")
    found: list[TrainingQuestion] = []
    for position, raw in enumerate(data, 1):
        if not isinstance(raw, dict) or set(map(str, raw)) - _QUESTION_KEYS:
            raise FaqError(filename, f"question {position}: a mapping of {sorted(_QUESTION_KEYS)}")
        question = _text(raw.get("q"), f"question {position}", MAX_QUESTION, filename, None)
        entry_id = raw.get("id")
        if entry_id is not None and (not isinstance(entry_id, str) or entry_id not in known):
            raise FaqError(filename, f"question {position}: unknown entry id {entry_id!r}")
        style = raw.get("style")
        if style not in (None, "phone"):
            raise FaqError(filename, f"question {position}: style is 'phone' or absent, not {style!r}")
        source = raw.get("source")
        if not isinstance(source, str) or not (_URL.fullmatch(source) or (written and source == "written")):
            raise FaqError(filename, f"question {position}: source must be the page's http(s) link"
                           + (" or 'written'" if written else ""))
        doubt = raw.get("doubt")
        found.append(TrainingQuestion(question, entry_id, source, style == "phone",
                                      str(doubt) if doubt else None, written))
    return found


def load_questions(entries: Iterable[FaqEntry], directory: Path = QUESTIONS_DIR,
                   *, written: bool = False) -> tuple[TrainingQuestion, ...]:
    """Every `*.yaml` file of the training-questions directory, in file-name order (none: empty).
    `written`: the directory holds our own letters (LETTERS_DIR)."""
    ids = [entry.id for entry in entries]
    found: list[TrainingQuestion] = []
    for path in sorted(directory.glob("*.yaml")):
        found.extend(parse_questions(path.read_text(encoding="utf-8"), ids, path.name, written=written))
    return tuple(found)


def load_training(entries: Iterable[FaqEntry]) -> tuple[TrainingQuestion, ...]:
    """What trains the shipped matcher: the residents' questions, then our own letters."""
    shipped = tuple(entries)
    return load_questions(shipped) + load_questions(shipped, LETTERS_DIR, written=True)
