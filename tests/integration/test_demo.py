"""`agenttts demo`, the command itself, over the stub OpenAI-compatible server standing in for the
embedded one ($AGENTTTS_EMBEDDED_URL points at it, so no vLLM starts): a stopped demo continues
when run again, a finished one starts a new thread and says why and how many samples it replayed,
and the end names what was found, what was spent, where the report is and each phase's time.
(The demo task on the real embedded server is what `make demo` runs; its time is measured, not
asserted: see the README's Quick start.)"""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.cli.main import main
from agenttts.environment.embedded import ENV_URL

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from openai_server import StubServer

pytestmark = pytest.mark.integration

ITEMS = [
    {"id": f"q{i}", "question": f"Capital of {c}?", "answers": [a]}
    for i, (c, a) in enumerate(
        [("France", "Paris"), ("Norway", "Oslo"), ("Italy", "Rome"), ("Spain", "Madrid")]
    )
]
PIPE = """
from agenttts.pipeline import parse_answer, vote

async def answer(item, stages):
    samples = await stages["qa"].sample([{"role": "user", "content": item["question"]}])
    return vote([parse_answer(s.text) for s in samples])
"""


def reply(body: dict[str, Any]) -> str:
    asked = re.search(r"Capital of (\w+)\?", body["messages"][-1]["content"])
    cities = {"France": "Paris", "Norway": "Oslo", "Italy": "Rome"}
    return f"Answer: {cities.get(asked.group(1) if asked else '', 'Lyon')}"


def write_task(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.jsonl").write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    (root / "pipes.py").write_text(PIPE)
    task = {
        "name": "mini-demo",
        "budget": 1,
        "stages": [
            {
                "name": "qa",
                "models": [{"name": "m", "endpoint": "embedded", "params": 135e6}],
                "prompt_tokens": 64,
                "gen_tokens": 8,
                "max_samples": 4,
                "aggregator": "vote",
                "settings": {"max_tokens": 8},
            }
        ],
        "metrics": ["em"],
        "main_metric": "em",
        "data": {"path": "data.jsonl", "train_size": 2, "test_size": 2},
        "environment": {
            "kind": "python",
            "settings": {"pipeline": "pipes:answer", "cache": str(root / "samples.sqlite")},
        },
    }
    (root / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return root / "task.yaml"


def demo(task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    argv = ["demo", "--task", str(task), "--db", str(tmp_path / "demo.sqlite"), "--quiet"]
    argv += ["--proposer", "insight", "--report-dir", str(tmp_path / "reports")]
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_stopped_demo_continues_and_a_finished_one_replays_its_samples(
    tmp_path, capsys, monkeypatch
):
    task = write_task(tmp_path / "task")
    with socket.socket() as s:  # a port nothing listens on: the server is "down"
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    monkeypatch.setenv(ENV_URL, dead)
    code, out = demo(task, tmp_path, capsys)
    assert code == 3, out  # resumable: nothing ran
    stopped = re.search(r"search thread '(demo-[\d-]+)'", out)
    assert stopped is not None
    # the stop names the exact command that continues the thread (`make demo` runs `demo`)
    assert f"continue with `agenttts demo --task {task} " in out
    assert f"--thread {stopped.group(1)}`" in out

    with StubServer(reply, models=("m",)) as server:
        monkeypatch.setenv(ENV_URL, server.url)
        code, out = demo(task, tmp_path, capsys)
        assert code == 0, out
        assert f"continuing the last demo thread {stopped.group(1)!r}, which did not finish" in out
        assert "found: qa=mx" in out and "spent: search cost" in out
        assert re.search(r"report: .*/reports/demo-[\d-]+/report\.md", out)
        first = re.search(r"replayed \d+ of the (\d+) samples .* drew (\d+) in \d+ endpoint", out)
        assert first is not None and int(first.group(2)) > 0, out
        for phase in ("initial trials", "search trials", "final evaluation", "total"):
            assert re.search(rf"\n  {phase} +\d+ s", out), phase
        calls = len(server.requests)

        code, out = demo(task, tmp_path, capsys)
        assert code == 0, out
        assert f"the last demo thread {stopped.group(1)!r} finished" in out
        assert "starting a new thread 'demo-" in out
        again = re.search(r"replayed (\d+) of the (\d+) samples .* drew 0 in 0 endpoint calls", out)
        assert again is not None and again.group(1) == again.group(2) == first.group(1)
        assert len(server.requests) == calls  # the second demo asked the server nothing
