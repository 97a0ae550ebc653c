"""The bundled KGQA and MBPP pipelines (tasks/pipelines/) and the KGQA data converter, without a
server: the pipelines run through the real trial machinery (`TrialRun`, stage handles,
aggregators, the sandbox) with one fake — the sampler that would ask the endpoint — scripted per
stage. Their task files are checked before any spend, bad variants included."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.environment.live.cache import Sample
from agenttts.environment.live.loading import load_items
from agenttts.environment.live.sampler import Drawn
from agenttts.environment.live.stages import TrialRun
from agenttts.environment.registry import executor_class
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task, parse_task
from agenttts.errors import InputError
from agenttts.tasks.pipelines import kgqa, kgqa_data, mbpp

TASKS = Path(__file__).resolve().parents[2] / "tasks"
Reply = Callable[[str, list[dict[str, Any]], int], str]


class ScriptedSampler:
    """Stands in for the endpoint-backed Sampler: sample i of a prompt is reply(stage, msgs, i)."""

    def __init__(self, reply: Reply):
        self.reply = reply
        self.calls: list[str] = []

    async def draw(self, stage, choice, messages, count, params, tally) -> Drawn:
        self.calls.append(stage)
        samples = [Sample(i, self.reply(stage, messages, i), 5) for i in range(count)]
        return Drawn(samples=samples, prompt_tokens=10, calls=1)


def run_pipeline(pipeline, task: Task, config: Config, item: dict[str, Any], reply: Reply):
    sampler = ScriptedSampler(reply)

    async def go():
        run = TrialRun(task, config, sampler)  # type: ignore[arg-type]
        run.enter()
        return await pipeline(item, run.stages)

    return asyncio.run(go()), sampler.calls


# --- MBPP ------------------------------------------------------------------------------------


def mbpp_item() -> dict[str, Any]:
    return load_items(TASKS / "data/mbpp/mbpp_40.jsonl")[0]


def test_mbpp_plans_then_picks_the_program_that_passes_the_visible_assert():
    task = load_task(TASKS / "paper-mbpp.yaml")
    item = mbpp_item()
    programs = [
        "def nothing(): pass",  # fails the visible assert (no such function)
        f"```python\n{item['code']}\n```",  # the reference solution, fenced
        "this is not code",
    ]

    def reply(stage, messages, i):
        if stage == "plan":
            return "1. compute it"
        assert item["test"][0] in messages[-1]["content"]  # the visible assert is shown
        assert "1. compute it" in messages[-1]["content"]  # ... and the plan
        return programs[i]

    config = Config.of(
        {"plan": ("llama-3.1-8b-instruct", 1), "code": ("qwen2.5-coder-7b-instruct", 3)}
    )
    chosen, calls = run_pipeline(mbpp.pipeline, task, config, item, reply)
    assert calls == ["plan", "code"]
    assert chosen.strip() == item["code"].strip()
    assert asyncio.run(mbpp.score(chosen, item)) == {"pass@tests": 1.0, "asserts": 1.0}


def test_mbpp_without_a_plan_stage_codes_at_once():
    task = load_task(TASKS / "mbpp.yaml")
    item = mbpp_item()
    config = Config.of({"code": ("smollm2", 2)})

    def reply(stage, messages, i):
        assert "Plan" not in messages[-1]["content"]
        return ["x = 1", item["code"]][i]

    chosen, calls = run_pipeline(mbpp.pipeline, task, config, item, reply)
    assert calls == ["code"] and chosen.strip() == item["code"].strip()

    # none passes the visible assert: the stage's aggregator (`first`) takes sample 0
    chosen, _ = run_pipeline(mbpp.pipeline, task, config, item, lambda s, m, i: "x = 1")
    assert chosen == "x = 1"
    assert asyncio.run(mbpp.score(chosen, item)) == {"pass@tests": 0.0, "asserts": 0.0}


def test_mbpp_generated_shell_commands_and_endless_loops_stay_in_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(mbpp, "TIMEOUT_S", 1.5)
    task = load_task(TASKS / "mbpp.yaml")
    item = mbpp_item()
    target = tmp_path / "pwned"
    programs = [
        f"import os\nos.system('touch {target}')\n",
        "def f():\n    pass\nwhile True:\n    pass\n",
    ]
    config = Config.of({"code": ("smollm2", 2)})
    chosen, _ = run_pipeline(mbpp.pipeline, task, config, item, lambda s, m, i: programs[i])
    assert chosen == programs[0].strip()  # neither passed the visible assert: sample 0
    assert asyncio.run(mbpp.score(chosen, item))["pass@tests"] == 0.0
    assert not target.exists()
    looped = mbpp.execute(programs[1], (item["test"][0],))
    assert looped.timed_out


def test_mbpp_partial_credit_counts_asserts():
    item = {"prompt": "", "test": ["assert f(1) == 1", "assert f(2) == 4", "assert f(3) == 9"]}
    got = asyncio.run(mbpp.score("def f(x):\n    return x if x < 2 else x * x", item))
    assert got == {"pass@tests": 1.0, "asserts": 1.0}
    got = asyncio.run(mbpp.score("def f(x):\n    return x", item))
    assert got["pass@tests"] == 0.0 and got["asserts"] == pytest.approx(1 / 3)


def test_bundled_mbpp_reference_solutions_pass_in_the_sandbox():
    items = load_items(TASKS / "data/mbpp/mbpp_40.jsonl")
    assert len(items) == 40
    for item in items[:5]:
        assert asyncio.run(mbpp.score(item["code"], item))["pass@tests"] == 1.0, item["task_id"]


# --- KGQA: the converter -------------------------------------------------------------------


def generated_cwq(n: int = 6) -> list[dict[str, Any]]:
    """ComplexWebQuestions-format items (as cwq_200.json), made up here: country i's capital and
    currency; neighbouring items share the relation names."""
    return [
        {
            "ID": f"gen-{i}",
            "question": f"Which currency is used in the country whose capital is City{i}?",
            "answer": [f"Coin{i}"],
            "gt_triples": [
                [f"Country{i}", "location.country.capital", f"City{i}"],
                [f"Country{i}", "location.country.currency_used", f"Coin{i}"],
                [f"Country{i}", "location.country.capital", f"City{i}"],  # a duplicate
            ],
            "compositionality_type": "composition",
        }
        for i in range(n)
    ]


def test_converter_pools_gold_triples_among_related_distractors():
    source = generated_cwq()
    items = kgqa_data.convert(source, distractors=4, seed=0)
    assert len(items) == len(source)
    for item, raw in zip(items, source, strict=True):
        assert item["answers"] == raw["answer"] and item["question"] == raw["question"]
        gold = {tuple(t) for t in raw["gt_triples"]}
        assert {tuple(item["triples"][i]) for i in item["gold"]} == gold
        assert len(item["gold"]) == 2  # the duplicate counted once
        assert len(item["triples"]) == 2 + 4
        distractors = [t for i, t in enumerate(item["triples"]) if i not in item["gold"]]
        relations = {t[1] for t in gold}
        assert all(t[1] in relations for t in distractors)  # they share a relation
        assert not gold & {tuple(t) for t in distractors}
    assert kgqa_data.convert(source, distractors=4, seed=0) == items  # seeded: same file
    assert kgqa_data.convert(source, distractors=4, seed=1) != items


def test_converter_tops_up_and_says_which_item_is_bad(tmp_path: Path):
    few = kgqa_data.convert(generated_cwq(2), distractors=10)
    assert all(len(x["triples"]) == 2 + 2 for x in few)  # only the other item's two triples exist
    bad = generated_cwq(3)
    bad[1]["gt_triples"] = [["only", "two"]]
    with pytest.raises(InputError, match=r"item 1 \(gen-1\)"):
        kgqa_data.convert(bad)
    src, out = tmp_path / "cwq.json", tmp_path / "kgqa.jsonl"
    src.write_text(json.dumps(generated_cwq(3)))
    assert kgqa_data.main([str(src), str(out), "--distractors", "3"]) == 0
    assert load_items(out) == kgqa_data.convert(generated_cwq(3), distractors=3)


def test_bundled_kgqa_sample_is_the_converters_output():
    source = load_items(TASKS / "data/kgqa/kgqa_sample_source.json")
    assert load_items(TASKS / "data/kgqa/kgqa_sample.jsonl") == kgqa_data.convert(source)


# --- KGQA: the pipeline --------------------------------------------------------------------


def kgqa_task(items: Path | None = None) -> Task:
    task = load_task(TASKS / "kgqa.yaml")
    if items is not None:
        task.data.path = str(items)
    return task


def oracle(item: dict[str, Any]) -> Reply:
    """Names the gold triples' numbers as the prompt lists them, then the right answer."""
    gold = {" | ".join(item["triples"][i]) for i in item["gold"]}

    def reply(stage, messages, i):
        text = messages[-1]["content"]
        if stage == "select":
            listed = re.findall(r"^\[(\d+)\] (.+)$", text, re.MULTILINE)
            return ", ".join(n for n, triple in listed if triple in gold)
        return f"Answer: {item['answers'][0]}"

    return reply


