"""Search methods by name, imported lazily (an LLM proposer pulls in langchain-openai)."""

from __future__ import annotations

from importlib import import_module

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


class UnknownProposer(ValueError):
    pass


def proposer_class(name: str) -> type[Proposer]:
    try:
        target = PROPOSERS[name]
    except KeyError:
        raise UnknownProposer(f"unknown proposer {name!r} (known: {', '.join(PROPOSERS)})") from None
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def make_proposer(name: str, settings: ProposerSettings | None = None) -> Proposer:
    return proposer_class(name)(settings)
