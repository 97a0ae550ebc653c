"""The bench's outputs: a terminal table, the JSON record and best-so-far plots per task."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agenttts.report import markdown_table
from agenttts.search_bench.summary import finite, median


def overall(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per method over every task and seed: median trials to the optimum and median search cost
    to it as a multiple of one full training evaluation of the optimum (unreached = infinite)."""
    by_method: dict[str, list[tuple[float, float]]] = {}
    for r in result["runs"]:
        hit, mult = r["trials_to_optimum"], r.get("cost_multiple_to_optimum")
        by_method.setdefault(r["method"], []).append(
            (float(hit) if hit else math.inf, math.inf if mult is None else float(mult))
        )
    out = []
    for method in result["methods"]:
        runs = by_method.get(method, [])
        if not runs:
            continue
        out.append(
            {
                "method": method,
                "runs": len(runs),
                "reached": sum(1 for h, _ in runs if not math.isinf(h)),
                "median_trials_to_optimum": finite(median([h for h, _ in runs])),
                "median_cost_multiple_to_optimum": finite(median([c for _, c in runs])),
            }
        )
    return out


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def _trials(value: float | None, cap: int) -> str:
    return f">{cap}" if value is None else _num(value, 1)


def _multiple(value: float | None) -> str:
    """A search cost as a multiple of one full evaluation of the optimum; unreached: '-'."""
    return "-" if value is None else f"{value:.1f}x"


def racing_table(result: Mapping[str, Any]) -> str:
    """Each racing method against the same method without racing (empty without racing runs)."""
    rows = [
        [
            c["task"],
            c["method"],
            c["racing_method"],
            f"{c['reached_without']}/{c['runs']} -> {c['reached_with']}/{c['runs']}",
            _num(c["median_cost_without"], 0),
            _num(c["median_cost_with"], 0),
            "-" if c["cost_ratio"] is None else f"{c['cost_ratio']:.2f}x",
            "-"
            if c.get("paired_cost_ratio") is None
            else f"{c['paired_cost_ratio']:.2f}x ({c['paired_runs']})",
            str(c["lost"]),
            str(c["gained"]),
        ]
        for c in result.get("racing") or []
    ]
    if not rows:
        return ""
    header = [
        "task",
        "method",
        "with racing",
        "reached (without -> with)",
        "median cost to opt, without",
        "with",
        "cut",
        "cut, seeds reaching it both ways",
        "lost",
        "gained",
    ]
    return markdown_table(header, rows)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def cost_table(result: Mapping[str, Any]) -> str:
    """Per task and method, what reaching the optimum took: executed trials, free (derived)
    evaluations, the search cost cache-aware and nominal (as multiples of one full training
    evaluation of the optimum), and the initial trials' share of it."""
    cap = result["max_trials"]
    rows = [
        [
            s["task"],
            s["method"],
            f"{s['reached']}/{s['runs']}",
            _trials(s["median_trials_to_optimum"], cap),
            _num(s.get("median_derived_to_optimum"), 0),
            _num(s.get("mean_derived"), 0),
            _multiple(s.get("median_cost_multiple_to_optimum")),
            _multiple(s.get("median_nominal_multiple_to_optimum")),
            _share(s.get("median_init_share_to_optimum")),
        ]
        for s in result["summary"]
    ]
    header = [
        "task",
        "method",
        "reached",
        "executed trials to opt",
        "derived to opt",
        "derived in run (mean)",
        "cost to opt",
        "nominal cost to opt",
        "init share of cost to opt",
    ]
    return markdown_table(header, rows)


