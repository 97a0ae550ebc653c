"""Task files: the pipeline's stages, model choices, budget, metrics, data and environment.

A task is YAML validated by pydantic, then checked as a whole (`check_task`) so that every
problem is reported field by field before any compute is spent.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    RootModel,
    ValidationError,
    field_validator,
)

from agenttts.environment.budget import stage_budget

Split = Literal["train", "test"]
T = TypeVar("T")

#: Aggregators a stage may name. The live executor implements each one; replay executors ignore it.
AGGREGATORS: dict[str, str] = {
    "vote": "majority vote over normalised answers (ties: the answer seen first)",
    "vote_ids": "vote over selected reference ids; keep the most common count of ids",
    "fuse": "an LLM fuser reads all samples and writes one answer (its calls are counted)",
    "first": "no aggregation: the first sample",
}


class Problem(BaseModel):
    """One thing wrong with a task file: where, and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class TaskError(ValueError):
    """A task file that must not run; carries every problem found, not only the first."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


class ModelChoice(BaseModel):
    """One model a stage may run: an LLM behind an endpoint, or a non-LLM retriever."""

    model_config = ConfigDict(extra="forbid")

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


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    description: str = ""
    models: list[ModelChoice] = Field(min_length=1)
    prompt_tokens: int = Field(gt=0, description="nominal prompt length Np")
    gen_tokens: int = Field(gt=0, description="nominal generation length per sample Nd")
    max_samples: int = Field(default=100, ge=1)
    aggregator: str = "vote"
    aggregator_settings: dict[str, Any] = Field(default_factory=dict)
    budget_share: float | None = Field(default=None, gt=0, le=1)
    settings: dict[str, Any] = Field(default_factory=dict, description="executor-specific")

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
        return stage_budget(
            samples, m.params or 0.0, self.prompt_tokens, self.gen_tokens, m.fixed_cost
        )

    def max_samples_for(self, model: str, budget: float) -> int:
        """Largest S (capped at max_samples) whose stage cost fits `budget`; 0 if none does."""
        m = self.model(model)
        if m.kind != "llm":
            return 1 if self.cost(model, 1) <= budget else 0
        best = 0
        for s in range(1, self.max_samples + 1):
            if self.cost(model, s) <= budget + 1e-9:
                best = s
            else:
                break
        return best


class DataSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(default=None, description="relative to the task file")
    train_size: int = Field(default=50, ge=1)
    test_size: int = Field(default=50, ge=0)
    seed: int = 0


class EnvironmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="executor kind: grid, samples, live, simulated")
    settings: dict[str, Any] = Field(default_factory=dict)


class StageConfig(BaseModel):
    """What one stage runs: a model and a sample count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    samples: int = Field(ge=1)


