"""Tasks x methods x seeds, every run through the same checkpointed search graph.

Each run is one thread of `agenttts.graph.runner.run_search` in the bench's own database, so
every method meets the same screening, the same executor and the same stopping rules, and a killed
bench continues where it stopped (finished threads are read back, not re-run). The yardstick is the
exhaustive optimum of the training split: a run "reaches" it at the first executed trial whose
(full-fidelity) score is within `tolerance` of it.

Beside the trials, the bench measures what reaching the optimum cost the search: the running
total of the trials' `search_cost` (the paper's budget unit x items evaluated; only newly drawn
samples where a cache holds the rest) at that trial, plus the agent's tokens up to then through
the same budget formula (`AgentUsage.search_cost`), in units and as a multiple of one full
training evaluation of the optimal configuration. A method may run with racing on training items
(`Method.racing`, `agenttts.racing`); `racing_comparison` sets each against its run without.
For an LLM method the bench also counts where its trials came from (the agent's proposals as
given or repaired, insight top-ups) and waits for a slow local agent (`AGENT_TIMEOUT_S`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agenttts import racing
from agenttts.archive import Archive
from agenttts.environment.executor import HasItems, HasOptimum
from agenttts.environment.registry import make_executor, run_batch
from agenttts.environment.space import Config, config_cost, count_feasible, iter_feasible
from agenttts.environment.splits import has_split
from agenttts.environment.task import Task, TaskError
from agenttts.environment.task_loading import load_task, resolve_task_path
from agenttts.errors import InputError
from agenttts.graph.context import ENV_PREFIX
from agenttts.graph.storage import is_postgres
from agenttts.llm import AgentUsage
from agenttts.proposers import PROPOSERS, proposer_class, split_variant
from agenttts.proposers.hybrid import REPAIRED, TOPPED_UP, origin

#: Bundled simulated tasks (tasks/simulated/), the default benchmark.
SIMULATED_TASKS = (
    "sim-2wiki",
    "sim-hotpotqa",
    "sim-cwq",
    "sim-webqsp",
    "sim-taskbench",
    "sim-chatdev",
)
#: Methods that call an LLM agent: run only when asked for (they need an endpoint).
LLM_METHODS = frozenset({"agenttts", "agenthpo", "mlcopilot"})
#: Largest space the generic exhaustive optimum runs through an executor that cannot sweep its
#: feasible set (a live one; the replay and simulated executors sweep any size, `HasOptimum`).
ENUMERATE_LIMIT = 50_000
#: Seconds one agent call may take in a bench run unless the run or `$AGENTTTS_AGENT_TIMEOUT_S`
#: says otherwise. A bench measures the search, not the agent's latency: a small local model on a
#: busy CPU takes minutes per answer, and the run's default (120 s) would stop it as unreachable.
#: A server that is really gone still fails at once (connection refused).
AGENT_TIMEOUT_S = 3600.0


#: How a method's name says it races: ``insight+race0.25`` (racing share 0.25).
RACE_SUFFIX = "+race"


@dataclass(frozen=True)
class Method:
    """A method as the bench names it: a proposer, the insights switched off, and racing."""

    name: str
    proposer: str
    no_insights: tuple[int, ...] = ()
    racing: float | None = None

    @classmethod
    def parse(cls, name: str, racing: float | None = None) -> Method:
        """`name` as given (``insight-no2``, ``insight+race0.25``); `racing` adds the suffix."""
        if racing is not None:
            name = f"{name}{RACE_SUFFIX}{racing:g}"
        plain, _, share = name.partition(RACE_SUFFIX)
        try:
            race = float(share) if share else None
        except ValueError:
            raise InputError(f"method {name!r}: {share!r} is no racing share") from None
        base, off = split_variant(plain)
        if base not in PROPOSERS:
            raise InputError(
                f"unknown method {name!r} (known: {', '.join(PROPOSERS)}, and -noK, +raceS)"
            )
        return cls(name=name, proposer=base, no_insights=tuple(sorted(off)), racing=race)

    @property
    def plain(self) -> str:
        """The name without racing: what a racing run is compared with."""
        return self.name.partition(RACE_SUFFIX)[0]

    @property
    def uses_llm(self) -> bool:
        return self.proposer in LLM_METHODS


@dataclass
class BenchSettings:
    tasks: Sequence[str]
    methods: Sequence[str]
    seeds: Sequence[int]
    out_dir: Path
    max_trials: int  # the command line declares the defaults (`agenttts.cli.bench`)
    batch_size: int
    tolerance: float = 0.005
    agent: Mapping[str, Any] = field(default_factory=dict)  # Context agent_* overrides
    racing: Sequence[float | None] = (None,)  # every method runs once per share (None: off)
    db: str | Path | None = None  # a SQLite path or a PostgreSQL URL (`agenttts.graph.storage`)

    @property
    def database(self) -> str | Path:
        return self.db or self.out_dir / "bench.sqlite"

    @property
    def report_dir(self) -> Path:
        """Per-run reports: beside a SQLite database, else in the output folder."""
        db = self.database
        return self.out_dir / "runs" if is_postgres(db) else Path(db).parent / "runs"


@dataclass
class Optimum:
    score: float
    config: dict[str, Any]
    feasible: int
    test_score: float | None
    source: str
    targets: int  # feasible configurations within the tolerance of the optimum
    full_eval_cost: float = 0.0  # one evaluation of the optimum on the whole training split


@dataclass
class RunRecord:
    task: str
    method: str
    seed: int
    thread_id: str
    curve: list[float | None]
    trials: int
    best_score: float | None
    best_config: dict[str, Any] | None
    test_score: float | None
    trials_to_optimum: int | None
    seconds_to_optimum: float | None
    wall_s: float
    agent_calls: int
    agent_prompt_tokens: int
    agent_completion_tokens: int
    agent_failures: int
    environment_calls: int
    stop_reason: str | None
    resumed: bool
    racing: float | None = None
    search_cost: float = 0.0  # the run's total: environment + agent, budget units x items
    search_cost_to_optimum: float | None = None  # the running total at the hit (same unit)
    cost_multiple_to_optimum: float | None = None  # ... / one full evaluation of the optimum
    agent_search_cost: float = 0.0  # the agent's share of `search_cost`
    agent_seconds: float = 0.0
    items_evaluated: int = 0
    partial_trials: int = 0  # dropped from a race
    # The batch whose trial reached the optimum (0: the initial trials): a batch is proposed and
    # paid for as a whole, so this view ignores the order of the trials within it.
    batches_to_optimum: int | None = None
    agent_failed_steps: int = 0  # agent steps with no usable answer after their retries
    # Where an LLM method's search trials came from (`agenttts.proposers.hybrid`): the agent's
    # proposals run as proposed, repaired to fit, slots topped up by the insight proposer, and
    # proposals the screen rejected (never ran).
    agent_as_is: int = 0
    agent_repaired: int = 0
    agent_topped_up: int = 0
    agent_rejected: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_task(ref: str) -> Path:
    """A task file path or a bundled task name (``sim-2wiki``)."""
    return Path(resolve_task_path(ref))


def _test_score(task: Task, config: Config) -> float | None:
    """The optimum's test score; None for a train-only task (or a failed run)."""
    if not has_split(task.data, "test"):
        return None
    [test] = run_batch(task, [config], "test")
    return test.metrics.get(task.main_metric) if test.ok else None


