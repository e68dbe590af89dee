"""Azure OpenAI: deployments behind `{AZURE_OPENAI_ENDPOINT}/openai/...` with the `api-key` header.

Policies (PROTOCOLS.md 6):
- The model name a request routes to is the deployment name.
- Two URL forms: the classic `/openai/deployments/{deployment}/chat/completions?api-version=...`
  (default, `AZURE_API_VERSION` default 2024-10-21, the first GA version with
  `stream_options.include_usage`), and the newer `/openai/v1/chat/completions` with the deployment
  in the body's `model`, chosen with `AZURE_API_VERSION=v1` (or an endpoint already ending in
  `/openai/v1`). Reasoning deployments need 2024-12-01-preview or later on the classic form.
- The Responses API is always `/openai/v1/responses` (the deployment in the body's `model`), chosen
  as for OpenAI (`AZURE_WIRE_API`, upstreams/openai.py): under `auto`, Responses-only deployments
  (codex, -pro) and Responses clients' requests go there.
- Content filtering: a filtered prompt is Azure's HTTP 400 `content_filter`, passed on as a 400 with
  Azure's message; a filtered completion (`finish_reason: content_filter`) becomes Anthropic's
  `refusal`; the `prompt_filter_results` frames with empty `choices` are skipped by the translator.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from upstreams import settings
from upstreams.http import HTTPClient
from upstreams.keys import parse_keys
from upstreams.openai import OpenAICompatibleProvider, wire_api_setting
from upstreams.provider import ProviderDefaults, ProviderSpec

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAICompatibleProvider):
    def __init__(self, endpoint: str, api_key: str | None, api_version: str, *, max_tokens_limit: int | None = None,
                 wire_api: str = "chat") -> None:
        endpoint = endpoint.rstrip("/")
        self.v1 = api_version.lower() == "v1" or endpoint.endswith("/openai/v1")
        if endpoint.endswith("/openai/v1"):
            endpoint = endpoint[: -len("/openai/v1")]
        # Azure rejects unknown message fields whatever its host name (custom domains, API gateways).
        super().__init__("azure", endpoint, api_key, max_tokens_limit=max_tokens_limit, reasoning_content=False,
                         wire_api=wire_api)
        self.api_version = api_version
        self.serves_responses_clients = True  # every Azure OpenAI resource has /openai/v1/responses

    def describe(self) -> str:
        form = "v1 API" if self.v1 else f"api-version {self.api_version}"
        wire = "" if self.wire_api == "chat" else f", wire API {self.wire_api}"
        return f"{self.base_url} ({form}{wire})"

    def chat_url(self, model: str) -> str:
        if self.v1:
            return f"{self.base_url}/openai/v1/chat/completions"
        deployment = quote(model, safe="")
        return f"{self.base_url}/openai/deployments/{deployment}/chat/completions?api-version={quote(self.api_version, safe='')}"

    def responses_url(self, model: str) -> str:
        return f"{self.base_url}/openai/v1/responses"

    async def auth_headers(self, client: HTTPClient, api_key: str | None) -> list[tuple[str, str]]:
        return [("api-key", api_key)] if api_key else []


def _configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    return bool(settings.text(env, "AZURE_OPENAI_ENDPOINT"))


def _from_env(env: Mapping[str, str], defaults: ProviderDefaults) -> AzureOpenAIProvider:
    keys = parse_keys(settings.text(env, "AZURE_OPENAI_API_KEY"))
    if not keys:
        raise settings.ConfigError("AZURE_OPENAI_API_KEY is required with AZURE_OPENAI_ENDPOINT")
    provider = AzureOpenAIProvider(
        settings.url(env, "AZURE_OPENAI_ENDPOINT", ""),
        keys[0],
        settings.text(env, "AZURE_API_VERSION") or DEFAULT_API_VERSION,
        max_tokens_limit=defaults.max_tokens_limit,
        wire_api=wire_api_setting(env, "AZURE_WIRE_API"),
    )
    provider.use_keys(keys, defaults)
    return provider


SPEC = ProviderSpec(
    name="azure",
    dialect="chat",
    variables="AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (and AZURE_API_VERSION, AZURE_WIRE_API)",
    configured=_configured,
    from_env=_from_env,
    tier_defaults=("gpt-4.1", "gpt-4.1-mini"),
)
