"""The archive: every trial of a search, as it lives in the checkpointed graph state.

Trials are stored in state as plain JSON dicts (``Trial.model_dump(mode="json")``) so Studio shows
them and checkpoints need no custom serde; `Trial.model_validate` reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from agenttts.environment.executor import TrialResult
from agenttts.environment.task import Config, Task

Status = Literal["ok", "failed", "rejected"]
Phase = Literal["init", "search", "test"]


class Trial(TrialResult):
    """An executor's result plus the search's bookkeeping: who proposed it, when, and its fate."""

    trial_id: int
    iteration: int
    phase: Phase = "search"
    proposer: str
    status: Status
    split: str = "train"  # a rejected proposal never ran on any split
    score: float | None = None
    rationale: str | None = None

    @classmethod
    def from_result(
        cls,
        result: TrialResult,
        task: Task,
        *,
        trial_id: int,
        iteration: int,
        proposer: str,
        phase: Phase = "search",
        rationale: str | None = None,
    ) -> Trial:
        return cls(
            **dict(result),
            trial_id=trial_id,
            iteration=iteration,
            phase=phase,
            proposer=proposer,
            status="ok" if result.ok else "failed",
            score=result.metrics.get(task.main_metric) if result.ok else None,
            rationale=rationale,
        )

    @classmethod
    def rejected(
        cls, config: Config, reason: str, *, trial_id: int, iteration: int, proposer: str
    ) -> Trial:
        """A proposal that was screened out; kept so the agent sees why next time."""
        return cls(
            trial_id=trial_id,
            iteration=iteration,
            proposer=proposer,
            config=config,
            status="rejected",
            error=reason,
        )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load_trials(raw: Iterable[dict[str, Any] | Trial]) -> list[Trial]:
    return [t if isinstance(t, Trial) else Trial.model_validate(t) for t in raw]


def scored(trials: Sequence[Trial]) -> list[Trial]:
    """Executed training trials with a score (init and search phases)."""
    return [t for t in trials if t.status == "ok" and t.score is not None and t.phase != "test"]


def best_trial(trials: Sequence[Trial]) -> Trial | None:
    """Highest score; ties go to the cheaper configuration, then the earlier trial."""
    pool = scored(trials)
    if not pool:
        return None
    return max(pool, key=lambda t: (t.score, -t.nominal_cost, -t.trial_id))


def best_so_far(trials: Sequence[Trial]) -> list[float | None]:
    """The best score after each executed trial (rejected proposals are not trials)."""
    out: list[float | None] = []
    best: float | None = None
    for t in trials:
        if t.status == "rejected" or t.phase == "test":
            continue
        if t.score is not None and (best is None or t.score > best):
            best = t.score
        out.append(best)
    return out


def archived_keys(trials: Sequence[Trial]) -> set[str]:
    """Configurations already executed (ok or failed): a duplicate of these is not re-run."""
    return {t.config.key() for t in trials if t.status != "rejected" and t.phase != "test"}
