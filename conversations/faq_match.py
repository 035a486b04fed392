"""Match a resident's free-text question to an FAQ entry: pure, fast and explainable.

1. `tokens()` normalises: Unicode NFC, lower case, Vietnamese diacritics folded (đ -> d), at most
   MAX_QUESTION_CHARS read, numbers tidied (500.000đ, 500k -> "500 nghin dong"), common
   abbreviations and teen-code expanded (ko/k -> khong, dc -> duoc, sdt -> so dien thoai,
   bhyt -> bao hiem y te, ...; see ABBREVIATIONS).
2. `FaqIndex` is built once from the entries: every example phrasing (vi and en together, plus
   the English title) becomes a TF-IDF vector of word unigrams, bigrams (weighed down:
   BIGRAM_FACTOR) and CONCEPTS -- small synonym groups across both languages ("mat phi", "ton
   tien", "cost" -> @fee; "8 tuoi", "under 14" -> @child) that tell sibling topics apart. IDF
   is BM25's, counted over entries, so words every topic uses (lam, the nao, o dau, how, what)
   weigh little, and chat words (GENERIC) weigh less still.
3. A query word the index does not know is repaired if it can be: teen-code spelling (wen ->
   quen), Telex left-overs (maatj -> mat), words typed together (xacnhan -> xac nhan), or a typo
   within 1-2 edits (rapidfuzz) -- a short word only by a changed letter and only when the repair
   forms a known word pair with its neighbour, so "thoi tiet" does not become "thoi tien". A word
   that stays unknown keeps a high weight in the query, which is what makes off-topic questions
   score low. A word typed with diacritics that no example writes that way is another word,
   not the folded one (lúa "rice" is not lừa "cheat"; nhà is not nhớ).
4. A long message is read for its question (`question_parts`, issue 14 §3): the sentences that
   ask ("?", "cho tôi hỏi", "xin hỏi", "có được … không", "bao nhiêu" ...) and the last one that is
   not a courtesy weigh fully, the background BACKGROUND_FACTOR, greetings and thanks nothing;
   the facts that decide an answer (FACTS, FACT_PHRASES: ages, "sinh năm 1940", "không có lương
   hưu", "hộ nghèo", "tạm trú", "thẻ BHYT", "xe", "mất thẻ") weigh fully wherever they stand.
   A concept that contradicts an entry (BLOCKERS: a vehicle, a land title, a marriage, a
   social-insurance lump sum ...) keeps out every entry whose own examples never name it (SPARES
   lists the entries it commonly leads to); named only in the background it lowers them.
5. An entry's TF-IDF score (0..1) blends the best cosine against one of its examples and the
   cosine against all its examples together (CENTROID_SHARE); `ranked()` orders the entries by it
   and `top()` / `close()` list the closest above SUGGEST_FLOOR for "did you mean" buttons.
   `Match.why` names the terms that matched most.
6. Two learnt opinions read the message as `question_parts` weighs it (words, word pairs, letter
   4-grams), trained on the examples, on residents' questions retold from public pages
   (conversations/faq/questions/) and on our own residents'-style letters
   (conversations/faq/letters/; both `load_training`): naive Bayes, whose entry gets a small bonus
   in the TF-IDF ranking, and an averaged perceptron (PERCEPTRON_RUNS averaged), which also learns
   the out-of-scope questions as a "declined" class. `decide()` lets the perceptron choose among
   the entries TF-IDF has not kept out; `match()` answers with that entry only when its TF-IDF
   score reaches MATCH_THRESHOLD, TF-IDF ranks it first or naive Bayes names it, and "declined"
   does not outscore it. Otherwise GoCua says it does not know and offers the close topics.

MATCH_THRESHOLD is calibrated by `bench/faq.py --calibrate` on the calibration set
tests/faq_data/faq_calibration.yaml and the residents' questions cross-validated
(bench/faq_train.py), which also suggests SUGGEST_FLOOR; never on the measuring sets
tests/faq_data/faq_eval.yaml and faq_real.yaml (bench/faq.py prints the figures on them).
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import TypeVar, cast

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from conversations.faq_model import FaqEntry, TrainingQuestion, load_faq, load_training
from conversations.texts import N_

# Calibrated by `bench/faq.py --calibrate` (see the module docstring and bench/README.md): the
# threshold is the lowest score at which the calibration set (tests/faq_data/faq_calibration.yaml)
# is answered wrongly at most 2% of the time while the residents' questions, cross-validated,
# keep at least 85% of their out-of-scope ones declined, plus a 0.02 margin. It also suggests a
# floor for the "closest topics" (the score 90% of the calibration out-of-scope questions stay
# below: 0.251 today); the floor is kept at 0.275, above it, so that chit-chat gets no topics.
MATCH_THRESHOLD = 0.32
SUGGEST_FLOOR = 0.275
CENTROID_SHARE = 0.4
CLOSE_SHARE = 0.8  # a topic is offered as "really close" within this share of the best score
# Two learnt opinions (issue 14 §3, measured in bench/README.md), on the words, word pairs and
# letter 4-grams of the examples and the residents' questions, reading a message as
# question_parts weighs it: a naive Bayes classifier, whose entry gets SECOND_OPINION_BONUS in the
# TF-IDF ranking, and an averaged perceptron, which chooses the entry among those TF-IDF has not
# kept out (`FaqIndex.decide`). An answer is given only when TF-IDF ranks that entry first or
# naive Bayes names it, and the perceptron's "declined" class does not outscore it: a wrong
# answer is worse than "I don't know".
SECOND_OPINION_BONUS = 0.05  # chosen on the calibration set's in-scope ranking (93.0% -> 96.5% first)
NB_SMOOTHING = 0.1
# The perceptron: its passes over the examples and questions, and how many are trained (each on
# its own deterministic order) and averaged. One alone moved with the order of its samples:
# leaving out 1% of the questions at random swung the calibration set's ranked-first share between
# 87% and 93%; five averaged stay within 94-97% (bench/README.md). Trained with the index, ~0.8 s.
PERCEPTRON_EPOCHS = 12
PERCEPTRON_RUNS = 5

# A residents' question (conversations/faq/questions/) out of scope is learnt by the perceptron
# as the class "declined", numbered after the entries; this is its number while loading.
DECLINED = -1

MAX_QUESTION_CHARS = 1000  # a longer message is cut here: matching time stays bounded
SOURCE_LINE = N_("Source: {url}")

# Folded (no diacritics) token -> its expansion. Applied to questions and examples alike.
ABBREVIATIONS: dict[str, str] = {
    # không / được / đăng ký
    "ko": "khong", "k": "khong", "kh": "khong", "kg": "khong", "khg": "khong", "hok": "khong",
    "hong": "khong", "hem": "khong", "hum": "khong", "khum": "khong", "hk": "khong",
    "dc": "duoc", "dk": "dang ky", "dki": "dang ky", "dky": "dang ky", "dangky": "dang ky",
    "ki": "ky", "dkien": "dieu kien",
    # things
    "sdt": "so dien thoai", "dt": "dien thoai", "dthoai": "dien thoai", "dienthoai": "dien thoai",
    "tk": "tai khoan", "mk": "mat khau", "pass": "mat khau", "pw": "mat khau", "matkhau": "mat khau",
    "cccd": "can cuoc cong dan", "cmnd": "chung minh nhan dan", "cmt": "chung minh",
    "bhyt": "bao hiem y te", "bhxh": "bao hiem xa hoi",
    "dvc": "dich vu cong", "dichvucong": "dich vu cong", "dvcqg": "dich vu cong quoc gia",
    "ubnd": "uy ban nhan dan", "ub": "uy ban", "nd": "nghi dinh", "gplx": "giay phep lai xe",
    "hs": "ho so", "hso": "ho so", "app": "ung dung", "online": "truc tuyen", "sms": "tin nhan",
    "ttin": "thong tin", "tp": "thanh pho", "vnid": "vneid",
    # chat words
    "ntn": "nhu the nao", "j": "gi", "z": "vay", "bn": "bao nhieu", "bnhieu": "bao nhieu",
    "bh": "bao gio", "bgio": "bay gio", "bjo": "bay gio", "r": "roi", "ruj": "roi", "rui": "roi",
    "oy": "roi", "lm": "lam", "mn": "moi nguoi", "ng": "nguoi", "ns": "noi", "vs": "voi",
    "ms": "moi", "cx": "cung", "cug": "cung", "bik": "biet", "bit": "biet", "bjk": "biet",
    "wa": "qua", "mun": "muon", "t": "toi", "e": "em", "hnay": "hom nay", "ngan": "nghin",
    "vnd": "dong",
}
# Words typed with diacritics that fold to an abbreviation but are not one: "ngân" (bank) is not
# "ngan" (nghìn).
NOT_ABBREVIATIONS = frozenset({"ngân"})
# Pairs typed apart that are one word.
_JOINS = {("vn", "eid"): "vneid", ("v", "neid"): "vneid", ("zalo", "pay"): "zalopay"}

# Words and phrases (normalised) that mean the same thing, in both languages: each adds its
# concept as an extra feature, so "mat phi", "ton tien" and "cost" all meet at "@fee".
CONCEPTS: dict[str, tuple[str, ...]] = {
    "@fee": ("phi", "le phi", "mien phi", "mat phi", "ton tien", "mat tien", "dong tien", "tra tien",
             "bao nhieu tien", "thu tien", "fee", "cost", "free", "pay", "price", "charge"),
    "@valid": ("gia tri", "thoi han", "het han", "han dung", "con dung", "hieu luc", "co han", "valid",
               "validity", "expire"),
    "@deadline": ("han chot", "qua han", "tre han", "dung han", "60 ngay", "deadline", "time limit",
                  "late", "60 day"),
    "@use": ("dung duoc", "lam duoc gi", "tien ich", "tinh nang", "good for", "feature", "use"),
    "@where": ("o dau", "cho nao", "noi nao", "o cho", "where"),
    "@howlong": ("bao lau", "may ngay", "bao nhieu ngay", "thoi gian", "how long", "day"),
    "@forgot": ("quen", "khong nho", "lay lai", "forgot", "forget", "reset"),
    "@newphone": ("doi so", "thay so", "so moi", "doi dien thoai", "may moi", "dien thoai moi",
                  "new phone", "new number", "change number", "change my number"),
    "@child": ("tre", "tre em", "con nho", "be", "con nit", "duoi 14", "kid", "child", "children", "baby"),
    "@scam": ("lua dao", "lua", "gia mao", "xung", "gia danh", "scam", "fake", "fraud"),
    "@link": ("link", "duong link", "duong dan", "apk", "file apk"),
    "@elderly": ("nguoi gia", "cao tuoi", "nguoi cao tuoi", "ong ba", "cu gia", "elderly", "old people",
                 "old person"),
    "@both": ("ca hai", "cung luc", "cung mot luc", "song song", "cong don", "ca 2", "hai khoan",
              "hai loai", "them", "nhan them", "both", "same time", "at once", "on top", "add"),
    "@payout": ("chi tra", "nhan tien", "lanh tien", "ngan hang", "tien mat", "vi dien tu",
                "chuyen khoan", "tai khoan ngan hang", "bank", "cash", "paid", "wallet"),
    "@apply": ("nop", "ho so", "don", "thu tuc", "mau 01", "mau so 01", "apply", "application", "form"),
    "@who": ("ai", "dieu kien", "doi tuong", "who", "eligible", "eligibility",
             # "có được nhận tiền … không" asks who may get it, not how it is paid
             "duoc nhan tien", "duoc lanh tien", "duoc huong", "co duoc nhan", "co duoc tro cap"),
    "@activate": ("kich hoat", "activate", "activation"),
    "@register": ("dang ky", "register", "registration", "sign up"),
    "@login": ("dang nhap", "log in", "login", "sign in"),
    "@home": ("den nha", "toi nha", "tan nha", "qua nha", "tai nha", "home", "house"),
    "@volunteer": ("doan vien", "tinh nguyen", "thanh nien", "volunteer", "youth union"),
    "@signature": ("chu ky so", "ky so", "chu ky dien tu", "signature", "sign"),
    "@birth": ("khai sinh", "birth", "newborn", "moi sinh", "moi de", "so sinh"),
    "@residence": ("cu tru", "ct07", "residence"),
    "@pension": ("huu tri xa hoi", "social pension", "pension"),
    "@allowance": ("tro cap xa hoi", "bao tro xa hoi", "social allowance", "social assistance"),
    "@police": ("cong an", "police"),
    "@fine": ("phat", "bi phat", "xu phat", "fine", "penalty"),
    "@password": ("mat khau", "password", "passcode"),
    "@level1": ("muc 1", "muc mot", "level 1", "level one"),
    "@level2": ("muc 2", "muc hai", "level 2", "level two"),
    "@differ": ("khac", "khac nhau", "phan biet", "difference", "different"),
    "@portal": ("dich vu cong", "cong dich vu cong", "public service", "portal", "dichvucong"),
    "@insurance": ("bao hiem y te", "the bao hiem", "health insurance", "health card"),
    "@show": ("xuat trinh", "dua cho xem", "show", "present"),
}

# Facts that decide the answer (issue 14 §3): in a message's background ("my mother is 80, has no
# pension") they weigh as much as in its question sentence. Concepts, and the words and word pairs
# of FACT_PHRASES (folded, normalised).
FACTS = frozenset({"@elderly", "@child", "@insurance"})
FACT_PHRASES = ("khong co luong huu", "khong luong huu", "chua co luong huu", "ho ngheo", "can ngheo",
                "tam tru", "thuong tru", "the bao hiem y te", "xe", "mat the", "bi mat", "lam lai",
                "cap lai", "khuyet tat", "khai tu", "qua doi")


# Concepts that contradict an entry (issue 14 §3): a question naming one is about something GoCua
# does not answer (a motorbike transfer, a land title, a marriage ...), however many other words it
# shares with an entry. Such a concept keeps out every entry whose own examples never name it.
# Phrases are folded and normalised like questions ("sổ đỏ" and "so do" are the same).
BLOCKERS: dict[str, tuple[str, ...]] = {
    "!vehicle": ("xe", "xe may", "o to", "oto", "mo to", "sang ten xe", "dang ky xe", "bien so",
                 "motorbike", "motorcycle", "vehicle", "car"),
    "!land": ("so do", "so hong", "dat dai", "thua dat", "manh dat", "quyen su dung dat",
              "giay chung nhan quyen su dung", "land", "land title"),
    "!marriage": ("ket hon", "hon nhan", "marriage", "married", "marry"),
    "!divorce": ("ly hon", "ly di", "divorce"),
    "!inheritance": ("thua ke", "di chuc", "di san", "inheritance", "inherit"),
    "!lumpsum": ("bao hiem xa hoi mot lan", "bhxh mot lan", "huong mot lan", "rut bao hiem xa hoi",
                 "rut bhxh", "lump sum"),
    "!maternity": ("thai san", "maternity"),
    "!unemployment": ("that nghiep", "unemployment"),
    "!tax": ("ma so thue", "thue thu nhap", "quyet toan thue", "income tax", "tax code"),
    "!licence": ("giay phep lai xe", "bang lai", "driving licence", "driving license", "driver license"),
    "!labour": ("hop dong lao dong", "nguoi su dung lao dong", "labour contract", "labor contract",
                "employment contract"),
    "!pensioner": ("dang huong luong huu", "dang nhan luong huu", "tang luong huu", "noi nhan luong huu",
                   "nghi huu truoc tuoi", "nghi huu som", "dieu chinh luong huu"),
    "!socialinsurance": ("bao hiem xa hoi tu nguyen", "bao hiem xa hoi bat buoc", "so bao hiem xa hoi"),
    "!passport": ("ho chieu", "passport", "visa"),
    "!civilstatus": ("cai chinh", "thay doi ho ten", "doi ten", "xac dinh lai dan toc", "ban sao trich luc",
                     "trich luc ban sao", "cap ban sao", "change of name",
                     # wrong personal data on a card or in VNeID: corrected, not reissued
                     "sai ngay sinh", "sai nam sinh", "sai ngay thang nam sinh", "sai ho ten",
                     "sai que quan", "sua ngay sinh", "sua nam sinh", "sua que quan",
                     "wrong date of birth"),
    "!criminalrecord": ("ly lich tu phap", "criminal record"),
    "!business": ("ho kinh doanh", "dang ky kinh doanh", "giay phep kinh doanh", "business licence",
                  "business license"),
    "!tuition": ("hoc phi", "tuition"),
    "!treatment": ("vien phi", "nam vien", "nhap vien", "ra vien", "phau thuat", "mo mat", "mo tim",
                   "thanh toan lai", "mua thuoc", "nha thuoc", "thuoc ngoai danh muc", "hospital bill",
                   "surgery", "reimburse", "reimbursed", "pharmacy"),
    "!paidinsurance": ("bao hiem y te hoc sinh", "bao hiem y te ho gia dinh", "bao hiem y te sinh vien"),
}
# Entries a blocking concept does not keep out, by id prefix, because the concept is a common
# reason to need them: residence is registered after a marriage, a divorce or buying a house
# (land); a death is registered to settle an inheritance or a land title.
_REGISTERS = ("residence.permanent", "residence.temporary")
SPARES: dict[str, tuple[str, ...]] = {
    "!marriage": _REGISTERS, "!divorce": _REGISTERS, "!land": (*_REGISTERS, "death."),
    "!inheritance": ("death.",),
}
# Phrases that contain a blocking word but are not that concept ("xe lăn" is a wheelchair).
NOT_BLOCKING = ("xe lan", "xe buyt", "wheelchair",
                # typed wrong while registering: a mistake to redo, not a correction of the card
                "nhap sai ngay sinh", "nhap sai nam sinh", "nhap sai ho ten", "nhap sai que quan",
                "go sai ngay sinh", "go sai nam sinh")

# Chat and question words: low weight whatever their IDF (questions are full of them).
_GENERIC_WORDS = (
    "toi tui minh em anh ong ba co chu bac chau ban oi a ah ak nha nhe nhen nhi ha voi cho hoi ai "
    "xin giup vay the nao sao gi lam duoc khong la thi ma roi phai can muon di o dau bao lau nhieu "
    "may cai nay do kia nhu va hay hoac de cua trong tren khi neu se da van nua lai ra vao "
    "len mot cac nhung nguoi gio biet oke ok uh um vang dum gium kieu ne hen chut xiu vui long "
    "luon mai "  # mai: "ngày mai" (tomorrow) far more often than "mai táng" (funeral, a pair)
    "i me my we you your he she it its is are am was be been do does did can could will would "
    "should may might must the a an to of in on at for from with by and or if what how where when "
    "who which why that this there here have has had get got not no yes please need want know "
    "tell any anything some about into onto just still also than then them they our us his her "
    "him their own mine myself yourself one so as all"
)
GENERIC = frozenset(_GENERIC_WORDS.split())
GENERIC_FACTOR = 0.35
BIGRAM_FACTOR = 0.2
IDF_FLOOR = 0.1
CONCEPT_FACTOR = 2.0
UNKNOWN_WORD_IDF = 1.0  # times the largest IDF: an unknown content word weighs like the rarest
REPAIRED_FACTOR = 0.8   # a repaired word counts a little less than a word typed right

_MARKS = re.compile(r"[\u0300-\u036f]")
_WORD = re.compile(r"[a-z0-9]+")
_RAW_WORD = re.compile(r"[^\W_]+")
_TONES = re.compile(r"[\u0300\u0301\u0303\u0309\u0323]")
_THOUSANDS = re.compile(r"(?<=\d)[.,](?=\d{3}(?!\d))")
_NUMBER = re.compile(r"(\d+)(k|tr|trieu|nghin|ngan|d|dong|vnd)?")
_TELEX_TONE = re.compile(r"(?<=[a-z]{2})[sfrxj]$")
_TELEX_DOUBLE = (("aa", "a"), ("aw", "a"), ("ee", "e"), ("oo", "o"), ("ow", "o"), ("uw", "u"), ("dd", "d"))
_TEEN_PREFIX = (("w", "qu"), ("j", "gi"), ("f", "ph"), ("dz", "d"), ("z", "d"))


def fold(text: str) -> str:
    """NFC, lower case, Vietnamese diacritics removed (đ -> d); other characters kept."""
    text = unicodedata.normalize("NFC", text).lower().replace("đ", "d")
    return _MARKS.sub("", unicodedata.normalize("NFD", text))


def _number(token: str) -> list[str]:
    match = _NUMBER.fullmatch(token)
    if match is None:
        return [token]
    digits, unit = match.groups()
    if len(digits) > 12:
        return [digits]
    value = int(digits)
    if unit in ("k", "nghin", "ngan"):
        words = [str(value), "nghin"]
    elif unit in ("tr", "trieu"):
        words = [str(value), "trieu"]
    elif value >= 1_000_000 and value % 1_000_000 == 0:
        words = [str(value // 1_000_000), "trieu"]
    elif value >= 1000 and value % 1000 == 0:
        words = [str(value // 1000), "nghin"]
    else:
        words = [str(value)]
    return [*words, "dong"] if unit in ("d", "dong", "vnd") else words


def _stem(word: str) -> str:
    """Light English suffix stripping. No folded Vietnamese syllable ends in -s, -ed or -ing, or
    is 6+ letters ending in -e, so Vietnamese words pass through unchanged."""
    if len(word) >= 6 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) >= 5 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) >= 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word[:-1] if len(word) >= 6 and word.endswith("e") else word


def _marked(word: str) -> str:
    """The word with its tone marks removed but its letters kept (lúa -> lua, lừa -> lưa)."""
    return unicodedata.normalize("NFC", _TONES.sub("", unicodedata.normalize("NFD", word)))


def words_with_marks(text: str) -> list[tuple[str, str | None]]:
    """`tokens`, each with its Vietnamese letters (ă â ê ô ơ ư đ, tone marks dropped) when the
    word was typed with diacritics and kept as typed, else None."""
    return list(_words_with_marks(text))


@lru_cache(maxsize=4096)  # a message is read several times (parts, blocking concepts, 2nd opinion)
def _words_with_marks(text: str) -> tuple[tuple[str, str | None], ...]:
    text = unicodedata.normalize("NFC", text[:MAX_QUESTION_CHARS]).lower()
    text = _THOUSANDS.sub("", text.replace("'", "").replace("\u2019", ""))
    words: list[tuple[str, str | None]] = []
    for raw in _RAW_WORD.findall(text):
        folded = raw if raw.isascii() else fold(raw)
        for piece in _WORD.findall(folded):
            marked = _marked(raw) if piece == folded != raw else None
            for word in _number(piece) if piece[0].isdigit() else [piece]:
                expanded = (word if marked in NOT_ABBREVIATIONS else ABBREVIATIONS.get(word, word)).split()
                for part in expanded:
                    stem = _stem(part)
                    words.append((stem, marked if stem == piece else None))
    joined: list[tuple[str, str | None]] = []
    for word, marked in words:
        if joined and (joined[-1][0], word) in _JOINS:
            joined[-1] = (_JOINS[joined[-1][0], word], None)
        else:
            joined.append((word, marked))
    return tuple(joined)


def tokens(text: str) -> list[str]:
    """The normalised words of a text (see the module docstring); [] for nothing usable."""
    return [word for word, _ in words_with_marks(text)]


def normalize(text: str) -> str:
    """The normalised text: `tokens` joined by spaces."""
    return " ".join(tokens(text))


# Question-word concepts: they tell sibling entries apart but must not carry a match alone.
ASPECTS = frozenset({"@where", "@howlong", "@who"})
_PHRASES: dict[tuple[str, ...], str] = {
    tuple(_stem(w) for w in phrase.split()): concept
    for concept, phrases in CONCEPTS.items() for phrase in phrases
}
_LONGEST_PHRASE = max(len(p) for p in _PHRASES)


def _age(words: list[str], start: int) -> str | None:
    """@child for "8 tuoi", "8 year old", "duoi 14"; @elderly for 60 and over."""
    if not words[start].isdigit() or len(words[start]) > 3:
        return None
    age = int(words[start])
    after = words[start + 1:start + 2]
    before = words[start - 1] if start else ""
    if not (after in (["tuoi"], ["year"], ["years"]) or before in ("duoi", "under", "tren", "over")):
        return None
    if age < 14 or (age == 14 and before in ("duoi", "under")):
        return "@child"
    return "@elderly" if age >= 60 else None


def concepts(words: list[str]) -> list[str]:
    """The CONCEPTS named by the words (each once, in order of appearance), and age groups."""
    found: list[str] = []
    covered = 0  # where the phrases matched so far end: one wholly inside them does not count
    for start in range(len(words)):
        age = _age(words, start)
        if age is not None and age not in found:
            found.append(age)
        for length in range(min(_LONGEST_PHRASE, len(words) - start), 0, -1):
            concept = _PHRASES.get(tuple(words[start:start + length]))
            if concept is not None:
                if start + length > covered:  # "nhận tiền" inside "được nhận tiền" is not @payout
                    if concept not in found:
                        found.append(concept)
                    covered = start + length
                break
    return found


_BLOCK_PHRASES: dict[tuple[str, ...], str] = {
    **{tuple(_stem(w) for w in phrase.split()): concept
       for concept, phrases in BLOCKERS.items() for phrase in phrases},
    **{tuple(_stem(w) for w in phrase.split()): "" for phrase in NOT_BLOCKING},
}
_LONGEST_BLOCK = max(len(p) for p in _BLOCK_PHRASES)


def blockers(words: list[str]) -> frozenset[str]:
    """The BLOCKERS named by the words (longest phrase first; NOT_BLOCKING phrases name none)."""
    found: set[str] = set()
    start = 0
    while start < len(words):
        for length in range(min(_LONGEST_BLOCK, len(words) - start), 0, -1):
            concept = _BLOCK_PHRASES.get(tuple(words[start:start + length]))
            if concept is not None:
                if concept:
                    found.add(concept)
                start += length
                break
        else:
            start += 1
    return frozenset(found)


_BORN = re.compile(r"\bsinh(?:\s+n[aă]m)?\s+(1[89]\d\d)\b", re.IGNORECASE)
ELDERLY_BORN_BY = 1965  # born in or before: 60 or older from 2025 on, whatever the date


def _birth_years(text: str) -> str:
    """"sinh 1935", "sinh năm 1950" -> "cao tuổi" (elderly) when the year makes the person
    elderly whenever asked; a later year is left as written."""
    return _BORN.sub(lambda m: "cao tuổi" if int(m.group(1)) <= ELDERLY_BORN_BY else m.group(0), text)


# -- the question in a long message ------------------------------------------------------------
# Real messages open with a greeting and a paragraph of background and end with thanks; the
# question is in the sentences below. Those weigh fully, the background BACKGROUND_FACTOR, the
# courtesies nothing. A message of one sentence is all question.
BACKGROUND_FACTOR = 0.35
BACKGROUND_BLOCK_FACTOR = 0.5  # an entry's score when a contradicting concept is only in the background
_SENTENCE = re.compile(r"[^.?!;:\n]+[.?!;:\n]*")
_ASKS = re.compile(
    r"\b(cho (toi|tui|em|minh|chau|con|hoi)|xin (hoi|tu van|giai dap|huong dan)|muon hoi|nho hoi|"
    r"hoi (la|ve|giup|xem)|co (duoc|phai|can|the|bi|mat).*\b(khong|ko|k|chua|hong)\b|"
    r"(khong|ko|chua) (a|vay|nhi|ha|nhe)?\s*$|the nao|ra sao|bao nhieu|o dau|lam sao|"
    r"nhu nao|lam gi|can gi|giay to gi|thu tuc gi|how|what|can i|do i|is it|where|when)\b"
)
_COURTESY = re.compile(
    r"\b(cam on|thank|chao|kinh gui|kinh chao|mong (duoc|nhan|ban|luat su|quy)|"
    r"tran trong|rat mong|xin loi)\b"
)


def _fact_features() -> frozenset[str]:
    found: set[str] = set()
    for phrase in FACT_PHRASES:
        words = phrase.split()
        found.update(words)
        found.update(f"{a} {b}" for a, b in pairwise(words))
    return frozenset(found - GENERIC) | FACTS


FACT_FEATURES = _fact_features()


@lru_cache(maxsize=1024)
def _question_parts(text: str) -> tuple[tuple[str, float], ...]:
    return tuple(question_parts(text))


def question_parts(text: str) -> list[tuple[str, float]]:
    """The message cut into sentences, each with its weight: 1 for the question sentences (a
    "?", "cho tôi hỏi", "xin hỏi", "có được … không", "bao nhiêu" ...) and the last sentence
    that is not a courtesy, BACKGROUND_FACTOR for the rest, 0 for greetings and thanks."""
    text = text[:MAX_QUESTION_CHARS]
    sentences = [s.strip() for s in _SENTENCE.findall(text) if _WORD.search(fold(s))]
    if len(sentences) <= 1:
        return [(text, 1.0)]
    weights: list[float] = []
    for sentence in sentences:
        folded = fold(sentence)
        words = _WORD.findall(folded)
        if _COURTESY.search(folded) and len(words) <= 12 and not _ASKS.search(folded):
            weights.append(0.0)
        elif "?" in sentence or _ASKS.search(folded):
            weights.append(1.0)
        else:
            weights.append(BACKGROUND_FACTOR)
    for i in range(len(sentences) - 1, -1, -1):
        if weights[i] > 0:
            weights[i] = 1.0
            break
    return list(zip(sentences, weights, strict=True))


def _letter_grams(words: list[str]) -> set[str]:
    """The second opinion's features: words, word pairs and letter 4-grams within words."""
    found = set(words)
    found.update(f"{a}_{b}" for a, b in pairwise(words))
    for word in words:
        padded = f" {word} "
        found.update(padded[i:i + 4] for i in range(len(padded) - 3))
    return found


