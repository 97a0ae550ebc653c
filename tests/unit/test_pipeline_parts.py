"""The pieces user pipelines are built from: parsers, templates, metrics, data loading."""

from __future__ import annotations

import asyncio
import json

import pytest

from agenttts.environment.live.chain import template_text
from agenttts.environment.live.loading import load_items
from agenttts.environment.live.parsers import (
    Parser,
    parse_answer,
    parse_json_field,
    parse_regex,
    strip_code_fence,
)
from agenttts.environment.live.prompts import PromptTemplate
from agenttts.environment.live.scoring import Scorer, ScoringSettings
from agenttts.environment.metrics import accuracy, contains, last_number, numeric_match
from agenttts.errors import InputError


def test_parsers():
    assert parse_answer("Final: Oslo\n", "final:") == "Oslo"
    assert parse_regex("x=1, x=22", r"x=(\d+)") == "22"
    assert parse_regex("nothing", r"x=(\d+)") is None
    assert parse_json_field('Sure! {"a": {"b": [1, 2]}} done', "a.b") == [1, 2]
    assert parse_json_field("{broken", "a") is None
    assert strip_code_fence("Here:\n```python\ndef f():\n    return 1\n```\nok") == (
        "def f():\n    return 1"
    )
    assert strip_code_fence("def f(): pass") == "def f(): pass"


def test_parser_declarations():
    assert Parser.model_validate("answer")("Answer: Rome") == "Rome"
    assert Parser.model_validate({"after": "Final:"})("a\nFinal: b") == "b"
    ids = Parser.model_validate({"ids": "passages", "max": 2})
    assert ids("3, 1, 2", {"passages": ["a", "b"]}) == [1, 2]
    assert Parser.model_validate({"json": "answer"})('{"answer": 4}') == 4
    with pytest.raises(ValueError, match="exactly one"):
        Parser.model_validate({"after": "x", "regex": "y"})
    with pytest.raises(ValueError, match="bad regex"):
        Parser.model_validate({"regex": "("})


def test_template_fields_and_rendering():
    t = PromptTemplate.parse("### system\nBe brief {{not}}.\n### user\n{q} {a.b} {c[0]}")
    assert t.fields() == {"q", "a", "c"}
    assert template_text(["x", "y"]) == "[1] x\n[2] y"
    assert template_text({"k": 1}) == '{"k": 1}'
    assert template_text(None) == ""


def test_builtin_metrics():
    assert contains("It was Paris, France.", ["paris"]) == 1.0
    assert contains("Parisian", "Paris") == 0.0
    assert accuracy(" B ", ["a", "b"]) == 1.0 and accuracy("the b", "b") == 0.0
    assert last_number("about 1,234.5 or 7") == 7.0
    assert numeric_match("so the total is 1,000", "1000") == 1.0
    assert numeric_match("42", 41) == 0.0


def test_scorer_builtins_and_callables(tmp_path):
    (tmp_path / "my_metric_q.py").write_text(
        "def closeness(prediction, item):\n    return {'close': 0.5, 'em': 1.0}\n"
    )
    item = {"question": "q", "answers": ["Paris"]}
    scorer = Scorer(["em", "f1"], ScoringSettings(), tmp_path)
    assert asyncio.run(scorer.score("paris", item)) == {"em": 1.0, "f1": 1.0}
    mixed = Scorer(
        ["close", "f1"], ScoringSettings(metric=["f1", "my_metric_q:closeness"]), tmp_path
    )
    assert asyncio.run(mixed.score("Paris!", item)) == {"close": 0.5, "f1": 1.0}
    gold = Scorer(["accuracy"], ScoringSettings(gold="label"), tmp_path)
    assert asyncio.run(gold.score("B", {"label": "b"})) == {"accuracy": 1.0}
    with pytest.raises(KeyError, match="no gold field"):
        asyncio.run(scorer.score("x", {"question": "q"}))


def test_data_files(tmp_path):
    rows = [{"a": 1}, {"a": 2}]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_items(tmp_path / "d.json") == rows == load_items(tmp_path / "d.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InputError, match="line 2: an item must be a JSON object"):
        load_items(tmp_path / "bad.jsonl")
    with pytest.raises(InputError, match=r"(?i)no such file"):
        load_items(tmp_path / "missing.jsonl")
