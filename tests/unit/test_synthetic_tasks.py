"""The synthetic bench tasks: generated, never edited, and their curves have the claimed shapes.

The shapes are read through the project's own executors (vote over the stored samples, the grid's
exhaustive sweep), so a generator change that loses a shape fails here.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

import pytest

from agenttts.environment.executor import HasOptimum
from agenttts.environment.registry import make_executor
from agenttts.environment.replay_samples import SamplesReplayExecutor
from agenttts.environment.space import Config, max_samples_for
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task
from agenttts.search_bench import SYNTHETIC_TASKS
from agenttts.tasks.synthetic import generate

SYN_DIR = Path(generate.__file__).resolve().parent


@cache
def task(name: str) -> Task:
    return load_task(SYN_DIR / f"{name}.yaml")


def content(path: Path) -> bytes:
    """A file's bytes; a gzip store's decompressed (gzip bytes depend on the zlib build)."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def test_committed_files_are_the_generators_output(tmp_path):
    written = generate.generate(tmp_path)
    relative = sorted(str(p.relative_to(tmp_path)) for p in written)
    committed = sorted(
        str(p.relative_to(SYN_DIR))
        for p in SYN_DIR.rglob("*")
        if p.is_file() and (p.name.startswith("syn-"))
    )
    assert committed == relative
    for name in relative:
        assert content(tmp_path / name) == content(SYN_DIR / name), f"{name} was edited by hand"
    assert sorted(p.removesuffix(".yaml") for p in relative if p.endswith(".yaml")) == sorted(
        SYNTHETIC_TASKS
    )
    assert sum((SYN_DIR / n).stat().st_size for n in relative) < 2_000_000
    assert all("Synthetic" in task(name).description for name in SYNTHETIC_TASKS)


def curve(name: str, model: str, top: int) -> list[float]:
    """Vote accuracy on the training split at S = 1..top, replayed by the samples executor."""
    ex = make_executor(task(name))
    assert isinstance(ex, SamplesReplayExecutor)
    stage = ex.stage.name
    return [
        ex.replay(Config.of({stage: (model, s)}), "train").metrics["accuracy"]
        for s in range(1, top + 1)
    ]


def best_within_budget(name: str, model: str) -> float:
    t = task(name)
    return max(curve(name, model, max_samples_for(t.stages[0], model, t.budget)))


def test_syn_mcq_vote_rises_then_falls_for_the_largest_model():
    t = task("syn-mcq")
    big = t.stages[0].largest_model().name
    acc = curve("syn-mcq", big, 64)
    peak = max(range(64), key=acc.__getitem__)
    assert acc[peak] >= acc[0] + 0.05  # rises ...
    assert acc[-1] <= acc[peak] - 0.03  # ... then falls (Chen et al. 2024)
    ex = make_executor(t)
    assert isinstance(ex, HasOptimum)
    best = ex.optimum("train")
    chosen = best.config[t.stages[0].name]
    # the optimum is that peak, at fewer samples than the budget allows
    assert chosen.model == big and chosen.samples < max_samples_for(t.stages[0], big, t.budget)


def test_syn_math_a_smaller_model_wins_at_equal_compute_syn_gsm_the_largest():
    math_models = task("syn-math").stages[0]
    big = math_models.largest_model().name
    smaller = max(best_within_budget("syn-math", m.name) for m in math_models.models[:-1])
    assert smaller > best_within_budget("syn-math", big)
    gsm = task("syn-gsm").stages[0]
    big = gsm.largest_model().name
    assert best_within_budget("syn-gsm", big) > max(
        best_within_budget("syn-gsm", m.name) for m in gsm.models[:-1]
    )
    acc = curve("syn-gsm", big, 64)  # rises, then flat (Brown et al. 2024)
    assert acc[-1] > acc[0] and acc[-1] >= max(acc) - 0.02


@pytest.mark.parametrize("name", ["syn-gsm", "syn-math", "syn-mcq"])
def test_completion_lengths_differ_by_model(name):
    ex = make_executor(task(name))
    assert isinstance(ex, SamplesReplayExecutor)
    per_sample = {
        m: ex.replay(Config.of({ex.stage.name: (m, 8)}), "train").completion_tokens
        for m in ex.stage.model_names
    }
    assert len(set(per_sample.values())) == len(per_sample)


@pytest.mark.parametrize("name", ["syn-rag", "syn-tools"])
def test_composite_optimum_mixes_model_sizes(name):
    t = task(name)
    ex = make_executor(t)
    assert isinstance(ex, HasOptimum)
    best = ex.optimum("train")
    sizes = {t.stage(s).model(c.model).params for s, c in best.config.items()}
    assert len(sizes) > 1, best.config.short()
    if name == "syn-tools":  # the narrow peak: at most 3 of its ~6,000 within the bench's tolerance
        assert ex.count_at_least(best.score - 0.005) <= 3
