"""Team storage: `search`, `runs`, `show` and `bench` against a real PostgreSQL server, as a user
runs them (the kill -9 resume on PostgreSQL is in test_resume_kill.py, the writer lock in
test_writer_lock.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from search_cli import AGENTTTS

pytestmark = pytest.mark.integration


def agenttts(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENTTTS, *args], capture_output=True, text=True, timeout=300)


def test_search_runs_show_and_bench_on_postgres(tmp_path, postgres_db):
    db = postgres_db()
    task = str(write_grid_task(tmp_path / "task"))
    for thread in ("b", "a"):
        out = agenttts(
            "search", task, "--thread", thread, "--db", db, "--proposer", "insight",
            "--batch-size", "3", "--max-iterations", "2", "--report-dir", str(tmp_path / "rep"),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"thread {thread}: maximum iterations reached (2)" in out.stdout

    runs = [json.loads(line) for line in agenttts("runs", "--db", db, "--json").stdout.split("\n")
            if line]  # fmt: skip
    assert [r["thread_id"] for r in runs] == ["b", "a"]  # oldest first
    assert all(r["status"] == "finished" and r["trials"] >= 6 for r in runs)
    table = agenttts("runs", "--db", db).stdout
    assert table.splitlines()[0].split()[:3] == ["thread", "task", "proposer"]

    show = agenttts("show", "a", "--db", db)
    assert show.returncode == 0, show.stderr
    assert "status: finished" in show.stdout and "guidelines:" in show.stdout
    state = json.loads(agenttts("show", "a", "--db", db, "--json").stdout)
    assert state["status"] == "finished" and state["archive"]
    missing = agenttts("show", "nope", "--db", db)
    assert missing.returncode == 2 and "no thread 'nope'" in missing.stderr

    bench = agenttts(
        "bench", "sim-2wiki", "--methods", "random", "--seeds", "1", "--max-trials", "6",
        "--db", db, "--out", str(tmp_path / "bench"), "--quiet",
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    assert json.loads((tmp_path / "bench" / "bench.json").read_text())["runs"]
    assert (tmp_path / "bench" / "runs").is_dir()  # per-run reports in --out, not beside a URL
    listed = agenttts("runs", "--db", db, "--json").stdout
    assert '"thread_id": "sim-2wiki:random:seed0"' in listed


def test_an_unreachable_database_is_one_clear_error_without_its_password():
    pytest.importorskip("psycopg", reason="needs the postgres extra: pip install -e '.[postgres]'")
    url = "postgresql://someone:s3cret@127.0.0.1:1/agenttts?connect_timeout=5"
    for cmd in (["runs", "--db", url], ["show", "x", "--db", url]):
        out = agenttts(*cmd)
        assert out.returncode == 2, out.stderr
        assert "cannot connect to postgresql://someone:***@127.0.0.1:1/agenttts" in out.stderr
        assert "s3cret" not in out.stderr + out.stdout
        assert "Traceback" not in out.stderr