def full_evaluation_cost(task: Task, config: Config) -> float:
    """One evaluation of `config` on the whole training split, in the search cost's unit."""
    executor = make_executor(task)  # holds nothing: asking for the split's size is free
    items = executor.split_size("train") if isinstance(executor, HasItems) else task.data.train_size
    return config_cost(task, config) * items


def exhaustive_optimum(task: Task, tolerance: float = 0.0) -> Optimum:
    """The best training score over every feasible configuration, its test score, and how many
    configurations count as reaching it (within `tolerance`)."""
    executor = make_executor(task)  # holds nothing until it runs: asking for a capability is free
    if isinstance(executor, HasOptimum):  # replay and simulated: a vectorised, streamed sweep
        best = executor.optimum("train")
        return Optimum(
            score=best.score,
            config=best.config.model_dump(mode="json"),
            feasible=best.feasible,
            test_score=_test_score(task, best.config),
            source=f"every feasible configuration, swept by the {task.environment.kind} executor",
            targets=executor.count_at_least(best.score - tolerance),
        )
    count = count_feasible(task)
    if count > ENUMERATE_LIMIT:
        raise InputError(
            f"task {task.name!r}: {count} feasible configurations and no fast optimum; the bench "
            f"enumerates at most {ENUMERATE_LIMIT} (use a simulated or smaller grid task)"
        )
    configs = list(iter_feasible(task))
    results = [
        r for r in run_batch(task, configs, "train") if r.ok and task.main_metric in r.metrics
    ]
    if not results:
        raise InputError(f"task {task.name!r}: no feasible configuration could be scored")
    top = max(results, key=lambda r: (r.metrics[task.main_metric], -r.nominal_cost))
    return Optimum(
        score=top.metrics[task.main_metric],
        config=top.config.model_dump(mode="json"),
        feasible=count,
        test_score=_test_score(task, top.config),
        source=f"every feasible configuration run through the {task.environment.kind} executor",
        targets=sum(
            1
            for r in results
            if r.metrics[task.main_metric] >= top.metrics[task.main_metric] - tolerance - 1e-12
        ),
    )


