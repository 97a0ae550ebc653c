"""What the LLM baselines (AgentHPO, MLCopilot) share: one structured ask for a batch of configs.

The answer schema, its conversion and the per-call seed are the AgentTTS agent's own, so every LLM
method is parsed, re-asked and screened by the same rules; only the prompts differ. With
`hybrid_agent` on (the default) the batch is repaired and topped up as the agent's is
(`agenttts.proposers.hybrid`); their prompts stay their papers'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from agenttts.environment.space import derived_seed
from agenttts.llm import AgentClient, Message
from agenttts.proposers.agenttts_agent import ask_for_proposal
from agenttts.proposers.base import Proposal, ProposalContext, Proposer, ProposerSettings
from agenttts.proposers.hybrid import complete_batch

ANSWER_FORMAT = (
    'Answer with one JSON object only: {"configs": [{"stages": [{"stage": STAGE, "model": MODEL, '
    '"samples": S}, ...]}, ...], "rationale": "..."} with every stage in every configuration.'
)


class LLMBaseline(Proposer):
    """An LLM proposer whose subclass writes the prompt; the asking and parsing are shared."""

    name: ClassVar[str]
    uses_llm = True

    def __init__(
        self, settings: ProposerSettings | None = None, *, client: AgentClient | None = None
    ):
        super().__init__(settings)
        self.client = client or AgentClient(self.settings.endpoint())

    def messages(self, ctx: ProposalContext) -> Sequence[Message]:
        raise NotImplementedError

    def propose(self, ctx: ProposalContext) -> Proposal:
        proposal = ask_for_proposal(
            self.client,
            self.messages(ctx),
            ctx.batch_size,
            seed=derived_seed(self.settings.seed, ctx.iteration, self.name, crc32=True),
        )
        return complete_batch(proposal, ctx, self.settings) if self.settings.hybrid else proposal
