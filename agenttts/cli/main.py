"""Entry point: discovers the command modules beside it, so each command lives in its own file."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import agenttts.cli as cli_pkg
from agenttts import __version__
from agenttts.environment.deployment import DeploymentError
from agenttts.environment.task import TaskError


class UserError(Exception):
    """A problem with what the user asked for: one clear message, exit code 2, nothing spent."""


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except TaskError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (UserError, DeploymentError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
