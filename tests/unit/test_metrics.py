"""Answer metrics (SQuAD normalisation) and retrieval precision/recall/F1."""

from __future__ import annotations

import pytest

from agenttts.environment.metrics import exact_match, normalize_answer, retrieval_scores, token_f1


def test_normalisation_drops_case_punctuation_articles():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer(None) == ""


def test_em_and_f1_against_several_golds():
    assert exact_match("the beatles", ["Beatles", "The Fab Four"]) == 1.0
    assert exact_match("beatle", ["Beatles"]) == 0.0
    assert token_f1("John Lennon", ["Lennon"]) == pytest.approx(2 / 3)
    assert token_f1(None, ["x"]) == 0.0


def test_retrieval_scores_exact_values():
    s = retrieval_scores([1, 2, 3, 3], {2, 3, 7, 9})
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_retrieval_scores_edges():
    assert retrieval_scores([], {1}) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert retrieval_scores([5], {1}) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert retrieval_scores([1], {1})["f1"] == 1.0
    assert retrieval_scores([], set())["recall"] == 1.0
    assert retrieval_scores([1], set())["recall"] == 0.0
