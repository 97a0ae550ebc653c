"""Progress: a timestamped line as every node starts and ends, and a bar over a trial's items."""

from __future__ import annotations

import io
import logging
import re

import pytest

from agenttts.cli.node_progress import NodeProgress
from agenttts.graph.runner import run_search
from agenttts.progress import ItemProgress, set_quiet


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _progress_shown():
    logger = logging.getLogger("agenttts")
    level = logger.level
    logger.setLevel(logging.INFO)  # what the CLI does
    set_quiet(False)
    yield
    set_quiet(False)
    logger.setLevel(level)


def test_every_node_gets_a_start_and_an_end_line_with_time_and_duration(tmp_path):
    lines: list[str] = []
    progress = NodeProgress(lines.append)
    run_search(
        "sim-2wiki",
        "t",
        tmp_path / "db.sqlite",
        {"proposer": "insight", "max_iterations": 1, "report_dir": str(tmp_path / "r")},
        on_event=progress.end,
        on_start=progress.start,
    )
    stamp = r"\d\d:\d\d:\d\d"
    starts = [ln for ln in lines if re.match(rf"{stamp} > ", ln)]
    ends = [ln for ln in lines if re.match(rf"{stamp}   .* \(\d+\.\d s\)$", ln)]
    assert len(starts) == len(ends) == len(lines) // 2 and len(lines) % 2 == 0
    assert "> init" in lines[0] and "init: " in lines[1]
    assert any("> iteration 1: running 10 trial(s)" in ln for ln in starts)
    assert "final evaluation: test score" in lines[-1]
    for start, end in zip(lines[::2], lines[1::2], strict=True):  # each node ends before the next
        assert start in starts and end in ends


def test_items_show_as_a_bar_on_a_terminal():
    term = Terminal()
    with ItemProgress(8, "train qa=m x4", stream=term) as p:
        for _ in range(8):
            p.advance()
    shown = term.getvalue()  # tqdm redraws at most every 0.1 s; the bar is cleared at the end
    assert "train qa=m x4:   0%" in shown and "0/8 [" in shown and shown.endswith("\r")


def test_items_show_as_a_line_per_quarter_elsewhere(caplog):
    caplog.set_level(logging.INFO, logger="agenttts.progress")
    with ItemProgress(10, "train qa=m x4", stream=io.StringIO()) as p:
        for _ in range(10):
            p.advance()
    done = [r.getMessage() for r in caplog.records if r.name == "agenttts.progress"]
    assert [m.split(": ")[1].split(" ")[0] for m in done] == ["3/10", "6/10", "9/10", "10/10"]


def test_quiet_shows_neither(caplog):
    caplog.set_level(logging.INFO, logger="agenttts.progress")
    set_quiet(True)
    term = Terminal()
    with ItemProgress(4, "x", stream=term) as p:
        p.advance(4)
    with ItemProgress(4, "x", stream=io.StringIO()) as p:
        p.advance(4)
    assert term.getvalue() == "" and not caplog.records


def test_the_progress_line_says_when_a_trial_lost_items():
    """A trial can succeed with some items failed (scored 0): the line says so, not "0 failed"
    alone."""
    from agenttts.archive import Trial
    from agenttts.cli.node_progress import describe_update
    from agenttts.environment.space import Config

    def trial(i: int, **details: int) -> dict:
        return Trial(
            trial_id=i, iteration=1, proposer="x", status="ok", score=0.5, metrics={"em": 0.5},
            config=Config.of({"qa": ("m", i + 1)}), details=details,
        ).dump()  # fmt: skip

    update = {"archive": [trial(0), trial(1, items=12, failed_items=5)]}
    assert describe_update("execute_trials", update) == (
        "executed 2 (0 failed, 1 with failed or timed-out items), best of batch 0.5"
    )
