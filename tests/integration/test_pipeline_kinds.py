"""`kind: python` and `kind: chain` against a real local OpenAI-compatible server (a scripted stub).

The stage handles draw through the sample cache (a re-run makes no call, more samples ask only for
the missing ones); the chat model works in a LangGraph graph's async and sync nodes; user code is
untrusted: an item that raises or hangs scores 0 and is recorded, a trial whose items mostly fail
is a failed trial, and failures that are not the item's fault fail the trial even when caught.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from capitals import ITEMS
from openai_server import StubError, StubServer

from agenttts.environment.executor import Executor, HasCallStats, TrialResult
from agenttts.environment.registry import make_executor
from agenttts.environment.space import Config
from agenttts.environment.task_loading import load_task

pytestmark = pytest.mark.integration

PIPES = """
import asyncio, time
from agenttts.pipeline import Stages, parse_answer, vote

def messages(item):
    return [{"role": "user", "content": item["question"]}]

async def answer(item: dict, stages: Stages):
    samples = await stages["qa"].sample(messages(item))
    return vote([parse_answer(s.text) for s in samples])

async def flaky(item, stages):
    if item["id"] == "bad":
        raise ValueError("no such city")
    return await answer(item, stages)

async def broken(item, stages):
    raise RuntimeError("bug in the pipeline")

async def mostly_broken(item, stages):
    if item["id"] != "fr":
        raise RuntimeError(f"bug in the pipeline on {item['id']}")
    return await answer(item, stages)

async def blocks(item, stages):
    if item["id"] == "bad":
        time.sleep(2.5)  # a blocking call in async code: every item waits
    return await answer(item, stages)

def metric_raises(prediction, item):
    return {"em": float(prediction == item["answer"]), "f1": 0.0}  # the field is "answers"

async def hangs(item, stages):
    if item["id"] == "bad":
        await asyncio.sleep(3600)
    return await answer(item, stages)

def sync_hangs(item, stages):
    if item["id"] == "bad":
        time.sleep(30)
    return {"fr": "Paris", "no": "Oslo", "it": "Rome"}.get(item["id"])

async def undeclared(item, stages):
    try:
        stages["re" + "rank"]
    except KeyError:
        pass  # caught by user code: the trial still fails
    return await answer(item, stages)

async def swallow(item, stages):
    try:
        return await answer(item, stages)
    except Exception:
        return None
"""

GRAPH = """
from typing import TypedDict
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from agenttts.pipeline import stages

select_llm = stages["select"].chat_model()
qa_llm = stages["qa"].chat_model()

class State(TypedDict, total=False):
    question: str
    passages: list
    picked: str
    answer: str
    meta: dict

async def select(state):
    listed = "\\n".join(f"[{i}] {p}" for i, p in enumerate(state["passages"], 1))
    reply = await select_llm.ainvoke([HumanMessage(f"{state['question']}\\n{listed}\\nnumbers?")])
    return {"picked": reply.content}

def qa(state):  # sync node: runs in a worker thread
    reply = qa_llm.invoke([HumanMessage(state["question"])])
    return {"answer": reply.content.split("Answer:")[-1].strip(), "meta": {
        "samples": len(reply.response_metadata["samples"]), "usage": reply.usage_metadata}}

