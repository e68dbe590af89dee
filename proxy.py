"""switchboard: an API gateway between the Anthropic Messages / OpenAI Chat Completions APIs and any provider.

One asyncio process, one h11 connection per client socket. A request flows one way:
    client bytes -> route + auth (here) -> translate/ (client dialect -> upstream dialect)
    -> upstreams/ (provider URL + headers, pooled h11 client) -> translate/ (upstream events -> client
    events) -> framed and written here, with one access-log line.

Policies:
- Configuration is read once at start from the environment, over a `.env` file (real environment
  variables win), into a frozen `Config`; a bad value exits 2 with one line naming the variable.
- Errors are `translate.errors.ProxyError`s, raised anywhere and rendered into the front's envelope in
  exactly one place (`render_error`); once a stream has started, the stream translator's `fail()` ends
  it with the front's own stream error. Clients never see stack traces; no exception escapes a
  connection's task.
- A stream's response head is committed by the first upstream event or the first heartbeat, so an
  upstream error that arrives quickly still reaches the client with its own HTTP status.
- When the client goes away, the upstream request is cancelled at once: its connection is closed,
  not pooled, so the user stops paying for tokens nobody reads.
- Keys are never logged; bodies only at DEBUG.

Known shortcuts: HTTP/1.1 only (no h2); pipelined requests are served one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import hmac
import ipaddress
import json
import logging
import logging.handlers
import os
import random
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

from translate.anthropic_to_chat_request import anthropic_to_chat_request
from translate.anthropic_to_chat_response import (
    AnthropicToChatStream,
    anthropic_to_chat_response,
)
from translate.chat_to_anthropic_request import chat_to_anthropic_request
from translate.chat_to_anthropic_response import (
    ChatToAnthropicStream,
    chat_to_anthropic_response,
)
from translate.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    ProxyError,
    RequestTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
    anthropic_error_body,
    chat_error_body,
    chat_status,
    error_from_upstream,
)
from translate.metrics import Metrics
from translate.sse import (
    CHAT_DONE,
    KEEPALIVE_COMMENT,
    SSEDecoder,
    dumps,
    encode_anthropic_event,
    encode_chat_chunk,
)
from translate.tokens import estimate_input_tokens
from translate.usage import UsageReader
from upstreams.anthropic import AnthropicProvider
from upstreams.azure import DEFAULT_API_VERSION as AZURE_DEFAULT_API_VERSION
from upstreams.azure import AzureOpenAIProvider
from upstreams.echo import EchoProvider
from upstreams.gemini import AI_STUDIO_BASE_URL, GeminiProvider, vertex_base_url
from upstreams.google_auth import GoogleAuthError, load_credentials
from upstreams.http import ClientSettings, HTTPClient, ProxySettings
from upstreams.ollama import DEFAULT_BASE_URL as OLLAMA_DEFAULT_BASE_URL
from upstreams.ollama import OllamaProvider
from upstreams.openai import OpenAICompatibleProvider
from upstreams.resilience import ConcurrencyLimiter, RetryPolicy, send_with_retries
from upstreams.routing import Route, RoutingTable, resolve_route

VERSION = "0.1.0"
SECONDS = 1.0
MIB = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
KEEPALIVE_IDLE_TIMEOUT = 120 * SECONDS
MAX_REQUEST_LINE_BYTES = 8 * 1024
AFTER_END_DRAIN_TIMEOUT = 1 * SECONDS
# PREFERRED_PROVIDER values and the provider each names ("google" is Gemini, as users know it).
PREFERRED_PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure",
    "google": "gemini",
    "gemini": "gemini",
    "ollama": "ollama",
    "echo": "echo",
}
# Tier defaults (BIG, SMALL) per preferred provider; None keeps the requested name.
TIER_DEFAULTS = {
    "openai": ("gpt-4.1", "gpt-4.1-mini"),
    "azure": ("gpt-4.1", "gpt-4.1-mini"),
    "gemini": ("gemini-2.5-pro", "gemini-2.5-flash"),
    "anthropic": (None, None),
    "ollama": (None, None),
    "echo": ("gpt-4.1", "gpt-4.1-mini"),
}
# Marks every request the proxy sends upstream; a request arriving with this proxy's own mark is a loop.
LOOP_HEADER = "x-switchboard-hop"
# Upstream response headers worth passing back to the client (rate-limit state, retry hints).
FORWARDED_RESPONSE_HEADER_PREFIXES = ("retry-after", "anthropic-ratelimit-", "x-ratelimit-")

log = logging.getLogger("switchboard")
access_log = logging.getLogger("switchboard.access")


# =============================================================================================
# Configuration
# =============================================================================================


class ConfigError(Exception):
    """A setting is invalid; the message names the variable. main() exits 2 with it."""


def parse_env_file(text: str) -> dict[str, str]:
    """Parse `.env` text: `KEY=value` lines, `#` comments, optional `export `, single or double quotes.

    Double-quoted values understand \\n, \\t, \\" and \\\\; an unquoted value ends at ` #`.
    """
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if value[:1] in ("'", '"') and value.find(value[0], 1) > 0:
            quote = value[0]
            if quote == '"':
                # Find the closing quote that is not escaped.
                end = 1
                while end < len(value) and value[end] != '"':
                    end += 2 if value[end] == "\\" else 1
                inner = value[1:end]
                for escaped, plain in (("\\n", "\n"), ("\\t", "\t"), ('\\"', '"'), ("\\\\", "\\")):
                    inner = inner.replace(escaped, plain)
                value = inner
            else:
                value = value[1 : value.find(quote, 1)]
        else:
            comment = value.find(" #")
            if comment >= 0:
                value = value[:comment].rstrip()
        values[key] = value
    return values


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
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


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
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


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={raw!r} is not an http:// or https:// URL")
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"{name}={raw!r} has an invalid port") from None
    return raw.rstrip("/")


def _aliases(env: Mapping[str, str]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for item in env.get("MODEL_ALIASES", "").split(","):
        if not item.strip():
            continue
        alias, equals, target = item.partition("=")
        if not equals or not alias.strip() or not target.strip():
            raise ConfigError(f"MODEL_ALIASES entry {item.strip()!r} is not alias=model")
        aliases[alias.strip()] = target.strip()
    return aliases


@dataclass(frozen=True)
class Config:
    """Every setting, parsed once at start. Build it with `Config.from_env`."""

    host: str = "127.0.0.1"
    port: int = 8082
    log_level: str = "INFO"
    log_file: str | None = None
    log_file_backup_count: int = 7
    proxy_api_keys: tuple[str, ...] = ()
    allow_anonymous: bool = False
    preferred_provider: str = "openai"
    big_model: str | None = "gpt-4.1"
    middle_model: str | None = "gpt-4.1"
    small_model: str | None = "gpt-4.1-mini"
    model_aliases: dict[str, str] = field(default_factory=dict)
    openai_api_key: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_configured: bool = False
    anthropic_api_key: str | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_configured: bool = False
    anthropic_auto_cache: bool = True
    azure_endpoint: str | None = None
    azure_api_key: str | None = None
    azure_api_version: str = AZURE_DEFAULT_API_VERSION
    gemini_api_key: str | None = None
    gemini_base_url: str = AI_STUDIO_BASE_URL
    use_vertex_auth: bool = False
    vertex_project: str | None = None
    vertex_location: str = "us-central1"
    vertex_base_url: str | None = None
    google_credentials: object = None
    ollama_base_url: str = OLLAMA_DEFAULT_BASE_URL
    ollama_configured: bool = False
    proxies: ProxySettings | None = None
    default_max_tokens: int = 16384
    system_prompt: str | None = None
    max_tokens_limit: int | None = None
    max_request_bytes: int = 32 * MIB
    connect_timeout: float = 10 * SECONDS
    read_timeout: float = 300 * SECONDS
    ping_interval: float = 10 * SECONDS
    request_timeout: float = 0.0  # 0 = no total limit
    max_retries: int = 2
    fallback_models: tuple[str, ...] = ()
    max_concurrent_upstream: int = 64
    upstream_queue_timeout: float = 30 * SECONDS
    max_connections: int = 1024
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 30 * SECONDS
    body_timeout: float = 120 * SECONDS
    metrics_public: bool = False
    log_format: str = "text"
    instance_id: str = ""
    workers: int = 1
    shutdown_grace: float = 30 * SECONDS
    ssl_cert_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Parse settings from a mapping of environment variables; raises ConfigError naming the variable."""
        port = _int(env, "PORT", 8082, minimum=0, maximum=65535)
        log_level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"LOG_LEVEL={log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        def text(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        requested_preference = (text("PREFERRED_PROVIDER") or "").lower()
        if requested_preference and requested_preference not in PREFERRED_PROVIDER_NAMES:
            raise ConfigError(f"PREFERRED_PROVIDER={requested_preference!r} is not one of {', '.join(PREFERRED_PROVIDER_NAMES)}")
        use_vertex_auth = _bool(env, "USE_VERTEX_AUTH", False)
        configured = {
            "openai": bool(text("OPENAI_API_KEY") or text("OPENAI_BASE_URL")),
            "azure": bool(text("AZURE_OPENAI_ENDPOINT")),
            "gemini": bool(text("GEMINI_API_KEY")) or use_vertex_auth,
            "ollama": bool(text("OLLAMA_BASE_URL")) or requested_preference == "ollama",
            "anthropic": bool(text("ANTHROPIC_API_KEY")),
        }
        # Unset, the preferred provider is the first one configured (OpenAI first), else openai.
        implied = next((name for name, on in configured.items() if on), "openai")
        preferred = PREFERRED_PROVIDER_NAMES[requested_preference] if requested_preference else implied
        if configured["azure"] and not text("AZURE_OPENAI_API_KEY"):
            raise ConfigError("AZURE_OPENAI_API_KEY is required with AZURE_OPENAI_ENDPOINT")
        google_credentials = None
        vertex_project = text("VERTEX_PROJECT")
        if use_vertex_auth:
            try:
                google_credentials = load_credentials(env)
            except GoogleAuthError as error:
                raise ConfigError(f"USE_VERTEX_AUTH=true but no usable Google credentials: {error}") from None
            vertex_project = vertex_project or google_credentials.project_id
            if not vertex_project and not text("VERTEX_BASE_URL"):
                raise ConfigError("VERTEX_PROJECT is required with USE_VERTEX_AUTH=true (or set VERTEX_BASE_URL)")
        try:
            proxies = ProxySettings.from_env(env)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        # On Anthropic, Claude names are already right: a tier left unset keeps the requested name.
        big_default, small_default = TIER_DEFAULTS[preferred]
        big = text("BIG_MODEL") or big_default
        max_tokens_limit = _int(env, "MAX_TOKENS_LIMIT", 0, minimum=0) or None
        ssl_cert_file = (env.get("SSL_CERT_FILE") or "").strip() or None
        if ssl_cert_file and not os.path.isfile(ssl_cert_file):
            raise ConfigError(f"SSL_CERT_FILE={ssl_cert_file!r} does not exist")
        return cls(
            host=(env.get("HOST") or "127.0.0.1").strip(),
            port=port,
            log_level=log_level,
            log_file=(env.get("LOG_FILE") or "").strip() or None,
            log_file_backup_count=_int(env, "LOG_FILE_BACKUP_COUNT", 7),
            proxy_api_keys=tuple(k.strip() for k in env.get("PROXY_API_KEY", "").split(",") if k.strip()),
            allow_anonymous=_bool(env, "ALLOW_ANONYMOUS", False),
            preferred_provider=preferred,
            big_model=big,
            middle_model=(env.get("MIDDLE_MODEL") or "").strip() or big,
            small_model=text("SMALL_MODEL") or small_default,
            model_aliases=_aliases(env),
            openai_api_key=(env.get("OPENAI_API_KEY") or "").strip() or None,
            openai_base_url=_url(env, "OPENAI_BASE_URL", "https://api.openai.com/v1"),
            openai_configured=configured["openai"],
            anthropic_api_key=(env.get("ANTHROPIC_API_KEY") or "").strip() or None,
            anthropic_base_url=_url(env, "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
            anthropic_configured=configured["anthropic"],
            azure_endpoint=_url(env, "AZURE_OPENAI_ENDPOINT", "https://unset.invalid") if configured["azure"] else None,
            azure_api_key=text("AZURE_OPENAI_API_KEY"),
            azure_api_version=text("AZURE_API_VERSION") or AZURE_DEFAULT_API_VERSION,
            gemini_api_key=text("GEMINI_API_KEY"),
            gemini_base_url=_url(env, "GEMINI_BASE_URL", AI_STUDIO_BASE_URL),
            use_vertex_auth=use_vertex_auth,
            vertex_project=vertex_project,
            vertex_location=text("VERTEX_LOCATION") or "us-central1",
            vertex_base_url=_url(env, "VERTEX_BASE_URL", "https://unset.invalid") if text("VERTEX_BASE_URL") else None,
            google_credentials=google_credentials,
            ollama_base_url=_url(env, "OLLAMA_BASE_URL", OLLAMA_DEFAULT_BASE_URL),
            ollama_configured=configured["ollama"],
            proxies=proxies,
            anthropic_auto_cache=_bool(env, "ANTHROPIC_AUTO_CACHE", True),
            default_max_tokens=_int(env, "DEFAULT_MAX_TOKENS", 16384, minimum=1),
            system_prompt=env.get("SYSTEM_PROMPT") or None,
            max_tokens_limit=max_tokens_limit,
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 32 * MIB, minimum=1024),
            connect_timeout=_seconds(env, "CONNECT_TIMEOUT", 10 * SECONDS) or 10 * SECONDS,
            read_timeout=_seconds(env, "READ_TIMEOUT", 300 * SECONDS) or 300 * SECONDS,
            ping_interval=_seconds(env, "PING_INTERVAL", 10 * SECONDS) or 10 * SECONDS,
            request_timeout=_seconds(env, "REQUEST_TIMEOUT", 0.0),
            max_retries=_int(env, "MAX_RETRIES", 2, maximum=10),
            fallback_models=tuple(m.strip() for m in env.get("FALLBACK_MODELS", "").split(",") if m.strip()),
            max_concurrent_upstream=_int(env, "MAX_CONCURRENT_UPSTREAM", 64),
            upstream_queue_timeout=_seconds(env, "UPSTREAM_QUEUE_TIMEOUT", 30 * SECONDS),
            max_connections=_int(env, "MAX_CONNECTIONS", 1024, minimum=1),
            max_header_bytes=_int(env, "MAX_HEADER_BYTES", 64 * 1024, minimum=1024),
            max_headers=_int(env, "MAX_HEADERS", 100, minimum=8),
            header_timeout=_seconds(env, "HEADER_TIMEOUT", 30 * SECONDS) or 30 * SECONDS,
            body_timeout=_seconds(env, "BODY_TIMEOUT", 120 * SECONDS) or 120 * SECONDS,
            metrics_public=_bool(env, "METRICS_PUBLIC", False),
            log_format=_choice(env, "LOG_FORMAT", ("text", "json")),
            # Shared by the workers of one server (set by the supervisor), so a loop through any of them is seen.
            instance_id=text("SWITCHBOARD_INSTANCE_ID") or secrets.token_hex(8),
            workers=_int(env, "WORKERS", 1, minimum=1, maximum=64),
            shutdown_grace=_seconds(env, "SHUTDOWN_GRACE", 30 * SECONDS),
            ssl_cert_file=ssl_cert_file,
        )

    def secrets(self) -> list[str]:
        """Every configured secret value, for redaction."""
        values = list(self.proxy_api_keys)
        values += [self.openai_api_key, self.anthropic_api_key, self.azure_api_key, self.gemini_api_key]
        if self.proxies is not None:
            for url in (self.proxies.https_proxy, self.proxies.http_proxy):
                userinfo = urlsplit(url).password if url else None
                values.append(userinfo)
        return [value for value in values if value]

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def load_environment(env_file: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings to use: `env_file` (or ./.env when present) overlaid by the real environment."""
    path = env_file or (".env" if os.path.isfile(".env") else None)
    values: dict[str, str] = {}
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                values = parse_env_file(handle.read())
        except OSError as error:
            raise ConfigError(f"--env-file {path}: {error.strerror}") from None
    values.update(environ)
    return values


# =============================================================================================
# Logging
# =============================================================================================


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


# =============================================================================================
# Requests, responses, error rendering
# =============================================================================================


ANTHROPIC_FRONT = "anthropic"
OPENAI_FRONT = "openai"
JSON_HEADERS = [("content-type", "application/json")]
SSE_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]
ANTHROPIC_PING = encode_anthropic_event({"type": "ping"})


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    request_id: str
    started: float
    # Set before handling: when the request must be done (REQUEST_TIMEOUT), None for no limit.
    deadline: float | None = None
    # Filled in while handling, for the access line and metrics.
    front: str = ANTHROPIC_FRONT
    route: Route | None = None
    fallback: int = 0  # position of the answering route in [primary, *FALLBACK_MODELS]
    stream: bool = False
    status: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


def render_error(front: str, error: ProxyError) -> tuple[int, list[tuple[str, str]], bytes]:
    """The one place a ProxyError becomes an HTTP response, in the front's own envelope.

    An error that carries the upstream's own response and comes from a same-dialect (passthrough)
    upstream is returned as the upstream sent it.
    """
    if error.upstream_body is not None and getattr(error, "passthrough", False):
        headers = [("content-type", error.upstream_content_type or "application/json")]
        if error.retry_after:
            headers.append(("retry-after", error.retry_after))
        return error.upstream_status or error.status, headers, error.upstream_body
    headers = list(JSON_HEADERS)
    if error.retry_after:
        headers.append(("retry-after", error.retry_after))
    if front == OPENAI_FRONT:
        return chat_status(error), headers, dumps(chat_error_body(error)).encode()
    return error.status, headers, dumps(anthropic_error_body(error)).encode()


def parse_json_object(body: bytes) -> dict:
    """The request body as a JSON object; InvalidRequest when it is not one."""
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        value = json.loads(body)
    except ValueError as error:
        raise InvalidRequest(f"request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise InvalidRequest("request body must be a JSON object")
    return value


class ResponseWriter:
    """Writes one response on an h11 server connection, whole or as a stream of chunks.

    A stream's head is sent lazily by the first `write`, so until then an error can still be sent
    as a plain HTTP response.
    """

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter, request: Request, extra_headers: list) -> None:
        self.conn = conn
        self.writer = writer
        self.request = request
        self.extra_headers = extra_headers
        self.started = False  # the response head was sent
        self.content_started = False  # a body byte other than a heartbeat was sent
        self.first_content_at: float | None = None
        self.pending_head: tuple[int, list[tuple[str, str]]] | None = None
        # Heartbeats: one timer task per stream, not one per chunk.
        self.last_write = time.monotonic()
        self.at_event_boundary = True  # passthrough relays bytes that may stop inside an event
        self._writing = False
        self._heartbeat: asyncio.Task | None = None

    def start_heartbeat(self, data: bytes, interval: float) -> None:
        """Write `data` after every `interval` seconds without a write, between events, until the end.

        The first heartbeat commits the response head (200, the prepared stream head).
        """
        self.last_write = time.monotonic()
        self._heartbeat = asyncio.ensure_future(self._beat(data, interval))

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    async def _beat(self, data: bytes, interval: float) -> None:
        with contextlib.suppress(ConnectionError, h11.LocalProtocolError):
            while not self.complete:
                await asyncio.sleep(max(0.0, self.last_write + interval - time.monotonic()))
                idle = time.monotonic() - self.last_write >= interval
                if idle and self.at_event_boundary and not self._writing and not self.complete:
                    await self.write(data, heartbeat=True)

    @property
    def complete(self) -> bool:
        return self.conn.our_state is not h11.SEND_BODY and self.started

    async def _send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Send a complete response with Content-Length."""
        self.request.status = status
        self.started = True
        all_headers = headers + self.extra_headers + [("content-length", str(len(body)))]
        data = self.conn.send(h11.Response(status_code=status, headers=all_headers))
        if body and self.request.method != "HEAD":
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        self.writer.write(data)
        await self.writer.drain()

    def prepare_stream(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Remember the head of a streamed response; the first `write` sends it."""
        self.pending_head = (status, headers)

    async def write(self, chunk: bytes, *, heartbeat: bool = False) -> None:
        """Send one chunk of a streamed body (the head first if not yet sent), then drain."""
        self.last_write = time.monotonic()
        if not heartbeat and not self.content_started:
            self.content_started = True
            self.first_content_at = self.last_write
        if not self.started:
            status, headers = self.pending_head or (200, SSE_HEADERS)
            self.request.status = status
            self.started = True
            head = self.conn.send(h11.Response(status_code=status, headers=headers + self.extra_headers))
            self.writer.write(head + self.conn.send(h11.Data(data=chunk)))
        else:
            self.writer.write(self.conn.send(h11.Data(data=chunk)))
        self._writing = True
        try:
            await self.writer.drain()
        finally:
            self._writing = False

    async def end(self) -> None:
        if self.conn.our_state is h11.SEND_BODY:
            await self._send(h11.EndOfMessage())


# =============================================================================================
# The gateway: routing and handlers
# =============================================================================================


class Gateway:
    """Holds what lives as long as the server: config, providers, routing table, upstream client."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.providers: dict[str, object] = {"echo": EchoProvider()}
        if config.openai_configured:
            self.providers["openai"] = OpenAICompatibleProvider(
                "openai", config.openai_base_url, config.openai_api_key, max_tokens_limit=config.max_tokens_limit
            )
        if config.azure_endpoint:
            self.providers["azure"] = AzureOpenAIProvider(
                config.azure_endpoint, config.azure_api_key, config.azure_api_version, max_tokens_limit=config.max_tokens_limit
            )
        if config.gemini_api_key or config.use_vertex_auth:
            if config.use_vertex_auth:
                base = config.vertex_base_url or vertex_base_url(config.vertex_project, config.vertex_location)
                self.providers["gemini"] = GeminiProvider(
                    base, None, credentials=config.google_credentials, max_tokens_limit=config.max_tokens_limit
                )
            else:
                self.providers["gemini"] = GeminiProvider(
                    config.gemini_base_url, config.gemini_api_key, max_tokens_limit=config.max_tokens_limit
                )
        if config.ollama_configured:
            self.providers["ollama"] = OllamaProvider(config.ollama_base_url, max_tokens_limit=config.max_tokens_limit)
        if config.anthropic_configured:
            self.providers["anthropic"] = AnthropicProvider(
                config.anthropic_base_url,
                config.anthropic_api_key,
                default_max_tokens=config.default_max_tokens,
                max_tokens_limit=config.max_tokens_limit,
                system_prompt=config.system_prompt,
                auto_cache=config.anthropic_auto_cache,
            )
        real = [name for name in self.providers if name != "echo"]
        preferred = config.preferred_provider
        self.echo_fallback = not real
        if self.echo_fallback:
            preferred = "echo"
        self.routing = RoutingTable(
            preferred=preferred,
            big_model=config.big_model,
            middle_model=config.middle_model,
            small_model=config.small_model,
            configured=frozenset(self.providers),
            aliases=config.model_aliases,
        )
        self.client = HTTPClient(
            ClientSettings(
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                ca_file=config.ssl_cert_file,
                proxies=config.proxies,
            )
        )
        self.dropped_tools_logged: set[str] = set()
        self.instance_id = config.instance_id
        self.redact = Redactor(config.secrets())
        self.metrics = Metrics()
        self.retry_policy = RetryPolicy(max_retries=config.max_retries)
        self.limiter = ConcurrencyLimiter(config.max_concurrent_upstream, config.upstream_queue_timeout)
        for fallback in config.fallback_models:
            route = resolve_route(fallback, self.routing)
            if not route.configured:
                raise ConfigError(
                    f"FALLBACK_MODELS entry {fallback!r} routes to {route.provider}, which is not configured: "
                    f"set {PROVIDER_VARIABLES.get(route.provider, 'its variables')}"
                )
        self.routes = {
            ("POST", "/v1/messages"): self.handle_messages,
            ("POST", "/v1/messages/count_tokens"): self.handle_count_tokens,
            ("POST", "/v1/chat/completions"): self.handle_chat_completions,
            ("GET", "/v1/models"): self.handle_models,
            ("GET", "/health"): self.handle_health,
            ("GET", "/"): self.handle_root,
            ("HEAD", "/"): self.handle_root,
            ("HEAD", "/health"): self.handle_health,
            ("POST", "/api/event_logging/batch"): self.handle_event_logging,
            ("GET", "/metrics"): self.handle_metrics,
        }

    # ---- routing and auth ------------------------------------------------------------------

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """True when no key is configured or the request carries one (constant-time comparison)."""
        if not self.config.proxy_api_keys:
            return True
        offered = headers.get("x-api-key", "")
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            offered = offered or authorization[7:].strip()
        matched = False
        for key in self.config.proxy_api_keys:
            # Compare against every key so the time taken does not reveal which one matched.
            matched |= hmac.compare_digest(offered.encode(), key.encode())
        return matched

    def route(self, model: str, front: str) -> Route:
        route = resolve_route(model, self.routing, front)
        if not route.configured:
            raise InvalidRequest(
                f"model {model!r} routes to provider {route.provider!r}, which is not configured: "
                f"set {PROVIDER_VARIABLES.get(route.provider, 'its variables')}"
            )
        return route

    async def dispatch(self, request: Request, out: ResponseWriter) -> None:
        """Run the handler for the request's method and path; raises ProxyError for the caller to render."""
        path = request.path
        if path.startswith("/v1/chat/") or path == "/v1/models":
            request.front = OPENAI_FRONT
        handler = self.routes.get((request.method, path))
        if handler is None:
            if any(p == path for _, p in self.routes):
                raise ProxyError(f"method {request.method} is not allowed on {path}", status=405, error_type="invalid_request_error")
            raise NotFound(f"no route for {request.method} {path}")
        needs_key = path.startswith("/v1/") or (path == "/metrics" and not self.config.metrics_public)
        if needs_key and not self.authorized(request.headers):
            raise AuthenticationFailed("invalid or missing API key: send it as x-api-key or Authorization: Bearer")
        if request.headers.get(LOOP_HEADER) == self.instance_id:
            raise ProxyError(
                "loop detected: this request was sent by this proxy to itself; an upstream base URL "
                "(OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ...) points back at the proxy",
                status=508,
                error_type="invalid_request_error",
            )
        await handler(request, out)

    # ---- small endpoints -------------------------------------------------------------------

    async def handle_root(self, request: Request, out: ResponseWriter) -> None:
        body = {"name": "switchboard", "version": VERSION, "endpoints": sorted({path for _, path in self.routes})}
        await out.send(200, JSON_HEADERS, dumps(body).encode())

    async def handle_health(self, request: Request, out: ResponseWriter) -> None:
        body = {"status": "ok", "version": VERSION, "providers": sorted(self.providers), "pid": os.getpid()}
        await out.send(200, JSON_HEADERS, dumps(body).encode())

    async def handle_metrics(self, request: Request, out: ResponseWriter) -> None:
        stats = self.client.pool_stats()
        self.metrics.set("switchboard_upstream_pool_connections", stats["idle"], state="idle")
        self.metrics.set("switchboard_upstream_pool_connections", stats["active"], state="active")
        body = self.metrics.render().encode()
        await out.send(200, [("content-type", "text/plain; version=0.0.4; charset=utf-8")], body)

    async def handle_event_logging(self, request: Request, out: ResponseWriter) -> None:
        # Claude Code's telemetry; nothing to forward. Answer quietly.
        await out.send(204, [], b"")

    async def handle_count_tokens(self, request: Request, out: ResponseWriter) -> None:
        body = parse_json_object(request.body)
        if not isinstance(body.get("messages"), list):
            raise InvalidRequest("messages: field required (a list of messages)", param="messages")
        model = body.get("model")
        if isinstance(model, str) and model:
            route = request.route = self.route(model, ANTHROPIC_FRONT)
            provider = self.providers[route.provider]
            if provider.dialect == "anthropic" and await self.forward_count_tokens(request, out, provider, body, route):
                return
        tokens = estimate_input_tokens(body)
        request.input_tokens = tokens
        await out.send(200, JSON_HEADERS, dumps({"input_tokens": tokens}).encode())

    async def forward_count_tokens(self, request: Request, out: ResponseWriter, provider, body: dict, route: Route) -> bool:
        """Exact counts from an Anthropic upstream; False (use the local estimate) when it cannot answer."""
        payload = request.body if route.model == route.requested else dumps(dict(body, model=route.model)).encode()
        try:
            response = await provider.send(
                self.client, payload, model=route.model, client_headers=request.headers, path="/v1/messages/count_tokens",
                extra_headers=[("x-request-id", request.request_id), (LOOP_HEADER, self.instance_id)],
            )
            async with response:
                raw = await response.read()
        except ProxyError as error:
            log.info("request_id=%s count_tokens upstream failed (%s); using the local estimate", request.request_id, error.message)
            return False
        if response.status != 200:
            log.info("request_id=%s count_tokens upstream answered %d; using the local estimate", request.request_id, response.status)
            return False
        try:
            counted = json.loads(raw).get("input_tokens")
        except (ValueError, AttributeError):
            counted = None
        request.input_tokens = counted if isinstance(counted, int) else 0
        await out.send(200, JSON_HEADERS, raw)
        return True

    async def handle_models(self, request: Request, out: ResponseWriter) -> None:
        """One list in both shapes: OpenAI's (object, owned_by, created) and Anthropic's (type, display_name, ...)."""
        data = [
            {
                "id": model_id,
                "object": "model",
                "type": "model",
                "created": MODELS_CREATED,
                "created_at": MODELS_CREATED_AT,
                "owned_by": owner,
                "display_name": model_id,
            }
            for model_id, owner in self.model_ids()
        ]
        body = {
            "object": "list",
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        await out.send(200, JSON_HEADERS, dumps(body).encode())

    def model_ids(self) -> list[tuple[str, str]]:
        """(id, provider) for every model name this proxy can route, without duplicates, in a stable order."""
        table = self.routing
        listed: dict[str, str] = {}
        # Claude names route everywhere (through the tiers); Claude Code's picker keeps only these.
        for name in CLAUDE_MODEL_NAMES:
            listed.setdefault(name, resolve_route(name, table).provider)
        for model in (table.big_model, table.middle_model, table.small_model):
            if model:
                listed.setdefault(model, table.preferred)
        for alias in table.aliases:
            listed.setdefault(alias, resolve_route(alias, table).provider)
        for name, provider in self.providers.items():
            for model in getattr(provider, "well_known_models", ()):
                model_id = model if name == table.preferred else f"{name}/{model}"
                listed.setdefault(model_id, name)
        return list(listed.items())

    # ---- Anthropic front -------------------------------------------------------------------

    async def handle_messages(self, request: Request, out: ResponseWriter) -> None:
        body = parse_json_object(request.body)
        model = required_model(body)
        self.start_stream_if_asked(request, out, body, ANTHROPIC_PING)
        await self.answer(request, out, body, model, self.messages_via)

    async def messages_via(self, request: Request, out: ResponseWriter, body: dict, route: Route) -> None:
        """Serve an Anthropic Messages request from one route (translated, or passed through)."""
        provider = self.providers[route.provider]
        if provider.dialect == "anthropic":
            await self.passthrough(request, out, provider, body, route)
            return
        translated = anthropic_to_chat_request(body, provider.target(route.model))
        for name in translated.dropped_tools:
            if name not in self.dropped_tools_logged:
                self.dropped_tools_logged.add(name)
                log.warning("dropping server tool %s: provider %s cannot run it", name, route.provider)
        message_id = "msg_" + secrets.token_hex(12)
        options = dict(
            requested_model=route.requested,
            message_id=message_id,
            tool_names=translated.tool_names,
            stop_sequences=translated.stop_sequences,
            thought_signatures=provider.thought_signatures,
            thought_tags=provider.thought_signatures,
        )
        await self.serve_translated(
            request, out, provider, route,
            payload=self.upstream_payload(request, provider.prepare(translated.body)),
            whole=lambda data: chat_to_anthropic_response(data, **options),
            stream=lambda: ChatToAnthropicStream(**options, buffer_tool_calls=provider.buffer_tool_calls),
            encode=encode_anthropic_event,
            usage=anthropic_usage_counts,
        )

    # ---- OpenAI front ----------------------------------------------------------------------

    async def handle_chat_completions(self, request: Request, out: ResponseWriter) -> None:
        body = parse_json_object(request.body)
        model = required_model(body)
        self.start_stream_if_asked(request, out, body, KEEPALIVE_COMMENT)
        await self.answer(request, out, body, model, self.chat_completions_via)

    async def chat_completions_via(self, request: Request, out: ResponseWriter, body: dict, route: Route) -> None:
        """Serve an OpenAI chat.completions request from one route (passed through, or translated)."""
        provider = self.providers[route.provider]
        if provider.dialect == "openai":
            await self.passthrough(request, out, provider, body, route)
            return
        translated = chat_to_anthropic_request(body, provider.target(route.model))
        options = dict(
            requested_model=route.requested,
            completion_id="chatcmpl-" + secrets.token_hex(12),
            created=int(time.time()),
            json_mode=translated.json_mode,
            tool_names=translated.tool_names,
        )
        await self.serve_translated(
            request, out, provider, route,
            payload=self.upstream_payload(request, translated.body),
            whole=lambda data: anthropic_to_chat_response(data, **options),
            stream=lambda: AnthropicToChatStream(**options, include_usage=translated.include_usage),
            encode=encode_openai_item,
            usage=openai_usage_counts,
        )

    # ---- the translated path, shared by both fronts ----------------------------------------

    async def serve_translated(self, request: Request, out: ResponseWriter, provider, route: Route, *, payload: bytes,
                               whole, stream, encode, usage) -> None:
        """Send a translated request and answer with the translated response, whole or streamed.

        `whole(data)` translates a whole upstream body, `stream()` makes the stream translator,
        `encode` frames its events, `usage(answer)` reads (input, cached, output) from a whole answer.
        """
        response = await self.open_upstream(request, out, provider, route, payload)
        if not request.stream:
            answer = whole(await self.read_upstream_json(request, out, response, route))
            request.input_tokens, request.cached_tokens, request.output_tokens = usage(answer)
            await out.send(200, JSON_HEADERS, dumps(answer).encode())
            return
        translator = stream()
        await self.relay_stream(request, out, response, translator, encode, route)
        request.input_tokens = translator.input_tokens + translator.cache_read_tokens + translator.cache_creation_tokens
        request.cached_tokens = translator.cache_read_tokens
        request.output_tokens = translator.output_tokens

    # ---- routes, retries, fallbacks --------------------------------------------------------

    def start_stream_if_asked(self, request: Request, out: ResponseWriter, body: dict, heartbeat: bytes) -> None:
        """For a streaming request, heartbeats may flow from now on; the first one commits a 200 head."""
        request.stream = body.get("stream") is True
        if request.stream:
            out.prepare_stream(200, SSE_HEADERS)
            out.start_heartbeat(heartbeat, self.config.ping_interval)

    def routes_for(self, model: str, front: str) -> list[Route]:
        """The primary route for `model`, then each FALLBACK_MODELS route that differs from it."""
        routes = [self.route(model, front)]
        for fallback in self.config.fallback_models:
            route = resolve_route(fallback, self.routing, front)
            route = Route(route.provider, route.model, model, route.configured)
            if route.configured and (route.provider, route.model) not in {(r.provider, r.model) for r in routes}:
                routes.append(route)
        return routes

    async def answer(self, request: Request, out: ResponseWriter, body: dict, model: str, serve_via) -> None:
        """Serve from the primary route; on a retryable failure before any content, try each fallback."""
        routes = self.routes_for(model, request.front)
        for position, route in enumerate(routes):
            request.route, request.fallback = route, position
            try:
                async with self.limiter.slot(route.provider):
                    await serve_via(request, out, body, route)
            except ProxyError as error:
                self.metrics.inc("switchboard_upstream_errors_total", provider=route.provider, kind=error.error_type)
                last = position == len(routes) - 1
                if last or not error.retryable or out.content_started:
                    raise
                log.warning(
                    "request_id=%s %s/%s failed (%s); falling back to %s/%s",
                    request.request_id, route.provider, route.model, error.message,
                    routes[position + 1].provider, routes[position + 1].model,
                )
                continue
            if position:
                self.metrics.inc("switchboard_fallbacks_total", provider=route.provider)
            return

    async def open_upstream(self, request: Request, out: ResponseWriter, provider, route: Route, payload: bytes, **send_options):
        """Send the request upstream with retries; returns the response (its status may be a final error)."""
        headers = [("x-request-id", request.request_id), (LOOP_HEADER, self.instance_id)]

        def send() -> Awaitable:
            return provider.send(self.client, payload, model=route.model, extra_headers=headers, **send_options)

        def on_retry(reason: str, delay: float) -> None:
            self.metrics.inc("switchboard_upstream_retries_total", provider=route.provider, reason=reason)
            log.info("request_id=%s retrying %s/%s after %s in %.2fs", request.request_id, route.provider, route.model, reason, delay)

        return await send_with_retries(
            send,
            self.retry_policy,
            provider=route.provider,
            jitter=random.random,
            on_retry=on_retry,
        )

    # ---- shared steps ----------------------------------------------------------------------

    def upstream_payload(self, request: Request, body: dict) -> bytes:
        payload = dumps(body).encode()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request_id=%s upstream body %s", request.request_id, payload[:20000].decode("utf-8", "replace"))
        return payload

    async def read_upstream_json(self, request: Request, out: ResponseWriter, response, route: Route) -> dict:
        """A non-stream upstream answer's JSON body, or the ProxyError its status means."""
        async with response:
            raw = await response.read()
        if response.status >= 400:
            raise error_from_upstream(response.status, raw, provider=route.provider, retry_after=response.header("retry-after"))
        try:
            data = json.loads(raw)
        except ValueError:
            raise UpstreamUnavailable(f"{route.provider} upstream returned a body that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamUnavailable(f"{route.provider} upstream returned JSON that is not an object")
        return data

    async def passthrough(self, request: Request, out: ResponseWriter, provider, body: dict, route: Route) -> None:
        """Same dialect on both sides: the request goes up unchanged but for the model name, and the
        answer (status, body, every stream byte) comes back untouched. Usage is read on the side."""
        model = provider.upstream_model(route.model)
        if provider.rewrites_requests:
            # Same dialect, but the provider rejects what the dialect allows (Gemini, Ollama).
            payload = dumps(provider.prepare(dict(body, model=model))).encode()
        elif model == route.requested:
            payload = request.body
        else:
            payload = dumps(dict(body, model=model)).encode()
        usage = UsageReader(provider.dialect)
        try:
            response = await self.open_upstream(request, out, provider, route, payload, client_headers=request.headers)
        except ProxyError as error:
            error.passthrough = True  # render the upstream's own error body if it is the last word
            raise
        async with response:
            headers = passed_response_headers(response)
            streaming = request.stream and response.status < 400 and "event-stream" in (response.header("content-type") or "")
            if not streaming:
                raw = await response.read()
                usage.read_body(raw)
                self.take_usage(request, usage)
                if not out.started:
                    await out.send(response.status, headers, raw)
                    return
                # Heartbeats already committed a 200 stream: report the failure inside it.
                raise error_from_upstream(response.status, raw, provider=route.provider)
            out.prepare_stream(response.status, headers)
            chunks = response.iter_bytes().__aiter__()
            at_event_boundary = True
            try:
                while True:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    usage.feed(chunk)
                    # A heartbeat may only go between events, never inside one.
                    at_event_boundary = out.at_event_boundary = chunk.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))
                    await out.write(chunk)
            except ProxyError as error:
                if not out.started:
                    raise
                log.warning("request_id=%s passthrough stream failed: %s", request.request_id, error.message)
                if not at_event_boundary:
                    await out.write(b"\n\n")
                await out.write(stream_error_bytes(request.front, error))
            finally:
                self.take_usage(request, usage)
            await out.end()

    @staticmethod
    def take_usage(request: Request, usage: UsageReader) -> None:
        request.input_tokens, request.output_tokens = usage.input_tokens, usage.output_tokens

    # ---- streaming relay -------------------------------------------------------------------

    async def relay_stream(self, request: Request, out: ResponseWriter, response, translator, encode, route: Route) -> None:
        """Relay an upstream SSE stream through a stream translator to the client, with heartbeats.

        Raises ProxyError only while no content has been written, so the caller can still fall
        back or render it with its HTTP status; after that, failures end the stream with the
        translator's error event.
        """
        async with response:
            if response.status >= 400:
                raw = await response.read()
                raise error_from_upstream(response.status, raw, provider=route.provider, retry_after=response.header("retry-after"))
            decoder = SSEDecoder()
            chunks = response.iter_bytes().__aiter__()
            self.metrics.add("switchboard_active_streams", 1)
            try:
                while not translator.finished:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        events = [e for sse in decoder.close() for e in translator.feed(sse)] + translator.close()
                        if events:
                            await out.write(b"".join(encode(e) for e in events))
                        break
                    events = [e for sse in decoder.feed(chunk) for e in translator.feed(sse)]
                    if events:
                        await out.write(b"".join(encode(e) for e in events))
                else:
                    # Finished: read the upstream's last bytes briefly, so its connection can be pooled.
                    with contextlib.suppress(Exception, asyncio.TimeoutError):
                        while True:
                            await asyncio.wait_for(chunks.__anext__(), AFTER_END_DRAIN_TIMEOUT)
            except ProxyError as error:
                if not out.content_started:
                    raise
                log.warning("request_id=%s upstream stream failed: %s", request.request_id, error.message)
                await out.write(b"".join(encode(e) for e in translator.fail(error)))
            finally:
                self.metrics.add("switchboard_active_streams", -1)
            await out.end()


PROVIDER_VARIABLES = {
    "openai": "OPENAI_API_KEY (and OPENAI_BASE_URL for other OpenAI-compatible servers)",
    "azure": "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (and AZURE_API_VERSION)",
    "gemini": "GEMINI_API_KEY, or USE_VERTEX_AUTH=true with VERTEX_PROJECT and VERTEX_LOCATION",
    "ollama": f"OLLAMA_BASE_URL (or PREFERRED_PROVIDER=ollama for {OLLAMA_DEFAULT_BASE_URL})",
    "anthropic": "ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for another Anthropic-compatible server)",
}
# Names Claude Code's model picker keeps (ids starting with "claude"); they route through the tiers.
CLAUDE_MODEL_NAMES = ("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5")
MODELS_CREATED = 1735689600
MODELS_CREATED_AT = "2025-01-01T00:00:00Z"


def required_model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: field required (a model name string)", param="model")
    return model


def anthropic_usage_counts(message: dict) -> tuple[int, int, int]:
    """(input tokens including cache reads and writes, cached tokens, output tokens) of a Messages answer."""
    usage = message.get("usage") or {}
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    return prompt, cached, usage.get("output_tokens") or 0


def openai_usage_counts(completion: dict) -> tuple[int, int, int]:
    """The same counts from a chat.completion answer."""
    usage = completion.get("usage") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return usage.get("prompt_tokens") or 0, cached, usage.get("completion_tokens") or 0


def encode_openai_item(item: dict | str) -> bytes:
    return CHAT_DONE if item == "[DONE]" else encode_chat_chunk(item)


def stream_error_bytes(front: str, error: ProxyError) -> bytes:
    """A failure inside an already-started stream, as the front's own stream error."""
    if front == OPENAI_FRONT:
        return encode_chat_chunk(chat_error_body(error))
    return encode_anthropic_event(anthropic_error_body(error))


def passed_response_headers(response) -> list[tuple[str, str]]:
    """The upstream response headers a client may see: content type, retry hints, rate-limit state."""
    headers = [("content-type", response.header("content-type") or "application/json")]
    headers += [(k, v) for k, v in response.headers if k.startswith(FORWARDED_RESPONSE_HEADER_PREFIXES)]
    return headers


# =============================================================================================
# The HTTP/1.1 server
# =============================================================================================


class SlowClient(ProxyError):
    """The client did not send its request head or body within the deadline (slowloris protection)."""

    status = 408
    error_type = "invalid_request_error"


class ClientConnection:
    """Serves one client socket: parse requests with h11, dispatch, write, repeat while keep-alive.

    Limits: the request head (request line and headers) may hold at most MAX_HEADER_BYTES and
    MAX_HEADERS fields, the request line at most MAX_REQUEST_LINE_BYTES; once its first byte
    arrived the head must be complete within HEADER_TIMEOUT and the body within BODY_TIMEOUT;
    an idle keep-alive connection is closed after KEEPALIVE_IDLE_TIMEOUT.
    """

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Connection lifetime.
        self.server = server
        self.config = server.config
        self.gateway = server.gateway
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes)
        self.idle = True
        # Read deadlines are timers that cancel this connection's task (no asyncio.wait_for, which
        # costs a task per read): `deadline` names the one running, `expired` the one that fired.
        self.task: asyncio.Task | None = None
        self.deadline: str | None = None
        self.expired: str | None = None

    def _arm(self, seconds: float, name: str) -> asyncio.TimerHandle:
        self.deadline, self.expired = name, None
        return asyncio.get_running_loop().call_later(seconds, self._expire, name)

    def _expire(self, name: str) -> None:
        if self.deadline == name and self.task is not None:
            self.expired = name
            self.task.cancel()

    def _disarm(self, timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        self.deadline = None

    def _expired_deadline(self) -> str | None:
        """After a CancelledError: the deadline that caused it (and the cancellation is undone), else None."""
        name, self.expired = self.expired, None
        if name is not None:
            uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
        return name

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            while not self.server.closing:
                self.idle = True
                event = await self._read_head()
                self.idle = False
                if isinstance(event, h11.Request):
                    await self._serve(event)
                if event is None or isinstance(event, h11.ConnectionClosed):
                    break
                if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                    break
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                elif self.conn.our_state is not h11.IDLE:
                    break
        except h11.RemoteProtocolError as error:
            await self._send_early_error(error.error_status_hint or 400, f"malformed HTTP request: {error}")
        except SlowClient as error:
            await self._send_early_error(error.status, error.message)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("unexpected error on a client connection")
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 1)

    async def _read_head(self) -> h11.Event | None:
        """The next request head: wait (idle) for its first byte, then give the rest HEADER_TIMEOUT."""
        event = self.conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        if self.conn.their_state is not h11.IDLE:
            return await self._next_event()
        timer = self._arm(KEEPALIVE_IDLE_TIMEOUT, "idle")
        try:
            self.conn.receive_data(await self.reader.read(READ_CHUNK_BYTES))
            self._disarm(timer)
            timer = self._arm(self.config.header_timeout, "head")
            return await self._next_event()
        except asyncio.CancelledError:
            expired = self._expired_deadline()
            if expired == "idle":
                raise asyncio.TimeoutError from None  # closed quietly
            if expired == "head":
                raise SlowClient(
                    f"the request head did not arrive within HEADER_TIMEOUT ({self.config.header_timeout:g} seconds)"
                ) from None
            raise
        finally:
            self._disarm(timer)

    async def _next_event(self) -> h11.Event:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.reader.read(READ_CHUNK_BYTES))

    async def _send_early_error(self, status: int, message: str) -> None:
        """Answer a request that could not be read (malformed, too large, too slow), then close."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = dumps(anthropic_error_body(ProxyError(message, status=status, error_type="invalid_request_error"))).encode()
        headers = JSON_HEADERS + [("content-length", str(len(body))), ("connection", "close")]
        with contextlib.suppress(Exception):
            self.writer.write(
                self.conn.send(h11.Response(status_code=status, headers=headers))
                + self.conn.send(h11.Data(data=body))
                + self.conn.send(h11.EndOfMessage())
            )
            await self.writer.drain()

    async def _read_body(self, head: h11.Request) -> bytes:
        limit = self.config.max_request_bytes
        declared = dict(head.headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"request body of {int(declared)} bytes exceeds MAX_REQUEST_BYTES ({limit})")
        if self.conn.they_are_waiting_for_100_continue:
            self.writer.write(self.conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        parts: list[bytes] = []
        size = 0
        timer = self._arm(self.config.body_timeout, "body")
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > limit:
                        raise RequestTooLarge(f"request body exceeds MAX_REQUEST_BYTES ({limit})")
                    parts.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return b"".join(parts)
                else:
                    raise InvalidRequest("connection closed before the request body was complete")
        except asyncio.CancelledError:
            if self._expired_deadline() == "body":
                raise SlowClient(
                    f"the request body did not arrive within BODY_TIMEOUT ({self.config.body_timeout:g} seconds)"
                ) from None
            raise
        finally:
            self._disarm(timer)

    def _check_head(self, head: h11.Request) -> None:
        if len(head.target) > MAX_REQUEST_LINE_BYTES:
            raise ProxyError(f"request target longer than {MAX_REQUEST_LINE_BYTES} bytes", status=414)
        if len(head.headers) > self.config.max_headers:
            raise ProxyError(f"more than MAX_HEADERS ({self.config.max_headers}) header fields", status=431)
        # h11 bounds a head only while it is incomplete; one that arrived whole in a read is measured here.
        size = len(head.method) + len(head.target) + sum(len(name) + len(value) + 4 for name, value in head.headers)
        if size > self.config.max_header_bytes:
            raise ProxyError(f"request head larger than MAX_HEADER_BYTES ({self.config.max_header_bytes})", status=431)
        names = {name for name, _ in head.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            # RFC 9112 6.1: a request with both is a smuggling pattern; refuse it and close.
            raise InvalidRequest("a request must not carry both Content-Length and Transfer-Encoding")

    async def _serve(self, head: h11.Request) -> None:
        target = head.target.decode("latin-1")
        request = Request(
            method=head.method.decode("ascii", "replace"),
            path=target.split("?", 1)[0],
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers},
            body=b"",
            request_id="req_" + secrets.token_hex(12),
            started=time.monotonic(),
        )
        if self.config.request_timeout:
            request.deadline = request.started + self.config.request_timeout
        extra = [("request-id", request.request_id)]
        if self.server.closing:
            extra.append(("connection", "close"))
        out = ResponseWriter(self.conn, self.writer, request, extra)
        try:
            try:
                self._check_head(head)
                request.body = await self._read_body(head)
                await self._run_handler(request, out)
            except h11.RemoteProtocolError as error:
                # Malformed framing of the body (e.g. a chunk size that is not hex).
                extra.append(("connection", "close"))
                await self._report(request, out, InvalidRequest(f"malformed HTTP request body: {error}"))
            except ProxyError as error:
                if self.conn.their_state is not h11.DONE:
                    extra.append(("connection", "close"))  # the rest of the request is left unread
                await self._report(request, out, error)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("request_id=%s unhandled error", request.request_id)
                await self._report(request, out, ProxyError("internal error in the proxy; see its log"))
        finally:
            out.stop_heartbeat()
            self._finish(request, out)

    async def _report(self, request: Request, out: ResponseWriter, error: ProxyError) -> None:
        """Send an error as a response, or, inside a started stream, as the front's stream error event."""
        error.message = self.gateway.redact(error.message)
        if not out.started:
            await out.send(*render_error(request.front, error))
        elif not out.complete:
            log.warning("request_id=%s stream ended with an error: %s", request.request_id, error.message)
            await out.write(stream_error_bytes(request.front, error))
            await out.end()

    async def _run_handler(self, request: Request, out: ResponseWriter) -> None:
        """Run the handler while watching the client socket and the REQUEST_TIMEOUT deadline.

        If the client leaves, the handler is cancelled (and with it the upstream request); if the
        deadline passes, it is cancelled and the request ends with a timeout error.
        """
        handler = asyncio.ensure_future(self.gateway.dispatch(request, out))
        watcher: asyncio.Future | None = asyncio.ensure_future(self.reader.read(READ_CHUNK_BYTES))
        try:
            while True:
                timeout = None if request.deadline is None else max(0.0, request.deadline - time.monotonic())
                waiting = {handler, watcher} if watcher is not None else {handler}
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if watcher is not None and watcher in done:
                    data = b""
                    with contextlib.suppress(Exception):
                        data = watcher.result()
                    watcher = None
                    if handler in done or data:
                        # A pipelined next request, or EOF after the answer: keep it for h11.
                        self.conn.receive_data(data)
                    else:
                        request.status = request.status or 499
                        handler.cancel()
                        with contextlib.suppress(BaseException):
                            await handler
                        raise ConnectionResetError("client disconnected")
                if handler in done:
                    break
                if not done:
                    handler.cancel()
                    with contextlib.suppress(BaseException):
                        await handler
                    raise UpstreamTimeout(
                        f"the request did not finish within REQUEST_TIMEOUT ({self.config.request_timeout:g} seconds)"
                    )
            await handler
        finally:
            for task in (handler, watcher):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task

    def _finish(self, request: Request, out: ResponseWriter) -> None:
        """One access-log line and the request's metrics."""
        route = request.route
        elapsed = time.monotonic() - request.started
        status = str(request.status or "-")
        metrics = self.gateway.metrics
        provider = route.provider if route else "-"
        if request.path.startswith("/v1/"):
            model = route.requested if route else "-"
            metrics.inc("switchboard_requests_total", front=request.front, provider=provider, model=model, status=status)
            metrics.observe("switchboard_request_duration_seconds", elapsed, front=request.front, provider=provider)
            if out.first_content_at is not None and request.stream:
                metrics.observe("switchboard_time_to_first_token_seconds", out.first_content_at - request.started,
                                front=request.front, provider=provider)
            for kind, count in (("input", request.input_tokens), ("output", request.output_tokens), ("cached", request.cached_tokens)):
                if count:
                    metrics.inc("switchboard_tokens_total", count, provider=provider, kind=kind)
        quiet = request.path in ("/health", "/", "/metrics") or request.status == 204
        level = logging.DEBUG if quiet else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        fields = {
            "request_id": request.request_id,
            "method": request.method,
            "path": request.path,
            "model": route.requested if route else "-",
            "upstream": f"{route.provider}/{route.model}" if route else "-",
            "status": request.status or 0,
            "ms": round(elapsed * 1000),
            "in": request.input_tokens,
            "out": request.output_tokens,
            "cached": request.cached_tokens,
            "stream": request.stream,
            "fallback": request.fallback,
        }
        access_log.log(
            level,
            "%s %s model=%s->%s status=%s ms=%d in=%d out=%d stream=%s%s request_id=%s",
            request.method, request.path, fields["model"], fields["upstream"], status, fields["ms"],
            request.input_tokens, request.output_tokens, "true" if request.stream else "false",
            f" fallback={request.fallback}" if request.fallback else "", request.request_id,
            extra={"access": fields},
        )


