"""Azure OpenAI: deployments behind `{AZURE_OPENAI_ENDPOINT}/openai/...` with the `api-key` header.

Policies (PROTOCOLS.md 6):
- The model name a request routes to is the deployment name.
- Two URL forms: the classic `/openai/deployments/{deployment}/chat/completions?api-version=...`
  (default, `AZURE_API_VERSION` default 2024-10-21, the first GA version with
  `stream_options.include_usage`), and the newer `/openai/v1/chat/completions` with the deployment
  in the body's `model`, chosen with `AZURE_API_VERSION=v1` (or an endpoint already ending in
  `/openai/v1`). Reasoning deployments need 2024-12-01-preview or later on the classic form.
- Content filtering: a filtered prompt is Azure's HTTP 400 `content_filter`, passed on as a 400 with
  Azure's message; a filtered completion (`finish_reason: content_filter`) becomes Anthropic's
  `refusal`; the `prompt_filter_results` frames with empty `choices` are skipped by the translator.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from upstreams import settings
from upstreams.http import HTTPClient
from upstreams.openai import OpenAICompatibleProvider
from upstreams.provider import ProviderDefaults, ProviderSpec

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAICompatibleProvider):
    def __init__(self, endpoint: str, api_key: str | None, api_version: str, *, max_tokens_limit: int | None = None) -> None:
        endpoint = endpoint.rstrip("/")
        self.v1 = api_version.lower() == "v1" or endpoint.endswith("/openai/v1")
        if endpoint.endswith("/openai/v1"):
            endpoint = endpoint[: -len("/openai/v1")]
        # Azure rejects unknown message fields whatever its host name (custom domains, API gateways).
        super().__init__("azure", endpoint, api_key, max_tokens_limit=max_tokens_limit, reasoning_content=False)
        self.api_version = api_version

    def describe(self) -> str:
        form = "v1 API" if self.v1 else f"api-version {self.api_version}"
        return f"{self.base_url} ({form})"

    def chat_url(self, model: str) -> str:
        if self.v1:
            return f"{self.base_url}/openai/v1/chat/completions"
        deployment = quote(model, safe="")
        return f"{self.base_url}/openai/deployments/{deployment}/chat/completions?api-version={quote(self.api_version, safe='')}"

    async def auth_headers(self, client: HTTPClient) -> list[tuple[str, str]]:
        return [("api-key", self.api_key)] if self.api_key else []


def _configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    return bool(settings.text(env, "AZURE_OPENAI_ENDPOINT"))


def _from_env(env: Mapping[str, str], defaults: ProviderDefaults) -> AzureOpenAIProvider:
    api_key = settings.text(env, "AZURE_OPENAI_API_KEY")
    if not api_key:
        raise settings.ConfigError("AZURE_OPENAI_API_KEY is required with AZURE_OPENAI_ENDPOINT")
    return AzureOpenAIProvider(
        settings.url(env, "AZURE_OPENAI_ENDPOINT", ""),
        api_key,
        settings.text(env, "AZURE_API_VERSION") or DEFAULT_API_VERSION,
        max_tokens_limit=defaults.max_tokens_limit,
    )


SPEC = ProviderSpec(
    name="azure",
    dialect="chat",
    variables="AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (and AZURE_API_VERSION)",
    configured=_configured,
    from_env=_from_env,
    tier_defaults=("gpt-4.1", "gpt-4.1-mini"),
)
