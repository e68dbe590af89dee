"""Anthropic provider: `{ANTHROPIC_BASE_URL}/v1/messages` with `x-api-key` and `anthropic-version`.

Policies:
- Passthrough (an Anthropic client on this provider) forwards the client's `anthropic-version` and
  `anthropic-beta` headers and nothing else of the client's: a client can never choose the upstream
  URL or inject other headers.
- Translated traffic (an OpenAI client) sends `anthropic-version: 2023-06-01`.
- Claude model names are this provider's own: the haiku/sonnet/opus tiers never remap them
  (`claude_names` in the SPEC); only MODEL_ALIASES does, when the user asks for it.
- Seed 004's `API_KEY` and `BASE_URL` configure it when ANTHROPIC_API_KEY is unset.
"""

from __future__ import annotations

from collections.abc import Mapping

from translate.chat_to_anthropic_request import AnthropicTarget
from upstreams import settings
from upstreams.http import HTTPClient, UpstreamResponse
from upstreams.keys import parse_keys
from upstreams.openai import known_output_cap
from upstreams.provider import Provider, ProviderDefaults, ProviderSpec

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
# Older models with output caps below DEFAULT_MAX_TOKENS; current (4.x) models take 32000 or more.
CLAUDE_OUTPUT_CAPS = {
    "claude-3-haiku": 4096,
    "claude-3-opus": 4096,
    "claude-3-sonnet": 4096,
    "claude-3-5-haiku": 8192,
    "claude-3-5-sonnet": 8192,
}
FORWARDED_CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")


class AnthropicProvider(Provider):
    name = "anthropic"
    dialect = "anthropic"
    well_known_models = ("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5")

    def __init__(self, base_url: str, api_key: str | None, *, default_max_tokens: int, max_tokens_limit: int | None,
                 system_prompt: str | None, auto_cache: bool) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.default_max_tokens = default_max_tokens
        self.max_tokens_limit = max_tokens_limit
        self.system_prompt = system_prompt
        self.auto_cache = auto_cache

    def describe(self) -> str:
        note = ""
        if self.api_key and not self.api_key.startswith("sk-ant-") and self.base_url == DEFAULT_BASE_URL:
            # claude-code-proxy (seed 001) used ANTHROPIC_API_KEY for the key its clients must send.
            note = (" (!! this ANTHROPIC_API_KEY does not look like an Anthropic key; if it is the key clients"
                    " must send to this proxy, set PROXY_API_KEY to it instead)")
        return self.base_url + note

    def target(self, model: str) -> AnthropicTarget:
        """How the OpenAI request translator should shape a request for `model`."""
        caps = [cap for cap in (known_output_cap(model, CLAUDE_OUTPUT_CAPS), self.max_tokens_limit) if cap]
        limit = min(caps) if caps else None
        return AnthropicTarget(
            model=model,
            default_max_tokens=min(self.default_max_tokens, limit or self.default_max_tokens),
            max_tokens_limit=limit,
            system_prompt=self.system_prompt,
            auto_cache=self.auto_cache,
        )

    def headers(self, client_headers: dict[str, str] | None = None, api_key: str | None = None) -> list[tuple[str, str]]:
        chosen = {"anthropic-version": ANTHROPIC_VERSION}
        for name in FORWARDED_CLIENT_HEADERS:
            value = (client_headers or {}).get(name)
            if value:
                chosen[name] = value
        headers = [("content-type", "application/json"), *chosen.items()]
        key = api_key or self.api_key
        if key:
            headers.append(("x-api-key", key))
        return headers

    async def send(self, client: HTTPClient, body: bytes, *, model: str, extra_headers: list[tuple[str, str]] = (),
                   client_headers: dict[str, str] | None = None, path: str | None = None,
                   dialect: str | None = None, api_key: str | None = None) -> UpstreamResponse:
        """POST a Messages (or count_tokens, with `path`) body; returns once the response head arrived."""
        headers = self.headers(client_headers, api_key) + list(extra_headers)
        return await client.request("POST", self.base_url + (path or "/v1/messages"), headers, body)


def _key_variable(env: Mapping[str, str]) -> str | None:
    """The variable holding the key: ours, else seed 004's `API_KEY` (its proxy spoke only to Anthropic)."""
    for name in ("ANTHROPIC_API_KEY", "API_KEY"):
        if settings.text(env, name):
            return name
    return None


def _configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    return _key_variable(env) is not None


def _from_env(env: Mapping[str, str], defaults: ProviderDefaults) -> AnthropicProvider:
    key_variable = _key_variable(env)
    # Seed 004's BASE_URL goes with its API_KEY; with our own key variable, only ours is read.
    url_variable = "BASE_URL" if key_variable == "API_KEY" and settings.text(env, "BASE_URL") else "ANTHROPIC_BASE_URL"
    keys = parse_keys(settings.text(env, key_variable)) if key_variable else ()
    provider = AnthropicProvider(
        settings.url(env, url_variable, DEFAULT_BASE_URL),
        keys[0] if keys else None,
        default_max_tokens=defaults.default_max_tokens,
        max_tokens_limit=defaults.max_tokens_limit,
        system_prompt=defaults.system_prompt,
        auto_cache=settings.boolean(env, "ANTHROPIC_AUTO_CACHE", True),
    )
    provider.use_keys(keys, defaults)
    return provider


SPEC = ProviderSpec(
    name="anthropic",
    dialect="anthropic",
    variables="ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for another Anthropic-compatible server)",
    claude_names=True,
    configured=_configured,
    from_env=_from_env,
)
