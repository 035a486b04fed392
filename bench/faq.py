"""FAQ matcher speed (questions matched per second), accuracy on the held-out sets and, with
--calibrate, its threshold.

    .venv/bin/python bench/faq.py               # speed, then accuracy on both held-out sets
    .venv/bin/python bench/faq.py --quick       # smoke run, about a second
    .venv/bin/python bench/faq.py --accuracy    # accuracy only
    .venv/bin/python bench/faq.py --calibrate   # the threshold table and the suggested threshold

Speed: the questions are the calibration set, the held-out set and every example phrasing, each
also with a few deterministic typos (letters dropped, swapped, diacritics removed), so that the
typo-repair path is exercised. "cold" is the first pass on a freshly built index (empty repair
cache); "warm" repeats the same questions. The run is bounded by --rounds and --seconds.
Target: >= 2,000 questions/s on the project machine (2 cores).

Accuracy (issue 14 §4), for tests/faq_data/faq_eval.yaml (written with the entries) and
tests/faq_data/faq_real.yaml (questions residents sent on public pages, plus phone-style
rewrites; committed before the matcher was changed). Each question goes through
`answer_payload(default_index(), ...)`, exactly as `gocua faq ask` answers it, and three figures
are printed per set:
  - in scope right at top-1: the answer's id is the expected id, over the in-scope questions;
  - out of scope declined: no answer (id null), over the out-of-scope questions;
  - answered wrongly with confidence: an answer whose id is not the expected one (a wrong entry,
    or any entry for an out-of-scope question), over ALL questions of the set.
Targets on faq_real.yaml (tests/test_faq_real.py): >= 85%, >= 85%, <= 5%.

Calibration (never on the held-out sets faq_eval.yaml and faq_real.yaml):
MATCH_THRESHOLD is the lowest score at which tests/faq_data/faq_calibration.yaml is answered
wrongly at most 2% of the time while the residents' questions that train the matcher
(conversations/faq/questions/), cross-validated by bench/faq_train.py, keep at least 85% of their
out-of-scope ones declined, plus MARGIN (0.02); the floor it suggests for the closest topics is the
90th percentile of the calibration out-of-scope scores, at most 0.9 x the threshold.

The last line printed is one JSON object. Exit status 0 (speed is reported, not enforced).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import faq_train  # noqa: E402
from conversations import faq_match  # noqa: E402
from conversations.faq_model import load_faq  # noqa: E402
from conversations.yaml_load import safe_load  # noqa: E402

DATA = ROOT / "tests" / "faq_data"  # not tests/data: .gitignore ignores data/
# The threshold's two conditions (choose_threshold). The residents' out-of-scope questions are
# near-misses chosen on purpose (tách hộ, lưu trú, BHXH pensions ...): 85% of them declined is the
# issue's target; the calibration set's 2% keeps simple questions as safe as before.
CALIBRATION_WRONG = 0.02    # the calibration set answered wrongly at most this share ...
RESIDENTS_DECLINED = 0.85   # ... and residents' out-of-scope questions declined at least this share
MARGIN = 0.02               # added above the lowest threshold that does both


def _load(name: str) -> list[dict]:
    return safe_load((DATA / name).read_text(encoding="utf-8"))


def _typo(text: str, seed: int) -> str:
    """A deterministic small mistake: fold diacritics, drop or swap a letter."""
    words = faq_match.fold(text).split()
    if not words:
        return text
    i = seed % len(words)
    word = words[i]
    if len(word) > 3:
        j = (seed // 7) % (len(word) - 1)
        word = word[:j] + word[j + 1] + word[j] + word[j + 2:] if seed % 2 else word[:j] + word[j + 1:]
    words[i] = word
    return " ".join(words)


def questions() -> list[str]:
    base = [row["q"] for row in _load("faq_calibration.yaml") + _load("faq_eval.yaml")]
    base += [text for entry in load_faq() for text in entry.examples]
    return base + [_typo(text, n) for n, text in enumerate(base)]


def speed(rounds: int, seconds: float) -> dict:
    started = time.perf_counter()
    index = faq_match.build_index()
    build_s = time.perf_counter() - started
    qs = questions()
    started = time.perf_counter()
    for q in qs:
        index.match(q)
    cold = len(qs) / (time.perf_counter() - started)
    done = 0
    started = time.perf_counter()
    for _ in range(rounds):
        for q in qs:
            index.match(q)
        done += len(qs)
        if time.perf_counter() - started > seconds:
            break
    warm = done / (time.perf_counter() - started)
    return {"build_s": round(build_s, 4), "questions": len(qs), "cold_questions_per_s": round(cold),
            "warm_questions_per_s": round(warm), "matched": done}


HELD_OUT = ("faq_eval.yaml", "faq_real.yaml")


def figures(rows: list[dict], index: faq_match.FaqIndex | None = None) -> dict:
    """The three accuracy figures of issue 14 §4 for rows of {"q", "id"}, answered as
    `gocua faq ask` answers (answer_payload on the default index)."""
    index = index or faq_match.default_index()
    return figures_of(rows, lambda q: faq_match.answer_payload(index, q, lambda text: text)["id"])


def figures_of(rows: list[dict], answer: Callable[[str], str | None]) -> dict:
    """figures() for any `answer(question) -> entry id or None` (bench/faq_alternatives.py
    measures other matchers with it)."""
    inside = right = outside = declined = wrong = 0
    for row in rows:
        got = answer(row["q"])
        if row["id"] is None:
            outside += 1
            declined += got is None
        else:
            inside += 1
            right += got == row["id"]
        wrong += got is not None and got != row["id"]
    total = inside + outside
    return {"questions": total, "in_scope": inside, "in_scope_right": right,
            "out_of_scope": outside, "out_of_scope_declined": declined, "wrong_confident": wrong,
            "in_scope_right_share": round(right / inside, 4) if inside else None,
            "out_of_scope_declined_share": round(declined / outside, 4) if outside else None,
            "wrong_confident_share": round(wrong / total, 4) if total else None}


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part}/{whole})" if whole else "n/a (0/0)"


def accuracy(existing_only: bool = False) -> dict:
    """figures() for each held-out set; prints one line per set. With `existing_only`, questions
    that expect an entry the FAQ does not have (yet) are left out."""
    result = {}
    ids = {entry.id for entry in load_faq()}
    for name in HELD_OUT:
        rows = [row for row in _load(name) if not existing_only or row["id"] is None or row["id"] in ids]
        f = figures(rows)
        result[name] = f
        print(f"{name}: in scope right at top-1 {_pct(f['in_scope_right'], f['in_scope'])}; "
              f"out of scope declined {_pct(f['out_of_scope_declined'], f['out_of_scope'])}; "
              f"answered wrongly with confidence {_pct(f['wrong_confident'], f['questions'])}")
    return result


def choose_threshold(calibration: list[tuple], residents: list[tuple]) -> tuple[float | None, list[str]]:
    """MATCH_THRESHOLD: the lowest score (0.20 .. 0.50 by 0.01) at which the calibration set is
    answered wrongly at most CALIBRATION_WRONG of the time and the residents' questions,
    cross-validated, keep at least RESIDENTS_DECLINED of their out-of-scope ones declined, plus
    MARGIN. Outcomes are faq_train's (expected, chosen, score, backed). Returns it (None when no
    score does both) and the table."""
    table, chosen = [], None
    for step in range(20, 51):
        t = step / 100
        cal, res = faq_train.figures(calibration, t), faq_train.figures(residents, t)
        ok = (cal["wrong"] <= CALIBRATION_WRONG * cal["questions"]
              and res["declined"] >= RESIDENTS_DECLINED * res["out_of_scope"])
        table.append(f"  {t:.2f} {'ok' if ok else '  '}  calibration: {faq_train.line('', cal)[2:]}\n"
                     f"           residents' questions: {faq_train.line('', res)[2:]}")
        if ok and chosen is None:
            chosen = t
    return (None if chosen is None else round(chosen + MARGIN, 3)), table


def calibrate() -> dict:
    """The threshold (choose_threshold) and the suggestions' floor: the score 90% of the
    calibration set's out-of-scope questions stay below, kept under 0.9 x the threshold."""
    entries = load_faq()
    index = faq_match.build_index()
    rows = [(row["q"], row["id"]) for row in _load("faq_calibration.yaml")]
    calibration = faq_train.outcomes_of(index, rows)
    residents = faq_train.cross_validated(entries, index.questions)
    threshold, table = choose_threshold(calibration, residents)
    print("\n".join(table))
    if threshold is None:
        print("no threshold keeps both conditions: the matcher answers too many questions wrongly")
    at_threshold = threshold if threshold is not None else faq_match.MATCH_THRESHOLD
    oos = sorted(score for want, _, score, _ in calibration if want is None)
    floor = min(round(oos[int(0.9 * (len(oos) - 1))], 3) if oos else at_threshold,
                round(at_threshold * 0.9, 3))
    at = {"calibration": faq_train.figures(calibration, at_threshold),
          "residents_questions": faq_train.figures(residents, at_threshold)}
    return {"suggested_threshold": threshold, "current_threshold": faq_match.MATCH_THRESHOLD,
            "suggested_floor": floor, "current_floor": faq_match.SUGGEST_FLOOR, "at_suggested": at}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="print the calibration, not speed")
    parser.add_argument("--accuracy", action="store_true", help="accuracy on the held-out sets only")
    parser.add_argument("--existing-only", action="store_true",
                        help="accuracy only on questions whose entry exists (and out-of-scope ones)")
    parser.add_argument("--quick", action="store_true", help="one warm round")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.calibrate:
        result = calibrate()
    elif args.accuracy or args.existing_only:
        result = {"accuracy": accuracy(args.existing_only)}
    else:
        result = speed(1 if args.quick else max(1, args.rounds), args.seconds)
        print(f"built in {result['build_s']:.3f} s; {result['questions']} questions; "
              f"cold {result['cold_questions_per_s']}/s, warm {result['warm_questions_per_s']}/s "
              f"(target 2000/s)")
        result["accuracy"] = accuracy()
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
