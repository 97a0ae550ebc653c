"""Inputs that used to end in a traceback: each is exit 2 with one clear message, nothing spent."""

from __future__ import annotations

import contextlib
import os
import resource
import sqlite3
import subprocess
import sys
import threading
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
    assert f"--config @{tmp_path / 'missing.json'}: no such file" in err


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
        (
            {"proposal.txt": "{task} {archive} {guidelines:>10}"},
            "{guidelines:>10}: only a plain {guidelines} is filled; this would be sent as written",
        ),
        (
            {"proposal.txt": "{task} {archive} {guidelines.__class__}"},
            "{guidelines.__class__}: only a plain {guidelines} is filled",
        ),
        ({"insights/1.txt": "see {archive[0]}"}, "{archive[0]}: only a plain {archive} is filled"),
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


def test_a_folder_by_a_prompts_name_is_refused(tmp_path, capsys):
    """It was skipped, and the shipped prompt used in its place without a word."""
    prompts = tmp_path / "prompts"
    (prompts / "proposal.txt").mkdir(parents=True)
    db = tmp_path / "db.sqlite"
    err = fails(
        capsys, "search", SIM, "--proposer", "insight", "--db", str(db), "--prompts", str(prompts)
    )
    assert f"{prompts / 'proposal.txt'}: is a folder, not a prompt file" in err
    assert not db.exists() or checkpoints(db) == 0


def checkpoints(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except sqlite3.OperationalError:  # no table yet
        return 0
    finally:
        con.close()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("budget: 1000", "budget: 1e400", "budget: must be a finite number (got inf)"),
        ("budget: 1000", "budget: 1.0e400", "budget: must be a finite number (got inf)"),
        ("budget: 1000", 'budget: "inf"', "budget: Input should be a valid number (got 'inf')"),
        ("budget: 1000", "budget: Infinity", "budget: Input should be a valid number"),
        ("budget: 1000", "budget: true", "budget: Input should be a valid number (got true)"),
        ("params: 7.0e9", 'params: "inf"', "models[qwen2.5-7b].params: Input should be a valid"),
        ("prompt_tokens: 256", "prompt_tokens: 256.5", "prompt_tokens: Input should be a valid"),
        ("seed: 11", "seed: 18446744073709551616", "data.seed: Input should be less than"),
        ("noise_sd: 0.003", "noise_sd: -1e999", "noise_sd: must be a finite number (got -inf)"),
    ],
)
def test_every_number_in_a_task_file_is_finite_and_of_its_type(
    tmp_path, capsys, old, new, expected
):
    """YAML 1.1 reads `1e400` and `1.0e400` as strings, which pydantic turned into infinity;
    "inf" did the same, `true` became 1: each ran as a budget of inf (or 1)."""
    text = Path(SIM).read_text()
    assert old in text
    task = tmp_path / "task.yaml"
    task.write_text(text.replace(old, new, 1))
    err = fails(capsys, "task", "validate", str(task))
    assert expected in err and err.count("\n  - ") == 1, err  # one message, on its field


def test_every_number_in_a_deployment_file_is_finite_and_of_its_type(tmp_path, capsys):
    (tmp_path / "deploy.yaml").write_text(
        "models:\n  m: {base_url: http://127.0.0.1:9/v1, params: .inf, max_concurrency: true}\n"
        "  n: {base_url: http://127.0.0.1:9/v1, params: 1e400}\n"
        "  o: {base_url: http://127.0.0.1:9/v1, params: '1e9', port: 80.5}\n"
    )
    text = Path(SIM).read_text().replace("budget: 1000", "budget: 1000\ndeployment: deploy.yaml")
    (tmp_path / "task.yaml").write_text(text)
    err = fails(capsys, "task", "validate", str(tmp_path / "task.yaml"))
    assert "models.m.params: Input should be a finite number" in err
    assert "models.m.max_concurrency: Input should be a valid integer (got true)" in err
    assert "models.n.params: Input should be a finite number" in err
    assert "models.o.params: Input should be a valid number (got '1e9')" in err
    assert "models.o.port: Input should be a valid integer (got 80.5)" in err


