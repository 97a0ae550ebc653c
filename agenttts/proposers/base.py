"""The small interface every search method implements (modelled on Optuna's samplers).

A proposer must be a pure function of its context (task, archive, iteration, seed): the graph may be
killed and resumed at any point, and a resumed run must propose exactly what an uninterrupted one
would. Keep no state between calls that the archive cannot rebuild.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from agenttts.archive import Archive
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.errors import InputError
from agenttts.llm import AgentEndpoint, AgentUsage


@dataclass(frozen=True)
class ProposerSettings:
    seed: int = 0
    no_insights: frozenset[int] = frozenset()
    prompts_dir: Path | None = None
    #: None for the methods that ask no agent; a run sets it from its settings.
    agent: AgentEndpoint | None = None
    #: LLM proposers: repair, top up and inform the agent (`Context.hybrid_agent`, see
    #: `agenttts.proposers.hybrid`); False is the paper's agent exactly.
    hybrid: bool = True
    #: Sampling grows only where it still helps (`InsightProposer`): initial lines double from a
    #: small count, moves extend a stage's samples a doubling at a time; False is the paper's
    #: search (with `free_evaluations` off, which it follows in a run's settings).
    progressive: bool = True

    def endpoint(self) -> AgentEndpoint:
        """The agent an LLM proposer asks; InputError when these settings name none."""
        if self.agent is None:
            raise InputError(
                "this proposer asks an agent, but its settings name no agent endpoint "
                "(build them with Context.proposer_settings())"
            )
        return self.agent


@dataclass
class ProposalContext:
    task: Task
    archive: Archive
    iteration: int
    batch_size: int
    guidelines: str | None = None
    preferences: dict[str, str] = field(default_factory=dict)
    preference_notes: str | None = None


class Proposal(BaseModel):
    configs: list[Config] = Field(default_factory=list)
    rationale: str = ""
    notes: dict[str, str] = Field(
        default_factory=dict,
        description="per configuration (by key), its own rationale where the batch's does not "
        "fit it: repaired to fit the budget, topped up by another proposer, a move's reason",
    )
    usage: AgentUsage = Field(default_factory=AgentUsage)
    errors: list[str] = Field(default_factory=list, description="e.g. unparseable agent answers")
    reasoning: str = Field(default="", description="a reasoning agent's thinking before it")


class Preferences(BaseModel):
    """Insight 1: which model each stage should explore, with the reasoning."""

    models: dict[str, str]
    notes: str = ""
    usage: AgentUsage = Field(default_factory=AgentUsage)
    reasoning: str = ""  # a reasoning agent's thinking before its answer


class Guidelines(BaseModel):
    text: str
    usage: AgentUsage = Field(default_factory=AgentUsage)
    errors: list[str] = Field(default_factory=list)
    reasoning: str = ""  # a reasoning agent's thinking before its answer


class Proposer(ABC):
    """A search method. The graph calls, in order: `initial_configs` once (a list runs as the init
    phase, then `summarize_preferences` reads it), then per iteration `guidelines` and `propose`.
    Only `propose` is required."""

    name: ClassVar[str]
    #: Enumerates the whole feasible set, so patience does not stop it (a plateau early in the
    #: enumeration order says nothing about what is left); the other limits still do.
    exhaustive: ClassVar[bool] = False
    #: Asks an LLM agent (an endpoint, tokens, `hybrid_agent`): the bench runs it only when named
    #: and counts where its trials came from.
    uses_llm: ClassVar[bool] = False

    def __init__(self, settings: ProposerSettings | None = None):
        self.settings = settings or ProposerSettings()

    def initial_configs(self, task: Task) -> list[tuple[Config, str]] | None:
        """The trials to run before the search, each with why (the paper's initialisation by model
        preference, insight 1). None: no initial phase, and no `summarize_preferences` call."""
        return None

    def more_initial(self, task: Task, archive: Archive) -> list[tuple[Config, str]]:
        """After the initial trials (and after each round of these): more initial trials that
        what they scored calls for, each with why ([]: the initial phase is complete). A
        progressive initialisation draws its samples so, round by round."""
        return []

    def summarize_preferences(self, ctx: ProposalContext) -> Preferences | None:
        """After the initial trials: which model each stage prefers. None when not used."""
        return None

    def guidelines(self, ctx: ProposalContext) -> Guidelines | None:
        """Search guidelines distilled from the archive. None when the method has none."""
        return None

    @abstractmethod
    def propose(self, ctx: ProposalContext) -> Proposal:
        """At most `ctx.batch_size` configurations that would run; the screen after it rejects or
        drops the rest (invalid, over budget, duplicates) and records the rejections."""
