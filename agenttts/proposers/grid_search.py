"""Exhaustive grid search: every feasible configuration in a fixed order, one batch at a time.

Given enough trials it finds the optimum, which makes it the benchmark's reference; on a real space
it is the slowest method there is. The order is `space.iter_feasible` (stages in order, models as
listed, samples ascending), so the next batch is a function of the archive alone. Patience does not
stop it (`exhaustive`): it runs until the space is exhausted or another limit (iterations, trials,
target) is reached.
"""

from __future__ import annotations

from itertools import islice

from agenttts.environment.space import iter_feasible
from agenttts.proposers.base import Proposal, ProposalContext, Proposer


class GridProposer(Proposer):
    name = "grid"
    exhaustive = True

    def propose(self, ctx: ProposalContext) -> Proposal:
        done = ctx.archive.evaluated().keys()
        fresh = (c for c in iter_feasible(ctx.task) if c.key() not in done)
        configs = list(islice(fresh, ctx.batch_size))
        return Proposal(configs=configs, rationale="next configurations in enumeration order")
