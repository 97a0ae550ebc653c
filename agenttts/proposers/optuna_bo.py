"""Bayesian optimisation through Optuna's samplers (TPE and GP), with the budget as a constraint.

Per stage the space is a categorical model and an integer sample count (where the stage allows a
set of counts, the integer is the position in that set: ordered, and never between two counts
the table was measured at). Each call rebuilds an
in-memory study from the archive (`add_trial`), so the proposal is a function of the archive, the
seed and the iteration, and a resumed run asks exactly what an uninterrupted one would. A batch is
drawn with a constant liar: every asked configuration is told the worst score seen, so the next ask
moves elsewhere. Over-budget asks are told as constraint violations (cost - budget > 0) and asked
again; duplicates are asked again too; when the sampler keeps repeating itself the batch is
completed with uniform feasible draws (counted in the rationale). A trial dropped from a race
(`agenttts.racing`) is told as Optuna's pruned trial with its partial score as the last report;
a free evaluation (`agenttts.derived`) as a completed trial, like the one whose samples answered
it, and never asked for again.
"""

from __future__ import annotations

import importlib.util
import random
from typing import Any, ClassVar

from agenttts.archive import Archive, Trial
from agenttts.environment.space import (
    Config,
    allows_samples,
    config_cost,
    config_problems,
    derived_seed,
    sample_feasible,
)
from agenttts.environment.task import Task
from agenttts.proposers.base import Proposal, ProposalContext, Proposer

#: Asks per wanted configuration before the rest of the batch is drawn uniformly.
ASKS_PER_CONFIG = 10
#: The constraint's name on every trial (Optuna's `constraints=` / `set_constraint`).
_BUDGET = "budget"


def _space(task: Task) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    out: dict[str, Any] = {}
    for s in task.stages:
        out[f"{s.name}.model"] = CategoricalDistribution(s.model_names)
        out[f"{s.name}.samples"] = (
            IntDistribution(0, len(s.samples) - 1)
            if s.samples
            else IntDistribution(1, s.max_samples)
        )
    return out


def _params(task: Task, config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in task.stages:
        sc = config[s.name]
        out[f"{s.name}.model"] = sc.model
        out[f"{s.name}.samples"] = s.samples.index(sc.samples) if s.samples else sc.samples
    return out


def _config(task: Task, params: dict[str, Any]) -> Config:
    """Decode an ask; a non-LLM choice (a retriever) runs once whatever S the sampler drew."""
    out = {}
    for s in task.stages:
        model = params[f"{s.name}.model"]
        drawn = int(params[f"{s.name}.samples"])
        samples = s.samples[drawn] if s.samples else drawn
        out[s.name] = (model, samples if s.model(model).kind == "llm" else 1)
    return Config.of(out)


def _in_space(task: Task, config: Config) -> bool:
    """Stages, models and sample ranges the task knows (over budget is allowed: a violation)."""
    if set(config.root) != set(task.stage_names):
        return False
    return all(
        config[s.name].model in s.model_names and allows_samples(s, config[s.name].samples)
        for s in task.stages
    )


def _violation(task: Task, config: Config) -> float:
    return config_cost(task, config) - task.budget


class OptunaProposer(Proposer):
    """Shared ask/tell loop; subclasses choose the sampler."""

    name: ClassVar[str]

    def make_sampler(self, seed: int) -> Any:
        """The sampler; it reads the budget constraint each trial carries."""
        raise NotImplementedError

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this method cannot run here (a missing dependency), checked before any compute."""
        return None

    def propose(self, ctx: ProposalContext) -> Proposal:
        problem = self.unavailable()
        if problem:
            raise RuntimeError(problem)
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        task = ctx.task
        seed = derived_seed(self.name, self.settings.seed, ctx.iteration)
        study = optuna.create_study(direction="maximize", sampler=self.make_sampler(seed))
        space = _space(task)
        history = Archive(t for t in ctx.archive if _in_space(task, t.config))
        floor = min(history.scores(), default=0.0)
        for t in history:
            study.add_trial(self._frozen(task, t, space, floor))

        taken = ctx.archive.evaluated().keys()
        configs: list[Config] = []
        for _ in range(ctx.batch_size * ASKS_PER_CONFIG):
            if len(configs) == ctx.batch_size:
                break
            trial = study.ask(space)
            config = _config(task, trial.params)
            over = _violation(task, config)
            trial.set_constraint(_BUDGET, over)
            study.tell(trial, floor)  # the liar: asked points look poor until really run
            if over <= 1e-9 and config.key() not in taken and not config_problems(task, config):
                taken.add(config.key())
                configs.append(config)
        topped = ctx.batch_size - len(configs)
        if topped:
            rng = random.Random(seed)
            configs += sample_feasible(task, rng, topped, taken)
        why = f"{self.name} (Optuna) asks within the budget constraint"
        if topped:
            why += f"; {topped} uniform draw(s) where the sampler repeated itself"
        return Proposal(configs=configs, rationale=why)

    @staticmethod
    def _frozen(task: Task, t: Trial, space: dict[str, Any], floor: float) -> Any:
        import optuna

        score = t.score if t.status == "ok" else None  # failed or rejected: told the floor
        if score is not None and t.fidelity < 1.0:
            # Dropped from a race: Optuna's own multi-fidelity record, a pruned trial whose last
            # report is its partial score at its items seen (TPE ranks it below complete ones).
            return optuna.trial.create_trial(
                params=_params(task, t.config),
                distributions=space,
                state=optuna.trial.TrialState.PRUNED,
                intermediate_values={t.items_evaluated: float(score)},
                constraints={_BUDGET: _violation(task, t.config)},
            )
        return optuna.trial.create_trial(
            params=_params(task, t.config),
            distributions=space,
            value=floor if score is None else float(score),
            constraints={_BUDGET: _violation(task, t.config)},
        )


class TPEProposer(OptunaProposer):
    name = "tpe"

    def make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=seed, multivariate=True)


class GPProposer(OptunaProposer):
    name = "gp"

    @classmethod
    def unavailable(cls) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return (
                "the gp proposer needs PyTorch (Optuna's GPSampler is built on it), which is not "
                "installed here; install torch (the `serve` extra brings it) or use tpe"
            )
        return None

    def make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.GPSampler(seed=seed)