def test_numbers_written_the_yaml_1_2_way_are_numbers(tmp_path, capsys):
    """`70e9` (no dot) and `7.0e9` (no exponent sign) are strings to YAML 1.1: read as numbers."""
    text = Path(SIM).read_text().replace("budget: 1000", "budget: 1e3")
    (tmp_path / "task.yaml").write_text(text.replace("params: 7.0e9", "params: 7e9"))
    assert main(["task", "validate", str(tmp_path / "task.yaml")]) == 0
    assert "budget 1000;" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('{"qa": {"model": "llama-3.2-3b", "samples": true}}', "qa.samples: Input should be a "
         "valid integer (got true)"),
        ('{"qa": {"model": "llama-3.2-3b", "samples": 1e400}}', "qa.samples: Input should be a "
         "valid integer (got inf)"),
        ('{"qa": {"model": "llama-3.2-3b", "samples": NaN}}', "NaN is not a number JSON allows"),
        ('{"qa": {"model": "llama-3.2-3b", "samples": 2.5}}', "qa.samples: Input should be a "
         "valid integer (got 2.5)"),
    ],
)  # fmt: skip
def test_config_numbers_are_checked(capsys, config, expected):
    """`"samples": true` ran as 1 sample; 1e400 ended in a traceback."""
    assert expected in fails(capsys, "budget", SIM, "--config", config)


def test_a_wrong_type_in_config_is_one_line_per_field(capsys):
    config = '{"retrieval": {"model": 3, "samples": "many"}, "qa": {"model": "x", "sample": 1}}'
    err = fails(capsys, "budget", SIM, "--config", config)
    assert err.splitlines() == [
        "error: --config: 4 problem(s)",
        "  - retrieval.model: Input should be a valid string (got 3)",
        "  - retrieval.samples: Input should be a valid integer (got 'many')",
        "  - qa.samples: Field required",
        "  - qa.sample: Extra inputs are not permitted",
    ]


def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path, capsys):
    task = tmp_path / "task.yaml"
    task.write_text("name: x\nbudget: 10\nstages:\n  - name: qa\n    models: [a, b\n")
    err = fails(capsys, "task", "validate", str(task))
    assert err == (
        f"error: {task}:6:1: not valid YAML: while parsing a flow sequence: "
        "expected ',' or ']', but got '<stream end>'\n"
    )


def test_a_task_path_that_is_no_regular_file_is_refused_at_once(tmp_path, capsys):
    """A FIFO blocked `task validate` until something wrote to it; /dev/zero was read until the
    memory ran out (here under a 2 GB limit, in a subprocess); a large file was read whole."""
    fifo = tmp_path / "task.yaml"
    os.mkfifo(fifo)
    # were the read to block, open the FIFO's other end after a while, so the test fails, not hangs
    unblock = threading.Timer(10, lambda: _feed(fifo))
    unblock.start()
    try:
        err = fails(capsys, "task", "validate", str(fifo))
    finally:
        unblock.cancel()
    assert f"{fifo}: is a FIFO (named pipe), not a task file" in err
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n" + "# padding\n" * 120_000)  # 1.2 MB
    assert f"{big}: is larger than 1024 KB: not a task file" in fails(
        capsys, "task", "validate", str(big)
    )
    out = subprocess.run(
        [sys.executable, "-m", "agenttts.cli.main", "task", "validate", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)),
        check=False,
    )
    assert out.returncode == 2 and out.stderr == (
        "error: /dev/zero: is a character device, not a task file\n"
    ), out.stderr[-500:]


def _feed(fifo: Path) -> None:
    with contextlib.suppress(OSError):  # no reader: nothing to unblock
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_errors_quote_a_task_file_only_in_short_escaped_excerpts(tmp_path, capsys):
    """A task path may be a link to another file (a system file, a secret): its lines are not
    echoed (PyYAML's message quoted the whole line), and control characters are escaped."""
    secret = tmp_path / "elsewhere.conf"
    secret.write_text("user: alice\npassword: hunter2-a-very-long-secret: !x\n")
    link = tmp_path / "task.yaml"
    link.symlink_to(secret)
    err = fails(capsys, "task", "validate", str(link))
    assert err.startswith(f"error: {link}:2:") and err.count("\n") == 1
    assert "hunter2" not in err
    odd = tmp_path / "odd.yaml"
    odd.write_text(
        Path(SIM).read_text() + '"\\e[2J\\e[31mpwned-and-a-long-key-that-goes-on-and-on": 1\n'
    )
    err = fails(capsys, "task", "validate", str(odd))
    assert "\x1b" not in err and "'\\x1b[2J\\x1b[31mpwned-and-a-long-key-that-go...': Extra" in err