def check(settings: BenchSettings) -> tuple[dict[str, Path], list[Method]]:
    """Every problem with the request, before any run starts."""
    problems: list[str] = []
    paths: dict[str, Path] = {}
    for ref in settings.tasks:
        path = resolve_task(ref)
        try:
            load_task(path)
            paths[ref] = path
        except TaskError as e:
            problems.append(str(e))
    methods: list[Method] = []
    for name in settings.methods:
        for share in settings.racing:
            try:
                method = Method.parse(name, share)
            except InputError as e:
                problems.append(str(e))
                continue
            methods.append(method)
            if method.racing is not None and not 0 < method.racing < 1:
                problems.append(f"method {method.name!r}: a racing share is in (0, 1)")
            if method.racing is not None:
                for ref, path in paths.items():
                    try:
                        racing.check(load_task(path), method.racing)
                    except InputError as e:
                        problems.append(f"task {ref!r}: {e}")
        unavailable = getattr(proposer_class(method.proposer), "unavailable", None)
        reason = unavailable() if callable(unavailable) else None
        if reason:
            problems.append(f"method {name!r}: {reason}")
    if not settings.seeds:
        problems.append("no seeds")
    if settings.max_trials < 1 or settings.batch_size < 1:
        problems.append("max_trials and batch_size must be at least 1")
    if not 0 <= settings.tolerance < 1:
        problems.append("tolerance must be in [0, 1)")
    if problems:
        raise InputError("the bench cannot start:\n  - " + "\n  - ".join(problems))
    return paths, methods


def reach(curve: Sequence[float | None], optimum: float, tolerance: float) -> int | None:
    """1-based index of the first executed trial within `tolerance` of the optimum."""
    for i, v in enumerate(curve):
        if v is not None and v >= optimum - tolerance - 1e-12:
            return i + 1
    return None


Runner = Callable[..., Any]


def default_runner() -> Runner:
    from agenttts.graph.runner import run_search

    return run_search


@dataclass(frozen=True)
class Mark:
    """A thread at one checkpoint: executed trials, seconds since its start, the agent's usage."""

    executed: int
    seconds: float
    agent_usage: Mapping[str, Any]


