"""Answer metrics shared by every executor, so replayed and live scores mean the same thing.

Pure functions only. Normalisation follows the SQuAD evaluation script (lower-case, drop
punctuation and the articles a/an/the, collapse whitespace), as the paper's QA scores do.
A gold may be one string or several accepted strings; the score is the best over them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)

Gold = str | Iterable[str]


def normalize_answer(text: str | None) -> str:
    """SQuAD normalisation; None (no parsable answer) normalises to the empty string."""
    if text is None:
        return ""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(gold: Gold) -> list[str]:
    golds = [gold] if isinstance(gold, str) else list(gold)
    return golds or [""]


def exact_match(prediction: str | None, gold: Gold) -> float:
    """1.0 when the normalised prediction equals any normalised gold, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _golds(gold)))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    if not pred_tokens or not gold_tokens:
        # SQuAD convention: two empty answers agree, one empty answer scores zero.
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str | None, gold: Gold) -> float:
    """Token-level F1 of the normalised strings; the best over the accepted golds."""
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(g).split()) for g in _golds(gold))


def retrieval_scores(selected: Iterable[object], gold: Iterable[object]) -> dict[str, float]:
    """Precision, recall and F1 of selected references against the gold set (ids or passages).

    Duplicates count once. Nothing selected scores precision 0 (not undefined) so that an empty
    retrieval is never rewarded; an empty gold set gives recall 1 only to an empty selection.
    """
    sel, ref = set(selected), set(gold)
    hit = len(sel & ref)
    precision = hit / len(sel) if sel else 0.0
    recall = hit / len(ref) if ref else float(not sel)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
