"""`agenttts run TASK --config FILE --input FILE.jsonl [--out FILE.jsonl]`: the task's pipeline at
an exported configuration over new inputs, one JSON line of output per input."""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agenttts.errors import InputError

if TYPE_CHECKING:
    from agenttts.environment.live.configured import ConfiguredStages
    from agenttts.environment.live.executor import PipelineExecutor, Program
    from agenttts.environment.live.stages import TrialRun


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a task's pipeline at an exported configuration over new inputs",
        description="Runs TASK's pipeline (its Python function, LangGraph graph or chain) with "
        "each stage at the configuration in --config (written by `agenttts export`): the model, "
        "S samples through the sample cache, the stage's aggregator. Writes one JSON line per "
        "input: the prediction, each stage's samples and aggregate, tokens, requests and cost. "
        "Exit status 0 when every input ran, 1 when some failed (each says why), 2 for bad input "
        "(nothing runs), 3 when an endpoint stops answering.",
    )
    p.add_argument("task", metavar="TASK", help="task file, or a bundled task name")
    p.add_argument("--config", metavar="FILE", required=True, help="an `agenttts export` file")
    p.add_argument(
        "--input",
        metavar="FILE",
        required=True,
        help="inputs: JSON Lines (or a JSON list), one object per input, with the fields the "
        "pipeline reads",
    )
    p.add_argument("--out", metavar="FILE", help="write the lines here (default: stdout)")
    p.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="inputs in flight (default 16)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)


def missing_fields(program: Program, inputs: list[dict[str, Any]]) -> str | None:
    """A graph's `input:` mapping names fields every input must have: the first one lacking."""
    from agenttts.environment.live.python_pipeline import PythonProgram

    if not isinstance(program, PythonProgram) or not program.settings.input:
        return None
    for n, item in enumerate(inputs, start=1):
        lacking = sorted(f for f in program.settings.input.values() if f not in item)
        if lacking:
            return f"input {n} has no field(s) {lacking}, which the graph's `input:` maps"
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from agenttts.environment.exported import ExportedConfig
    from agenttts.environment.live.configured import ConfiguredStages
    from agenttts.environment.live.executor import PipelineExecutor
    from agenttts.environment.live.loading import load_items
    from agenttts.environment.registry import executor_class, make_executor
    from agenttts.environment.task_loading import load_task
    from agenttts.progress import set_quiet

    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1 (got {args.concurrency})")
    task = load_task(args.task)
    if not issubclass(executor_class(task.environment.kind), PipelineExecutor):
        raise InputError(
            f"task {task.name!r} is a {task.environment.kind} task: it replays results and runs "
            "no pipeline (`agenttts run` runs python, chain and live tasks)"
        )
    exported = ExportedConfig.load(args.config)
    stages = ConfiguredStages(exported, task)  # another task's file, an unknown model: refused
    executor = make_executor(stages.task)
    assert isinstance(executor, PipelineExecutor)
    try:
        inputs = load_items(Path(args.input))
    except InputError as e:
        raise InputError(f"--input: {e}") from None
    program = executor.program
    lacking = missing_fields(program, inputs)
    if lacking:
        raise InputError(f"--input {args.input}: {lacking}")
    set_quiet(args.quiet)
    with ExitStack() as files:
        if args.out is None:
            out: TextIO = sys.stdout
        else:
            try:
                out = files.enter_context(open(args.out, "w", encoding="utf-8"))
            except OSError as e:
                raise InputError(f"--out {args.out}: cannot write ({e.strerror or e})") from None

        def write(line: dict[str, Any]) -> None:
            out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
            out.flush()

        lines = asyncio.run(answer_all(executor, stages, program, inputs, write, args.concurrency))
    failed = sum(1 for line in lines if line["error"])
    total = {k: sum(line[k] for line in lines) for k in ("prompt_tokens", "completion_tokens")}
    requests = sum(line["requests"] for line in lines)
    print(
        f"ran {len(lines)} input(s) at {stages.config.short()}"
        + (f", {failed} failed" if failed else "")
        + f": {total['prompt_tokens']} prompt and {total['completion_tokens']} completion "
        f"tokens, {requests} request(s)" + (f"; wrote {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


async def answer_all(
    executor: PipelineExecutor,
    stages: ConfiguredStages,
    program: Program,
    inputs: list[dict[str, Any]],
    write: Callable[[dict[str, Any]], None],
    concurrency: int,
) -> list[dict[str, Any]]:
    """Every input through the pipeline, `concurrency` at a time, each in its own run (its own
    tokens and cost); lines written in input order as they complete."""
    from agenttts.errors import ResumableStop
    from agenttts.progress import ItemProgress

    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    try:
        await stages.sampler.check_endpoints(m for s in stages.task.stages for m in s.models)

        async def one(n: int, item: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                run = stages.trial_run(record=True)
                error = None
                prediction = None
                try:
                    prediction = await executor.predict(program, run, item)
                except ResumableStop:
                    raise
                except Exception as e:
                    error = (
                        f"timed out after {executor.live.item_timeout_s:g} s"
                        if isinstance(e, TimeoutError)
                        else f"{type(e).__name__}: {e}"
                    )
                return line_of(executor, stages, run, n, item, prediction, error)

        jobs = [
            loop.create_task(one(n, item), context=contextvars.Context())
            for n, item in enumerate(inputs)
        ]
        lines = []
        with ItemProgress(len(inputs), f"run {stages.config.short()}") as progress:
            try:
                for job in jobs:
                    line = await job
                    write(line)
                    lines.append(line)
                    progress.advance()
            except BaseException:
                for job in jobs:
                    job.cancel()
                await asyncio.gather(*jobs, return_exceptions=True)
                raise
        return lines
    finally:
        await stages.sampler.aclose()


def line_of(
    executor: PipelineExecutor,
    stages: ConfiguredStages,
    run: TrialRun,
    n: int,
    item: dict[str, Any],
    prediction: Any,
    error: str | None,
) -> dict[str, Any]:
    """One input's output line: its prediction and what each stage drew, aggregated and cost."""
    reports = executor.stage_reports(stages.config, run.tallies)
    per_stage: dict[str, Any] = {}
    for name, report in reports.items():
        chosen = stages.config[name]
        entry: dict[str, Any] = {"model": chosen.model, "samples": chosen.samples}
        entry["outputs"] = run.outputs.get(name, [])
        if run.outputs.get(f"{name}/fuse"):
            entry["fuser_outputs"] = run.outputs[f"{name}/fuse"]
        entry.update(
            prompt_tokens=report.prompt_tokens,
            completion_tokens=report.completion_tokens,
            requests=report.calls,
            cached_samples=report.cached_samples,
            nominal_cost=report.nominal_cost,
            measured_cost=report.measured_cost,
        )
        per_stage[name] = entry
    measured = [r.measured_cost for r in reports.values()]
    return {
        "input": n,
        "id": item.get("id"),
        "prediction": prediction,
        "error": error,
        "stages": per_stage,
        "prompt_tokens": sum(r.prompt_tokens for r in reports.values()),
        "completion_tokens": sum(r.completion_tokens for r in reports.values()),
        "requests": sum(r.calls for r in reports.values()),
        "nominal_cost": sum(r.nominal_cost for r in reports.values()),
        "measured_cost": None if None in measured else sum(m or 0.0 for m in measured),
    }
