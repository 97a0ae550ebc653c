"""The bench end to end on a tiny simulated task, through the real checkpointed search graph."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from agenttts.cli.main import main
from agenttts.errors import InputError
from agenttts.search_bench import BenchSettings, run_bench, write_outputs
from agenttts.search_bench.harness import reach
from agenttts.search_bench.output import origins_table, summary_text


def tiny_task(folder) -> str:
    stage = {
        "prompt_tokens": 256,
        "gen_tokens": 64,
        "max_samples": 5,
        "models": [{"name": "s", "params": 3e9}, {"name": "l", "params": 24e9}],
    }
    raw = {
        "name": "sim-tiny",
        "description": "simulated two-stage bench test task",
        "budget": 50,
        "metrics": ["acc"],
        "main_metric": "acc",
        "data": {"train_size": 20, "test_size": 40, "seed": 5},
        "environment": {"kind": "simulated"},
        "stages": [
            {"name": "a", **stage, "settings": {"quality": [0.4, 0.8]}},
            {"name": "b", **stage, "settings": {"upstream": 0.5}},
        ],
    }
    path = folder / "sim-tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def settings(tmp_path, **kw) -> BenchSettings:
    base = dict(
        tasks=[tiny_task(tmp_path)],
        methods=["grid", "random"],
        seeds=[0, 1],
        out_dir=tmp_path / "out",
        max_trials=40,
        batch_size=8,
    )
    return BenchSettings(**{**base, **kw})


def test_reach_is_the_first_trial_within_tolerance():
    assert reach([None, 0.5, 0.69, 0.7], 0.7, 0.005) == 4
    assert reach([0.5, 0.696], 0.7, 0.005) == 2
    assert reach([0.5, 0.6], 0.7, 0.005) is None


def test_bench_end_to_end_measures_against_the_exhaustive_optimum_and_resumes(tmp_path):
    s = settings(tmp_path)
    result = run_bench(s)
    (task,) = result["tasks"].values()
    assert task["feasible"] <= 40  # small enough that grid must enumerate it all
    assert 1 <= task["targets"] <= task["feasible"]
    runs = result["runs"]
    assert len(runs) == 4 and {r["method"] for r in runs} == {"grid", "random"}
    for r in runs:
        curve = [v for v in r["curve"] if v is not None]
        assert curve == sorted(curve)  # best so far never drops
        assert r["trials"] == len(r["curve"]) <= s.max_trials
        assert r["trials_to_optimum"] == reach(r["curve"], task["score"], s.tolerance)
        assert max(curve) <= task["score"] + 1e-12  # nothing beats the exhaustive optimum
        assert r["environment_calls"] >= r["trials"] and r["test_score"] is not None
        assert r["agent_calls"] == 0
    for r in runs:
        if r["method"] == "grid":
            assert r["trials_to_optimum"] is not None  # exhaustive: it must get there
        if r["trials_to_optimum"] is not None:  # no initial trials: batch k holds trials 8k-7..8k
            assert r["batches_to_optimum"] == -(-r["trials_to_optimum"] // s.batch_size)
    paths = write_outputs(result, s.out_dir)
    record = json.loads((s.out_dir / "bench.json").read_text())
    assert {o["method"] for o in record["overall"]} == {"grid", "random"}
    assert (s.out_dir / "sim-tiny.png").stat().st_size > 1000
    assert "optimum - 0.005" in summary_text(result) and "markdown" in paths

    again = run_bench(s)  # same database: finished threads are read back, nothing re-runs
    assert all(r["resumed"] for r in again["runs"])
    assert [r["curve"] for r in again["runs"]] == [r["curve"] for r in runs]
    # Times come from the checkpoints: a read-back reports what the run measured.
    assert [r["seconds_to_optimum"] for r in again["runs"]] == [
        r["seconds_to_optimum"] for r in runs
    ]
    assert [r["wall_s"] for r in again["runs"]] == [r["wall_s"] for r in runs]
    for r in runs:
        if r["trials_to_optimum"] is not None:
            assert 0 <= r["seconds_to_optimum"] <= r["wall_s"]


def test_the_bench_reports_free_evaluations_nominal_cost_and_the_initial_share(tmp_path):
    s = settings(tmp_path, methods=["insight", "random+nofree"], seeds=[0])
    result = run_bench(s)
    runs = {r["method"]: r for r in result["runs"]}
    free, off = runs["insight"], runs["random+nofree"]
    assert free["free_evaluations"] and not off["free_evaluations"]
    assert free["derived"] > 0 and off["derived"] == 0
    for r in (free, off):
        assert r["trials_to_optimum"], r  # a tiny task: both get there
        assert r["nominal_cost_to_optimum"] >= r["search_cost_to_optimum"] > 0
        assert r["nominal_multiple_to_optimum"] >= r["cost_multiple_to_optimum"]
    assert 0 <= free["derived_to_optimum"] <= free["derived"]
    assert 0 < free["init_share_to_optimum"] <= 1  # insight starts with its initial trials
    assert off["init_share_to_optimum"] == 0  # random has none
    text = summary_text(result)
    assert "derived to opt" in text and "nominal cost to opt" in text


def test_ablation_variants_parse_and_bad_requests_fail_before_any_run(tmp_path):
    with pytest.raises(InputError) as err:
        run_bench(settings(tmp_path, methods=["random", "nope", "insight-no4"], seeds=[]))
    text = str(err.value)
    assert "'nope'" in text and "'insight-no4'" in text and "no seeds" in text
    assert not (tmp_path / "out" / "bench.sqlite").exists()


def test_cli_bench_unknown_task_exits_2(tmp_path, capsys):
    code = main(["bench", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no such task file" in capsys.readouterr().err


def agent_bench(tmp_path, url: str):
    """One agenthpo run of six trials in batches of two, its agent the canned server at `url`."""
    return settings(
        tmp_path,
        methods=["agenthpo"],
        seeds=[0],
        max_trials=6,
        batch_size=2,
        agent={"agent_base_url": url, "agent_model": "canned"},
    )


def test_llm_method_runs_in_the_bench_with_its_agent_cost_counted(tmp_path):
    """AgentHPO through the graph against a real local HTTP server with canned answers."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
    from openai_server import CannedServer, Reply

    def reply(k: int) -> Reply:
        configs = [
            {"stages": [{"stage": "a", "model": "s", "samples": k},
                        {"stage": "b", "model": "s", "samples": j}]}
            for j in (1, 2)
        ]  # fmt: skip
        return Reply(json.dumps({"configs": configs, "rationale": f"round {k}"}))

    with CannedServer([reply(k) for k in range(1, 6)]) as srv:
        result = run_bench(agent_bench(tmp_path, srv.url))
    (run,) = result["runs"]
    assert run["trials"] == 6 and run["agent_calls"] == 3 == len(srv.requests)
    assert run["agent_prompt_tokens"] == 300 and run["agent_completion_tokens"] == 60
    assert run["environment_calls"] == 7  # six trials and the test-split run of the best


