"""Random search: configurations drawn uniformly from the feasible set (the paper's first baseline).

The draws are `space.sample_feasible` (uniform over *feasible* configurations, not over the box),
seeded by (name, seed, iteration), so a resumed run proposes the same batch. Configurations
already evaluated, free evaluations (`agenttts.derived`) included, are not drawn again.
"""

from __future__ import annotations

from agenttts.environment.space import sample_feasible, seeded_rng
from agenttts.proposers.base import Proposal, ProposalContext, Proposer


class RandomProposer(Proposer):
    name = "random"

    def propose(self, ctx: ProposalContext) -> Proposal:
        rng = seeded_rng(self.name, self.settings.seed, ctx.iteration)
        configs = sample_feasible(ctx.task, rng, ctx.batch_size, ctx.archive.evaluated().keys())
        return Proposal(configs=configs, rationale="uniform draws from the feasible configurations")