_BUSY_BODY = dumps(anthropic_error_body(ProxyError("too many connections (MAX_CONNECTIONS); try again", status=503))).encode()
TOO_MANY_CONNECTIONS_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class Server:
    """The listening socket and the set of live client connections; handles graceful shutdown."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.gateway = Gateway(config)
        self.closing = False
        self.connections: dict[asyncio.Task, ClientConnection] = {}
        self.listener: asyncio.base_events.Server | None = None

    async def start(self, sock: socket.socket | None = None) -> int:
        """Start listening (on `sock` when given); returns the bound port (useful with PORT=0)."""
        if sock is not None:
            self.listener = await asyncio.start_server(self._accept, sock=sock)
        else:
            self.listener = await asyncio.start_server(self._accept, self.config.host, self.config.port, backlog=1024)
        return self.listener.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        metrics = self.gateway.metrics
        if len(self.connections) >= self.config.max_connections:
            # Over MAX_CONNECTIONS: a short 503 and close, before reading anything.
            with contextlib.suppress(Exception):
                writer.write(TOO_MANY_CONNECTIONS_RESPONSE)
                await asyncio.wait_for(writer.drain(), 1)
            writer.close()
            return
        connection = ClientConnection(self, reader, writer)
        task = asyncio.current_task()
        self.connections[task] = connection
        metrics.add("switchboard_open_connections", 1)
        try:
            await connection.run()
        finally:
            self.connections.pop(task, None)
            metrics.add("switchboard_open_connections", -1)

    async def shutdown(self) -> None:
        """Stop accepting, close idle connections, let busy ones finish for the grace period, then cancel."""
        self.closing = True
        if self.listener is not None:
            self.listener.close()
        for task, connection in list(self.connections.items()):
            if connection.idle:
                task.cancel()
        busy = [task for task in self.connections]
        if busy:
            log.info("waiting up to %.0fs for %d in-flight request(s)", self.config.shutdown_grace, len(busy))
            _, pending = await asyncio.wait(busy, timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self.gateway.client.aclose()


def banner(config: Config, gateway: Gateway, port: int) -> str:
    lines = [f"switchboard {VERSION} listening on http://{config.host}:{port}"]
    for name, provider in gateway.providers.items():
        if name != "echo":
            lines.append(f"  provider {name}: {provider.describe()}")
    if gateway.echo_fallback:
        lines.append("  !! NO UPSTREAM CONFIGURED: answering with the built-in echo provider.")
        lines.append("  !! To use a model set one of: " + "; ".join(PROVIDER_VARIABLES.values()))
    preferred = gateway.routing.preferred
    lines.append(f"  preferred provider: {preferred}")
    if preferred not in gateway.providers:
        lines.append(f"  !! PREFERRED_PROVIDER names {preferred}, which is not configured: set {PROVIDER_VARIABLES.get(preferred, 'its variables')}")
    if config.proxies is not None:
        lines.append(f"  outbound proxy: {config.proxies!r}")
    lines += [f"  {line}" for line in gateway.routing.describe()]
    lines.append(f"  inbound auth: {'PROXY_API_KEY required' if config.proxy_api_keys else 'none (loopback only)' if config.is_loopback() else 'none (ALLOW_ANONYMOUS=true)'}")
    return "\n".join(lines)


async def serve(server: Server, *, stop: asyncio.Event | None = None, sock: socket.socket | None = None,
                quiet: bool = False) -> None:
    """Run the server until SIGTERM/SIGINT (or `stop` is set), then shut down gracefully."""
    config = server.config
    port = await server.start(sock)
    if not quiet:
        log.info("%s", banner(config, server.gateway, port))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await server.shutdown()


# =============================================================================================
# Several worker processes (--workers N)
# =============================================================================================

WORKER_RESTART_DELAY = 1 * SECONDS
WORKER_CRASH_LOOP_LIMIT = 5  # deaths within WORKER_CRASH_WINDOW before the supervisor gives up
WORKER_CRASH_WINDOW = 30 * SECONDS
WORKER_PARENT_CHECK_INTERVAL = 1 * SECONDS


def listening_socket(config: Config, reuse_port: bool, listen: bool = True) -> socket.socket:
    """A bound TCP socket for HOST:PORT, listening unless told not to (SO_REUSEPORT when `reuse_port`)."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.host, config.port))
    if listen:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


