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
  translator decides that from `ChatTarget.reasoning`.
"""

from __future__ import annotations

from translate.anthropic_to_chat_request import ChatTarget, is_reasoning_model
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
    """An upstream speaking OpenAI Chat Completions at `{base_url}/chat/completions`.

    Subclasses (Azure, Gemini, Ollama) override the hooks below for their URL, auth and quirks:
    `chat_url`, `auth_headers`, `target`, `prepare`, and the class attributes.
    """

    dialect = "openai"
    well_known_models: tuple[str, ...] = (
        "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini",
    )
    # Carry Gemini thought signatures (and <thought> tags) through Anthropic clients: translate/gemini.py.
    thought_signatures = False
    # Emit each tool call whole at the finish: for upstreams that interleave parallel calls' fragments.
    buffer_tool_calls = False
    # True when `prepare` changes requests: then even same-dialect (passthrough) requests go through it.
    rewrites_requests = False

    def __init__(self, name: str, base_url: str, api_key: str | None, *, max_tokens_limit: int | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_tokens_limit = max_tokens_limit

    def describe(self) -> str:
        return self.base_url

    def output_cap(self, model: str) -> int | None:
        caps = [cap for cap in (known_output_cap(model), self.max_tokens_limit) if cap]
        return min(caps) if caps else None

    def target(self, model: str) -> ChatTarget:
        """How the Anthropic request translator should shape a request for `model`."""
        return ChatTarget(model=model, reasoning=is_reasoning_model(model), max_tokens_limit=self.output_cap(model))

    def upstream_model(self, model: str) -> str:
        """The model name as this provider wants it in the body."""
        return model

    def prepare(self, body: dict) -> dict:
        """Provider quirks applied to an OpenAI-dialect request body (none for plain OpenAI)."""
        return body

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
    ) -> UpstreamResponse:
        """POST an already-serialised chat.completions body; returns once the response head arrived.

        No client header is forwarded: the client can never inject headers upstream.
        """
        headers = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
        headers += await self.auth_headers(client)
        return await client.request("POST", self.chat_url(model), headers + list(extra_headers), body)
