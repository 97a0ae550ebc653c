"""Two real `agenttts evaluate` processes drawing the same configuration at the same time into one
sample cache, against a real local server (`openai_server.py`) that logs every answered request:
every sample is requested exactly once over both, both get the same result, and the cache holds
each sample once, no claim left over, and passes SQLite's integrity check."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from live_task import TASKS, raw_task
from openai_server import FaultProcess

pytestmark = pytest.mark.integration

AGENTTTS = str(Path(sys.executable).with_name("agenttts"))
SEED = 100  # sample i of a prompt is the request with seed SEED + i
ITEMS, SAMPLES = 3, 6


@pytest.mark.parametrize("counts", [(SAMPLES, SAMPLES), (4, SAMPLES)], ids=["same", "4-and-6"])
def test_two_processes_sharing_a_cache_draw_each_sample_once(tmp_path, counts):
    cache = tmp_path / "samples.sqlite"
    with FaultProcess(tmp_path / "answers.log", delay=0.3) as server:
        raw = raw_task(server.url, ["ok"])
        raw["data"] = {**raw["data"], "path": str(TASKS / raw["data"]["path"]), "train_size": ITEMS}
        raw["stages"][1]["settings"]["seed"] = SEED
        raw["environment"]["settings"] = {"cache": str(cache)}
        task = tmp_path / "task.yaml"
        task.write_text(yaml.safe_dump(raw))
        configs = [
            json.dumps(
                {"retrieval": {"model": "bm25", "samples": 1}, "qa": {"model": "ok", "samples": n}}
            )
            for n in counts
        ]
        base = [AGENTTTS, "evaluate", str(task), "--split", "train", "--json", "--config"]
        procs = [
            subprocess.Popen([*base, c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c in configs
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        answered = server.answered()

    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    results = [json.loads(out) for out, _ in outs]
    per_sample = Counter((a["prompt"], a["seed"] - SEED) for a in answered)
    assert len(per_sample) == ITEMS * SAMPLES and set(per_sample.values()) == {1}
    assert sum(r["calls"] for r in results) == ITEMS * SAMPLES
    if counts[0] == counts[1]:  # the same configuration: the same result, whoever drew what
        same = ("metrics", "nominal_cost", "measured_cost", "prompt_tokens", "completion_tokens")
        first, second = ({k: r[k] for k in same} for r in results)
        assert first == second
    else:  # the larger run drew at least the indexes the smaller one does not use
        assert results[1]["calls"] >= ITEMS * (counts[1] - counts[0])

    con = sqlite3.connect(cache)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("SELECT COUNT(*) FROM samples").fetchone() == (ITEMS * SAMPLES,)
    assert con.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT key, idx FROM samples)"
    ).fetchone() == (ITEMS * SAMPLES,)
    assert con.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)
    con.close()
