"""Each run setting is declared once, in `Context`; the command-line flags, `SEARCH_DEFINING`, the
agent endpoint, the checks and the environment fallbacks are derived from that declaration."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from agenttts.cli import bench, demo
from agenttts.cli.main import build_parser
from agenttts.cli.settings import flag, setting_overrides
from agenttts.errors import InputError
from agenttts.graph.context import SEARCH_DEFINING, Context, default_of
from agenttts.llm import AgentEndpoint
from agenttts.proposers import PROPOSERS

ALL = tuple(f.name for f in fields(Context))


def command(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize(
    ("name", "declared", "defaults"),
    [
        ("search", ALL, {}),
        ("bench", bench.SETTINGS, bench.DEFAULTS),
        ("demo", demo.FLAGS, demo.DEMO_SETTINGS),
    ],
)
def test_each_command_has_one_derived_flag_per_setting_it_declares(name, declared, defaults):
    actions = {a.dest: a for a in command(name)._actions}
    assert set(actions) & set(ALL) == set(declared)
    for setting in declared:
        action = actions[setting]
        assert flag(setting) == action.option_strings[0]
        meta = next(f.metadata for f in fields(Context) if f.name == setting)
        assert action.help is not None and action.help.startswith(meta["description"])
        shown = defaults.get(setting, default_of(setting))
        assert f"default {'none' if shown in (None, []) else shown}" in action.help
        assert action.default == defaults.get(setting)


def test_old_spellings_and_command_line_conventions_reach_the_same_settings():
    parser = command("search")
    old = parser.parse_args(
        ["t", "--agent-key-env", "K", "--temperature", "0.5", "--agent-timeout", "9",
         "--prompts", "~/p", "--no-insight", "3", "--no-insight", "2", "--no-insight", "3",
         "--patience", "0"]
    )  # fmt: skip
    new = parser.parse_args(
        ["t", "--agent-api-key-env", "K", "--agent-temperature", "0.5", "--agent-timeout-s", "9",
         "--prompts-dir", "~/p", "--no-insights", "3", "--no-insights", "2", "--patience", "0"]
    )  # fmt: skip
    expected = {
        "agent_api_key_env": "K",
        "agent_temperature": 0.5,
        "agent_timeout_s": 9.0,
        "prompts_dir": str(Path("~/p").expanduser()),
        "no_insights": [2, 3],
        "patience": None,  # 0 switches it off
    }
    assert setting_overrides(old) == setting_overrides(new) == expected
    assert setting_overrides(parser.parse_args(["t"])) == {}  # a resume keeps what it recorded
    assert command("bench").parse_args(["--agent-api-key-env", "K"]).agent_api_key_env == "K"


def test_search_defining_settings_and_the_agent_endpoint_are_derived():
    assert SEARCH_DEFINING == (
        "proposer",
        "agent_model",
        "agent_temperature",
        "batch_size",
        "no_insights",
        "seed",
        "hybrid_agent",
        "racing",
    )
    agent_settings = {f.name.removeprefix("agent_") for f in fields(Context)} & set(
        AgentEndpoint.model_fields
    )
    assert set(AgentEndpoint.model_fields) - agent_settings == {"max_parse_retries"}
    ep = Context(agent_model="m", agent_timeout_s=5).agent_endpoint(max_parse_retries=0)
    assert (ep.model, ep.timeout_s, ep.max_parse_retries) == ("m", 5, 0)
    assert ep.temperature == default_of("agent_temperature")


def test_the_proposer_list_in_the_description_comes_from_the_registry(monkeypatch):
    monkeypatch.setitem(PROPOSERS, "brand-new", "somewhere:BrandNew")
    meta = next(f.metadata for f in fields(Context) if f.name == "proposer")
    assert all(name in meta["description"] for name in PROPOSERS)
    assert "brand-new" in str(command("search")._option_string_actions["--proposer"].help)


def test_environment_fills_settings_left_at_their_default_never_a_recorded_one(monkeypatch):
    monkeypatch.setenv("AGENTTTS_BATCH_SIZE", "7")
    monkeypatch.setenv("AGENTTTS_NO_INSIGHTS", "3,1")
    monkeypatch.setenv("AGENTTTS_PATIENCE", "")
    ctx = Context()
    assert (ctx.batch_size, ctx.no_insights, ctx.patience) == (7, [3, 1], None)
    assert Context(batch_size=3).batch_size == 3
    record = {"batch_size": 10, "no_insights": [], "patience": 4}  # a resumed thread's, say
    held = Context.from_dict(record)
    assert (held.batch_size, held.no_insights, held.patience) == (10, [], 4)
    monkeypatch.setenv("AGENTTTS_SEED", "x")
    with pytest.raises(InputError, match="AGENTTTS_SEED='x' is not a valid seed"):
        Context()
