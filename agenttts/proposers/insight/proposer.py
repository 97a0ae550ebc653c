"""The insight proposer: preferences (insight 1), moves and the response surface (insights 2 and 3)
put together into one batch, best first."""

from __future__ import annotations

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
    joint_scales,
    line_scores,
    neighbourhood,
    sample_probes,
    scores_flat,
    start_configs,
    top_centers,
)
from agenttts.proposers.insight.preferences import (
    model_options,
    preference_configs,
    preferred_models,
)
from agenttts.proposers.insight.surface import surrogate_moves


class InsightProposer(Proposer):
    name = "insight"

    def initial_configs(self, task: Task) -> list[tuple[Config, str]] | None:
        return None if 1 in self.settings.no_insights else preference_configs(task)

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
        task, trials = ctx.task, ctx.archive
        prefs = self._prefs(ctx)
        start = combined_start(task, prefs)
        searched = trials.scored().in_phase("search")
        best = trials.best()
        center = best.config if (searched and best is not None) else start
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
        task, trials = ctx.task, ctx.archive
        _, center, flat, prefs = self._plan(ctx)
        no = self.settings.no_insights
        seen = trials.keys()  # executed and rejected alike: neither is proposed again
        picked: list[Config] = []
        reasons: list[str] = []

        def take(cfg: Config, why: str) -> None:
            if len(picked) >= ctx.batch_size or cfg.key() in seen or config_problems(task, cfg):
                return
            seen.add(cfg.key())
            picked.append(cfg)
            reasons.append(why)

        import os
        X = os.environ.get("H13X", "")
        starts = start_configs(task, model_options(task, trials, prefs))
        centers = top_centers(trials) or starts
        if "E1" in X and not trials.scored().in_phase("search"):
            best = trials.best()
            if best is not None:
                centers = [best.config] + [c for c in starts if c != best.config]
        if "E4" not in X:
          for cfg in starts:
            take(cfg, "preferred models combined at their budget shares")
        if 2 not in no:
            for move in surrogate_moves(task, trials, centers[:2], 3 not in no):
                take(move.config, move.why)
        if "E2" in X:
          per_center = [
            joint_scales(task, c, 2 not in no)
            + fill_moves(task, c, 3 not in no)
            + candidate_moves(task, trials, c, prefs, no, flat)
            + joint_scales(task, c, 2 not in no, factors=(0.71,))
            for c in centers
          ]
        else:
          per_center = [
            fill_moves(task, c, 3 not in no)
            + joint_scales(task, c, 2 not in no)
            + candidate_moves(task, trials, c, prefs, no, flat)
            + joint_scales(task, c, 2 not in no, factors=(0.71,))
            for c in centers
          ]
        for k in range(max((len(m) for m in per_center), default=0)):
            for moves in per_center:
                if k < len(moves):
                    take(moves[k].config, moves[k].why)
        if len(picked) < ctx.batch_size:
            # The proposer's own seeding (the joined text, not `derived_seed`): kept so that its
            # proposals stay what they were.
            rng = seeded_rng(self.settings.seed, ctx.iteration, center.key(), text_seed=True)
            for cfg in neighbourhood(task, center, rng):
                take(cfg, "exploration near the incumbent")
                if len(picked) >= ctx.batch_size:
                    break
        rationale = f"around {center.short()}: " + "; ".join(reasons)
        notes = {
            c.key(): f"around {center.short()}: {why}"
            for c, why in zip(picked, reasons, strict=True)
        }
        return Proposal(configs=picked, rationale=rationale, notes=notes)
