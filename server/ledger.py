"""The usage ledger: requests, errors and tokens per UTC day, client, front, provider, model and route, in SQLite.

Every finished request adds one to `requests` (and to `errors` when it failed) and its token counts to
the row keyed by (day, client, front, provider, model, route); `python proxy.py usage` reads the sums.

Policies:
- Storage is one SQLite file (USAGE_DB, default `switchboard-usage.db` in the working directory;
  USAGE_DB=off turns the ledger off) with one table whose key columns are its primary key. A flush
  is an UPSERT that adds (`requests = requests + excluded.requests`), so several worker processes,
  each with its own connection, share one file: nothing is lost or counted twice. WAL journal mode
  lets readers in while one process writes; BUSY_TIMEOUT is how long a writer waits for another.
- The request path never touches the disk: `Ledger.record` adds to in-memory sums under a lock (a few
  dict operations) and never raises. A background thread (sqlite3 blocks, so not asyncio; it
  releases the GIL while it waits) writes the sums every `flush_interval` seconds in one transaction.
- Loss window: a clean shutdown (`Ledger.close`) loses nothing. A `kill -9` loses what was recorded
  since the last successful flush: at most one flush interval (FLUSH_INTERVAL, 1 s) while the disk
  accepts writes. WAL with synchronous=NORMAL may also lose the last transactions on power loss,
  never the file.
- A failed flush (disk full, the file locked longer than BUSY_TIMEOUT) keeps the sums in memory for
  the next try and logs one warning, not one per attempt; one more line when writes work again.
- The file is checked at open by writing to it in a transaction, so a corrupt, locked, read-only or
  foreign database fails at start, not mid-request: `LedgerError` naming USAGE_DB and the path when
  USAGE_DB was set (main() exits 2), a warning and no ledger when the default path is unusable.
- Reading opens each file read-only and sums across files (a fleet: ledgers copied from several
  machines; copy a live file with `sqlite3 FILE ".backup COPY"`, as its newest sums may still be in
  its -wal file).
- A missing key value (an anonymous client, a request that never got a route) is stored as "-", as
  in the access line.
- The token columns are disjoint: `input_tokens` is the prompt not read from or written to the
  cache, so a row's total is the sum of the four.
- Budgets read `tokens_today(client)`: what every process wrote to the file today (read by the
  flusher after each flush) plus this process's pending sums. Another worker's requests count
  once it flushed, so a budget may overshoot by about one flush interval of traffic.

Known shortcuts: rows are never pruned; the key values are whatever the caller passes (pass names
the gateway resolved, not raw client text, or the table grows with every typo); a ledger opened
before fork() must not be used in the child (open one per worker); records after close() are
dropped.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from server.config import SECONDS, load_environment
from upstreams import settings
from upstreams.settings import ConfigError

__all__ = [
    "DEFAULT_PATH",
    "GROUP_COLUMNS",
    "Ledger",
    "LedgerError",
    "format_table",
    "main",
    "open_ledger",
    "parse_since",
    "query",
    "usage_db_setting",
]

log = logging.getLogger("switchboard.ledger")

DEFAULT_PATH = "switchboard-usage.db"
OFF = "off"
FLUSH_INTERVAL = 1 * SECONDS
BUSY_TIMEOUT = 5 * SECONDS  # how long a flush (or the check at open) waits for another writer
SCHEMA_VERSION = 1
SECONDS_PER_DAY = 86400

GROUP_COLUMNS = ("day", "client", "front", "provider", "model", "route")
COUNT_COLUMNS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
DEFAULT_GROUP_BY = ("day", "client", "model")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

Key = tuple[str, str, str, str, str, str]  # GROUP_COLUMNS, in order


def _utc_day(moment: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(moment))


class LedgerError(Exception):
    """The ledger file cannot be used; the message names the file and says why. main() exits 2 with it."""


# ---------------------------------------------------------------------------------------------------
# The file: schema, the check at open, the UPSERT
# ---------------------------------------------------------------------------------------------------

CREATE_USAGE = """
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL,  -- UTC, YYYY-MM-DD
    client TEXT NOT NULL,
    front TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, client, front, provider, model, route)
) WITHOUT ROWID
"""
CREATE_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS ledger_schema (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
)
"""
TODAY_BY_CLIENT = """
SELECT client, SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens)
FROM usage WHERE day = ? GROUP BY client
"""
UPSERT = """
INSERT INTO usage (day, client, front, provider, model, route,
                   requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (day, client, front, provider, model, route) DO UPDATE SET
    requests = requests + excluded.requests,
    errors = errors + excluded.errors,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens
"""


