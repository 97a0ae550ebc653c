"""The AgentTTS agent against the real embedded vLLM server (SmolLM2-135M): a weak model, so the
test asserts the wire and the handling, not the wisdom: guidelines come back as text, proposals
come back parsed (json_schema guided decoding) and the graph's screen judges every one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agenttts.archive import Archive
from agenttts.environment.space import config_cost, config_problems
from agenttts.errors import AgentError
from agenttts.graph.context import Context
from agenttts.proposers.agenttts_agent import AgentTTSProposer
from agenttts.proposers.base import ProposalContext, ProposerSettings
from agenttts.proposers.screening import screen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "agent"))
from tiny_task import TASK, trial

pytestmark = pytest.mark.integration

ARCHIVE = Archive(
    [
        trial(0, ("small", 8), ("big", 1), 0.40, "init"),
        trial(1, ("big", 1), ("big", 1), 0.55, "init"),
        trial(2, ("big", 1), ("small", 20), 0.60, "init"),
        trial(3, ("big", 1), ("small", 10), 0.62, "search"),
    ]
)


@pytest.fixture()
def agent(embedded_server: str) -> AgentTTSProposer:
    endpoint = Context().agent_endpoint(
        base_url=embedded_server, model="smollm2", max_tokens=320, temperature=0.9, timeout_s=180
    )
    return AgentTTSProposer(ProposerSettings(seed=7, agent=endpoint))


def test_one_agent_iteration_guidelines_then_parsed_validated_proposals(agent):
    ctx = ProposalContext(task=TASK, archive=ARCHIVE, iteration=2, batch_size=3)
    guide = agent.guidelines(ctx)
    assert guide is not None and not guide.errors, guide.errors
    assert guide.text.strip() and guide.usage.calls == 1
    assert guide.usage.prompt_tokens > 200 and guide.usage.completion_tokens > 0

    ctx.guidelines = guide.text
    proposal = agent.propose(ctx)
    assert proposal.usage.calls >= 1 and proposal.usage.prompt_tokens > 200
    # Guided decoding makes the answer schema-valid; whatever it proposes, the screen decides.
    assert proposal.configs, proposal.errors
    screened = screen(TASK, proposal.configs, ARCHIVE)
    assert len(screened.accepted) + len(screened.rejected) + len(screened.duplicates) == len(
        proposal.configs
    )
    for config, reason in screened.rejected:
        assert reason and config_problems(TASK, config)
    for config in screened.accepted:
        assert not config_problems(TASK, config) and config_cost(TASK, config) <= TASK.budget


def test_preferences_are_checked_against_the_task(agent):
    ctx = ProposalContext(task=TASK, archive=ARCHIVE, iteration=0, batch_size=3)
    try:
        prefs = agent.summarize_preferences(ctx)
    except AgentError as e:  # a weak model may keep naming unknown models; bounded, then recorded
        assert "no usable model preferences" in str(e)
        return
    assert prefs is not None and set(prefs.models) == {"retrieval", "qa"}
    for stage, model in prefs.models.items():
        assert model in TASK.stage(stage).model_names
