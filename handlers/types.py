"""What channels hand to the core and what the core hands back."""

from __future__ import annotations

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
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:–-(") + "…"


@dataclass(frozen=True)
class Attachment:
    """A file to send with a reply: a document (export) or a photo (chart)."""

    kind: str  # "document" | "photo"
    filename: str
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "filename": self.filename, "data": self.data.hex()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Attachment:
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
    message_ref: str | None = None  # the platform's id of the message a button was on
    file: IncomingFile | None = None  # a document sent (its text, if any, is the caption)

    @property
    def unsupported(self) -> bool:
        return self.text is None and self.payload is None and self.file is None