def _schema(db: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return con.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()


def test_another_applications_database_is_refused_before_anything_is_written(tmp_path, capsys):
    """It used to gain `checkpoints`, `writes` and `agenttts_writers` without a word; one whose
    tables clashed crashed with `no such column: thread_id`."""
    other = tmp_path / "app.sqlite"
    with contextlib.closing(sqlite3.connect(other)) as con:
        con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        con.commit()
    before, schema = other.read_bytes(), _schema(other)
    for argv in (("search", SIM, "--proposer", "insight"), ("runs",), ("show", "x")):
        err = fails(capsys, *argv, "--db", str(other))
        assert "holds tables agenttts did not create (orders, users)" in err
    assert _schema(other) == schema and other.read_bytes() == before
    clash = tmp_path / "clash.sqlite"
    with contextlib.closing(sqlite3.connect(clash)) as con:
        con.execute("CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, data BLOB)")
        con.commit()
    err = fails(capsys, "search", SIM, "--proposer", "insight", "--db", str(clash))
    assert "tables named like LangGraph's checkpoint tables but not theirs (checkpoints" in err


def test_another_applications_postgresql_database_is_refused(postgres_db, capsys):
    import psycopg

    url = postgres_db()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id serial PRIMARY KEY)")
    err = fails(capsys, "search", SIM, "--proposer", "insight", "--db", url)
    assert "holds tables agenttts did not create (invoices)" in err
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == [("invoices",)]  # no checkpoint table was made


def test_a_device_as_db_is_one_clear_error(capsys):
    """`--db /dev/full` ended in `sqlite3.OperationalError: database or disk is full`."""
    for argv in (("search", SIM, "--proposer", "insight"), ("runs",)):
        err = fails(capsys, *argv, "--db", "/dev/full")
        assert err == "error: --db /dev/full is a character device, not a database file\n"


READ_ONLY_SCRIPT = """
set -e
mount -t tmpfs -o size=16m tmpfs "$1"
"$2" -c 'import sys; from agenttts.graph.storage import open_checkpointer
with open_checkpointer(sys.argv[1]): pass' "$1/db.sqlite"
mount -o remount,ro "$1"
set +e
"$2" -m agenttts.cli.main runs --db "$1/db.sqlite"; echo "rc=$?"
"$2" -m agenttts.cli.main search "$3" --proposer insight --db "$1/db.sqlite"; echo "rc=$?"
"""


def test_a_healthy_database_on_a_read_only_file_system_is_not_called_damaged(tmp_path):
    """A read-only mount, for real: root passes permission checks, so a chmod proves nothing.
    `unshare -rm` gives this test its own user and mount namespace (no host mount is touched,
    no privilege needed where user namespaces are allowed), a tmpfs there holds a healthy
    checkpoint database, and the tmpfs is remounted read-only. SQLite cannot open a WAL database
    there even to read it (it writes its -shm beside it): `runs` called it damaged."""
    folder = tmp_path / "ro"
    folder.mkdir()
    out = subprocess.run(
        ["unshare", "-rm", "sh", "-c", READ_ONLY_SCRIPT, "sh", str(folder), sys.executable, SIM],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0 or "rc=" not in out.stdout:
        pytest.skip(f"no read-only mount here (unshare -rm, mount): {out.stderr.strip()[-300:]}")
    db = folder / "db.sqlite"
    assert out.stdout.splitlines() == ["rc=2", "rc=2"], out.stdout
    runs, search = out.stderr.strip().splitlines()
    assert "damaged" not in out.stderr and "Traceback" not in out.stderr
    assert runs.startswith(f"error: --db {db} cannot be read there (SQLite: unable to open")
    assert search.startswith(f"error: --db {db}: {db} is not writable")
    for line in (runs, search):
        assert line.endswith(f"{folder} is on a read-only file system (SQLite writes beside a "
                             "database even to read it); copy it to a writable folder")  # fmt: skip


def test_a_report_dir_that_cannot_be_written_is_refused_before_anything_runs(tmp_path, capsys):
    """It was found only after the whole search, in three tracebacks (exit 1)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    db = tmp_path / "db.sqlite"
    search = ("search", SIM, "--proposer", "insight", "--db", str(db))
    err = fails(capsys, *search, "--report-dir", str(blocker / "reports"))
    assert f"report_dir {blocker / 'reports'} cannot be made: {blocker} is a file" in err
    assert not db.exists() or checkpoints(db) == 0  # nothing ran
