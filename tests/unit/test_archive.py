"""The archive's queries, each checked on one small table of trials."""

from __future__ import annotations

import pytest

from agenttts.archive import Archive, Phase, Status, Trial
from agenttts.environment.space import Config


def trial(i: int, it: int, status: Status, score: float | None, cost: float, phase: Phase) -> Trial:
    return Trial(
        trial_id=i,
        iteration=it,
        proposer="p",
        phase=phase,
        status=status,
        score=score,
        config=Config.of({"a": ("m", i + 1)}),
        nominal_cost=cost,
    )


#: id, iteration, status, score, nominal cost, phase
TABLE = [
    trial(0, 0, "ok", 0.5, 10.0, "init"),
    trial(1, 0, "failed", None, 20.0, "init"),
    trial(2, 1, "rejected", None, 0.0, "search"),
    trial(3, 1, "ok", 0.7, 30.0, "search"),
    trial(4, 2, "ok", 0.7, 25.0, "search"),  # ties trial 3, cheaper: the best
    trial(5, 2, "ok", 0.7, 25.0, "search"),  # ties trial 4 at the same cost, later
    trial(6, 2, "rejected", None, 0.0, "search"),
]
ARCHIVE = Archive(TABLE)


def ids(archive: Archive) -> list[int]:
    return [t.trial_id for t in archive]


def test_reads_the_states_json_dicts_and_behaves_as_a_sequence():
    archive = Archive.from_state({"archive": [t.dump() for t in TABLE]})
    assert archive == ARCHIVE and list(archive) == TABLE
    assert len(archive) == 7 and archive[3] == TABLE[3] and ids(archive[-2:]) == [5, 6]
    assert Archive.from_state({}) == Archive() and not Archive()


def test_selections():
    assert ids(ARCHIVE.executed()) == [0, 1, 3, 4, 5]
    assert ids(ARCHIVE.scored()) == [0, 3, 4, 5]
    assert ids(ARCHIVE.failed()) == [1]
    assert ids(ARCHIVE.rejected()) == [2, 6]
    assert ids(ARCHIVE.in_phase("init")) == [0, 1]
    assert ids(ARCHIVE.in_phase("search")) == [2, 3, 4, 5, 6]
    assert ids(ARCHIVE.in_iteration(2)) == [4, 5, 6]
    assert ids(ARCHIVE.scored().in_phase("search").in_iteration(1)) == [3]


def test_scores_keys_and_next_id():
    assert ARCHIVE.scores() == [0.5, 0.7, 0.7, 0.7]
    assert ARCHIVE.executed().keys() == {TABLE[i].config.key() for i in (0, 1, 3, 4, 5)}
    assert ARCHIVE.next_id == 7 and Archive().next_id == 0


def test_best_breaks_ties_by_cost_then_by_trial_id():
    assert ARCHIVE.best() == TABLE[4]
    assert [t.trial_id for t in ARCHIVE.ranked()] == [4, 5, 3, 0]
    assert Archive(TABLE[1:3]).best() is None


def test_best_so_far_has_one_point_per_executed_trial():
    assert ARCHIVE.best_so_far() == [0.5, 0.5, 0.7, 0.7, 0.7]
    assert Archive(TABLE[1:3]).best_so_far() == [None]


def test_a_test_split_trial_is_not_an_archive_trial():
    test = trial(7, 2, "ok", 0.6, 25.0, "test")
    with pytest.raises(ValueError, match="test_result"):
        Archive([*TABLE, test])


