"""End to end through the installed console script: task validate, budget, evaluate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.environment.space import Config, config_cost, count_feasible
from agenttts.environment.task_loading import load_task

pytestmark = pytest.mark.integration

PAPER_CONFIG = json.dumps(
    {
        "retrieval": {"model": "qwen2.5-72b-instruct", "samples": 1},
        "qa": {"model": "llama-3.1-70b-instruct", "samples": 1},
    }
)


def agenttts(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "agenttts"
    command = [str(exe)] if exe.exists() else [shutil.which("agenttts") or "agenttts"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def grid_task(tmp_path: Path, **changes: Any) -> Path:
    (tmp_path / "grid.csv").write_text(
        "ret.model,ret.samples,qa.model,qa.samples,em,f1\n"
        "big,1,small,1,0.5,0.6\n"
        "big,4,small,2,0.7,0.8\n"
        "small,1,small,1,0.3,0.35\n"
    )
    (tmp_path / "data.json").write_text("[]")
    raw: dict[str, Any] = {
        "name": "cli-grid",
        "budget": 30,
        "stages": [
            {
                "name": "ret",
                "models": [{"name": "big", "params": 7e9}, {"name": "small", "params": 3e9}],
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 8,
                "aggregator": "vote_ids",
            },
            {
                "name": "qa",
                "models": [{"name": "small", "params": 3e9}],
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 8,
            },
        ],
        "metrics": ["em", "f1"],
        "main_metric": "em",
        "data": {"path": "data.json"},
        "environment": {"kind": "grid", "settings": {"table": "grid.csv"}},
    }
    raw.update(changes)
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_help_lists_the_commands():
    out = agenttts("--help")
    assert out.returncode == 0
    for command in ("task", "budget", "evaluate"):
        assert command in out.stdout


def test_validate_good_task(tmp_path):
    out = agenttts("task", "validate", str(grid_task(tmp_path)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK cli-grid: 2 stage(s)")
    assert "budget 30" in out.stdout and "environment grid" in out.stdout


def _bad(tmp_path: Path, name: str) -> Path:
    path = grid_task(tmp_path)
    raw = yaml.safe_load(path.read_text())
    if name == "unknown model":
        raw["stages"][1]["models"].append({"name": "ghost"})
    elif name == "negative budget":
        raw["budget"] = -1
    elif name == "budget below cheapest":
        raw["budget"] = 2
    elif name == "missing data file":
        raw["data"]["path"] = "absent.json"
    elif name == "unknown aggregator":
        raw["stages"][0]["aggregator"] = "median"
    elif name == "duplicate stage":
        raw["stages"][1]["name"] = "ret"
    elif name == "unknown kind":
        raw["environment"]["kind"] = "teleport"
    elif name == "malformed yaml":
        path.write_text("name: [oops\n")
        return path
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown model", "stages[qa].models[ghost]: unknown model 'ghost'"),
        ("negative budget", "budget: Input should be greater than 0"),
        ("budget below cheapest", "budget: budget 2 is below the cheapest configuration"),
        ("missing data file", "data.path: missing data file"),
        ("unknown aggregator", "stages[ret].aggregator: unknown aggregator 'median'"),
        ("duplicate stage", "duplicate stage name 'ret'"),
        ("unknown kind", "environment.kind: unknown environment kind 'teleport'"),
        ("malformed yaml", "task.yaml:2:1: not valid YAML"),
    ],
)
def test_validate_bad_task(tmp_path, case, expected):
    out = agenttts("task", "validate", str(_bad(tmp_path, case)))
    assert out.returncode == 2
    assert expected in out.stderr, out.stderr
    assert "OK" not in out.stdout


def test_budget_paper_vectors_by_path_and_bundled_name():
    repo = Path(__file__).resolve().parents[2]
    for target in (str(repo / "tasks" / "paper-2wiki.yaml"), "paper-2wiki"):
        out = agenttts("budget", target, "--config", PAPER_CONFIG)
        assert out.returncode == 0, out.stderr
        lines = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line}
        assert lines["retrieval"][-1] == "814"
        assert lines["qa"][-1] == "114.67"
        assert lines["total"][-1] == "928.67"
    out = agenttts("budget", "paper-2wiki", "--config", PAPER_CONFIG, "--json")
    data = json.loads(out.stdout)
    assert [s["cost"] for s in data["stages"]] == pytest.approx([814, 114 + 2 / 3], abs=1e-9)


def test_budget_without_config(tmp_path):
    path = grid_task(tmp_path)
    out = agenttts("budget", str(path))
    assert out.returncode == 0, out.stderr
    expected = count_feasible(load_task(path, check_environment=False))
    assert f"feasible configurations: {expected}" in out.stdout
    assert "cheapest configuration: ret=smallx1 | qa=smallx1" in out.stdout
    assert "largest single-sample configuration: ret=bigx1 | qa=smallx1" in out.stdout


def test_budget_over_budget_and_invalid_config(tmp_path):
    path = grid_task(tmp_path)
    big = json.dumps(
        {"ret": {"model": "big", "samples": 8}, "qa": {"model": "small", "samples": 8}}
    )
    out = agenttts("budget", str(path), "--config", big)
    assert out.returncode == 0 and "EXCEEDS the budget 30" in out.stdout
    bad = json.dumps(
        {"ret": {"model": "nope", "samples": 1}, "qa": {"model": "small", "samples": 1}}
    )
    out = agenttts("budget", str(path), "--config", bad)
    assert out.returncode == 2 and "unknown model 'nope'" in out.stderr
    out = agenttts("budget", str(path), "--config", "{not json")
    assert out.returncode == 2 and "not valid JSON" in out.stderr


def test_evaluate_grid_task(tmp_path):
    path = grid_task(tmp_path)
    cfg = json.dumps(
        {"ret": {"model": "big", "samples": 4}, "qa": {"model": "small", "samples": 2}}
    )
    out = agenttts("evaluate", str(path), "--config", cfg, "--split", "test")
    assert out.returncode == 0, out.stderr
    assert "em=0.7000 (main)" in out.stdout and "f1=0.8000" in out.stdout
    assert "source: row 2 exact" in out.stdout and "status: ok" in out.stdout
    out = agenttts("evaluate", str(path), "--config", cfg, "--split", "test", "--json")
    result = json.loads(out.stdout)
    assert result["metrics"] == {"em": 0.7, "f1": 0.8}
    expected = config_cost(load_task(path), Config.of({"ret": ("big", 4), "qa": ("small", 2)}))
    assert result["nominal_cost"] == pytest.approx(expected)
    assert result["source"] == "row 2 exact" and result["error"] is None


def test_evaluate_failures(tmp_path):
    path = grid_task(tmp_path)
    far = json.dumps(
        {"ret": {"model": "big", "samples": 1}, "qa": {"model": "small", "samples": 8}}
    )
    out = agenttts("evaluate", str(path), "--config", far)
    assert out.returncode == 1
    assert "error: no grid row within tolerance" in out.stdout
    over = json.dumps(
        {"ret": {"model": "big", "samples": 8}, "qa": {"model": "small", "samples": 8}}
    )
    out = agenttts("evaluate", str(path), "--config", over)
    assert out.returncode == 2 and "exceeds the budget" in out.stderr
    out = agenttts("evaluate", str(_bad(tmp_path, "unknown aggregator")), "--config", far)
    assert out.returncode == 2 and "unknown aggregator" in out.stderr
