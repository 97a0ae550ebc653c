"""The embedded server manager: `agenttts serve` standalone, its cleanup, `--print-vllm`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agenttts.cli.main import main
from agenttts.environment.embedded import vllm_commands

ROOT = Path(__file__).resolve().parents[2]


def test_print_vllm_for_the_paper_deployment(capsys):
    assert (
        main(["serve", "--print-vllm", str(ROOT / "tasks/deployments/paper-2wiki-vllm.yaml")]) == 0
    )
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("vllm serve")]
    assert len(lines) == 6
    assert (
        "vllm serve Qwen/Qwen2.5-72B-Instruct --served-model-name qwen2.5-72b-instruct "
        "--host 127.0.0.1 --port 8001 --tensor-parallel-size 4" in lines[0]
    )


def test_print_vllm_skips_embedded_and_rejects_missing_hf_model(tmp_path, capsys):
    dep = tmp_path / "d.yaml"
    dep.write_text(
        "models:\n  smollm2: {base_url: embedded, params: 135e6}\n"
        "  big: {base_url: 'http://10.0.0.5:9000/v1', params: 7e9, hf_model: org/big, "
        "api_key_env: MY_KEY}\n"
    )
    (line,) = vllm_commands(dep)
    assert "--port 9000" in line and "--host 0.0.0.0" in line and '--api-key "$MY_KEY"' in line
    only_embedded = tmp_path / "e.yaml"
    only_embedded.write_text("models:\n  smollm2: {base_url: embedded, params: 135e6}\n")
    assert main(["serve", "--print-vllm", str(only_embedded)]) == 2
    dep.write_text("models:\n  big: {base_url: 'http://127.0.0.1:9000/v1', params: 7e9}\n")
    assert main(["serve", "--print-vllm", str(dep)]) == 2
    assert "no hf_model" in capsys.readouterr().err


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
@pytest.mark.embedded
def test_serve_starts_answers_and_cleans_up_on_sigterm():
    if os.environ.get("AGENTTTS_EMBEDDED") != "1":
        pytest.skip("starts a second vLLM server (~35 s, 3 GiB): set AGENTTTS_EMBEDDED=1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agenttts.cli.main", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        url = proc.stdout.readline().strip()  # printed once healthy
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), proc.stderr.read()
        r = httpx.post(
            f"{url}/chat/completions",
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "Say hi."}],
                "max_tokens": 4,
                "n": 2,
            },
            timeout=60,
        )
        assert r.status_code == 200 and len(r.json()["choices"]) == 2
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        server_pids = subprocess.run(
            ["pgrep", "-f", "--", f"--port {port}"], capture_output=True, text=True
        ).stdout.split()
        assert server_pids
        vllm_pgid = os.getpgid(int(server_pids[0]))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        deadline = time.monotonic() + 30
        while _group_alive(vllm_pgid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(vllm_pgid), "vLLM's process group outlived `agenttts serve`"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/models", timeout=3)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_server_child_dies_with_its_killed_parent(tmp_path):
    """The mechanism the embedded server relies on when its parent is SIGKILLed (no cleanup ran)."""
    pidfile = tmp_path / "child.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "from agenttts.environment.embedded import _die_with_parent\n"
            "p = subprocess.Popen(['sleep', '300'], start_new_session=True, "
            "preexec_fn=_die_with_parent)\n"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(300)\n",
        ]
    )
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pidfile.read_text())
    os.kill(child, 0)  # alive, in its own session
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    gone = False
    while time.monotonic() < deadline and not gone:
        try:
            os.kill(child, 0)
            # a zombie re-parented to init counts as gone once reaped; check its state
            with open(f"/proc/{child}/stat") as f:
                gone = f.read().split()[2] == "Z"
        except (ProcessLookupError, FileNotFoundError):
            gone = True
        time.sleep(0.1)
    assert gone
