"""What each stage of a live pipeline sends, how its samples are read, and how the end is scored.

`retrieval_qa` (the paper's 2WikiMultihopQA / HotpotQA pipeline), stages by position:

1. retrieval: pick the passages that answer the question from the item's ~100 candidates.
   - an LLM choice reads numbered passages and names their numbers; each sample's numbers are
     parsed (at most `max_select`), then aggregated with `vote_ids`. With `shortlist: K` the LLM
     sees only BM25's top K candidates (numbered 1..K, mapped back afterwards): this keeps a small
     model's prompt inside its context and its attention; without it, it sees every candidate.
   - a non-LLM choice (`kind: bm25` or `kind: embedding`) keeps its `top_k` best candidates.
2. qa: answer from the retrieved passages; each sample's answer is read after "Answer:" (else its
   first line) and aggregated with `vote` (or `fuse`: an LLM reads the S answers and writes one).

Metrics per item, averaged over the split: `em`, `f1` (SQuAD normalisation against every accepted
answer) and `retrieval_precision`, `retrieval_recall`, `retrieval_f1` against the gold passages.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.executor import parse_settings
from agenttts.environment.live import aggregators
from agenttts.environment.live.cache import Sample
from agenttts.environment.live.retrievers import available, ranked
from agenttts.environment.metrics import exact_match, retrieval_scores, token_f1
from agenttts.environment.task import ModelChoice, Problem, Split, Stage, StageConfig, Task

BUNDLED_PROMPTS = Path(__file__).resolve().parent.parent.parent / "tasks" / "prompts"

Messages = list[dict[str, str]]
#: (stage, model choice, messages, samples, stage settings, tally name) -> the S samples
Draw = Callable[[Stage, ModelChoice, Messages, int, "StageSettings", str], Awaitable[list[Sample]]]


class StageSettings(BaseModel):
    """A stage's `settings:` block for the live executor (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, description="prompt file, relative to the task file")
    temperature: float = Field(default=0.9, ge=0, description="the paper samples at 0.9")
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, description="default: the stage gen_tokens")
    seed: int | None = Field(
        default=None, description="sample i is drawn with seed+i (one request per sample)"
    )
    shortlist: int | None = Field(
        default=None, ge=1, description="retrieval: BM25 top K for an LLM"
    )
    max_select: int = Field(default=5, ge=1, description="retrieval: ids read from one sample")
    top_k: int = Field(default=3, ge=1, description="retrieval: passages a non-LLM choice keeps")
    max_passages: int = Field(default=5, ge=1, description="qa: retrieved passages in the prompt")
    passage_chars: int | None = Field(default=None, ge=20, description="truncate each passage")

    def sampling(self, stage: Stage) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens or stage.gen_tokens,
        }
        if self.seed is not None:
            params["seed"] = self.seed
        return params


def stage_settings(stage: Stage) -> tuple[StageSettings | None, list[Problem]]:
    parsed, problems = parse_settings(StageSettings, stage.settings)
    for p in problems:
        p.field = p.field.replace("environment.settings", f"stages[{stage.name}].settings", 1)
    return parsed, problems


