"""Samples replay: score a single-stage configuration from stored per-sample outputs, no LLM calls.

The store is JSONL (gzip-compressed when its name ends in `.gz`, read as is), one row per sample:

    {"model": "m", "qid": "q1", "sample": 0, "answer": "Paris", "gold": "paris", "tokens": 12,
     "prompt_tokens": 130}

`tokens` is that sample's completion tokens; `prompt_tokens` (optional) the question's prompt,
counted once per question whatever S is. `gold` is a string or a list of accepted strings.

A configuration (model, S) answers each question by a majority vote over the normalised answers of
samples 0..S-1. **Ties go to the answer that appeared first** (lowest sample index of its first
occurrence). The metric is `accuracy`: the voted answer equals a gold after normalisation, by
the stage's `answer_normalizer` (SQuAD's by default; `exact` or `numeric` for math, where SQuAD's
would merge "-3" and "3"). A question with fewer than S stored samples (0..S-1 without gaps) is
a recorded failure naming the model and qid.

Questions are the store's qids sorted (numerically where every qid is an integer), split with the
task's `split_items`, so the train/test partition is the task's, not the store's order.

Fast path, computed once per model when the store is loaded: answers become integer codes per
question in order of first appearance; a cumulative one-hot count over samples gives, for every
prefix length S, the vote counts; `argmax` takes the first maximum, i.e. the lowest code, i.e. the
answer that appeared first, so the tie rule costs nothing. `correct[q, S-1]` is then a table, and a
configuration's accuracy is one fancy-indexed mean.

Per item and as a cache: a subset of the split's questions (racing) is the same table read at those
rows, each question's 0/1 reported as its item score. The store stands in for the live sample
cache (`environment/emulated_cache.py`, keyed by model and question, the store's rows): told the
trials the search already ran (`remember`), a trial counts as newly drawn only the samples beyond
what an earlier trial drew for that model and question (sample i is index i, as in the live
cache), so its search cost is what a live search with the cache would have paid.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import zlib
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.budget import TokenUsage, measured_stage_budget
from agenttts.environment.emulated_cache import CacheEmulation
from agenttts.environment.executor import (
    PerConfigExecutor,
    StageReport,
    TrialResult,
    parse_settings,
)
from agenttts.environment.metrics import NORMALIZERS
from agenttts.environment.space import Config
from agenttts.environment.splits import Split, split_items
from agenttts.environment.sweep import OptimumBySweep, SweepResult, sweep
from agenttts.environment.task import Problem, Task, TaskError

SUPPORTED_METRICS = ("accuracy",)
STORE_FIELD = "environment.settings.store"
MAX_LISTED_PROBLEMS = 20
#: Bytes of one-hot counts built at a time, so a large store does not need q*S*K memory at once.
CHUNK_BYTES = 64 * 2**20


class SamplesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: str = Field(description="JSONL of per-sample outputs, relative to the task file")


@dataclass
class ModelSamples:
    """One model's answers over every question of the store, reduced to lookup tables."""

    available: np.ndarray  # (q,) samples 0..k-1 stored without a gap
    correct: np.ndarray  # (q, s_max) bool: vote over samples 0..S-1 is correct, at [q, S-1]
    cum_completion: np.ndarray  # (q, s_max) int64: completion tokens of samples 0..S-1
    prompt_tokens: np.ndarray  # (q,) float, NaN where not stored


def _qid_key(qid: str) -> tuple[int, int | str]:
    return (0, int(qid)) if qid.lstrip("-").isdigit() else (1, qid)