def run_worker(config: Config, sock: socket.socket | None) -> None:
    """The body of one worker process: its own event loop, gateway and upstream pool."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sock is None:  # SO_REUSEPORT: each worker binds its own socket; the kernel spreads connections
        sock = listening_socket(config, reuse_port=True)
    supervisor = os.getppid()

    async def run() -> None:
        stop = asyncio.Event()

        async def stop_when_orphaned() -> None:
            # A supervisor killed outright (SIGKILL) cannot stop its workers: they notice and leave.
            while os.getppid() == supervisor:
                await asyncio.sleep(WORKER_PARENT_CHECK_INTERVAL)
            log.warning("worker %d: supervisor gone, stopping", os.getpid())
            stop.set()

        watchdog = asyncio.ensure_future(stop_when_orphaned())
        try:
            await serve(Server(config), sock=sock, quiet=True, stop=stop)
        finally:
            watchdog.cancel()

    code = 0
    try:
        asyncio.run(run())
    except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's code
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def supervise(config: Config, workers: int) -> int:
    """Start `workers` processes sharing HOST:PORT, restart any that dies, stop them all on SIGTERM/SIGINT.

    SO_REUSEPORT is used where the platform has it (and the port is fixed); otherwise the workers
    share one listening socket inherited from the supervisor.
    """
    reuse_port = hasattr(socket, "SO_REUSEPORT") and config.port != 0
    if reuse_port:
        # Bind without listening, only to fail here, once, with a clear message if the port is
        # taken; a listening socket here would take a share of the connections nobody accepts.
        listening_socket(config, reuse_port=True, listen=False).close()
        shared_for_workers, port = None, config.port
    else:
        shared_for_workers = listening_socket(config, reuse_port=False)
        port = shared_for_workers.getsockname()[1]
    log.info("%s", banner(config, Gateway(config), port))
    log.info("starting %d workers (%s)", workers, "SO_REUSEPORT" if shared_for_workers is None else "shared socket")
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def spawn() -> int:
        pid = os.fork()
        if pid == 0:
            run_worker(config, shared_for_workers)
        return pid

    children = {spawn() for _ in range(workers)}
    deaths: list[float] = []
    while children:
        if stopping:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + config.shutdown_grace + 10
            while children and time.monotonic() < deadline:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid:
                    children.discard(pid)
                else:
                    time.sleep(0.05)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return 0
        pid, status = os.waitpid(-1, os.WNOHANG)
        if not pid:
            time.sleep(0.1)
            continue
        children.discard(pid)
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < WORKER_CRASH_WINDOW] + [now]
        log.warning("worker %d exited (status %d); restarting it", pid, os.waitstatus_to_exitcode(status))
        if len(deaths) >= WORKER_CRASH_LOOP_LIMIT:
            log.error("workers keep dying (%d times in %.0fs): giving up", len(deaths), WORKER_CRASH_WINDOW)
            stopping = True
            continue
        time.sleep(WORKER_RESTART_DELAY)
        if not stopping:
            children.add(spawn())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard", description="Anthropic/OpenAI API gateway.")
    parser.add_argument("--host", help="address to listen on (HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="port to listen on (PORT, default 8082)")
    parser.add_argument("--env-file", metavar="PATH", help="read settings from PATH instead of ./.env")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes sharing the port (WORKERS, default 1)")
    parser.add_argument("--version", action="version", version=f"switchboard {VERSION}")
    args = parser.parse_args(argv)
    try:
        env = load_environment(args.env_file, os.environ)
        if args.host:
            env["HOST"] = args.host
        if args.port:
            env["PORT"] = args.port
        if args.workers is not None:
            env["WORKERS"] = str(args.workers)
        config = Config.from_env(env)
        if not config.is_loopback() and not config.proxy_api_keys and not config.allow_anonymous:
            raise ConfigError(
                f"HOST={config.host} is not a loopback address and PROXY_API_KEY is not set: "
                "an open relay spends your money. Set PROXY_API_KEY, or ALLOW_ANONYMOUS=true to accept it"
            )
        try:
            server = Server(config)
        except OSError as error:
            raise ConfigError(f"SSL_CERT_FILE: cannot load the CA bundle: {error}") from None
    except ConfigError as error:
        print(f"switchboard: configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(config)
    try:
        if config.workers > 1:
            if not hasattr(os, "fork"):
                print("switchboard: --workers needs a platform with fork(); use one process", file=sys.stderr)
                return 2
            return supervise(config, config.workers)
        asyncio.run(serve(server))
    except OSError as error:
        print(f"switchboard: cannot listen on {config.host}:{config.port}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