class Config(RootModel[dict[str, StageConfig]]):
    """A configuration: stage name -> (model, samples). JSON: {"qa": {"model": m, "samples": 4}}."""

    def __getitem__(self, stage: str) -> StageConfig:
        return self.root[stage]

    def items(self):
        return self.root.items()

    def key(self) -> str:
        """Canonical identity, for de-duplication and caching."""
        return json.dumps(
            {k: [v.model, v.samples] for k, v in sorted(self.root.items())}, separators=(",", ":")
        )

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.key() == other.key()

    def short(self) -> str:
        return " | ".join(f"{k}={v.model}x{v.samples}" for k, v in self.root.items())

    @classmethod
    def of(cls, mapping: Mapping[str, tuple[str, int] | StageConfig | Mapping[str, Any]]) -> Config:
        out: dict[str, StageConfig] = {}
        for stage, v in mapping.items():
            if isinstance(v, StageConfig):
                out[stage] = v
            elif isinstance(v, tuple | list):
                out[stage] = StageConfig(model=v[0], samples=int(v[1]))
            else:
                out[stage] = StageConfig.model_validate(v)
        return cls(out)


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    budget: float = Field(gt=0, description="total budget in the paper's units")
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

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("metrics repeat a name")
        return v

    # --- paths -------------------------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def source(self) -> str:
        return self._source

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self._base_dir / p)

    # --- stages and costs ----------------------------------------------------------------------
    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"task {self.name!r} has no stage {name!r}")

    def stage_costs(self, config: Config) -> dict[str, float]:
        return {s.name: s.cost(config[s.name].model, config[s.name].samples) for s in self.stages}

    def cost(self, config: Config) -> float:
        return sum(self.stage_costs(config).values())

    def budget_shares(self) -> dict[str, float]:
        """Each stage's share of the budget for initialisation; unset shares split the rest."""
        given = {s.name: s.budget_share for s in self.stages if s.budget_share is not None}
        rest = [s.name for s in self.stages if s.budget_share is None]
        left = max(0.0, 1.0 - sum(given.values()))
        shares = dict(given)
        for name in rest:
            shares[name] = left / len(rest)
        return {s.name: shares[s.name] for s in self.stages}

    def config_problems(self, config: Config) -> list[str]:
        """Why a configuration cannot run (empty when it can): unknown stage/model, S, budget."""
        problems: list[str] = []
        names = set(self.stage_names)
        for extra in sorted(set(config.root) - names):
            problems.append(f"unknown stage {extra!r}")
        for s in self.stages:
            if s.name not in config.root:
                problems.append(f"stage {s.name!r} missing")
                continue
            sc = config[s.name]
            if sc.model not in s.model_names:
                problems.append(
                    f"stage {s.name!r}: unknown model {sc.model!r} "
                    f"(choices: {', '.join(s.model_names)})"
                )
            elif s.model(sc.model).kind != "llm" and sc.samples != 1:
                problems.append(
                    f"stage {s.name!r}: {sc.model!r} is not an LLM and runs once "
                    "(samples must be 1)"
                )
            elif not 1 <= sc.samples <= s.max_samples:
                problems.append(
                    f"stage {s.name!r}: samples {sc.samples} outside 1..{s.max_samples}"
                )
        if not problems:
            total = self.cost(config)
            if total > self.budget + 1e-9:
                problems.append(f"cost {total:.2f} exceeds the budget {self.budget:g}")
        return problems

    def cheapest_config(self) -> Config:
        return Config.of(
            {
                s.name: min(((m, 1) for m in s.model_names), key=lambda c: s.cost(*c))
                for s in self.stages
            }
        )

    def largest_single_sample_config(self) -> Config:
        return Config.of({s.name: (s.largest_model().name, 1) for s in self.stages})

    def stage_options(self, stage: Stage) -> list[tuple[str, int, float]]:
        """Every (model, samples, cost) a stage allows; a non-LLM choice has only S=1."""
        out = []
        for m in stage.models:
            top = 1 if m.kind != "llm" else stage.max_samples
            out.extend((m.name, s, stage.cost(m.name, s)) for s in range(1, top + 1))
        return out

    def count_feasible(self) -> int:
        """How many configurations fit the budget, counted exactly without enumerating them all."""
        costs = [np.array([c for _, _, c in self.stage_options(s)]) for s in self.stages]
        rest_min = [sum(float(c.min()) for c in costs[i + 1 :]) for i in range(len(costs))]
        partial = np.zeros(1)
        for i, c in enumerate(costs[:-1]):
            partial = (partial[:, None] + c[None, :]).ravel()
            partial = partial[partial + rest_min[i] <= self.budget + 1e-9]
        last = np.sort(costs[-1])
        return int(np.searchsorted(last, self.budget - partial + 1e-9, side="right").sum())

    def iter_feasible(self) -> Iterator[Config]:
        """Every feasible configuration (exhaustive search), pruned by the remaining budget."""
        options = [self.stage_options(s) for s in self.stages]
        mins = [min(c for *_, c in o) for o in options]

        def rec(i: int, spent: float, acc: dict[str, tuple[str, int]]) -> Iterator[Config]:
            if i == len(self.stages):
                yield Config.of(acc)
                return
            floor = sum(mins[i + 1 :])
            for model, s, c in options[i]:
                if spent + c + floor <= self.budget + 1e-9:
                    yield from rec(i + 1, spent + c, {**acc, self.stages[i].name: (model, s)})

        yield from rec(0, 0.0, {})

    # --- data splits ---------------------------------------------------------------------------
    def split_items(self, items: Sequence[T], split: Split) -> list[T]:
        """Deterministic train/test partition of `items` by the task's seed (train first)."""
        order = list(range(len(items)))
        random.Random(self.data.seed).shuffle(order)
        n_train = min(self.data.train_size, len(items))
        chosen = (
            order[:n_train] if split == "train" else order[n_train : n_train + self.data.test_size]
        )
        return [items[i] for i in chosen]


# ------------------------------------------------------------------------------------------------
# Loading and whole-task checks
# ------------------------------------------------------------------------------------------------


