"""FAQ matcher speed (questions matched per second), accuracy on the held-out sets and, with
--calibrate, its threshold.

    .venv/bin/python bench/faq.py               # speed, then accuracy on both held-out sets
    .venv/bin/python bench/faq.py --quick       # smoke run, about a second
    .venv/bin/python bench/faq.py --accuracy    # accuracy only
    .venv/bin/python bench/faq.py --calibrate   # score distributions and the suggested threshold

Speed: the questions are the calibration set, the held-out set and every example phrasing, each
also with a few deterministic typos (letters dropped, swapped, diacritics removed), so that the
typo-repair path is exercised. "cold" is the first pass on a freshly built index (empty repair
cache); "warm" repeats the same questions. The run is bounded by --rounds and --seconds.
Target: >= 2,000 questions/s on the project machine (2 cores).

Accuracy (issue 14 §4), for tests/faq_data/faq_eval.yaml (written with the entries) and
tests/faq_data/faq_real.yaml (questions residents sent on public pages, plus phone-style
rewrites; committed before the matcher was changed) and tests/faq_data/faq_letters.yaml (our own
residents'-style letters, written after the matcher was frozen; never tuned on). Each question goes through
`answer_payload(default_index(), ...)`, exactly as `gocua faq ask` answers it, and three figures
are printed per set:
  - in scope right at top-1: the answer's id is the expected id, over the in-scope questions;
  - out of scope declined: no answer (id null), over the out-of-scope questions;
  - answered wrongly with confidence: an answer whose id is not the expected one (a wrong entry,
    or any entry for an out-of-scope question), over ALL questions of the set.
Targets on faq_real.yaml (tests/test_faq_real.py): >= 85%, >= 85%, <= 5%.

Calibration (never on the held-out sets faq_eval.yaml and faq_real.yaml): leave-one-out over the
entries' example phrasings (each example is matched against an index built without it) and
tests/faq_data/faq_calibration.yaml. The threshold is the lowest that still rejects OOS_REJECTION
(95%) of the calibration out-of-scope questions, plus MARGIN (0.03) (one the other opinions
stop below AGREE_UNLESS counts as rejected); the floor for suggestions is the 90th percentile of
the out-of-scope best scores, kept below the threshold. AGREE_UNLESS is the lowest score among
those leaving the fewest calibration questions answered wrongly with confidence.

The last line printed is one JSON object. Exit status 0 (speed is reported, not enforced).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conversations import faq_match  # noqa: E402
from conversations.faq_model import load_faq  # noqa: E402
from conversations.yaml_load import safe_load  # noqa: E402

DATA = ROOT / "tests" / "faq_data"  # not tests/data: .gitignore ignores data/
# Share of the calibration out-of-scope questions the threshold must reject: 95%, the issue's
# "<= 5% answered wrongly with confidence" applied to them. (It was 97% while the calibration set
# held only far-off questions; since issue 14 §3 it also holds near-misses written like residents'
# long messages, against which 97% would leave almost every in-scope question unanswered.)
OOS_REJECTION = 0.95
MARGIN = 0.03         # added above the out-of-scope score that sets the threshold


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


HELD_OUT = ("faq_eval.yaml", "faq_real.yaml", "faq_letters.yaml")


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


def _leave_one_out() -> list[tuple[str, str | None, float]]:
    entries = load_faq()
    rows = []
    for n, entry in enumerate(entries):
        for lang in ("vi", "en"):
            examples = getattr(entry, f"examples_{lang}")
            for k, text in enumerate(examples):
                held = replace(entry, **{f"examples_{lang}": examples[:k] + examples[k + 1:]})
                index = faq_match.FaqIndex((*entries[:n], held, *entries[n + 1:]), linear=False)
                best = index.best(text)
                rows.append((entry.id, best.id if best else None, best.score if best else 0.0))
    return rows


def _choose(sources: list[list[tuple[str, str | None, float]]], oos: list[float]) -> tuple[float, float]:
    """The threshold: the lowest one that still rejects at least OOS_REJECTION of the calibration
    out-of-scope questions, raised by MARGIN so that it does not sit on one question's score.

    Out-of-scope rejection is the constraint (the issue asks for >= 85%; we hold 95% on the
    calibration questions), and within it the lowest threshold answers the most in-scope
    questions. Returns the threshold and its in-scope miss rate (wrong entry or below t; the mean
    over the sources, leave-one-out examples and calibration questions, weighing equally).
    """
    allowed = int(len(oos) * (1 - OOS_REJECTION))  # how many may be answered
    ranked = sorted(oos, reverse=True)
    threshold = round((ranked[allowed] if allowed < len(ranked) else 0.0) + MARGIN, 3)
    missed = sum(
        sum(1 for want, got, s in rows if got != want or s < threshold) / len(rows) for rows in sources
    ) / len(sources)
    return threshold, missed


def _choose_agree(index: faq_match.FaqIndex, cal: list[dict], threshold: float) -> float:
    """AGREE_UNLESS: the lowest score (0.40 .. 1.00 by 0.05) above which a TF-IDF match is answered
    without the averaged perceptron naming the same entry,
    among those leaving the fewest calibration questions answered wrongly with confidence.

    (It was the lowest keeping them under 5%; the long calibration messages showed that real
    messages are harder than the calibration set, so the fewest wrong answers are asked for.)"""
    rows = [(row["id"], best, index.linear_opinion(row["q"]) == best.id)
            for row in cal if (best := index.best(row["q"])) is not None]
    counted = []
    for step in range(8, 21):
        limit = step / 20
        wrong = sum(1 for want, best, agreed in rows
                    if best.score >= threshold and best.id != want and (best.score >= limit or agreed))
        print(f"  agree unless {limit:.2f}: calibration answered wrongly {wrong}/{len(cal)}")
        counted.append((wrong, limit))
    return min(counted)[1]


def calibrate() -> dict:
    loo = _leave_one_out()
    index = faq_match.build_index()
    cal = _load("faq_calibration.yaml")
    cal_in, cal_oos = [], []
    for row in cal:
        best = index.best(row["q"])
        score = best.score if best else 0.0
        if row["id"] is None:
            # An out-of-scope question the other opinions stop (below AGREE_UNLESS) is declined
            # whatever its score: it does not push the threshold up.
            gated = (best is not None and score < faq_match.AGREE_UNLESS
                     and index.linear_opinion(row["q"]) != best.id)
            cal_oos.append((row["q"], best.id if best else None, 0.0 if gated else score))
        else:
            cal_in.append((row["id"], best.id if best else None, score))
    inscope = loo + cal_in
    oos = [s for _, _, s in cal_oos]
    threshold, missed = _choose([loo, cal_in], oos)
    ranked_ok = sum(1 for want, got, _ in inscope if got == want) / len(inscope)
    floor = min(round(sorted(oos)[int(0.9 * (len(oos) - 1))], 3), round(threshold * 0.9, 3))
    for want, got, s in sorted(inscope, key=lambda r: r[2]):
        if got != want or s < threshold:
            print(f"  miss  {want:24} got {got!s:24} {s:.3f}")
    for q, got, s in sorted(cal_oos, key=lambda r: -r[2])[:8]:
        print(f"  oos   {q[:40]:40} {got!s:24} {s:.3f}")
    correct_scores = [s for want, got, s in inscope if got == want]
    print(f"in-scope correct best scores: median {statistics.median(correct_scores):.3f}, "
          f"10th pct {sorted(correct_scores)[len(correct_scores) // 10]:.3f}")
    print(f"out-of-scope best scores: max {max(oos):.3f}, median {statistics.median(oos):.3f}")
    accepted = sum(1 for want, got, s in inscope if got == want and s >= threshold) / len(inscope)
    cal_right = sum(1 for want, got, s in cal_in if got == want and s >= threshold) / len(cal_in)
    rejected = sum(1 for s in oos if s < threshold) / len(oos)
    agree = _choose_agree(index, cal, threshold)
    return {"loo_examples": len(loo), "suggested_agree_unless": agree,
            "current_agree_unless": faq_match.AGREE_UNLESS, "calibration_in_scope": len(cal_in),
            "calibration_out_of_scope": len(cal_oos), "top1_ranked": round(ranked_ok, 4),
            "suggested_threshold": threshold, "in_scope_missed": round(missed, 4),
            "suggested_floor": floor,
            "at_suggested": {"in_scope_answered_right": round(accepted, 4),
                             "calibration_in_scope_answered_right": round(cal_right, 4),
                             "oos_rejected": round(rejected, 4)},
            "current_threshold": faq_match.MATCH_THRESHOLD, "current_floor": faq_match.SUGGEST_FLOOR}


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