def test_kgqa_selects_then_answers_on_a_generated_set(tmp_path: Path):
    items = kgqa_data.convert(generated_cwq(), distractors=12)
    task = kgqa_task()
    item = items[2]
    config = Config.of({"select": ("smollm2", 2), "answer": ("smollm2", 2)})
    prediction, calls = run_pipeline(kgqa.pipeline, task, config, item, oracle(item))
    assert calls == ["select", "answer"]
    assert sorted(prediction["triples"]) == item["gold"]
    assert kgqa.score(prediction, item) == {
        "em": 1.0,
        "f1": 1.0,
        "contains": 1.0,
        "triple_precision": 1.0,
        "triple_recall": 1.0,
        "triple_f1": 1.0,
    }


def test_kgqa_bm25_choice_calls_no_model_for_selection():
    items = kgqa_data.convert(generated_cwq(), distractors=12)
    item = items[4]
    config = Config.of({"select": ("bm25", 1), "answer": ("smollm2", 1)})
    prediction, calls = run_pipeline(kgqa.pipeline, kgqa_task(), config, item, oracle(item))
    assert calls == ["answer"]
    assert len(prediction["triples"]) == 4  # the task's top_k
    # the question names City4: BM25 ranks the triple that holds it first
    assert item["triples"][prediction["triples"][0]][2] == "City4"


