"""The small interface every search method implements (modelled on Optuna's samplers).

A proposer must be a pure function of its context (task, archive, iteration, seed): the graph may be
killed and resumed at any point, and a resumed run must propose exactly what an uninterrupted one
would. Keep no state between calls that the archive cannot rebuild.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from agenttts.archive import Trial
from agenttts.environment.task import Config, Task


class AgentEndpoint(BaseModel):
    """Where an LLM proposer's agent lives; the key is read from `api_key_env` at call time."""

    model: str = "smollm2"
    base_url: str = "embedded"
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: float = 0.9
    max_tokens: int = 1024
    timeout_s: float = 120.0
    max_parse_retries: int = 2


@dataclass(frozen=True)
class ProposerSettings:
    seed: int = 0
    no_insights: frozenset[int] = frozenset()
    prompts_dir: Path | None = None
    agent: AgentEndpoint = field(default_factory=AgentEndpoint)


class AgentUsage(BaseModel):
    """What the search itself spent on its agent (not the environment)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0

    def __add__(self, other: AgentUsage) -> AgentUsage:
        return AgentUsage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            failures=self.failures + other.failures,
        )


@dataclass
class ProposalContext:
    task: Task
    archive: Sequence[Trial]
    iteration: int
    batch_size: int
    guidelines: str | None = None
    preferences: dict[str, str] = field(default_factory=dict)
    preference_notes: str | None = None


class Proposal(BaseModel):
    configs: list[Config] = Field(default_factory=list)
    rationale: str = ""
    usage: AgentUsage = Field(default_factory=AgentUsage)
    errors: list[str] = Field(default_factory=list, description="e.g. unparseable agent answers")


class Preferences(BaseModel):
    """Insight 1: which model each stage should explore, with the reasoning."""

    models: dict[str, str]
    notes: str = ""
    usage: AgentUsage = Field(default_factory=AgentUsage)


class Guidelines(BaseModel):
    text: str
    usage: AgentUsage = Field(default_factory=AgentUsage)
    errors: list[str] = Field(default_factory=list)


class Proposer(ABC):
    name: ClassVar[str]
    #: Run the paper's initialisation by model preference before searching (insight 1).
    uses_preference_init: ClassVar[bool] = False

    def __init__(self, settings: ProposerSettings | None = None):
        self.settings = settings or ProposerSettings()

    def summarize_preferences(self, ctx: ProposalContext) -> Preferences | None:
        """After the initial trials: which model each stage prefers. None when not used."""
        return None

    def guidelines(self, ctx: ProposalContext) -> Guidelines | None:
        """Search guidelines distilled from the archive. None when the method has none."""
        return None

    @abstractmethod
    def propose(self, ctx: ProposalContext) -> Proposal:
        """Up to `ctx.batch_size` configurations; screening (budget, duplicates) happens after."""