builder = StateGraph(State)
builder.add_node("select", select)
builder.add_node("qa", qa)
builder.add_edge(START, "select")
builder.add_edge("select", "qa")
builder.add_edge("qa", END)
graph = builder.compile()
"""


def stats(ex: Executor) -> int:
    """Requests the executor sent to its endpoints (retries included)."""
    assert isinstance(ex, HasCallStats)
    return ex.call_stats().requests


def reply(body: dict[str, Any]) -> str | list[str]:
    text = body["messages"][-1]["content"]
    if body["model"] == "reject":
        raise StubError(400)
    if "numbers" in text or "Which" in text:
        return "2, 1"
    cities = {"France": "Paris", "Norway": "Oslo", "Italy": "Rome"}
    asked = re.search(r"Capital of (\w+)\?", text)
    if asked and asked.group(1) in cities:
        return f"Answer: {cities[asked.group(1)]}"
    return ["Answer: Atlantis", "I do not know", "Answer: atlantis"]


@pytest.fixture
def stub():
    with StubServer(reply, models=("m", "reject")) as s:
        yield s


def stage(name: str, aggregator: str = "vote", **settings: Any) -> dict[str, Any]:
    return {
        "name": name,
        "models": [{"name": "m", "params": 1e9}, {"name": "reject", "params": 1e9}],
        "prompt_tokens": 64,
        "gen_tokens": 8,
        "max_samples": 8,
        "aggregator": aggregator,
        "settings": {"max_tokens": 8, **settings},
    }


def write_task(root: Path, url: str, environment: dict[str, Any], stages: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.jsonl").write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    (root / "pipes.py").write_text(PIPES)
    (root / "lg_graph.py").write_text(GRAPH)
    for s in stages:
        for m in s["models"]:
            m["endpoint"] = url
    task = {
        "name": "kinds",
        "budget": 1000,
        "stages": stages,
        "metrics": ["em", "f1"],
        "main_metric": "em",
        "data": {"path": "data.jsonl", "train_size": 4, "test_size": 0},
        "environment": environment,
    }
    (root / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return root / "task.yaml"


def run(
    path: Path, configs: list[dict], cache: Path, **settings: Any
) -> tuple[list[TrialResult], int]:
    task = load_task(path)

    async def go():
        async with make_executor(task, cache=str(cache), **settings) as ex:
            results = await ex.run([Config.of(c) for c in configs], "train")
            return results, stats(ex)

    return asyncio.run(go())


def python_task(tmp_path: Path, url: str, fn: str, **settings: Any) -> Path:
    env = {"kind": "python", "settings": {"pipeline": f"pipes:{fn}", **settings}}
    return write_task(tmp_path / "t", url, env, [stage("qa")])


def test_handles_draw_through_the_cache(stub, tmp_path):
    path = python_task(tmp_path, stub.url, "answer")
    cache = tmp_path / "c.sqlite"
    (first,), calls = run(path, [{"qa": ("m", 3)}], cache)
    assert first.ok, first.error
    assert calls == 4 and first.calls == 4  # one n=3 request per item
    assert first.metrics["em"] == 0.75  # Atlantis is wrong
    assert first.prompt_tokens == 4 * 10 and first.completion_tokens == 4 * 3 * 2
    assert first.details == {"items": 4, "samples": 12, "cached_samples": 0}

    (again,), calls = run(path, [{"qa": ("m", 3)}], cache)
    assert calls == 0 and again.source == "cache" and again.metrics == first.metrics
    assert again.prompt_tokens == first.prompt_tokens
    assert again.completion_tokens == first.completion_tokens

    (more,), calls = run(path, [{"qa": ("m", 5)}], cache)
    assert calls == 4 and [b["n"] for b in stub.requests[-4:]] == [2, 2, 2, 2]  # samples 3, 4 only
    assert more.stages["qa"].cached_samples == 12


def test_an_item_that_raises_scores_zero_and_the_trial_goes_on(stub, tmp_path):
    (res,), _ = run(python_task(tmp_path, stub.url, "flaky"), [{"qa": ("m", 1)}], tmp_path / "c")
    assert res.ok, res.error
    assert res.metrics["em"] == 0.75  # three right, the failed item counts 0
    assert res.details["failed_items"] == 1
    assert res.details["first_item_error"] == "item bad: ValueError: no such city"


def test_a_trial_whose_items_mostly_fail_is_a_failed_trial(stub, tmp_path):
    path = python_task(tmp_path, stub.url, "mostly_broken")
    (res,), _ = run(path, [{"qa": ("m", 1)}], tmp_path / "c")
    assert not res.ok and res.error is not None
    assert res.error.startswith("3 of 4 items failed (more than 50%); first: item ")
    assert "RuntimeError: bug in the pipeline on" in res.error
    assert res.details["failed_items"] == 3


@pytest.mark.parametrize(
    ("fn", "metric", "expected"),
    [
        ("broken", None, "RuntimeError: bug in the pipeline"),
        ("answer", "pipes:metric_raises", "KeyError: 'answer'"),
    ],
)
def test_one_code_error_on_every_item_stops_the_run(stub, tmp_path, fn, metric, expected):
    """A bug every item hits the same way (the pipeline's or the metric's) is no trial's fault:
    the run stops with it (exit 2) instead of recording failed trials and spending on."""
    from agenttts.errors import UserCodeError

    settings = {"metric": metric} if metric else {}
    path = python_task(tmp_path, stub.url, fn, **settings)
    with pytest.raises(UserCodeError, match="every item \\(4\\) of qa=mx1") as caught:
        run(path, [{"qa": ("m", 1)}], tmp_path / "c")
    assert expected in str(caught.value) and "pipes.py:" in str(caught.value)
    assert caught.value.exit_code == 2


def test_an_async_pipeline_that_blocks_the_loop_fails_the_item_naming_the_line(
    stub, tmp_path, monkeypatch, caplog
):
    """`time.sleep` in async code froze every item with no output: the stall is logged with the
    line that blocks, and the item whose code blocks fails, saying why."""
    from agenttts.environment.live import stall

    monkeypatch.setattr(stall, "WARN_S", 0.5)
    path = python_task(tmp_path, stub.url, "blocks", item_timeout_s=1.0)
    with caplog.at_level("WARNING", logger="agenttts.stall"):
        (res,), _ = run(path, [{"qa": ("m", 1)}], tmp_path / "c")
    assert res.ok and res.metrics["em"] == 0.75, res.details  # the others went on afterwards
    error = res.details["first_item_error"]
    assert error.startswith("item bad: LoopBlocked: its code blocked the event loop for over 1 s")
    assert "pipes.py:" in error and "time.sleep(2.5)" in error
    assert any("time.sleep(2.5)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fn", ["hangs", "sync_hangs"])
def test_a_hanging_item_times_out(stub, tmp_path, fn):
    path = python_task(tmp_path, stub.url, fn, item_timeout_s=1.0)
    start = time.perf_counter()
    (res,), _ = run(path, [{"qa": ("m", 1)}], tmp_path / "c")
    assert time.perf_counter() - start < 15  # the sleeping thread is abandoned, not awaited
    assert res.ok and res.metrics["em"] == 0.75
    assert res.details["first_item_error"] == "item bad: timed out after 1 s"


def test_waiting_for_a_slow_endpoint_is_not_a_hang(tmp_path):
    """The item timeout bounds the pipeline's own code: every request here takes longer than the
    whole item may (a queue at a busy server), and no item times out."""

    def slow(body: dict[str, Any]) -> str | list[str]:
        time.sleep(0.8)
        return reply(body)

    with StubServer(slow, models=("m", "reject")) as srv:
        path = python_task(tmp_path, srv.url, "answer", item_timeout_s=0.5)
        (res,), calls = run(path, [{"qa": ("m", 3)}], tmp_path / "c")
    assert res.ok, res.error
    assert calls == 4 and "failed_items" not in res.details and res.metrics["em"] == 0.75


def test_an_undeclared_stage_fails_the_trial_even_when_caught(stub, tmp_path):
    (res,), _ = run(
        python_task(tmp_path, stub.url, "undeclared"), [{"qa": ("m", 1)}], tmp_path / "c"
    )
    assert not res.ok and res.error is not None
    assert "UndeclaredStage: the pipeline asked for stage 'rerank'" in res.error
    assert "(declared: qa)" in res.error


def test_an_endpoint_failure_fails_the_trial_even_when_caught(stub, tmp_path):
    path = python_task(tmp_path, stub.url, "swallow")
    ok, bad = run(path, [{"qa": ("m", 1)}, {"qa": ("reject", 1)}], tmp_path / "c")[0]
    assert ok.ok and not bad.ok
    assert "HTTP 400" in (bad.error or "")


def test_a_langgraph_graph_with_stage_chat_models(stub, tmp_path):
    env = {
        "kind": "python",
        "settings": {
            "pipeline": "lg_graph:graph",
            "input": {"question": "question", "passages": "passages"},
            "output": "answer",
        },
    }
    path = write_task(tmp_path / "g", stub.url, env, [stage("select", "vote_ids"), stage("qa")])
    cache = tmp_path / "c"
    (res,), calls = run(path, [{"select": ("m", 2), "qa": ("m", 3)}], cache)
    assert res.ok, res.error
    assert res.metrics["em"] == 0.75 and calls == 8
    select = [b for b in stub.requests if "numbers?" in b["messages"][-1]["content"]]
    assert len(select) == 4 and all(b["n"] == 2 for b in select)
    (again,), calls = run(path, [{"select": ("m", 2), "qa": ("m", 3)}], cache)
    assert calls == 0 and again.metrics == res.metrics


def test_the_chat_model_answers_with_the_aggregate(stub, tmp_path):
    from agenttts.environment.live.python_pipeline import PythonProgram

    env = {"kind": "python", "settings": {"pipeline": "lg_graph:graph", "output": "meta"}}
    path = write_task(tmp_path / "g", stub.url, env, [stage("select", "vote_ids"), stage("qa")])
    task = load_task(path)

    async def go():
        async with make_executor(task, cache=str(tmp_path / "c")) as ex:
            from agenttts.environment.live.executor import PipelineExecutor
            from agenttts.environment.live.stages import TrialRun

            assert isinstance(ex, PipelineExecutor)
            await ex.sampler.check_endpoints(task.stage("qa").models[:1])
            run_ = TrialRun(task, Config.of({"select": ("m", 2), "qa": ("m", 3)}), ex.sampler)
            run_.enter()
            assert isinstance(ex.program, PythonProgram)
            return await ex.program.predict(dict(ITEMS[2]), run_.stages)

    meta = asyncio.run(go())
    assert meta["samples"] == 3
    assert meta["usage"] == {"input_tokens": 10, "output_tokens": 6, "total_tokens": 16}


def test_a_declared_chain(stub, tmp_path):
    env = {"kind": "chain"}
    select = stage(
        "select",
        "vote_ids",
        prompt={"user": "{question}\n{passages}\nWhich passages? Reply with numbers."},
        parse={"ids": "passages", "max": 2},
    )
    answer = stage("qa", prompt={"user": "Context:\n{select}\nQ: {question}"}, parse="answer")
    path = write_task(tmp_path / "c", stub.url, env, [select, answer])
    cache = tmp_path / "c.sqlite"
    (res,), calls = run(path, [{"select": ("m", 2), "qa": ("m", 1)}], cache)
    assert res.ok, res.error
    assert res.metrics["em"] == 0.75 and calls == 8
    qa = next(b for b in stub.requests if "Capital of France" in b["messages"][-1]["content"]
              and b["messages"][-1]["content"].startswith("Context:"))  # fmt: skip
    # the ids "2, 1" named passages 2 and 1, rendered as numbered lines for the next stage
    assert qa["messages"][-1]["content"] == (
        "Context:\n[1] Paris is the capital of France.\n[2] Oslo is in Norway.\n"
        "Q: Capital of France?"
    )
    (again,), calls = run(path, [{"select": ("m", 2), "qa": ("m", 1)}], cache)
    assert calls == 0 and again.metrics == res.metrics


def test_pipeline_module_sees_its_siblings(stub, tmp_path):
    root = tmp_path / "s"
    path = python_task(root, stub.url, "answer")
    (path.parent / "helper_mod_x.py").write_text("VALUE = 'Paris'\n")
    (path.parent / "pipes.py").write_text(
        textwrap.dedent(
            """
            from helper_mod_x import VALUE

            async def answer(item, stages):
                return VALUE
            """
        )
    )
    (res,), calls = run(path, [{"qa": ("m", 1)}], tmp_path / "c")
    assert res.ok and res.metrics["em"] == 0.25 and calls == 0


def test_a_user_graph_runs_inside_the_search_graph(stub, tmp_path):
    """The search runs trials inside its own LangGraph node, with a sync SQLite checkpointer: the
    user's graph must not inherit that run (it would try the checkpointer's missing async API)."""
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    from agenttts.environment.registry import run_batch

    env = {
        "kind": "python",
        "settings": {"pipeline": "lg_graph:graph", "input": {"question": "question",
                     "passages": "passages"}, "output": "answer"},
    }  # fmt: skip
    path = write_task(tmp_path / "g", stub.url, env, [stage("select", "vote_ids"), stage("qa")])
    task = load_task(path)

    class Outer(TypedDict, total=False):
        em: float

    def execute(state: Outer) -> Outer:
        config = Config.of({"select": ("m", 1), "qa": ("m", 1)})
        (result,) = run_batch(task, [config], "train", cache=str(tmp_path / "c"))
        assert result.ok, result.error
        return {"em": result.metrics["em"]}

    builder = StateGraph(Outer)
    builder.add_node("execute", execute)
    builder.add_edge(START, "execute")
    builder.add_edge("execute", END)
    with SqliteSaver.from_conn_string(str(tmp_path / "runs.sqlite")) as saver:
        outer = builder.compile(checkpointer=saver)
        final = outer.invoke({}, {"configurable": {"thread_id": "t"}}, durability="sync")
    assert final["em"] == 0.75


def test_a_subset_of_the_items_runs_only_those_and_scores_each(stub, tmp_path):
    """Racing's contract on a live pipeline: `items` runs those items of the split and reports
    each one's main metric; the search cost counts only samples the cache did not hold."""
    task = load_task(python_task(tmp_path, stub.url, "answer"))
    config = Config.of({"qa": ("m", 3)})
    per_item = task.stages[0].cost("m", 3)

    async def go(items: list[int] | None) -> tuple[TrialResult, int]:
        async with make_executor(task, cache=str(tmp_path / "c.sqlite")) as ex:
            (result,) = await ex.run([config], "train", items)
            return result, stats(ex)

    part, calls = asyncio.run(go([3, 1]))
    assert part.ok and calls == 2 and part.details["items"] == 2
    assert part.item_ids == [3, 1] and part.fidelity == 0.5 and part.split_size == 4
    assert part.item_scores is not None and len(part.item_scores) == 2
    assert part.metrics["em"] == sum(part.item_scores) / 2
    assert part.search_cost == pytest.approx(per_item * 2)

    whole, calls = asyncio.run(go(None))
    assert whole.ok and calls == 2  # the other two items only: the first two are cached
    assert whole.stages["qa"].cached_samples == 2 * 3
    assert whole.search_cost == pytest.approx(per_item * 4 * (1 - 6 / 12))
    assert whole.metrics["em"] == 0.75 and whole.item_ids is None


