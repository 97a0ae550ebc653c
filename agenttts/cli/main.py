"""Entry point: discovers the command modules beside it, so each command lives in its own file."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any

import agenttts.cli as cli_pkg
from agenttts import __version__
from agenttts.errors import AgentTTSError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agenttts",
        description="Find the compute-optimal models and sample counts for a multi-stage LLM "
        "pipeline under one FLOPs budget (AgentTTS).",
    )
    parser.add_argument("--version", action="version", version=f"agenttts {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name in {"main", "common"}:
            continue
        module = importlib.import_module(f"agenttts.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged, not the one at set-up: a caller
    that swaps stderr (pytest's capture, a notebook) never leaves it writing to a closed file."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def show_logs() -> None:
    """agenttts' own log lines (retry waves, replicas taken out, a circuit breaker opening) go to
    stderr with the time, so a long wait on an endpoint is never silent; libraries' stay quiet."""
    logger = logging.getLogger("agenttts")
    if any(isinstance(h, StderrHandler) for h in logger.handlers):
        return
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Commands only raise; each agenttts error is reported here, once, with its
    class's exit code (2: bad input, nothing spent; 3: resumable stop); Ctrl-C exits 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed: for `resume_command`
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    show_logs()
    try:
        return int(args.func(args) or 0)
    except AgentTTSError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`agenttts show ... | head`): stop quietly, as other tools do. Python
        # flushes stdout again at exit, into the closed pipe, unless it points elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut off this way


if __name__ == "__main__":
    sys.exit(main())
