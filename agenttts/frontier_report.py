"""The accuracy-compute frontier of a thread, as the report, `show` and the bench present it.

`frontier_summary` reads a thread's state (any thread: a one-budget search has a front too): its
budgets, each budget's optimum with its test score, and the Pareto front of everything evaluated
(`Archive.front`). `front_rows` is its table (`show`, the Markdown report); `frontier_figure`
plots it beside each stage's score against its sample count per model (`Archive.curves`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agenttts import frontier
from agenttts.archive import Archive

#: The paper's budget unit, as the axes and tables name it.
UNIT = "budget units per query (the paper's FLOPs formula)"


def thread_budgets(state: Mapping[str, Any], task: Any) -> list[float]:
    """The budgets a thread searched (its settings', else its task's); none when the task cannot
    be read and the settings name none."""
    asked = (state.get("settings") or {}).get("budgets") or ()
    if task is None:
        return sorted({float(b) for b in asked})
    return frontier.budgets_of(task, asked)


def test_scores(state: Mapping[str, Any]) -> dict[str, float | None]:
    """The test split's score of every configuration the final evaluation ran, by key."""
    from agenttts.environment.space import Config

    runs = [*(state.get("frontier_tests") or {}).values(), state.get("test_result")]
    return {
        Config.model_validate(t["config"]).key(): t.get("score")
        for t in runs
        if t and t.get("config")
    }


def frontier_summary(state: Mapping[str, Any], task: Any = None) -> dict[str, Any]:
    """JSON-plain: the budgets, each one's optimum (trial, configuration, cost, training and test
    score) and the front's points, cheapest first (each with the budgets it is the optimum of)."""
    archive = Archive.from_state(state)
    budgets = thread_budgets(state, task)
    tests = test_scores(state)
    optima = frontier.bests(archive, budgets) if budgets else {}
    of: dict[int, list[float]] = {}
    for b, t in optima.items():
        if t is not None:
            of.setdefault(t.trial_id, []).append(b)

    def point(t: Any) -> dict[str, Any]:
        return {
            "trial_id": t.trial_id,
            "derived_from": t.derived_from,
            "config": t.config.short(),
            "nominal_cost": t.nominal_cost,
            "score": t.score,
            "test_score": tests.get(t.config.key()),
            "optimum_of": of.get(t.trial_id, []),
        }

    return {
        "budgets": budgets,
        "optima": [
            {"budget": b, **(point(t) if t is not None else {"trial_id": None})}
            for b, t in optima.items()
        ],
        "front": [point(t) for t in archive.front()],
    }


FRONT_HEADER = ["cost", "train", "test", "trial", "configuration", "best at budget"]


def front_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """One row per point of the front, cheapest first; a derived point names its source."""

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    rows = []
    for p in summary["front"]:
        trial = str(p["trial_id"])
        if p.get("derived_from") is not None:
            trial += f" (free, from {p['derived_from']})"
        rows.append(
            [
                num(p["nominal_cost"], ".2f"),
                num(p["score"], ".4g"),
                num(p.get("test_score"), ".4g"),
                trial,
                p["config"],
                ", ".join(frontier.label(b) for b in p["optimum_of"]),
            ]
        )
    return rows


def frontier_figure(
    summary: Mapping[str, Any], archive: Archive, *, title: str, metric: str | None = None
) -> Any:
    """Left: every evaluated configuration's training score against its cost, the front (train
    and, where run, test), each budget as a line and its optimum marked. Right: per stage, the
    score against the sample count for each model, the other stages as in that model's best
    trial (`Archive.curves`). (Agg backend: no display needed.)"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = archive.curves()
    stages = list(dict.fromkeys(c.stage for c in curves))
    fig, axes = plt.subplots(
        1, 1 + max(1, len(stages)), figsize=(6 + 4 * max(1, len(stages)), 4.5), squeeze=False
    )
    ax, *right = axes[0]
    fig.suptitle(title)
    label = metric or "score"
    points = [(t.nominal_cost, t.score) for t in archive.scored().full() if t.score is not None]
    if not points:
        ax.text(0.5, 0.5, "no successful trial", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        ax.scatter(*zip(*points, strict=True), s=8, color="lightgrey", label="evaluated")
        front = summary["front"]
        xs = [p["nominal_cost"] for p in front]
        ax.step(
            xs, [p["score"] for p in front], where="post", marker="o", ms=3, label="front (train)"
        )
        tested = [
            (p["nominal_cost"], p["test_score"]) for p in front if p["test_score"] is not None
        ]
        if tested:
            ax.scatter(*zip(*tested, strict=True), marker="s", s=30, color="C1", label="test")
        for i, o in enumerate(summary["optima"]):
            ax.axvline(o["budget"], color="grey", linestyle=":", lw=1)
            if o.get("trial_id") is not None:
                ax.scatter(
                    [o["nominal_cost"]],
                    [o["score"]],
                    marker="*",
                    s=160,
                    color="C3",
                    zorder=3,
                    label="optimum per budget" if i == 0 else None,
                )
                ax.annotate(
                    f"B={frontier.label(o['budget'])}",
                    (o["nominal_cost"], o["score"]),
                    textcoords="offset points",
                    xytext=(4, -12),
                    fontsize="small",
                )
        ax.set_xlabel(f"cost: {UNIT}")
        ax.set_ylabel(label)
        ax.legend(loc="lower right", fontsize="small")
    if not stages:
        right[0].set_axis_off()
    for sub, stage in zip(right, stages, strict=False):
        for c in (c for c in curves if c.stage == stage):
            s = sorted(c.scores)
            sub.plot(s, [c.scores[k] for k in s], marker=".", label=c.model)
        sub.set_title(f"stage {stage}: {label} by samples")
        sub.set_xlabel("samples S")
        sub.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_frontier(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=100)
    plt.close(figure)
