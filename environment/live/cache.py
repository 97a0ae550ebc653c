"""Durable sample cache: every completion drawn from an endpoint, kept as sample i of a prompt.

Why indexes: repeated sampling at S uses samples 0..S-1, so a configuration with more samples only
asks for the missing indexes, and re-running a trial asks for nothing. The key is the model's
identity (`model_identity`: what the server reports about the model behind the served name, or a
`revision` the deployment declares), the exact messages and the sampling parameters. Not the URL:
replicas of one model, or the model moved to another port, share the samples; another model under
the same name does not. Completion tokens are stored per sample and prompt tokens per prompt, so
the measured cost of a cached trial is the same as when it ran.

SQLite through sqlite-utils, in WAL mode with a busy timeout so several processes (parallel
searches, the bench) can share one file; rows are only ever inserted (`INSERT OR IGNORE`), so a
sample written once is never lost or changed, whatever fails later.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from agenttts.errors import InputError


@dataclass(frozen=True)
class Sample:
    index: int
    text: str
    completion_tokens: int
    finish_reason: str | None = None


# What vLLM's `/models` entry says about the weights behind a served name (`root`: the checkpoint
# path or hub id; `parent`: a LoRA adapter's base); `created` is left out (vLLM reports the time of
# the request) and so is `max_model_len` (a serving limit, not the weights).
IDENTITY_FIELDS = ("id", "root", "parent", "owned_by")


def model_identity(
    served: str, card: Mapping[str, Any] | None = None, *, revision: str | None = None
) -> str:
    """The model behind a served name, as the cache keys it: the declared `revision` if any,
    else the identifying fields of the server's `/models` entry (`card`). Compact JSON."""
    if revision is not None:
        fields: dict[str, Any] = {"id": served, "revision": revision}
    else:
        fields = {k: (card or {}).get(k) for k in IDENTITY_FIELDS}
        fields = {"id": served} | {k: v for k, v in fields.items() if v is not None}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def request_key(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> str:
    """Stable identity of a prompt: the model's identity (`model_identity`; a bare served name in
    caches written before identities), exact messages, sampling parameters (n excluded)."""
    canonical = json.dumps(
        {
            "model": model,
            "messages": list(messages),
            "params": {k: v for k, v in params.items() if k != "n"},
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class SampleCache:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA busy_timeout = 60000")
        self.db.enable_wal()
        self._create()
        self._locks: dict[str, asyncio.Lock] = {}

    def _create(self) -> None:
        with self.db.conn:
            self.db.execute(
                """CREATE TABLE IF NOT EXISTS prompts (
                     key TEXT PRIMARY KEY, model TEXT NOT NULL, messages TEXT NOT NULL,
                     params TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, created REAL NOT NULL,
                     identity TEXT)"""
            )
            if "identity" not in self.db["prompts"].columns_dict:  # a cache from before identities
                self.db.execute("ALTER TABLE prompts ADD COLUMN identity TEXT")
            self.db.execute(
                """CREATE TABLE IF NOT EXISTS samples (
                     key TEXT NOT NULL, idx INTEGER NOT NULL, text TEXT NOT NULL,
                     completion_tokens INTEGER NOT NULL, finish_reason TEXT, created REAL NOT NULL,
                     PRIMARY KEY (key, idx))"""
            )

    def lock(self, key: str) -> asyncio.Lock:
        """One in-flight fill per prompt in this process, so concurrent trials share the draws."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def samples(self, key: str, count: int) -> list[Sample]:
        """Stored samples with index < count, by index (possibly with gaps)."""
        rows = self.db.execute(
            "SELECT idx, text, completion_tokens, finish_reason FROM samples "
            "WHERE key = ? AND idx < ? ORDER BY idx",
            [key, count],
        ).fetchall()
        return [Sample(int(i), t, int(c), f) for i, t, c, f in rows]

    def identity_of(self, model: str) -> str:
        """The one model identity this cache holds samples of under served name `model`, for a
        replay that may not ask the server; the bare name when it holds none (rows written
        before identities were keyed on it). Several: `InputError` (declare a `revision`)."""
        rows = self.db.execute(
            "SELECT DISTINCT identity FROM prompts WHERE model = ? AND identity IS NOT NULL",
            [model],
        ).fetchall()
        if len(rows) > 1:
            raise InputError(
                f"the sample cache {self.path} holds samples of {len(rows)} different models "
                f"served as {model!r} ({'; '.join(r[0] for r in rows)}): declare the `revision:` "
                "of the one to replay in the deployment file"
            )
        return str(rows[0][0]) if rows else model

    def prompt_tokens(self, key: str) -> int | None:
        row = self.db.execute("SELECT prompt_tokens FROM prompts WHERE key = ?", [key]).fetchone()
        return None if row is None else int(row[0])

    def missing(self, key: str, count: int) -> list[int]:
        have = {s.index for s in self.samples(key, count)}
        return [i for i in range(count) if i not in have]

    def put(
        self,
        key: str,
        *,
        model: str,
        identity: str | None = None,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        prompt_tokens: int,
        samples: Iterable[Sample],
    ) -> None:
        """Insert-only: an index already stored (by another process) keeps its first value.
        `model` is the served name, `identity` what `key` was made from (`model_identity`)."""
        now = time.time()
        with self.db.conn:
            self.db.execute(
                "INSERT OR IGNORE INTO prompts "
                "(key, model, messages, params, prompt_tokens, created, identity) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    key,
                    model,
                    json.dumps(list(messages), ensure_ascii=False),
                    json.dumps({k: v for k, v in params.items() if k != "n"}, sort_keys=True),
                    int(prompt_tokens),
                    now,
                    identity,
                ],
            )
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (key, s.index, s.text, int(s.completion_tokens), s.finish_reason, now)
                    for s in samples
                ],
            )

    def stats(self) -> dict[str, int]:
        return {
            "prompts": int(self.db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0]),
            "samples": int(self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]),
        }

    def close(self) -> None:
        self.db.conn.close()
