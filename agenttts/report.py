"""The search's report: the best configuration with its train and test results, the guidelines and
the best-so-far trajectory, as JSON (for programs), Markdown (for people) and a PNG plot.

Built from the graph state alone, so a report can be rewritten for any finished thread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agenttts.archive import Archive, Trial
from agenttts.environment.splits import NO_TEST_SPLIT, has_split
from agenttts.proposers.hybrid import origin


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _metrics(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()) or "-"


def archive_rows(trials: Sequence[Trial]) -> list[list[str]]:
    """One row per trial: id, iteration, phase, status, configuration, score, costs (the
    configuration's nominal and measured per query; the search's: budget units x items), note."""
    rows = []
    for t in trials:
        note = t.error or ""
        made_by = origin(t.rationale)
        if made_by:  # not the agent's proposal as it stood: say so where the trial is listed
            note = f"{made_by}; {note}"
        if t.status != "rejected" and t.fidelity < 1.0:
            note = f"partial: {t.items_evaluated}/{t.split_size} items (raced out); {note}"
        rows.append(
            [
                str(t.trial_id),
                str(t.iteration),
                t.phase,
                t.status,
                t.config.short(),
                "-" if t.score is None else f"{t.score:.4g}",
                _cost(t.nominal_cost if t.status != "rejected" else None),
                _cost(t.measured_cost),
                _cost(t.search_cost if t.status != "rejected" else None),
                note[:120].rstrip("; "),
            ]
        )
    return rows


ARCHIVE_HEADER = [
    "id",
    "iter",
    "phase",
    "status",
    "configuration",
    "score",
    "cost",
    "measured",
    "search cost",
    "note",
]


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
        "iteration": t.iteration,
        "config": t.config.model_dump(mode="json"),
        "split": t.split,
        "metrics": t.metrics,
        "score": t.score,
        "nominal_cost": t.nominal_cost,
        "measured_cost": t.measured_cost,
        "stages": {k: v.model_dump(mode="json") for k, v in t.stages.items()},
        "error": t.error,
    }


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
        },
        "agent_usage": dict(state.get("agent_usage") or {}),
        "agent_failures": list(state.get("agent_failures") or []),
        "search_cost": search_cost(state),
        "best": _trial_summary(archive.best()),
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
    }


def render_markdown(report: Mapping[str, Any], archive: Archive | None = None) -> str:
    task = report["task"]
    lines = [f"# agenttts search report: {task.get('name') or task.get('ref')}", ""]
    lines += [
        f"- thread: `{report.get('thread_id')}`; proposer: `{report.get('proposer')}`",
        f"- budget: {task.get('budget')}; main metric: `{task.get('main_metric')}`",
        f"- stopped: {report.get('stop_reason')} after {report['iterations']} iteration(s)",
        f"- trials: {report['trials']['executed']} executed ({report['trials']['failed']} failed), "
        f"{report['trials']['rejected']} proposals rejected",
    ]
    usage = report.get("agent_usage") or {}
    if usage:
        lines.append(
            f"- agent: {usage.get('calls', 0)} calls, {usage.get('prompt_tokens', 0)} prompt + "
            f"{usage.get('completion_tokens', 0)} completion tokens, "
            f"{len(report.get('agent_failures') or [])} recorded failure(s)"
        )
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
                    r.get("error") or "",
                ]
            )
        cfg = ", ".join(f"{k}: {v['model']} x {v['samples']}" for k, v in best["config"].items())
        lines += [f"`{cfg}` (trial {best['trial_id']}, iteration {best['iteration']})", ""]
        lines.append(
            markdown_table(["split", "metrics", "cost (nominal)", "cost (measured)", "error"], rows)
        )
    if report.get("preferences"):
        lines += ["", "## Model preferences (insight 1)", ""]
        lines += [f"- {k}: {v}" for k, v in report["preferences"].items()]
        if report.get("preference_notes"):
            lines += ["", report["preference_notes"]]
    lines += ["", "## Guidelines", "", report.get("guidelines") or "(none)"]
    lines += ["", "## Scores and cost per trial", "", "![scores and costs](best_so_far.png)"]
    if archive:
        lines += ["", "## Archive", "", markdown_table(ARCHIVE_HEADER, archive_rows(archive))]
    return "\n".join(lines) + "\n"


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
    xs = list(range(1, len(executed) + 1))
    inits = len(executed.in_phase("init"))
    task = report["task"]
    fig, (top, low) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(3, 2))
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
        low.set_xlabel("executed trials")
    for ax in (top, low):
        if ax.axison:
            if inits:
                ax.axvline(inits + 0.5, color="grey", linestyle=":", label="end of initialisation")
            ax.legend(loc="lower right", fontsize="small")
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
    }
    paths["json"].write_text(json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")
    paths["markdown"].write_text(render_markdown(report, archive))
    plot_trajectory(report, archive, paths["plot"])
    return {k: str(v) for k, v in paths.items()}
