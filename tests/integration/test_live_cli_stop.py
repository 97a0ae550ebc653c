"""`agenttts search` on a live task whose endpoint fails everything: the retries show on stderr,
the circuit breaker stops the run with exit 3 before it spends on, and once the endpoint is back
the same command finishes the thread. Real processes, a real local server, a real SQLite file."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from live_task import MAX_ATTEMPTS, RETRY, TASKS, raw_task
from openai_server import FaultServer

pytestmark = pytest.mark.integration

AGENTTTS = str(Path(sys.executable).with_name("agenttts"))


def test_a_failing_endpoint_stops_the_search_resumably_and_visibly(tmp_path):
    with FaultServer(["toggle"]) as server:
        raw = raw_task(server.url, ["toggle"])
        raw["data"]["path"] = str(TASKS / raw["data"]["path"])
        raw["environment"]["settings"] = {"cache": str(tmp_path / "c.sqlite"), "retry": RETRY}
        task = tmp_path / "task.yaml"
        task.write_text(yaml.safe_dump(raw))
        search = [AGENTTTS, "search", str(task), "--db", str(tmp_path / "runs.sqlite"),
                  "--thread", "t", "--proposer", "random", "--max-trials", "3", "--batch-size",
                  "3"]  # fmt: skip

        server.broken = True
        out = subprocess.run(search, capture_output=True, text=True, timeout=300)
        assert out.returncode == 3, out.stderr
        url = server.url
        assert f"retry: model 'toggle' at {url}: HTTP 500, attempt 1/{MAX_ATTEMPTS} failed" in (
            out.stderr
        )
        assert "model 'toggle' is not answering" in out.stderr
        assert "Traceback" not in out.stderr
        # what stopped it, not the agent, and the exact command that continues the thread
        continues = f"continue with `{shlex.join(search)}`"
        assert f"once the endpoint of model 'toggle' answers again, {continues}" in out.stderr
        # stopped at the first request that failed for good: the ones in flight beside it
        # (2 items x up to 3 trials) stop at their next attempt, nothing more is sent
        assert server.counts["toggle"] <= 6 * MAX_ATTEMPTS
        # `runs` and `show` quote the cause as it was said, not as Python's repr escapes it
        db = ["--db", str(tmp_path / "runs.sqlite")]
        runs = subprocess.run([AGENTTTS, "runs", *db], capture_output=True, text=True, timeout=60)
        show = subprocess.run(
            [AGENTTTS, "show", "t", *db], capture_output=True, text=True, timeout=60
        )
        assert "stopped in execute_trials: model 'toggle' is not answering" in runs.stdout
        assert "stopped by: model 'toggle' is not answering (" in show.stdout
        assert '"message": "boom"' in show.stdout
        assert "\\'" not in runs.stdout + show.stdout, show.stdout

        server.broken = False
        again = subprocess.run(search, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "thread t:" in again.stdout and "retry:" not in again.stderr
