"""Exhaustive grid search: every feasible configuration in a fixed order, one batch at a time.

Given enough trials it finds the optimum, which makes it the benchmark's reference; on a real space
it is the slowest method there is. The order is `Task.iter_feasible()` (stages in order, models as
listed, samples ascending), so the next batch is a function of the archive alone.
"""

from __future__ import annotations

from itertools import islice

from agenttts.archive import archived_keys
from agenttts.proposers.base import Proposal, ProposalContext, Proposer


class GridProposer(Proposer):
    name = "grid"

    def propose(self, ctx: ProposalContext) -> Proposal:
        done = archived_keys(ctx.archive)
        fresh = (c for c in ctx.task.iter_feasible() if c.key() not in done)
        configs = list(islice(fresh, ctx.batch_size))
        return Proposal(configs=configs, rationale="next configurations in enumeration order")
