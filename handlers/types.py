"""What channels hand to the core and what the core hands back."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from handlers.buttons import ButtonData

BUTTON_LABEL_MAX = 40  # what a phone shows on a button before the platform cuts it anyway


@dataclass(frozen=True, init=False)
class Button:
    label: str
    payload: str  # button data as packed (handlers/buttons.py): what the channel carries

    def __init__(self, label: str, payload: str | ButtonData) -> None:
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "payload", payload if isinstance(payload, str) else payload.pack())


def sentence_case(text: str) -> str:
    """A text that starts a button with a capital, the rest as it is ("last 7 days" -> "Last 7 days";
    buttons are in sentence case, while the same words inside a sentence stay lower case)."""
    return text[:1].upper() + text[1:]


def button_label(text: str, limit: int = BUTTON_LABEL_MAX) -> str:
    """A button's text, shortened at a word boundary with "…" when it is too long."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if cut.rfind(" ") >= limit // 3:  # a word boundary not too near the start
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:–-(") + "…"


def short_name(name: str) -> str:
    """A Vietnamese full name cut to what tells people apart: the given name (the last word),
    with the family and middle names as initials ("Trần Văn Bảy" -> "T. V. Bảy")."""
    parts = name.split()
    if len(parts) < 2:
        return name
    return " ".join(f"{p[0]}." for p in parts[:-1]) + " " + parts[-1]


def person_label(mark: str, person: str | None, what: str, limit: int = BUTTON_LABEL_MAX) -> str:
    """A button for one person's item, the person first: "▶️ Trần Văn Bảy · VNeID". Too long,
    `what` is cut first (down to a few words), then the name keeps its given name."""
    person = " ".join((person or "").split())
    what = " ".join(what.split())
    if not person:
        return button_label(f"{mark} {what}", limit)
    full = f"{mark} {person} · {what}"
    if len(full) <= limit:
        return full
    for name in (person, short_name(person)):
        room = limit - len(f"{mark} {name} · ")
        if room >= min(len(what), 14):
            return f"{mark} {name} · {_shortened(what, room)}"
    return button_label(f"{mark} {short_name(person)} · {what}", limit)


_CODE_AT_END = re.compile(r"\s*(\([^()]{1,12}\))$")


def _shortened(text: str, limit: int) -> str:
    """`text` within `limit`, keeping a code at its end that tells it apart from its
    neighbours: "Residence confirmation (CT07)" -> "Residence… (CT07)"."""
    code = _CODE_AT_END.search(text)
    if len(text) <= limit or code is None or limit - len(code.group(1)) - 1 < 6:
        return button_label(text, limit)
    return f"{button_label(text[:code.start()], limit - len(code.group(1)) - 1)} {code.group(1)}"


@dataclass(frozen=True, init=False)
class Attachment:
    """A file to send with a reply: a document (export) or a photo (chart).

    Small files (a chart) travel as bytes; a big one (an export, streamed to disk) as the `path`
    of a temporary file, which the channel deletes once it is sent (bot/channels/runner.py)."""

    kind: str  # "document" | "photo"
    filename: str
    content: bytes
    path: str | None

    def __init__(self, kind: str, filename: str, data: bytes = b"", *, path: str | None = None) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "filename", filename)
        object.__setattr__(self, "content", data)
        object.__setattr__(self, "path", path)

    @property
    def data(self) -> bytes:
        """The file's bytes (read from `path` when it is on disk: only for small files)."""
        if self.path is None:
            return self.content
        with open(self.path, "rb") as fh:
            return fh.read()

    @property
    def size(self) -> int:
        return len(self.content) if self.path is None else os.path.getsize(self.path)

    def to_json(self) -> dict[str, Any]:
        if self.path is not None:
            return {"kind": self.kind, "filename": self.filename, "path": self.path}
        return {"kind": self.kind, "filename": self.filename, "data": self.content.hex()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Attachment:
        if raw.get("path"):
            return cls(raw["kind"], raw["filename"], path=raw["path"])
        return cls(kind=raw["kind"], filename=raw["filename"], data=bytes.fromhex(raw["data"]))


@dataclass(frozen=True)
class Address:
    """Where a reply goes when it is not the chat the update came from."""

    channel: str
    chat_id: str


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    columns: int = 1
    attachment: Attachment | None = None
    to: Address | None = None
    edit: bool = False  # a channel that can edit the message the button was on may do so
    # A note about the tap itself ("this button is out of date"): a channel whose taps have a
    # toast (Telegram) shows it there and takes the keyboard off the tapped message, sending
    # no message; others send the text. An empty toast only takes the keyboard off.
    toast: bool = False
    # Sizes of the first keyboard rows (the rest `columns` a row): (1, 2) puts Done alone, then
    # Skip | Problem. Channels that number their options ignore it.
    rows: tuple[int, ...] = ()
    # A message that later replies edit: the channel records where it landed under this key
    # (db/repo/notices.py record_message), e.g. "request:12" for a visit request's notice.
    key: str | None = None
    # The platform's id of the message this reply replaces (in the chat `to` names), as
    # recorded under a key: a channel that can edit does so, others send nothing.
    edit_ref: str | None = None
    # The channel deletes the message this reply answers, where it may (a citizen ID typed in
    # it: stored masked, then removed from the chat; handlers/pipeline.py).
    forget: bool = False
    preview: bool = True  # False: no link preview under the text (FAQ answers cite sources)
    # (role, locale): the chat's command menu changes to that role's commands in that language
    # (Telegram setMyCommands for this chat), sent with this reply; handlers/pipeline.py.
    menu: tuple[str, str] | None = None
    # Made after the update's commit (handlers/deferred.py): {"kind": ..., ...what it needs}.
    # Heavy replies (an export) are built then, holding no write lock, and the outbox keeps
    # this small description instead of the file.
    deferred: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.buttons:
            out["buttons"] = [[b.label, b.payload] for b in self.buttons]
            out["columns"] = self.columns
        if self.attachment is not None:
            out["attachment"] = self.attachment.to_json()
        if self.to is not None:
            out["to"] = [self.to.channel, self.to.chat_id]
        if self.edit:
            out["edit"] = True
        if self.toast:
            out["toast"] = True
        if self.rows:
            out["rows"] = list(self.rows)
        if self.key is not None:
            out["key"] = self.key
        if self.edit_ref is not None:
            out["edit_ref"] = self.edit_ref
        if self.forget:
            out["forget"] = True
        if not self.preview:
            out["preview"] = False
        if self.menu is not None:
            out["menu"] = list(self.menu)
        if self.deferred is not None:
            out["deferred"] = self.deferred
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Reply:
        return cls(
            text=raw["text"],
            buttons=tuple(Button(label, payload) for label, payload in raw.get("buttons", ())),
            columns=raw.get("columns", 1),
            attachment=Attachment.from_json(raw["attachment"]) if raw.get("attachment") else None,
            to=Address(*raw["to"]) if raw.get("to") else None,
            edit=raw.get("edit", False),
            toast=raw.get("toast", False),
            rows=tuple(raw.get("rows", ())),
            key=raw.get("key"),
            edit_ref=raw.get("edit_ref"),
            forget=raw.get("forget", False),
            preview=raw.get("preview", True),
            menu=(str(raw["menu"][0]), str(raw["menu"][1])) if raw.get("menu") else None,
            deferred=raw.get("deferred"),
        )


@dataclass(frozen=True)
class IncomingFile:
    """A file someone sent (a document): the platform's reference to fetch it, its name and
    size as the platform states them (nothing is downloaded until a handler asks)."""

    ref: str
    name: str
    size: int


@dataclass(frozen=True)
class Incoming:
    """One platform update, reduced to what the core needs.

    Exactly one of `text` and `payload` is set for updates the core acts on; an update with
    neither (a sticker, a photo) is `unsupported`.
    """

    channel: str
    chat_id: str
    sender_id: str
    update_id: str
    display_name: str = ""
    text: str | None = None
    payload: str | None = None
    language_hint: str | None = None
    # The platform's id of the message a button was on, set only by channels that can edit it
    # (Telegram; "<id>:media" for a photo or document, whose caption is edited instead).
    message_ref: str | None = None
    message_id: str | None = None  # the platform's id of the typed message itself (to delete it)

    file: IncomingFile | None = None  # a document sent (its text, if any, is the caption)

    @property
    def tapped(self) -> bool:
        """A button pressed on a message the channel can edit (and answer with a toast)."""
        return self.payload is not None and self.message_ref is not None

    @property
    def unsupported(self) -> bool:
        return self.text is None and self.payload is None and self.file is None
