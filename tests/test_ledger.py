"""The usage ledger: sums in SQLite shared by workers and processes, its loss window, opening, reading, the CLI."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from loopback import eventually

from server.ledger import (
    GROUP_COLUMNS,
    LedgerError,
    format_table,
    main,
    open_ledger,
    parse_since,
    query,
    usage_db_setting,
)

ROOT = Path(__file__).resolve().parent.parent
MARCH_1 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
MARCH_2 = datetime(2026, 3, 2, 0, 0, 30, tzinfo=timezone.utc).timestamp()
ALL_DAYS = "2000-01-01"
TOTALS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "total_tokens")


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def ledger_log():
    """The ledger logger's records (caught on the logger itself: setup_logging may stop propagation)."""
    logger = logging.getLogger("switchboard.ledger")
    handler, level = ListHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


def warnings_in(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records if record.levelno >= logging.WARNING]


def one(path: Path, **labels: str) -> dict:
    """Everything in the ledger at `path` (optionally for one client) as one total row."""
    rows = query([str(path)], since=ALL_DAYS, group_by=(), **labels)
    return rows[0] if rows else dict.fromkeys(TOTALS, 0)


def record(ledger, n: int = 1, **fields) -> None:
    values = {"client": "alice", "front": "anthropic", "provider": "openai", "model": "gpt-4.1", "route": "sonnet",
              "input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 2, "cache_write_tokens": 1, "at": MARCH_1}
    values.update(fields)
    for _ in range(n):
        ledger.record(**values)


def run_python(code: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, **kwargs)


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


def test_totals_match_the_records_made(tmp_path):
    """Each key's sums in the file are exactly what was recorded, day by UTC day."""
    path = tmp_path / "usage.db"
    ledger = open_ledger(str(path), explicit=True, flush_interval=0.05)
    record(ledger, 3)
    record(ledger, 2, error=True, input_tokens=100, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0)
    record(ledger, 4, client="bob", front="chat", model="gpt-4.1-mini", route="passthrough", at=MARCH_2)
    ledger.close()
    rows = query([str(path)], since=ALL_DAYS, group_by=GROUP_COLUMNS)
    assert rows == [
        {"day": "2026-03-01", "client": "alice", "front": "anthropic", "provider": "openai", "model": "gpt-4.1",
         "route": "sonnet", "requests": 5, "errors": 2, "input_tokens": 230, "output_tokens": 15,
         "cache_read_tokens": 6, "cache_write_tokens": 3, "total_tokens": 254},
        {"day": "2026-03-02", "client": "bob", "front": "chat", "provider": "openai", "model": "gpt-4.1-mini",
         "route": "passthrough", "requests": 4, "errors": 0, "input_tokens": 40, "output_tokens": 20,
         "cache_read_tokens": 8, "cache_write_tokens": 4, "total_tokens": 72},
    ]


def test_missing_values_are_stored_as_a_dash_and_bad_ones_never_raise(tmp_path, ledger_log):
    """None keys become "-", None tokens 0; a record with a garbage count is dropped with one warning."""
    path = tmp_path / "usage.db"
    ledger = open_ledger(str(path), explicit=True)
    record(ledger, client=None, route="", input_tokens=None, output_tokens=None)
    record(ledger, 2, input_tokens="many")
    ledger.close()
    rows = query([str(path)], since=ALL_DAYS, group_by=("client", "route"))
    assert [(row["client"], row["route"], row["requests"], row["input_tokens"]) for row in rows] == [("-", "-", 1, 0)]
    assert len(warnings_in(ledger_log)) == 1


def test_close_writes_what_is_pending(tmp_path):
    """Nothing reaches the file before the first flush; close() writes it all."""
    path = tmp_path / "usage.db"
    ledger = open_ledger(str(path), explicit=True, flush_interval=3600)
    record(ledger, 7)
    assert one(path)["requests"] == 0
    ledger.close()
    ledger.close()  # idempotent
    record(ledger)  # after close: dropped, never raises
    assert one(path)["requests"] == 7


def test_the_background_thread_flushes_every_interval(tmp_path):
    """Without close(), the sums reach the file within a flush interval or so."""
    path = tmp_path / "usage.db"
    ledger = open_ledger(str(path), explicit=True, flush_interval=0.05)
    try:
        record(ledger, 3)
        assert eventually(lambda: one(path)["requests"] == 3, timeout=5)
        record(ledger, 2)
        assert eventually(lambda: one(path)["requests"] == 5, timeout=5)
    finally:
        ledger.close()


def test_two_ledgers_on_one_file_from_threads_sum_correctly(tmp_path):
    """Two workers' ledgers on one file, recorded into from four threads, add up exactly."""
    path = tmp_path / "usage.db"
    ledgers = [open_ledger(str(path), explicit=True, flush_interval=0.01) for _ in range(2)]

    def work(ledger) -> None:
        for n in range(500):
            record(ledger, client=f"client-{n % 3}")

    threads = [threading.Thread(target=work, args=(ledgers[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ledger in ledgers:
        ledger.close()
    total = one(path)
    assert (total["requests"], total["input_tokens"], total["total_tokens"]) == (2000, 20000, 36000)
    by_client = query([str(path)], since=ALL_DAYS, group_by=("client",))
    assert [row["requests"] for row in by_client] == [668, 668, 664]


def test_a_second_process_writing_the_same_file_sums_correctly(tmp_path):
    """Another process's upserts and ours land in one file; neither is lost nor doubled."""
    path = tmp_path / "usage.db"
    ledger = open_ledger(str(path), explicit=True, flush_interval=0.01)
    child = run_python(
        "from server.ledger import open_ledger\n"
        f"ledger = open_ledger({str(path)!r}, explicit=True, flush_interval=0.01)\n"
        "for n in range(300):\n"
        f"    ledger.record(client='child', front='chat', provider='openai', model='m', route='r', input_tokens=n, at={MARCH_1})\n"
        "ledger.close()\n"
    )
    for n in range(300):
        ledger.record(client="parent", front="chat", provider="openai", model="m", route="r", input_tokens=n, at=MARCH_1)
    assert child.wait(timeout=30) == 0
    ledger.close()
    rows = query([str(path)], since=ALL_DAYS, group_by=("client",))
    assert [(row["client"], row["requests"], row["input_tokens"]) for row in rows] == [
        ("child", 300, 44850), ("parent", 300, 44850)]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_loses_at_most_what_came_after_the_last_flush(tmp_path):
    """A process killed outright keeps every batch flushed before it; the file stays readable and writable."""
    path = tmp_path / "usage.db"
    child = run_python(
        "import sys, time\n"
        "from server.ledger import open_ledger\n"
        f"ledger = open_ledger({str(path)!r}, explicit=True, flush_interval=0.1)\n"
        "def batch(n):\n"
        "    for _ in range(n):\n"
        f"        ledger.record(client='c', front='chat', provider='p', model='m', route='r', at={MARCH_1})\n"
        "batch(10)\n"
        "time.sleep(1.0)\n"  # ten flush intervals: the first batch is on disk
        "batch(5)\n"
        "print('recorded', flush=True)\n"
        "time.sleep(60)\n"
    )
    try:
        assert child.stdout.readline().strip() == "recorded"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert one(path)["requests"] in (10, 15)
    again = open_ledger(str(path), explicit=True)
    record(again, client="c", front="chat", provider="p", model="m", route="r")
    again.close()
    assert one(path)["requests"] in (11, 16)


def test_a_failed_flush_keeps_the_sums_and_warns_once(tmp_path, ledger_log):
    """While another connection holds the write lock, flushes fail with one warning; the next one lands it all."""
    path = tmp_path / "usage.db"
    ledger = open_ledger(str(path), explicit=True, flush_interval=3600, busy_timeout=0.05)
    locker = sqlite3.connect(str(path), isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        record(ledger, 3)
        assert ledger.flush() is False
        record(ledger, 2)
        assert ledger.flush() is False
        assert len(warnings_in(ledger_log)) == 1
        assert "locked" in warnings_in(ledger_log)[0]
        assert one(path)["requests"] == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert ledger.flush() is True
    assert one(path)["requests"] == 5
    assert len(warnings_in(ledger_log)) == 1
    assert "again" in ledger_log[-1].getMessage()
    ledger.close()


# ---------------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------------


def test_usage_db_off_means_no_ledger(tmp_path, monkeypatch):
    """USAGE_DB=off (any case) gives no ledger and creates no file; unset means the default path."""
    monkeypatch.chdir(tmp_path)
    assert usage_db_setting({"USAGE_DB": " off "}) == ("off", True)
    assert usage_db_setting({"USAGE_DB": ""}) == (None, False)
    assert open_ledger("off", explicit=True) is None
    assert open_ledger("OFF", explicit=True) is None
    assert list(tmp_path.iterdir()) == []
    ledger = open_ledger(None, explicit=False)
    ledger.close()
    assert (tmp_path / "switchboard-usage.db").is_file()


def test_a_corrupt_file_is_refused_at_open(tmp_path, monkeypatch, ledger_log):
    """Explicit: a LedgerError naming USAGE_DB, the path and the problem. Default: one warning and no ledger."""
    path = tmp_path / "usage.db"
    path.write_bytes(b"these are not the bytes of an SQLite database\n" * 100)
    with pytest.raises(LedgerError) as raised:
        open_ledger(str(path), explicit=True)
    message = str(raised.value)
    assert message.startswith(f"USAGE_DB={path}:")
    assert "not an SQLite database" in message
    monkeypatch.chdir(tmp_path)
    Path("switchboard-usage.db").write_bytes(path.read_bytes())
    assert open_ledger(None, explicit=False) is None
    [warning] = warnings_in(ledger_log)
    assert "USAGE_DB" in warning and "switchboard-usage.db" in warning and "not an SQLite database" in warning


def test_an_unwritable_path_is_refused_at_open(tmp_path, ledger_log):
    """A path that cannot be created (under a regular file, which stops root too): explicit raises, default warns."""
    path = tmp_path / "afile" / "usage.db"
    (tmp_path / "afile").write_text("a file, not a directory\n")
    with pytest.raises(LedgerError, match=r"USAGE_DB=.*afile/usage\.db: the file cannot be opened or created"):
        open_ledger(str(path), explicit=True)
    assert open_ledger(str(path), explicit=False) is None
    assert len(warnings_in(ledger_log)) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_directory_or_file_is_refused_at_open(tmp_path):
    """chmod: a read-only directory, a read-only ledger, a ledger in a read-only directory: all fail at open."""
    directory = tmp_path / "locked"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(LedgerError, match="USAGE_DB="):
            open_ledger(str(directory / "usage.db"), explicit=True)
    finally:
        directory.chmod(0o700)
    path = tmp_path / "usage.db"
    open_ledger(str(path), explicit=True).close()
    path.chmod(0o400)
    try:
        with pytest.raises(LedgerError, match="read-only"):
            open_ledger(str(path), explicit=True)
    finally:
        path.chmod(0o600)
    inside = directory / "usage.db"
    open_ledger(str(inside), explicit=True).close()
    directory.chmod(0o500)  # the file is writable, but its -wal and -shm cannot be created
    try:
        with pytest.raises(LedgerError, match="read-only"):
            open_ledger(str(inside), explicit=True)
    finally:
        directory.chmod(0o700)


def test_a_locked_file_is_refused_at_open(tmp_path):
    """A file another process holds the write lock on past the busy timeout: a LedgerError, not a stall later."""
    path = tmp_path / "usage.db"
    open_ledger(str(path), explicit=True).close()
    locker = sqlite3.connect(str(path), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LedgerError, match=r"locked by another process for longer than 0\.1 s"):
            open_ledger(str(path), explicit=True, busy_timeout=0.1)
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_another_programs_database_or_a_newer_schema_is_refused(tmp_path):
    """An SQLite file with other tables is not taken over; a ledger from a newer schema is not written."""
    other = tmp_path / "app.db"
    with sqlite3.connect(str(other)) as connection:
        connection.execute("CREATE TABLE customers (name TEXT)")
    connection.close()
    with pytest.raises(LedgerError, match="something else"):
        open_ledger(str(other), explicit=True)
    newer = tmp_path / "usage.db"
    open_ledger(str(newer), explicit=True).close()
    connection = sqlite3.connect(str(newer), isolation_level=None)
    connection.execute("UPDATE ledger_schema SET version = 99")
    connection.close()
    with pytest.raises(LedgerError, match="newer switchboard"):
        open_ledger(str(newer), explicit=True)


def test_the_file_is_in_wal_mode_with_the_documented_schema(tmp_path):
    """WAL journal mode, one usage table keyed by the six columns, schema version 1."""
    path = tmp_path / "usage.db"
    open_ledger(str(path), explicit=True).close()
    connection = sqlite3.connect(str(path))
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT version FROM ledger_schema").fetchall() == [(1,)]
        key = [row[1] for row in sorted(connection.execute("PRAGMA table_info(usage)"), key=lambda row: row[5]) if row[5]]
        assert tuple(key) == GROUP_COLUMNS
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def two_files(tmp_path) -> list[str]:
    """Two machines' ledgers: alice on both (same key), bob on the second, a day apart."""
    paths = [tmp_path / "a.db", tmp_path / "b.db"]
    for path, n in zip(paths, (2, 3)):
        ledger = open_ledger(str(path), explicit=True)
        record(ledger, n)
        ledger.close()
    ledger = open_ledger(str(paths[1]), explicit=True)
    record(ledger, 4, client="bob", model="gpt-4.1-mini", at=MARCH_2, cache_read_tokens=1000)
    ledger.close()
    return [str(path) for path in paths]


def test_query_over_two_files_adds_them_up(two_files):
    """The same key in two files is one row with the sums of both; rows come in group-column order."""
    rows = query(two_files, since="2026-03-01")
    assert [(row["day"], row["client"], row["model"], row["requests"], row["total_tokens"]) for row in rows] == [
        ("2026-03-01", "alice", "gpt-4.1", 5, 90), ("2026-03-02", "bob", "gpt-4.1-mini", 4, 4064)]
    assert set(rows[0]) == {"day", "client", "model", *TOTALS}
    assert query(two_files, since="2026-03-02", group_by=("client",))[0]["client"] == "bob"
    assert query(two_files, since="2026-02-01", until="2026-03-01", group_by=("client",))[0]["client"] == "alice"
    assert query(two_files, since="2027-01-01", group_by=()) == []


def test_query_filters_by_client(two_files):
    """--client keeps one client's rows only."""
    rows = query(two_files, since=ALL_DAYS, group_by=("model",), client="bob")
    assert [(row["model"], row["requests"]) for row in rows] == [("gpt-4.1-mini", 4)]
    assert query(two_files, since=ALL_DAYS, client="carol") == []


def test_query_checks_group_columns_days_and_files(two_files, tmp_path):
    """A bad group column names the allowed ones; a bad day and a missing or foreign file are errors."""
    with pytest.raises(ValueError, match=r"'user'.*day, client, front, provider, model, route"):
        query(two_files, since=ALL_DAYS, group_by=("day", "user"))
    with pytest.raises(ValueError, match="since='March'"):
        query(two_files, since="March")
    with pytest.raises(ValueError, match="until="):
        query(two_files, since=ALL_DAYS, until="2026-02-30")
    with pytest.raises(LedgerError, match="no such ledger file"):
        query([*two_files, str(tmp_path / "missing.db")], since=ALL_DAYS)
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(LedgerError, match="not a usage ledger"):
        query([str(tmp_path / "empty.db")], since=ALL_DAYS)
    assert [row["client"] for row in query(two_files, since=ALL_DAYS, group_by=("client", "client"))] == ["alice", "bob"]


@pytest.mark.parametrize(("text", "expected"), [
    ("1d", "2026-03-10"),
    ("7d", "2026-03-04"),
    ("30D", "2026-02-09"),
    ("today", "2026-03-10"),
    ("yesterday", "2026-03-09"),
    (" 2026-12-01 ", "2026-12-01"),
])
def test_parse_since_understands_days(text, expected):
    """Nd counts today as the first day; today, yesterday and ISO days are understood."""
    assert parse_since(text, date(2026, 3, 10)) == expected


@pytest.mark.parametrize("text", ["0d", "24h", "-1d", "2026-13-01", "last week", "", "99999999999d"])
def test_parse_since_rejects_anything_else_saying_what_works(text):
    """A bad value is a ValueError listing the forms that work."""
    with pytest.raises(ValueError, match="is not a day: use Nd"):
        parse_since(text, date(2026, 3, 10))


def test_format_table_aligns_columns_and_adds_a_total_line(two_files):
    """Text columns left, numbers right with thousands separators, a total line at the bottom."""
    rows = query(two_files, since=ALL_DAYS, group_by=("client", "model"))
    assert format_table(rows, ("client", "model")) == (
        "client  model         requests  errors  input  output  cache read  cache write  total\n"
        "alice   gpt-4.1              5       0     50      25          10            5     90\n"
        "bob     gpt-4.1-mini         4       0     40      20       4,000            4  4,064\n"
        "total                        9       0     90      45       4,010            9  4,154\n"
    )
    totals = query(two_files, since=ALL_DAYS, group_by=())
    assert format_table(totals, ()) == (
        "       requests  errors  input  output  cache read  cache write  total\n"
        "total         9       0     90      45       4,010            9  4,154\n"
    )


# ---------------------------------------------------------------------------------------------------
# The `usage` command
# ---------------------------------------------------------------------------------------------------


def test_cli_prints_json_rows_and_a_table(two_files, capsys):
    """--json prints the query's rows; without it, a caption and the table."""
    today = date(2026, 3, 2)
    assert main(["--json", "--since", "2d", "--group-by", "client", *two_files], environ={}, today=today) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["client"], row["requests"], row["total_tokens"]) for row in rows] == [("alice", 5, 90), ("bob", 4, 4064)]
    assert main(["--since", "today", "--client", "bob", *two_files], environ={}, today=today) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage from 2026-03-02 to today (UTC days)\n")
    assert "bob" in out and "alice" not in out and out.splitlines()[-1].startswith("total")
    assert main(["--since", "yesterday", "--until", "yesterday", "--client", "bob", *two_files], environ={}, today=today) == 0
    assert capsys.readouterr().out == "no usage recorded from 2026-03-01 to 2026-03-01 (UTC days)\n"


def test_cli_reads_usage_db_or_the_default_file(two_files, tmp_path, monkeypatch, capsys):
    """Without FILE arguments: the USAGE_DB file, else switchboard-usage.db in the working directory."""
    monkeypatch.chdir(tmp_path)
    assert main(["--json", "--since", ALL_DAYS, "--group-by", ""], environ={"USAGE_DB": two_files[1]}) == 0
    assert json.loads(capsys.readouterr().out)[0]["requests"] == 7
    Path("switchboard-usage.db").write_bytes(Path(two_files[0]).read_bytes())
    assert main(["--json", "--since", ALL_DAYS, "--group-by", ""], environ={}) == 0
    assert json.loads(capsys.readouterr().out)[0]["requests"] == 2


def test_cli_errors_are_one_line_and_exit_2(two_files, tmp_path, monkeypatch, capsys):
    """A missing file, USAGE_DB=off, a bad day or group column: one line on stderr naming the problem, exit 2."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    cases = [
        ([str(tmp_path / "missing.db")], {}, "missing.db: no such ledger file"),
        ([], {"USAGE_DB": str(tmp_path / "nope.db")}, "USAGE_DB="),
        ([], {"USAGE_DB": "off"}, "USAGE_DB=off"),
        (["--since", "24h", *two_files], {}, "whole UTC days"),
        (["--group-by", "client,colour", *two_files], {}, "use any of day, client"),
    ]
    for argv, environ, expected in cases:
        assert main(argv, environ=environ) == 2
        err = capsys.readouterr().err
        assert err.startswith("switchboard usage: ") and expected in err and err.count("\n") == 1, err