@lru_cache(maxsize=256)
def _weighted_grams(question: str) -> dict[str, float]:
    """_letter_grams of the question, each weighing as the weightiest question part having it."""
    weighted: dict[str, float] = {}
    for part, weight in _question_parts(question):
        if weight > 0:
            for gram in _letter_grams(tokens(part)):
                weighted[gram] = max(weighted.get(gram, 0.0), weight)
    return weighted


def _features(words: list[str]) -> list[str]:
    pairs = [f"{a} {b}" for a, b in pairwise(words)]
    return words + pairs + concepts(words)


def _idf(entries: int, having: int) -> float:
    """BM25's IDF over entries (floored): sharper than log(N/df) between sibling topics."""
    return max(IDF_FLOOR, math.log((entries - having + 0.5) / (having + 0.5)))


def _feature_factor(feature: str) -> float:
    if feature.startswith("@"):
        return CONCEPT_FACTOR * (GENERIC_FACTOR if feature in ASPECTS else 1.0)
    parts = feature.split(" ")
    factor = BIGRAM_FACTOR if len(parts) > 1 else 1.0
    return factor * (GENERIC_FACTOR if all(p in GENERIC for p in parts) else 1.0)


# (feature -> its span's number, span starts, rows, values): see _arrays
Postings = tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]
_T = TypeVar("_T")


