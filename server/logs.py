"""Logging: text or JSON lines to stderr and an optional dated LOG_FILE, with secrets redacted.

Policies:
- One logger per module under "switchboard"; the access line is "switchboard.access" and carries
  its fields as keys in JSON mode.
- Every record passes a redacting filter: no configured secret (inbound or upstream key, outbound
  proxy credentials) leaves in a log line.
- LOG_FILE may hold strftime placeholders: the file is reopened at midnight and LOG_FILE_BACKUP_COUNT
  old files are kept.
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
    """A file log whose name is a strftime pattern, reopened at midnight, keeping `backup_count` old files.

    A pattern without placeholders rotates like TimedRotatingFileHandler (name.YYYY-MM-DD).
    """

    def __init__(self, pattern: str, backup_count: int) -> None:
        self.pattern = pattern
        self.backup_count = backup_count
        self.dated = "%" in pattern
        self.next_rollover = self._next_midnight()
        super().__init__(self._current_name(), encoding="utf-8", delay=False)

    def _current_name(self) -> str:
        return time.strftime(self.pattern) if self.dated else self.pattern

    @staticmethod
    def _next_midnight() -> float:
        now = time.localtime()
        midnight = time.mktime((now.tm_year, now.tm_mon, now.tm_mday + 1, 0, 0, 0, 0, 0, -1))
        return midnight

    def emit(self, record: logging.LogRecord) -> None:
        if record.created >= self.next_rollover:
            self._rollover()
        super().emit(record)

    def _rollover(self) -> None:
        self.next_rollover = self._next_midnight()
        if self.stream:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
        if not self.dated:
            stamped = f"{self.pattern}.{time.strftime('%Y-%m-%d', time.localtime(time.time() - 3600))}"
            with contextlib.suppress(OSError):
                os.replace(self.pattern, stamped)
            old = sorted(glob.glob(glob.escape(self.pattern) + ".*"))
        else:
            self.baseFilename = os.path.abspath(self._current_name())
            current = self.baseFilename
            old = sorted(p for p in glob.glob(_strftime_glob(self.pattern)) if os.path.abspath(p) != current)
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
    """Replaces every configured secret (inbound and upstream keys, proxy credentials) with ***."""

    MIN_SECRET_CHARS = 4  # shorter values would blank out ordinary words

    def __init__(self, secrets_to_hide: list[str]) -> None:
        self.secrets = sorted({s for s in secrets_to_hide if s and len(s) >= self.MIN_SECRET_CHARS}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


class RedactingFilter(logging.Filter):
    """A last line of defence: no log record leaves with a configured secret in it."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
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
        handlers.append(DailyFileHandler(config.log_file, config.log_file_backup_count))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redacting)
        root.addHandler(handler)
    root.propagate = False