def _loc(loc: Sequence[Any], raw: Mapping[str, Any]) -> str:
    """Render a pydantic error location with stage names instead of list indexes where possible."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            name = (
                node[item].get("name")
                if isinstance(node, list) and item < len(node) and isinstance(node[item], dict)
                else None
            )
            parts[-1] = f"{parts[-1]}[{name if name else item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "<root>"


def parse_task(raw: Any, source: str = "<memory>", base_dir: Path | None = None) -> Task:
    """Validate a task mapping; raises TaskError listing every problem."""
    if not isinstance(raw, dict):
        raise TaskError(
            source, [Problem(field="<root>", message="a task file must be a YAML mapping")]
        )
    try:
        task = Task.model_validate(raw)
    except ValidationError as e:
        problems = [Problem(field=_loc(err["loc"], raw), message=err["msg"]) for err in e.errors()]
        raise TaskError(source, problems) from None
    task._base_dir = base_dir or Path.cwd()
    task._source = source
    problems = check_task(task)
    if problems:
        raise TaskError(source, problems)
    return task


def load_task(path: str | Path, *, check_environment: bool = True) -> Task:
    """Read, validate and check a task file. Bundled task names (see `agenttts.tasks`) work too."""
    p = resolve_task_path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise TaskError(str(path), [Problem(field="<file>", message="no such task file")]) from None
    except yaml.YAMLError as e:
        raise TaskError(str(p), [Problem(field="<yaml>", message=f"not valid YAML: {e}")]) from None
    task = parse_task(raw, source=str(p), base_dir=p.parent)
    if check_environment:
        from agenttts.environment.registry import UnknownExecutor, executor_class

        try:
            problems = executor_class(task.environment.kind).check_task(task)
        except UnknownExecutor as e:
            problems = [Problem(field="environment.kind", message=str(e))]
        except ImportError as e:  # a known kind whose module or dependencies are not installed
            problems = [
                Problem(
                    field="environment.kind",
                    message=f"executor {task.environment.kind!r} cannot be loaded: {e}",
                )
            ]
        if problems:
            raise TaskError(str(p), problems)
    return task


def bundled_tasks() -> dict[str, Path]:
    """Task files shipped with agenttts by name: tasks/*.yaml and one folder down (simulated/),
    deployment files excepted."""
    from importlib.resources import files

    root = Path(str(files("agenttts.tasks")))
    paths = sorted(root.glob("*.yaml")) + sorted(
        p for p in root.glob("*/*.yaml") if p.parent.name != "deployments"
    )
    return {p.stem: p for p in paths}


def resolve_task_path(path: str | Path) -> Path:
    """A path as given when it exists or names a YAML file; else a bundled task's name."""
    p = Path(path)
    if p.exists() or p.suffix in {".yaml", ".yml"}:
        return p
    return bundled_tasks().get(str(path), p)


def check_task(task: Task) -> list[Problem]:
    """Whole-task checks that field validation cannot do."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for s in task.stages:
        where = f"stages[{s.name}]"
        if s.name in seen:
            problems.append(Problem(field=where, message=f"duplicate stage name {s.name!r}"))
        seen.add(s.name)
        if s.aggregator not in AGGREGATORS:
            problems.append(
                Problem(
                    field=f"{where}.aggregator",
                    message=f"unknown aggregator {s.aggregator!r} "
                    f"(known: {', '.join(AGGREGATORS)})",
                )
            )
        names = [m.name for m in s.models]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(Problem(field=f"{where}.models", message=f"duplicate model {dup!r}"))
        for m in s.models:
            if m.kind != "llm" and m.fixed_cost is None:
                problems.append(
                    Problem(
                        field=f"{where}.models[{m.name}]",
                        message="a non-LLM choice needs fixed_cost",
                    )
                )
    if task.main_metric not in task.metrics:
        problems.append(
            Problem(
                field="main_metric",
                message=f"{task.main_metric!r} is not one of metrics {task.metrics}",
            )
        )
    shares = [s.budget_share for s in task.stages if s.budget_share is not None]
    if sum(shares) > 1 + 1e-9:
        problems.append(
            Problem(field="stages.budget_share", message="budget shares add up to more than 1")
        )
    if task.data.path is not None and not task.resolve(task.data.path).exists():
        problems.append(
            Problem(field="data.path", message=f"missing data file {task.resolve(task.data.path)}")
        )
    problems.extend(resolve_models(task))
    if not any(p.field.startswith("stages") for p in problems):
        cheapest = task.cost(task.cheapest_config())
        if cheapest > task.budget + 1e-9:
            problems.append(
                Problem(
                    field="budget",
                    message=f"budget {task.budget:g} is below the cheapest configuration "
                    f"({cheapest:.2f}: {task.cheapest_config().short()})",
                )
            )
    return problems


def resolve_models(task: Task) -> list[Problem]:
    """Fill parameter counts and endpoints from the deployment file; report unknown models."""
    from agenttts.environment.deployment import Deployment, DeploymentError

    problems: list[Problem] = []
    deployment: Deployment | None = None
    if task.deployment:
        try:
            deployment = Deployment.load(task.resolve(task.deployment))
        except DeploymentError as e:
            return [Problem(field="deployment", message=str(e))]
    for s in task.stages:
        for m in s.models:
            where = f"stages[{s.name}].models[{m.name}]"
            entry = deployment.models.get(m.name) if deployment else None
            if entry is not None:
                if m.params is None:
                    m.params = entry.params
                if m.endpoint is None:
                    m.endpoint = entry.base_url
            if m.kind == "llm" and m.params is None:
                known = f" (deployment knows: {', '.join(deployment.models)})" if deployment else ""
                problems.append(
                    Problem(
                        field=where,
                        message=f"unknown model {m.name!r}: no parameter count and "
                        f"not in a deployment file{known}",
                    )
                )
    return problems
