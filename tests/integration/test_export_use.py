"""The search's result outside the search, against a real local OpenAI-compatible server (a stub):
`agenttts export` writes a thread's best configuration; `use_config` / `AGENTTTS_CONFIG` make a
pipeline function and LangGraph graphs (plain `invoke` / `ainvoke`) run at it, and `agenttts run`
runs a chain over new inputs; with the search's sample cache, what the search evaluated replays
with no request. Bad input is refused before any request; with no file, a stage says how to give
one."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from capitals import ITEMS as CAPITALS
from grid_task import write_grid_task
from openai_server import StubServer

from agenttts.cli.main import main
from agenttts.environment.executor import TrialResult
from agenttts.environment.exported import ExportedConfig
from agenttts.environment.live import configured
from agenttts.environment.live.loading import import_spec
from agenttts.environment.live.scoring import Scorer, ScoringSettings
from agenttts.environment.registry import make_executor
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task
from agenttts.errors import InputError

pytestmark = pytest.mark.integration

ITEMS = [item for item in CAPITALS if item["id"] != "bad"]
NEW = {"id": "de", "question": "Capital of Germany?", "answers": ["Berlin"],
       "passages": ["Berlin is the capital of Germany.", "Bonn was.", "Oslo is cold."]}  # fmt: skip

USER_CODE = """
from typing import TypedDict
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from agenttts.pipeline import Stages, parse_answer, stages

def select_prompt(state):
    listed = "\\n".join(f"[{i}] {p}" for i, p in enumerate(state["passages"], 1))
    return f"{state['question']}\\n{listed}\\nWhich passages? Reply with numbers."

async def pipeline(item: dict, stages: Stages):
    picked = await stages["select"].aggregate(
        [s.text for s in await stages["select"].sample(select_prompt(item))])
    samples = await stages["qa"].sample(f"{picked}\\n{item['question']}")
    return await stages["qa"].aggregate([parse_answer(s.text) for s in samples])

select_llm = stages["select"].chat_model()
qa_llm = stages["qa"].chat_model(parse=parse_answer)

class State(TypedDict, total=False):
    question: str
    passages: list
    picked: str
    answer: str

async def select(state):
    return {"picked": (await select_llm.ainvoke([HumanMessage(select_prompt(state))])).content}

def select_sync(state):
    return {"picked": select_llm.invoke([HumanMessage(select_prompt(state))]).content}

def qa(state):  # a sync node
    reply = qa_llm.invoke([HumanMessage(f"{state['picked']}\\n{state['question']}")])
    return {"answer": reply.content}

def build(first):
    builder = StateGraph(State)
    builder.add_node("select", first)
    builder.add_node("qa", qa)
    builder.add_edge(START, "select")
    builder.add_edge("select", "qa")
    builder.add_edge("qa", END)
    return builder.compile()

