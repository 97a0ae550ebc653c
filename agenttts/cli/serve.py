"""`agenttts serve`: the embedded SmolLM2 server standalone, or vLLM commands for GPUs."""

from __future__ import annotations

import argparse
import sys
import time

from agenttts.environment.embedded import SERVED_NAME
from agenttts.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the embedded SmolLM2 vLLM server (Ctrl-C stops it), or print vLLM commands",
        description="Start the embedded OpenAI-compatible server (vLLM CPU, SmolLM2-135M-Instruct) "
        "on "
        "127.0.0.1 and keep it up until Ctrl-C. Other runs use it through AGENTTTS_EMBEDDED_URL. "
        "With --print-vllm DEPLOYMENT, print the `vllm serve` commands for a GPU deployment file.",
    )
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    p.add_argument("--served-name", default=SERVED_NAME, help="model name the server answers to")
    p.add_argument("--max-model-len", type=int, default=4096)
    p.add_argument(
        "--startup-timeout", type=float, default=900.0, help="seconds to wait for health"
    )
    p.add_argument("--verbose", action="store_true", help="show vLLM's own log on the terminal")
    p.add_argument("--print-vllm", metavar="DEPLOYMENT", help="print vLLM commands and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agenttts.environment.embedded import (
        ENV_URL,
        EmbeddedServer,
        stop_on_sigterm,
        vllm_commands,
    )

    if args.print_vllm:
        lines = vllm_commands(args.print_vllm)
        if not lines:
            raise InputError(f"{args.print_vllm}: no GPU models (only embedded ones) to serve")
        print("# one server per model; then point the deployment's base_url entries at them")
        print("\n".join(lines))
        return 0

    stop_on_sigterm()
    server = EmbeddedServer(
        args.port,
        served_name=args.served_name,
        max_model_len=args.max_model_len,
        startup_timeout=args.startup_timeout,
        quiet=not args.verbose,
    )
    print(f"starting vLLM (CPU) for {args.served_name} on port {server.port} ...", file=sys.stderr)
    server.start()
    try:
        print(server.base_url, flush=True)
        print(
            f"model {args.served_name!r} is up; use it with: export {ENV_URL}={server.base_url}\n"
            f"log: {server.log_path}; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(1)
        print(
            f"the server exited (code {server.proc.returncode if server.proc else '?'})",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
        return 0
    finally:
        server.stop()
