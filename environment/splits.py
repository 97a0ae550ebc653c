"""Train/test splits of a task's data: one deterministic partition every executor uses."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, TypeVar

from agenttts.environment.task import DataSpec

Split = Literal["train", "test"]
T = TypeVar("T")


def split_items(data: DataSpec, items: Sequence[T], split: Split) -> list[T]:
    """Deterministic train/test partition of `items` by the data's seed (train first)."""
    order = list(range(len(items)))
    random.Random(data.seed).shuffle(order)
    n_train = min(data.train_size, len(items))
    chosen = order[:n_train] if split == "train" else order[n_train : n_train + data.test_size]
    return [items[i] for i in chosen]


#: What a train-only task says where a test result would be.
NO_TEST_SPLIT = "no test split (the task sets data.test_size: 0)"


def has_split(data: DataSpec, split: Split) -> bool:
    """Whether a task has this split: a train-only task (`test_size: 0`, e.g. every item is
    needed for the search) has no test split, and its result is the search's best."""
    return split == "train" or data.test_size > 0
