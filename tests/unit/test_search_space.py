"""A search space and cost model that fit real tasks: sample-count sets searched exactly, per-model
nominal lengths, train-only tasks, compressed and broken sample stores, answer normalisers."""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

import pytest
import yaml

from agenttts.archive import Archive
from agenttts.environment.budget import stage_budget
from agenttts.environment.metrics import NORMALIZERS
from agenttts.environment.registry import run_batch
from agenttts.environment.space import (
    Config,
    config_problems,
    count_feasible,
    fit_budget,
    iter_feasible,
    max_samples_for,
    sample_feasible,
)
from agenttts.environment.task import TaskError
from agenttts.environment.task_loading import load_task, parse_task
from agenttts.errors import InputError
from agenttts.graph.runner import run_search
from agenttts.proposers import PROPOSERS, llm_proposers, make_proposer
from agenttts.proposers.base import ProposerSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "proposers"))
from tiny_grid import drive

SET = [1, 2, 4, 8, 16, 32]
MODELS = {"s": 3e9, "l": 12e9}


def _score(rm: str, rs: int, qm: str, qs: int) -> float:
    return round((0.6 if rm == "s" else 0.8) * (0.5 + 0.02 * qs - 0.0004 * qs * qs), 4)


def write_set_task(folder: Path, **data: int) -> Path:
    """A grid measured only at the counts in SET (a sparse table, as real sweeps are)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "t.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ret.model", "ret.samples", "qa.model", "qa.samples", "acc"])
        for rm in MODELS:
            for rs in SET:
                for qm in MODELS:
                    for qs in SET:
                        w.writerow([rm, rs, qm, qs, _score(rm, rs, qm, qs)])
    stage = {
        "prompt_tokens": 256,
        "gen_tokens": 64,
        "samples": SET,
        "models": [{"name": m, "params": p} for m, p in MODELS.items()],
    }
    task = {
        "name": "set-grid",
        "budget": 60,
        "metrics": ["acc"],
        "main_metric": "acc",
        "data": data or {"train_size": 50, "test_size": 50},
        "environment": {"kind": "grid", "settings": {"table": "t.csv"}},
        "stages": [{"name": "ret", **stage}, {"name": "qa", **stage}],
    }
    (folder / "t.yaml").write_text(yaml.safe_dump(task))
    return folder / "t.yaml"


def test_a_sample_set_is_the_whole_space(tmp_path):
    task = load_task(write_set_task(tmp_path))
    assert task.stages[0].samples == SET and task.stages[0].max_samples == 32
    feasible = list(iter_feasible(task))
    assert len(feasible) == count_feasible(task) > 0
    assert all(c[s].samples in SET for c in feasible for s in task.stage_names)
    odd = Config.of({"ret": ("s", 3), "qa": ("s", 1)})
    assert config_problems(task, odd) == [
        "stage 'ret': samples 3 is not one of the stage's sample counts 1, 2, 4, 8, 16, 32"
    ]
    assert max_samples_for(task.stages[1], "s", 20.0) in SET
    fitted = fit_budget(task, Config.of({"ret": ("l", 32), "qa": ("s", 32)}), keep="qa")
    assert fitted is not None and fitted["ret"].samples in SET
    import random

    drawn = sample_feasible(task, random.Random(0), 20)
    assert all(c[s].samples in SET for c in drawn for s in task.stage_names)


@pytest.mark.parametrize("name", sorted(set(PROPOSERS) - llm_proposers() - {"gp"}))
def test_every_proposer_respects_the_set_and_the_table_answers_exactly(tmp_path, name):
    task = load_task(write_set_task(tmp_path))
    archive, _, _ = drive(task, make_proposer(name, ProposerSettings(seed=1)), 3, 5)
    assert archive, name
    for t in Archive(archive).executed():
        assert all(t.config[s].samples in SET for s in task.stage_names), t.config.short()
        assert (t.source or "").endswith("exact"), t.source  # no nearest-row answer


def test_a_sample_set_contradicting_max_samples_is_one_clear_error():
    stage = {
        "name": "qa",
        "prompt_tokens": 9,
        "gen_tokens": 9,
        "models": [{"name": "m", "params": 1e9}],
    }
    base = {
        "name": "x",
        "budget": 9,
        "metrics": ["a"],
        "main_metric": "a",
        "environment": {"kind": "grid"},
    }
    with pytest.raises(TaskError, match="contradicts samples"):
        parse_task({**base, "stages": [{**stage, "samples": [1, 4], "max_samples": 8}]})
    with pytest.raises(TaskError, match="samples must be >= 1"):
        parse_task({**base, "stages": [{**stage, "samples": [0, 4]}]})


def test_a_model_may_override_its_stages_nominal_lengths():
    task = parse_task(
        {
            "name": "lengths",
            "budget": 10_000,
            "metrics": ["a"],
            "main_metric": "a",
            "environment": {"kind": "grid"},
            "stages": [
                {
                    "name": "math",
                    "prompt_tokens": 300,
                    "gen_tokens": 14_700,
                    "models": [
                        {"name": "short", "params": 8e9},
                        {"name": "long", "params": 8e9, "gen_tokens": 19_800},
                    ],
                }
            ],
        }
    )
    stage = task.stages[0]
    assert stage.lengths("short") == (300, 14_700) and stage.lengths("long") == (300, 19_800)
    assert stage.cost("long", 4) == stage_budget(4, 8e9, 300, 19_800)
    assert stage.cost("long", 4) > stage.cost("short", 4)
    assert max_samples_for(stage, "long", 2000) < max_samples_for(stage, "short", 2000)


def test_a_train_only_task_searches_and_says_no_test_split(tmp_path):
    path = write_set_task(tmp_path, train_size=50, test_size=0)
    task = load_task(path)
    with pytest.raises(InputError, match="no test split"):
        run_batch(task, [next(iter_feasible(task))], "test")
    settings = {
        "proposer": "insight",
        "batch_size": 4,
        "max_iterations": 1,
        "report_dir": str(tmp_path / "r"),
    }
    outcome = run_search(str(path), "t", tmp_path / "db", settings)
    assert outcome.finished and outcome.best is not None
    assert outcome.values.get("test_result") is None
    assert not outcome.trials.failed()  # no error rows
    report = json.loads(Path(outcome.values["report"]["json"]).read_text())
    assert report["no_test_split"] and report["test"] is None
    assert "| test | no test split" in Path(outcome.values["report"]["markdown"]).read_text()


def samples_task(folder: Path, store: str, normalizer: str = "squad") -> Path:
    task = {
        "name": "math",
        "budget": 10_000,
        "metrics": ["accuracy"],
        "main_metric": "accuracy",
        "data": {"train_size": 2, "test_size": 0},
        "environment": {"kind": "samples", "settings": {"store": store}},
        "stages": [
            {
                "name": "qa",
                "prompt_tokens": 100,
                "gen_tokens": 100,
                "max_samples": 3,
                "answer_normalizer": normalizer,
                "models": [{"name": "m", "params": 3e9}],
            }
        ],
    }
    (folder / "t.yaml").write_text(yaml.safe_dump(task))
    return folder / "t.yaml"


ROWS = [
    # q1: gold -3; the vote is "3" (twice) over "-3": SQuAD merges all three into "3".
    *(
        {"model": "m", "qid": "1", "sample": i, "answer": a, "gold": "-3", "tokens": 5}
        for i, a in enumerate(["3", "-3", "3"])
    ),
    # q2: gold 38.5; the samples say 385: SQuAD merges them.
    *(
        {"model": "m", "qid": "2", "sample": i, "answer": "385", "gold": "38.5", "tokens": 5}
        for i in range(3)
    ),
]


@pytest.mark.parametrize(
    ("normalizer", "accuracy"), [("squad", 1.0), ("exact", 0.0), ("numeric", 0.0)]
)
def test_a_gz_store_is_read_directly_and_the_normaliser_is_the_stages(
    tmp_path, normalizer, accuracy
):
    with gzip.open(tmp_path / "s.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in ROWS)
    task = load_task(samples_task(tmp_path, "s.jsonl.gz", normalizer))
    [result] = run_batch(task, [Config.of({"qa": ("m", 3)})], "train")
    assert result.ok and result.metrics["accuracy"] == accuracy


def test_normalisers_keep_signs_and_decimals_apart():
    squad, exact, numeric = (NORMALIZERS[k] for k in ("squad", "exact", "numeric"))
    assert squad("-3") == squad("3") and squad("38.5") == squad("385")
    assert exact("-3") != exact("3") and exact(" 38.5 ") == "38.5"
    assert numeric("-3") != numeric("3") and numeric("38.5") != numeric("385")
    assert numeric("The answer is 1,000.") == numeric("1000.0") == numeric("1e3") == "1000"
    assert numeric("no number") == ""


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("s.jsonl.gz", b"this is not gzip"),
        ("s.jsonl.gz", gzip.compress(b'{"model": "m"')[:-6]),  # truncated
        ("s.jsonl", b"\xff\xfe not utf-8"),
    ],
)
def test_a_bad_store_is_one_clear_task_error(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(TaskError) as err:
        load_task(samples_task(tmp_path, name))
    assert "environment.settings.store" in str(err.value) and "Traceback" not in str(err.value)
