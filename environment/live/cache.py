"""Durable sample cache: every completion drawn from an endpoint, kept as sample i of a prompt.

Why indexes: repeated sampling at S uses samples 0..S-1, so a configuration with more samples only
asks for the missing indexes, and re-running a trial asks for nothing. The key is the model's
identity (`model_identity`: what the server reports about the model behind the served name, or a
`revision` the deployment declares), the exact messages and the sampling parameters. Not the URL:
replicas of one model, or the model moved to another port, share the samples; another model under
the same name does not. A server that names no weights behind the name (its `/models` entry has
no `root` or `parent`: llama.cpp, most hosted APIs) says too little for that, so there the URLs
of its replicas are part of the key: two servers under one name share nothing unless declared
replicas of one model or given one `revision`. Completion tokens are stored per sample and prompt
tokens per prompt, so the measured cost of a cached trial is the same as when it ran.

SQLite through sqlite-utils, in WAL mode with a busy timeout so several processes (parallel
searches, the bench) can share one file; rows are only ever inserted (`INSERT OR IGNORE`), so a
sample written once is never lost or changed, whatever fails later.

Several processes drawing the same prompt draw each sample once (`fill`): a process claims the
missing indexes in one `BEGIN IMMEDIATE` transaction (the `claims` table), draws and stores them,
then drops its claims; another that needs a claimed index waits (polling, with back-off) until the
sample is stored or the claim is stale (its process is dead on this host, or its heartbeat is older
than `CLAIM_TTL_S`: another host), then claims what is still missing itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from agenttts.errors import TrialError


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
#: The fields of those that name the weights (`id` is the served name, `owned_by` the server).
WEIGHTS_FIELDS = ("root", "parent")


def names_weights(card: Mapping[str, Any] | None) -> bool:
    """Whether a `/models` entry says which weights serve the name, not the name alone."""
    return any((card or {}).get(k) is not None for k in WEIGHTS_FIELDS)


def model_identity(
    served: str,
    card: Mapping[str, Any] | None = None,
    *,
    revision: str | None = None,
    servers: Sequence[str] = (),
) -> str:
    """The model behind a served name, as the cache keys it: the declared `revision` if any,
    else the identifying fields of the server's `/models` entry (`card`), with the URLs of the
    model's replicas (`servers`) where the entry names no weights. Compact JSON."""
    if revision is not None:
        fields: dict[str, Any] = {"id": served, "revision": revision}
    else:
        fields = {k: (card or {}).get(k) for k in IDENTITY_FIELDS}
        fields = {"id": served} | {k: v for k, v in fields.items() if v is not None}
        if not names_weights(card):
            fields["servers"] = sorted(servers)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _servers_of(identity: str) -> list[str] | None:
    """The servers an identity is kept to (`model_identity`), None for one of named weights."""
    try:
        fields = json.loads(identity)
    except ValueError:  # a bare served name, as caches from before identities keyed on
        return None
    return fields.get("servers") if isinstance(fields, dict) else None


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


