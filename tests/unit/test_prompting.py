"""Prompt files: shipped set, user overrides by name, edits apply at the next call, ablations."""

from __future__ import annotations

from typing import Any

import pytest

from agenttts.errors import InputError
from agenttts.prompting import (
    ROLES,
    check_prompts_dir,
    fill,
    read_prompt,
    role_prompt,
    shipped_dir,
)

FIELDS: dict[str, Any] = {
    "task": "TASK-TEXT",
    "archive": "ARCHIVE-TEXT",
    "preferences": "P",
    "batch_size": 7,
}


def test_every_role_and_insight_is_shipped_and_nonempty():
    for role in ROLES:
        assert read_prompt(role)
    for i in (1, 2, 3):
        assert read_prompt(f"insights/{i}").startswith(f"Insight {i}")
    assert (shipped_dir() / "insights" / "2.txt").is_file()


def test_roles_carry_their_insights_and_the_fields():
    guide = role_prompt("guidelines", previous="PREV", **FIELDS)
    assert "Insight 2" in guide and "Insight 3" in guide and "Insight 1" not in guide
    assert "TASK-TEXT" in guide and "ARCHIVE-TEXT" in guide and "PREV" in guide
    prefs = role_prompt("preferences", **FIELDS)
    assert "Insight 1" in prefs and "Insight 2" not in prefs
    proposal = role_prompt("proposal", guidelines="G", **FIELDS)
    assert all(f"Insight {i}" in proposal for i in (1, 2, 3))
    assert "Propose 7 new configurations" in proposal
    # The JSON example's braces survive substitution.
    assert '{"configs": [{"<stage>": {"model": "<model>"' in proposal


@pytest.mark.parametrize("off", [1, 2, 3])
def test_ablation_drops_exactly_that_block(off):
    text = role_prompt("proposal", no_insights={off}, guidelines="G", **FIELDS)
    for i in (1, 2, 3):
        assert (f"Insight {i}" in text) == (i != off)
    assert "{insights}" not in text


def test_user_directory_overrides_by_name_and_edits_apply_next_call(tmp_path):
    (tmp_path / "insights").mkdir()
    block = tmp_path / "insights" / "2.txt"
    block.write_text("MY SAMPLING RULE v1")
    (tmp_path / "guidelines.txt").write_text("custom {task} | {insights} | {unknown}")
    first = role_prompt("guidelines", prompts_dir=tmp_path, **FIELDS)
    assert first.startswith("custom TASK-TEXT | MY SAMPLING RULE v1")
    assert "Insight 3" in first  # not overridden: the shipped block
    assert "{unknown}" in first  # an unknown placeholder is left as written
    block.write_text("MY SAMPLING RULE v2")
    assert "MY SAMPLING RULE v2" in role_prompt("guidelines", prompts_dir=tmp_path, **FIELDS)
    # Roles the user did not copy still come from the shipped set.
    assert role_prompt("system", prompts_dir=tmp_path) == read_prompt("system")


def test_bad_prompts_dir_and_unknown_files_are_reported(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        role_prompt("system", prompts_dir=tmp_path / "missing")
    assert check_prompts_dir(tmp_path / "missing")
    (tmp_path / "guidlines.txt").write_text("typo")
    problems = check_prompts_dir(tmp_path)
    assert len(problems) == 1 and "guidlines.txt" in problems[0]
    with pytest.raises(InputError, match="unknown prompt role"):
        role_prompt("planner")


def test_fill_substitutes_only_given_names():
    assert fill('{a} {b} {"k": 1}', {"a": "{b}"}) == '{b} {b} {"k": 1}'