def _plainly(error: Exception, busy_timeout: float = BUSY_TIMEOUT) -> str:
    """SQLite's terse error text as a sentence saying what is wrong with the file."""
    text = str(error)
    if "file is not a database" in text:
        return "the file is not an SQLite database (corrupt, or another kind of file); move it aside"
    if "locked" in text or "busy" in text:
        return f"the file is locked by another process for longer than {busy_timeout:g} s"
    if "readonly" in text or "read-only" in text:
        return "the file or its directory is read-only (SQLite writes -wal and -shm files beside it)"
    if "unable to open" in text:
        return "the file cannot be opened or created (does its directory exist, and is it writable?)"
    if "disk is full" in text or "disk I/O" in text:
        return f"the disk refused the write ({text})"
    if "no such table" in text:
        return "the file is not a usage ledger (it has no usage table)"
    return text


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock, waiting up to the busy timeout) ... COMMIT, or ROLLBACK on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        raise


def _open_for_writing(path: str, busy_timeout: float, label: str) -> sqlite3.Connection:
    """A connection to the ledger at `path`, its schema in place and the file proven writable.

    Raises LedgerError starting with `label` when the file cannot be used.
    """
    try:
        # check_same_thread=False: opened here, written by the flusher thread and by close().
        connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, OSError) as error:
        raise LedgerError(f"{label}: {_plainly(error, busy_timeout)}") from None
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning("%s: journal mode is %s, not WAL (the filesystem may not support it); readers wait for writers",
                        label, mode)
        connection.execute("PRAGMA synchronous = NORMAL")
        with _transaction(connection):
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "ledger_schema" not in tables:
                raise LedgerError(f"{label}: the file is an SQLite database of something else "
                                  f"(tables: {', '.join(sorted(tables))}); name another file")
            connection.execute(CREATE_USAGE)
            connection.execute(CREATE_SCHEMA_VERSION)
            row = connection.execute("SELECT version FROM ledger_schema WHERE id = 1").fetchone()
            if row is None:
                connection.execute("INSERT INTO ledger_schema (id, version) VALUES (1, ?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise LedgerError(f"{label}: the file was written by a newer switchboard "
                                  f"(schema version {row[0]}; this one knows {SCHEMA_VERSION})")
            else:
                # A real write even when the schema is there: a read-only file fails now, not mid-request.
                connection.execute("UPDATE ledger_schema SET version = version WHERE id = 1")
    except LedgerError:
        connection.close()
        raise
    except (sqlite3.Error, OSError) as error:
        connection.close()
        raise LedgerError(f"{label}: {_plainly(error, busy_timeout)}") from None
    return connection


# ---------------------------------------------------------------------------------------------------
# Writing: in-memory sums, flushed by a background thread
# ---------------------------------------------------------------------------------------------------