graph = build(select)            # an async node: ainvoke
sync_graph = build(select_sync)  # all sync: invoke
"""

GRAPH_IO = {"input": {"question": "question", "passages": "passages"}, "output": "answer"}
CONFIG = Config.of({"select": ("small", 2), "qa": ("small", 3)})


def reply(body: dict[str, Any]) -> str | list[str]:
    text = body["messages"][-1]["content"]
    if "Which passages" in text:
        return ["2, 1", "1", "2"]
    asked = re.search(r"Capital of (\w+)\?", text)
    cities = {"France": "Paris", "Norway": "Oslo", "Italy": "Rome"}
    if asked and asked.group(1) in cities:
        return f"Answer: {cities[asked.group(1)]}"
    return ["Answer: Bonn", "Answer: Berlin", "Answer: Berlin"]


@pytest.fixture
def stub():
    with StubServer(reply, models=("m",)) as s:
        yield s


@pytest.fixture(autouse=True)
def no_installed_config(monkeypatch):
    """Each test starts with no configuration in the process, and leaves none."""
    monkeypatch.delenv(configured.CONFIG_ENV, raising=False)
    monkeypatch.setattr(configured, "_INSTALLED", None)
    yield
    if configured._INSTALLED is not None:
        configured._INSTALLED.close()


def write_task(root: Path, url: str, environment: dict[str, Any], name: str = "capitals") -> Path:
    """A two-stage task whose model `small` is the server's `m`, reached through a deployment
    file that names a key variable (its value must never reach an exported file)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.jsonl").write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    (root / "user_code.py").write_text(USER_CODE)
    entry = {"base_url": url, "params": 1e9, "served_name": "m", "api_key_env": "STUB_KEY"}
    (root / "deploy.yaml").write_text(yaml.safe_dump({"models": {"small": entry}}))
    stage = {"models": [{"name": "small"}], "prompt_tokens": 64, "gen_tokens": 8,
             "max_samples": 4, "settings": {"max_tokens": 8}}  # fmt: skip
    select = {**stage, "name": "select", "aggregator": "vote_ids"}
    qa = {**stage, "name": "qa", "aggregator": "vote"}
    if environment["kind"] == "chain":
        select["settings"] = {
            "max_tokens": 8,
            "prompt": {"user": "{question}\n{passages}\nWhich passages? Reply with numbers."},
            "parse": {"ids": "passages", "max": 2},
        }
        qa["settings"] = {"max_tokens": 8, "prompt": {"user": "{select}\n{question}"}}
    task = {
        "name": name,
        "budget": 1000,
        "stages": [select, qa],
        "metrics": ["em"],
        "main_metric": "em",
        "data": {"path": "data.jsonl", "train_size": 3, "test_size": 0},
        "environment": environment,
        "deployment": "deploy.yaml",
    }
    (root / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return root / "task.yaml"


def searched(path: Path, cache: Path) -> tuple[Task, TrialResult, Path]:
    """What a search leaves: CONFIG evaluated through the sample cache, and its export."""
    task = load_task(path)

    async def go() -> TrialResult:
        async with make_executor(task, cache=str(cache)) as ex:
            (result,) = await ex.run([CONFIG], "train")
            return result

    trial = asyncio.run(go())
    assert trial.ok, trial.error
    task.environment.settings["cache"] = str(cache)
    out = path.parent / "best.yaml"
    out.write_text(ExportedConfig.of(task, CONFIG, budget=task.budget).to_yaml())
    return task, trial, out


def scored(task: Task, predictions: list[Any]) -> float:
    """The task's main metric over ITEMS, as the search scores a trial."""
    scorer = Scorer(task.metrics, ScoringSettings(), task.base_dir)
    scores = [asyncio.run(scorer.score(p, i)) for p, i in zip(predictions, ITEMS, strict=True)]
    return sum(s[task.main_metric] for s in scores) / len(scores)


def test_the_export_file_holds_what_the_stages_need_and_no_secret(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "s3cret-value")
    _, _, out = searched(write_task(tmp_path, stub.url, {"kind": "python", "settings": {
        "pipeline": "user_code:pipeline"}}), tmp_path / "c.sqlite")  # fmt: skip
    text = out.read_text()
    assert "s3cret-value" not in text
    data = yaml.safe_load(text)
    assert data["deployment"]["models"]["small"] == {
        "base_url": stub.url, "params": 1e9, "served_name": "m", "api_key_env": "STUB_KEY"
    }  # fmt: skip
    assert data["stages"]["select"] == {
        "model": "small", "samples": 2, "aggregator": "vote_ids", "answer_normalizer": "squad",
        "sampling": {"temperature": 0.9, "top_p": 1.0, "max_tokens": 8},
        "prompt_tokens": 64, "gen_tokens": 8, "cost": data["stages"]["select"]["cost"],
    }  # fmt: skip
    assert data["sampler"] == {"cache": str(tmp_path / "c.sqlite")}
    assert ExportedConfig.load(out).config() == CONFIG


def test_a_function_and_graphs_run_at_the_file_with_no_new_request(stub, tmp_path):
    env = {"kind": "python", "settings": {"pipeline": "user_code:pipeline"}}
    task, trial, out = searched(write_task(tmp_path, stub.url, env), tmp_path / "c.sqlite")
    graph_env = {"kind": "python", "settings": {"pipeline": "user_code:graph", **GRAPH_IO}}
    searched(write_task(tmp_path / "g", stub.url, graph_env), tmp_path / "c.sqlite")
    before = len(stub.requests)

    stages = configured.use_config(out)
    user_code = import_spec("user_code:pipeline", task.base_dir)[0]  # the module searched

    # each prediction in its own event loop: the stages' draws do not belong to the caller's
    function = [asyncio.run(user_code.pipeline(item, stages)) for item in ITEMS]
    graph = [asyncio.run(user_code.graph.ainvoke(dict(item)))["answer"] for item in ITEMS]
    sync_graph = [user_code.sync_graph.invoke(dict(item))["answer"] for item in ITEMS]

    assert len(stub.requests) == before  # every sample came from the search's cache
    usage = stages.usage()
    assert sum(u["calls"] for u in usage.values()) == 0
    assert usage["select"]["cached_samples"] == usage["select"]["samples"] == 3 * 2 * 3
    assert function == graph == sync_graph == ["Paris", "Oslo", "Rome"]
    assert scored(task, function) == trial.metrics["em"]


def test_the_environment_variable_names_the_file_in_a_plain_process(stub, tmp_path):
    env = {"kind": "python", "settings": {"pipeline": "user_code:sync_graph", **GRAPH_IO}}
    _, _, out = searched(write_task(tmp_path, stub.url, env), tmp_path / "c.sqlite")
    before = len(stub.requests)
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from user_code import sync_graph; from agenttts.pipeline import stages;"
        "print(json.dumps([sync_graph.invoke({'question': 'Capital of Norway?',"
        " 'passages': ['Oslo is the capital of Norway.', 'Lyon is in France.', 'Bern is Swiss.']"
        "})['answer'], stages.usage()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env={**os.environ, configured.CONFIG_ENV: str(out)},
        capture_output=True, text=True, timeout=120, cwd=tmp_path.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer, usage = json.loads(done.stdout)
    assert answer == "Oslo" and sum(u["calls"] for u in usage.values()) == 0
    assert len(stub.requests) == before


def test_without_a_file_a_stage_names_both_ways_to_give_one(tmp_path, monkeypatch):
    from agenttts.pipeline import StageUnavailable, stages

    with pytest.raises(StageUnavailable) as e:
        stages["qa"].samples  # noqa: B018
    assert 'use_config("best.yaml")' in str(e.value) and "AGENTTTS_CONFIG=best.yaml" in str(e.value)
    assert repr(stages["qa"]) == "StageHandle('qa', unbound)"
    monkeypatch.setenv(configured.CONFIG_ENV, str(tmp_path / "nowhere.yaml"))
    with pytest.raises(InputError, match=r"AGENTTTS_CONFIG=.*nowhere\.yaml: no configuration file"):
        stages["qa"].samples  # noqa: B018


def test_run_a_chain_over_new_inputs(stub, tmp_path, capsys):
    task, trial, out = searched(write_task(tmp_path, stub.url, {"kind": "chain"}), tmp_path / "c")
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps(i) + "\n" for i in [*ITEMS, NEW]))
    before = len(stub.requests)
    rc = main(["run", str(tmp_path / "task.yaml"), "--config", str(out), "--input", str(inputs),
               "--out", str(tmp_path / "out.jsonl"), "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["prediction"] for x in lines] == ["Paris", "Oslo", "Rome", "Berlin"]
    assert scored(task, [x["prediction"] for x in lines[:3]]) == trial.metrics["em"]
    assert [x["requests"] for x in lines] == [0, 0, 0, 2]  # only the new input draws
    assert len(stub.requests) == before + 2
    new = lines[3]
    assert new["id"] == "de" and new["error"] is None
    assert new["stages"]["qa"]["outputs"] == [
        {"samples": ["Answer: Bonn", "Answer: Berlin", "Answer: Berlin"], "output": "Berlin"}
    ]
    assert new["stages"]["select"]["outputs"] == [{"samples": ["2, 1", "1"], "output": [1, 2]}]
    assert new["stages"]["select"]["samples"] == 2 and new["stages"]["qa"]["samples"] == 3
    assert new["prompt_tokens"] == 20 and new["completion_tokens"] == 2 * 2 + 3 * 2
    assert new["nominal_cost"] == trial.nominal_cost
    assert "ran 4 input(s) at select=smallx2 | qa=smallx3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no_input", "--input: data file .*missing.jsonl: No such file"),
        ("other_task", "is for task 'capitals', not 'elsewhere'"),
        ("unknown_model", "stage 'qa' runs model 'huge', unknown to task 'capitals'"),
        ("no_config", "no configuration file .*absent.yaml"),
        ("not_exported", "is not an exported agenttts configuration"),
        ("graph_field", "input 1 has no field\\(s\\) \\['passages'\\]"),
    ],
)
def test_run_refuses_bad_input_before_any_request(stub, tmp_path, capsys, change, message):
    env = {"kind": "python", "settings": {"pipeline": "user_code:graph", **GRAPH_IO}}
    path = write_task(tmp_path, stub.url, env)
    _, _, out = searched(path, tmp_path / "c")
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps(NEW) + "\n")
    args = {"task": str(path), "config": str(out), "input": str(inputs)}
    if change == "no_input":
        args["input"] = str(tmp_path / "missing.jsonl")
    elif change == "other_task":
        args["task"] = str(write_task(tmp_path / "other", stub.url, env, name="elsewhere"))
    elif change == "unknown_model":
        data = yaml.safe_load(out.read_text())
        data["stages"]["qa"]["model"] = "huge"
        data["deployment"]["models"]["huge"] = {"base_url": stub.url, "params": 7e10}
        out.write_text(yaml.safe_dump(data))
    elif change == "no_config":
        args["config"] = str(tmp_path / "absent.yaml")
    elif change == "not_exported":
        args["config"] = str(path)
    elif change == "graph_field":
        inputs.write_text(json.dumps({"question": "Capital of Spain?"}) + "\n")
    before = len(stub.requests)
    capsys.readouterr()
    rc = main(["run", args["task"], "--config", args["config"], "--input", args["input"]])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert re.search(message, err[0]), err[0]
    assert len(stub.requests) == before


