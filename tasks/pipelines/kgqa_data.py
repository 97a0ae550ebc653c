"""The KGQA task's data, built from ComplexWebQuestions-style items (the paper's CWQ set).

    python -m agenttts.tasks.pipelines.kgqa_data cwq_200.json kgqa.jsonl [--distractors 12]

Reads a JSON list (or JSON Lines) of items with `ID`, `question`, `answer` (accepted answers) and
`gt_triples` (the gold [head, relation, tail] triples), as in the AgentTTS authors' `cwq_200.json`;
`topic_entity` and `compositionality_type` are optional. Writes one JSON line per item: `id`,
`question`, `answers`, `triples` (the candidate pool: the gold triples among up to `distractors`
triples of other items that share an entity or a relation with them, topped up with any other
item's triples, shuffled) and `gold` (the gold triples' positions in the pool). Each item draws
from its own seeded generator, so the same source and seed give the same file.

agenttts ships no ComplexWebQuestions item: its terms of use are not stated where it is
published (see tasks/data/kgqa/PROVENANCE.md). Convert your own copy with this module.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agenttts.environment.live.loading import load_items
from agenttts.errors import InputError

Triple = tuple[str, str, str]


def _triples(item: dict[str, Any], where: str) -> list[Triple]:
    raw = item.get("gt_triples")
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: `gt_triples` must list [head, relation, tail] triples")
    out: list[Triple] = []
    for t in raw:
        if not isinstance(t, list | tuple) or len(t) != 3:
            raise InputError(f"{where}: a triple is not [head, relation, tail]: {t!r}")
        triple = (str(t[0]), str(t[1]), str(t[2]))
        if triple not in out:
            out.append(triple)
    return out


def convert(
    items: Sequence[dict[str, Any]], *, distractors: int = 12, seed: int = 0
) -> list[dict[str, Any]]:
    """The task's items (see the module docstring); InputError naming the first bad item."""
    golds: list[list[Triple]] = []
    for i, item in enumerate(items):
        where = f"item {i} ({item.get('ID', 'no ID')})"
        if not str(item.get("question", "")).strip():
            raise InputError(f"{where}: no `question`")
        if not item.get("answer"):
            raise InputError(f"{where}: no accepted `answer`")
        golds.append(_triples(item, where))
    out = []
    for i, item in enumerate(items):
        gold = golds[i]
        entities = {t[0] for t in gold} | {t[2] for t in gold}
        relations = {t[1] for t in gold}
        others = list(
            dict.fromkeys(t for j, ts in enumerate(golds) if j != i for t in ts if t not in gold)
        )
        related = [t for t in others if t[0] in entities or t[2] in entities or t[1] in relations]
        rng = random.Random(f"{seed}:{item.get('ID', i)}")
        chosen = rng.sample(related, min(distractors, len(related)))
        rest = [t for t in others if t not in chosen]
        chosen += rng.sample(rest, min(distractors - len(chosen), len(rest)))
        pool = gold + chosen
        rng.shuffle(pool)
        answers = item["answer"] if isinstance(item["answer"], list) else [item["answer"]]
        out.append(
            {
                "id": str(item.get("ID", i)),
                "question": str(item["question"]),
                "answers": [str(a) for a in answers],
                "triples": [list(t) for t in pool],
                "gold": sorted(pool.index(t) for t in gold),
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agenttts.tasks.pipelines.kgqa_data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("source", type=Path, help="cwq_200.json-style items (JSON or JSON Lines)")
    parser.add_argument("out", type=Path, help="the task's JSON Lines file to write")
    parser.add_argument("--distractors", type=int, default=12, help="per item (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        items = convert(load_items(args.source), distractors=args.distractors, seed=args.seed)
    except InputError as e:
        parser.error(str(e))
    args.out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items))
    print(f"wrote {len(items)} items to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
