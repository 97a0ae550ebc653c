"""Knowledge-graph QA (the paper's CWQ task): select the triples that answer a question, then
answer from them.

Items (`kgqa_data` builds them from ComplexWebQuestions-style data): `question`, `answers`,
`triples` (the candidate pool, [head, relation, tail] each) and `gold` (the gold triples'
positions in the pool). Two stages:

1. select: an LLM reads the numbered triples and names the ones needed; each sample's numbers (at
   most `max_select`) are merged by the stage's aggregator (`vote_ids`). With `shortlist: K` it
   reads only BM25's K best triples (langchain-community's `BM25Retriever`), which keeps a large
   pool inside a small model's context. A `kind: bm25` choice keeps BM25's `top_k` best triples
   and calls no model.
2. answer: S answers from the selected triples (at most `max_triples`), each read after "Answer:",
   merged by the stage's aggregator (`vote`, or `fuse`: an LLM writes one from the S).

`score`: `em`, `f1` and `contains` (the paper's hits@1: an accepted answer occurs in the answer)
against the accepted answers; `triple_precision`, `triple_recall` and `triple_f1` against the
gold triples. A stage's `settings.prompt` replaces its prompt file (placeholders `{question}`,
`{triples}`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import warnings
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.live.loading import load_items
from agenttts.environment.live.retrievers import tokenize
from agenttts.environment.metrics import contains, exact_match, retrieval_scores, token_f1
from agenttts.environment.task import Problem, Task
from agenttts.errors import InputError
from agenttts.pipeline import StageHandle, Stages, parse_answer, parse_ids
from agenttts.tasks.pipelines.stage_config import (
    metric_problems,
    stage_problems,
    stage_prompt,
    stage_settings,
)

METRICS = ("em", "f1", "contains", "triple_precision", "triple_recall", "triple_f1")
PROMPTS = {"select": "kgqa-select.txt", "answer": "kgqa-answer.txt"}


class SelectSettings(BaseModel):
    """The select stage's own keys in `settings:` (sampling keys are agenttts')."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, description="prompt file, relative to the task file")
    shortlist: int | None = Field(default=None, ge=1, description="BM25's top K for an LLM")
    max_select: int = Field(default=5, ge=1, description="triple numbers read from one sample")
    top_k: int = Field(default=4, ge=1, description="triples a bm25 choice keeps")


class AnswerSettings(BaseModel):
    """The answer stage's own keys in `settings:`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, description="prompt file, relative to the task file")
    max_triples: int = Field(default=8, ge=1, description="selected triples in the prompt")


def pool(item: dict[str, Any]) -> list[str]:
    """The item's candidate triples as text, `head | relation | tail`."""
    return [" | ".join(map(str, t)) for t in item["triples"]]


def numbered(triples: Sequence[str]) -> str:
    lines = [f"[{i}] {t}" for i, t in enumerate(triples, start=1)]
    return "\n".join(lines) if lines else "(no triples selected)"


def bm25_best(question: str, triples: Sequence[str], k: int) -> list[int]:
    """Positions of BM25's k best triples for the question, best first."""
    with warnings.catch_warnings():
        # langchain-community announces its sunset on import; its BM25Retriever is what we use
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.retrievers import BM25Retriever

    retriever = BM25Retriever.from_texts(
        list(triples),
        metadatas=[{"i": i} for i in range(len(triples))],
        k=k,
        preprocess_func=tokenize,
    )
    return [int(doc.metadata["i"]) for doc in retriever.invoke(question)]


async def select(item: dict[str, Any], stage: StageHandle) -> list[int]:
    settings = stage_settings(stage.stage, SelectSettings)
    triples, question = pool(item), str(item["question"])
    if not stage.is_llm:
        return await asyncio.to_thread(bm25_best, question, triples, settings.top_k)
    shown = list(range(len(triples)))
    if settings.shortlist and settings.shortlist < len(triples):
        shown = await asyncio.to_thread(bm25_best, question, triples, settings.shortlist)
    template = stage_prompt(stage, settings, PROMPTS["select"])
    samples = await stage.sample(
        template.messages(question=question, triples=numbered([triples[i] for i in shown]))
    )
    picks = [
        [shown[n - 1] for n in parse_ids(s.text, len(shown), settings.max_select)] for s in samples
    ]
    return [int(i) for i in await stage.aggregate(picks)]


async def answer(item: dict[str, Any], chosen: list[int], stage: StageHandle) -> str | None:
    settings = stage_settings(stage.stage, AnswerSettings)
    triples, question = pool(item), str(item["question"])
    shown = [triples[i] for i in chosen[: settings.max_triples]]
    template = stage_prompt(stage, settings, PROMPTS["answer"])
    samples = await stage.sample(template.messages(question=question, triples=numbered(shown)))
    return await stage.aggregate([parse_answer(s.text) for s in samples], question=question)


async def pipeline(item: dict[str, Any], stages: Stages) -> dict[str, Any]:
    """Select, then answer; the prediction carries both so `score` grades each stage."""
    chosen = await select(item, stages["select"])
    return {"answer": await answer(item, chosen, stages["answer"]), "triples": chosen}


def score(prediction: dict[str, Any], item: dict[str, Any]) -> dict[str, float]:
    answers = [str(a) for a in item["answers"]]
    r = retrieval_scores(prediction["triples"], item["gold"])
    return {
        "em": exact_match(prediction["answer"], answers),
        "f1": token_f1(prediction["answer"], answers),
        "contains": contains(prediction["answer"], answers),
        "triple_precision": r["precision"],
        "triple_recall": r["recall"],
        "triple_f1": r["f1"],
    }


def check(task: Task) -> list[Problem]:
    """What `task validate` adds for this pipeline, before anything is spent."""
    problems = [
        *stage_problems(
            task,
            "select",
            settings=SelectSettings,
            aggregators={"vote_ids", "first"},
            default_prompt=PROMPTS["select"],
            placeholders={"question", "triples"},
            non_llm={"bm25"},
        ),
        *stage_problems(
            task,
            "answer",
            settings=AnswerSettings,
            aggregators={"vote", "fuse", "first"},
            default_prompt=PROMPTS["answer"],
            placeholders={"question", "triples"},
        ),
        *metric_problems(task, METRICS, "kgqa"),
    ]
    select = next((st for st in task.stages if st.name == "select"), None)
    uses_bm25 = select is not None and (
        any(m.kind == "bm25" for m in select.models) or "shortlist" in select.settings
    )
    if uses_bm25 and importlib.util.find_spec("langchain_community") is None:
        problems.append(
            Problem(
                field="stages[select]",
                message="BM25 needs langchain-community and rank-bm25: "
                "pip install 'agenttts[retrievers]'",
            )
        )
    try:
        items = load_items(task.resolve(task.data.path or ""))
    except InputError:
        return problems  # reported by the executor's own check
    fields = ("question", "answers", "triples", "gold")
    bad = [i for i, item in enumerate(items) if any(f not in item for f in fields)]
    if bad:
        problems.append(
            Problem(
                field="data.path",
                message=f"{len(bad)} item(s) lack one of {list(fields)} (first: item {bad[0]}); "
                "make the data with `python -m agenttts.tasks.pipelines.kgqa_data`",
            )
        )
    return problems
