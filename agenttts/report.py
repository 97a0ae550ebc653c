"""The search's report: the best configuration with its train and test results, the guidelines and
the best-so-far trajectory, as JSON (for programs), Markdown (for people) and a PNG plot.

The frontier (each budget's optimum, the Pareto front, per-stage curves) is
`agenttts.frontier_report`'s. Built from the graph state alone, so a report can be rewritten for
any finished thread.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenttts import frontier
from agenttts.archive import Archive, Trial
from agenttts.environment.splits import NO_TEST_SPLIT, has_split
from agenttts.frontier_report import (
    FRONT_HEADER,
    UNIT,
    front_rows,
    frontier_figure,
    frontier_summary,
    plot_frontier,
)
from agenttts.proposers.hybrid import origin


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _metrics(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()) or "-"


#: Two scores closer than this many standard errors of their difference are within noise of
#: each other (about 95% two-sided for a normal difference).
NOISE_Z = 2.0
#: Built-in metrics that score each item 0 or 1: their mean reads as k/n items right.
ZERO_ONE_METRICS = frozenset({"em", "accuracy", "contains", "numeric", "pass@tests"})


@dataclass(frozen=True)
class ScoreNoise:
    """How much a trial's score could move on another sample of items: its standard error over
    the `items` it was evaluated on, and for a 0/1 metric the `right` ones (k of k/n)."""

    score: float
    se: float
    items: int
    right: int | None = None

    def text(self) -> str:
        head = f"{self.score:.4g}" if self.right is None else f"{self.right}/{self.items}"
        return f"{head} ±{self.se:.2g}"

    def within(self, best: ScoreNoise) -> bool:
        """Whether this score is within noise of `best`'s: closer than `NOISE_Z` standard errors
        of the difference (unpaired, so conservative for two trials on the same items)."""
        return best.score - self.score <= NOISE_Z * math.hypot(self.se, best.se)


def score_noise(t: Trial, metric: str | None = None) -> ScoreNoise | None:
    """The standard error of a trial's score over its items: from its per-item scores when it has
    them, else sqrt(p(1 - p) / n), exact for a 0/1 metric and an upper bound for any metric in
    [0, 1] (F1). None without a score, or for a score outside [0, 1] with no per-item scores."""
    n = t.items_evaluated
    if t.score is None or n <= 0:
        return None
    per_item = t.item_scores if t.item_scores and len(t.item_scores) == n else None
    if per_item is not None:
        se = statistics.stdev(per_item) / math.sqrt(n) if n > 1 else 0.0
        zero_one = all(v in (0.0, 1.0) for v in per_item)
    elif 0.0 <= t.score <= 1.0:
        se = math.sqrt(t.score * (1.0 - t.score) / n)
        zero_one = metric in ZERO_ONE_METRICS
    else:
        return None
    k = round(t.score * n)
    right = k if zero_one and abs(t.score * n - k) < 1e-6 else None
    return ScoreNoise(t.score, se, n, right)


def failed_items_note(details: Mapping[str, Any]) -> str:
    """Items of a trial that failed or timed out, with the first error ("" when none did)."""
    failed = details.get("failed_items")
    if not failed:
        return ""
    timed_out = details.get("timed_out_items")
    late = f", {timed_out} timed out" if timed_out else ""
    first = details.get("first_item_error")
    return f"{failed}/{details.get('items', '?')} items failed{late}; first: {first}"


def archive_rows(trials: Sequence[Trial], metric: str | None = None) -> list[list[str]]:
    """One row per trial: id, iteration, phase, status, configuration, score with its standard
    error (`score_noise`; `metric` names the main metric), how it stands against the best (the
    best, or within noise of it: "≈"), costs (the configuration's nominal and measured per
    query; the search's: budget units x items), note (failed items, repairs, a partial race)."""
    best = Archive(trials).best()
    top = score_noise(best, metric) if best is not None else None
    rows = []
    for t in trials:
        if t.derived_from is not None:  # many: `derived_line` sums them up
            continue
        note = "; ".join(x for x in (t.error, failed_items_note(t.details)) if x)
        made_by = origin(t.rationale)
        if made_by:  # not the agent's proposal as it stood: say so where the trial is listed
            note = f"{made_by}; {note}"
        if t.status != "rejected" and t.fidelity < 1.0:
            note = f"partial: {t.items_evaluated}/{t.split_size} items (raced out); {note}"
        noise = score_noise(t, metric)
        standing = ""
        if best is not None and t.trial_id == best.trial_id:
            standing = "best"
        elif noise is not None and top is not None and t.fidelity >= 1.0 and noise.within(top):
            standing = "≈"
        rows.append(
            [
                str(t.trial_id),
                str(t.iteration),
                t.phase,
                t.status,
                t.config.short(),
                "-" if noise is None else noise.text(),
                standing,
                _cost(t.nominal_cost if t.status != "rejected" else None),
                _cost(t.measured_cost),
                _cost(t.search_cost if t.status != "rejected" else None),
                note[:160].rstrip("; "),
            ]
        )
    return rows


ARCHIVE_HEADER = [
    "id",
    "iter",
    "phase",
    "status",
    "configuration",
    "score ±se",
    "vs best",
    "cost",
    "measured",
    "search cost",
    "note",
]

#: What the archive table's score and "vs best" columns mean, printed under it.
ARCHIVE_LEGEND = (
    f"score ±se: the main metric (k/n items right for a 0/1 metric) and its standard error over "
    f"the items; ≈: within noise of the best (less than {NOISE_Z:g} standard errors of the "
    "difference below it), so the data do not tell them apart"
)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _trial_summary(t: Trial | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "trial_id": t.trial_id,
        "derived_from": t.derived_from,
        "iteration": t.iteration,
        "config": t.config.model_dump(mode="json"),
        "split": t.split,
        "metrics": t.metrics,
        "score": t.score,
        "nominal_cost": t.nominal_cost,
        "measured_cost": t.measured_cost,
        "stages": {k: v.model_dump(mode="json") for k, v in t.stages.items()},
        "error": t.error,
        "failed_items": failed_items_note(t.details) or None,
    }


def best_noise(archive: Archive, metric: str | None) -> dict[str, Any] | None:
    """The best score's standard error, and the trials within noise of it (`ScoreNoise.within`):
    on a small split several configurations are often indistinguishable from the best."""
    best = archive.best()
    top = score_noise(best, metric) if best is not None else None
    if best is None or top is None:
        return None
    close = [  # executed trials (free evaluations are many: curves, not lists, show them)
        t.trial_id
        for t in archive.executed().full().scored()
        if t.trial_id != best.trial_id
        and (n := score_noise(t, metric)) is not None
        and n.within(top)
    ]
    return {"se": top.se, "items": top.items, "right": top.right, "within_noise": close}


def derived_line(archive: Archive) -> str | None:
    """One line on the free evaluations (None: there are none); the best one, if it leads."""
    derived = archive.derived()
    if not derived:
        return None
    line = (
        f"{len(derived)} derived evaluations, free (answered by the samples of "
        f"{len({t.derived_from for t in derived})} executed trials; `show --json` lists them)"
    )
    best = archive.best()
    if best is not None and best.derived_from is not None:
        line += f"; the best, #{best.trial_id}, is derived from #{best.derived_from}"
    return line


def search_cost(state: Mapping[str, Any]) -> dict[str, Any]:
    """The search's running total in the paper's budget unit: the environment's (each trial's
    `search_cost`, summed by `Archive.search_cost`) plus the agent's (its tokens through the
    budget formula with the agent model's parameters, `AgentUsage.search_cost`), with the raw
    counts beside them. What `report.json`, `report.md` and `agenttts show` print."""
    from agenttts.graph.context import Context
    from agenttts.llm import AgentUsage

    executed = Archive.from_state(state).executed()
    usage = AgentUsage(**(state.get("agent_usage") or {}))
    params = Context.from_dict(state.get("settings") or {}).agent_endpoint().cost_params()
    environment, agent = executed.search_cost(), usage.search_cost(params)
    return {
        "total": environment + agent,
        "environment": environment,
        "environment_nominal": executed.search_cost(nominal=True),
        "agent": agent,
        "items_evaluated": sum(t.items_evaluated for t in executed),
        "endpoint_calls": sum(t.calls for t in executed),
        "endpoint_tokens": sum(t.prompt_tokens + t.completion_tokens for t in executed),
        "agent_tokens": usage.prompt_tokens + usage.completion_tokens,
        "agent_seconds": usage.seconds,
        "agent_params": params if usage.calls else None,
    }


def search_cost_line(cost: Mapping[str, Any]) -> str:
    """One line for people: the total, then where it went."""
    line = (
        f"search cost {cost['total']:.4g} budget units x items (environment "
        f"{cost['environment']:.4g} over {cost['items_evaluated']} items evaluated"
    )
    if cost.get("environment_nominal", cost["environment"]) != cost["environment"]:
        line += f", {cost['environment_nominal']:.4g} without the sample cache"
    if cost.get("endpoint_calls"):
        line += f", {cost['endpoint_calls']} endpoint calls, {cost['endpoint_tokens']} tokens"
    if cost.get("agent_tokens"):
        at = f"{cost['agent_params']:.3g} params" if cost.get("agent_params") else "size unknown"
        line += (
            f"; agent {cost['agent']:.4g} from {cost['agent_tokens']} tokens at {at}, "
            f"{cost['agent_seconds']:.1f} s"
        )
    return line + ")"


def build_report(
    state: Mapping[str, Any], *, thread_id: str | None = None, task: Any = None
) -> dict[str, Any]:
    """The report as a JSON-plain dict (the `.json` file's content)."""
    archive = Archive.from_state(state)
    test = Trial.model_validate(state["test_result"]) if state.get("test_result") else None
    settings = dict(state.get("settings") or {})
    return {
        "thread_id": thread_id,
        "task": {
            "ref": state.get("task"),
            "name": getattr(task, "name", None),
            "budget": getattr(task, "budget", None),
            "main_metric": getattr(task, "main_metric", None),
        },
        "proposer": settings.get("proposer"),
        "settings": settings,
        "stop_reason": state.get("stop_reason"),
        "iterations": int(state.get("iteration") or 0),
        "trials": {
            "executed": len(archive.executed()),
            "failed": len(archive.failed()),
            "rejected": len(archive.rejected()),
            "with_failed_items": sum(
                1 for t in archive.executed() if t.details.get("failed_items")
            ),
            "derived": len(archive.derived()),
        },
        "agent_usage": dict(state.get("agent_usage") or {}),
        "agent_failures": list(state.get("agent_failures") or []),
        "agent_reasoning": list(state.get("agent_reasoning") or []),
        "search_cost": search_cost(state),
        "best": _trial_summary(archive.best()),
        "best_noise": best_noise(archive, getattr(task, "main_metric", None)),
        "derived": derived_line(archive),
        "test": _trial_summary(test),
        # A train-only task says so where its test result would be (None: it has a test split).
        "no_test_split": NO_TEST_SPLIT
        if task is not None and not has_split(task.data, "test")
        else None,
        "preferences": dict(state.get("preferences") or {}),
        "preference_notes": state.get("preference_notes") or "",
        "guidelines": state.get("guidelines") or "",
        "guideline_log": list(state.get("guideline_log") or []),
        "trajectory": {
            "trial_ids": [t.trial_id for t in archive.executed()],
            "best_so_far": archive.best_so_far(),
        },
        "frontier": frontier_summary(state, task),
    }


def render_markdown(report: Mapping[str, Any], archive: Archive | None = None) -> str:
    task = report["task"]
    lines = [f"# agenttts search report: {task.get('name') or task.get('ref')}", ""]
    lines += [
        f"- thread: `{report.get('thread_id')}`; proposer: `{report.get('proposer')}`",
        f"- budget: {task.get('budget')}; main metric: `{task.get('main_metric')}`",
        f"- stopped: {report.get('stop_reason')} after {report['iterations']} iteration(s)",
        f"- trials: {report['trials']['executed']} executed ({report['trials']['failed']} failed, "
        f"{report['trials'].get('with_failed_items', 0)} with failed or timed-out items), "
        f"{report['trials']['rejected']} proposals rejected",
    ]
    usage = report.get("agent_usage") or {}
    if usage:
        lines.append(
            f"- agent: {usage.get('calls', 0)} calls, {usage.get('prompt_tokens', 0)} prompt + "
            f"{usage.get('completion_tokens', 0)} completion tokens, "
            f"{len(report.get('agent_failures') or [])} recorded failure(s)"
        )
    if report.get("derived"):
        lines.append(f"- {report['derived']}")
    if report.get("search_cost"):
        lines.append(f"- {search_cost_line(report['search_cost'])}")
    lines += ["", "## Best configuration", ""]
    best, test = report.get("best"), report.get("test")
    if best is None:
        lines.append("No trial succeeded.")
    else:
        rows = []
        for name, r in (("train", best), ("test", test)):
            if r is None and name == "test" and report.get("no_test_split"):
                rows.append(["test", report["no_test_split"], "", "", ""])
            if r is None:
                continue
            rows.append(
                [
                    name,
                    _metrics(r["metrics"]),
                    _cost(r["nominal_cost"]),
                    _cost(r["measured_cost"]),
                    "; ".join(x for x in (r.get("error"), r.get("failed_items")) if x),
                ]
            )
        cfg = ", ".join(f"{k}: {v['model']} x {v['samples']}" for k, v in best["config"].items())
        lines += [f"`{cfg}` (trial {best['trial_id']}, iteration {best['iteration']})", ""]
        lines.append(
            markdown_table(["split", "metrics", "cost (nominal)", "cost (measured)", "error"], rows)
        )
        noise = report.get("best_noise")
        if noise:
            close = noise["within_noise"]
            lines += [
                "",
                f"Its training score's standard error is {noise['se']:.2g} over {noise['items']} "
                "items; "
                + (
                    f"trial(s) {', '.join(map(str, close))} score within noise of it "
                    f"(less than {NOISE_Z:g} standard errors of the difference): the data do not "
                    "tell them apart."
                    if close
                    else "no other trial is within noise of it."
                ),
            ]
    if report.get("preferences"):
        lines += ["", "## Model preferences (insight 1)", ""]
        lines += [f"- {k}: {v}" for k, v in report["preferences"].items()]
        if report.get("preference_notes"):
            lines += ["", report["preference_notes"]]
    lines += ["", "## Guidelines", "", report.get("guidelines") or "(none)"]
    thoughts = report.get("agent_reasoning") or []
    if thoughts:  # a reasoning agent's thinking, beside what it answered (in full in the JSON)
        lines += ["", "## The agent's reasoning", ""]
        for r in thoughts:
            text = " ".join(str(r["reasoning"]).split())
            cut = text if len(text) <= 400 else text[:399] + "…"
            lines.append(f"- iteration {r['iteration']}, {r['node']}: {cut}")
    lines += _frontier_markdown(report)
    lines += ["", "## Scores and cost per trial", "", "![scores and costs](best_so_far.png)"]
    if archive:
        rows = archive_rows(archive, task.get("main_metric"))
        lines += ["", "## Archive", "", markdown_table(ARCHIVE_HEADER, rows), "", ARCHIVE_LEGEND]
    return "\n".join(lines) + "\n"


def _frontier_markdown(report: Mapping[str, Any]) -> list[str]:
    """The budgets' optima and the front of everything evaluated, with the frontier plot."""
    summary = report.get("frontier")
    if not summary or not summary["front"]:
        return []
    several = len(summary["budgets"]) > 1
    lines = ["", "## Budgets and the frontier", ""]
    if several:
        budgets = ", ".join(frontier.label(b) for b in summary["budgets"])
        lines += [f"Budgets searched together: {budgets} ({UNIT}).", ""]
    lines += [
        "The Pareto front of cost against the main metric over every evaluated configuration "
        "(each scores more than everything as cheap or cheaper):",
        "",
        markdown_table(FRONT_HEADER, front_rows(summary)),
        "",
        "![the frontier and the score by sample count per stage](frontier.png)",
    ]
    return lines


def plot_trajectory(report: Mapping[str, Any], archive: Archive, path: Path) -> None:
    """The report's PNG."""
    fig = report_figure(report, archive)
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def report_figure(report: Mapping[str, Any], archive: Archive) -> Any:
    """Two panels over the executed trials: each trial's score with the best so far, and each
    trial's cost against the budget. A run where no trial succeeded says so instead of drawing
    empty axes with a meaningless scale. (Agg backend: no display needed.)"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    executed = archive.executed()
    xs = [t.trial_id for t in executed]  # the archive's own ids (from 0), as `show` lists them
    inits = executed.in_phase("init")
    task = report["task"]
    fig, (top, low) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 2))
    fig.suptitle(f"{task.get('name') or task.get('ref')} — {report.get('proposer')}")
    scored = [(x, t.score) for x, t in zip(xs, executed, strict=True) if t.score is not None]
    if not scored:
        _say(top, f"no successful trial ({len(executed)} executed, all failed)")
    else:
        top.scatter(*zip(*scored, strict=True), s=12, alpha=0.5, label="trial score")
        best = report["trajectory"]["best_so_far"]
        top.step(
            xs, [math.nan if v is None else v for v in best], where="post", label="best so far"
        )
        top.set_ylabel(task.get("main_metric") or "score")
    if not executed:
        _say(low, "no trial executed")
    else:
        low.scatter(xs, [t.nominal_cost for t in executed], s=12, alpha=0.6, label="cost (nominal)")
        measured = [math.nan if t.measured_cost is None else t.measured_cost for t in executed]
        if not all(math.isnan(m) for m in measured):
            low.scatter(xs, measured, s=14, marker="x", alpha=0.6, label="cost (measured)")
        if task.get("budget") is not None:
            low.axhline(task["budget"], color="red", linestyle="--", label="budget")
        low.set_ylabel("cost (budget units)")
        low.set_xlabel("trial id (as in `agenttts show`)")
    for ax in (top, low):
        if ax.axison:
            if inits:
                end = inits[-1].trial_id + 0.5
                ax.axvline(end, color="grey", linestyle=":", label="end of initialisation")
            # beside the axes, never over the points
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    return fig


def _say(ax: Any, text: str) -> None:
    """A panel with nothing to draw: the reason in its middle, no axes."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _finite(value: Any) -> Any:
    """`value` with every infinite or NaN float as null: standard JSON, which any reader takes
    (Python would write the non-standard `Infinity`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_report(
    state: Mapping[str, Any], out_dir: str | Path, *, thread_id: str | None = None, task: Any = None
) -> dict[str, str]:
    """Write report.json, report.md and best_so_far.png; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(state, thread_id=thread_id, task=task)
    archive = Archive.from_state(state)
    paths = {
        "json": out / "report.json",
        "markdown": out / "report.md",
        "plot": out / "best_so_far.png",
        "frontier": out / "frontier.png",
    }
    paths["json"].write_text(json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")
    paths["markdown"].write_text(render_markdown(report, archive))
    plot_trajectory(report, archive, paths["plot"])
    name = report["task"].get("name") or report["task"].get("ref")
    figure = frontier_figure(
        report["frontier"],
        archive,
        title=f"{name} — {report.get('proposer')}: the frontier",
        metric=report["task"].get("main_metric"),
    )
    plot_frontier(figure, paths["frontier"])
    return {k: str(v) for k, v in paths.items()}
