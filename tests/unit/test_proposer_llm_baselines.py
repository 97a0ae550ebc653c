"""AgentHPO and MLCopilot baselines over the wire (a real local HTTP server with canned answers):
the prompt carries what each method reads, answers become configurations, bad answers are recorded,
an unreachable agent stops the run; on a tiny replay task their proposals screen like any other."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agenttts.archive import Archive, Trial
from agenttts.environment.space import Config, config_cost, config_problems
from agenttts.errors import ResumableStop
from agenttts.graph.context import Context
from agenttts.proposers import make_proposer
from agenttts.proposers.agenthpo import AgentHPOProposer
from agenttts.proposers.base import ProposalContext, ProposerSettings
from agenttts.proposers.mlcopilot import MLCopilotProposer, retrieve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "proposers"))
from openai_server import CannedServer, Reply
from tiny_grid import drive, load_tiny


def answer(*configs: tuple[tuple[str, int], tuple[str, int]], why: str = "because") -> str:
    return json.dumps(
        {
            "configs": [
                {
                    "stages": [
                        {"stage": "ret", "model": r[0], "samples": r[1]},
                        {"stage": "qa", "model": q[0], "samples": q[1]},
                    ]
                }
                for r, q in configs
            ],
            "rationale": why,
        }
    )


def settings(url: str, seed: int = 0) -> ProposerSettings:
    ep = Context().agent_endpoint(base_url=url, model="canned", max_parse_retries=1, timeout_s=5)
    return ProposerSettings(seed=seed, agent=ep, hybrid=False)  # the baselines as published


def trial(task, i, r, q, score, it=1, why=None) -> Trial:
    c = Config.of({"ret": r, "qa": q})
    return Trial(
        trial_id=i, iteration=it, proposer="x", config=c, status="ok", score=score,
        metrics={"acc": score}, nominal_cost=config_cost(task, c), rationale=why,
    )  # fmt: skip


@pytest.fixture
def task(tmp_path):
    return load_tiny(tmp_path)


def test_registered_by_name():
    agent = Context().proposer_settings()
    assert isinstance(make_proposer("agenthpo", agent), AgentHPOProposer)
    assert isinstance(make_proposer("mlcopilot", agent), MLCopilotProposer)


def test_agenthpo_reads_the_whole_log_with_its_earlier_analyses(task):
    archive = [
        trial(task, i, ("s", 1 + i % 6), ("s", 1 + i // 6), 0.3 + i / 100, it=1 + i // 10,
              why=f"analysis {1 + i // 10}")
        for i in range(25)
    ]  # fmt: skip
    ctx = ProposalContext(task=task, archive=Archive(archive), iteration=4, batch_size=3)
    with CannedServer([Reply(answer((("l", 1), ("s", 3)), (("s", 2), ("l", 1))))]) as srv:
        prop = make_proposer("agenthpo", settings(srv.url)).propose(ctx)
    assert [c.short() for c in prop.configs] == ["ret=lx1 | qa=sx3", "ret=sx2 | qa=lx1"]
    assert prop.rationale == "because" and prop.usage.calls == 1 and not prop.errors
    prompt = srv.requests[0]["messages"][1]["content"]
    assert all(f"#{i} " in prompt for i in range(25))  # every trial, not a bounded view
    assert "analysis 1" in prompt and "analysis 3" in prompt
    assert "propose 3 new configurations" in prompt


def test_mlcopilot_retrieves_neighbours_of_the_best_and_distils_knowledge(task):
    archive = [
        trial(task, 0, ("l", 1), ("s", 3), 0.70),
        trial(task, 1, ("l", 1), ("s", 4), 0.65),
        trial(task, 2, ("s", 6), ("l", 6), 0.20),
        trial(task, 3, ("s", 1), ("l", 1), 0.40),
        trial(task, 4, ("l", 2), ("s", 3), 0.68),
    ]
    near = retrieve(task, Archive(archive), 3)
    assert [t.trial_id for t in near] == [0, 4, 1]  # nearest to the best, ranked by score
    ctx = ProposalContext(task=task, archive=Archive(archive), iteration=2, batch_size=2)
    replies = [Reply("ret: large model, one sample.\nqa: small model, 3 samples."),
               Reply(answer((("l", 1), ("s", 2))))]  # fmt: skip
    with CannedServer(replies) as srv:
        p = make_proposer("mlcopilot", settings(srv.url))
        knowledge = p.guidelines(ctx)
        assert knowledge is not None
        ctx.guidelines = knowledge.text
        prop = p.propose(ctx)
    assert knowledge.text.startswith("ret: large model") and knowledge.usage.calls == 1
    assert [c.short() for c in prop.configs] == ["ret=lx1 | qa=sx2"]
    prompt = srv.requests[1]["messages"][1]["content"]
    assert "ret: large model, one sample." in prompt
    assert "Configuration: ret=l x1, qa=s x3 -> acc 0.7000" in prompt
    assert "top 2 configurations" in prompt


@pytest.mark.parametrize("name", ["agenthpo", "mlcopilot"])
def test_unusable_answers_are_recorded_not_raised(task, name):
    ctx = ProposalContext(task=task, archive=Archive(), iteration=1, batch_size=2)
    with CannedServer([Reply("I would try a bigger model.")]) as srv:
        prop = make_proposer(name, settings(srv.url)).propose(ctx)
    assert prop.configs == [] and prop.errors and prop.usage.failures == 1
    assert len(srv.requests) == 2  # asked again once with the reason


@pytest.mark.parametrize("name", ["agenthpo", "mlcopilot"])
def test_unreachable_agent_raises_for_the_graph_to_stop(task, name):
    with CannedServer([Reply("x")]) as srv:
        url = srv.url
    ctx = ProposalContext(task=task, archive=Archive(), iteration=1, batch_size=2)
    with pytest.raises(ResumableStop):
        make_proposer(name, settings(url)).propose(ctx)


@pytest.mark.parametrize("name", ["agenthpo", "mlcopilot"])
def test_proposals_screen_on_the_replay_task_and_a_rerun_asks_the_same(task, name):
    replies = [Reply(answer((("s", k), ("s", 1)), (("l", 1), ("s", k)))) for k in range(1, 7)]
    with CannedServer(replies) as srv:
        archive, _, duplicates = drive(task, make_proposer(name, settings(srv.url)), 3, 2)
        first = [(m["messages"], m.get("seed")) for m in srv.requests]
    assert duplicates == 0 and len(archive) == 6
    assert all(not config_problems(task, t.config) for t in archive)
    with CannedServer(replies) as srv:
        drive(task, make_proposer(name, settings(srv.url)), 3, 2)
        again = [(m["messages"], m.get("seed")) for m in srv.requests]
    assert again == first  # same archive, same prompts and the same per-call seeds
    assert len({seed for _, seed in first}) == len(first)  # each iteration its own seed
