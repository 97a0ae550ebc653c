"""Turning S samples of a stage into one output (names: `agenttts.environment.task.AGGREGATORS`).

Plain functions over parsed samples, for pipelines to call (a user-supplied aggregator is any
function of the same shape); `fuse` is async because it asks the stage's fuser model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agenttts.environment.metrics import NORMALIZERS, normalize_answer

if TYPE_CHECKING:
    from agenttts.environment.live.stages import StageHandle


def vote(
    answers: Sequence[str | None], normalize: Callable[[str | None], str] = normalize_answer
) -> str | None:
    """Majority over normalised answers (the stage's `answer_normalizer`; SQuAD's by default);
    ties go to the answer seen first.

    Empty/unparsable answers take part only if nothing else was said, so one fluent sample beats
    several failures. Returns the first original spelling of the winning normal form.
    """
    normals = [normalize(a) if a is not None else "" for a in answers]
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


async def fuse(
    stage: StageHandle, answers: Sequence[str | None], *, question: str = ""
) -> str | None:
    """The LLM fuser: one greedy call that reads the S answers and writes one.

    The fuser is the stage's `aggregator_settings.model` (default: the stage's model in this
    trial) with `aggregator_settings.prompt` (default: the bundled `fuse.txt`, which names
    `{question}` and `{answers}`); its tokens are measured into the stage's cost. One answer needs
    no fusing; an unreadable fusion falls back to the vote.
    """
    from agenttts.environment.live.parsers import parse_answer
    from agenttts.environment.live.prompts import BUNDLED_PROMPTS, PromptTemplate

    if len(answers) <= 1:
        return answers[0] if answers else None
    settings: dict[str, Any] = stage.stage.aggregator_settings
    prompt = PromptTemplate.load(
        stage.run.task.resolve(settings["prompt"])
        if settings.get("prompt")
        else BUNDLED_PROMPTS / "fuse.txt"
    )
    listed = "\n".join(f"{i}. {a or '(no answer)'}" for i, a in enumerate(answers, start=1))
    drawn = await stage.draw(
        prompt.messages(question=question, answers=listed),
        1,
        model=settings.get("model"),
        tally=f"{stage.name}/fuse",
        temperature=0.0,
        seed=None,
    )
    return parse_answer(drawn.samples[0].text) or vote(
        answers, NORMALIZERS[stage.stage.answer_normalizer]
    )
