"""Turning S samples of a stage into one output (names: `agenttts.environment.task.AGGREGATORS`).

Pure functions over parsed samples; the LLM fuser lives with the pipeline because it calls a model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from agenttts.environment.metrics import normalize_answer


def vote(answers: Sequence[str | None]) -> str | None:
    """Majority over normalised answers; ties go to the answer seen first.

    Empty/unparsable answers take part only if nothing else was said, so one fluent sample beats
    several failures. Returns the first original spelling of the winning normal form.
    """
    normals = [normalize_answer(a) if a is not None else "" for a in answers]
    counted = [n for n in normals if n] or normals
    if not counted:
        return None
    counts = Counter(counted)
    best = max(counts.values())
    winner = next(n for n in counted if counts[n] == best)  # first seen among the tied
    for a, n in zip(answers, normals, strict=True):
        if n == winner:
            return a
    return None


def vote_ids(selections: Sequence[Sequence[int]]) -> list[int]:
    """Vote over selected reference ids; keep as many ids as the samples most often selected.

    The kept count is the most common selection size among samples that selected something (ties:
    the size seen first); ids rank by how many samples chose them, ties by first appearance
    (sample order, then position within the sample).
    """
    nonempty = [list(dict.fromkeys(s)) for s in selections if s]
    if not nonempty:
        return []
    sizes = Counter(len(s) for s in nonempty)
    top = max(sizes.values())
    keep = next(len(s) for s in nonempty if sizes[len(s)] == top)
    votes: Counter[int] = Counter()
    first: dict[int, int] = {}
    pos = 0
    for s in nonempty:
        for i in s:
            votes[i] += 1
            if i not in first:
                first[i] = pos
            pos += 1
    ranked = sorted(votes, key=lambda i: (-votes[i], first[i]))
    return ranked[:keep]


def first(samples: Sequence[object]) -> object | None:
    """No aggregation: sample 0 (what S=1 means)."""
    return samples[0] if samples else None