def timeline(db: str | Path, thread: str) -> list[Mark]:
    """The thread at each checkpoint, oldest first, timed by the checkpoints' own timestamps: the
    same numbers whether the run happened now or is read back."""
    from datetime import datetime

    from agenttts.graph.graph import make_graph
    from agenttts.graph.runner import thread_config
    from agenttts.graph.storage import open_checkpointer

    with open_checkpointer(db, create=False) as saver:
        history = list(make_graph(saver).get_state_history(thread_config(thread)))
    out: list[Mark] = []
    start: datetime | None = None
    for snap in reversed(history):
        if not snap.created_at:
            continue
        at = datetime.fromisoformat(snap.created_at)
        start = start or at
        values = snap.values or {}
        done = len(Archive.from_state(values).executed())
        out.append(Mark(done, (at - start).total_seconds(), values.get("agent_usage") or {}))
    return out


def trial_origins(archive: Archive) -> dict[str, int]:
    """Where the search phase's trials came from, read from the rationales `complete_batch`
    writes: executed as the agent proposed them, repaired, topped up; and screen rejections."""
    search = archive.in_phase("search")
    keys = {None: "agent_as_is", REPAIRED: "agent_repaired", TOPPED_UP: "agent_topped_up"}
    out = dict.fromkeys(keys.values(), 0)
    for t in search.executed():
        out[keys[origin(t.rationale)]] += 1
    return {**out, "agent_rejected": len(search.rejected())}


def agent_overrides(settings: BenchSettings, uses_llm: bool) -> dict[str, Any]:
    """The run's agent settings: the bench's own, plus its long per-call timeout for an LLM
    method unless the bench or the environment sets one."""
    out = dict(settings.agent)
    given = "agent_timeout_s" in out or ENV_PREFIX + "AGENT_TIMEOUT_S" in os.environ
    if uses_llm and not given:
        out["agent_timeout_s"] = AGENT_TIMEOUT_S
    return out


def run_one(
    task_path: Path,
    task: Task,
    method: Method,
    seed: int,
    settings: BenchSettings,
    optimum: Optimum,
    runner: Runner | None = None,
) -> RunRecord:
    """One search thread (started or continued) and what it measured."""
    runner = runner or default_runner()
    thread = f"{task.name}:{method.name}:seed{seed}"
    overrides: dict[str, Any] = {
        "proposer": method.proposer,
        "no_insights": list(method.no_insights),
        "seed": seed,
        "batch_size": settings.batch_size,
        "max_trials": settings.max_trials,
        "max_iterations": settings.max_trials,  # the trial cap is what ends a run
        "patience": None,
        "report_dir": str(settings.report_dir),
        **({"racing": method.racing} if method.racing is not None else {}),
        **agent_overrides(settings, method.uses_llm),
    }
    outcome = runner(
        str(task_path),
        thread,
        settings.database,
        overrides,
    )
    archive: Archive = outcome.trials
    curve = archive.best_so_far()[: settings.max_trials]
    hit = reach(curve, optimum.score, settings.tolerance)
    marks = timeline(settings.database, thread)
    wall = marks[-1].seconds if marks else 0.0
    at_hit = next((m for m in marks if m.executed >= hit), None) if hit is not None else None
    seconds = at_hit.seconds if at_hit is not None else None
    values = outcome.values
    usage = values.get("agent_usage") or {}
    params = outcome.settings.agent_endpoint().cost_params()
    agent_total = AgentUsage(**usage).search_cost(params)
    executed = archive.executed()
    origins = trial_origins(archive) if method.uses_llm else {}
    to_optimum = None
    if hit is not None:
        agent_then = AgentUsage(**(at_hit.agent_usage if at_hit else usage))
        to_optimum = executed.search_costs()[hit - 1] + agent_then.search_cost(params)
    full = optimum.full_eval_cost
    best = outcome.best
    test = values.get("test_result") or {}
    env_calls = len(archive.executed()) + (1 if test else 0)
    return RunRecord(
        task=task.name,
        method=method.name,
        seed=seed,
        thread_id=thread,
        curve=curve,
        trials=len(curve),
        best_score=max((v for v in curve if v is not None), default=None),
        best_config=best.config.model_dump(mode="json") if best else None,
        test_score=test.get("score"),
        trials_to_optimum=hit,
        seconds_to_optimum=seconds,
        wall_s=wall,
        agent_calls=int(usage.get("calls", 0)),
        agent_prompt_tokens=int(usage.get("prompt_tokens", 0)),
        agent_completion_tokens=int(usage.get("completion_tokens", 0)),
        agent_failures=len(values.get("agent_failures") or []),
        agent_failed_steps=int(usage.get("failures", 0)),
        environment_calls=env_calls,
        stop_reason=values.get("stop_reason"),
        resumed=bool(outcome.resumed),
        racing=method.racing,
        search_cost=executed.search_cost() + agent_total,
        search_cost_to_optimum=to_optimum,
        cost_multiple_to_optimum=None if to_optimum is None or not full else to_optimum / full,
        agent_search_cost=agent_total,
        agent_seconds=float(usage.get("seconds", 0.0)),
        items_evaluated=sum(t.items_evaluated for t in executed),
        partial_trials=len(executed.scored()) - len(executed.full().scored()),
        batches_to_optimum=list(executed)[hit - 1].iteration if hit is not None else None,
        **origins,
    )


