"""The insight proposer: preferences (insight 1), moves and the response surface (insights 2 and 3)
put together into one batch, best first."""

from __future__ import annotations

from agenttts.archive import Archive
from agenttts.derived import held_by
from agenttts.environment.emulated_cache import draws_new, hold
from agenttts.environment.space import Config, config_cost, config_problems, seeded_rng
from agenttts.environment.task import Task
from agenttts.proposers.base import (
    Guidelines,
    Preferences,
    Proposal,
    ProposalContext,
    Proposer,
)
from agenttts.proposers.insight.moves import (
    candidate_moves,
    combined_start,
    fill_moves,
    interleave,
    joint_scales,
    line_scores,
    model_probes,
    neighbourhood,
    rebalance_moves,
    sample_probes,
    scores_flat,
    start_configs,
    top_centers,
)
from agenttts.proposers.insight.preferences import (
    model_options,
    preference_configs,
    preferred_models,
    progressive_configs,
)
from agenttts.proposers.insight.surface import surrogate_moves

#: Octaves by which a seed may move the step of a rebalance or joint scaling (0.5: x0.71..x1.41).
STEP_SPREAD = 0.5


class InsightProposer(Proposer):
    """Insights 1-3 as code (see the package). With `ProposerSettings.progressive` (on unless
    free evaluations are off) sampling grows only where it still helps:

    - The initialisation draws the paper's lines (one stage's model varied, the others on their
      largest model with one sample) progressively (`preferences.progressive_configs`): a line
      whose samples are worth saving (its stage costs at least `MATERIAL_SHARE` of the budget at
      the paper's count) starts at the fewest samples, down to an eighth of the paper's count,
      at which a doubling repays no more (prompt share, downstream stages whose input changed)
      than its new samples cost, and doubles round by round, each round paying only the new
      sample indexes; the smaller counts come back free. A line stops at the paper's count,
      once its last doubling gained nothing (its curve peaked), or once another model of the
      stage scores more at no more cost than this one could reach with another doubling (a
      concave curve in log S gains at most what its last doubling did, plus one item): models
      that cannot win are not sampled to the maximum.
    - Cost-aware proposals (`emulated_cache.new_cost`, the one answer to what a configuration
      would newly cost given the archive): each initial round runs the most scored
      configurations per unit of new cost first (a last-stage line answers its whole curve);
      a move whose samples the archive or the batch before it already holds is not run (it
      comes back as a free evaluation). Moves of equal rank keep the seed's order: putting the
      cheaper first favours moves that keep the held upstream stages, and on sim-taskbench
      (20 seeds) reached the optimum on 13 seeds against 15 without.

    Off (`progressive=False`; with `free_evaluations` off, a run's default), this is the
    paper's search: every line at once at the largest count its budget share allows."""

    name = "insight"

    def initial_configs(self, task: Task) -> list[tuple[Config, str]] | None:
        if 1 in self.settings.no_insights:
            return None
        if self.settings.progressive:
            return progressive_configs(task, Archive([]))
        return preference_configs(task)

    def more_initial(self, task: Task, archive: Archive) -> list[tuple[Config, str]]:
        if 1 in self.settings.no_insights or not self.settings.progressive:
            return []
        return progressive_configs(task, archive)

    def _prefs(self, ctx: ProposalContext) -> dict[str, str]:
        if 1 in self.settings.no_insights:
            return {}
        valid = {
            s: m
            for s, m in (ctx.preferences or {}).items()
            if s in ctx.task.stage_names and m in ctx.task.stage(s).model_names
        }
        if len(valid) == len(ctx.task.stages):
            return valid
        computed, _ = preferred_models(ctx.task, ctx.archive)
        return {**computed, **valid}

    def summarize_preferences(self, ctx: ProposalContext) -> Preferences | None:
        if 1 in self.settings.no_insights:
            return None
        prefs, notes = preferred_models(ctx.task, ctx.archive)
        return Preferences(models=prefs, notes=notes) if prefs else None

    def _plan(self, ctx: ProposalContext) -> tuple[Config, Config, bool, dict[str, str]]:
        """(start, incumbent, flat, preferences): the incumbent is the best trial so far, the
        initial ones included (they are measured configurations too)."""
        task, trials = ctx.task, ctx.archive
        prefs = self._prefs(ctx)
        start = combined_start(task, prefs)
        best = trials.best()
        center = best.config if best is not None else start
        return start, center, scores_flat(task, trials), prefs

    def guidelines(self, ctx: ProposalContext) -> Guidelines:
        _, center, flat, prefs = self._plan(ctx)
        task = ctx.task
        lines = [
            "Preferred models (insight 1): "
            + (", ".join(f"{s}={m}" for s, m in prefs.items()) or "none (searched by swaps)"),
            f"Incumbent: {center.short()} "
            f"(cost {config_cost(task, center):.1f} of {task.budget:g})",
        ]
        for stage in ctx.task.stages:
            probes, closed = sample_probes(
                ctx.task, ctx.archive, center, stage, peaked=2 not in self.settings.no_insights
            )
            tried = sorted(line_scores(ctx.task, ctx.archive, center, stage.name).items())
            seen = ", ".join(f"S={s}:{v:.3f}" for s, v in tried) or "nothing yet"
            state = "bracket closed" if closed else f"next S {probes}"
            lines.append(f"{stage.name} on {center[stage.name].model}: {seen}; {state}")
        if flat:
            lines.append(
                "Scores vary little or stopped improving: explore model swaps and wider jumps."
            )
        return Guidelines(text="\n".join(lines))

    def propose(self, ctx: ProposalContext) -> Proposal:
        """The batch, best first: the response surface's peaks, then the moves around the
        incumbents, round by round (a budget rebalance and a joint scaling, filling the budget,
        per-stage bisection and trades, the other models below where they ran, swaps), then
        seeded exploration. Moves of equal rank come in the seed's order, so runs with
        different seeds are independent samples."""
        task, trials = ctx.task, ctx.archive
        _, center, flat, prefs = self._plan(ctx)
        no = self.settings.no_insights
        peaked, trade = 2 not in no, 3 not in no
        rng = seeded_rng("insight", self.settings.seed, ctx.iteration)
        seen = trials.keys()  # executed and rejected alike: neither is proposed again
        picked: list[Config] = []
        reasons: list[str] = []
        cost_aware = self.settings.progressive
        held = held_by(task, trials) if cost_aware else {}

        def take(cfg: Config, why: str) -> None:
            if len(picked) >= ctx.batch_size or cfg.key() in seen or config_problems(task, cfg):
                return
            if cost_aware and not draws_new(task, held, cfg):
                return  # the batch before it holds its samples: a free evaluation once it ran
            seen.add(cfg.key())
            picked.append(cfg)
            reasons.append(why)
            if cost_aware:
                hold(task, held, cfg)

        starts = start_configs(task, model_options(task, trials, prefs))
        centers = top_centers(task, trials, rng) or starts
        centers += [c for c in starts if c not in centers]  # insight 1's combinations
        if peaked:
            for move in surrogate_moves(task, trials, centers[:2], trade):
                take(move.config, move.why)

        def jit(*factors: float) -> tuple[float, ...]:
            """How far a rebalance or a joint scaling steps is a rule of thumb (about a half,
            then a quarter): each seed steps its own way, within `STEP_SPREAD` octaves of it."""
            return tuple(f * 2 ** rng.uniform(-STEP_SPREAD, STEP_SPREAD) for f in factors)

        per_center = [
            interleave(
                rebalance_moves(task, c, trade, jit(0.5)),
                joint_scales(task, c, peaked, jit(0.5, 0.25)),
            )
            + fill_moves(task, c, trade)
            + candidate_moves(task, trials, c, prefs, no, flat, rng)
            + (model_probes(task, trials, c, trade) if k == 0 and 1 not in no else [])
            + joint_scales(task, c, peaked, factors=jit(0.71))
            for k, c in enumerate(centers)
        ]
        for k in range(max((len(m) for m in per_center), default=0)):
            tier = [moves[k] for moves in per_center if k < len(moves)]
            rng.shuffle(tier)  # equally ranked moves of different incumbents: the seed's order
            for move in tier:
                take(move.config, move.why)
        for cfg in neighbourhood(task, center, rng):
            if len(picked) >= ctx.batch_size:
                break
            take(cfg, "exploration near the incumbent")
        rationale = f"around {center.short()}: " + "; ".join(reasons)
        notes = {
            c.key(): f"around {center.short()}: {why}"
            for c, why in zip(picked, reasons, strict=True)
        }
        return Proposal(configs=picked, rationale=rationale, notes=notes)
