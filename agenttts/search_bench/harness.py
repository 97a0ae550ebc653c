"""Tasks x methods x seeds, every run through the same checkpointed search graph.

Each run is one thread of `agenttts.graph.runner.run_search` in the bench's own database, so
every method meets the same screening, the same executor and the same stopping rules, and a killed
bench continues where it stopped (finished threads are read back, not re-run). The yardstick is the
exhaustive optimum of the training split (`optimum.py`): a run "reaches" it at the first executed
trial whose (full-fidelity) score is within `tolerance` of it, free evaluations that trial and
the ones before it yielded included (`agenttts.derived`: they are results, not trials). This
module runs the bench and
records what each run measured; `methods.py` parses the method names, `summary.py` adds the
records up and `output.py` writes the tables and plots.

Beside the trials, the bench measures what reaching the optimum cost the search: the running
total of the trials' `search_cost` (the paper's budget unit x items evaluated; only newly drawn
samples where a cache holds the rest) at that trial, plus the agent's tokens up to then through
the same budget formula (`AgentUsage.search_cost`), in units and as a multiple of one full
training evaluation of the optimal configuration; beside it the nominal figure (as if no sample
had been cached), the free evaluations up to then, and the share of that cost spent in the
initialisation. A method may run with racing on training items (`Method.racing`,
`agenttts.racing`), `summary.racing_comparison` setting each against its run without, and
without free evaluations (`+nofree`).
For an LLM method the bench also counts where its trials came from (the agent's proposals as
given or repaired, insight top-ups). A slow local agent is waited for as in any run: its calls'
limit follows its measured speed (`agenttts.agent_timing`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agenttts import racing
from agenttts.archive import Archive
from agenttts.environment.space import Config
from agenttts.environment.task import Task, TaskError
from agenttts.environment.task_loading import load_task, resolve_task_path
from agenttts.errors import InputError
from agenttts.graph.runner import timeline
from agenttts.graph.storage import is_postgres
from agenttts.llm import AgentUsage
from agenttts.proposers import proposer_class
from agenttts.proposers.hybrid import REPAIRED, TOPPED_UP, origin
from agenttts.search_bench.methods import Method
from agenttts.search_bench.optimum import TaskOptimum, exhaustive_optimum, full_evaluation_cost
from agenttts.search_bench.summary import racing_comparison, summarize

#: Bundled simulated tasks (tasks/simulated/): the paper's pipelines on a documented surface.
SIMULATED_TASKS = (
    "sim-2wiki",
    "sim-hotpotqa",
    "sim-cwq",
    "sim-webqsp",
    "sim-taskbench",
    "sim-chatdev",
)
#: Bundled synthetic tasks (tasks/synthetic/, written by its `generate.py`): sample stores and
#: grids whose vote curves have published shapes (tasks/synthetic/README.md).
SYNTHETIC_TASKS = ("syn-gsm", "syn-math", "syn-mcq", "syn-rag", "syn-tools")
#: The default benchmark: every bundled bench task.
BENCH_TASKS = SIMULATED_TASKS + SYNTHETIC_TASKS


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
    # Free evaluations (`agenttts.derived`) and what the cache saved: derived results in the run
    # and up to the hit (from the trials up to it); the search cost to the optimum as if nothing
    # were cached (environment nominal + agent), and its multiple; the share of the (cache-aware)
    # cost to the optimum spent on the initial trials.
    free_evaluations: bool = True
    derived: int = 0
    derived_to_optimum: int | None = None
    nominal_cost_to_optimum: float | None = None
    nominal_multiple_to_optimum: float | None = None
    init_share_to_optimum: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_task(ref: str) -> Path:
    """A task file path or a bundled task name (``sim-2wiki``)."""
    return Path(resolve_task_path(ref))


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


def trial_origins(archive: Archive) -> dict[str, int]:
    """Where the search phase's trials came from, read from the rationales `complete_batch`
    writes: executed as the agent proposed them, repaired, topped up; and screen rejections."""
    search = archive.in_phase("search")
    keys = {None: "agent_as_is", REPAIRED: "agent_repaired", TOPPED_UP: "agent_topped_up"}
    out = dict.fromkeys(keys.values(), 0)
    for t in search.executed():
        out[keys[origin(t.rationale)]] += 1
    return {**out, "agent_rejected": len(search.rejected())}


def run_overrides(
    method: Method, seed: int, settings: BenchSettings, max_trials: int | None = None
) -> dict[str, Any]:
    """The settings of one bench run (the frontier mode's too): the trial cap ends it."""
    cap = max_trials or settings.max_trials
    return {
        "proposer": method.proposer,
        "no_insights": list(method.no_insights),
        "seed": seed,
        "batch_size": settings.batch_size,
        "max_trials": cap,
        "max_iterations": cap,  # the trial cap is what ends a run
        "patience": None,
        "report_dir": str(settings.report_dir),
        **({"racing": method.racing} if method.racing is not None else {}),
        "free_evaluations": method.free_evaluations,
        **settings.agent,
    }


def run_one(
    task_path: Path,
    task: Task,
    method: Method,
    seed: int,
    settings: BenchSettings,
    optimum: TaskOptimum,
    runner: Runner | None = None,
) -> RunRecord:
    """One search thread (started or continued) and what it measured."""
    runner = runner or default_runner()
    thread = f"{task.name}:{method.name}:seed{seed}"
    overrides = run_overrides(method, seed, settings)
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
    to_optimum = nominal = init_share = derived_then = None
    if hit is not None:
        agent_then = AgentUsage(**(at_hit.agent_usage if at_hit else usage)).search_cost(params)
        to_optimum = executed.search_costs()[hit - 1] + agent_then
        nominal = executed.search_costs(nominal=True)[hit - 1] + agent_then
        init = executed[:hit].in_phase("init").search_cost()
        init_share = init / to_optimum if to_optimum else None
        last = executed[hit - 1].trial_id
        derived_then = sum(1 for t in archive.derived() if (t.derived_from or 0) <= last)
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
        free_evaluations=method.free_evaluations,
        derived=len(archive.derived()),
        derived_to_optimum=derived_then,
        nominal_cost_to_optimum=nominal,
        nominal_multiple_to_optimum=None if nominal is None or not full else nominal / full,
        init_share_to_optimum=init_share,
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
