"""One contract over every registered executor kind (parametrised from `EXECUTORS`).

Each kind, on a tiny task of its own: `run` is the base's (final) one; a configuration the task
rejects fails in `run` without reaching the subclass; the others reach it in one batch; results
keep the order of the request; `async with` closes the executor. Then the base's guard (a batch
that raises loses nothing; a resumable stop still stops) and the declared capabilities.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.environment.executor import (
    Executor,
    HasCallStats,
    HasItems,
    HasOptimum,
    PerConfigExecutor,
    ReplaysCache,
    TrialResult,
)
from agenttts.environment.registry import EXECUTORS, executor_class, make_executor, run_batch
from agenttts.environment.space import Config
from agenttts.environment.splits import Split
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task, parse_task
from agenttts.errors import InputError, ResumableStop

TASKS = Path(__file__).resolve().parents[2] / "tasks"


@dataclass
class Case:
    task: Task
    valid: list[Config]
    invalid: Config
    overrides: dict[str, Any] = field(default_factory=dict)


def _stage(models: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "qa", "models": models, "prompt_tokens": 512, "gen_tokens": 64, **extra}


def _qa(model: str, samples: int) -> Config:
    return Config.of({"qa": (model, samples)})


def grid_case(tmp: Path) -> Case:
    (tmp / "grid.csv").write_text("qa.model,qa.samples,acc\nm,1,0.5\nm,2,0.6\n")
    raw = {
        "name": "tiny-grid",
        "budget": 10_000,
        "stages": [_stage([{"name": "m", "params": 8e9}], max_samples=2)],
        "metrics": ["acc"],
        "main_metric": "acc",
        "environment": {"kind": "grid", "settings": {"table": "grid.csv"}},
    }
    (tmp / "task.yaml").write_text(yaml.safe_dump(raw))
    return Case(load_task(tmp / "task.yaml"), [_qa("m", 1), _qa("m", 2)], _qa("nope", 1))


def samples_case(tmp: Path) -> Case:
    rows = [
        {"model": "m", "qid": q, "sample": s, "answer": "a", "gold": "a", "tokens": 3}
        for q in range(4)
        for s in range(2)
    ]
    (tmp / "store.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {
        "name": "tiny-samples",
        "budget": 10_000,
        "stages": [_stage([{"name": "m", "params": 8e9}], max_samples=2)],
        "metrics": ["accuracy"],
        "main_metric": "accuracy",
        "data": {"train_size": 2, "test_size": 2, "seed": 1},
        "environment": {"kind": "samples", "settings": {"store": "store.jsonl"}},
    }
    (tmp / "task.yaml").write_text(yaml.safe_dump(raw))
    return Case(load_task(tmp / "task.yaml"), [_qa("m", 1), _qa("m", 2)], _qa("nope", 1))


def simulated_case(tmp: Path) -> Case:
    raw = {
        "name": "sim-tiny",
        "description": "simulated one-stage contract task",
        "budget": 10_000,
        "stages": [_stage([{"name": "m", "params": 8e9}], max_samples=4)],
        "metrics": ["acc"],
        "main_metric": "acc",
        "data": {"train_size": 10, "test_size": 10, "seed": 1},
        "environment": {"kind": "simulated"},
    }
    return Case(parse_task(raw), [_qa("m", 1), _qa("m", 2)], _qa("nope", 1))


def live_case(tmp: Path) -> Case:
    """Cache-only on an empty cache: nothing is contacted, a valid trial fails on a cache miss."""
    url = "http://127.0.0.1:9/v1"
    raw = {
        "name": "tiny-live",
        "budget": 10_000,
        "stages": [
            {
                "name": "retrieval",
                "models": [{"name": "bm25", "kind": "bm25", "fixed_cost": 0.01}],
                "prompt_tokens": 2048,
                "gen_tokens": 128,
                "max_samples": 1,
                "aggregator": "vote_ids",
                "settings": {"shortlist": 5, "max_tokens": 8},
            },
            _stage(
                [{"name": "m", "endpoint": url, "params": 1e9}],
                max_samples=2,
                aggregator="vote",
                settings={"max_tokens": 8},
            ),
        ],
        "metrics": ["em", "f1", "retrieval_f1"],
        "main_metric": "em",
        "data": {"path": "data/2wikimultihopqa/tts_test.json", "train_size": 1, "test_size": 1},
        "environment": {"kind": "live"},
    }

    def cfg(model: str, samples: int) -> Config:
        return Config.of({"retrieval": ("bm25", 1), "qa": (model, samples)})

    task = parse_task(raw, source="tiny-live", base_dir=TASKS)
    overrides = {"cache_only": True, "cache": str(tmp / "cache.sqlite")}
    return Case(task, [cfg("m", 1), cfg("m", 2)], cfg("nope", 1), overrides)


def pipeline_case(kind: str) -> Callable[[Path], Case]:
    """A one-stage user pipeline (`kind: python` or `kind: chain`), cache-only on an empty cache:
    nothing is contacted, a valid trial fails on its first cache miss."""

    def make(tmp: Path) -> Case:
        (tmp / "data.jsonl").write_text('{"question": "q", "answers": ["a"]}\n' * 2)
        (tmp / "contract_pipe.py").write_text(
            "async def run(item, stages):\n"
            "    return (await stages['qa'].sample(item['question']))[0].text\n"
        )
        settings = {"prompt": {"user": "{question}"}} if kind == "chain" else {}
        raw = {
            "name": f"tiny-{kind}",
            "budget": 10_000,
            "stages": [
                _stage(
                    [{"name": "m", "endpoint": "http://127.0.0.1:9/v1", "params": 1e9}],
                    max_samples=2,
                    settings=settings,
                )
            ],
            "metrics": ["em"],
            "main_metric": "em",
            "data": {"path": "data.jsonl", "train_size": 1, "test_size": 1},
            "environment": {
                "kind": kind,
                "settings": {"pipeline": "contract_pipe:run"} if kind == "python" else {},
            },
        }
        (tmp / "task.yaml").write_text(yaml.safe_dump(raw))
        overrides = {"cache_only": True, "cache": str(tmp / "cache.sqlite")}
        return Case(
            load_task(tmp / "task.yaml"), [_qa("m", 1), _qa("m", 2)], _qa("nope", 1), overrides
        )

    return make


#: One tiny task per registered kind: a new executor adds its case here, or the test below fails.
CASES: dict[str, Callable[[Path], Case]] = {
    "grid": grid_case,
    "samples": samples_case,
    "simulated": simulated_case,
    "live": live_case,
    "python": pipeline_case("python"),
    "chain": pipeline_case("chain"),
}


def test_every_registered_kind_has_a_contract_case():
    assert set(EXECUTORS) - set(CASES) == set(), "add a tiny task for each new kind to CASES"
    assert set(CASES) <= set(EXECUTORS)


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_run_checks_once_keeps_order_and_closes(kind: str, tmp_path: Path, monkeypatch):
    cls = executor_class(kind)
    assert cls.run is Executor.run and getattr(Executor.run, "__final__", False)
    if kind not in CASES:
        pytest.fail(f"executor kind {kind!r} has no contract case: add a tiny task to CASES")
    case = CASES[kind](tmp_path)
    assert case.task.environment.kind == kind

    reached: list[list[Config]] = []
    closed: list[bool] = []
    evaluate_batch, aclose = cls._evaluate_batch, cls.aclose

    async def spy_batch(self: Executor, configs: Sequence[Config], split: Split, items: Any):
        reached.append(list(configs))
        return await evaluate_batch(self, configs, split, items)

    async def spy_close(self: Executor) -> None:
        closed.append(True)
        await aclose(self)

    monkeypatch.setattr(cls, "_evaluate_batch", spy_batch)
    monkeypatch.setattr(cls, "aclose", spy_close)

    first, second = case.valid
    configs = [first, case.invalid, second]

    async def go() -> list[TrialResult]:
        async with make_executor(case.task, **case.overrides) as ex:
            assert isinstance(ex, cls)
            return await ex.run(configs, "train")

    results = asyncio.run(go())
    assert [r.config for r in results] == configs
    assert all(r.split == "train" for r in results)
    bad = results[1]
    assert not bad.ok and "unknown model 'nope'" in (bad.error or "")
    assert bad.nominal_cost == 0.0 and bad.wall_time_s == 0.0  # nothing ran, nothing spent
    assert reached == [[first, second]]  # the rejected configuration never reached the subclass
    assert closed == [True]
    if kind in {"live", "python", "chain"}:  # cache-only, empty cache: a failed result, no raise
        assert not results[0].ok and "cache-only" in (results[0].error or "")
    else:
        assert results[0].ok and results[2].ok, (results[0].error, results[2].error)


class Exploding(Executor):
    kind = "exploding"
    error: Exception = RuntimeError("boom")

    async def _evaluate_batch(
        self, configs: Sequence[Config], split: Split, items: tuple[int, ...] | None
    ) -> list[TrialResult]:
        raise self.error


def test_a_batch_that_raises_fails_each_configuration_and_a_resumable_stop_stops(tmp_path):
    case = simulated_case(tmp_path)
    configs = [*case.valid, case.invalid]
    results = asyncio.run(Exploding(case.task).run(configs, "train"))
    assert [r.config for r in results] == configs
    assert [r.error for r in results[:2]] == ["RuntimeError: boom"] * 2
    assert "unknown model" in (results[2].error or "")
    assert all(r.nominal_cost > 0 for r in results[:2])

    stopping = Exploding(case.task)
    stopping.error = ResumableStop("endpoint gone")
    with pytest.raises(ResumableStop, match="endpoint gone"):
        asyncio.run(stopping.run(case.valid, "train"))


class OneStops(PerConfigExecutor):
    """Samples 1 stops the run at once; samples 2 would fail later; the others would succeed."""

    kind = "one-stops"
    finished: list[int]

    async def _evaluate(
        self, config: Config, split: Split, items: tuple[int, ...] | None
    ) -> TrialResult:
        samples = config["qa"].samples
        if samples == 1:
            await asyncio.sleep(0.01)
            raise ResumableStop("endpoint gone")
        await asyncio.sleep(0.01 if samples == 2 else 0.5)
        if samples == 2:
            raise ValueError("bad answer")
        self.finished.append(samples)
        return TrialResult(config=config, split=split)


def test_per_config_failures_stay_in_their_result_and_a_stop_cancels_the_rest(tmp_path):
    task = simulated_case(tmp_path).task
    ex = OneStops(task)
    ex.finished = []
    results = asyncio.run(ex.run([_qa("m", 2), _qa("m", 3)], "train"))
    assert [r.error for r in results] == ["ValueError: bad answer", None]
    assert results[0].wall_time_s > 0 and results[0].nominal_cost > 0
    ex.finished = []
    with pytest.raises(ResumableStop):
        asyncio.run(ex.run([_qa("m", 1), _qa("m", 3), _qa("m", 4)], "train"))
    assert ex.finished == []  # the others were cancelled, not left spending


def test_run_batch_is_the_sync_entry(tmp_path):
    case = simulated_case(tmp_path)
    assert run_batch(case.task, [], "train") == []
    results = run_batch(case.task, [case.invalid, *case.valid], "test")
    assert [r.ok for r in results] == [False, True, True]


def test_capabilities_are_declared_protocols(tmp_path):
    declared = {}
    for kind, build in CASES.items():
        (tmp_path / kind).mkdir()
        case = build(tmp_path / kind)
        ex = make_executor(case.task, **case.overrides)  # holds nothing: no `async with` needed
        declared[kind] = tuple(
            isinstance(ex, p) for p in (HasOptimum, HasCallStats, HasItems, ReplaysCache)
        )
    # replays sweep their feasible set (environment/sweep.py) and emulate the live sample cache
    # (environment/emulated_cache.py); all but the grid race
    assert declared == {
        "grid": (True, False, False, True),
        "samples": (True, False, True, True),
        "simulated": (True, False, True, True),
        "live": (False, True, True, False),
        "python": (False, True, True, False),
        "chain": (False, True, True, False),
    }


@pytest.mark.parametrize("kind", ["samples", "simulated"])
def test_a_subset_of_items_is_scored_per_item_and_combines_into_the_whole(kind, tmp_path):
    """`run(..., items=...)`: per-item scores whose mean is the metric, fidelity and search cost
    in proportion to the items; two halves combine into exactly the full-split result."""
    case = CASES[kind](tmp_path)
    main = case.task.main_metric
    probe = make_executor(case.task, **case.overrides)
    assert isinstance(probe, HasItems)
    n = probe.split_size("train")

    async def go(items: Sequence[int] | None) -> list[TrialResult]:
        async with make_executor(case.task, **case.overrides) as ex:
            return await ex.run(case.valid, "train", items)

    whole = asyncio.run(go(None))
    first, rest = asyncio.run(go(range(0, n, 2))), asyncio.run(go(range(1, n, 2)))
    for full, a, b in zip(whole, first, rest, strict=True):
        assert full.ok and a.ok and b.ok and full.fidelity == 1.0 and full.item_ids is None
        assert a.item_ids == list(range(0, n, 2)) and a.fidelity == len(a.item_ids) / n
        assert a.item_scores is not None and len(a.item_scores) == len(a.item_ids)
        assert a.metrics[main] == pytest.approx(sum(a.item_scores) / len(a.item_scores))
        assert a.search_cost == pytest.approx(full.search_cost * a.fidelity)
        both = a.combined(b)
        assert both.fidelity == 1.0 and both.metrics[main] == pytest.approx(full.metrics[main])
        assert both.search_cost == pytest.approx(full.search_cost)
        with pytest.raises(ValueError, match="share items"):
            a.combined(a)


def test_an_aggregate_executor_refuses_a_subset_before_running(tmp_path):
    case = grid_case(tmp_path)
    with pytest.raises(InputError, match="aggregate scores only"):
        run_batch(case.task, case.valid, "train", items=[0])
    sim = simulated_case(tmp_path)
    for bad in ([0, 0], [10], []):
        with pytest.raises(InputError, match="distinct positions"):
            run_batch(sim.task, sim.valid, "train", items=bad)