# ------------------------------------------------------------------------------------------------
# Prompts
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt file: optional `### system` and `### user` sections, `{placeholders}` inside."""

    system: str | None
    user: str

    @classmethod
    def load(cls, path: Path) -> PromptTemplate:
        text = path.read_text()
        sections: dict[str, list[str]] = {}
        current = "user"
        for line in text.splitlines():
            header = re.fullmatch(r"###\s*(system|user)\s*", line.strip(), re.IGNORECASE)
            if header:
                current = header.group(1).lower()
                sections[current] = []
            else:
                sections.setdefault(current, []).append(line)
        system = "\n".join(sections.get("system", [])).strip() or None
        return cls(system=system, user="\n".join(sections.get("user", [])).strip())

    def fields(self) -> set[str]:
        found = re.findall(r"(?<!\{)\{(\w+)\}(?!\})", f"{self.system or ''}\n{self.user}")
        return set(found)

    def messages(self, **values: str) -> Messages:
        out: Messages = []
        if self.system:
            out.append({"role": "system", "content": self.system.format(**values)})
        out.append({"role": "user", "content": self.user.format(**values)})
        return out


def prompt_path(task: Task, settings: StageSettings, default: str) -> Path:
    return task.resolve(settings.prompt) if settings.prompt else BUNDLED_PROMPTS / default


# ------------------------------------------------------------------------------------------------
# Parsing samples
# ------------------------------------------------------------------------------------------------


def parse_ids(text: str, shown: int, limit: int) -> list[int]:
    """Passage numbers 1..shown named in a sample, in order, without repeats, at most `limit`."""
    out: list[int] = []
    for m in re.finditer(r"\d+", text):
        n = int(m.group())
        if 1 <= n <= shown and n not in out:
            out.append(n)
            if len(out) >= limit:
                break
    return out


def parse_answer(text: str) -> str | None:
    """The short answer in a sample: after the last "Answer:", else the first non-empty line."""
    marks = list(re.finditer(r"answer\s*[:：]", text, re.IGNORECASE))
    tail = text[marks[-1].end() :] if marks else text
    for line in tail.splitlines():
        line = line.strip().strip("*\"'` .")
        if line:
            return line
    return None


# ------------------------------------------------------------------------------------------------
# The retrieval -> QA pipeline
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QAItem:
    question: str
    answers: tuple[str, ...]
    candidates: tuple[str, ...]
    gold: frozenset[int]


def load_qa_items(path: Path) -> list[QAItem]:
    """2Wiki/HotpotQA-style JSON: question, answers, ctxs_candidate, ctxs_gt (gold passages)."""
    raw = json.loads(path.read_text())
    items = []
    for row in raw:
        candidates = tuple(str(c) for c in row["ctxs_candidate"])
        where = {c.strip(): i for i, c in enumerate(candidates)}
        gold = frozenset(where[g.strip()] for g in row.get("ctxs_gt", []) if g.strip() in where)
        answers = row["answers"] if isinstance(row["answers"], list) else [row["answers"]]
        items.append(QAItem(str(row["question"]), tuple(map(str, answers)), candidates, gold))
    return items


class RetrievalQA:
    name: ClassVar[str] = "retrieval_qa"
    metrics: ClassVar[tuple[str, ...]] = (
        "em",
        "f1",
        "retrieval_precision",
        "retrieval_recall",
        "retrieval_f1",
    )
    aggregators: ClassVar[tuple[set[str], set[str]]] = (
        {"vote_ids", "first"},
        {"vote", "fuse", "first"},
    )

    def __init__(self, task: Task):
        self.task = task
        self.retrieval, self.qa = task.stages
        self.r_set = stage_settings(self.retrieval)[0] or StageSettings()
        self.q_set = stage_settings(self.qa)[0] or StageSettings()
        self.r_prompt = PromptTemplate.load(prompt_path(task, self.r_set, "2wiki-retrieval.txt"))
        self.q_prompt = PromptTemplate.load(prompt_path(task, self.q_set, "2wiki-qa.txt"))
        fuse_file = self.qa.aggregator_settings.get("prompt")
        self.f_prompt = PromptTemplate.load(
            task.resolve(fuse_file) if fuse_file else BUNDLED_PROMPTS / "fuse.txt"
        )
        assert task.data.path is not None
        self._items = load_qa_items(task.resolve(task.data.path))

    @classmethod
    def check(cls, task: Task) -> list[Problem]:
        problems: list[Problem] = []
        if len(task.stages) != 2:
            return [
                Problem(
                    field="stages", message="retrieval_qa needs exactly two stages: retrieval, qa"
                )
            ]
        if task.data.path is None:
            problems.append(Problem(field="data.path", message="retrieval_qa needs a data file"))
        unknown = [m for m in task.metrics if m not in cls.metrics]
        if unknown:
            problems.append(
                Problem(
                    field="metrics",
                    message=f"unknown {unknown} (retrieval_qa: {', '.join(cls.metrics)})",
                )
            )
        defaults = ("2wiki-retrieval.txt", "2wiki-qa.txt")
        needs = ({"question", "passages"}, {"question", "passages"})
        for stage, allowed, default, need in zip(
            task.stages, cls.aggregators, defaults, needs, strict=True
        ):
            where = f"stages[{stage.name}]"
            if stage.aggregator not in allowed:
                problems.append(
                    Problem(
                        field=f"{where}.aggregator",
                        message=f"{stage.aggregator!r} does not fit this stage "
                        f"(use {' or '.join(sorted(allowed))})",
                    )
                )
            settings, found = stage_settings(stage)
            problems.extend(found)
            if settings is not None:
                path = prompt_path(task, settings, default)
                if not path.exists():
                    problems.append(
                        Problem(field=f"{where}.settings.prompt", message=f"missing {path}")
                    )
                else:
                    missing = need - PromptTemplate.load(path).fields()
                    if missing:
                        problems.append(
                            Problem(
                                field=f"{where}.settings.prompt",
                                message=f"{path.name} lacks the placeholder(s) {sorted(missing)}",
                            )
                        )
            fuser = stage.aggregator_settings.get("model")
            if stage.aggregator == "fuse" and fuser is not None and fuser not in stage.model_names:
                problems.append(
                    Problem(
                        field=f"{where}.aggregator_settings.model",
                        message=f"fuser {fuser!r} is not one of the stage's models",
                    )
                )
            for m in stage.models:
                if m.kind != "llm":
                    if stage is not task.stages[0]:
                        problems.append(
                            Problem(
                                field=f"{where}.models[{m.name}]",
                                message="a non-LLM choice only fits retrieval",
                            )
                        )
                    elif (why := available(m.kind)) is not None:
                        problems.append(Problem(field=f"{where}.models[{m.name}]", message=why))
        return problems

    def items(self, split: Split) -> list[QAItem]:
        return self.task.split_items(self._items, split)

    def _passages(self, texts: Sequence[str], settings: StageSettings) -> str:
        cut = settings.passage_chars
        lines = [f"[{i}] {t[:cut] if cut else t}" for i, t in enumerate(texts, start=1)]
        return "\n".join(lines) if lines else "(no passages retrieved)"

    async def retrieve(self, item: QAItem, sc: StageConfig, draw: Draw) -> list[int]:
        choice = self.retrieval.model(sc.model)
        if choice.kind != "llm":
            order = await asyncio.to_thread(ranked, choice.kind, item.question, item.candidates)
            return order[: self.r_set.top_k]
        shown = (
            ranked("bm25", item.question, item.candidates)[: self.r_set.shortlist]
            if self.r_set.shortlist
            else list(range(len(item.candidates)))
        )
        messages = self.r_prompt.messages(
            question=item.question,
            passages=self._passages([item.candidates[i] for i in shown], self.r_set),
        )
        samples = await draw(
            self.retrieval, choice, messages, sc.samples, self.r_set, self.retrieval.name
        )
        picks = [
            [shown[n - 1] for n in parse_ids(s.text, len(shown), self.r_set.max_select)]
            for s in samples
        ]
        if self.retrieval.aggregator == "first":
            return picks[0]
        return aggregators.vote_ids(picks)

    async def answer(
        self, item: QAItem, passages: list[int], sc: StageConfig, draw: Draw
    ) -> str | None:
        choice = self.qa.model(sc.model)
        texts = [item.candidates[i] for i in passages[: self.q_set.max_passages]]
        messages = self.q_prompt.messages(
            question=item.question, passages=self._passages(texts, self.q_set)
        )
        samples = await draw(self.qa, choice, messages, sc.samples, self.q_set, self.qa.name)
        answers = [parse_answer(s.text) for s in samples]
        if self.qa.aggregator == "first" or len(answers) == 1:
            return answers[0]
        if self.qa.aggregator == "vote":
            return aggregators.vote(answers)
        return await self._fuse(item, answers, choice, draw)

    async def _fuse(
        self, item: QAItem, answers: list[str | None], choice: ModelChoice, draw: Draw
    ) -> str | None:
        """The LLM fuser: one greedy call over the S answers; its tokens go to the `fuse` tally."""
        agg = self.qa.aggregator_settings
        fuser = self.qa.model(agg["model"]) if "model" in agg else choice
        listed = "\n".join(f"{i}. {a or '(no answer)'}" for i, a in enumerate(answers, start=1))
        messages = self.f_prompt.messages(question=item.question, answers=listed)
        fuse_set = self.q_set.model_copy(update={"temperature": 0.0, "seed": None})
        samples = await draw(self.qa, fuser, messages, 1, fuse_set, "fuse")
        return parse_answer(samples[0].text) or aggregators.vote(answers)

    async def run_item(
        self, item: QAItem, config: Mapping[str, StageConfig], draw: Draw
    ) -> dict[str, float]:
        passages = await self.retrieve(item, config[self.retrieval.name], draw)
        prediction = await self.answer(item, passages, config[self.qa.name], draw)
        r = retrieval_scores(passages, item.gold)
        return {
            "em": exact_match(prediction, item.answers),
            "f1": token_f1(prediction, item.answers),
            "retrieval_precision": r["precision"],
            "retrieval_recall": r["recall"],
            "retrieval_f1": r["f1"],
        }


PIPELINES: dict[str, type[RetrievalQA]] = {RetrievalQA.name: RetrievalQA}