def test_evaluate_states_failed_items_and_lists_each_item(stub, tmp_path, capsys):
    """Text output said `ok` while --json held `failed_items`; and nothing showed predictions.
    Now the text states the failed items with the first error, and `--items` lists each item's
    prediction, gold answer, scores and the samples each stage drew."""
    from agenttts.cli.main import main

    path = python_task(tmp_path, stub.url, "flaky", cache=str(tmp_path / "c.sqlite"))
    assert main(["evaluate", str(path), "--config", '{"qa": {"model": "m", "samples": 2}}']) == 0
    out = capsys.readouterr().out
    assert "items: 4 evaluated; 1/4 items failed; first: item bad: ValueError: no such city" in out
    assert "status: ok (1 item(s) failed, scored 0)" in out
    assert "item fr:" not in out
    config = '{"qa": {"model": "m", "samples": 2}}'
    assert main(["evaluate", str(path), "--config", config, "--items"]) == 0
    out = capsys.readouterr().out
    assert 'item fr: em=1, f1=1\n  gold:       ["Paris"]\n  prediction: Paris\n' in out
    assert "  qa (2 sample(s)): Answer: Paris | Answer: Paris\n" in out
    assert "item bad: ValueError: no such city" in out


def test_dry_run_catches_a_wrong_output_key_and_a_raising_metric(stub, tmp_path, capsys):
    """One item on the cheapest configuration, before any search: a wrong `output:` key names
    the state's keys; a metric that raises stops with exit 2 and the error."""
    from agenttts.cli.main import main

    env = {"kind": "python", "settings": {"pipeline": "lg_graph:graph", "output": "answr",
           "cache": str(tmp_path / "c.sqlite")}}  # fmt: skip
    path = write_task(tmp_path / "g", stub.url, env, [stage("select", "vote_ids"), stage("qa")])
    assert main(["task", "validate", str(path)]) == 0  # nothing runs: the key is unknown yet
    assert main(["task", "validate", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "the graph's final state has no key 'answr'" in err
    assert "its keys: 'question', 'passages'" in err and "'answer'" in err

    path = python_task(
        tmp_path / "m", stub.url, "answer", metric="pipes:metric_raises",
        cache=str(tmp_path / "c.sqlite"),
    )  # fmt: skip
    assert main(["task", "validate", str(path), "--dry-run"]) == 2
    assert "KeyError: 'answer'" in capsys.readouterr().err

    path = python_task(tmp_path / "ok", stub.url, "answer", cache=str(tmp_path / "c.sqlite"))
    assert main(["task", "validate", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: the first training item on the cheapest configuration, qa=mx1" in out
    assert 'item bad: em=0, f1=0\n  gold:       ["none"]\n  prediction: Atlantis\n' in out


def test_a_code_error_stops_the_search_naming_the_command_to_continue(stub, tmp_path, capsys):
    """A metric that raises on every item: 6 trials, 71 calls, exit 0 and no best before; now the
    first trial stops the search (exit 2) with the error and the exact command to continue."""
    from agenttts.cli.main import main

    path = python_task(
        tmp_path, stub.url, "answer", metric="pipes:metric_raises", cache=str(tmp_path / "c")
    )
    argv = ["search", str(path), "--db", str(tmp_path / "runs.sqlite"), "--proposer", "insight"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "\nerror: every item (4) of qa=" in err and "KeyError: 'answer'" in err
    assert (
        f"once the code is fixed, continue with `agenttts {' '.join(argv)} --thread task-insight`"
        in err
    )
    assert len(stub.requests) <= 8  # the first initial trials' draws only
