"""Bayesian optimisation through Optuna's samplers (TPE and GP), with the budget as a constraint.

Per stage the space is a categorical model and an integer sample count. Each call rebuilds an
in-memory study from the archive (`add_trial`), so the proposal is a function of the archive, the
seed and the iteration, and a resumed run asks exactly what an uninterrupted one would. A batch is
drawn with a constant liar: every asked configuration is told the worst score seen, so the next ask
moves elsewhere. Over-budget asks are told as constraint violations (cost - budget > 0) and asked
again; duplicates are asked again too; when the sampler keeps repeating itself the batch is
completed with uniform feasible draws (counted in the rationale).
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Sequence
from typing import Any, ClassVar

from agenttts.archive import Trial, archived_keys
from agenttts.environment.task import Config, Task
from agenttts.proposers.base import Proposal, ProposalContext, Proposer
from agenttts.proposers.random_search import derived_seed, sample_feasible

#: Asks per wanted configuration before the rest of the batch is drawn uniformly.
ASKS_PER_CONFIG = 10
_CONSTRAINTS_KEY = "constraints"  # where Optuna's samplers read a trial's constraint values
_BUDGET = "budget"


def _space(task: Task) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    out: dict[str, Any] = {}
    for s in task.stages:
        out[f"{s.name}.model"] = CategoricalDistribution(s.model_names)
        out[f"{s.name}.samples"] = IntDistribution(1, s.max_samples)
    return out


def _params(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stage, sc in config.items():
        out[f"{stage}.model"] = sc.model
        out[f"{stage}.samples"] = sc.samples
    return out


def _config(task: Task, params: dict[str, Any]) -> Config:
    """Decode an ask; a non-LLM choice (a retriever) runs once whatever S the sampler drew."""
    out = {}
    for s in task.stages:
        model = params[f"{s.name}.model"]
        samples = int(params[f"{s.name}.samples"]) if s.model(model).kind == "llm" else 1
        out[s.name] = (model, samples)
    return Config.of(out)


def _in_space(task: Task, config: Config) -> bool:
    """Stages, models and sample ranges the task knows (over budget is allowed: a violation)."""
    if set(config.root) != set(task.stage_names):
        return False
    return all(
        config[s.name].model in s.model_names and 1 <= config[s.name].samples <= s.max_samples
        for s in task.stages
    )


def _violation(task: Task, config: Config) -> float:
    return task.cost(config) - task.budget


class OptunaProposer(Proposer):
    """Shared ask/tell loop; subclasses choose the sampler."""

    name: ClassVar[str]

    def make_sampler(self, seed: int, constraints: Any) -> Any:
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

        def constraints(trial: Any) -> Sequence[float]:
            return (_violation(task, _config(task, trial.params)),)

        # Optuna 5 reads constraints a trial carries (set_constraint); Optuna 4 asks a function.
        modern = hasattr(optuna.trial.Trial, "set_constraint")
        study = optuna.create_study(
            direction="maximize", sampler=self.make_sampler(seed, None if modern else constraints)
        )
        space = _space(task)
        history = [t for t in ctx.archive if t.phase != "test" and _in_space(task, t.config)]
        scores = [t.score for t in history if t.status == "ok" and t.score is not None]
        floor = min(scores, default=0.0)
        for t in history:
            study.add_trial(self._frozen(task, t, space, floor, modern))

        taken = archived_keys(ctx.archive)
        configs: list[Config] = []
        for _ in range(ctx.batch_size * ASKS_PER_CONFIG):
            if len(configs) == ctx.batch_size:
                break
            trial = study.ask(space)
            config = _config(task, trial.params)
            over = _violation(task, config)
            if modern:
                trial.set_constraint(_BUDGET, over)
            study.tell(trial, floor)  # the liar: asked points look poor until really run
            if over <= 1e-9 and config.key() not in taken and not task.config_problems(config):
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
    def _frozen(task: Task, t: Trial, space: dict[str, Any], floor: float, modern: bool) -> Any:
        import optuna

        params, dists = _params(t.config), space
        ok = t.status == "ok" and t.score is not None
        over = _violation(task, t.config)
        return optuna.trial.create_trial(
            params=params,
            distributions=dists,
            value=float(t.score) if ok else floor,
            system_attrs=(
                {f"{_CONSTRAINTS_KEY}:{_BUDGET}": over} if modern else {_CONSTRAINTS_KEY: (over,)}
            ),
        )


class TPEProposer(OptunaProposer):
    name = "tpe"

    def make_sampler(self, seed: int, constraints: Any) -> Any:
        import optuna

        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            constraints_func=constraints,
        )


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

    def make_sampler(self, seed: int, constraints: Any) -> Any:
        import optuna

        return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints)
