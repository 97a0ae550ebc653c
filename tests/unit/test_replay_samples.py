"""Samples replay: the vectorised vote against a plain reference, errors, measured cost, checks."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import agenttts.environment.replay_samples as rs
from agenttts.environment.budget import stage_budget
from agenttts.environment.metrics import normalize_answer
from agenttts.environment.registry import make_executor
from agenttts.environment.space import Config
from agenttts.environment.splits import split_items
from agenttts.environment.task import TaskError
from agenttts.environment.task_loading import load_task

PARAMS = {"m1": 3e9, "m2": 8e9, "m3": 70e9}


def task_dict(models=("m1", "m2"), train=4, test=3, **extra: Any) -> dict:
    return {
        "name": "samples-test",
        "budget": 10_000,
        "stages": [
            {
                "name": "qa",
                "models": [{"name": m, "params": PARAMS[m]} for m in models],
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 64,
            }
        ],
        "metrics": ["accuracy"],
        "main_metric": "accuracy",
        "data": {"train_size": train, "test_size": test, "seed": 3},
        "environment": {"kind": "samples", "settings": {"store": "store.jsonl"}},
        **extra,
    }


def write_store(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def random_rows(seed: int, models=("m1", "m2"), n_q=7, n_s=24, with_prompt=True) -> list[dict]:
    rnd = random.Random(seed)
    # Surface variants of the same answer exercise normalisation; a small vocabulary makes ties.
    vocab = ["Paris", "the paris", "PARIS!", "Lyon", "lyon.", "Nice", "an Nice", None, ""]
    rows = []
    for m in models:
        for q in range(n_q):
            gold = rnd.choice([["paris"], ["Lyon", "Lyons"], "nice"])
            for s in range(n_s):
                row = {
                    "model": m,
                    "qid": q,
                    "sample": s,
                    "answer": rnd.choice(vocab),
                    "gold": gold,
                    "tokens": rnd.randint(1, 60),
                }
                if with_prompt:
                    row["prompt_tokens"] = 100 + q
                rows.append(row)
    rnd.shuffle(rows)  # the store's row order must not matter
    # Gold must be the same for every row of a qid: fix it from the first row seen.
    first: dict[Any, Any] = {}
    for r in rows:
        r["gold"] = first.setdefault(r["qid"], r["gold"])
    return rows


def reference(rows: list[dict], model: str, qids: list, samples: int) -> tuple[float, int]:
    """Straightforward per-question Counter vote: ties go to the answer seen first."""
    correct = completion = 0
    for q in qids:
        mine = sorted(
            (r for r in rows if r["model"] == model and r["qid"] == q), key=lambda r: r["sample"]
        )[:samples]
        answers = [normalize_answer(r["answer"]) for r in mine]
        counts = Counter(answers)
        best = max(counts.values())
        winner = next(a for a in answers if counts[a] == best)
        gold = mine[0]["gold"]
        golds = [gold] if isinstance(gold, str) else gold
        correct += winner in {normalize_answer(g) for g in golds}
        completion += sum(r["tokens"] for r in mine)
    return correct / len(qids), completion


def make(tmp_path: Path, rows: list[dict], **kw: Any):
    write_store(tmp_path / "store.jsonl", rows)
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task_dict(**kw)))
    task = load_task(tmp_path / "task.yaml")
    return task, make_executor(task)


def run(ex, model: str, samples: int, split="train"):
    (r,) = asyncio.run(ex.run([Config.of({"qa": (model, samples)})], split))
    return r


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vote_matches_reference_on_random_data(tmp_path, seed):
    rows = random_rows(seed)
    task, ex = make(tmp_path, rows)
    qids = sorted({r["qid"] for r in rows})
    for split in ("train", "test"):
        split_qids = split_items(task.data, qids, split)
        for model in ("m1", "m2"):
            for s in range(1, 25):
                r = run(ex, model, s, split)
                acc, completion = reference(rows, model, split_qids, s)
                assert r.ok, r.error
                assert r.metrics["accuracy"] == pytest.approx(acc), (split, model, s)
                assert r.completion_tokens == completion


def test_vote_matches_reference_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(rs, "CHUNK_BYTES", 1)  # one question per chunk
    rows = random_rows(5, models=("m1",))
    rs._load_cached.cache_clear()
    task, ex = make(tmp_path, rows, models=("m1",))
    qids = split_items(task.data, sorted({r["qid"] for r in rows}), "train")
    for s in (1, 2, 7, 24):
        assert run(ex, "m1", s).metrics["accuracy"] == pytest.approx(
            reference(rows, "m1", qids, s)[0]
        )


def test_tie_goes_to_the_answer_seen_first():
    # Codes in first-seen order: b=0, a=1. Samples b, a, a, b.
    codes = np.array([[0, 1, 1, 0]])
    b_is_gold = np.array([[True, False]])
    correct = rs.vote_tables(codes, b_is_gold)[0]
    # S=1: b. S=2: tie b/a -> b (seen first). S=3: a wins 2-1. S=4: tie 2-2 -> b.
    assert correct.tolist() == [True, True, False, True]


def test_end_to_end_tie_rule_and_normalisation(tmp_path):
    answers = ["The Lyon", "paris", "Paris.", "lyon"]
    rows = [
        {"model": "m1", "qid": "q", "sample": i, "answer": a, "gold": "Lyon", "tokens": 5}
        for i, a in enumerate(answers)
    ]
    _, ex = make(tmp_path, rows, models=("m1",), train=1, test=0)
    assert [run(ex, "m1", s).metrics["accuracy"] for s in (1, 2, 3, 4)] == [1.0, 1.0, 0.0, 1.0]


def test_too_few_samples_is_a_recorded_error(tmp_path):
    rows = random_rows(0, n_q=5, n_s=8)
    rows = [r for r in rows if not (r["model"] == "m2" and r["qid"] == 3 and r["sample"] >= 6)]
    task, ex = make(tmp_path, rows, train=5, test=0)
    r = run(ex, "m2", 6)
    assert r.ok
    r = run(ex, "m2", 7)
    assert not r.ok and "model 'm2', qid '3': 6 stored samples" in r.error and "needs 7" in r.error
    assert r.nominal_cost == pytest.approx(task.stage("qa").cost("m2", 7))


def test_a_gap_in_sample_indexes_counts_as_missing(tmp_path):
    rows = [
        {"model": "m1", "qid": 1, "sample": s, "answer": "x", "gold": "x", "tokens": 1}
        for s in (0, 1, 3)
    ]
    _, ex = make(tmp_path, rows, models=("m1",), train=1, test=0)
    assert run(ex, "m1", 2).ok
    assert "2 stored samples" in run(ex, "m1", 3).error


def test_measured_cost_prompt_once_completion_per_sample(tmp_path):
    rows = random_rows(1, n_q=6, n_s=10)
    task, ex = make(tmp_path, rows, train=4, test=2)
    qids = split_items(task.data, sorted({r["qid"] for r in rows}), "train")
    r = run(ex, "m2", 5)
    _, completion = reference(rows, "m2", qids, 5)
    prompt = sum(100 + q for q in qids)
    assert r.prompt_tokens == prompt and r.completion_tokens == completion
    expected = stage_budget(5, 8e9, prompt / len(qids), completion / (len(qids) * 5))
    assert r.measured_cost == pytest.approx(expected)
    assert r.stages["qa"].measured_cost == pytest.approx(expected)
    assert r.nominal_cost == pytest.approx(stage_budget(5, 8e9, 256, 64))
    assert r.calls == 0  # a replay makes no model calls


def test_measured_cost_without_prompt_tokens_uses_nominal_prompt(tmp_path):
    rows = random_rows(2, n_q=4, n_s=4, with_prompt=False)
    task, ex = make(tmp_path, rows, train=4, test=0)
    qids = split_items(task.data, sorted({r["qid"] for r in rows}), "train")
    r = run(ex, "m1", 3)
    _, completion = reference(rows, "m1", qids, 3)
    assert r.measured_cost == pytest.approx(stage_budget(3, 3e9, 256, completion / (4 * 3)))
    assert r.prompt_tokens == 0 and r.details["prompt_tokens_from"].startswith("nominal")


def test_qids_sorted_numerically_for_the_split(tmp_path):
    rows = [
        {"model": "m1", "qid": q, "sample": 0, "answer": "x", "gold": "x", "tokens": 1}
        for q in (10, 2, 1)
    ]
    _, ex = make(tmp_path, rows, models=("m1",), train=2, test=1)
    assert ex.store.qids == ["1", "2", "10"]


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ('{"model": "m1", "qid": 1}\n', "missing sample, answer, gold, tokens"),
        ("not json\n", "line 1"),
        (
            '{"model":"m1","qid":1,"sample":-1,"answer":"a","gold":"a","tokens":1}\n',
            "sample must be an integer >= 0",
        ),
        (
            '{"model":"m1","qid":1,"sample":0,"answer":"a","gold":"a","tokens":1}\n' * 2,
            "duplicate sample 0",
        ),
        (
            '{"model":"m1","qid":1,"sample":0,"answer":"a","gold":"a","tokens":1}\n'
            '{"model":"m1","qid":1,"sample":1,"answer":"a","gold":"b","tokens":1}\n',
            "gold differs from line 1",
        ),
        ("", "holds no samples"),
    ],
)
def test_bad_store_rows_are_reported(tmp_path, store, expected):
    (tmp_path / "store.jsonl").write_text(store)
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task_dict(models=("m1",))))
    with pytest.raises(TaskError) as info:
        load_task(tmp_path / "task.yaml")
    assert any(expected in str(p) for p in info.value.problems), info.value.problems


def test_check_task(tmp_path):
    write_store(tmp_path / "store.jsonl", random_rows(0, models=("m1",), n_q=3, n_s=2))
    cases = [
        (task_dict(models=("m1", "m3")), "stages[qa].models[m3]", "no samples in the store"),
        (
            {
                **task_dict(),
                "environment": {"kind": "samples", "settings": {"store": "gone.jsonl"}},
            },
            "environment.settings.store",
            "missing sample store",
        ),
        ({**task_dict(models=("m1",)), "metrics": ["accuracy", "f1"]}, "metrics", "not 'f1'"),
    ]
    two_stage = task_dict(models=("m1",))
    two_stage["stages"].append({**two_stage["stages"][0], "name": "qa2"})
    cases.append((two_stage, "stages", "single-stage task"))
    for raw, field, text in cases:
        (tmp_path / "task.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(TaskError) as info:
            load_task(tmp_path / "task.yaml")
        assert any(p.field == field and text in p.message for p in info.value.problems), (
            info.value.problems
        )
