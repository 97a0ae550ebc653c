"""A pipeline's stages at an exported configuration, outside any search.

    from agenttts.pipeline import use_config
    use_config("best.yaml")          # or: AGENTTTS_CONFIG=best.yaml in the environment

After that, `agenttts.pipeline.stages` (and the chat models made from it at import time) resolve
the file's configuration wherever no trial is running: a LangGraph graph's plain `invoke` or
`ainvoke`, a pipeline function, a chain. Each stage draws its S samples through the one `Sampler`
(the same sample cache, endpoints and retries as the search: with the search's cache file, a
configuration the search evaluated replays with no call) and aggregates with the stage's
aggregator. The draws run on a loop of this module's own, in a daemon thread, so the caller may
use any event loop, several in turn, or none.

`agenttts run` uses the same `ConfiguredStages` with its own loop and one run per input, so each
input's tokens and cost are its own.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from pathlib import Path

from agenttts.environment.exported import ExportedConfig
from agenttts.environment.live.sampler import Sampler
from agenttts.environment.live.stages import Stages, TrialRun
from agenttts.environment.task import Task
from agenttts.errors import InputError

#: The environment variable naming an exported configuration for a process that does not call
#: `use_config` itself.
CONFIG_ENV = "AGENTTTS_CONFIG"


class ConfiguredStages:
    """An exported configuration made runnable: the stages' task, the configuration, a sampler.

    `task`: the task whose pipeline runs (`agenttts run`), checked against the file and given its
    stages as searched; without it, a task of the file's stages alone."""

    def __init__(self, exported: ExportedConfig, task: Task | None = None):
        exported.check_reachable()
        self.exported = exported
        self.task = exported.apply_to(task) if task is not None else exported.stage_task()
        self.config = exported.config()
        self.sampler = Sampler(
            self.task, exported.sampler_settings(), deployment=exported.deployment
        )

    def trial_run(
        self, loop: asyncio.AbstractEventLoop | None = None, *, record: bool = False
    ) -> TrialRun:
        return TrialRun(self.task, self.config, self.sampler, loop=loop, record=record)


class _Installed:
    """The process's configuration: its stages, one run over the process's life, and the loop
    in a daemon thread that the run's draws go to."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()
        self.stages = ConfiguredStages(ExportedConfig.load(self.path))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="agenttts-stages", daemon=True
        )
        self.thread.start()
        self.run = self.stages.trial_run(self.loop)

    def close(self) -> None:
        """Connections and the sample cache closed, the loop stopped."""
        if self.loop.is_closed():
            return
        done = asyncio.run_coroutine_threadsafe(self.stages.sampler.aclose(), self.loop)
        try:
            done.result(timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


_LOCK = threading.Lock()
_INSTALLED: _Installed | None = None


def use_config(path: str | Path) -> Stages:
    """Run this process's pipeline stages at the configuration in `path` (an `agenttts export`
    file) wherever no search trial runs them; InputError when the file cannot be used. Returns
    the stages bound to it (`stages.usage()`: what they drew so far)."""
    global _INSTALLED
    installed = _Installed(path)
    with _LOCK:
        previous, _INSTALLED = _INSTALLED, installed
    if previous is not None:
        previous.close()
    return installed.run.stages


def installed_run() -> TrialRun | None:
    """The run `use_config` set up, else the one `$AGENTTTS_CONFIG` names (set up on first use);
    None when neither gives one."""
    global _INSTALLED
    with _LOCK:
        named = os.environ.get(CONFIG_ENV)
        if _INSTALLED is None and named:
            try:
                _INSTALLED = _Installed(named)
            except InputError as e:
                raise InputError(f"{CONFIG_ENV}={named}: {e}") from None
        return _INSTALLED.run if _INSTALLED is not None else None


@atexit.register
def _close_installed() -> None:
    if _INSTALLED is not None:
        _INSTALLED.close()