# --- checked before any spend --------------------------------------------------------------


def problems_of(name: str, edit: Callable[[dict[str, Any]], None]) -> list[str]:
    raw = yaml.safe_load((TASKS / name).read_text())
    edit(raw)
    task = parse_task(raw, source=name, base_dir=TASKS)
    return [f"{p.field}: {p.message}" for p in executor_class("python").check_task(task)]


@pytest.mark.parametrize("name", ["mbpp.yaml", "paper-mbpp.yaml", "kgqa.yaml", "paper-cwq.yaml"])
def test_bundled_task_files_validate(name: str):
    assert problems_of(name, lambda raw: None) == []


def test_bad_variants_are_reported_before_any_spend(tmp_path: Path):
    def code_aggregator(raw):
        raw["stages"][0]["aggregator"] = "vote_ids"

    assert any("stages[code].aggregator" in p for p in problems_of("mbpp.yaml", code_aggregator))

    prompt = tmp_path / "plan.txt"
    prompt.write_text("### user\n{problem} and {nonsense}\n")

    def plan_prompt(raw):
        raw["stages"][0]["settings"]["prompt"] = str(prompt)

    found = problems_of("paper-mbpp.yaml", plan_prompt)
    assert any("lacks the placeholder(s) ['test']" in p for p in found)
    assert any("names ['nonsense']" in p for p in found)

    def metric(raw):
        raw["metrics"] = ["pass@tests", "hits@1"]

    assert any("unknown ['hits@1']" in p for p in problems_of("mbpp.yaml", metric))

    def code_before_plan(raw):
        raw["stages"].reverse()

    assert any(
        "[plan, code], in that order" in p for p in problems_of("paper-mbpp.yaml", code_before_plan)
    )

    def bm25_answers(raw):
        raw["stages"][1]["models"].append({"name": "bm25", "kind": "bm25", "fixed_cost": 0.01})

    assert any("stages[answer].models[bm25]" in p for p in problems_of("kgqa.yaml", bm25_answers))

    def foreign_fuser(raw):
        raw["stages"][1]["aggregator"] = "fuse"
        raw["stages"][1]["aggregator_settings"] = {"model": "gpt-4o"}

    found = problems_of("kgqa.yaml", foreign_fuser)
    assert any("fuser 'gpt-4o' is not one of the stage's models" in p for p in found)

    raw_items = tmp_path / "cwq_raw.jsonl"  # not converted: the converter's input, not its output
    raw_items.write_text("".join(json.dumps(x) + "\n" for x in generated_cwq(2)))

    def unconverted(raw):
        raw["data"]["path"] = str(raw_items)

    assert any("kgqa_data" in p for p in problems_of("kgqa.yaml", unconverted))

    def undeclared(raw):
        raw["stages"][0]["name"] = "retrieve"

    assert any("'select'" in p for p in problems_of("kgqa.yaml", undeclared))
