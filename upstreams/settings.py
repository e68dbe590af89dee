"""Typed readers for the one settings mapping (the environment over `.env`), shared by every room.

The server's `Config` and each provider module read their own variables with these, so a bad value
always fails the same way: `ConfigError` with a message that names the variable. Nothing here reads
`os.environ`: the mapping is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A setting is invalid; the message names the variable. main() exits 2 with it."""


def text(env: Mapping[str, str], name: str) -> str | None:
    """The stripped value of `name`, or None when unset or blank."""
    return (env.get(name) or "").strip() or None


def boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def integer(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name}={value} must be {bounds}")
    return value


def seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise ConfigError(f"{name}={raw} must not be negative")
    return value


def choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def url(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) URL without its trailing slash; `default` when unset."""
    raw = env.get(name, "").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={raw!r} is not an http:// or https:// URL")
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"{name}={raw!r} has an invalid port") from None
    return raw.rstrip("/")