def run_bench(
    settings: BenchSettings,
    *,
    runner: Runner | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or continue) the whole bench; returns the JSON-plain result."""
    paths, methods = check(settings)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, Any] = {}
    records: list[RunRecord] = []
    for ref, path in paths.items():
        task = load_task(path)
        optimum = exhaustive_optimum(task, settings.tolerance)
        optimum.full_eval_cost = full_evaluation_cost(task, Config.model_validate(optimum.config))
        tasks[task.name] = {"file": str(path), "budget": task.budget, **asdict(optimum)}
        for method in methods:
            for seed in settings.seeds:
                rec = run_one(path, task, method, seed, settings, optimum, runner)
                records.append(rec)
                if progress:
                    hit = rec.trials_to_optimum
                    progress(
                        f"{task.name} {method.name} seed {seed}: best {rec.best_score} after "
                        f"{rec.trials} trials, optimum {optimum.score} "
                        + (f"reached at trial {hit}" if hit else "not reached")
                    )
        del ref
    return {
        "tolerance": settings.tolerance,
        "max_trials": settings.max_trials,
        "batch_size": settings.batch_size,
        "seeds": list(settings.seeds),
        "methods": [m.name for m in methods],
        "tasks": tasks,
        "summary": summarize(records, settings.max_trials),
        "racing": racing_comparison(records),
        "runs": [r.to_dict() for r in records],
    }


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def summarize(records: Sequence[RunRecord], max_trials: int) -> list[dict[str, Any]]:
    """Per (task, method): medians over seeds. An unreached optimum counts as infinitely many
    trials, so the median is finite only when at least half the seeds reached it."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.task, r.method), []).append(r)
    out = []
    for (task, method), runs in groups.items():
        hits = [r.trials_to_optimum if r.trials_to_optimum else math.inf for r in runs]
        med = _median(hits)
        secs = [r.seconds_to_optimum for r in runs if r.seconds_to_optimum is not None]
        tests = [r.test_score for r in runs if r.test_score is not None]
        bests = [r.best_score for r in runs if r.best_score is not None]
        out.append(
            {
                "task": task,
                "method": method,
                "runs": len(runs),
                "reached": sum(1 for r in runs if r.trials_to_optimum),
                "median_trials_to_optimum": None if med is None or math.isinf(med) else med,
                "median_batches_to_optimum": _finite(_median(_batches(runs))),
                "median_seconds_to_optimum": _median(secs) if len(secs) * 2 > len(runs) else None,
                "mean_best_train": sum(bests) / len(bests) if bests else None,
                "mean_test": sum(tests) / len(tests) if tests else None,
                "mean_trials": sum(r.trials for r in runs) / len(runs),
                "mean_agent_calls": sum(r.agent_calls for r in runs) / len(runs),
                "mean_agent_tokens": sum(
                    r.agent_prompt_tokens + r.agent_completion_tokens for r in runs
                )
                / len(runs),
                "mean_environment_calls": sum(r.environment_calls for r in runs) / len(runs),
                "mean_wall_s": sum(r.wall_s for r in runs) / len(runs),
                "max_trials": max_trials,
                "median_search_cost_to_optimum": _finite(_median(_costs(runs))),
                "median_cost_multiple_to_optimum": _finite(_median(_costs(runs, multiple=True))),
                "mean_search_cost": sum(r.search_cost for r in runs) / len(runs),
                "mean_agent_search_cost": sum(r.agent_search_cost for r in runs) / len(runs),
                "mean_agent_seconds": sum(r.agent_seconds for r in runs) / len(runs),
                "mean_partial_trials": sum(r.partial_trials for r in runs) / len(runs),
                "agent_failed_steps": sum(r.agent_failed_steps for r in runs),
                "agent_errors": sum(r.agent_failures for r in runs),
                **{
                    f"total_{k}": sum(getattr(r, k) for r in runs)
                    for k in ("agent_as_is", "agent_repaired", "agent_topped_up", "agent_rejected")
                },
            }
        )
    return out


