"""An agent that never wastes a batch (`hybrid_agent`): over-budget proposals repaired, short
batches topped up by the insight proposer, each recorded as such, over the canned wire-level agent
server and the whole search graph; off, the paper's agent exactly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agenttts.archive import Archive
from agenttts.environment.space import Config, config_cost, within_budget
from agenttts.environment.task_loading import load_task, parse_task
from agenttts.graph.runner import run_search
from agenttts.proposers.hybrid import REPAIRED, TOPPED_UP, repair
from agenttts.report import archive_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "agent"))
from openai_server import CannedServer, Reply
from tiny_task import TASK

PREFERENCES = {
    "preferences": {
        "retrieval": {"model": "qwen2.5-72b", "reason": "long context"},
        "qa": {"model": "llama-3.1-8b", "reason": "sampling helps"},
    },
    "notes": "insight 1",
}
OVER = {
    "retrieval": {"model": "qwen2.5-72b", "samples": 3},
    "qa": {"model": "llama-3.1-8b", "samples": 60},
}
GOOD = {
    "retrieval": {"model": "qwen2.5-72b", "samples": 1},
    "qa": {"model": "llama-3.1-8b", "samples": 20},
}
INIT = {
    "retrieval": {"model": "qwen2.5-72b", "samples": 1},
    "qa": {"model": "llama-3.1-70b", "samples": 1},
}
PROPOSAL = {"configs": [OVER, GOOD, INIT], "rationale": "more qa samples"}


def search(tmp_path: Path, url: str, **kw) -> Archive:
    """The canned agent's proposals as they stand: free evaluations off, so that none of them is
    already known when proposed."""
    settings = {
        "free_evaluations": False,
        "proposer": "agenttts",
        "agent_base_url": url,
        "agent_model": "canned",
        "batch_size": 4,
        "max_iterations": 1,
        "patience": None,
        "report_dir": str(tmp_path / "reports"),
        **kw,
    }
    return run_search("sim-cwq", "t", tmp_path / "runs.sqlite", settings).trials


def replies() -> list[Reply]:
    return [Reply(json.dumps(PREFERENCES)), Reply("Sample qa more."), Reply(json.dumps(PROPOSAL))]


def test_over_budget_proposal_repaired_and_short_batch_topped_up(tmp_path):
    task = load_task("sim-cwq")
    over = Config.model_validate(OVER)
    assert not within_budget(task, over)
    with CannedServer(replies()) as srv:
        archive = search(tmp_path, srv.url)
    batch = archive.in_iteration(1)
    assert len(batch) == 4 and len(batch.executed()) == 4 and not archive.rejected()
    [fixed] = [t for t in batch if (t.rationale or "").startswith(REPAIRED)]
    assert within_budget(task, fixed.config) and config_cost(task, over) > task.budget
    changed = [s for s in task.stage_names if fixed.config[s] != over[s]]
    assert len(changed) == 1 and fixed.config[changed[0]].samples < over[changed[0]].samples
    assert fixed.config[changed[0]].model == over[changed[0]].model
    assert over.short() in (fixed.rationale or "") and "more qa samples" in (fixed.rationale or "")
    topped = [t for t in batch if (t.rationale or "").startswith(TOPPED_UP)]
    assert len(topped) == 2
    [own] = [t for t in batch if t.config == Config.model_validate(GOOD)]
    assert "1 repaired to fit" in (own.rationale or "") and "2 topped up" in (own.rationale or "")
    prompt = srv.requests[2]["messages"][1]["content"]
    assert "Numbers from the trials so far" in prompt and "best S" in prompt
    notes = {row[0]: row[-1] for row in archive_rows(list(batch))}  # `show` and the report
    assert notes[str(fixed.trial_id)].startswith(REPAIRED)
    assert all(notes[str(t.trial_id)].startswith(TOPPED_UP) for t in topped)
    assert not notes[str(own.trial_id)]


def test_off_is_the_papers_agent_exactly(tmp_path):
    with CannedServer(replies()) as srv:
        archive = search(tmp_path, srv.url, hybrid_agent=False)
    batch = archive.in_iteration(1)
    [rejected] = batch.rejected()
    assert "exceeds the budget" in (rejected.error or "")
    assert [t.config for t in batch.executed()] == [Config.model_validate(GOOD)]
    assert batch.executed()[0].rationale == "more qa samples"
    prompt = srv.requests[2]["messages"][1]["content"]
    assert "Numbers from the trials so far" not in prompt and "{evidence}" not in prompt


def test_repair_lowers_the_stage_the_agent_changed_least():
    incumbent = Config.of({"retrieval": ("small", 2), "qa": ("big", 4)})
    # The agent moved retrieval far (S 2 -> 20) and qa less (4 -> 12): qa gives up samples.
    wanted = Config.of({"retrieval": ("small", 20), "qa": ("big", 12)})
    assert config_cost(TASK, wanted) > TASK.budget
    fixed, why = repair(TASK, wanted, incumbent) or (None, "")
    assert fixed == Config.of({"retrieval": ("small", 20), "qa": ("big", 7)})
    assert within_budget(TASK, fixed) and not within_budget(TASK, fixed.with_stage("qa", "big", 8))
    assert why.startswith(REPAIRED) and wanted.short() in why and "qa S 12->7" in why
    # A big retriever alone costs more than the budget: nothing near it runs, the screen says so.
    assert repair(TASK, Config.of({"retrieval": ("big", 2), "qa": ("big", 4)}), incumbent) is None
    assert repair(TASK, incumbent, incumbent) is None  # runs as it is


@pytest.mark.parametrize("samples", [3, 5, 100])
def test_repair_snaps_to_the_stages_sample_set(samples):
    task = parse_task(
        {
            "name": "set",
            "budget": 1000,
            "stages": [
                {
                    "name": "qa",
                    "prompt_tokens": 256,
                    "gen_tokens": 64,
                    "samples": [1, 2, 4, 8, 16],
                    "models": [{"name": "m", "params": 3e9}],
                }
            ],
            "metrics": ["em"],
            "main_metric": "em",
            "environment": {"kind": "grid"},
        }
    )
    fixed, why = repair(task, Config.of({"qa": ("m", samples)}), None) or (None, "")
    assert fixed is not None and fixed["qa"].samples in (4, 16) and "allowed counts" in why


def test_a_reasoning_agent_searches_and_its_thinking_is_kept_beside_its_answers(tmp_path):
    """A whole search with an agent that thinks aloud, in two shapes: its answers are used as a
    plain agent's are, its thinking is in the thread (`agent_reasoning`, the report) beside each
    answer, and its thinking tokens are in the agent's usage and so in the search cost."""
    from agenttts.graph.runner import run_search
    from agenttts.report import search_cost

    thoughts = ["Retrieval {wants} the big one.", "More qa samples, {maybe}.", "Try {qa: 20}."]
    with CannedServer(
        [
            Reply(json.dumps(PREFERENCES), reasoning=thoughts[0], reasoning_tokens=12),
            Reply(f"<think>{thoughts[1]}</think>Sample qa more."),
            Reply(json.dumps(PROPOSAL), reasoning=thoughts[2], reasoning_tokens=12),
        ]
    ) as srv:
        settings = {
            "proposer": "agenttts",
            "agent_base_url": srv.url,
            "agent_model": "canned",
            "agent_params": 8e9,
            "batch_size": 4,
            "max_iterations": 1,
            "patience": None,
            "report_dir": str(tmp_path / "reports"),
        }
        values = run_search("sim-cwq", "t", tmp_path / "runs.sqlite", settings).values
    assert [(r["node"], r["reasoning"]) for r in values["agent_reasoning"]] == [
        ("init_preferences", thoughts[0]),
        ("generate_guidelines", thoughts[1]),
        ("propose_trials", thoughts[2]),
    ]
    assert values["guidelines"] == "Sample qa more."  # the answer, without its thinking
    assert values["agent_usage"]["reasoning_tokens"] == 24
    assert search_cost(values)["agent"] > 0  # its tokens, thinking included, are priced
    report = json.loads(Path(values["report"]["json"]).read_text())
    assert [r["reasoning"] for r in report["agent_reasoning"]] == thoughts