def vote_tables(codes: np.ndarray, code_correct: np.ndarray) -> np.ndarray:
    """`correct[q, s]` for the vote over samples 0..s, from answer codes in first-seen order.

    codes: (q, s_max) int, -1 where a sample is missing; code_correct: (q, k) bool.
    """
    n_q, s_max = codes.shape
    k = max(int(code_correct.shape[1]), 1)
    dtype = np.uint16 if s_max < 2**16 else np.uint32
    correct = np.zeros((n_q, s_max), dtype=bool)
    per_q = max(1, s_max * k * np.dtype(dtype).itemsize)
    step = max(1, CHUNK_BYTES // per_q)
    arange_k = np.arange(k)
    for lo in range(0, n_q, step):
        hi = min(n_q, lo + step)
        one_hot = codes[lo:hi, :, None] == arange_k[None, None, :]
        counts = np.cumsum(one_hot, axis=1, dtype=dtype)
        winner = counts.argmax(axis=2)  # first maximum = lowest code = answer seen first
        correct[lo:hi] = np.take_along_axis(code_correct[lo:hi], winner, axis=1)
    return correct


class SampleStore:
    """A loaded store: sorted qids, golds, and per-model lookup tables."""

    def __init__(self, qids: list[str], models: dict[str, ModelSamples]):
        self.qids = qids
        self.models = models

    @classmethod
    def parse(
        cls, lines: Iterable[str], source: str = "store", normalizer: str = "squad"
    ) -> SampleStore:
        normalize = NORMALIZERS[normalizer]
        problems: list[Problem] = []
        # model -> qid -> sample -> (normalised answer, tokens, prompt tokens)
        rows: dict[str, dict[str, dict[int, tuple[str, int, float]]]] = {}
        golds: dict[str, tuple[frozenset[str], int]] = {}
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{STORE_FIELD}[line {n}]"
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("a row must be a JSON object")
                missing = [
                    k
                    for k in ("model", "qid", "sample", "answer", "gold", "tokens")
                    if k not in row
                ]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)}")
                model, qid = str(row["model"]), str(row["qid"])
                sample, tokens = row["sample"], row["tokens"]
                if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
                    raise ValueError(f"sample must be an integer >= 0, got {sample!r}")
                if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
                    raise ValueError(f"tokens must be an integer >= 0, got {tokens!r}")
                prompt = row.get("prompt_tokens")
                if prompt is not None and (not isinstance(prompt, int) or prompt < 0):
                    raise ValueError(f"prompt_tokens must be an integer >= 0, got {prompt!r}")
                gold = row["gold"]
                gold_list = [gold] if isinstance(gold, str) else gold
                if not isinstance(gold_list, list) or not all(
                    isinstance(g, str) for g in gold_list
                ):
                    raise ValueError("gold must be a string or a list of strings")
            except (json.JSONDecodeError, ValueError) as e:
                problems.append(Problem(field=where, message=str(e)))
                continue
            gold_set = frozenset(normalize(g) for g in gold_list)
            if qid in golds and golds[qid][0] != gold_set:
                problems.append(
                    Problem(
                        field=where, message=f"qid {qid!r}: gold differs from line {golds[qid][1]}"
                    )
                )
                continue
            golds.setdefault(qid, (gold_set, n))
            per_q = rows.setdefault(model, {}).setdefault(qid, {})
            if sample in per_q:
                problems.append(
                    Problem(field=where, message=f"duplicate sample {sample} of {model!r}/{qid!r}")
                )
                continue
            answer = row["answer"]
            per_q[sample] = (
                normalize(None if answer is None else str(answer)),
                tokens,
                math.nan if prompt is None else float(prompt),
            )
        if not rows and not problems:
            problems.append(Problem(field=STORE_FIELD, message=f"{source} holds no samples"))
        if problems:
            extra = len(problems) - MAX_LISTED_PROBLEMS
            problems = problems[:MAX_LISTED_PROBLEMS]
            if extra > 0:
                problems.append(Problem(field=STORE_FIELD, message=f"... and {extra} more"))
            raise TaskError(source, problems)
        qids = sorted(golds, key=_qid_key)
        gold_by_index = [golds[q][0] for q in qids]
        models = {m: _model_tables(qids, gold_by_index, per_model) for m, per_model in rows.items()}
        return cls(qids, models)