def origins_table(result: Mapping[str, Any]) -> str:
    """Where the LLM methods' search trials came from, summed over seeds (empty without any)."""
    rows = [
        [
            s["task"],
            s["method"],
            str(s["runs"]),
            _num(s["mean_agent_calls"] * s["runs"], 0),
            str(s.get("agent_failed_steps", 0)),
            str(s.get("agent_errors", 0)),
            str(s.get("total_agent_as_is", 0)),
            str(s.get("total_agent_repaired", 0)),
            str(s.get("total_agent_topped_up", 0)),
            str(s.get("total_agent_rejected", 0)),
        ]
        for s in result["summary"]
        if s["mean_agent_calls"]
    ]
    if not rows:
        return ""
    llm_tasks = {s["task"] for s in result["summary"] if s["mean_agent_calls"]}
    batches = [
        [
            s["task"],
            s["method"],
            f"{s['reached']}/{s['runs']}",
            _trials(s["median_trials_to_optimum"], result["max_trials"]),
            _num(s.get("median_batches_to_optimum"), 1),
        ]
        for s in result["summary"]
        if s["task"] in llm_tasks
    ]
    header = [
        "task",
        "method",
        "runs",
        "agent calls",
        "failed agent steps",
        "agent errors recorded",
        "trials as the agent proposed",
        "repaired to fit",
        "topped up by insight",
        "rejected by the screen",
    ]
    by_batch = ["task", "method", "reached", "median trials to opt", "median batch reaching opt"]
    return markdown_table(header, rows) + "\n\n" + markdown_table(by_batch, batches)


def summary_text(result: Mapping[str, Any]) -> str:
    """The terminal/Markdown summary, with the tolerance and the optimum stated."""
    cap = result["max_trials"]
    lines = [
        f"Optimum: the best training score over every feasible configuration (exhaustive). A run "
        f"reaches it at the first trial with train score >= optimum - {result['tolerance']:g}. "
        f"Runs stop after {cap} trials (batches of {result['batch_size']}); unreached counts as "
        f"'>{cap}'. {len(result['seeds'])} seed(s) per method. Search cost to the optimum: the "
        "run's running total when it reached it (each trial's budget units x items evaluated, "
        "newly drawn samples only, plus an LLM agent's tokens through the same formula), as a "
        "multiple of one evaluation of the optimum on the whole training split.",
        "",
    ]
    rows = []
    for s in result["summary"]:
        opt = result["tasks"][s["task"]]
        rows.append(
            [
                s["task"],
                s["method"],
                f"{s['reached']}/{s['runs']}",
                _trials(s["median_trials_to_optimum"], cap),
                _num(s["median_seconds_to_optimum"], 2),
                _multiple(s.get("median_cost_multiple_to_optimum")),
                f"{_num(s['mean_best_train'])} / {_num(opt['score'])}",
                f"{_num(s['mean_test'])} / {_num(opt['test_score'])}",
                _num(s["mean_agent_calls"], 1),
                _num(s["mean_agent_tokens"], 0),
                _num(s.get("mean_agent_seconds"), 1),
                _num(s["mean_environment_calls"], 1),
                _num(s["mean_wall_s"], 2),
            ]
        )
    header = [
        "task",
        "method",
        "reached",
        "median trials to opt",
        "median s to opt",
        "median cost to opt",
        "best train / opt",
        "test / opt's test",
        "agent calls",
        "agent tokens",
        "agent s",
        "env calls",
        "wall s",
    ]
    lines.append(markdown_table(header, rows))
    lines += [
        "",
        "Over all tasks (median of every run's trials and search cost to the optimum):",
        "",
    ]
    lines.append(
        markdown_table(
            ["method", "reached", "median trials to opt", "median cost to opt"],
            [
                [
                    o["method"],
                    f"{o['reached']}/{o['runs']}",
                    _trials(o["median_trials_to_optimum"], cap),
                    _multiple(o.get("median_cost_multiple_to_optimum")),
                ]
                for o in overall(result)
            ],
        )
    )
    lines += [
        "",
        "Search cost to the optimum (medians over the seeds that reached it; '-': not reached by "
        "more than half): executed trials, free evaluations derived from them "
        "(`agenttts.derived`, cost 0), the cache-aware cost (what the table above reports) "
        "against the nominal one (as if no sample had been cached), and the share of the "
        "cache-aware cost spent on the initial trials.",
        "",
        cost_table(result),
    ]
    origins = origins_table(result)
    if origins:
        lines += [
            "",
            "Where the LLM methods' search-phase trials came from, summed over seeds "
            "(`agenttts.proposers.hybrid`: the agent's proposals run as proposed or repaired to "
            "fit the budget, slots it left empty topped up by the insight proposer; initial "
            "trials not counted). A failed agent step had no usable answer after its retries; "
            "the errors recorded (the run's `agent_failures`) include each unusable attempt. The "
            "second table counts batches instead of trials (0: the initial trials; '-': not "
            "reached by half the seeds): a batch is proposed and run as a whole, so it ignores "
            "where in its batch the trial that reached the optimum stood (an agent's own "
            "proposals come before the insight top-ups).",
            "",
            origins,
        ]
    race = racing_table(result)
    if race:
        lines += [
            "",
            "Racing on training items (`agenttts.racing`) against the same method without it: "
            "median search cost to the optimum in budget units x items (unreached: infinite, "
            "'-'); cut = without / with; the next column is the median per-seed cut over the "
            "seeds (count) that reached the optimum both ways; lost = seeds that reached it "
            "without racing but not with it, gained = the reverse.",
            "",
            race,
        ]
    sizes = [
        f"{name}: {t['feasible']} feasible, {t['targets']} within the tolerance of the optimum "
        f"(uniform draws need ~{t['feasible'] / max(1, t['targets']):.0f} on average); optimum "
        f"{_num(t['score'])} at "
        + " | ".join(f"{k}={v['model']}x{v['samples']}" for k, v in t["config"].items())
        for name, t in result["tasks"].items()
    ]
    lines += [
        "",
        "Tasks (the optimum's basin sets how hard 'reaching' is):",
        *[f"- {s}" for s in sizes],
    ]
    return "\n".join(lines) + "\n"


