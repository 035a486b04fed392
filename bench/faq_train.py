"""Cross-validation of the FAQ matcher on the residents' questions that train it
(conversations/faq/questions/*.yaml; our own letters, conversations/faq/letters/, train every
fold and are not measured), and the figures of variants on the measuring sets.

    .venv/bin/python bench/faq_train.py                 # 5-fold figures at the shipped thresholds
    .venv/bin/python bench/faq_train.py --grid          # ... and over a grid of thresholds
    .venv/bin/python bench/faq_train.py --sets          # the measuring sets (eval and
                                                        # calibration; --real adds faq_real)
    .venv/bin/python bench/faq_train.py --no-letters    # as the matcher was before the letters

Folds keep a question and its phone-style retelling together (same source page). Each fold's
questions are matched against an index built from the entries and the other folds' questions,
so the figures say how the matcher does on residents' questions it has not learnt from:
ranked first (the entry the matcher chose, `FaqIndex.decide`, is the right one, whatever the
score and the opinions), right (answered with it),
declined (out of scope, no answer) and wrong (an answer that is not the expected one, over all).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conversations import faq_match  # noqa: E402
from conversations.faq_model import FaqEntry, TrainingQuestion, load_faq, load_training  # noqa: E402
from conversations.yaml_load import safe_load  # noqa: E402

DATA = ROOT / "tests" / "faq_data"
FOLDS = 5


def outcomes_of(index: faq_match.FaqIndex, rows: list[tuple[str, str | None]]) -> list[tuple]:
    """Per question: (expected id, chosen id, its score, backed by the opinions) (`decide`)."""
    found = []
    for text, expected in rows:
        chosen, backed = index.decide(text)
        found.append((expected, chosen.id if chosen else None, chosen.score if chosen else 0.0, backed))
    return found


def figures(outcomes: list[tuple], threshold: float) -> dict:
    """The figures if answers were given from `threshold` on."""
    inside = [o for o in outcomes if o[0] is not None]
    outside = [o for o in outcomes if o[0] is None]

    def answered(o: tuple) -> bool:
        return o[1] is not None and o[2] >= threshold and o[3]

    right = sum(answered(o) and o[1] == o[0] for o in inside)
    wrong = sum(answered(o) and o[1] != o[0] for o in outcomes)
    return {"in_scope": len(inside), "ranked_first": sum(o[1] == o[0] for o in inside),
            "right": right, "declined": sum(not answered(o) for o in outside),
            "out_of_scope": len(outside), "wrong": wrong, "questions": len(outcomes)}


def line(name: str, f: dict) -> str:
    share = lambda a, b: 100 * a / b if b else 0.0  # noqa: E731
    return (f"{name}: ranked first {share(f['ranked_first'], f['in_scope']):.1f}% · right "
            f"{share(f['right'], f['in_scope']):.1f}% ({f['right']}/{f['in_scope']}) · declined "
            f"{share(f['declined'], f['out_of_scope']):.1f}% ({f['declined']}/{f['out_of_scope']}) · wrong "
            f"{share(f['wrong'], f['questions']):.1f}% ({f['wrong']}/{f['questions']})")


def cross_validated(entries: Sequence[FaqEntry], questions: Sequence[TrainingQuestion],
                    learn: bool = True) -> list[tuple]:
    """Each fold's outcomes on an index trained on the other folds (`learn=False`: on no
    questions at all, the examples alone). Only the residents' questions are folded and
    measured; our own letters (`written`) train every fold."""
    residents = [q for q in questions if not q.written]
    letters = [q for q in questions if q.written]
    sources = sorted({q.source for q in residents})
    fold_of = {source: n % FOLDS for n, source in enumerate(sources)}
    outcomes: list[tuple] = []
    for fold in range(FOLDS):
        train = [q for q in residents if fold_of[q.source] != fold] + letters
        test = [(q.text, q.entry_id) for q in residents if fold_of[q.source] == fold]
        index = faq_match.FaqIndex(entries, questions=train if learn else ())
        outcomes += outcomes_of(index, test)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--sets", action="store_true")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="try a variant: set a faq_match constant (e.g. MATCH_THRESHOLD=0.35)")
    parser.add_argument("--none", action="store_true", help="the index learns from no questions")
    parser.add_argument("--no-letters", action="store_true", help="the index learns from no letters")
    args = parser.parse_args()
    for setting in args.set:
        name, value = setting.split("=", 1)
        setattr(faq_match, name, type(getattr(faq_match, name))(ast.literal_eval(value)))
    entries = load_faq()
    questions = load_training(entries)
    if args.no_letters:
        questions = tuple(q for q in questions if not q.written)
    t = faq_match.MATCH_THRESHOLD
    residents = [q for q in questions if not q.written]
    print(f"{len(residents)} residents' questions ({sum(q.entry_id is None for q in residents)} out of "
          f"scope), {len(questions) - len(residents)} letters")
    if questions:
        oof = cross_validated(entries, questions, learn=not args.none)
        print(line(f"{FOLDS}-fold, threshold {t}", figures(oof, t)))
        if args.grid:
            for step in range(20, 46, 2):
                print(line(f"  threshold {step / 100:.2f}", figures(oof, step / 100)))
    if args.sets or args.real:
        index = faq_match.FaqIndex(entries, questions=() if args.none else questions)
        names = ["faq_calibration.yaml", "faq_eval.yaml"]
        names += ["faq_real.yaml"] if args.real else []
        for name in names:
            rows = [(r["q"], r["id"]) for r in safe_load((DATA / name).read_text(encoding="utf-8"))]
            print(line(name, figures(outcomes_of(index, rows), t)))


if __name__ == "__main__":
    main()
