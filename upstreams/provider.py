"""What a provider is: the `Provider` interface every upstream implements, and its `ProviderSpec`.

A provider module declares everything about itself in one place, its `SPEC`: name, dialect,
model-name prefixes, tier defaults, the variables that configure it (read by the module itself from
the one settings mapping), its secrets for redaction and its help text. upstreams/registry.py lists
the modules; nothing else in the program names a provider.

Policies:
- A provider opens no sockets: `send` goes through the shared pooled client it is handed.
- A provider speaks one dialect (`chat` or `anthropic`), or, like OpenAI, chooses per model and
  front between two (`dialect_for`: Chat Completions, or the Responses API for the models that
  answer only there). Its quirks are small pure steps on an
  already-translated body (`prepare`) or on the target the translator shapes the body for
  (`target`), so the dialect translators stay provider-neutral.
- A module imports its heavy dependencies (Google credentials, Gemini schema cleaning) only when it
  is configured, so an idle gateway does not carry what it does not use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from upstreams.keys import KeyPool


@dataclass(frozen=True)
class ProviderDefaults:
    """Settings that are not any one provider's but that every provider shapes requests with."""

    preferred: str = ""  # PREFERRED_PROVIDER as given (some providers are configured by it alone)
    max_tokens_limit: int | None = None  # MAX_TOKENS_LIMIT
    default_max_tokens: int = 16384  # DEFAULT_MAX_TOKENS
    system_prompt: str | None = None  # SYSTEM_PROMPT
    quota_cooldown: float = 3600.0  # KEY_QUOTA_COOLDOWN: how long a key whose quota is spent rests
    rate_limit_cooldown: float = 10.0  # KEY_RATE_LIMIT_COOLDOWN: a rate-limited key's rest without retry-after


class Provider:
    """The interface of an upstream, with the defaults most providers keep.

    The server calls: `target(model)` for the translator, `upstream_model`, `prepare(body)`,
    `send(...)`, and `describe()` / `secrets()` at start-up.
    """

    name: str = ""
    dialect: str = ""  # "chat" or "anthropic"
    base_url: str = ""
    api_key: str | None = None  # the first key when there are several
    # Several keys (a comma-separated list): spread over and rested when refused (upstreams/keys.py).
    # None with one key, which behaves as it always did: every answer goes to the client as it came.
    keys: KeyPool | None = None
    # Model names listed by GET /v1/models.
    well_known_models: tuple[str, ...] = ()
    # True when `prepare` changes requests: then same-dialect (passthrough) requests go through it too.
    rewrites_requests = False
    # True when `secrets()` changes while the server runs (a minted access token): asked again on use.
    secrets_change = False

    def describe(self) -> str:
        """One line for the start-up banner (never a secret)."""
        return self.base_url

    def secrets(self) -> list[str]:
        """Every secret this provider holds, so logs and error messages can hide them."""
        if self.keys is not None:
            return self.keys.secrets()
        return [self.api_key] if self.api_key else []

    def use_keys(self, keys: tuple[str, ...], defaults: ProviderDefaults) -> None:
        """Take the keys of a comma-separated key setting: the first is `api_key`; two or more make a pool."""
        self.api_key = keys[0] if keys else None
        self.keys = KeyPool(keys, provider=self.name, quota_cooldown=defaults.quota_cooldown,
                            rate_limit_cooldown=defaults.rate_limit_cooldown) if len(keys) > 1 else None

    def target(self, model: str) -> object:
        """What the translator into this provider's dialect should shape a request for `model` to."""
        raise NotImplementedError

    def dialect_for(self, model: str, front: str) -> str:
        """The dialect a request for `model` from a client of the `front` dialect goes upstream in."""
        return self.dialect

    def target_for(self, model: str, dialect: str) -> object:
        """`target(model)` for a request going upstream in `dialect` (one `dialect_for` chose)."""
        if dialect != self.dialect:
            raise ValueError(f"provider {self.name} does not speak the {dialect} dialect")
        return self.target(model)

    def upstream_model(self, model: str) -> str:
        """The model name as this provider wants it in the body."""
        return model

    def prepare(self, body: dict) -> dict:
        """This provider's quirks, applied to a request body already in its dialect."""
        return body

    async def send(self, client, body: bytes, *, model: str, extra_headers=(), client_headers=None, path: str | None = None,
                   dialect: str | None = None, api_key: str | None = None):
        """POST a serialised request (in `dialect`, default the provider's own; with `api_key`, default
        `self.api_key`); returns the response once its head arrived (an UpstreamResponse)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the rest of the program knows about one provider, declared in its module."""

    name: str
    dialect: str
    variables: str  # help text: what to set to configure it
    # Does this settings mapping configure the provider? (defaults.preferred is PREFERRED_PROVIDER as given.)
    configured: Callable[[Mapping[str, str], ProviderDefaults], bool]
    # Build it from the settings; raises upstreams.settings.ConfigError naming a bad variable.
    from_env: Callable[[Mapping[str, str], ProviderDefaults], Provider]
    aliases: tuple[str, ...] = ()  # other PREFERRED_PROVIDER names ("google" for gemini)
    prefixes: tuple[str, ...] = field(default=())  # `prefix/model` names routed here (default: the name)
    # (BIG_MODEL, SMALL_MODEL) when this provider is preferred and they are unset; None keeps the
    # requested name (Claude names are right as they are on Anthropic).
    tier_defaults: tuple[str | None, str | None] = (None, None)
    # Built in (echo): always there, never counted as a configured upstream, preferred when none is.
    builtin: bool = False
    # Its model names are Claude's (Anthropic): requests keep the name they ask for, the tiers
    # (BIG_MODEL...) do not apply, and nothing is remapped unless MODEL_ALIASES says so.
    claude_names: bool = False

    @property
    def model_prefixes(self) -> tuple[str, ...]:
        return self.prefixes or (self.name,)
