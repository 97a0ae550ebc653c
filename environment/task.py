"""The task file's schema: stages, model choices, budget, metrics, data and environment.

A task is YAML validated by pydantic here; `task_loading` reads the files and `task_checks` checks
the whole task so that every problem is reported field by field before any compute is spent. What a
task allows to run (configurations, costs, the feasible set) lives in `space`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from agenttts.environment.budget import stage_budget
from agenttts.environment.registry import EXECUTORS
from agenttts.environment.user_files import STRICT
from agenttts.errors import InputError

#: Aggregators a stage may name. The live executor implements each one; replay executors ignore it.
AGGREGATORS: dict[str, str] = {
    "vote": "majority vote over normalised answers (ties: the answer seen first)",
    "vote_ids": "vote over selected reference ids; keep the most common count of ids",
    "fuse": "an LLM fuser reads all samples and writes one answer (its calls are counted)",
    "first": "no aggregation: the first sample",
}


#: The largest integer a number may be anywhere (a seed, a count, a setting): integers are stored
#: in checkpoints, whose msgpack holds 64 bits, and seeds are sent as int64 request fields.
INT_MAX = 2**63 - 1


class Problem(BaseModel):
    """One thing wrong with a task file: where, and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


#: The field of a problem with the file itself (unreadable, not YAML), not with one of its fields.
WHOLE_FILE = "<file>"


class TaskError(InputError):
    """Input that must not run (a task file, or the table or sample store it names); carries
    every problem found, not only the first."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1 and self.problems[0].field == WHOLE_FILE:
            super().__init__(f"{source}: {self.problems[0].message}")  # one line
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


class ModelChoice(BaseModel):
    """One model a stage may run: an LLM behind an endpoint, or a non-LLM retriever."""

    model_config = STRICT

    name: str = Field(
        description="served model name (or retriever name); the key in configurations"
    )
    params: float | None = Field(
        default=None, gt=0, description="parameter count; may come from the deployment file"
    )
    endpoint: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL; else the deployment file resolves name",
    )
    kind: Literal["llm", "bm25", "embedding"] = "llm"
    fixed_cost: float | None = Field(
        default=None, ge=0, description="budget units per query for a non-LLM choice"
    )
    prompt_tokens: int | None = Field(
        default=None,
        gt=0,
        description="this model's nominal prompt length Np where it differs from the stage's "
        "(another tokenizer, another prompt)",
    )
    gen_tokens: int | None = Field(
        default=None,
        gt=0,
        description="this model's nominal generation length Nd where it differs from the stage's: "
        "real completion lengths differ by model, and that moves the optimum",
    )


class Stage(BaseModel):
    model_config = STRICT

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    description: str = ""
    models: list[ModelChoice] = Field(min_length=1)
    prompt_tokens: int = Field(gt=0, description="nominal prompt length Np")
    gen_tokens: int = Field(gt=0, description="nominal generation length per sample Nd")
    max_samples: int = Field(default=100, ge=1, description="S runs over 1..max_samples")
    samples: list[int] | None = Field(
        default=None,
        min_length=1,
        description="the sample counts searched instead of 1..max_samples, e.g. [1, 2, 4, 8]: a "
        "table measured at those counts is then searched exactly",
    )
    aggregator: str = "vote"
    answer_normalizer: Literal["squad", "exact", "numeric"] = Field(
        default="squad",
        description="how answers are compared and voted on (`metrics.NORMALIZERS`): squad for "
        "short text answers, exact or numeric where SQuAD's dropping of punctuation would merge "
        "'-3' and '3'",
    )
    aggregator_settings: dict[str, Any] = Field(default_factory=dict)
    budget_share: float | None = Field(default=None, gt=0, le=1)
    settings: dict[str, Any] = Field(default_factory=dict, description="executor-specific")

    @model_validator(mode="after")
    def _sample_set(self) -> Stage:
        """A sample set is kept sorted and unique, and sets max_samples (giving both with
        another maximum is a contradiction, not a choice)."""
        if self.samples is None:
            return self
        counts = sorted(set(self.samples))
        if counts[0] < 1:
            raise ValueError(f"samples must be >= 1 (got {counts[0]})")
        if "max_samples" in self.model_fields_set and self.max_samples != counts[-1]:
            raise ValueError(
                f"max_samples {self.max_samples} contradicts samples (largest {counts[-1]}): "
                "give one of them"
            )
        self.samples = counts
        self.max_samples = counts[-1]
        return self

    @property
    def sample_counts(self) -> list[int]:
        """The sample counts an LLM choice of this stage may run (a non-LLM choice runs once)."""
        return list(self.samples) if self.samples else list(range(1, self.max_samples + 1))

    def lengths(self, model: str) -> tuple[int, int]:
        """Nominal (Np, Nd) of `model` at this stage: its own where set, else the stage's."""
        m = self.model(model)
        return m.prompt_tokens or self.prompt_tokens, m.gen_tokens or self.gen_tokens

    def model(self, name: str) -> ModelChoice:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"stage {self.name!r} has no model {name!r}")

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def largest_model(self) -> ModelChoice:
        """Largest by parameter count; non-LLM choices rank below every LLM."""
        return max(self.models, key=lambda m: (m.kind == "llm", m.params or 0.0))

    def cost(self, model: str, samples: int) -> float:
        m = self.model(model)
        np_, nd = self.lengths(model)
        return stage_budget(samples, m.params or 0.0, np_, nd, m.fixed_cost)


