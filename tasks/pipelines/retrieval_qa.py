"""The paper's retrieval -> QA pipeline (2WikiMultihopQA, HotpotQA) as a `kind: python` pipeline.

Items are 2Wiki/HotpotQA rows: `question`, `answers`, `ctxs_candidate` (~100 passages) and
`ctxs_gt` (the gold passages). Two stages, by position:

1. retrieval: pick the passages that answer the question from the item's candidates.
   - an LLM reads numbered passages and names their numbers; each sample's numbers are parsed (at
     most `max_select`) and merged by the stage's aggregator (`vote_ids`). With `shortlist: K` it
     sees only BM25's top K candidates (numbered 1..K, mapped back afterwards): this keeps a small
     model's prompt inside its context and its attention; without it, it sees every candidate.
   - a non-LLM choice (`kind: bm25` or `kind: embedding`) keeps its `top_k` best candidates.
2. qa: answer from the retrieved passages; each sample's answer is read after "Answer:" (else
   its first line) and merged with `vote` (or `fuse`: an LLM reads the S answers and writes one).

`score` gives `em`, `f1` (SQuAD normalisation against every accepted answer) and
`retrieval_precision`, `retrieval_recall`, `retrieval_f1` against the gold passages; `check` is what
`task validate` adds for this pipeline. Stage settings beyond sampling: `prompt` (a file relative
to the task; default the bundled 2wiki prompts), `shortlist`, `max_select`, `top_k`,
`max_passages`, `passage_chars`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.live.retrievers import available, ranked
from agenttts.environment.metrics import exact_match, retrieval_scores, token_f1
from agenttts.environment.task import Problem, Task
from agenttts.pipeline import StageHandle, Stages, parse_answer, parse_ids
from agenttts.tasks.pipelines.stage_config import metric_problems, stage_problems, stage_prompt

METRICS = ("em", "f1", "retrieval_precision", "retrieval_recall", "retrieval_f1")
DEFAULT_PROMPTS = ("2wiki-retrieval.txt", "2wiki-qa.txt")
FITTING = ({"vote_ids", "first"}, {"vote", "fuse", "first"})


class Settings(BaseModel):
    """The pipeline's own keys in a stage's `settings:` (sampling keys are agenttts')."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, description="prompt file, relative to the task file")
    shortlist: int | None = Field(
        default=None, ge=1, description="retrieval: BM25 top K for an LLM"
    )
    max_select: int = Field(default=5, ge=1, description="retrieval: ids read from one sample")
    top_k: int = Field(default=3, ge=1, description="retrieval: passages a non-LLM choice keeps")
    max_passages: int = Field(default=5, ge=1, description="qa: retrieved passages in the prompt")
    passage_chars: int | None = Field(default=None, ge=20, description="truncate each passage")


def listed(texts: Sequence[str], settings: Settings) -> str:
    cut = settings.passage_chars
    lines = [f"[{i}] {t[:cut] if cut else t}" for i, t in enumerate(texts, start=1)]
    return "\n".join(lines) if lines else "(no passages retrieved)"


def candidates(item: dict[str, Any]) -> list[str]:
    return [str(c) for c in item["ctxs_candidate"]]


async def retrieve(item: dict[str, Any], stage: StageHandle) -> list[int]:
    settings = Settings.model_validate(stage.settings)
    pool = candidates(item)
    question = str(item["question"])
    if not stage.is_llm:
        order = await asyncio.to_thread(ranked, stage.kind, question, pool)
        return order[: settings.top_k]
    shown = (
        ranked("bm25", question, pool)[: settings.shortlist]
        if settings.shortlist
        else list(range(len(pool)))
    )
    template = stage_prompt(stage, settings, DEFAULT_PROMPTS[0])
    messages = template.messages(
        question=question, passages=listed([pool[i] for i in shown], settings)
    )
    samples = await stage.sample(messages)
    picks = [
        [shown[n - 1] for n in parse_ids(s.text, len(shown), settings.max_select)] for s in samples
    ]
    return list(await stage.aggregate(picks))


async def answer(item: dict[str, Any], passages: list[int], stage: StageHandle) -> str | None:
    settings = Settings.model_validate(stage.settings)
    pool = candidates(item)
    texts = [pool[i] for i in passages[: settings.max_passages]]
    template = stage_prompt(stage, settings, DEFAULT_PROMPTS[1])
    question = str(item["question"])
    samples = await stage.sample(
        template.messages(question=question, passages=listed(texts, settings))
    )
    answers = [parse_answer(s.text) for s in samples]
    return await stage.aggregate(answers, question=question)


async def pipeline(item: dict[str, Any], stages: Stages) -> dict[str, Any]:
    """Retrieve, then answer; the prediction carries both so `score` can grade each stage."""
    retrieval, qa = (stages[name] for name in stages)
    passages = await retrieve(item, retrieval)
    return {"answer": await answer(item, passages, qa), "passages": passages}


def gold_passages(item: dict[str, Any]) -> set[int]:
    where = {c.strip(): i for i, c in enumerate(candidates(item))}
    return {where[g.strip()] for g in item.get("ctxs_gt", []) if g.strip() in where}


def score(prediction: dict[str, Any], item: dict[str, Any]) -> dict[str, float]:
    raw = item["answers"]
    answers = [str(a) for a in raw] if isinstance(raw, list) else [str(raw)]
    r = retrieval_scores(prediction["passages"], gold_passages(item))
    return {
        "em": exact_match(prediction["answer"], answers),
        "f1": token_f1(prediction["answer"], answers),
        "retrieval_precision": r["precision"],
        "retrieval_recall": r["recall"],
        "retrieval_f1": r["f1"],
    }


def check(task: Task) -> list[Problem]:
    """What `task validate` checks for this pipeline, before anything is spent."""
    if len(task.stages) != 2:
        return [Problem(field="stages", message="retrieval_qa needs two stages: retrieval, qa")]
    problems = metric_problems(task, METRICS, "retrieval_qa")
    for position, (stage, fits, default) in enumerate(
        zip(task.stages, FITTING, DEFAULT_PROMPTS, strict=True)
    ):
        problems += stage_problems(
            task,
            stage.name,
            settings=Settings,
            aggregators=fits,
            default_prompt=default,
            placeholders={"question", "passages"},
            non_llm=None,  # by position, below
        )
        for m in (m for m in stage.models if m.kind != "llm"):
            why = "a non-LLM choice only fits retrieval" if position else available(m.kind)
            if why is not None:
                where = f"stages[{stage.name}].models[{m.name}]"
                problems.append(Problem(field=where, message=why))
    return problems
