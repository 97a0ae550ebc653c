"""Throughput of the live executor against the embedded server, and what the sample cache saves.

For each configured concurrency (the deployment's `max_concurrency`: 1, 4, 16) one QA trial runs
on fresh cache: every sample is its own n=1 request (`supports_n: false`), so requests/s and
completion tokens/s measure the executor + server path. "achieved" is the mean number of requests
in flight (summed request time / wall time) beside the configured limit, and "peak" the most seen
at once. Then the same trial runs again on the now-filled cache: zero calls, its time beside the
first run's. Retrieval is BM25 so that only the QA stage calls the model.

Uses $AGENTTTS_EMBEDDED_URL when set, else starts the embedded server (not timed).
    .venv/bin/python perf/bench_live_executor.py [--items 24] [--samples 2] [--levels 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from agenttts.environment.embedded import ENV_URL, EmbeddedServer
from agenttts.environment.live.python_pipeline import LiveExecutor
from agenttts.environment.space import Config
from agenttts.environment.task_loading import load_task

ROOT = Path(__file__).resolve().parents[1]


def make_task(items: int, concurrency: int, workdir: Path):
    dep = workdir / f"dep-{concurrency}.yaml"
    dep.write_text(
        "models:\n"
        f"  smollm2: {{base_url: embedded, params: 135e6, max_concurrency: {concurrency}, "
        "supports_n: false}\n"
    )
    task = load_task(ROOT / "tasks" / "2wiki.yaml")
    task.data.train_size = items
    task.deployment = str(dep)
    return task


async def one_run(task, cache: Path, config: Config) -> tuple[float, dict[str, float]]:
    ex = LiveExecutor(task, cache=str(cache))
    try:
        # reachability is not part of the timing
        await ex.sampler.check_endpoints(ex._choices([config]))
        start = time.perf_counter()
        (result,) = await ex.run([config], "train")
        wall = time.perf_counter() - start
        if not result.ok:
            raise SystemExit(f"trial failed: {result.error}")
        stats = ex.call_stats()
        return wall, {
            "requests": stats.requests,
            "tokens": result.completion_tokens if result.calls else 0,
            "busy": stats.busy_s,
            "peak": stats.max_in_flight,
        }
    finally:
        await ex.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=24, help="questions (train split)")
    ap.add_argument("--samples", type=int, default=2, help="QA samples per question")
    ap.add_argument("--levels", default="1,4,16", help="configured concurrencies")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    config = Config.of({"retrieval": ("bm25", 1), "qa": ("smollm2", args.samples)})

    server = None
    if not os.environ.get(ENV_URL):
        print("starting the embedded server (not timed) ...", flush=True)
        server = EmbeddedServer().start()
        os.environ[ENV_URL] = server.base_url
    try:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for level in levels:
                task = make_task(args.items, level, work)
                cache = work / f"cache-{level}.sqlite"  # fresh: every sample is a real request
                wall, s = asyncio.run(one_run(task, cache, config))
                again, s2 = asyncio.run(one_run(task, cache, config))
                rows.append(
                    (
                        level,
                        s["busy"] / wall,
                        s["peak"],
                        int(s["requests"]),
                        s["requests"] / wall,
                        s["tokens"] / wall,
                        wall,
                        again,
                        int(s2["requests"]),
                    )
                )
        print(
            f"\nlive executor -> {os.environ[ENV_URL]} (SmolLM2-135M, vLLM CPU); "
            f"{args.items} questions x {args.samples} samples, n=1 requests, QA max_tokens 12\n"
        )
        head = (
            "configured", "achieved", "peak", "requests", "req/s", "tok/s",
            "first run s", "cached re-run s", "re-run calls",
        )  # fmt: skip
        widths = [max(10, len(h)) for h in head]
        print("  ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
        for r in rows:
            cells = [
                str(r[0]), f"{r[1]:.2f}", str(r[2]), str(r[3]), f"{r[4]:.2f}", f"{r[5]:.1f}",
                f"{r[6]:.2f}", f"{r[7]:.3f}", str(r[8]),
            ]  # fmt: skip
            print("  ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