def _costs(runs: Sequence[RunRecord], *, multiple: bool = False) -> list[float]:
    """Each run's search cost to the optimum (or its multiple); an unreached one is infinite."""
    out = []
    for r in runs:
        value = r.cost_multiple_to_optimum if multiple else r.search_cost_to_optimum
        out.append(math.inf if value is None else value)
    return out


def _batches(runs: Sequence[RunRecord]) -> list[float]:
    """Each run's batch that reached the optimum; an unreached one is infinite."""
    return [math.inf if r.batches_to_optimum is None else r.batches_to_optimum for r in runs]


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def racing_comparison(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Each racing method against the same method without racing, per task and then over all
    tasks: median search cost to the optimum (unreached: infinite) and their ratio; the median
    per-seed ratio over the seeds that reached it both ways (finite where the medians are not);
    and the seeds that reached the optimum without racing but not with it ("lost") or the other
    way ("gained")."""
    plain: dict[tuple[str, str, int], RunRecord] = {}
    for r in records:
        if r.racing is None:
            plain[(r.task, r.method, r.seed)] = r
    pairs: dict[tuple[str, str, str], list[tuple[RunRecord, RunRecord]]] = {}
    for r in records:
        if r.racing is None:
            continue
        base = plain.get((r.task, Method.parse(r.method).plain, r.seed))
        if base is not None:
            for task in (r.task, "all tasks"):
                pairs.setdefault((task, base.method, r.method), []).append((base, r))
    out = []
    for (task, off_name, on_name), runs in sorted(
        pairs.items(), key=lambda p: p[0][0] == "all tasks"
    ):
        both = [
            a.search_cost_to_optimum / b.search_cost_to_optimum
            for a, b in runs
            if a.search_cost_to_optimum and b.search_cost_to_optimum
        ]
        off = _median(_costs([a for a, _ in runs]))
        on = _median(_costs([b for _, b in runs]))
        ratio = None
        if off is not None and on is not None and not math.isinf(off) and on > 0:
            ratio = off / on
        out.append(
            {
                "task": task,
                "method": off_name,
                "racing_method": on_name,
                "runs": len(runs),
                "median_cost_without": _finite(off),
                "median_cost_with": _finite(on),
                "cost_ratio": None if ratio is None or math.isinf(ratio) else ratio,
                "paired_cost_ratio": _median(both),
                "paired_runs": len(both),
                "reached_without": sum(1 for a, _ in runs if a.trials_to_optimum),
                "reached_with": sum(1 for _, b in runs if b.trials_to_optimum),
                "lost": sum(1 for a, b in runs if a.trials_to_optimum and not b.trials_to_optimum),
                "gained": sum(
                    1 for a, b in runs if b.trials_to_optimum and not a.trials_to_optimum
                ),
            }
        )
    return out
