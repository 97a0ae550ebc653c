"""Racing searches end to end, through the real checkpointed graph on real SQLite: a samples-replay
task whose optimum is known, the grid replay's refusal, the search cost in the report and in
`agenttts show`, and the bench's with/without-racing comparison."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
import yaml

from agenttts.archive import Archive
from agenttts.cli.main import main
from agenttts.environment.registry import make_executor
from agenttts.environment.task_loading import load_task
from agenttts.errors import InputError
from agenttts.graph.runner import run_search
from agenttts.racing import estimate
from agenttts.search_bench import BenchSettings, run_bench
from agenttts.search_bench.output import summary_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from samples_task import write_samples_task


def samples_task(folder: Path) -> Path:
    """One stage, two models, S up to 8, 30 training questions of real-looking per-sample data:
    each question has a difficulty, each sample is right with its model's chance (else one of
    three wrong answers), so outcomes are not nested across configurations."""
    rng = random.Random(0)
    rows = []
    for q in range(40):
        hard = rng.uniform(-0.25, 0.25)
        for model, base in (("small", 0.45), ("big", 0.62)):
            p = min(0.95, max(0.05, base + hard))
            for s in range(8):
                right = rng.random() < p
                answer = "gold" if right else rng.choice(["w1", "w2", "w3"])
                rows.append(
                    {"model": model, "qid": q, "sample": s, "answer": answer, "gold": "gold",
                     "tokens": 20}
                )  # fmt: skip
    return write_samples_task(
        folder, rows, ("small", "big"), name="samples-race", train_size=30, test_size=10
    )


def search(task: Path, db: Path, thread: str, **settings: object) -> Archive:
    opts = {
        "proposer": "grid",
        "batch_size": 4,
        "max_iterations": 10,
        "patience": None,
        "report_dir": str(db.parent / "reports"),
        **settings,
    }
    return run_search(str(task), thread, db, opts).trials


def test_a_racing_search_on_a_samples_replay_ends_at_the_known_optimum_on_the_full_split(
    tmp_path,
):
    task_file = samples_task(tmp_path)
    optimum = make_executor(load_task(task_file)).optimum("train")  # type: ignore[attr-defined]
    db = tmp_path / "runs.sqlite"
    raced = search(task_file, db, "raced", racing=0.25)
    plain = search(task_file, db, "plain")

    best = raced.best()
    assert best is not None and best.config == optimum.config and best.score == optimum.score
    assert best.fidelity == 1.0 and best.items_evaluated == best.split_size == 30
    dropped = [t for t in raced.executed() if t.fidelity < 1.0]
    assert dropped, "the race dropped nothing: the test no longer tests racing"
    for t in dropped:
        assert t.items_evaluated in (8, 16) and t.item_scores is not None
        assert not any(t.trial_id == b.trial_id for b in raced.full())
    # The same proposals in the same order; racing only spent less on the losing ones.
    assert [t.config for t in raced] == [t.config for t in plain]
    assert plain.best() is not None and plain.best().config == optimum.config  # type: ignore[union-attr]
    assert raced.search_cost() < plain.search_cost()
    assert raced.search_costs()[-1] == pytest.approx(raced.search_cost())


def test_the_initial_trials_race_among_themselves_and_the_clearly_worse_one_is_partial(tmp_path):
    task_file = samples_task(tmp_path)
    optimum = make_executor(load_task(task_file)).optimum("train")  # type: ignore[attr-defined]
    db = tmp_path / "runs.sqlite"
    raced = search(task_file, db, "raced", proposer="insight", racing=0.25, max_iterations=2)
    plain = search(task_file, db, "plain", proposer="insight", max_iterations=2)

    init = {t.config.short(): t for t in raced.in_phase("init")}
    big, small = init["qa=bigx8"], init["qa=smallx8"]
    assert big.fidelity == 1.0 and big.config == optimum.config  # the stage's best: every item
    assert small.fidelity < 1.0 and small.items_evaluated in (8, 16)  # separated: partial
    assert small.score == pytest.approx(estimate(small, big, "accuracy"))
    assert small.score is not None and big.score is not None and small.score < big.score
    full = {t.config.short(): t for t in plain.in_phase("init")}
    assert big.score == full["qa=bigx8"].score and big.search_cost == full["qa=bigx8"].search_cost
    assert small.search_cost < full["qa=smallx8"].search_cost
    best = raced.best()
    assert best is not None and best.config == optimum.config and best.fidelity == 1.0


def test_racing_on_the_grid_replay_is_refused_before_anything_runs(tmp_path, capsys):
    task = write_grid_task(tmp_path / "task")
    db = tmp_path / "runs.sqlite"
    with pytest.raises(InputError, match="aggregate scores only"):
        search(task, db, "g", racing=0.25)
    code = main(["search", str(task), "--thread", "g2", "--db", str(db), "--racing", "0.25"])
    assert code == 2 and "aggregate scores only" in capsys.readouterr().err
    assert main(["runs", "--db", str(db)]) == 0 and "g2" not in capsys.readouterr().out


def test_report_and_show_state_the_running_search_cost(tmp_path, capsys):
    task_file = samples_task(tmp_path)
    db = tmp_path / "runs.sqlite"
    archive = search(task_file, db, "r", racing=0.25, max_iterations=2)
    assert main(["show", "r", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    total = archive.search_cost()
    assert f"search cost {total:.4g} budget units x items" in out
    assert "partial: 8/30 items" in out or "partial: 16/30 items" in out
    report = json.loads((tmp_path / "reports" / "r" / "report.json").read_text())
    assert report["search_cost"]["environment"] == pytest.approx(total)
    assert report["search_cost"]["items_evaluated"] == sum(
        t.items_evaluated for t in archive.executed()
    )
    assert "search cost" in (tmp_path / "reports" / "r" / "report.md").read_text()


def test_the_bench_sets_each_method_with_racing_against_itself_without(tmp_path):
    # free evaluations off (+nofree): a raced-out trial derives none, so random would know
    # other things with racing and propose differently; off, it proposes the same either way
    stage = {
        "prompt_tokens": 256,
        "gen_tokens": 64,
        "max_samples": 6,
        "models": [{"name": "s", "params": 3e9}, {"name": "l", "params": 24e9}],
    }
    raw = {
        "name": "sim-race",
        "description": "simulated two-stage racing bench task",
        "budget": 60,
        "metrics": ["acc"],
        "main_metric": "acc",
        "data": {"train_size": 40, "test_size": 20, "seed": 5},
        "environment": {"kind": "simulated"},
        "stages": [
            {"name": "a", **stage, "settings": {"quality": [0.3, 0.8]}},
            {"name": "b", **stage, "settings": {"upstream": 0.5}},
        ],
    }
    (tmp_path / "sim-race.yaml").write_text(yaml.safe_dump(raw))
    settings = BenchSettings(
        tasks=[str(tmp_path / "sim-race.yaml")],
        methods=["random+nofree"],
        seeds=[0, 1],
        out_dir=tmp_path / "out",
        max_trials=30,
        batch_size=6,
        racing=[None, 0.25],
    )
    result = run_bench(settings)
    assert result["methods"] == ["random+nofree", "random+nofree+race0.25"]
    (opt,) = result["tasks"].values()
    assert opt["full_eval_cost"] > 0
    runs = {(r["method"], r["seed"]): r for r in result["runs"]}
    for seed in (0, 1):
        off, on = runs[("random+nofree", seed)], runs[("random+nofree+race0.25", seed)]
        assert on["racing"] == 0.25 and off["racing"] is None
        assert on["curve"] == off["curve"]  # random proposes the same; racing spends less
        assert on["search_cost"] <= off["search_cost"] and on["partial_trials"] > 0
        for r in (off, on):
            if r["trials_to_optimum"]:
                multiple = r["search_cost_to_optimum"] / opt["full_eval_cost"]
                assert r["cost_multiple_to_optimum"] == pytest.approx(multiple)
    pairs = [c for c in result["racing"] if c["task"] == "sim-race"]
    assert len(pairs) == 1 and pairs[0]["lost"] == 0 and pairs[0]["runs"] == 2
    text = summary_text(result)
    assert "median cost to opt" in text and "random+nofree+race0.25" in text and "lost" in text
