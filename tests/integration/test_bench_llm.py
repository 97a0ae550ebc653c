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
from tiny_grid import drive, load_tiny

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
