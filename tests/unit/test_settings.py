"""Each run setting is declared once, in `Context`; the command-line flags, `SEARCH_DEFINING`, the
agent endpoint, the checks and the environment fallbacks are derived from that declaration."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import pytest

from agenttts.cli import bench, demo
from agenttts.cli.main import build_parser, main
from agenttts.cli.settings import flag, setting_overrides
from agenttts.errors import InputError
from agenttts.graph.context import SEARCH_DEFINING, Context, default_of, description_of
from agenttts.llm import AgentEndpoint
from agenttts.proposers import PROPOSERS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task

ALL = tuple(Context.model_fields)


def command(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize(
    ("name", "declared", "defaults"),
    [
        ("search", ALL, {}),
        ("bench", bench.SETTINGS, bench.DEFAULTS),
        ("demo", ALL, demo.DEMO_SETTINGS),
    ],
)
def test_each_command_has_one_derived_flag_per_setting_it_declares(name, declared, defaults):
    actions = {a.dest: a for a in command(name)._actions}
    assert set(actions) & set(ALL) == set(declared)
    for setting in declared:
        action = actions[setting]
        assert flag(setting) == action.option_strings[0]
        assert action.help is not None and action.help.startswith(description_of(setting))
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
    several = parser.parse_args(
        ["t", "--budgets", "1000,250", "--budgets", "500", "--no-insight", "1,3"]
    )
    assert setting_overrides(several) == {"budgets": [250.0, 500.0, 1000.0], "no_insights": [1, 3]}
    assert command("bench").parse_args(["--agent-api-key-env", "K"]).agent_api_key_env == "K"


def test_search_defining_settings_and_the_agent_endpoint_are_derived():
    assert SEARCH_DEFINING == (
        "proposer",
        "budgets",
        "agent_model",
        "agent_temperature",
        "batch_size",
        "no_insights",
        "seed",
        "hybrid_agent",
        "racing",
        "free_evaluations",
    )
    agent_settings = {name.removeprefix("agent_") for name in Context.model_fields} & set(
        AgentEndpoint.model_fields
    )
    assert set(AgentEndpoint.model_fields) - agent_settings == {"max_parse_retries"}
    ep = Context(agent_model="m", agent_timeout_s=5).agent_endpoint(max_parse_retries=0)
    assert (ep.model, ep.timeout_s, ep.max_parse_retries) == ("m", 5, 0)
    assert ep.temperature == default_of("agent_temperature")


def test_the_proposer_list_in_the_description_comes_from_the_registry(monkeypatch):
    monkeypatch.setitem(PROPOSERS, "brand-new", "somewhere:BrandNew")
    assert all(name in description_of("proposer") for name in PROPOSERS)
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


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--target", "nan"], "target must be a finite number (got nan)"),
        (["--target", "inf"], "target must be a finite number (got inf)"),
        (["--agent-timeout-s", "nan"], "agent_timeout_s must be a finite number (got nan)"),
        (["--agent-params", "inf"], "agent_params must be a finite number (got inf)"),
        (["--agent-temperature", "-1"], "agent_temperature must be at least 0"),
        (["--agent-temperature", "2.5"], "agent_temperature must be at most 2"),
        (["--seed", str(2**70)], "seed must be at most 9223372036854775807"),
        (["--max-trials", str(2**64)], "max_trials must be at most 9223372036854775807"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_number_flag_out_of_its_range_is_one_error_line_before_anything_runs(
    tmp_path, capsys, given, said
):
    """Every number setting is finite, of its type and in its range (an integer within the 64
    bits a checkpoint stores): one `error:` line and exit 2, and no thread saved."""
    task = str(write_grid_task(tmp_path / "task"))
    db = tmp_path / "runs.sqlite"
    assert main(["search", task, "--db", str(db), "--proposer", "random", *given]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {said}"]
    if db.exists():
        con = sqlite3.connect(db)
        assert con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0


def test_a_bool_or_text_where_a_number_is_meant_is_refused_by_type():
    """What a Studio or HTTP run can send that a flag cannot: JSON true for a number, a string."""
    problems = Context.from_dict(
        {"batch_size": True, "agent_temperature": False, "target": "0.5", "racing": True}
    ).problems()
    assert problems == [
        "agent_temperature must be of type float (got False)",
        "batch_size must be of type int (got True)",
        "target must be of type float | None (got '0.5')",
        "racing must be of type float | None (got True)",
    ]


def test_the_agent_settings_are_the_endpoint_fields_as_the_client_declares_them():
    for name, declared in AgentEndpoint.model_fields.items():
        if name == "max_parse_retries":
            continue
        assert default_of(f"agent_{name}") == declared.default
        assert description_of(f"agent_{name}") == declared.description
