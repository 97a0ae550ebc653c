"""What the LLM baselines (AgentHPO, MLCopilot) share: one structured ask for a batch of configs.

The answer schema, its conversion and the per-call seed are the AgentTTS agent's own, so every LLM
method is parsed, re-asked and screened by the same rules; only the prompts differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from agenttts.llm import AgentClient, Message
from agenttts.proposers.agenttts_agent import ProposalAnswer, _seed, to_configs
from agenttts.proposers.base import Proposal, ProposalContext, Proposer, ProposerSettings

ANSWER_FORMAT = (
    'Answer with one JSON object only: {"configs": [{"stages": [{"stage": STAGE, "model": MODEL, '
    '"samples": S}, ...]}, ...], "rationale": "..."} with every stage in every configuration.'
)


class LLMBaseline(Proposer):
    """An LLM proposer whose subclass writes the prompt; the asking and parsing are shared."""

    name: ClassVar[str]

    def __init__(
        self, settings: ProposerSettings | None = None, *, client: AgentClient | None = None
    ):
        super().__init__(settings)
        self.client = client or AgentClient(self.settings.agent)

    def messages(self, ctx: ProposalContext) -> Sequence[Message]:
        raise NotImplementedError

    def propose(self, ctx: ProposalContext) -> Proposal:
        def usable(a: ProposalAnswer) -> list[str]:
            configs, errors = to_configs(a)
            return [] if configs else ["no usable configuration", *errors[:3]]

        answer = self.client.structured(
            self.messages(ctx),
            ProposalAnswer,
            check=usable,
            seed=_seed(self.settings.seed, ctx.iteration, self.name),
        )
        if answer.value is None:
            return Proposal(usage=answer.usage, errors=answer.errors)
        configs, dropped = to_configs(answer.value)
        limit = ctx.batch_size * 3
        if len(configs) > limit:
            dropped.append(f"{len(configs) - limit} configuration(s) beyond {limit} ignored")
        return Proposal(
            configs=configs[:limit],
            rationale=answer.value.rationale.strip(),
            usage=answer.usage,
            errors=[*answer.errors, *dropped],
        )
