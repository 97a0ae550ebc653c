"""The report files, built from a state alone."""

from __future__ import annotations

import json
from pathlib import Path

from agenttts.archive import Trial
from agenttts.environment.executor import StageReport
from agenttts.environment.space import Config
from agenttts.report import build_report, write_report


def t(i, it, score, status="ok", phase="search", **kw):
    return Trial(
        trial_id=i,
        iteration=it,
        proposer="insight",
        phase=phase,
        status=status,
        score=score,
        config=Config.of({"r": ("big", i + 1), "q": ("small", 2)}),
        metrics={"em": score or 0.0},
        nominal_cost=100.0 + i,
        **kw,
    ).dump()


STATE = {
    "task": "x.yaml",
    "settings": {"proposer": "insight", "seed": 0},
    "iteration": 2,
    "archive": [
        t(0, 0, 0.4, phase="init"),
        t(1, 1, None, status="rejected", error="cost 2000 exceeds the budget 1000"),
        t(
            2,
            1,
            0.6,
            measured_cost=98.5,
            stages={"r": StageReport(nominal_cost=60, measured_cost=58)},
        ),
        t(3, 2, None, status="failed", error="RuntimeError: boom"),
        t(4, 2, 0.5),
    ],
    "guidelines": "try more QA samples | with a pipe",
    "preferences": {"r": "big", "q": "small"},
    "preference_notes": "retrieval wants the large model",
    "agent_usage": {"calls": 4, "prompt_tokens": 900, "completion_tokens": 300, "failures": 1},
    "agent_failures": [{"iteration": 1, "node": "propose_trials", "error": "prose"}],
    "stop_reason": "maximum iterations reached (2)",
    "test_result": t(5, 2, 0.55, phase="test", split="test", measured_cost=97.0),
}


def test_report_holds_best_train_and_test_with_both_costs(tmp_path):
    rep = build_report(STATE, thread_id="th")
    assert rep["best"]["trial_id"] == 2
    assert (rep["best"]["nominal_cost"], rep["best"]["measured_cost"]) == (102.0, 98.5)
    assert rep["best"]["stages"]["r"]["measured_cost"] == 58
    assert rep["test"]["score"] == 0.55 and rep["test"]["measured_cost"] == 97.0
    assert rep["trials"] == {
        "executed": 4,
        "failed": 1,
        "rejected": 1,
        "with_failed_items": 0,
        "derived": 0,
    }
    assert rep["trajectory"] == {"trial_ids": [0, 2, 3, 4], "best_so_far": [0.4, 0.6, 0.6, 0.6]}
    assert rep["stop_reason"] == "maximum iterations reached (2)"


def test_write_report_writes_json_markdown_and_png(tmp_path):
    paths = write_report(STATE, tmp_path / "out", thread_id="th")
    assert json.loads(Path(paths["json"]).read_text())["thread_id"] == "th"
    md = Path(paths["markdown"]).read_text()
    assert "r: big x 3, q: small x 2" in md and "(trial 2, iteration 1)" in md
    assert "| train | em=0.6 | 102.00 | 98.50 |  |" in md
    assert "| test | em=0.55 | 105.00 | 97.00 |  |" in md
    assert "try more QA samples | with a pipe" in md
    assert "cost 2000 exceeds the budget 1000" in md
    assert "r=bigx1 \\| q=smallx2" in md  # pipes escaped in tables
    assert Path(paths["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_run_without_any_success(tmp_path):
    state = {"task": "x", "archive": [t(0, 1, None, status="failed", error="e")]}
    rep = build_report(state)
    assert rep["best"] is None and rep["test"] is None
    paths = write_report(state, tmp_path)
    assert "No trial succeeded." in Path(paths["markdown"]).read_text()


def test_failed_items_and_the_noise_of_each_score_are_in_the_text(tmp_path):
    """Items that failed or timed out are stated where the trial is listed (they were visible
    only in --json), and each score has its standard error over the items, with the trials that
    the data cannot tell from the best marked."""
    from agenttts.archive import Archive
    from agenttts.report import ARCHIVE_HEADER, archive_rows, render_markdown

    failed = {
        "items": 12,
        "failed_items": 5,
        "timed_out_items": 2,
        "first_item_error": "item q3: KeyError: 'answer'",
    }
    state = {
        "task": "x",
        "archive": [
            t(0, 0, 9 / 12, split_size=12),
            t(1, 1, 8 / 12, split_size=12, details=failed),
            t(2, 1, 1 / 12, split_size=12),
        ],
    }
    archive = Archive.from_state(state)
    rows = {r[0]: dict(zip(ARCHIVE_HEADER, r, strict=True)) for r in archive_rows(archive, "em")}
    assert rows["0"]["score ±se"] == "9/12 ±0.12" and rows["0"]["vs best"] == "best"
    assert rows["1"]["score ±se"] == "8/12 ±0.14" and rows["1"]["vs best"] == "≈"
    assert rows["2"]["vs best"] == ""
    assert rows["1"]["note"] == "5/12 items failed, 2 timed out; first: item q3: KeyError: 'answer'"
    rep = build_report(state)
    assert rep["trials"]["with_failed_items"] == 1
    assert rep["best_noise"]["within_noise"] == [1]
    md = render_markdown(rep, archive)
    assert "1 with failed or timed-out items" in md
    assert "trial(s) 1 score within noise of it" in md
