"""The AgentTTS agent proposer over the wire (canned OpenAI server): malformed answers are recorded,
never raised; proposals the task forbids reach the graph's screen and come back with reasons."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agenttts.archive import Archive, Trial
from agenttts.environment.space import Config
from agenttts.errors import AgentError, ResumableStop
from agenttts.graph.context import Context
from agenttts.proposers import make_proposer
from agenttts.proposers.agenttts_agent import AgentTTSProposer
from agenttts.proposers.base import ProposalContext, ProposerSettings
from agenttts.proposers.insight.preferences import preference_configs
from agenttts.proposers.screening import screen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "agent"))
from openai_server import CannedServer, Reply
from tiny_task import TASK, trial

AGENT_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agent"


def fixture_text(name: str) -> str:
    """A canned agent answer kept as a file next to the tiny task."""
    return (AGENT_FIXTURES / name).read_text()


ARCHIVE = Archive(
    [
        trial(0, ("small", 8), ("big", 1), 0.40, "init"),
        trial(1, ("big", 1), ("big", 1), 0.55, "init"),
        trial(2, ("big", 1), ("small", 20), 0.60, "init"),
        Trial.rejected(
            Config.of({"retrieval": ("big", 9), "qa": ("big", 9)}),
            "cost 400.00 exceeds the budget 120",
            trial_id=3,
            iteration=1,
            proposer="agenttts",
        ),
    ]
)


def proposer(url: str, **kw) -> AgentTTSProposer:
    ep = Context().agent_endpoint(base_url=url, model="canned", max_parse_retries=1, **kw)
    return AgentTTSProposer(ProposerSettings(seed=3, agent=ep, hybrid=False))  # the paper's


def ctx(**kw) -> ProposalContext:
    return ProposalContext(task=TASK, archive=ARCHIVE, iteration=2, batch_size=4, **kw)


def test_registered_by_name():
    p = make_proposer("agenttts", Context().proposer_settings())
    assert isinstance(p, AgentTTSProposer) and p.initial_configs(TASK) == preference_configs(TASK)


def test_valid_proposal_is_parsed_and_prompt_carries_task_and_archive():
    answer = fixture_text("over_budget.json")
    with CannedServer([Reply(answer)]) as srv:
        prop = proposer(srv.url).propose(ctx(guidelines="try qa small x10"))
    assert len(prop.configs) == 2 and prop.rationale == "spend everything on sampling"
    assert prop.usage.calls == 1 and not prop.errors
    prompt = srv.requests[0]["messages"][1]["content"]
    assert "Budget: 120" in prompt and "big (24B)" in prompt  # task, models with sizes
    assert "REJECTED: cost 400.00 exceeds the budget 120" in prompt  # rejected reasons
    assert "score 0.6000" in prompt and "try qa small x10" in prompt
    assert "Insight 2" in prompt
    screened = screen(TASK, prop.configs, ARCHIVE)
    assert [c.short() for c in screened.accepted] == ["retrieval=smallx2 | qa=smallx3"]
    assert "exceeds the budget" in screened.rejected[0][1]


def test_unknown_models_and_ranges_reach_the_screen_structural_errors_are_dropped():
    with CannedServer([Reply(fixture_text("unknown_models.json"))]) as srv:
        prop = proposer(srv.url).propose(ctx())
    assert len(srv.requests) == 1
    assert len(prop.configs) == 3  # samples=0 cannot form a configuration
    assert any("samples must be >= 1" in e for e in prop.errors)
    reasons = [r for _, r in screen(TASK, prop.configs, ARCHIVE).rejected]
    assert any("unknown model 'gpt-99'" in r for r in reasons)
    assert any("samples 500 outside 1..50" in r for r in reasons)
    assert any("unknown stage 'rerank'" in r for r in reasons)


@pytest.mark.parametrize("name", ["prose_answer.txt", "truncated_answer.txt"])
def test_malformed_answers_never_raise_and_are_recorded(name):
    finish = "length" if "truncated" in name else "stop"
    with CannedServer([Reply(fixture_text(name), finish_reason=finish)]) as srv:
        prop = proposer(srv.url).propose(ctx())
    assert prop.configs == [] and len(srv.requests) == 2  # asked once more, then gave up
    assert len(prop.errors) == 2 and prop.usage.failures == 1 and prop.usage.calls == 2


def test_malformed_then_good_answer_is_used():
    replies = [Reply(fixture_text("prose_answer.txt")), Reply(fixture_text("over_budget.json"))]
    with CannedServer(replies) as srv:
        prop = proposer(srv.url).propose(ctx())
    assert len(prop.configs) == 2 and "no JSON" in prop.errors[0]
    assert "could not be used" in srv.requests[1]["messages"][-1]["content"]


def test_preferences_reask_on_unknown_model_then_accept():
    bad = {
        "preferences": [{"stage": "retrieval", "model": "huge"}, {"stage": "qa", "model": "small"}]
    }
    good = {
        "preferences": [
            {"stage": "retrieval", "model": "big", "reason": "long context"},
            {"stage": "qa", "model": "small", "reason": "sampling helps"},
        ],
        "notes": "as insight 1 says",
    }
    with CannedServer([Reply(json.dumps(bad)), Reply(json.dumps(good))]) as srv:
        prefs = proposer(srv.url).summarize_preferences(ctx())
    assert prefs is not None
    assert prefs.models == {"retrieval": "big", "qa": "small"}
    assert "long context" in prefs.notes and prefs.usage.calls == 2
    assert "has no model 'huge'" in srv.requests[1]["messages"][-1]["content"]
    # The preference prompt shows only the initial trials.
    assert "REJECTED" not in srv.requests[0]["messages"][1]["content"]


def test_preferences_unusable_is_an_agent_error_not_unreachable():
    with CannedServer([Reply("no idea")]) as srv, pytest.raises(AgentError) as err:
        proposer(srv.url).summarize_preferences(ctx())
    assert not isinstance(err.value, ResumableStop)


def test_guidelines_text_and_server_error_keeps_previous():
    with CannedServer([Reply("qa: small, S 10-20.")]) as srv:
        g = proposer(srv.url).guidelines(ctx(guidelines="old"))
    assert g is not None
    assert g.text == "qa: small, S 10-20." and not g.errors
    assert "old" in srv.requests[0]["messages"][1]["content"]
    with CannedServer([Reply(status=500, error="boom")]) as srv:
        g = proposer(srv.url).guidelines(ctx(guidelines="old"))
    assert g is not None
    assert g.text == "old" and "HTTP 500" in g.errors[0] and g.usage.failures == 1


def test_unreachable_raises_for_the_graph_to_stop():
    with CannedServer([Reply("x")]) as srv:
        url = srv.url
    p = proposer(url, timeout_s=5)
    for call in (p.propose, p.guidelines):
        with pytest.raises(ResumableStop):
            call(ctx())


def test_ablation_removes_insight_block_from_the_agent_prompt(tmp_path):
    (tmp_path / "system.txt").write_text("EDITED SYSTEM")
    with CannedServer([Reply(fixture_text("over_budget.json"))]) as srv:
        ep = Context().agent_endpoint(base_url=srv.url, model="canned")
        s = ProposerSettings(no_insights=frozenset({3}), prompts_dir=tmp_path, agent=ep)
        AgentTTSProposer(s).propose(ctx())
    system, user = (m["content"] for m in srv.requests[0]["messages"])
    assert system == "EDITED SYSTEM"
    assert "Insight 3" not in user and "Insight 2" in user


def test_the_hybrid_prompt_states_what_each_candidate_would_newly_cost():
    with CannedServer([Reply(fixture_text("over_budget.json"))] * 2) as srv:
        ep = Context().agent_endpoint(base_url=srv.url, model="canned", max_parse_retries=1)
        AgentTTSProposer(ProposerSettings(seed=3, agent=ep)).propose(ctx())  # hybrid, progressive
        proposer(srv.url).propose(ctx())  # the paper's agent: no such block
    hybrid, paper = (r["messages"][1]["content"] for r in srv.requests)
    assert "would newly cost" in hybrid and "would newly cost" not in paper
    priced = [line for line in hybrid.splitlines() if line.startswith("- ") and " new " in line]
    assert priced
    news = [tuple(map(float, x.split(" new ")[1].split(" of "))) for x in priced]
    assert all(new <= nominal for new, nominal in news)
    # retrieval=big x1 is drawn already: a candidate after it pays for its QA samples alone
    assert any(new < nominal for new, nominal in news)
