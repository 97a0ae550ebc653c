"""Samples replay speed: configurations per second, vectorised path beside a naive Counter vote.

Builds a 30-question x 128-sample x 4-model store in a temporary folder, loads it once through the
executor (timed separately), then scores every (model, S) configuration, S = 1..128, on all 30
questions: through the executor's vectorised tables (one call at a time, and as one batch through
the async interface), and through a plain per-question `Counter` vote over the same pre-normalised
answers (grouped and normalised once, outside the timing). Checks that all agree, prints a table
and exits (status 1 on disagreement).

    python perf/bench_samples_replay.py [--questions 30] [--samples 128] [--models 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from agenttts.environment.metrics import normalize_answer
from agenttts.environment.registry import make_executor
from agenttts.environment.replay_samples import SamplesReplayExecutor, _load_cached
from agenttts.environment.space import Config
from agenttts.environment.splits import split_items
from agenttts.environment.task_loading import load_task

T = TypeVar("T")


def build(folder: Path, n_q: int, n_s: int, n_m: int, seed: int = 0) -> tuple[Path, list[dict]]:
    rnd = random.Random(seed)
    rows = []
    for m in range(n_m):
        for q in range(n_q):
            gold = f"answer {q}"
            # A few plausible answers per question, the gold more likely for "larger" models.
            pool = [gold, f"Answer {q}.", f"wrong {q}", f"other {q % 5}", "", None]
            weights = [1 + m, 1 + m, 3, 2, 1, 1]
            for s in range(n_s):
                rows.append(
                    {
                        "model": f"m{m}",
                        "qid": q,
                        "sample": s,
                        "answer": rnd.choices(pool, weights)[0],
                        "gold": gold,
                        "tokens": rnd.randint(8, 64),
                        "prompt_tokens": 200 + q,
                    }
                )
    (folder / "store.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = {
        "name": "bench-samples",
        "budget": 1e9,
        "stages": [
            {
                "name": "qa",
                "models": [{"name": f"m{m}", "params": 3e9 * (m + 1)} for m in range(n_m)],
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": n_s,
            }
        ],
        "metrics": ["accuracy"],
        "main_metric": "accuracy",
        "data": {"train_size": n_q, "test_size": 0},
        "environment": {"kind": "samples", "settings": {"store": "store.jsonl"}},
    }
    (folder / "task.yaml").write_text(yaml.safe_dump(task))
    return folder / "task.yaml", rows


def naive_prepare(rows: list[dict]) -> dict[tuple[str, int], list[tuple[int, str, str]]]:
    """Group and normalise once, outside the timing, so the naive path pays only for voting."""
    by_q: dict[tuple[str, int], list[tuple[int, str, str]]] = {}
    for r in rows:
        by_q.setdefault((r["model"], r["qid"]), []).append(
            (r["sample"], normalize_answer(r["answer"]), normalize_answer(r["gold"]))
        )
    for v in by_q.values():
        v.sort()
    return by_q


def naive_scores(
    by_q: dict[tuple[str, int], list[tuple[int, str, str]]],
    configs: list[tuple[str, int]],
    qids: list[int],
) -> list[float]:
    out = []
    for model, s in configs:
        correct = 0
        for q in qids:
            samples = by_q[(model, q)][:s]
            answers = [a for _, a, _ in samples]
            counts = Counter(answers)
            best = max(counts.values())
            winner = next(a for a in answers if counts[a] == best)
            correct += winner == samples[0][2]
        out.append(correct / len(qids))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        task_path, rows = build(Path(tmp), args.questions, args.samples, args.models)
        _load_cached.cache_clear()
        t0 = time.perf_counter()
        task = load_task(task_path)  # check_task loads and indexes the store once (cached)
        executor = make_executor(task)
        assert isinstance(executor, SamplesReplayExecutor)
        load_s = time.perf_counter() - t0

        pairs = [(f"m{m}", s) for m in range(args.models) for s in range(1, args.samples + 1)]
        configs = [Config.of({"qa": p}) for p in pairs]
        qids = split_items(task.data, sorted({r["qid"] for r in rows}), "train")

        def timed(fn: Callable[[], T]) -> tuple[float, T]:
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                out = fn()
                best = min(best, time.perf_counter() - t)
            return best, out

        one_s, one = timed(lambda: [executor.replay(c, "train") for c in configs])
        batch_s, batch = timed(lambda: asyncio.run(executor.run(configs, "train")))
        by_q = naive_prepare(rows)
        naive_s, naive = timed(lambda: naive_scores(by_q, pairs, qids))
        # The table lookup alone, without building a TrialResult per configuration.
        idx = executor.split_index("train")
        tables = executor.store.models
        core_s, core = timed(
            lambda: [float(tables[m].correct[idx, s - 1].mean()) for m, s in pairs]
        )

    fast = [r.metrics["accuracy"] for r in one]
    agree = fast == naive == [r.metrics["accuracy"] for r in batch] == core
    n = len(configs)
    print(
        f"samples replay: {args.questions} questions x {args.samples} samples x {args.models} "
        f"models = {len(rows)} stored samples; {n} configurations (S = 1..{args.samples}); "
        f"best of {args.repeat}"
    )
    print(f"store load + vectorised index (once): {load_s:.3f} s\n")
    header = f"{'path':<46}{'seconds':>10}{'configs/s':>14}{'vs naive':>10}"
    print(header)
    print("-" * len(header))
    for name, secs in [
        ("vectorised, executor.evaluate one by one", one_s),
        ("vectorised, executor.run one batch (async)", batch_s),
        ("vectorised table lookup only (no result obj)", core_s),
        ("naive per-question Counter vote", naive_s),
    ]:
        print(f"{name:<46}{secs:>10.4f}{n / secs:>14,.0f}{naive_s / secs:>9.1f}x")
    print(f"\nresults agree: {agree}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
