"""From the search into production, on the REAL embedded server: the LangGraph example is searched,
its best configuration exported, and the same graph invoked in a separate plain Python process
with the exported file (`examples/langgraph/answer.py`, AGENTTTS_CONFIG). On the test items its
answers score exactly the search's final evaluation of that configuration, with the same tokens,
and every sample comes from the search's cache: the sampler counts zero requests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agenttts.environment.live.loading import load_items
from agenttts.environment.live.scoring import Scorer, ScoringSettings
from agenttts.environment.splits import split_items
from agenttts.environment.task_loading import load_task

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langgraph"
AGENTTTS = str(Path(sys.executable).with_name("agenttts"))


def agenttts(*args: str, cwd: Path) -> str:
    done = subprocess.run([AGENTTTS, *args], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_searched_graph_runs_in_a_plain_process_at_the_exported_configuration(
    embedded_server: str, tmp_path: Path
):
    task_file = str(EXAMPLE / "task.yaml")
    # a tiny search: the insight proposer's two initial trials, then the final evaluation
    agenttts("search", task_file, "--proposer", "insight", "--thread", "lg", "--db", "runs.sqlite",
             "--max-trials", "2", "--report-dir", "reports", "--quiet", cwd=tmp_path)  # fmt: skip
    test = json.loads(agenttts("show", "lg", "--db", "runs.sqlite", "--json", cwd=tmp_path))[
        "test_result"
    ]
    agenttts("export", "lg", "--db", "runs.sqlite", "--out", "best.yaml", cwd=tmp_path)

    task = load_task(task_file)
    items = split_items(task.data, load_items(task.resolve(str(task.data.path))), "test")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(i) + "\n" for i in items))
    elsewhere = tmp_path / "elsewhere"  # nothing found by the current folder
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "answer.py"), str(questions)],
        env={**os.environ, "AGENTTTS_CONFIG": str(tmp_path / "best.yaml")},
        capture_output=True, text=True, cwd=elsewhere, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line)["answer"] for line in done.stdout.splitlines()]
    usage = json.loads(done.stderr.strip().splitlines()[-1])["usage"]

    assert sum(u["calls"] for u in usage.values()) == 0  # no request: all from the cache
    assert all(u["cached_samples"] == u["samples"] > 0 for u in usage.values())
    assert sum(u["prompt_tokens"] for u in usage.values()) == test["prompt_tokens"]
    assert sum(u["completion_tokens"] for u in usage.values()) == test["completion_tokens"]
    scorer = Scorer(list(task.metrics), ScoringSettings(), task.base_dir)
    scores = [asyncio.run(scorer.score(a, i)) for a, i in zip(answers, items, strict=True)]
    assert {k: sum(s[k] for s in scores) / len(scores) for k in task.metrics} == test["metrics"]

    # `agenttts run` over the same inputs: the same answers, no request either
    agenttts("run", task_file, "--config", "best.yaml", "--input", str(questions),
             "--out", "out.jsonl", "--quiet", cwd=tmp_path)  # fmt: skip
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["prediction"] for x in lines] == answers
    assert [x["requests"] for x in lines] == [0] * len(items)
