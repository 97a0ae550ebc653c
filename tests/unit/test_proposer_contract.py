"""One contract over every registered proposer (the registry is the parameter list, as Optuna's
sampler tests do): a new proposer is one module plus its registration line, and this test covers it.

The contract (see `agenttts.proposers.base.Proposer`): the registered name is the class's name;
`initial_configs` is None or feasible configurations with a reason; `propose` returns configurations
of the task's stages of which at most `batch_size` would run (the screen records the rest); and a
proposer is a pure function of its context, so a fresh instance asked the same question (a resumed
run) proposes the same; an optional hook
returns its declared type, or raises AgentError for an unusable agent answer (which the node
records). LLM proposers run against a real wire-level HTTP server with canned answers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agenttts.archive import Archive
from agenttts.environment.space import config_problems
from agenttts.errors import AgentError
from agenttts.graph.context import Context
from agenttts.proposers import PROPOSERS, make_proposer, proposer_class
from agenttts.proposers.base import Guidelines, Preferences, ProposalContext, ProposerSettings
from agenttts.proposers.screening import screen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "proposers"))
from openai_server import CannedServer, Reply
from tiny_grid import drive, keys, load_tiny

#: A valid agent answer on the tiny task: two configurations within its budget.
ANSWER = json.dumps(
    {
        "configs": [
            {
                "stages": [
                    {"stage": "ret", "model": "l", "samples": 1},
                    {"stage": "qa", "model": "s", "samples": s},
                ]
            }
            for s in (2, 3)
        ],
        "rationale": "large retriever, a few QA samples",
    }
)


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with CannedServer([Reply(ANSWER)]) as srv:
        yield srv.url


def settings(url: str, seed: int = 5) -> ProposerSettings:
    ctx = Context(seed=seed, agent_base_url=url, agent_model="canned", agent_timeout_s=5)
    return ctx.proposer_settings()


@pytest.fixture
def task(tmp_path):
    return load_tiny(tmp_path)


@pytest.mark.parametrize("name", sorted(PROPOSERS))
def test_registered_name_is_the_class_name(name):
    assert proposer_class(name).name == name


@pytest.mark.parametrize("name", sorted(PROPOSERS))
def test_initial_configs_are_feasible_with_a_reason(name, task, agent_url):
    planned = make_proposer(name, settings(agent_url)).initial_configs(task)
    if planned is None:
        return
    for config, why in planned:
        assert config_problems(task, config) == []
        assert why.strip()


@pytest.mark.parametrize("name", sorted(PROPOSERS))
def test_proposals_fill_at_most_a_batch_of_the_tasks_stages(name, task, agent_url):
    proposer = make_proposer(name, settings(agent_url))
    archive, proposals, _ = drive(task, proposer, iterations=3, batch_size=3, strict=False)
    assert len(proposals) == 3
    for iteration, proposal in enumerate(proposals, start=1):
        before = Archive([t for t in archive if t.iteration < iteration])
        assert len(screen(task, proposal.configs, before).accepted) <= 3
        for config in proposal.configs:
            assert set(config.root) == set(task.stage_names)
    assert Archive(archive).executed(), "three iterations ran nothing"


@pytest.mark.parametrize("name", sorted(PROPOSERS))
def test_a_fresh_proposer_asked_again_proposes_the_same(name, task, agent_url):
    first = make_proposer(name, settings(agent_url))
    archive, proposals, _ = drive(task, first, iterations=2, batch_size=3, strict=False)
    earlier = Archive([t for t in archive if t.iteration <= 1])
    again = make_proposer(name, settings(agent_url)).propose(
        ProposalContext(task=task, archive=earlier, iteration=2, batch_size=3)
    )
    assert [c.key() for c in again.configs] == keys(proposals)[1]


@pytest.mark.parametrize("name", sorted(PROPOSERS))
def test_optional_hooks_return_their_declared_types(name, task, agent_url):
    proposer = make_proposer(name, settings(agent_url))
    archive, _, _ = drive(task, proposer, iterations=1, batch_size=3, strict=False)
    ctx = ProposalContext(task=task, archive=Archive(archive), iteration=2, batch_size=3)
    hooks = ((proposer.guidelines, Guidelines), (proposer.summarize_preferences, Preferences))
    for hook, declared in hooks:
        try:
            result = hook(ctx)
        except AgentError:  # an unusable agent answer: the node records it and goes on
            continue
        assert isinstance(result, declared | None)
