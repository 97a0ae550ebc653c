"""Inputs that used to end in a traceback: each is exit 2 with one clear message, nothing spent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agenttts.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SIM = str(ROOT / "tasks" / "simulated" / "sim-2wiki.yaml")


def fails(capsys, *argv: str) -> str:
    """Exit 2 and the one line `error: ...` (no traceback)."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_a_folder_or_a_non_utf8_file_as_task_file(tmp_path, capsys):
    assert "is a folder, not a task file" in fails(capsys, "task", "validate", str(tmp_path))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    db = str(tmp_path / "db.sqlite")
    assert "not UTF-8 text" in fails(capsys, "search", str(latin), "--db", db)


def test_non_finite_numbers_in_a_task_file(tmp_path, capsys):
    text = Path(SIM).read_text()
    inf = tmp_path / "inf.yaml"
    inf.write_text(text.replace("budget: 1000", "budget: .inf"))
    assert "budget: must be a finite number (got inf)" in fails(
        capsys, "task", "validate", str(inf)
    )
    nan = tmp_path / "nan.yaml"
    nan.write_text(text.replace("noise_sd: 0.003", "noise_sd: .nan"))
    assert "environment.settings.noise_sd: must be a finite number" in fails(
        capsys, "task", "validate", str(nan)
    )


def test_a_missing_config_file(tmp_path, capsys):
    err = fails(capsys, "evaluate", SIM, "--config", f"@{tmp_path / 'missing.json'}")
    assert "--config @" in err and "No such file" in err


def test_a_db_that_cannot_be_written_or_is_a_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = fails(capsys, "search", SIM, "--proposer", "insight", "--db", str(blocker / "db.sqlite"))
    assert "cannot create its folder" in err
    assert "is a folder" in fails(
        capsys, "search", SIM, "--proposer", "insight", "--db", str(tmp_path)
    )


def test_a_corrupt_database_is_refused_on_open(tmp_path, capsys):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    assert "file is not a database" in fails(capsys, "runs", "--db", str(garbage))
    # Partly corrupt: reads work until a damaged page is hit; quick_check finds it on open.
    part = tmp_path / "part.sqlite"
    con = sqlite3.connect(part)
    con.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
    con.executemany("INSERT INTO t (b) VALUES (?)", [("x" * 200,)] * 2000)
    con.commit()
    con.close()
    with part.open("r+b") as f:
        f.seek(4096 * 20 + 10)
        f.write(b"\xff" * 64)
    err = fails(capsys, "search", SIM, "--proposer", "insight", "--db", str(part))
    assert "is damaged or no SQLite database (SQLite's quick_check:" in err


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"propsal.txt": "x"}, "not a prompt agenttts reads (did you mean proposal.txt?)"),
        ({"proposal.txt": "{task} {archive} {budgett}"}, "unknown placeholder {budgett}"),
        ({"guidelines.txt": "{task} {archive} {"}, "without its partner at line 1:18"),
        ({"proposal.txt": "{task} only"}, "lacks {archive}"),
        ({"insights/2.txt": "more {samples}"}, "placeholders are not filled"),
    ],
)
def test_prompt_overrides_are_checked_before_anything_runs(tmp_path, capsys, files, expected):
    prompts = tmp_path / "prompts"
    for name, text in files.items():
        (prompts / name).parent.mkdir(parents=True, exist_ok=True)
        (prompts / name).write_text(text)
    db = tmp_path / "db.sqlite"
    err = fails(
        capsys, "search", SIM, "--proposer", "insight", "--db", str(db), "--prompts", str(prompts)
    )
    assert expected in err and "prompts_dir" in err
    assert not db.exists() or checkpoints(db) == 0  # nothing ran


def checkpoints(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except sqlite3.OperationalError:  # no table yet
        return 0
    finally:
        con.close()