class Ledger:
    """Usage sums kept in memory and added to one SQLite file every `flush_interval` seconds.

    Build it with `open_ledger`. `record` is for the request path; `close` at shutdown writes what is
    pending and stops the thread. Raises LedgerError (from the constructor) when the file cannot be used.
    """

    def __init__(self, path: str, *, flush_interval: float = FLUSH_INTERVAL, busy_timeout: float = BUSY_TIMEOUT,
                 label: str | None = None) -> None:
        if not flush_interval > 0:
            raise ValueError(f"flush_interval={flush_interval!r} must be a positive number of seconds")
        # Process lifetime: the file, its one connection (one flush at a time), the flusher thread.
        self.path = path
        self.flush_interval = flush_interval
        self.label = label or f"USAGE_DB={path}"
        self.busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = _open_for_writing(path, busy_timeout, self.label)
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._failing = False  # the last flush failed: warned once, say so when writes work again
        self._bad_record_warned = False
        # Shared with the request path: the pending sums (swapped out whole by each flush), the day cache.
        self._lock = threading.Lock()
        self._pending: dict[Key, list[int]] = {}
        self._closed = False
        self._day: tuple[int, str] = (-1, "")  # (days since the epoch, "YYYY-MM-DD")
        # Today's tokens per client in the file, read after each flush (budgets): ("YYYY-MM-DD", {client: tokens}).
        self._written_today: tuple[str, dict[str, int]] = ("", {})
        self._read_today()
        self._thread = threading.Thread(target=self._run, name="switchboard-ledger", daemon=True)
        self._thread.start()
        # A safety net for an exit without close(); a worker leaving by os._exit() must call close() itself.
        atexit.register(self.close)

    def record(self, *, client: str | None, front: str | None, provider: str | None, model: str | None,
               route: str | None, error: bool = False, input_tokens: int | None = 0, output_tokens: int | None = 0,
               cache_read_tokens: int | None = 0, cache_write_tokens: int | None = 0, at: float | None = None) -> None:
        """Add one finished request to the pending sums (`at`: its time in epoch seconds, default now).

        Never touches the disk and never raises: a bad argument drops the record with one warning.
        A token count of None (the upstream reported none) counts as 0.
        """
        try:
            day_index = int((time.time() if at is None else at) // SECONDS_PER_DAY)
            cached = self._day
            if cached[0] != day_index:
                cached = self._day = (day_index, time.strftime("%Y-%m-%d", time.gmtime(day_index * SECONDS_PER_DAY)))
            key = (cached[1], client or "-", front or "-", provider or "-", model or "-", route or "-")
            counts = (1 if error else 0, int(input_tokens or 0), int(output_tokens or 0),
                      int(cache_read_tokens or 0), int(cache_write_tokens or 0))
            with self._lock:
                if self._closed:
                    return
                sums = self._pending.get(key)
                if sums is None:
                    self._pending[key] = [1, *counts]
                else:
                    sums[0] += 1
                    for position, count in enumerate(counts, 1):
                        sums[position] += count
        except (TypeError, ValueError, OverflowError) as failure:  # accounting must never fail a request
            if not self._bad_record_warned:
                self._bad_record_warned = True
                log.warning("usage ledger: a record was dropped (%s: %s); later ones are dropped silently",
                            type(failure).__name__, failure)

    def flush(self) -> bool:
        """Write the pending sums in one transaction; True when nothing is left pending.

        Never raises: on failure the sums stay pending for the next flush (one warning per failing spell).
        """
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return True
            try:
                if self._connection is None:
                    raise LedgerError("the ledger is closed")
                rows = [(*key, *sums) for key, sums in batch.items()]
                with _transaction(self._connection):
                    self._connection.executemany(UPSERT, rows)
            except Exception as error:  # noqa: BLE001 - disk full, locked, anything: the sums wait for the next try
                self._keep(batch)
                if not self._failing:
                    self._failing = True
                    log.warning("usage ledger: cannot write to %s: %s; keeping the sums in memory, retrying every %g s",
                                self.path, _plainly(error, self.busy_timeout), self.flush_interval)
                return False
            if self._failing:
                self._failing = False
                log.info("usage ledger: writing to %s again; nothing was lost", self.path)
            return True

    def _keep(self, batch: dict[Key, list[int]]) -> None:
        """Put a batch that could not be written back into the pending sums (which may have grown since)."""
        with self._lock:
            for key, sums in batch.items():
                current = self._pending.get(key)
                if current is None:
                    self._pending[key] = sums
                else:
                    for position, count in enumerate(sums):
                        current[position] += count

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()
            self._read_today()

    def _read_today(self) -> None:
        """Refresh today's tokens per client as written to the file by every process."""
        day = _utc_day(time.time())
        try:
            with self._write_lock:
                if self._connection is None:
                    return
                rows = self._connection.execute(TODAY_BY_CLIENT, (day,)).fetchall()
        except sqlite3.Error:
            return  # the next flush says what is wrong
        self._written_today = (day, {client: int(total or 0) for client, total in rows})

    def tokens_today(self, client: str, now: float | None = None) -> int:
        """Tokens `client` used today (UTC): written by every process, plus this one's pending sums."""
        day = _utc_day(time.time() if now is None else now)
        written_day, written = self._written_today
        total = written.get(client, 0) if written_day == day else 0
        with self._lock:
            for key, sums in self._pending.items():
                if key[0] == day and key[1] == client:
                    total += sum(sums[2:])
        return total

    def close(self) -> None:
        """Stop the thread, write what is pending, close the file. Idempotent; never raises.

        Sums that still cannot be written are reported in one warning and lost.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        if not self.flush():
            with self._lock:
                lost = sum(sums[0] for sums in self._pending.values())
            log.warning("usage ledger: the usage of %d requests could not be written to %s and is lost", lost, self.path)
        with self._write_lock:
            if self._connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.close()
                self._connection = None


def usage_db_setting(env: Mapping[str, str]) -> tuple[str | None, bool]:
    """USAGE_DB from the settings mapping: (its value or None when unset, whether it was set)."""
    value = settings.text(env, "USAGE_DB")
    return value, value is not None


def open_ledger(path: str | None, *, explicit: bool, flush_interval: float = FLUSH_INTERVAL,
                busy_timeout: float = BUSY_TIMEOUT) -> Ledger | None:
    """The ledger at `path` (None: DEFAULT_PATH), or None when USAGE_DB is "off".

    `explicit`: the user set USAGE_DB. Then an unusable file raises LedgerError naming USAGE_DB, the
    path and the problem (the caller exits 2). An unusable default file logs one warning and returns
    None: the gateway starts without a ledger.
    """
    if path is not None and path.strip().lower() == OFF:
        return None
    path = (path or "").strip() or DEFAULT_PATH
    label = f"USAGE_DB={path}" if explicit else f"USAGE_DB (default {os.path.abspath(path)})"
    try:
        return Ledger(path, flush_interval=flush_interval, busy_timeout=busy_timeout, label=label)
    except LedgerError as error:
        if explicit:
            raise
        log.warning("%s; starting without a usage ledger (set USAGE_DB to a writable file, or USAGE_DB=off)", error)
        return None


# ---------------------------------------------------------------------------------------------------
# Reading: sums over one or several files
# ---------------------------------------------------------------------------------------------------


def _day_setting(value: str, name: str) -> str:
    if DAY.fullmatch(value):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value).isoformat()
    raise ValueError(f"{name}={value!r} is not a day (YYYY-MM-DD)")


def _group_setting(group_by: Sequence[str]) -> tuple[str, ...]:
    """The group columns, checked against GROUP_COLUMNS (they are put into SQL), repeats dropped."""
    unknown = [name for name in group_by if name not in GROUP_COLUMNS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(map(repr, unknown))}: use any of {', '.join(GROUP_COLUMNS)}")
    return tuple(dict.fromkeys(group_by))


def _read(path: str, sql: str, parameters: Sequence[str]) -> list[tuple]:
    """The rows `sql` selects from the ledger at `path`, opened read-only. Raises LedgerError naming the file."""
    if not os.path.isfile(path):
        raise LedgerError(f"{path}: no such ledger file")
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT)
    except sqlite3.Error as error:
        raise LedgerError(f"{path}: {_plainly(error)}") from None
    try:
        return connection.execute(sql, parameters).fetchall()
    except sqlite3.Error as error:
        raise LedgerError(f"{path}: {_plainly(error)}") from None
    finally:
        connection.close()


def query(paths: Sequence[str], *, since: str, until: str | None = None,
          group_by: Sequence[str] = DEFAULT_GROUP_BY, client: str | None = None) -> list[dict]:
    """Sums from the ledger files `paths` (added together), for UTC days `since` to `until` (inclusive).

    Returns one dict per group, ordered by the group columns: the group columns, COUNT_COLUMNS and
    `total_tokens` (input + output + cache read + cache write). An empty `group_by` gives one total row
    (none when nothing matched). Raises ValueError for a bad day or group column, LedgerError for a file
    that is missing or not a ledger.
    """
    group = _group_setting(group_by)
    conditions, parameters = ["day >= ?"], [_day_setting(since, "since")]
    if until is not None:
        conditions.append("day <= ?")
        parameters.append(_day_setting(until, "until"))
    if client is not None:
        conditions.append("client = ?")
        parameters.append(client)
    columns = ", ".join(group)
    selected = ", ".join([*group, *(f"SUM({name})" for name in COUNT_COLUMNS)])
    # Only names from GROUP_COLUMNS and COUNT_COLUMNS reach the text; values are parameters.
    sql = f"SELECT {selected} FROM usage WHERE {' AND '.join(conditions)}"
    if group:
        sql += f" GROUP BY {columns}"
    totals: dict[tuple, list[int]] = {}
    for path in paths:
        for row in _read(path, sql, parameters):
            values, counts = row[: len(group)], row[len(group) :]
            if counts[0] is None:  # no GROUP BY and nothing matched: one row of NULL sums
                continue
            sums = totals.setdefault(values, [0] * len(COUNT_COLUMNS))
            for position, count in enumerate(counts):
                sums[position] += count
    rows = []
    for values in sorted(totals):
        row: dict = dict(zip(group, values))
        row.update(zip(COUNT_COLUMNS, totals[values]))
        row["total_tokens"] = sum(totals[values][2:])
        rows.append(row)
    return rows


def parse_since(text: str, today: date) -> str:
    """A day as "YYYY-MM-DD" from `Nd` (N days back counting today: 1d is today), today, yesterday or
    YYYY-MM-DD. Raises ValueError saying what is accepted."""
    word = text.strip().lower()
    if word == "today":
        return today.isoformat()
    if word == "yesterday":
        return (today - timedelta(days=1)).isoformat()
    match = re.fullmatch(r"(\d+)d", word)
    if match and int(match[1]) >= 1:
        with contextlib.suppress(OverflowError):
            return (today - timedelta(days=int(match[1]) - 1)).isoformat()
    if DAY.fullmatch(word):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(word).isoformat()
    hint = " (the ledger counts whole UTC days, not hours)" if re.fullmatch(r"\d+h", word) else ""
    raise ValueError(f"{text!r} is not a day: use Nd (1d is today, 7d the last seven days), today, yesterday "
                     f"or YYYY-MM-DD{hint}")


# ---------------------------------------------------------------------------------------------------
# The terminal table and the `usage` command
# ---------------------------------------------------------------------------------------------------

# Count columns as the table titles them.
TABLE_NUMBERS = (
    ("requests", "requests"),
    ("errors", "errors"),
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_read_tokens", "cache read"),
    ("cache_write_tokens", "cache write"),
    ("total_tokens", "total"),
)


def format_table(rows: Sequence[Mapping], group_by: Sequence[str]) -> str:
    """`rows` (from `query`) as aligned text: the group columns, then the counts with thousands
    separators, then a total line. Without group columns the total line is the table."""
    texts = list(group_by) or [""]
    header = [*texts, *(title for _, title in TABLE_NUMBERS)]
    lines = [] if not group_by else [
        [str(row[name]) for name in group_by] + [f"{row[name]:,}" for name, _ in TABLE_NUMBERS] for row in rows
    ]
    total = ["total", *[""] * (len(texts) - 1)]
    total += [f"{sum(row[name] for row in rows):,}" for name, _ in TABLE_NUMBERS]
    table = [header, *lines, total]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]

    def aligned(line: list[str]) -> str:
        cells = [cell.ljust(width) if column < len(texts) else cell.rjust(width)
                 for column, (cell, width) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    return "\n".join(aligned(line) for line in table) + "\n"


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None, today: date | None = None) -> int:
    """`python proxy.py usage`: print the ledger's sums as a table (or JSON rows); returns the exit status.

    `environ` (default os.environ) gives USAGE_DB; `today` (default the UTC date) anchors --since.
    Bad options, a missing or unreadable file: one line on stderr and 2.
    """
    parser = argparse.ArgumentParser(prog="switchboard usage",
                                     description="Requests and tokens from the usage ledger, by UTC day.")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help=f"ledger files to read and add up (default: USAGE_DB, else {DEFAULT_PATH})")
    parser.add_argument("--since", default="7d", metavar="DAY",
                        help="first day: Nd (1d is today), today, yesterday or YYYY-MM-DD (default 7d)")
    parser.add_argument("--until", metavar="DAY", help="last day, inclusive, in the same forms (default today)")
    parser.add_argument("--group-by", default=",".join(DEFAULT_GROUP_BY), metavar="COLUMNS",
                        help=f"comma-separated, any of {','.join(GROUP_COLUMNS)} (default {','.join(DEFAULT_GROUP_BY)})")
    parser.add_argument("--client", metavar="NAME", help="only this client's requests")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--env-file", metavar="PATH", help="read USAGE_DB from PATH instead of ./.env")
    args = parser.parse_args(argv)
    today = today or datetime.now(timezone.utc).date()
    try:
        since = parse_since(args.since, today)
        until = parse_since(args.until, today) if args.until else None
        group_by = tuple(name.strip() for name in args.group_by.split(",") if name.strip())
        files = args.files
        if not files:
            path, explicit = usage_db_setting(load_environment(args.env_file, os.environ if environ is None else environ))
            if path is not None and path.lower() == OFF:
                raise LedgerError("USAGE_DB=off: the usage ledger is off; name ledger files to read")
            path = path or DEFAULT_PATH
            if not os.path.isfile(path):
                where = f"USAGE_DB={path}" if explicit else f"{os.path.abspath(path)} (the default USAGE_DB)"
                raise LedgerError(f"{where}: no such ledger file (nothing recorded yet?); name ledger files to read")
            files = [path]
        rows = query(files, since=since, until=until, group_by=group_by, client=args.client)
    except (ValueError, LedgerError, ConfigError) as error:
        print(f"switchboard usage: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no usage recorded from {since} to {until or 'today'} (UTC days)")
    else:
        print(f"usage from {since} to {until or 'today'} (UTC days)")
        print(format_table(rows, group_by), end="")
    return 0
