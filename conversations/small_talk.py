"""Small talk: "cảm ơn", "ok", "chào", "tạm biệt" are not questions for the FAQ.

`small_talk(text)` says which kind of small talk a whole message is, or None when it carries
anything else (a question that starts with "cảm ơn, cho hỏi ..." is a question). Pure: the
handler picks the friendly answer.
"""

from __future__ import annotations

import re
from enum import Enum

from conversations.folding import strip_marks as fold


class SmallTalk(Enum):
    GREETING = "greeting"
    THANKS = "thanks"
    OK = "ok"
    BYE = "bye"


_PHRASES: dict[str, SmallTalk] = {
    **dict.fromkeys(("xin chao", "chao", "alo", "hello", "hi", "hey", "good morning",
                     "good afternoon", "good evening", "chao buoi sang", "chao buoi chieu",
                     "chao buoi toi"), SmallTalk.GREETING),
    **dict.fromkeys(("cam on", "camon", "cam ou", "thanks", "thank", "thank you", "thanks a lot",
                     "thx", "tks", "many thanks"), SmallTalk.THANKS),
    **dict.fromkeys(("ok", "oke", "okay", "okie", "okela", "vang", "da vang", "da", "u", "uh",
                     "um", "duoc roi", "roi", "hieu roi", "da hieu", "biet roi", "got it",
                     "alright", "fine", "good", "tot", "tot qua", "👍", "🙏"), SmallTalk.OK),
    **dict.fromkeys(("tam biet", "bye", "goodbye", "bye bye", "hen gap lai", "see you"),
                    SmallTalk.BYE),
}

# Words that only make a phrase warmer: particles and the ways people address the bot.
_FILLERS = frozenset({
    "a", "nhe", "nha", "nhieu", "lam", "qua", "rat", "that",
    "ban", "em", "chau", "con", "anh", "chi", "co", "chu", "bac", "ong", "ba", "bot", "gocua",
    "very", "much", "so", "you", "again", "all", "oi",
})
_WORD = re.compile(r"[^\W_]+|👍|🙏", re.UNICODE)
_LONGEST = 60  # characters: anything longer is a message, not small talk


def small_talk(text: str) -> SmallTalk | None:
    """The kind of small talk the whole of `text` is, or None if it says anything else."""
    if not text or len(text) > _LONGEST:
        return None
    words = _WORD.findall(fold(text))
    core = " ".join(w for w in words if w not in _FILLERS)
    return _PHRASES.get(core)