def _arrays(postings: dict[str, list[tuple[int, float]]]) -> Postings:
    """Postings in one flat layout (compressed sparse rows), for `_summed`: feature f's postings
    are rows[starts[n]:starts[n + 1]] and values[...] of the same span, n = columns[f]."""
    columns = {feature: n for n, feature in enumerate(postings)}
    lengths = np.fromiter((len(found) for found in postings.values()), np.intp, len(postings))
    starts = np.concatenate(([0], np.cumsum(lengths))).astype(np.intp)
    rows = np.fromiter((row for found in postings.values() for row, _ in found), np.intp, int(starts[-1]))
    values = np.fromiter((v for found in postings.values() for _, v in found), np.float64, int(starts[-1]))
    return columns, starts, rows, values


Dense = tuple[dict[str, int], np.ndarray]  # feature -> its row of the matrix (features x entries)


def _dense(postings: dict[str, list[tuple[int, float]]], rows: int) -> Dense:
    """Postings over few rows (the entries) as one dense matrix, for `_dense_summed`."""
    columns = {feature: n for n, feature in enumerate(postings)}
    matrix = np.zeros((len(columns), rows))
    for feature, found in postings.items():
        for row, value in found:
            matrix[columns[feature], row] = value
    return columns, matrix


def _known(columns: dict[str, int], weights: dict[str, float],
           dtype: type[np.floating] | np.dtype = np.float64) -> tuple[np.ndarray, np.ndarray] | None:
    """(columns, weights) of the weighted features that `columns` knows, in the weights' order,
    as arrays for one gather; None when it knows none."""
    known = [(columns[f], w) for f, w in weights.items() if f in columns]
    if not known:
        return None
    return (np.fromiter((c for c, _ in known), np.intp, len(known)),
            np.fromiter((w for _, w in known), dtype, len(known)))


