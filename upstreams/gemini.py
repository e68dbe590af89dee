"""Gemini through Google's OpenAI-compatible endpoint: AI Studio (API key) or Vertex AI (OAuth).

Policies (PROTOCOLS.md 5):
- AI Studio: `{GEMINI_BASE_URL}/chat/completions` with `Authorization: Bearer <GEMINI_API_KEY>`.
- Vertex AI (`USE_VERTEX_AUTH=true`): the regional OpenAI-compatible base built from `VERTEX_PROJECT`
  and `VERTEX_LOCATION` (or `VERTEX_BASE_URL`), an OAuth access token from Application Default
  Credentials (upstreams/google_auth.py), `x-goog-user-project` for user credentials with a quota
  project, and model names with the `google/` publisher prefix.
- Gemini rejects fields and JSON-schema keywords that OpenAI accepts: `translate.gemini` forwards an
  allowlist of fields and cleans tool schemas. Thought signatures ride in the tool_use ids through
  the Anthropic client, so multi-turn tool use works with no server-side state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from translate.anthropic_to_chat_request import ChatTarget
from upstreams import settings
from upstreams.http import HTTPClient
from upstreams.keys import parse_keys
from upstreams.openai import OpenAICompatibleProvider
from upstreams.provider import ProviderDefaults, ProviderSpec

if TYPE_CHECKING:
    from upstreams.google_auth import GoogleCredentials

AI_STUDIO_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai"
# Gemini 2.5 models take up to 65536 output tokens.
GEMINI_OUTPUT_CAP = 65536


def vertex_base_url(project: str, location: str) -> str:
    """The regional OpenAI-compatible base URL of Vertex AI (`global` has no regional host)."""
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}/v1/projects/{project}/locations/{location}/endpoints/openapi"


class GeminiProvider(OpenAICompatibleProvider):
    well_known_models = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")
    rewrites_requests = True

    def __init__(self, base_url: str, api_key: str | None, *, credentials: GoogleCredentials | None = None,
                 max_tokens_limit: int | None = None) -> None:
        # Imported here, not at the top: only a configured Gemini carries the schema cleaner.
        from translate.gemini import prepare_gemini_request

        super().__init__("gemini", base_url, api_key, max_tokens_limit=max_tokens_limit)
        self.credentials = credentials
        self.secrets_change = credentials is not None  # a minted token: see secrets()
        self._prepare = prepare_gemini_request

    def describe(self) -> str:
        if self.credentials is not None:
            return f"{self.base_url} (Vertex AI, {self.credentials.source})"
        return self.base_url

    def secrets(self) -> list[str]:
        # The access token changes hourly: `secrets_change` makes the gateway ask again on use.
        token = self.credentials.current_token() if self.credentials is not None else None
        return [value for value in (self.api_key, token) if value]

    def target(self, model: str) -> ChatTarget:
        caps = [cap for cap in (GEMINI_OUTPUT_CAP, self.max_tokens_limit) if cap]
        return ChatTarget(
            model=self.upstream_model(model),
            reasoning=False,
            max_tokens_limit=min(caps),
            send_user=False,
            reasoning_history_field=None,
            # Thought signatures (and <thought> tags) ride through Anthropic clients: translate/gemini.py.
            thought_signatures=True,
            # Gemini sends each tool call whole; buffering also catches a signature sent in a later delta.
            buffer_tool_calls=True,
            max_stop_sequences=5,
        )

    def upstream_model(self, model: str) -> str:
        # Vertex wants the publisher prefix; AI Studio accepts bare names (and "models/...").
        if self.credentials is not None and "/" not in model:
            return f"google/{model}"
        return model

    def prepare(self, body: dict) -> dict:
        return self._prepare(body)

    async def auth_headers(self, client: HTTPClient, api_key: str | None) -> list[tuple[str, str]]:
        if self.credentials is None:
            return [("authorization", f"Bearer {api_key}")] if api_key else []
        headers = [("authorization", f"Bearer {await self.credentials.token(client)}")]
        if self.credentials.quota_project:
            headers.append(("x-goog-user-project", self.credentials.quota_project))
        return headers


def _configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    return bool(settings.text(env, "GEMINI_API_KEY")) or settings.boolean(env, "USE_VERTEX_AUTH", False)


def _from_env(env: Mapping[str, str], defaults: ProviderDefaults) -> GeminiProvider:
    if not settings.boolean(env, "USE_VERTEX_AUTH", False):
        base_url = settings.url(env, "GEMINI_BASE_URL", AI_STUDIO_BASE_URL)
        provider = GeminiProvider(base_url, None, max_tokens_limit=defaults.max_tokens_limit)
        provider.use_keys(parse_keys(settings.text(env, "GEMINI_API_KEY")), defaults)
        return provider
    # Vertex AI only: the credentials module (RS256 signing, ADC discovery) is loaded when used.
    from upstreams.google_auth import GoogleAuthError, load_credentials

    try:
        credentials = load_credentials(env)
    except GoogleAuthError as error:
        raise settings.ConfigError(f"USE_VERTEX_AUTH=true but no usable Google credentials: {error}") from None
    explicit_base = settings.text(env, "VERTEX_BASE_URL")
    project = settings.text(env, "VERTEX_PROJECT") or credentials.project_id
    if not project and not explicit_base:
        raise settings.ConfigError("VERTEX_PROJECT is required with USE_VERTEX_AUTH=true (or set VERTEX_BASE_URL)")
    if explicit_base:
        base_url = settings.url(env, "VERTEX_BASE_URL", "")
    else:
        base_url = vertex_base_url(project, settings.text(env, "VERTEX_LOCATION") or "us-central1")
    return GeminiProvider(base_url, None, credentials=credentials, max_tokens_limit=defaults.max_tokens_limit)


SPEC = ProviderSpec(
    name="gemini",
    dialect="chat",
    variables="GEMINI_API_KEY, or USE_VERTEX_AUTH=true with VERTEX_PROJECT and VERTEX_LOCATION",
    configured=_configured,
    from_env=_from_env,
    aliases=("google",),
    tier_defaults=("gemini-2.5-pro", "gemini-2.5-flash"),
)
