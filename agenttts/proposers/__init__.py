"""Search methods by name, imported lazily (an LLM proposer pulls in langchain-openai)."""

from __future__ import annotations

import dataclasses
import re

from agenttts.plugins import load_named
from agenttts.prompting import INSIGHTS
from agenttts.proposers.base import Proposer, ProposerSettings

PROPOSERS: dict[str, str] = {
    "agenttts": "agenttts.proposers.agenttts_agent:AgentTTSProposer",
    "insight": "agenttts.proposers.insight:InsightProposer",
    "random": "agenttts.proposers.random_search:RandomProposer",
    "tpe": "agenttts.proposers.optuna_bo:TPEProposer",
    "gp": "agenttts.proposers.optuna_bo:GPProposer",
    "agenthpo": "agenttts.proposers.agenthpo:AgentHPOProposer",
    "mlcopilot": "agenttts.proposers.mlcopilot:MLCopilotProposer",
    "grid": "agenttts.proposers.grid_search:GridProposer",
}


_VARIANT = re.compile(rf"^(?P<base>.+)-no(?P<off>[{''.join(map(str, INSIGHTS))}]+)$")


def split_variant(name: str) -> tuple[str, frozenset[int]]:
    """Ablation variants by name: 'insight-no2' -> ('insight', {2}), 'agenttts-no13' ->
    ('agenttts', {1, 3}); any other name is returned with no insight switched off."""
    match = _VARIANT.match(name)
    if match is None or match["base"] not in PROPOSERS:
        return name, frozenset()
    return match["base"], frozenset(int(d) for d in match["off"])


def proposer_class(name: str) -> type[Proposer]:
    return load_named(PROPOSERS, split_variant(name)[0], "proposer")


def llm_proposers() -> frozenset[str]:
    """The registered proposers that ask an LLM agent (`Proposer.uses_llm`)."""
    return frozenset(name for name in PROPOSERS if proposer_class(name).uses_llm)


def make_proposer(name: str, settings: ProposerSettings | None = None) -> Proposer:
    """A proposer by name; a variant name (see `split_variant`) adds to `no_insights`."""
    base, off = split_variant(name)
    if off:
        settings = settings or ProposerSettings()
        settings = dataclasses.replace(settings, no_insights=settings.no_insights | off)
    return proposer_class(base)(settings)
