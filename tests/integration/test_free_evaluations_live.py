"""Free evaluations on a live pipeline, over the canned OpenAI-compatible test server: a two-stage
chain (passage selection voted over ids -> QA voted over answers) whose trial drew S samples per
stage scores the smaller configurations its samples answer with zero endpoint calls, and an
earlier-stage reduction that changes the selection is not scored for free, even where another
search left the prompts it needs in the shared cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from openai_server import StubServer

from agenttts.archive import Archive, Trial
from agenttts.derived import with_derived
from agenttts.environment.registry import run_batch
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task

pytestmark = pytest.mark.integration

ITEMS = [
    {"id": "fr", "question": "Capital of France?", "answers": ["Paris"],
     "passages": ["Paris is the capital of France.", "Lyon is in France.", "Rome is old."]},
    {"id": "it", "question": "Capital of Italy?", "answers": ["Rome"],
     "passages": ["Milan is big.", "Rome is the capital of Italy.", "Oslo is cold."]},
]  # fmt: skip

#: Sample i of a selection prompt names passage SELECT[i]: the vote over ids picks passage 1 at
#: S=1 and S=2 (a tie goes to the first seen), passage 2 at S=3 and S=4.
SELECT = ["1", "2", "2", "2"]
#: France's QA samples vote Lyon (wrong) at S=1 and 2, Paris from S=3; Italy's are all right.
FRANCE = ["Answer: Lyon", "Answer: Paris", "Answer: Paris", "Answer: Lyon"]


def reply(body: dict[str, Any]) -> list[str]:
    """One text per choice, cycled over the request's `n`: sample i of an n=4 request is the
    list's i-th, as the sample cache stores it at index i."""
    text = body["messages"][-1]["content"]
    if "Which passages" in text:
        return SELECT
    return FRANCE if "France" in text else ["Answer: Rome"]


def chain_task(root: Path, url: str) -> Task:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.jsonl").write_text("".join(json.dumps(i) + "\n" for i in ITEMS))

    def stage(name: str, aggregator: str, **settings: Any) -> dict[str, Any]:
        return {
            "name": name,
            "models": [{"name": "m", "params": 1e9, "endpoint": url}],
            "prompt_tokens": 64,
            "gen_tokens": 8,
            "max_samples": 4,
            "aggregator": aggregator,
            "settings": {"max_tokens": 8, **settings},
        }

    select = stage(
        "select",
        "vote_ids",
        prompt={"user": "{question}\n{passages}\nWhich passages? Reply with numbers."},
        parse={"ids": "passages", "max": 1},
    )
    qa = stage("qa", "vote", prompt={"user": "Context:\n{select}\nQ: {question}"}, parse="answer")
    raw = {
        "name": "free-live",
        "budget": 1000,
        "stages": [select, qa],
        "metrics": ["em"],
        "main_metric": "em",
        "data": {"path": "data.jsonl", "train_size": 2, "test_size": 0},
        "environment": {"kind": "chain", "settings": {"cache": str(root / "cache.sqlite")}},
    }
    (root / "task.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_task(root / "task.yaml")


def cfg(select: int, qa: int) -> Config:
    return Config.of({"select": ("m", select), "qa": ("m", qa)})


#: What a trial at (4, 4) answers: the last stage's smaller counts; the selection at S=3 (the
#: same vote as at 4: the QA prompts are the ones it sent) and its own smaller QA counts.
FREE_FROM_4_4 = {cfg(4, 1), cfg(4, 2), cfg(4, 3), cfg(3, 1), cfg(3, 2), cfg(3, 3), cfg(3, 4)}


def derived_from(task: Task, ran: Any) -> set[Config]:
    trial = Trial.from_result(ran, task, trial_id=0, iteration=1, proposer="p").dump()
    return {
        t.config for t in Archive.from_state({"archive": with_derived(task, [], [trial])}).derived()
    }


def test_a_live_trial_scores_what_its_cached_samples_answer_with_no_call(tmp_path):
    with StubServer(reply, models=("m",)) as stub:
        task = chain_task(tmp_path / "t", stub.url)
        [ran] = run_batch(task, [cfg(4, 4)], "train")
        assert ran.ok and ran.calls == 4, ran.error  # one n=4 request per item and stage
        trial = Trial.from_result(ran, task, trial_id=0, iteration=1, proposer="p").dump()
        calls = len(stub.requests)
        archive = Archive.from_state({"archive": with_derived(task, [], [trial])})
        assert len(stub.requests) == calls  # every free evaluation came from the cache

        derived = {t.config: t for t in archive.derived()}
        assert set(derived) == FREE_FROM_4_4
        # the selection at S=1 or 2 votes for another passage: QA prompts never drawn, not free
        assert not {cfg(1, 4), cfg(2, 4), cfg(2, 2)} & set(derived)
        assert all(t.search_cost == 0.0 and t.calls == 0 for t in derived.values())
        assert {t.derived_from for t in derived.values()} == {0}

        # what a free evaluation scored is what running it gives (fresh caches: real calls)
        alone = [
            run_batch(task, [c], "train", cache=str(tmp_path / f"fresh{i}.sqlite"))[0]
            for i, c in enumerate((cfg(4, 2), cfg(4, 3)))
        ]
        assert all(r.calls > 0 for r in alone)
        assert [r.metrics for r in alone] == [derived[cfg(4, 2)].metrics, {"em": 1.0}]
        assert derived[cfg(4, 3)].metrics == {"em": 1.0} and derived[cfg(4, 1)].score == 0.5


def test_samples_another_search_left_in_the_cache_make_nothing_free(tmp_path):
    """The cache is shared by every search on the machine. Another search's trial at (2, 4) drew
    the QA prompts that the selection at S=1 or 2 leads to; a search whose archive holds only
    (4, 4) still scores only what (4, 4)'s own prompts answer, as on a cold cache, so a search
    repeated on a warm cache proposes what it proposed the first time."""
    with StubServer(reply, models=("m",)) as stub:
        task = chain_task(tmp_path / "t", stub.url)
        [ran] = run_batch(task, [cfg(4, 4)], "train")
        [other] = run_batch(task, [cfg(2, 4)], "train")  # the QA prompts of another selection
        assert other.stages["qa"].calls > 0
        assert other.ok and ran.ok, (other.error, ran.error)
        assert derived_from(task, ran) == FREE_FROM_4_4