def _dense_summed(dense: Dense, weights: dict[str, float]) -> np.ndarray:
    """`_summed` over a `_dense` matrix: one gather and one product instead of a numpy operation
    per feature (a question has hundreds of letter 4-grams)."""
    columns, matrix = dense
    found = _known(columns, weights, matrix.dtype)
    if found is None:
        return np.zeros(matrix.shape[1])
    index, values = found
    return values @ matrix[index]


def _summed(postings: Postings, weights: dict[str, float], rows: int) -> np.ndarray:
    """For each row, the sum over the weighted features of weight x the row's posting value: the
    known features' spans gathered at once (a few numpy operations, not two per feature)."""
    columns, starts, flat_rows, flat_values = postings
    found = _known(columns, weights)
    if found is None:
        return np.zeros(rows)
    index, weight = found
    begin = starts[index]
    length = starts[index + 1] - begin
    ends = np.cumsum(length)
    at = np.repeat(begin - ends + length, length) + np.arange(int(ends[-1]))
    return np.bincount(flat_rows[at], weights=flat_values[at] * np.repeat(weight, length), minlength=rows)


@dataclass(frozen=True)
class Match:
    id: str
    score: float
    why: tuple[str, ...] = ()


def _normalised(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
    return {f: w / norm for f, w in vector.items()}


class FaqIndex:
    """TF-IDF index of the entries' examples; build once, then `match` / `top` many times."""

    def __init__(self, entries: Iterable[FaqEntry], *, questions: Iterable[TrainingQuestion] = ()) -> None:
        """`questions`: residents' questions that train the two opinions besides the examples, read
        as `question_parts` weighs them (not TF-IDF examples); one about an entry this index does
        not hold is left out."""
        self.entries: tuple[FaqEntry, ...] = tuple(entries)
        self.by_id = {entry.id: entry for entry in self.entries}
        number_of = {entry.id: number for number, entry in enumerate(self.entries)}
        self.questions: tuple[TrainingQuestion, ...] = tuple(
            q for q in questions if q.entry_id is None or q.entry_id in number_of)
        texts: list[tuple[int, list[str]]] = []
        # For each word, the ways it was written with diacritics in the examples: a question that
        # writes it with other letters means another word (lúa "rice" is not lừa "cheat").
        self._marks: dict[str, set[str]] = {}
        for number, entry in enumerate(self.entries):
            for text in (*entry.examples, entry.title):
                pairs = words_with_marks(text)
                for word, marked in pairs:
                    if marked is not None:
                        self._marks.setdefault(word, set()).add(marked)
                if pairs:
                    texts.append((number, [word for word, _ in pairs]))
        # Learnt from: (entry number or DECLINED, weighted grams): examples weigh 1 throughout.
        self._samples: list[tuple[int, dict[str, float]]] = [
            (number, dict.fromkeys(_letter_grams(words), 1.0)) for number, words in texts]
        # The residents' questions train the opinions only: as TF-IDF examples their everyday
        # words (ngày mai, thời tiết) became known and off-topic chat scored higher (bench/README.md).
        for question in self.questions:
            number = DECLINED if question.entry_id is None else number_of[question.entry_id]
            self._samples.append((number, dict(_weighted_grams(question.text))))
        self._declines = int(any(number == DECLINED for number, _ in self._samples))
        documents: list[set[str]] = [set() for _ in self.entries]  # IDF counts entries, not examples
        # The blocking concepts an entry's own examples name: those do not keep it out.
        self._tolerates: list[set[str]] = [set() for _ in self.entries]
        for number, words in texts:
            documents[number].update(_features(words))
            self._tolerates[number] |= blockers(words)
        for number, entry in enumerate(self.entries):
            self._tolerates[number] |= {b for b, spared in SPARES.items() if entry.id.startswith(spared)}
        df: dict[str, int] = {}
        for features in documents:
            for feature in features:
                df[feature] = df.get(feature, 0) + 1
        n = len(documents)
        self.idf = {f: _idf(n, count) * _feature_factor(f) for f, count in df.items()}
        self.unknown_weight = UNKNOWN_WORD_IDF * _idf(n, 1)
        self.vocab = frozenset(f for f in df if " " not in f and not f.startswith("@"))
        self.pairs = frozenset(f for f in df if " " in f)
        # Most widespread words first, so that equally close typo repairs prefer them.
        self._vocab_list = sorted(self.vocab, key=lambda w: (-df[w], w))
        self._repairs: dict[str, str | None] = {}

        example_entry: list[int] = []
        postings: dict[str, list[tuple[int, float]]] = {}
        centroids: list[dict[str, float]] = [{} for _ in self.entries]
        for number, words in texts:
            vector = _normalised({f: self.idf[f] for f in _features(words)})
            example = len(example_entry)
            example_entry.append(number)
            for feature, weight in vector.items():
                postings.setdefault(feature, []).append((example, weight))
                centroids[number][feature] = centroids[number].get(feature, 0.0) + weight
        self._example_entry = np.array(example_entry, dtype=np.intp)
        self._postings = _arrays(postings)
        self._build_second_opinion()
        self._columns, self._linear = self._train_linear()
        self._last: dict[str, tuple[str, object]] = {}  # _remembered: per kind, the last question
        centroid_postings: dict[str, list[tuple[int, float]]] = {}
        self._centroids = [_normalised(c) for c in centroids]
        for number, centroid in enumerate(self._centroids):
            for feature, weight in centroid.items():
                centroid_postings.setdefault(feature, []).append((number, weight))
        self._centroid_postings = _dense(centroid_postings, len(self.entries))

    def _build_second_opinion(self) -> None:
        """Naive Bayes (multinomial over weighted feature counts, additive smoothing) on the learnt
        samples' _letter_grams: an example's count 1 each, a question's as `question_parts`
        weighs it; the out-of-scope questions are not learnt here."""
        counts: list[dict[str, float]] = [{} for _ in self.entries]
        for number, grams in self._samples:
            if number == DECLINED:
                continue
            for gram, weight in grams.items():
                counts[number][gram] = counts[number].get(gram, 0) + weight
        vocabulary = {gram for c in counts for gram in c}
        alpha = NB_SMOOTHING
        base = [math.log(alpha / (sum(c.values()) + alpha * len(vocabulary))) for c in counts]
        nb_postings: dict[str, list[tuple[int, float]]] = {}
        for number, c in enumerate(counts):
            for gram, k in c.items():
                nb_postings.setdefault(gram, []).append((number, math.log((k + alpha) / alpha)))
        self._nb_postings = _dense(nb_postings, len(self.entries))
        self._nb_base = np.array(base)

    def _train_linear(self) -> tuple[dict[str, int], np.ndarray]:
        """PERCEPTRON_RUNS averaged multiclass perceptrons, each itself averaged, on the learnt
        samples' weighted _letter_grams, each run in its own deterministic order; the out-of-scope
        questions, when there are any, form one more class. The weights are dense numpy arrays
        (features x classes): dicts took seconds once the residents' questions were learnt.
        Returns each gram's column and the averaged weights."""
        columns: dict[str, int] = {}
        samples: list[tuple[int, np.ndarray, np.ndarray]] = []
        last = len(self.entries)  # the "declined" class, when there is one
        for number, grams in self._samples:
            ordered = sorted(grams.items())
            index = np.fromiter((columns.setdefault(g, len(columns)) for g, _ in ordered), np.int64,
                                len(ordered))
            values = np.fromiter((v for _, v in ordered), np.float64, len(ordered))
            samples.append((last if number == DECLINED else number, index, values))
        classes = len(self.entries) + self._declines
        averaged = np.zeros((len(columns), classes))
        for run in range(PERCEPTRON_RUNS):
            weights = np.zeros((len(columns), classes))
            totals = np.zeros((len(columns), classes))  # sum of step * update: the average's correction
            step = 1
            shuffled = samples if not run else random.Random(run).sample(samples, len(samples))
            for epoch in range(PERCEPTRON_EPOCHS):
                order = shuffled[epoch % 2::2] + shuffled[1 - epoch % 2::2] if epoch else shuffled
                mistakes = 0
                for number, index, values in order:
                    scores = values @ weights[index]
                    scores[number] -= 1e-9  # a tie is a mistake: the right class must win outright
                    guess = int(scores.argmax())
                    if guess != number:
                        mistakes += 1
                        weights[index, number] += values
                        weights[index, guess] -= values
                        totals[index, number] += step * values
                        totals[index, guess] -= step * values
                    step += 1
                if not mistakes:
                    # Every sample is right: no later pass changes anything, so its steps only
                    # count in the average.
                    step += (PERCEPTRON_EPOCHS - epoch - 1) * len(order)
                    break
            averaged += weights - totals / step
        return columns, (averaged / PERCEPTRON_RUNS).astype(np.float32)

    def linear_scores(self, question: str) -> list[float] | None:
        """The averaged perceptron's score of each entry (then of "declined", when it learnt
        that class), or None when the question has no feature it knows."""
        found = _known(self._columns, _weighted_grams(question), np.float32)
        if found is None:
            return None
        index, values = found
        return (values @ self._linear[index]).tolist()

    def _remembered(self, kind: str, question: str, compute: Callable[[], _T]) -> _T:
        """`compute()` for the last question asked of this `kind`, kept: one message is read by
        several methods in a row (an unanswered question: `match`, then `close` for the topics)."""
        last = self._last.get(kind)
        if last is not None and last[0] == question:
            return cast(_T, last[1])
        value = compute()
        self._last[kind] = (question, value)
        return value

    def _nb_number(self, question: str) -> int | None:
        return self._remembered("naive Bayes", question, lambda: self._nb_classify(question))

    def _nb_classify(self, question: str) -> int | None:
        columns, matrix = self._nb_postings
        found = _known(columns, _weighted_grams(question))
        if found is None:
            return None
        index, weights = found
        scores = self._nb_base * sum(weights.tolist()) + weights @ matrix[index]
        return int(scores.argmax())

    def _repair(self, word: str, before: str | None, after: str | None) -> str | None:
        """A known word (or two) that an unknown `word` was probably meant to be, else None."""
        key = f"{before}|{word}|{after}"
        if key in self._repairs:
            return self._repairs[key]
        if len(self._repairs) > 50_000:
            self._repairs.clear()
        found = self._find_repair(word, before, after)
        self._repairs[key] = found
        return found

    def _fits(self, candidate: str, before: str | None, after: str | None) -> bool:
        return f"{before} {candidate}" in self.pairs or f"{candidate} {after}" in self.pairs

    def _find_repair(self, word: str, before: str | None, after: str | None) -> str | None:
        if word.isdigit() or len(word) < 2:
            return None
        for old, new in _TEEN_PREFIX:
            if word.startswith(old) and (fixed := new + word[len(old):]) in self.vocab:
                return fixed
        telex = word
        for old, new in _TELEX_DOUBLE:
            telex = telex.replace(old, new)
        telex = _TELEX_TONE.sub("", telex)
        if telex != word and telex in self.vocab:
            return telex
        if len(word) >= 5:
            for cut in range(2, len(word) - 1):
                left, right = word[:cut], word[cut:]
                if left in self.vocab and right in self.vocab and f"{left} {right}" in self.pairs:
                    return f"{left} {right}"
        if len(word) < 3:
            return None
        most = 1 if len(word) < 7 else 2
        candidates = process.extract(
            word, self._vocab_list, scorer=Levenshtein.distance, score_cutoff=most, limit=8
        )
        # Not into a chat word; and a short word only by a changed letter, never by one more or
        # less (phim -> phi, chao -> cho are other words, not typos).
        candidates = [
            c for c in candidates if c[0] not in GENERIC and (len(word) > 4 or len(c[0]) == len(word))
        ]
        for candidate, _, _ in sorted(candidates, key=lambda c: c[1]):
            if self._fits(candidate, before, after):
                return candidate
        # A long word with one clear nearest neighbour is a typo even without context.
        if len(word) >= 6 and candidates:
            best = min(c[1] for c in candidates)
            nearest = [c[0] for c in candidates if c[1] == best]
            if len(nearest) == 1:
                return nearest[0]
        return None

    def _query(self, question: str) -> dict[str, float]:
        """The question's TF-IDF vector: its question sentences weigh fully, its background
        BACKGROUND_FACTOR, and the deciding FACTS fully wherever they stand."""
        vector: dict[str, float] = {}
        for text, weight in _question_parts(question):
            if weight <= 0:
                continue
            for feature, value in self._part_vector(_birth_years(text)).items():
                value *= 1.0 if feature in FACT_FEATURES else weight
                vector[feature] = max(vector.get(feature, 0.0), value)
        return _normalised(vector) if vector else {}

    def blocked(self, question: str) -> frozenset[str]:
        """The BLOCKERS the question names (anywhere in the message)."""
        return blockers(tokens(question))

    def _blocked_parts(self, question: str) -> tuple[frozenset[str], frozenset[str]]:
        """The BLOCKERS named in the question sentences, and those named only in the background."""
        asked: set[str] = set()
        background: set[str] = set()
        for text, weight in _question_parts(question):
            (asked if weight >= 1.0 else background).update(blockers(tokens(text)))
        return frozenset(asked), frozenset(background - asked)

    def _part_vector(self, question: str) -> dict[str, float]:
        pairs = words_with_marks(question)
        words = [word for word, _ in pairs]
        known: list[str] = []
        factors: dict[str, float] = {}
        vector: dict[str, float] = {}
        for i, (word, marked) in enumerate(pairs):
            if word in self.vocab:
                seen = self._marks.get(word)
                if marked is None or not seen or marked in seen:
                    known.append(word)
                    continue
                # Typed with other Vietnamese letters than any example: a different word.
                weight = self.unknown_weight * (GENERIC_FACTOR if word in GENERIC else 1)
                vector[f"?{marked}"] = max(vector.get(f"?{marked}", 0.0), weight)
                known.append(f"?{marked}")
                continue
            before = words[i - 1] if i else None
            after = words[i + 1] if i + 1 < len(words) else None
            fixed = self._repair(word, before, after)
            if fixed is None:
                # Unknown: weighs in the query (so off-topic questions score low), matches nothing.
                weight = self.unknown_weight * (GENERIC_FACTOR if word in GENERIC or word.isdigit() else 1)
                vector[f"?{word}"] = max(vector.get(f"?{word}", 0.0), weight)
                known.append(f"?{word}")
                continue
            for part in fixed.split():
                known.append(part)
                factors[part] = REPAIRED_FACTOR
        for feature in _features(known):
            if feature in self.idf:
                weight = self.idf[feature] * min(factors.get(p, 1.0) for p in feature.split())
                vector[feature] = max(vector.get(feature, 0.0), weight)
        return vector

    def _scores(self, vector: dict[str, float]) -> list[float]:
        """Each entry's score: (1 - CENTROID_SHARE) x its best example's cosine + CENTROID_SHARE x
        the cosine with all its examples together, at most 1."""
        per_example = _summed(self._postings, vector, len(self._example_entry))
        best = np.zeros(len(self.entries))
        np.maximum.at(best, self._example_entry, per_example)
        centroid = _dense_summed(self._centroid_postings, vector)
        share = CENTROID_SHARE
        return np.minimum(1.0, (1 - share) * best + share * centroid).tolist()

    def _why(self, vector: dict[str, float], number: int, limit: int = 4) -> tuple[str, ...]:
        centroid = self._centroids[number]
        parts = sorted(
            ((weight * centroid[f], f) for f, weight in vector.items() if f in centroid), reverse=True
        )
        return tuple(f for _, f in parts[:limit])

    def _entry_scores(self, question: str) -> tuple[dict[str, float], list[float]]:
        """The question's TF-IDF vector and each entry's score (0 for an entry kept out)."""
        return self._remembered("TF-IDF", question, lambda: self._score_entries(question))

    def _score_entries(self, question: str) -> tuple[dict[str, float], list[float]]:
        vector = self._query(question)
        if not vector:
            return vector, []
        scores = self._scores(vector)
        # A contradicting concept in the question keeps out every entry that does not speak of it;
        # one only in the background (a land title mentioned while asking how to register a
        # death) lowers such an entry's score.
        asked, background = self._blocked_parts(question)
        if asked or background:
            scores = [0.0 if asked - self._tolerates[i] else
                      s * BACKGROUND_BLOCK_FACTOR if background - self._tolerates[i] else s
                      for i, s in enumerate(scores)]
        favoured = self._nb_number(question)
        if favoured is not None and scores[favoured] > 0:
            scores[favoured] = min(1.0, scores[favoured] + SECOND_OPINION_BONUS)
        return vector, scores

    # -- public ----------------------------------------------------------------------------
    def ranked(self, question: str, limit: int | None = None) -> list[Match]:
        """Entries with a TF-IDF score above 0, best first (ties by id), at most `limit`, with `why`."""
        vector, scores = self._entry_scores(question)
        order = sorted(
            (i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], self.entries[i].id)
        )
        return [Match(self.entries[i].id, round(scores[i], 4), self._why(vector, i)) for i in order[:limit]]

    def decide(self, question: str) -> tuple[Match | None, bool]:
        """The entry the matcher would answer with, whatever its score, and whether the opinions
        back it (the score is not compared with MATCH_THRESHOLD here; `match` does that).

        The perceptron chooses among the entries TF-IDF has not kept out (it ranks residents'
        letters best); the match's score is that entry's TF-IDF score. It is backed when TF-IDF
        ranks it first or naive Bayes names it, unless the perceptron's "declined" class (learnt
        from the out-of-scope residents' questions) outscores it."""
        return self._remembered("decision", question, lambda: self._decide(question))

    def _decide(self, question: str) -> tuple[Match | None, bool]:
        vector, scores = self._entry_scores(question)
        candidates = [i for i, s in enumerate(scores) if s > 0]
        if not candidates:
            return None, False
        first = min(candidates, key=lambda i: (-scores[i], self.entries[i].id))
        linear = self.linear_scores(question)
        # Equal scores: the entry first by id, as in `ranked`.
        chosen = first if linear is None else min(candidates, key=lambda i: (-linear[i], self.entries[i].id))
        declined = linear is not None and len(linear) > len(self.entries) and linear[-1] > linear[chosen]
        backed = not declined and (chosen == first or self._nb_number(question) == chosen)
        entry = self.entries[chosen]
        return Match(entry.id, round(scores[chosen], 4), self._why(vector, chosen)), backed

    def best(self, question: str) -> Match | None:
        """The entry the matcher would answer with, whatever its score (None only when nothing at
        all matches)."""
        return self.decide(question)[0]

    def match(self, question: str, lang: str | None = None) -> Match | None:
        """The entry that answers `question`, or None when the matcher is not sure of it: the
        opinions do not back it (`decide`), or its score is below MATCH_THRESHOLD.

        Both languages are indexed together (residents mix them), so `lang` is accepted for the
        callers' convenience but does not change the result.
        """
        found, backed = self.decide(question)
        return found if _answerable(found, backed) else None

    def top(self, question: str, k: int = 3) -> list[Match]:
        """Up to k closest entries scoring at least SUGGEST_FLOOR, even below the threshold."""
        return [m for m in self.ranked(question, k) if m.score >= SUGGEST_FLOOR]

    def close(self, question: str, k: int = 3) -> list[Match]:
        """`top`, with the entry the matcher chose (`decide`) among them when it reaches
        SUGGEST_FLOOR, keeping only the entries really close: within CLOSE_SHARE of the best score."""
        if k <= 0:
            return []
        found = self.top(question, k)
        chosen = self.best(question)
        if chosen is not None and chosen.score >= SUGGEST_FLOOR and all(m.id != chosen.id for m in found):
            found = sorted([*found[:k - 1], chosen], key=lambda m: (-m.score, m.id))
        return [m for m in found if m.score >= CLOSE_SHARE * found[0].score] if found else []