# A claim not refreshed for this long is stale (its holder on another host is presumed dead);
# holders refresh theirs every `CLAIM_BEAT_S` while they draw.
CLAIM_TTL_S = 60.0
CLAIM_BEAT_S = 5.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


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
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

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
            self.db.execute(
                """CREATE TABLE IF NOT EXISTS claims (
                     key TEXT NOT NULL, idx INTEGER NOT NULL, owner TEXT NOT NULL,
                     host TEXT NOT NULL, pid INTEGER NOT NULL, beat REAL NOT NULL,
                     PRIMARY KEY (key, idx))"""
            )

    def lock(self, key: str) -> asyncio.Lock:
        """One in-flight fill per prompt in this process, so concurrent trials share the draws."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def fill(
        self, key: str, count: int, draw: Callable[[list[int]], Awaitable[int]]
    ) -> tuple[int, int]:
        """Make samples 0..count-1 of `key` stored, drawing each missing one in one process only.

        `draw(indexes)` requests and stores (`put`) the given indexes and returns the requests it
        made; it is called with what this process claimed, while other processes' claims are
        waited for. Returns (requests made, samples drawn here). A failed draw drops its claims
        (another process may then claim them) and propagates."""
        calls = drawn = 0
        wait = 0.05
        async with self.lock(key):
            if not self.missing(key, count):  # all stored: no write transaction
                return 0, 0
            while True:
                mine, waiting = self._claim(key, count)
                if mine:
                    beat = asyncio.create_task(self._beat(key, mine))
                    try:
                        calls += await draw(mine)
                    finally:  # (not awaited: that would swallow a cancellation of this task)
                        beat.cancel()
                        self._release(key, mine)
                    drawn += len(mine)
                    wait = 0.05
                if not waiting:
                    return calls, drawn
                if not mine:
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, 1.0)

    def _claim(self, key: str, count: int) -> tuple[list[int], list[int]]:
        """In one write transaction: the missing indexes < count that this process now holds,
        and those another live claim holds (to wait for)."""
        conn = self.db.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            have = {
                int(r[0])
                for r in conn.execute(
                    "SELECT idx FROM samples WHERE key = ? AND idx < ?", [key, count]
                )
            }
            held = {
                int(i): (o, h, int(p), float(b))
                for i, o, h, p, b in conn.execute(
                    "SELECT idx, owner, host, pid, beat FROM claims WHERE key = ? AND idx < ?",
                    [key, count],
                )
            }
            mine: list[int] = []
            waiting: list[int] = []
            for i in range(count):
                if i in have:
                    continue
                claim = held.get(i)
                if claim is not None and claim[0] != self.owner and self._live(*claim[1:], now):
                    waiting.append(i)
                else:
                    mine.append(i)
            conn.executemany(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                [(key, i, self.owner, self.host, os.getpid(), now) for i in mine],
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return mine, waiting

    def _live(self, host: str, pid: int, beat: float, now: float) -> bool:
        if now - beat > CLAIM_TTL_S:
            return False
        return host != self.host or _pid_alive(pid)

    async def _beat(self, key: str, indexes: list[int]) -> None:
        while True:
            await asyncio.sleep(CLAIM_BEAT_S)
            with self.db.conn:
                self.db.conn.executemany(
                    "UPDATE claims SET beat = ? WHERE key = ? AND idx = ? AND owner = ?",
                    [(time.time(), key, i, self.owner) for i in indexes],
                )

    def _release(self, key: str, indexes: list[int]) -> None:
        with self.db.conn:
            self.db.conn.executemany(
                "DELETE FROM claims WHERE key = ? AND idx = ? AND owner = ?",
                [(key, i, self.owner) for i in indexes],
            )

    def samples(self, key: str, count: int) -> list[Sample]:
        """Stored samples with index < count, by index (possibly with gaps)."""
        rows = self.db.execute(
            "SELECT idx, text, completion_tokens, finish_reason FROM samples "
            "WHERE key = ? AND idx < ? ORDER BY idx",
            [key, count],
        ).fetchall()
        return [Sample(int(i), t, int(c), f) for i, t, c, f in rows]

    def identity_of(self, model: str, servers: Sequence[str] = ()) -> str:
        """The one model identity this cache holds samples of under served name `model`, for a
        replay that may not ask the server (of those kept per server, the one of `servers`); the
        bare name when it holds none (rows written before identities were keyed on it).
        Several: `TrialError` (the replay cannot choose; declare a `revision`)."""
        rows = self.db.execute(
            "SELECT DISTINCT identity FROM prompts WHERE model = ? AND identity IS NOT NULL",
            [model],
        ).fetchall()
        mine = [r for r in rows if _servers_of(str(r[0])) == sorted(servers)]
        if len(rows) > 1 and len(mine) == 1:
            return str(mine[0][0])
        if len(rows) > 1:
            raise TrialError(
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
