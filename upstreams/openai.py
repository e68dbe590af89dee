"""OpenAI-compatible provider: OpenAI itself, vLLM, DeepSeek, OpenRouter, LM Studio, ...

The base for every provider of the OpenAI wire dialect: a provider knows its URL, its auth headers
and its quirks, and sends through the shared pooled client. It opens no sockets of its own.

Policies:
- `{base_url}/chat/completions`, `Authorization: Bearer <key>` when a key is set (servers such as
  vLLM and Ollama take none).
- Output caps differ per model (gpt-4o stops at 16384 tokens while Claude Code asks for 32000 or
  64000): a small table of known caps is applied, then the user's `MAX_TOKENS_LIMIT`; nothing is
  clamped to an arbitrary small number.
- Reasoning-family models (o1/o3/o4/gpt-5) take `max_completion_tokens` and no sampling knobs; the
  translator decides that from `OpenAITarget.reasoning`.
"""

from __future__ import annotations

from translate.anthropic_openai import OpenAITarget, is_reasoning_model
from upstreams.http import HTTPClient, UpstreamResponse

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


class OpenAICompatibleProvider:
    """An upstream speaking OpenAI Chat Completions at `{base_url}/chat/completions`."""

    dialect = "openai"
    well_known_models = ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini")

    def __init__(self, name: str, base_url: str, api_key: str | None, *, max_tokens_limit: int | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_tokens_limit = max_tokens_limit

    def describe(self) -> str:
        return self.base_url

    def target(self, model: str) -> OpenAITarget:
        """How the Anthropic request translator should shape a request for `model`."""
        caps = [cap for cap in (known_output_cap(model), self.max_tokens_limit) if cap]
        return OpenAITarget(
            model=model,
            reasoning=is_reasoning_model(model),
            max_tokens_limit=min(caps) if caps else None,
        )

    def chat_url(self, model: str) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self) -> list[tuple[str, str]]:
        headers = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
        if self.api_key:
            headers.append(("authorization", f"Bearer {self.api_key}"))
        return headers

    async def send(
        self,
        client: HTTPClient,
        body: bytes,
        *,
        model: str,
        extra_headers: list[tuple[str, str]] = (),
        client_headers: dict[str, str] | None = None,
    ) -> UpstreamResponse:
        """POST an already-serialised chat.completions body; returns once the response head arrived.

        No client header is forwarded: the client can never inject headers upstream.
        """
        return await client.request("POST", self.chat_url(model), self.headers() + list(extra_headers), body)
