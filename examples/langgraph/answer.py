"""The searched graph in your own process, at the configuration `agenttts export` wrote.

    agenttts export THREAD --out best.yaml
    AGENTTTS_CONFIG=best.yaml python examples/langgraph/answer.py questions.jsonl

Nothing here knows about the search: `qa_graph.graph` is the very graph that was searched, and its
model objects (`stages[...].chat_model()`) resolve from the exported file, so each stage runs its
chosen model with its S samples and aggregator. One JSON line per question goes to stdout; what
the stages drew (requests, samples the cache already held, tokens) goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # qa_graph.py beside this file

from qa_graph import graph

from agenttts.pipeline import stages


async def main(path: str) -> None:
    questions = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    states = await asyncio.gather(
        *(graph.ainvoke({"question": q["question"], "passages": q["passages"]}) for q in questions)
    )
    for q, state in zip(questions, states, strict=True):
        print(json.dumps({"id": q.get("id"), "answer": state["answer"]}, ensure_ascii=False))
    print(json.dumps({"usage": stages.usage()}), file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
