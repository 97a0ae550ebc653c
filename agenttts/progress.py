"""Progress over the items of a running trial, so a long live trial is never silent.

On a terminal it is a tqdm bar on stderr (one per running trial, gone when the trial ends: the
node's own line then says what the batch did); otherwise a log line every quarter of the items.
Both go through the `agenttts.progress` logger's level: the CLI shows agenttts' INFO lines and
switches this logger off for `--quiet`, and a library caller who configured no logging sees
nothing. It imports nothing from agenttts, so the executors below the graph may use it.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

log = logging.getLogger("agenttts.progress")


def set_quiet(quiet: bool) -> None:
    """`--quiet`: no bars and no progress lines (warnings still show)."""
    log.setLevel(logging.WARNING if quiet else logging.NOTSET)


class ItemProgress:
    """`with ItemProgress(n, "trial qa=m x4") as p: ... p.advance()` once per finished item."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        lines: int = 4,
        quiet: bool = False,
    ):
        """`quiet`: nothing to show for this trial (a cache-only replay waits for nothing)."""
        self.total = total
        self.label = label
        self.done = 0
        self.every = max(1, math.ceil(total / max(1, lines)))
        self.started = time.monotonic()
        stream = stream or sys.stderr
        shown = log.isEnabledFor(logging.INFO) and total > 0 and not quiet
        self.lines = shown and not stream.isatty()
        self.bar: tqdm | None = None
        if shown and not self.lines:
            self.bar = tqdm(
                total=total, desc=label, unit="item", leave=False, file=stream, dynamic_ncols=True
            )

    def advance(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        crossed = self.done // self.every > before // self.every or self.done == self.total
        if self.bar is not None:
            self.bar.update(n)
        elif self.lines and crossed:
            log.info(
                "%s: %d/%d items (%.0f s)",
                self.label,
                self.done,
                self.total,
                time.monotonic() - self.started,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> ItemProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
