"""Logging: text or JSON lines to stderr and an optional dated LOG_FILE, with secrets redacted.

Policies:
- One logger per module under "switchboard"; the access line is "switchboard.access" and carries
  its fields as keys in JSON mode.
- Every record passes a redacting filter: no configured secret (inbound or upstream key, outbound
  proxy credentials) leaves in a log line.
- The same filter escapes control characters in every str argument of a record (a newline as `\\n`,
  others as `\\xNN`), so what a client sent (a model name, a path, an error text) cannot forge or
  split a log line. Message templates are ours and kept; text we compose with line breaks of its own
  (the banner) is passed as `Verbatim`. JSON lines are JSON-encoded on top.
- LOG_FILE may hold strftime placeholders: the file is reopened at midnight and LOG_FILE_BACKUP_COUNT
  old files are kept. With LOG_FILE_PATTERN, LOG_FILE keeps its name and each day's file is renamed
  by the pattern at midnight (seed 000's way).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sys
import time

from server.config import Config
from translate.sse import dumps


class DailyFileHandler(logging.FileHandler):
    """A file log rotated at local midnight, keeping `backup_count` old files. Three ways to name them:

    - `pattern` with strftime placeholders: each day writes its own file (`proxy-%Y%m%d.log`);
    - `pattern` without, and no `rotated`: yesterday's file is renamed `name.YYYY-MM-DD`;
    - `rotated` (LOG_FILE_PATTERN, as seed 000 has it): today's file keeps the stable name and is
      renamed at midnight to `rotated` (a strftime pattern, beside the file unless it names a folder).

    A file left from a day the process did not see end (it was stopped over midnight) is rotated
    on the first line written, under the day it was last written.
    """

    def __init__(self, pattern: str, backup_count: int, rotated: str | None = None) -> None:
        self.pattern = pattern
        self.backup_count = backup_count
        self.dated = "%" in pattern and rotated is None
        self.rotated = rotated
        super().__init__(self._current_name(), encoding="utf-8", delay=False)
        try:
            last_written = os.path.getmtime(self.baseFilename)
        except OSError:
            last_written = time.time()
        self.next_rollover = self._midnight_after(last_written)

    def _current_name(self) -> str:
        return time.strftime(self.pattern) if "%" in self.pattern else self.pattern

    @staticmethod
    def _midnight_after(moment: float) -> float:
        day = time.localtime(moment)
        return time.mktime((day.tm_year, day.tm_mon, day.tm_mday + 1, 0, 0, 0, 0, 0, -1))

    def emit(self, record: logging.LogRecord) -> None:
        if record.created >= self.next_rollover:
            self._rollover()
        super().emit(record)

    def _rollover(self) -> None:
        ended_day = time.localtime(self.next_rollover - 3600)  # the day whose lines the file holds
        self.next_rollover = self._midnight_after(time.time())
        if self.stream:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
        if self.dated:
            self.baseFilename = os.path.abspath(self._current_name())
            keep_out = self.baseFilename
            old = sorted(p for p in glob.glob(_strftime_glob(self.pattern)) if os.path.abspath(p) != keep_out)
        else:
            current = self.baseFilename
            if self.rotated is not None:
                target = self.rotated if os.path.dirname(self.rotated) else os.path.join(os.path.dirname(current), self.rotated)
                old_glob = _strftime_glob(target)
                target = time.strftime(target, ended_day)
            else:
                target = f"{current}.{time.strftime('%Y-%m-%d', ended_day)}"
                old_glob = glob.escape(current) + ".*"
            with contextlib.suppress(OSError):
                os.replace(current, target)
            old = sorted(p for p in glob.glob(old_glob) if os.path.abspath(p) != current)
        for path in old[: max(0, len(old) - self.backup_count)]:
            with contextlib.suppress(OSError):
                os.remove(path)
        self.stream = self._open()


def _strftime_glob(pattern: str) -> str:
    """Turn a strftime pattern into a glob matching the files it produces (each %X becomes *)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "%" and i + 1 < len(pattern):
            out.append("%" if pattern[i + 1] == "%" else "*")
            i += 2
        else:
            out.append(glob.escape(pattern[i]))
            i += 1
    return "".join(out)


class Redactor:
    """Replaces every secret (inbound and upstream keys, proxy credentials, minted tokens) with ***.

    `changing` are callables giving secrets that change while the server runs (the Google access
    token a provider mints): they are asked again on each use, and the lists rebuilt when they differ.
    """

    MIN_SECRET_CHARS = 4  # shorter values would blank out ordinary words

    def __init__(self, secrets_to_hide: list[str], changing: tuple = ()) -> None:
        self.fixed = [s for s in secrets_to_hide if s]
        self.changing = tuple(changing)
        self._changing_values: tuple[str, ...] = ()
        self._build(())

    def _build(self, extra: tuple[str, ...]) -> None:
        values = {s for s in (*self.fixed, *extra) if len(s) >= self.MIN_SECRET_CHARS}
        self.secrets = sorted(values, key=len, reverse=True)
        self.encoded = [s.encode("utf-8", "surrogatepass") for s in self.secrets]
        self._changing_values = extra

    def _refresh(self) -> None:
        if self.changing:
            current = tuple(value for source in self.changing for value in source() if value)
            if current != self._changing_values:
                self._build(current)

    def __call__(self, text: str) -> str:
        self._refresh()
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def bytes(self, data: bytes) -> bytes:
        """`data` with every secret masked; the same object when none is in it (the usual case)."""
        self._refresh()
        for secret in self.encoded:
            if secret in data:
                data = data.replace(secret, b"***")
        return data


class Verbatim(str):
    """Text the proxy composed itself, line breaks included (the banner): logged as it is."""


# Characters that end or disguise a line: C0 controls, DEL, C1 controls (NEL among them), and the
# Unicode line and paragraph separators (str.splitlines breaks at all of them but DEL).
_LOG_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_LOG_ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\r`, `\\t`, `\\xNN`, `\\u2028`); `text` itself when all is printable."""
    return text if text.isprintable() else text.translate(_LOG_ESCAPES)


def _printable_args(args: tuple | dict) -> tuple | dict:
    """A record's arguments with every plain str one made `printable`; the same object when none needs it."""
    if isinstance(args, dict):  # logging passes a lone mapping argument as the args themselves
        if all(type(value) is not str or value.isprintable() for value in args.values()):
            return args
        return {key: printable(value) if type(value) is str else value for key, value in args.items()}
    if all(type(arg) is not str or arg.isprintable() for arg in args):
        return args
    return tuple(printable(arg) if type(arg) is str else arg for arg in args)  # Verbatim is not `str` itself


class RedactingFilter(logging.Filter):
    """A last line of defence: no log record leaves with a configured secret, or a line break a client chose, in it."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = _printable_args(record.args)
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class JSONFormatter(logging.Formatter):
    """LOG_FORMAT=json: one JSON object per line; access lines carry their fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if access:
            entry.update(access)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return dumps(entry)


def setup_logging(config: Config) -> None:
    root = logging.getLogger("switchboard")
    root.setLevel(config.log_level)
    root.handlers.clear()
    if config.log_format == "json":
        formatter: logging.Formatter = JSONFormatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    redacting = RedactingFilter(Redactor(config.secrets()))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.log_file:
        directory = os.path.dirname(time.strftime(config.log_file))
        if directory:
            os.makedirs(directory, exist_ok=True)
        handlers.append(DailyFileHandler(config.log_file, config.log_file_backup_count, config.log_file_pattern))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redacting)
        root.addHandler(handler)
    root.propagate = False