def curves_matrix(curves: Sequence[Sequence[float | None]], length: int) -> np.ndarray:
    """Seeds x trials; a run that ended early keeps its last best (NaN before any score)."""
    out = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        vals = [np.nan if v is None else v for v in c][:length]
        if vals:
            out[i, : len(vals)] = vals
            out[i, len(vals) :] = vals[-1]
    return out


def plot_task(result: Mapping[str, Any], task: str, path: Path) -> None:
    """Best-so-far vs trials per method: the median over seeds and the 25-75% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cap = result["max_trials"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = np.arange(1, cap + 1)
    for method in result["methods"]:
        curves = [r["curve"] for r in result["runs"] if r["task"] == task and r["method"] == method]
        if not curves:
            continue
        m = curves_matrix(curves, cap)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(m, axis=0)
                lo, hi = np.nanpercentile(m, 25, axis=0), np.nanpercentile(m, 75, axis=0)
        (line,) = ax.plot(x, med, label=method, lw=1.6)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    opt = result["tasks"][task]["score"]
    tol = result["tolerance"]
    ax.axhline(opt, color="black", ls="--", lw=1, label=f"exhaustive optimum ({opt:g})")
    ax.axhspan(opt - tol, opt, color="black", alpha=0.06)
    ax.set_xlabel("trials executed")
    ax.set_ylabel("best training score so far")
    ax.set_title(f"{task}: median over {len(result['seeds'])} seeds (band: 25-75%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(result: Mapping[str, Any], out_dir: Path) -> dict[str, str]:
    """bench.json, bench.md and one PNG per task; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "markdown": out_dir / "bench.md"}
    record = {**result, "overall": overall(result)}
    paths["json"].write_text(json.dumps(record, separators=(",", ":")) + "\n")
    paths["markdown"].write_text("# agenttts bench\n\n" + summary_text(result))
    for task in result["tasks"]:
        p = out_dir / f"{task}.png"
        plot_task(result, task, p)
        paths[f"plot:{task}"] = p
    return {k: str(v) for k, v in paths.items()}
