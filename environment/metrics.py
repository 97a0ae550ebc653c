"""Answer metrics shared by every executor, so replayed and live scores mean the same thing.

Pure functions only. Normalisation follows the SQuAD evaluation script (lower-case, drop
punctuation and the articles a/an/the, collapse whitespace), as the paper's QA scores do.
A gold may be one string or several accepted strings; the score is the best over them.

SQuAD normalisation is wrong for math: it merges "-3" and "3", "38.5" and "385". A stage names
the normaliser its answers are voted and compared with (`Stage.answer_normalizer`, one of
`NORMALIZERS`): ``squad``, ``exact`` (trimmed, whitespace collapsed, nothing else) or ``numeric``
(the last number written, in one canonical spelling: "1,000", "1000.0" and "1e3" agree).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable

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


def contains(prediction: str | None, gold: Gold) -> float:
    """1.0 when a normalised gold occurs in the normalised prediction (a verbose answer that
    names the right thing), else 0.0; an empty gold never matches."""
    pred = f" {normalize_answer(prediction)} "
    return float(any(g and f" {g} " in pred for g in map(normalize_answer, _golds(gold))))


def accuracy(prediction: object, gold: object) -> float:
    """1.0 when the prediction equals the gold label (or any of several), compared as trimmed,
    case-folded strings: for class labels and multiple-choice letters, where SQuAD's dropping of
    articles and punctuation would be wrong."""
    golds = list(gold) if isinstance(gold, list | tuple | set) else [gold]
    pred = str(prediction).strip().casefold() if prediction is not None else ""
    return float(any(pred == str(g).strip().casefold() for g in golds))


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


def normalize_exact(text: str | None) -> str:
    """The answer as written, trimmed and with runs of whitespace made one space."""
    return " ".join(str(text).split()) if text is not None else ""


def normalize_numeric(text: str | None) -> str:
    """The last number in the answer, canonically spelled ("" when it holds none): -3 stays
    apart from 3, and 38.5 from 385."""
    value = last_number(text)
    if value is None or value != value:  # no number, or NaN
        return ""
    if value == 0:
        return "0"  # -0.0 and 0 agree
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


#: The answer normalisers a stage may name (`Stage.answer_normalizer`).
NORMALIZERS: dict[str, Callable[[str | None], str]] = {
    "squad": normalize_answer,
    "exact": normalize_exact,
    "numeric": normalize_numeric,
}


def last_number(text: object) -> float | None:
    """The last number written in a text (thousands separators allowed), or None."""
    found = _NUMBER.findall(str(text)) if text is not None else []
    for raw in reversed(found):
        try:
            return float(raw.replace(",", ""))
        except ValueError:
            continue
    return None


def numeric_match(prediction: object, gold: object, rel_tol: float = 1e-6) -> float:
    """1.0 when the last number in the prediction equals a gold number (relative tolerance)."""
    golds = list(gold) if isinstance(gold, list | tuple | set) else [gold]
    pred = last_number(prediction)
    if pred is None:
        return 0.0
    for g in golds:
        value = g if isinstance(g, int | float) else last_number(g)
        if value is not None and abs(pred - float(value)) <= rel_tol * max(1.0, abs(float(value))):
            return 1.0
    return 0.0
