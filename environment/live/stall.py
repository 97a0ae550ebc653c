"""A blocked event loop, caught: a blocking call in async pipeline code stalls every item.

A trial runs all its items on one event loop. An `async def` pipeline or LangGraph node that calls
something blocking (`time.sleep`, a sync HTTP client, a long computation) holds the loop: no other
item advances, and no timeout can fire, since timeouts run on that loop too. Without a watch the run
just froze, saying nothing. `StallWatch` is a thread that sees the loop's heartbeat stop, reads the
loop thread's stack to name the line that blocks, logs it after `WARN_S`, and past `fail_s` raises
`LoopBlocked` in that thread, so the item whose code blocks fails with the cause in its error (the
exception arrives once the blocking call returns to Python: at once for a loop in Python code, at
its end for a sleep). Only code outside agenttts is blamed: agenttts' own waits are only logged.

Plain `def` pipelines and nodes run in threads (`in_thread`, LangGraph's executor) and may block.
"""

from __future__ import annotations

import asyncio
import ctypes
import linecache
import logging
import sys
import sysconfig
import threading
import time
from pathlib import Path
from types import FrameType

import agenttts
from agenttts.errors import AgentTTSError

log = logging.getLogger("agenttts.stall")

#: The loop's heartbeat period, and how long a stall lasts before it is logged.
TICK_S = 0.1
WARN_S = 2.0
#: The longest stall an item's code may cause before it fails (or its `item_timeout_s`, if less).
FAIL_S = 10.0

_PACKAGE = Path(agenttts.__file__).parent
#: agenttts' code (its subpackages are symlinks in a checkout) and asyncio's.
_OURS = tuple(
    {str(p.resolve()) for p in (_PACKAGE, *_PACKAGE.iterdir()) if p.is_dir()}
    | {str(Path(asyncio.__file__).resolve().parent)}
)
#: Libraries: a stack is described by its innermost frame outside them (the user's line).
_LIBRARIES = tuple(
    str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("stdlib", "purelib", "platlib")
)


class LoopBlocked(AgentTTSError):
    """Raised in the loop's thread by `StallWatch` when an item's code blocks the loop."""


def _under(filename: str, roots: tuple[str, ...]) -> bool:
    return filename.startswith("<") or str(Path(filename).resolve()).startswith(roots)


def blocking_frame(frame: FrameType | None) -> FrameType | None:
    """Where the loop's thread is stuck, when that is not agenttts' or asyncio's own code (a cache
    write, say, is not the user's to fix): the innermost frame outside the libraries (the user's
    call into one), else the innermost frame. None when agenttts or asyncio holds the loop."""
    if frame is None or _under(frame.f_code.co_filename, _OURS):
        return None
    user: FrameType | None = frame
    while user is not None and _under(user.f_code.co_filename, _LIBRARIES):
        user = user.f_back
    if user is not None and _under(user.f_code.co_filename, _OURS):
        return None  # a library that agenttts itself called
    return user or frame


def describe(frame: FrameType) -> str:
    """`file:line in function: source line`, as a person finds it."""
    code = frame.f_code
    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
    return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}: {line}"


class StallWatch:
    """Watches the running loop from a daemon thread for as long as the `async with` lasts."""

    def __init__(self, fail_s: float) -> None:
        self.fail_s = min(fail_s, FAIL_S)
        self.cause: str | None = None  # the last stall that failed an item, for its message
        self._beat = time.monotonic()
        self._stalled = 0.0  # seconds the loop was held, over the ticks it should have beaten
        self._stop = threading.Event()

    async def __aenter__(self) -> StallWatch:
        self._loop_thread = threading.get_ident()
        self._heart = asyncio.ensure_future(self._heartbeat())
        self._thread = threading.Thread(target=self._watch, name="agenttts-stall", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        self._heart.cancel()
        await asyncio.gather(self._heart, return_exceptions=True)

    def stalled_s(self) -> float:
        """How long the loop has been held so far, this stall included: time that no item's own
        clock should count, since it could not run (the item that held it fails by the watch)."""
        return self._stalled + max(0.0, time.monotonic() - self._beat - TICK_S)

    async def _heartbeat(self) -> None:
        while True:
            now = time.monotonic()
            self._stalled += max(0.0, now - self._beat - TICK_S)
            self._beat = now
            await asyncio.sleep(TICK_S)

    def _watch(self) -> None:
        warned = failed = False
        episode = self._beat
        while not self._stop.wait(TICK_S):
            beat = self._beat
            if beat != episode:  # the loop ran again: a new episode may start
                episode, warned, failed = beat, False, False
            stalled = time.monotonic() - beat
            if stalled < WARN_S or failed:
                continue
            stack = sys._current_frames().get(self._loop_thread)
            if stack is None:
                continue
            frame = blocking_frame(stack)
            where = describe(frame) if frame is not None else f"{describe(stack)} (agenttts)"
            if not warned:
                warned = True
                log.warning(
                    "the event loop has been blocked for %.0f s by %s; every item waits while it "
                    "runs (an async pipeline or node must await; a plain def runs in a thread)",
                    stalled,
                    where,
                )
            if frame is not None and stalled >= self.fail_s and self._beat == beat:
                failed = True
                self.cause = (
                    f"its code blocked the event loop for over {self.fail_s:g} s at {where} (a "
                    "blocking call in async code stalls every item: await an async version, use "
                    "asyncio.to_thread, or make the function a plain def)"
                )
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._loop_thread), ctypes.py_object(LoopBlocked)
                )
