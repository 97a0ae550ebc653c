"""Random search: configurations drawn uniformly from the feasible set (the paper's first baseline).

Uniform over *feasible* configurations, not over the box: every stage's (model, samples) option is
drawn uniformly and over-budget draws are thrown away, which leaves the feasible set uniformly
covered. The generator is seeded by (seed, iteration), so a resumed run proposes the same batch.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection

from agenttts.archive import archived_keys
from agenttts.environment.task import Config, Task
from agenttts.proposers.base import Proposal, ProposalContext, Proposer

#: Below this many unexplored feasible configurations, enumerate them instead of rejecting draws.
ENUMERATE_BELOW = 2_000
#: Draws per wanted configuration before falling back to enumeration.
MAX_DRAWS_PER_CONFIG = 2_000


def derived_seed(*parts: object) -> int:
    """A 32-bit seed from any parts (stable across processes, unlike `hash`)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def sample_feasible(
    task: Task, rng: random.Random, k: int, exclude: Collection[str] = ()
) -> list[Config]:
    """Up to `k` distinct feasible configurations, uniformly, none whose key is in `exclude`."""
    taken = set(exclude)
    if task.count_feasible() - len(taken) <= ENUMERATE_BELOW:
        rest = [c for c in task.iter_feasible() if c.key() not in taken]
        return rng.sample(rest, min(k, len(rest)))
    options = [task.stage_options(s) for s in task.stages]
    out: list[Config] = []
    for _ in range(k * MAX_DRAWS_PER_CONFIG):
        if len(out) == k:
            return out
        picks = [rng.choice(o) for o in options]
        if sum(c for *_, c in picks) > task.budget + 1e-9:
            continue
        config = Config.of({s.name: p[:2] for s, p in zip(task.stages, picks, strict=True)})
        if config.key() not in taken:
            taken.add(config.key())
            out.append(config)
    rest = [c for c in task.iter_feasible() if c.key() not in taken]
    return out + rng.sample(rest, min(k - len(out), len(rest)))


class RandomProposer(Proposer):
    name = "random"

    def propose(self, ctx: ProposalContext) -> Proposal:
        rng = random.Random(derived_seed(self.name, self.settings.seed, ctx.iteration))
        configs = sample_feasible(ctx.task, rng, ctx.batch_size, archived_keys(ctx.archive))
        return Proposal(configs=configs, rationale="uniform draws from the feasible configurations")
