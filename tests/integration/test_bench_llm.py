"""The LLM baselines against the REAL embedded server (vLLM CPU, SmolLM2): what the weak model
answers is parsed, screened and replayed like any proposal, its calls and tokens are counted, and
a bad answer is recorded, never raised."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agenttts.environment.space import config_problems
from agenttts.graph.context import Context
from agenttts.proposers import make_proposer
from agenttts.proposers.base import ProposerSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "proposers"))
from tiny_grid import drive, load_tiny, write_tiny_grid_task

from agenttts.search_bench import BenchSettings, run_bench

pytestmark = [pytest.mark.integration, pytest.mark.embedded]


@pytest.mark.parametrize("name", ["agenthpo", "mlcopilot"])
def test_llm_baseline_on_the_embedded_server(embedded_server, tmp_path, name):
    task = load_tiny(tmp_path)
    endpoint = Context().agent_endpoint(
        base_url=embedded_server, model="smollm2", max_tokens=320, timeout_s=180
    )
    proposer = make_proposer(name, ProposerSettings(seed=1, agent=endpoint))
    archive, proposals, _ = drive(task, proposer, iterations=2, batch_size=3, strict=False)
    calls = sum(p.usage.calls for p in proposals)
    assert calls >= 2 and sum(p.usage.prompt_tokens for p in proposals) > 0
    for p in proposals:
        assert p.configs or p.errors  # an empty proposal always says why
    for t in archive:
        assert (t.status == "ok" and not config_problems(task, t.config)) or (
            t.status == "rejected" and t.error
        )


def test_agenttts_bench_on_the_embedded_server(embedded_server, tmp_path):
    """The agenttts proposer in the bench with the real weak model as agent: the run ends at its
    cap (a slow answer is waited for, not taken for an unreachable server), its agent calls,
    tokens and seconds are reported, and every search trial is accounted for as the agent's
    proposal (as proposed or repaired) or an insight top-up."""
    task = write_tiny_grid_task(tmp_path)
    settings = BenchSettings(
        tasks=[str(task)],
        methods=["agenttts"],
        seeds=[0],
        out_dir=tmp_path / "out",
        max_trials=7,  # four initial trials, then one batch
        batch_size=3,
        agent={"agent_base_url": embedded_server, "agent_model": "smollm2", "agent_params": 135e6},
    )
    result = run_bench(settings)
    (run,) = result["runs"]
    assert run["trials"] == 7 and run["stop_reason"]
    assert run["agent_calls"] >= 3 and run["agent_prompt_tokens"] > 0
    assert run["agent_seconds"] > 0 and run["wall_s"] >= run["agent_seconds"]
    search = run["agent_as_is"] + run["agent_repaired"] + run["agent_topped_up"]
    assert search == 3  # the batch: whatever the agent leaves, the insight proposer fills