def _model_tables(
    qids: list[str],
    golds: list[frozenset[str]],
    per_model: dict[str, dict[int, tuple[str, int, float]]],
) -> ModelSamples:
    n_q = len(qids)
    s_max = max((max(samples) + 1 for samples in per_model.values()), default=1)
    codes = np.full((n_q, s_max), -1, dtype=np.int32)
    tokens = np.zeros((n_q, s_max), dtype=np.int64)
    prompt = np.full(n_q, math.nan)
    code_correct_rows: list[list[bool]] = []
    for qi, qid in enumerate(qids):
        seen: dict[str, int] = {}
        flags: list[bool] = []
        samples = per_model.get(qid, {})
        for s in sorted(samples):
            answer, tok, p = samples[s]
            code = seen.get(answer)
            if code is None:
                code = seen[answer] = len(seen)
                flags.append(answer in golds[qi])
            codes[qi, s] = code
            tokens[qi, s] = tok
            if math.isnan(prompt[qi]) and not math.isnan(p):
                prompt[qi] = p
        code_correct_rows.append(flags)
    k = max((len(f) for f in code_correct_rows), default=1) or 1
    code_correct = np.zeros((n_q, k), dtype=bool)
    for qi, flags in enumerate(code_correct_rows):
        code_correct[qi, : len(flags)] = flags
    present = codes >= 0
    available = np.where(present.all(axis=1), s_max, np.argmin(present, axis=1))
    return ModelSamples(
        available=available,
        correct=vote_tables(codes, code_correct),
        cum_completion=np.cumsum(tokens, axis=1),
        prompt_tokens=prompt,
    )


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, normalizer: str, _mtime_ns: int, _size: int) -> SampleStore:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return SampleStore.parse(f, source=path, normalizer=normalizer)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
        # Not gzip, truncated, not UTF-8, unreadable: one clear problem, not a traceback.
        what = "gzip-compressed JSONL" if path.endswith(".gz") else "UTF-8 JSONL"
        raise TaskError(
            path, [Problem(field=STORE_FIELD, message=f"cannot read {path} as {what}: {e}")]
        ) from None


def load_store(path: Path, normalizer: str = "squad") -> SampleStore:
    """Load once per file version (keyed by mtime and size) and answer normaliser."""
    if not path.is_file():
        raise TaskError(
            str(path), [Problem(field=STORE_FIELD, message=f"missing sample store {path}")]
        )
    st = path.stat()
    return _load_cached(str(path.resolve()), normalizer, st.st_mtime_ns, st.st_size)


