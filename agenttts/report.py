"""The search's report: the best configuration with its train and test results, the guidelines and
the best-so-far trajectory, as JSON (for programs), Markdown (for people) and a PNG plot.

Built from the graph state alone, so a report can be rewritten for any finished thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agenttts.archive import Trial, best_so_far, best_trial, load_trials


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _metrics(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()) or "-"


def archive_rows(trials: Sequence[Trial]) -> list[list[str]]:
    """One row per trial: id, iteration, phase, status, configuration, score, costs, note."""
    rows = []
    for t in trials:
        note = t.error or ""
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
                note[:120],
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


def build_report(
    state: Mapping[str, Any], *, thread_id: str | None = None, task: Any = None
) -> dict[str, Any]:
    """The report as a JSON-plain dict (the `.json` file's content)."""
    trials = load_trials(state.get("archive") or [])
    best = best_trial(trials)
    test = Trial.model_validate(state["test_result"]) if state.get("test_result") else None
    executed = [t for t in trials if t.status != "rejected"]
    executed_ids = [t.trial_id for t in executed]
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
            "executed": len(executed),
            "failed": sum(t.status == "failed" for t in trials),
            "rejected": sum(t.status == "rejected" for t in trials),
        },
        "agent_usage": dict(state.get("agent_usage") or {}),
        "agent_failures": list(state.get("agent_failures") or []),
        "best": _trial_summary(best),
        "test": _trial_summary(test),
        "preferences": dict(state.get("preferences") or {}),
        "preference_notes": state.get("preference_notes") or "",
        "guidelines": state.get("guidelines") or "",
        "guideline_log": list(state.get("guideline_log") or []),
        "trajectory": {"trial_ids": executed_ids, "best_so_far": best_so_far(trials)},
    }


def render_markdown(report: Mapping[str, Any], trials: Sequence[Trial] = ()) -> str:
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
    lines += ["", "## Best configuration", ""]
    best, test = report.get("best"), report.get("test")
    if best is None:
        lines.append("No trial succeeded.")
    else:
        rows = []
        for name, r in (("train", best), ("test", test)):
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
    lines += ["", "## Best so far", "", "![best so far](best_so_far.png)"]
    if trials:
        lines += ["", "## Archive", "", markdown_table(ARCHIVE_HEADER, archive_rows(trials))]
    return "\n".join(lines) + "\n"


def plot_trajectory(report: Mapping[str, Any], trials: Sequence[Trial], path: Path) -> None:
    """Best-so-far line over every executed trial's score (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    executed = [t for t in trials if t.status != "rejected" and t.phase != "test"]
    xs = list(range(1, len(executed) + 1))
    fig, ax = plt.subplots(figsize=(7, 4))
    pts = [(x, t.score) for x, t in zip(xs, executed, strict=True) if t.score is not None]
    if pts:
        ax.scatter(*zip(*pts, strict=True), s=12, alpha=0.5, label="trial score")
    traj = report["trajectory"]["best_so_far"]
    ax.step(xs, [float("nan") if v is None else v for v in traj], where="post", label="best so far")
    inits = sum(t.phase == "init" for t in executed)
    if inits:
        ax.axvline(inits + 0.5, color="grey", linestyle=":", label="end of initialisation")
    ax.set_xlabel("executed trials")
    ax.set_ylabel(report["task"].get("main_metric") or "score")
    ax.set_title(
        f"{report['task'].get('name') or report['task'].get('ref')} — {report.get('proposer')}"
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(
    state: Mapping[str, Any], out_dir: str | Path, *, thread_id: str | None = None, task: Any = None
) -> dict[str, str]:
    """Write report.json, report.md and best_so_far.png; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(state, thread_id=thread_id, task=task)
    trials = load_trials(state.get("archive") or [])
    paths = {
        "json": out / "report.json",
        "markdown": out / "report.md",
        "plot": out / "best_so_far.png",
    }
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["markdown"].write_text(render_markdown(report, trials))
    plot_trajectory(report, trials, paths["plot"])
    return {k: str(v) for k, v in paths.items()}