def queries(archive: Archive) -> dict[str, object]:
    """Every query's answer, to compare an archive grown step by step with one read whole."""
    return {
        "trials": list(archive),
        "executed": list(archive.executed()),
        "scored": list(archive.scored()),
        "failed": list(archive.failed()),
        "rejected": list(archive.rejected()),
        "init": list(archive.in_phase("init")),
        "search scored": list(archive.scored().in_phase("search")),
        "iteration 2": list(archive.in_iteration(2)),
        "keys": archive.keys(),
        "executed keys": archive.executed().keys(),
        "best": archive.best(),
        "ranked": archive.ranked(),
        "tops": archive.top_by_iteration(),
        "best so far": archive.best_so_far(),
        "lines": [archive.scores_along(c, "a") for c in CENTERS],
        "groups": [archive.scored_with_models({"a": m}) for m in ("m", "n")],
    }


#: Lines through these configurations, for the insight proposer's queries.
CENTERS = [Config.of({"a": (m, s)}) for m in ("m", "n") for s in (1, 3)]


def test_lines_and_model_groups_answer_as_a_scan_of_the_scored_trials():
    two = [
        trial(i, 1, "ok", i / 10, 1.0, "search").model_copy(
            update={"config": Config.of({"a": ("m", 1 + i % 3), "b": ("x", 1 + i // 3)})}
        )
        for i in range(9)
    ]
    archive = Archive([*two, trial(9, 1, "failed", None, 1.0, "search")])
    center = Config.of({"a": ("m", 2), "b": ("x", 2)})  # b x2: trials 3, 4, 5
    assert archive.scores_along(center, "a") == {1: 0.3, 2: 0.4, 3: 0.5}
    assert archive.scores_along(center, "b") == {1: 0.1, 2: 0.4, 3: 0.7}  # a m x2: 1, 4, 7
    assert archive.scores_along(Config.of({"a": ("n", 1), "b": ("x", 1)}), "a") == {}
    assert archive.scored_with_models({"a": "m", "b": "x"}) == two
    assert archive.scored_with_models({"a": "m"}) == []


def test_a_grown_state_list_validates_only_its_new_trials_and_answers_as_if_read_whole(
    monkeypatch,
):
    """A node's state list is the previous one plus the step's new dicts: only those are parsed,
    and every query (memoised on the shorter archive) answers as on the whole archive."""
    import random

    import agenttts.archive as module

    rng = random.Random(3)
    statuses: list[Status] = ["ok", "ok", "ok", "failed", "rejected"]
    dicts = []
    for i in range(60):
        status = rng.choice(statuses)
        score = round(rng.random(), 2) if status == "ok" else None
        t = trial(i, i // 7, status, score, float(rng.randint(1, 9)), "init" if i < 5 else "search")
        config = Config.of({"a": (rng.choice("mn"), rng.randint(1, 4))})
        dicts.append({**t.dump(), "config": config.model_dump()})
    cuts = (5, 12, 13, 30, 31, 60)
    expected = {cut: queries(Archive(dicts[:cut])) for cut in cuts}
    parsed: list[int] = []
    checked = module._checked

    def counted(items):
        parsed.append(len(items := list(items)))
        return checked(items)

    monkeypatch.setattr(module, "_checked", counted)
    state: list[dict] = []
    for cut in cuts:
        state = [*state, *dicts[len(state) : cut]]  # what the delta channel's reducer does
        grown = Archive.from_state({"archive": state})
        assert queries(grown) == expected[cut]  # queries memoised on the shorter one, carried
    assert parsed == [5, 7, 1, 17, 1, 29]  # each step parsed only what it appended
    assert Archive.from_state({"archive": list(state)}) is grown  # the same items: no parse


def test_a_list_edited_in_place_of_a_trial_is_read_again():
    """A Studio `Overwrite` brings new dicts: nothing parsed earlier is reused for them."""
    dicts = [t.dump() for t in TABLE]
    assert Archive.from_state({"archive": dicts}).best() == TABLE[4]
    edited = [*dicts[:3], {**dicts[3], "score": 0.9}, *dicts[4:]]
    assert Archive.from_state({"archive": edited}).best().trial_id == 3  # type: ignore[union-attr]
    assert Archive.from_state({"archive": dicts[:2]}) == Archive(TABLE[:2])
