"""Aggregators: the vote rules the live executor relies on, including their tie rules."""

from __future__ import annotations

import random
from collections import Counter

from agenttts.environment.live.aggregators import first, vote, vote_ids
from agenttts.environment.metrics import normalize_answer


def test_vote_counts_normalised_forms_and_returns_first_spelling():
    assert vote(["The Beatles", "beatles!", "Rolling Stones"]) == "The Beatles"


def test_vote_tie_goes_to_the_answer_seen_first():
    assert vote(["Paris", "London", "london", "paris"]) == "Paris"
    assert vote(["London", "Paris", "paris", "london"]) == "London"


def test_vote_ignores_empty_answers_unless_nothing_else():
    assert vote([None, "", None, "Oslo"]) == "Oslo"
    assert vote([None, None]) is None
    assert vote([]) is None


def test_vote_matches_a_counter_reference_on_random_data():
    rng = random.Random(7)
    words = ["a cat", "Cat", "dog", "the Dog", "emu", "Emu."]
    for _ in range(300):
        answers = [rng.choice(words) for _ in range(rng.randint(1, 9))]
        normals = [normalize_answer(a) for a in answers]
        counts = Counter(normals)
        top = max(counts.values())
        expected_norm = next(n for n in normals if counts[n] == top)
        assert normalize_answer(vote(answers)) == expected_norm


def test_vote_ids_keeps_the_most_common_count():
    # sizes 2, 2, 3 -> keep 2; votes: 4 x3, 7 x2, 1 x1, 9 x1
    assert vote_ids([[4, 7], [7, 4], [4, 1, 9]]) == [4, 7]


def test_vote_ids_ties_by_first_appearance_and_dedups_within_a_sample():
    assert vote_ids([[5, 5, 2], [2, 5], [8, 3]]) == [5, 2]
    assert vote_ids([[3], [1], [2]]) == [3]


def test_vote_ids_size_tie_goes_to_the_size_seen_first():
    # sizes 1, 3 once each -> keep 1 (seen first)
    assert vote_ids([[6], [1, 2, 6]]) == [6]


def test_vote_ids_skips_empty_selections():
    assert vote_ids([[], [], [3, 4]]) == [3, 4]
    assert vote_ids([[], []]) == []


def test_first():
    assert first(["x", "y"]) == "x"
    assert first([]) is None


# --- reading samples before they are aggregated (environment/live/parsers.py, prompts.py) -------
from agenttts.environment.live.parsers import parse_answer, parse_ids  # noqa: E402
from agenttts.environment.live.prompts import PromptTemplate  # noqa: E402


def test_parse_ids_keeps_shown_numbers_in_order_without_repeats():
    assert parse_ids("Passages 3, 1 and [3]; also 9 and 0.", shown=8, limit=5) == [3, 1]
    assert parse_ids("1 2 3 4 5 6", shown=8, limit=4) == [1, 2, 3, 4]
    assert parse_ids("none of them", shown=8, limit=4) == []


def test_parse_answer_after_the_last_marker_else_first_line():
    assert parse_answer("Let me think.\nAnswer: **Paris**.\n") == "Paris"
    assert parse_answer("answer: x\nANSWER: Oslo") == "Oslo"
    assert parse_answer("\n  Berlin.\nbecause ...") == "Berlin"
    assert parse_answer("Answer:   ") is None


def test_prompt_template_sections_and_fields(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("### system\nBe brief.\n### user\nQ: {question}\n{passages}\nJSON: {{x}}\n")
    t = PromptTemplate.load(p)
    assert t.fields() == {"question", "passages"}
    msgs = t.messages(question="Who?", passages="[1] a {b}")
    assert msgs == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: Who?\n[1] a {b}\nJSON: {x}"},
    ]
