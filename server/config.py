"""Configuration: every setting parsed once at start, from one mapping, into a frozen `Config`.

Policies:
- The mapping is the real environment over a `.env` file (real environment variables win).
- The server's own settings are parsed here; each provider module parses its own variables from
  the same mapping (upstreams/registry.py lists them), so a provider is declared in one place.
- A bad value raises `ConfigError` naming the variable; main() exits 2 with that one line.
- Unset, PREFERRED_PROVIDER is the first configured provider in registry order.
- The seed proxies' names keep working, so a user migrating keeps their `.env`: ANTHROPIC_AUTH_TOKEN
  is an inbound key beside PROXY_API_KEY, LOG_FILE_PATTERN names the rotated log files, MODEL_NAME is
  the model of a request that names none (the README's "Coming from another proxy" maps them all).
- Inbound keys may be named (`PROXY_API_KEY=alice:sk-...,ci:sk-...`; an unnamed key is `default`):
  the name is the client in the access log, the metrics, the usage ledger and its budgets.
  `ADMIN_API_KEY` keys (named `admin` unless named) also see every client's usage.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from upstreams import settings
from upstreams.outbound_proxy import ProxySettings
from upstreams.provider import Provider, ProviderDefaults
from upstreams.registry import provider_specs, spec_named
from upstreams.request_class import RequestClassRoutes
from upstreams.settings import ConfigError

__all__ = ["VERSION", "Config", "ConfigError", "load_environment", "parse_env_file"]

VERSION = "0.1.0"
SECONDS = 1.0
MIB = 1024 * 1024


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


CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True)
class InboundKey:
    """A key clients may send, and who sends it."""

    client: str  # "default" for an unnamed key
    key: str
    admin: bool = False  # sees every client's usage (ADMIN_API_KEY)

    def __repr__(self) -> str:
        return f"InboundKey({self.client!r}, admin={self.admin})"  # never the key


def _named_keys(value: str, *, default_name: str, admin: bool) -> list[InboundKey]:
    """`name:key` or `key` entries, comma-separated. A key holding a colon must be named."""
    keys = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        name, colon, key = entry.partition(":")
        if colon and CLIENT_NAME.fullmatch(name) and key:
            keys.append(InboundKey(name, key, admin))
        else:
            keys.append(InboundKey(default_name, entry, admin))
    return keys


def _inbound_keys(env: Mapping[str, str]) -> tuple[InboundKey, ...]:
    """PROXY_API_KEY and ADMIN_API_KEY (comma-separated, optionally named), and ANTHROPIC_AUTH_TOKEN
    (one token, as seed 000 has it)."""
    keys = _named_keys(env.get("PROXY_API_KEY", ""), default_name="default", admin=False)
    token = settings.text(env, "ANTHROPIC_AUTH_TOKEN")
    if token and token not in {key.key for key in keys}:
        keys.append(InboundKey("default", token))
    keys += _named_keys(env.get("ADMIN_API_KEY", ""), default_name="admin", admin=True)
    return tuple(keys)


@dataclass(frozen=True)
class TokenBudgets:
    """CLIENT_DAILY_TOKEN_LIMIT: tokens a client may use per UTC day, for all clients and per client."""

    everyone: int | None = None
    per_client: dict[str, int] = field(default_factory=dict)

    def limit_for(self, client: str) -> int | None:
        return self.per_client.get(client, self.everyone)

    def any(self) -> bool:
        return self.everyone is not None or bool(self.per_client)


def _token_budgets(env: Mapping[str, str]) -> TokenBudgets:
    """`2000000` (every client), `alice=2000000,ci=500000` (those clients), or both."""
    raw = settings.text(env, "CLIENT_DAILY_TOKEN_LIMIT") or ""
    everyone, per_client = None, {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, equals, number = entry.rpartition("=")
        if not number.strip().isdigit() or (equals and not CLIENT_NAME.fullmatch(name.strip())):
            raise ConfigError(f"CLIENT_DAILY_TOKEN_LIMIT entry {entry!r} is not a token count or client=count")
        if equals:
            per_client[name.strip()] = int(number)
        else:
            everyone = int(number)
    return TokenBudgets(everyone, per_client)


def _log_file_pattern(env: Mapping[str, str]) -> str | None:
    pattern = settings.text(env, "LOG_FILE_PATTERN")
    if pattern is None:
        return None
    if not settings.text(env, "LOG_FILE"):
        raise ConfigError("LOG_FILE_PATTERN needs LOG_FILE: the file written today, renamed by the pattern at midnight")
    if "%" not in pattern:
        raise ConfigError(f"LOG_FILE_PATTERN={pattern!r} has no strftime placeholder (such as %Y%m%d): every day would overwrite the last")
    return pattern


def _providers(env: Mapping[str, str], defaults: ProviderDefaults) -> dict[str, Provider]:
    """Every provider the settings configure, built by its own module; built-in ones first."""
    specs = sorted(provider_specs(), key=lambda spec: not spec.builtin)
    return {spec.name: spec.from_env(env, defaults) for spec in specs if spec.builtin or spec.configured(env, defaults)}


@dataclass(frozen=True)
class Config:
    """Every setting, parsed once at start. Build it with `Config.from_env`."""

    host: str = "127.0.0.1"
    port: int = 8082
    log_level: str = "INFO"
    log_file: str | None = None
    log_file_backup_count: int = 7
    log_file_pattern: str | None = None  # LOG_FILE_PATTERN: strftime name of the rotated files
    inbound_keys: tuple[InboundKey, ...] = ()  # PROXY_API_KEY, ADMIN_API_KEY entries and ANTHROPIC_AUTH_TOKEN
    default_model: str | None = None  # MODEL_NAME: for a request without a model
    allow_anonymous: bool = False
    # Providers, each built by its module from the settings, by name (the built-in echo included).
    providers: dict[str, Provider] = field(default_factory=dict)
    preferred_provider: str = "openai"
    big_model: str | None = "gpt-4.1"
    middle_model: str | None = "gpt-4.1"
    small_model: str | None = "gpt-4.1-mini"
    # BIG_MODEL/MIDDLE_MODEL/SMALL_MODEL set but not used (the preferred provider takes Claude names).
    ignored_tier_settings: tuple[str, ...] = ()
    model_aliases: dict[str, str] = field(default_factory=dict)
    proxies: ProxySettings | None = None
    max_request_bytes: int = 32 * MIB
    max_response_bytes: int = 64 * MIB  # an upstream's non-stream answer larger than this is a 502
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
    idle_first_byte_timeout: float = 10 * SECONDS  # a new connection's first byte; 0 in the settings means this default
    metrics_public: bool = False
    log_format: str = "text"
    instance_id: str = ""
    workers: int = 1
    shutdown_grace: float = 30 * SECONDS
    ssl_cert_file: str | None = None
    route_classes: RequestClassRoutes = field(default_factory=RequestClassRoutes)  # ROUTE_*
    usage_db: str | None = None  # USAGE_DB as given (None: the default file; "off": no ledger)
    token_budgets: TokenBudgets = field(default_factory=TokenBudgets)  # CLIENT_DAILY_TOKEN_LIMIT
    dashboard: bool = True  # DASHBOARD=off removes /dashboard
    # Not a setting: the private directory where the workers of one supervisor (server/workers.py)
    # share their dashboard's live numbers; None when one process serves.
    live_share_dir: str | None = None

    @property
    def proxy_api_keys(self) -> tuple[str, ...]:
        """Every inbound key (admin keys included): a request offering one of them is let in."""
        return tuple(key.key for key in self.inbound_keys)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Parse settings from a mapping of environment variables; raises ConfigError naming the variable."""
        port = settings.integer(env, "PORT", 8082, minimum=0, maximum=65535)
        log_level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"LOG_LEVEL={log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")

        def text(name: str) -> str | None:
            return settings.text(env, name)

        requested = (text("PREFERRED_PROVIDER") or "").lower()
        requested_spec = spec_named(requested) if requested else None
        if requested and requested_spec is None:
            names = [name for spec in provider_specs() for name in (spec.name, *spec.aliases)]
            raise ConfigError(f"PREFERRED_PROVIDER={requested!r} is not one of {', '.join(names)}")
        defaults = ProviderDefaults(
            preferred=requested_spec.name if requested_spec else "",
            max_tokens_limit=settings.integer(env, "MAX_TOKENS_LIMIT", 0, minimum=0) or None,
            default_max_tokens=settings.integer(env, "DEFAULT_MAX_TOKENS", 16384, minimum=1),
            system_prompt=env.get("SYSTEM_PROMPT") or None,
            quota_cooldown=settings.seconds(env, "KEY_QUOTA_COOLDOWN", 3600.0),
            rate_limit_cooldown=settings.seconds(env, "KEY_RATE_LIMIT_COOLDOWN", 10.0),
        )
        providers = _providers(env, defaults)
        # Unset, the preferred provider is the first one configured, else the first in the registry.
        specs = provider_specs()
        configured = [spec for spec in specs if spec.name in providers and not spec.builtin]
        preferred_spec = requested_spec or (configured[0] if configured else specs[0])
        try:
            proxies = ProxySettings.from_env(env)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        big_default, small_default = preferred_spec.tier_defaults
        big = text("BIG_MODEL") or big_default
        middle = text("MIDDLE_MODEL") or big
        small = text("SMALL_MODEL") or small_default
        ignored_tiers: tuple[str, ...] = ()
        if preferred_spec.claude_names:
            # Claude names are right as they are on Anthropic: passthrough means no remapping (seed 000's
            # promise). A BIG_MODEL=gpt-4.1 left from another provider's .env must not reach Anthropic.
            ignored_tiers = tuple(name for name in ("BIG_MODEL", "MIDDLE_MODEL", "SMALL_MODEL") if text(name))
            big = middle = small = None
        budgets = _token_budgets(env)
        if budgets.any() and (text("USAGE_DB") or "").lower() == "off":
            raise ConfigError("CLIENT_DAILY_TOKEN_LIMIT needs the usage ledger, and USAGE_DB is off")
        ssl_cert_file = text("SSL_CERT_FILE")
        if ssl_cert_file and not os.path.isfile(ssl_cert_file):
            raise ConfigError(f"SSL_CERT_FILE={ssl_cert_file!r} does not exist")
        return cls(
            host=(env.get("HOST") or "127.0.0.1").strip(),
            port=port,
            log_level=log_level,
            log_file=text("LOG_FILE"),
            log_file_backup_count=settings.integer(env, "LOG_FILE_BACKUP_COUNT", 7),
            log_file_pattern=_log_file_pattern(env),
            inbound_keys=_inbound_keys(env),
            default_model=text("MODEL_NAME"),
            allow_anonymous=settings.boolean(env, "ALLOW_ANONYMOUS", False),
            providers=providers,
            preferred_provider=preferred_spec.name,
            big_model=big,
            middle_model=middle,
            small_model=small,
            ignored_tier_settings=ignored_tiers,
            model_aliases=_aliases(env),
            proxies=proxies,
            max_request_bytes=settings.integer(env, "MAX_REQUEST_BYTES", 32 * MIB, minimum=1024),
            max_response_bytes=settings.integer(env, "MAX_RESPONSE_BYTES", 64 * MIB, minimum=64 * 1024),
            connect_timeout=settings.seconds(env, "CONNECT_TIMEOUT", 10 * SECONDS) or 10 * SECONDS,
            read_timeout=settings.seconds(env, "READ_TIMEOUT", 300 * SECONDS) or 300 * SECONDS,
            ping_interval=settings.seconds(env, "PING_INTERVAL", 10 * SECONDS) or 10 * SECONDS,
            request_timeout=settings.seconds(env, "REQUEST_TIMEOUT", 0.0),
            max_retries=settings.integer(env, "MAX_RETRIES", 2, maximum=10),
            fallback_models=tuple(m.strip() for m in env.get("FALLBACK_MODELS", "").split(",") if m.strip()),
            max_concurrent_upstream=settings.integer(env, "MAX_CONCURRENT_UPSTREAM", 64),
            upstream_queue_timeout=settings.seconds(env, "UPSTREAM_QUEUE_TIMEOUT", 30 * SECONDS),
            max_connections=settings.integer(env, "MAX_CONNECTIONS", 1024, minimum=1),
            max_header_bytes=settings.integer(env, "MAX_HEADER_BYTES", 64 * 1024, minimum=1024),
            max_headers=settings.integer(env, "MAX_HEADERS", 100, minimum=8),
            header_timeout=settings.seconds(env, "HEADER_TIMEOUT", 30 * SECONDS) or 30 * SECONDS,
            body_timeout=settings.seconds(env, "BODY_TIMEOUT", 120 * SECONDS) or 120 * SECONDS,
            idle_first_byte_timeout=settings.seconds(env, "IDLE_FIRST_BYTE_TIMEOUT", 10 * SECONDS) or 10 * SECONDS,
            metrics_public=settings.boolean(env, "METRICS_PUBLIC", False),
            log_format=settings.choice(env, "LOG_FORMAT", ("text", "json")),
            # Shared by the workers of one server (set by the supervisor), so a loop through any of them is seen.
            instance_id=text("SWITCHBOARD_INSTANCE_ID") or os.urandom(8).hex(),
            workers=settings.integer(env, "WORKERS", 1, minimum=1, maximum=64),
            shutdown_grace=settings.seconds(env, "SHUTDOWN_GRACE", 30 * SECONDS),
            ssl_cert_file=ssl_cert_file,
            route_classes=RequestClassRoutes.from_env(env),
            usage_db=text("USAGE_DB"),
            token_budgets=budgets,
            dashboard=(text("DASHBOARD") or "on").lower() not in ("off", "false", "0", "no"),
        )

    def secrets(self) -> list[str]:
        """Every configured secret value, for redaction."""
        values = list(self.proxy_api_keys)
        for provider in self.providers.values():
            values += provider.secrets()
        if self.proxies is not None:
            for url in (self.proxies.https_proxy, self.proxies.http_proxy):
                values.append(urlsplit(url).password if url else None)
        return [value for value in values if value]

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