def test_export_writes_a_threads_best_and_checks_the_budget(tmp_path, capsys):
    task = str(write_grid_task(tmp_path / "grid"))
    db = str(tmp_path / "runs.sqlite")
    report = str(tmp_path / "rep")
    rc = main(["search", task, "--thread", "g", "--db", db, "--proposer", "insight",
               "--max-iterations", "1", "--report-dir", report, "--quiet"])  # fmt: skip
    assert rc == 0
    capsys.readouterr()
    assert main(["show", "g", "--db", db, "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    ok = [t for t in state["archive"] if t["status"] == "ok"]
    # the thread's best: the top score, ties to the cheaper configuration, then the earlier trial
    best = min(ok, key=lambda t: (-t["score"], t["nominal_cost"], t["trial_id"]))

    assert (
        main(["export", "g", "--db", db, "--budget", "1000", "--out", str(tmp_path / "b.yaml")])
        == 0
    )
    assert f"wrote {tmp_path / 'b.yaml'}: " in capsys.readouterr().out
    exported = ExportedConfig.load(tmp_path / "b.yaml")
    assert exported.config() == Config.of(best["config"]) and exported.budget == 1000
    assert exported.thread == "g" and exported.train_score == best["score"]
    assert exported.test_score == state["test_result"]["score"]
    assert exported.sampler is None and exported.deployment.models == {}  # a replayed table

    assert main(["export", "g", "--db", db]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == yaml.safe_load(
        (tmp_path / "b.yaml").read_text()
    )
    assert main(["export", "g", "--db", db, "--budget", "500"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --budget 500: thread 'g' searched budget 1000 only; search 500 to export its best"
    )
    assert main(["export", "nope", "--db", db]) == 2
    assert "no thread 'nope'" in capsys.readouterr().err
