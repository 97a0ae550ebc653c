"""Shared fixtures. `embedded_server`: the real vLLM CPU server with SmolLM2, never a fake.

Resolution, once per session: `$AGENTTTS_EMBEDDED_URL` (a server already running, e.g. one started
with `agenttts serve`) is reused; otherwise with `AGENTTTS_EMBEDDED=1` (as `make test` sets) one is
started for the session and stopped after it; otherwise tests that need it are skipped and say why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[str]:
    """Base URL (ending in /v1) of a real embedded server that serves the model `smollm2`."""
    from agenttts.environment.embedded import ENV_URL, EmbeddedServer, wait_healthy

    url = os.environ.get(ENV_URL)
    if url:
        url = url.rstrip("/")
        wait_healthy(url, timeout=30)
        yield url
        return
    if os.environ.get("AGENTTTS_EMBEDDED") != "1":
        pytest.skip(
            f"needs the embedded vLLM server: set {ENV_URL} to a running one (`agenttts serve`) "
            "or AGENTTTS_EMBEDDED=1 to start one (as `make test` does)"
        )
    server = EmbeddedServer()
    server.start()
    os.environ[ENV_URL] = server.base_url  # `base_url: embedded` in deployments resolves to it
    try:
        yield server.base_url
    finally:
        os.environ.pop(ENV_URL, None)
        server.stop()
