"""OpenAI-compatible provider: OpenAI itself, vLLM, DeepSeek, OpenRouter, LM Studio, ...

The base for every provider of the `chat` dialect (Chat Completions): a provider knows its URL, its
auth headers and its quirks, and sends through the shared pooled client. It opens no sockets of its
own. Its `SPEC` at the bottom declares it to the registry (upstreams/provider.py says what that holds).

Policies:
- `{base_url}/chat/completions`, `Authorization: Bearer <key>` when a key is set (servers such as
  vLLM and Ollama take none).
- Output caps differ per model (gpt-4o stops at 16384 tokens while Claude Code asks for 32000 or
  64000): a small table of known caps is applied, then the user's `MAX_TOKENS_LIMIT`; nothing is
  clamped to an arbitrary small number.
- Reasoning-family models (o1/o3/o4/gpt-5) take `max_completion_tokens` and no sampling knobs; the
  translator decides that from `ChatTarget.reasoning`.
- Thinking from the history goes back as the assistant's `reasoning_content` only where it is
  accepted: DeepSeek, Kimi and vLLM need it on tool-call turns, while api.openai.com, Azure and
  Gemini's endpoint reject an unknown message field with a 400 (a session moved from Claude to GPT
  would die on its next turn). OPENAI_REASONING_CONTENT=auto decides by the host; on/off force it.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from translate.anthropic_to_chat_request import ChatTarget, is_reasoning_model
from upstreams import settings
from upstreams.http import HTTPClient, UpstreamResponse
from upstreams.provider import Provider, ProviderDefaults, ProviderSpec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Hosts whose Chat Completions reject unknown message fields such as `reasoning_content`.
STRICT_MESSAGE_HOSTS = ("api.openai.com", ".openai.azure.com", ".azure.com", "generativelanguage.googleapis.com")

# Known completion-token caps, matched by the longest prefix of the model name.
KNOWN_OUTPUT_CAPS = {
    "gpt-4o": 16384,
    "gpt-4o-mini": 16384,
    "gpt-4.1": 32768,
    "gpt-4-turbo": 4096,
    "gpt-3.5-turbo": 4096,
    "deepseek-chat": 8192,
    "deepseek-reasoner": 65536,
}


def known_output_cap(model: str, caps: dict[str, int] = KNOWN_OUTPUT_CAPS) -> int | None:
    """The documented output cap for `model` in `caps` (longest prefix wins), or None when unknown."""
    best = None
    for prefix, cap in caps.items():
        if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, cap)
    return best[1] if best else None


def accepts_unknown_message_fields(base_url: str) -> bool:
    """False for the servers known to reject a message field they do not define (OpenAI, Azure, Gemini)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return not any(host == strict.lstrip(".") or (strict.startswith(".") and host.endswith(strict)) for strict in STRICT_MESSAGE_HOSTS)


class OpenAICompatibleProvider(Provider):
    """An upstream speaking Chat Completions at `{base_url}/chat/completions`.

    Subclasses (Azure, Gemini, Ollama) override the hooks below for their URL, auth and quirks:
    `chat_url`, `auth_headers`, `target`, `prepare`, and the class attributes.
    """

    dialect = "chat"
    well_known_models: tuple[str, ...] = (
        "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini",
    )

    def __init__(self, name: str, base_url: str, api_key: str | None, *, max_tokens_limit: int | None = None,
                 reasoning_content: bool | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_tokens_limit = max_tokens_limit
        # None: decide by the host (see the module's policies).
        self.reasoning_history_field = "reasoning_content" if (
            reasoning_content if reasoning_content is not None else accepts_unknown_message_fields(self.base_url)
        ) else None

    def output_cap(self, model: str) -> int | None:
        caps = [cap for cap in (known_output_cap(model), self.max_tokens_limit) if cap]
        return min(caps) if caps else None

    def target(self, model: str) -> ChatTarget:
        """How the Anthropic request translator should shape a request for `model`."""
        return ChatTarget(model=model, reasoning=is_reasoning_model(model), max_tokens_limit=self.output_cap(model),
                          reasoning_history_field=self.reasoning_history_field)

    def chat_url(self, model: str) -> str:
        return f"{self.base_url}/chat/completions"

    async def auth_headers(self, client: HTTPClient) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.api_key}")] if self.api_key else []

    async def send(
        self,
        client: HTTPClient,
        body: bytes,
        *,
        model: str,
        extra_headers: list[tuple[str, str]] = (),
        client_headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> UpstreamResponse:
        """POST an already-serialised chat.completions body; returns once the response head arrived.

        No client header is forwarded: the client can never inject headers upstream.
        """
        headers = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
        headers += await self.auth_headers(client)
        return await client.request("POST", self.chat_url(model), headers + list(extra_headers), body)


def _configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    return bool(settings.text(env, "OPENAI_API_KEY") or settings.text(env, "OPENAI_BASE_URL"))


def _from_env(env: Mapping[str, str], defaults: ProviderDefaults) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        "openai",
        settings.url(env, "OPENAI_BASE_URL", DEFAULT_BASE_URL),
        settings.text(env, "OPENAI_API_KEY"),
        max_tokens_limit=defaults.max_tokens_limit,
        reasoning_content=_reasoning_content_setting(env),
    )


def _reasoning_content_setting(env: Mapping[str, str]) -> bool | None:
    """OPENAI_REASONING_CONTENT: auto (None: by the host), or a boolean (on/off, true/false...)."""
    if (settings.text(env, "OPENAI_REASONING_CONTENT") or "auto").lower() == "auto":
        return None
    return settings.boolean(env, "OPENAI_REASONING_CONTENT", False)


SPEC = ProviderSpec(
    name="openai",
    dialect="chat",
    variables="OPENAI_API_KEY (and OPENAI_BASE_URL for other OpenAI-compatible servers)",
    configured=_configured,
    from_env=_from_env,
    tier_defaults=("gpt-4.1", "gpt-4.1-mini"),
)