def test_bench_counts_where_an_llm_methods_trials_came_from(tmp_path):
    """Repaired, topped-up and as-proposed trials are counted from the archive and tabled; an LLM
    method gets the bench's long agent timeout unless one is given."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
    from openai_server import CannedServer, Reply

    def config(a: tuple[str, int], b: tuple[str, int]) -> dict:
        return {"stages": [{"stage": "a", "model": a[0], "samples": a[1]},
                           {"stage": "b", "model": b[0], "samples": b[1]}]}  # fmt: skip

    over = config(("s", 1), ("l", 5))  # 73 units against a budget of 50: repaired to fit
    answers = [
        [over, config(("s", 1), ("s", 1))],
        [config(("s", 2), ("s", 1))],  # a short batch: one slot topped up
        [config(("s", 3), ("s", 1)), config(("s", 4), ("s", 1))],
    ]
    replies = [Reply(json.dumps({"configs": c, "rationale": "r"})) for c in answers]
    with CannedServer(replies) as srv:
        s = agent_bench(tmp_path, srv.url)
        result = run_bench(s)
    (run,) = result["runs"]
    assert (run["agent_repaired"], run["agent_topped_up"], run["agent_as_is"]) == (1, 1, 4)
    assert run["agent_rejected"] == 0 and run["agent_failed_steps"] == 0
    (row,) = result["summary"]
    assert row["total_agent_topped_up"] == 1
    assert "| sim-tiny | agenthpo | 1 | 3 | 0 | 0 | 4 | 1 | 1 | 0 |" in origins_table(result)
    assert origins_table({"summary": [{**row, "mean_agent_calls": 0}]}) == ""


def test_frontier_mode_shared_and_separate_searches_reach_every_budget_s_optimum(tmp_path):
    """The frontier mode (`search_bench.frontier`) on the tiny task: grid, exhaustive within its
    cap, reaches every budget's optimum both ways; the cost to them all is read off each side."""
    from agenttts.search_bench.frontier import run_frontier_bench, write_frontier

    s = settings(tmp_path, methods=["grid"], seeds=[0])
    result = run_frontier_bench(s, [0.5, 1.0])
    (task,) = result["tasks"].values()
    assert task["budgets"] == [25.0, 50.0]
    shared, apart = result["runs"]
    assert (shared["mode"], apart["mode"]) == ("shared", "separate")
    assert len(shared["threads"]) == 1 and len(apart["threads"]) == 2
    for run in (shared, apart):
        assert all(h is not None for h in run["hits"].values())  # grid: exhaustive
    # the shared search pays once up to its last hit; the separate ones each up to theirs
    assert shared["cost_to_all"] == max(shared["costs"].values())
    assert apart["cost_to_all"] == sum(apart["costs"].values())
    (summary,) = result["summary"]
    assert summary["all_shared"] == summary["all_separate"] == 1
    assert summary["times_cheaper"] == apart["cost_to_all"] / shared["cost_to_all"]
    paths = write_frontier(result, s.out_dir, "agenttts bench --frontier 0.5,1")
    text = Path(paths["markdown"]).read_text()
    assert "`agenttts bench --frontier 0.5,1`" in text and "| sim-tiny | grid | 25, 50 |" in text
    assert Path(result["plots"]["sim-tiny"]).read_bytes()[:4] == b"\x89PNG"