class SamplesReplayExecutor(CacheEmulation, OptimumBySweep, PerConfigExecutor):
    """Replays stored samples of a single-stage task: vote, score, and cost from real tokens.

    Declares `HasOptimum`: every (model, S) accuracy is one column mean of the vote table;
    `HasItems`: any subset of the questions, each scored; `ReplaysCache` (`CacheEmulation`): see
    the module.
    """

    kind = "samples"

    def __init__(self, task: Task, **overrides: Any):
        super().__init__(task, **overrides)
        settings, problems = parse_settings(SamplesSettings, self.settings)
        if settings is None:
            raise TaskError(task.source, problems)
        problems = _shape_problems(task)
        if problems:
            raise TaskError(task.source, problems)
        self.store = load_store(task.resolve(settings.store), task.stages[0].answer_normalizer)
        self.stage = task.stages[0]
        self._split_index: dict[str, np.ndarray] = {}

    @classmethod
    def check_task(cls, task: Task) -> list[Problem]:
        settings, problems = parse_settings(SamplesSettings, task.environment.settings)
        problems += _shape_problems(task)
        if settings is None:
            return problems
        try:
            store = load_store(task.resolve(settings.store), task.stages[0].answer_normalizer)
        except TaskError as e:
            return problems + e.problems
        if len(task.stages) == 1:
            stage = task.stages[0]
            for m in stage.model_names:
                if m not in store.models:
                    problems.append(
                        Problem(
                            field=f"stages[{stage.name}].models[{m}]",
                            message=f"model {m!r} has no samples in the store "
                            f"(store has: {', '.join(sorted(store.models))})",
                        )
                    )
        return problems

    def split_index(self, split: Split) -> np.ndarray:
        if split not in self._split_index:
            positions = split_items(self.task.data, list(range(len(self.store.qids))), split)
            self._split_index[split] = np.asarray(positions, dtype=np.int64)
        return self._split_index[split]

    def split_size(self, split: Split) -> int:
        """Questions in a split (`HasItems`: racing replays a subset of them)."""
        return int(self.split_index(split).size)

    def _rows(self, split: Split, items: Sequence[int] | None) -> np.ndarray:
        idx = self.split_index(split)
        return idx if items is None else idx[np.asarray(items, dtype=np.int64)]

    def _cache_rows(
        self, split: Split, items: Sequence[int] | None
    ) -> tuple[Hashable, np.ndarray, int]:
        """The emulated cache's items are the store's questions, whatever the split."""
        return None, self._rows(split, items), len(self.store.qids)

    async def _evaluate(
        self, config: Config, split: Split, items: tuple[int, ...] | None
    ) -> TrialResult:
        return self.replay(config, split, items)

    def sweep(self, split: Split) -> SweepResult:
        """Every feasible (model, S) scored from the vote tables: the accuracy of each S is a
        column mean over the split's questions; NaN where a question has fewer than S samples,
        as `replay` fails it."""
        idx = self.split_index(split)
        names = self.stage.model_names
        top = self.stage.max_samples
        accuracy = np.full((len(names), top), np.nan)
        for m, name in enumerate(names):
            table = self.store.models.get(name)
            if table is None or idx.size == 0:
                continue
            have = min(top, int(table.available[idx].min()), table.correct.shape[1])
            accuracy[m, :have] = table.correct[idx, :have].mean(axis=0)
        return sweep(self.task, lambda chunk: accuracy[chunk.model(0), chunk.samples(0) - 1])

    def replay(
        self, config: Config, split: Split, items: Sequence[int] | None = None
    ) -> TrialResult:
        """Synchronous core of `_evaluate`, for a checked configuration (what perf/ times)."""
        sc = config[self.stage.name]
        nominal = self.stage.cost(sc.model, sc.samples)
        base: dict[str, Any] = {
            "config": config,
            "split": split,
            "nominal_cost": nominal,
            "stages": {self.stage.name: StageReport(nominal_cost=nominal)},
        }
        table = self.store.models.get(sc.model)
        if table is None:
            return TrialResult(**base, error=f"model {sc.model!r} has no samples in the store")
        idx = self._rows(split, items)
        if idx.size == 0:
            return TrialResult(**base, error=f"split {split!r} has no questions")
        short = table.available[idx] < sc.samples
        if short.any():
            q = int(idx[int(np.argmax(short))])
            return TrialResult(
                **base,
                error=f"model {sc.model!r}, qid {self.store.qids[q]!r}: {int(table.available[q])} "
                f"stored samples (0..S-1 without gaps), the configuration needs {sc.samples}"
                f" ({int(short.sum())} question(s) short)",
            )
        s = sc.samples - 1
        correct = table.correct[idx, s]
        accuracy = float(correct.mean())
        completion = int(table.cum_completion[idx, s].sum())
        prompts = table.prompt_tokens[idx]
        prompt_measured = not np.isnan(prompts).any()
        n = int(idx.size)
        prompt_total = int(prompts.sum()) if prompt_measured else self.stage.prompt_tokens * n
        choice = self.stage.model(sc.model)
        usage = TokenUsage(
            queries=n,
            prompt_tokens=prompt_total,
            completion_tokens=completion,
            samples=n * sc.samples,
        )
        measured = measured_stage_budget(usage, choice.params or 0.0, sc.samples, choice.fixed_cost)
        report = StageReport(
            nominal_cost=nominal,
            measured_cost=measured,
            prompt_tokens=prompt_total if prompt_measured else 0,
            completion_tokens=completion,
        )
        return TrialResult(
            **{**base, "stages": self.charged({self.stage.name: report}, config, split, items)},
            metrics={"accuracy": accuracy},
            measured_cost=measured,
            prompt_tokens=report.prompt_tokens,
            completion_tokens=completion,
            source=f"samples store: {sc.model} x{sc.samples} over {n} questions",
            details={
                "questions": n,
                "prompt_tokens_from": "store" if prompt_measured else "nominal (store has none)",
            },
            item_scores=None if items is None else correct.astype(np.float64).tolist(),
        )


def _shape_problems(task: Task) -> list[Problem]:
    problems = []
    if len(task.stages) != 1:
        problems.append(
            Problem(
                field="stages",
                message=f"the samples executor replays a single-stage task; this one has "
                f"{len(task.stages)} stages",
            )
        )
    for m in task.metrics:
        if m not in SUPPORTED_METRICS:
            problems.append(
                Problem(
                    field="metrics",
                    message=f"the samples executor computes {', '.join(SUPPORTED_METRICS)}, "
                    f"not {m!r}",
                )
            )
    return problems