def _answerable(found: Match | None, backed: bool) -> bool:
    """The rule for giving an answer: the opinions back the chosen entry (`FaqIndex.decide`) and
    its TF-IDF score reaches MATCH_THRESHOLD."""
    return found is not None and backed and found.score >= MATCH_THRESHOLD


def build_index(entries: Iterable[FaqEntry] | None = None) -> FaqIndex:
    """An index of the given entries (default: the shipped conversations/faq/*.yaml, trained
    also on the shipped residents' questions and letters, `load_training`)."""
    if entries is not None:
        return FaqIndex(entries)
    shipped = load_faq()
    return FaqIndex(shipped, questions=load_training(shipped))


@lru_cache(maxsize=1)
def default_index() -> FaqIndex:
    """The index of the shipped FAQ, built on first use and kept: in this process, and on disk for
    the next ones (conversations/faq_cache.py: loading it takes a tenth of training it)."""
    from conversations import faq_cache

    return faq_cache.load_or_build(build_index, FaqIndex, faq_cache.shipped_inputs(),
                                   faq_cache.cache_directory())


def answer_payload(index: FaqIndex, question: str, translate: Callable[[str], str]) -> dict:
    """`gocua faq ask` result: {"id": str|None, "score": float, "answer": str|None}.

    `translate` maps an English msgid to the reader's language. The answer is the translated
    entry answer followed by a line with its first source link ("Source: {url}", translated).
    When nothing is answered, id and answer are None and score is that of the entry the matcher
    chose (`FaqIndex.decide`), or 0.0 when nothing matched at all.
    """
    found, backed = index.decide(question)
    if found is None or not _answerable(found, backed):
        return {"id": None, "score": found.score if found else 0.0, "answer": None}
    entry = index.by_id[found.id]
    answer = translate(entry.answer)
    if entry.source:
        answer += "\n" + translate(SOURCE_LINE).format(url=entry.source[0])
    return {"id": found.id, "score": found.score, "answer": answer}