class DataSpec(BaseModel):
    model_config = STRICT

    path: str | None = Field(default=None, description="relative to the task file")
    train_size: int = Field(default=50, ge=1)
    test_size: int = Field(default=50, ge=0)
    seed: int = Field(default=0, ge=0, le=INT_MAX, description="shuffles the items into splits")


class EnvironmentSpec(BaseModel):
    model_config = STRICT

    kind: str = Field(description=f"executor kind: {', '.join(EXECUTORS)}")
    settings: dict[str, Any] = Field(default_factory=dict)


class Task(BaseModel):
    model_config = STRICT

    name: str
    description: str = ""
    budget: float = Field(
        gt=0, description="total budget in the paper's units (default: the largest of `budgets`)"
    )
    budgets: list[Annotated[float, Field(gt=0)]] | None = Field(
        default=None,
        min_length=1,
        description="several budgets searched in one thread (a frontier search, see "
        "agenttts/frontier.py); the `budgets` setting overrides them",
    )
    stages: list[Stage] = Field(min_length=1)
    metrics: list[str] = Field(min_length=1)
    main_metric: str
    data: DataSpec = Field(default_factory=DataSpec)
    environment: EnvironmentSpec
    deployment: str | None = Field(
        default=None, description="deployment file, relative to the task"
    )

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="<memory>")

    @model_validator(mode="before")
    @classmethod
    def _budget_from_budgets(cls, raw: Any) -> Any:
        """A frontier task may name only `budgets`: its budget (the search's widest) is their
        largest."""
        if isinstance(raw, dict) and "budget" not in raw and isinstance(raw.get("budgets"), list):
            numbers = [b for b in raw["budgets"] if isinstance(b, int | float)]
            if numbers:
                return {**raw, "budget": max(numbers)}
        return raw

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("metrics repeat a name")
        return v

    # --- paths -------------------------------------------------------------------------------
    def set_origin(self, source: str, base_dir: Path) -> None:
        """Where the task was read from: relative paths in it resolve against `base_dir`."""
        self._source = source
        self._base_dir = base_dir

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def source(self) -> str:
        return self._source

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self._base_dir / p)

    # --- stages ----------------------------------------------------------------------------------
    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"task {self.name!r} has no stage {name!r}")

    def budget_shares(self) -> dict[str, float]:
        """Each stage's share of the budget for initialisation; unset shares split the rest."""
        given = {s.name: s.budget_share for s in self.stages if s.budget_share is not None}
        rest = [s.name for s in self.stages if s.budget_share is None]
        left = max(0.0, 1.0 - sum(given.values()))
        shares = dict(given)
        for name in rest:
            shares[name] = left / len(rest)
        return {s.name: shares[s.name] for s in self.stages}
