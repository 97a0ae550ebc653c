"""A two-stage pipeline as a plain async function: pick the passages, then answer from them.

Each stage asks `stages[name]` for this trial's samples; agenttts decides the model and how many
samples (S) every stage draws, and caches each sample so a re-run costs nothing.
"""

from __future__ import annotations

from agenttts.pipeline import Stages, parse_answer, parse_ids, vote, vote_ids


def numbered(passages: list[str]) -> str:
    return "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))


async def pipeline(item: dict, stages: Stages) -> str | None:
    passages = item["passages"]
    question = item["question"]

    # stage 1: which passages answer the question? S samples, merged by a vote over the ids
    samples = await stages["select"].sample(
        [
            {"role": "system", "content": "You pick the passages needed to answer a question."},
            {
                "role": "user",
                "content": f"Question: {question}\n\nPassages:\n{numbered(passages)}\n\n"
                "Which passages are needed? Reply with their numbers only (for example: 2, 4).",
            },
        ]
    )
    picked = vote_ids([parse_ids(s.text, len(passages), limit=3) for s in samples])
    context = [passages[n - 1] for n in picked] or passages

    # stage 2: answer from the picked passages; S samples, majority vote over the answers
    samples = await stages["answer"].sample(
        [
            {"role": "system", "content": "Answer with a short answer only, no explanation."},
            {
                "role": "user",
                "content": f"Passages:\n{numbered(context)}\n\nQuestion: {question}\n"
                'Reply in the form "Answer: <short answer>".',
            },
        ]
    )
    return vote([parse_answer(s.text) for s in samples])
