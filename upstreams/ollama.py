"""Ollama's OpenAI-compatible endpoint (`{OLLAMA_BASE_URL}/chat/completions`): the air-gapped setup.

Policies (PROTOCOLS.md 7):
- No key; nothing leaves the host but the call to Ollama itself.
- Ollama reads only `max_tokens` (never `max_completion_tokens`), and knows no `user`, `tool_choice`,
  `logprobs` or `n`: the request is shaped accordingly.
- Images must be data URIs: an image given by URL is replaced by a short text note instead of being
  fetched, since the proxy never fetches URLs a client names (and an air-gapped host could not).
- Ollama's context window is set on the Ollama server (`OLLAMA_CONTEXT_LENGTH`, or `num_ctx` in a
  Modelfile), not per request: its small default silently truncates Claude Code's prompts. See the
  README's air-gapped walkthrough.
"""

from __future__ import annotations

from collections.abc import Mapping

from translate.anthropic_to_chat_request import ChatTarget
from upstreams import settings
from upstreams.openai import OpenAICompatibleProvider
from upstreams.provider import ProviderDefaults, ProviderSpec

DEFAULT_BASE_URL = "http://localhost:11434/v1"
UNSUPPORTED_FIELDS = ("user", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs", "n", "reasoning_effort")


class OllamaProvider(OpenAICompatibleProvider):
    well_known_models = ()
    rewrites_requests = True

    def __init__(self, base_url: str, *, max_tokens_limit: int | None = None) -> None:
        super().__init__("ollama", base_url, None, max_tokens_limit=max_tokens_limit)

    def target(self, model: str) -> ChatTarget:
        # Ollama reads history thinking from `reasoning` (the field its own answers use).
        return ChatTarget(model=model, reasoning=False, max_tokens_limit=self.max_tokens_limit, send_user=False,
                          reasoning_history_field="reasoning")

    def prepare(self, body: dict) -> dict:
        body = {key: value for key, value in body.items() if key not in UNSUPPORTED_FIELDS}
        body["messages"] = [_inline_images_only(message) for message in body.get("messages", [])]
        return body


def _inline_images_only(message: dict) -> dict:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts = []
    for part in content:
        url = (part.get("image_url") or {}).get("url", "") if part.get("type") == "image_url" else ""
        if url and not url.startswith("data:"):
            parts.append({"type": "text", "text": f"[image not shown: Ollama accepts only inline images; it was at {url}]"})
        else:
            parts.append(part)
    return dict(message, content=parts)


def _configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    # PREFERRED_PROVIDER=ollama alone is enough: Ollama's default address needs no other setting.
    return bool(settings.text(env, "OLLAMA_BASE_URL")) or defaults.preferred == "ollama"


def _from_env(env: Mapping[str, str], defaults: ProviderDefaults) -> OllamaProvider:
    return OllamaProvider(settings.url(env, "OLLAMA_BASE_URL", DEFAULT_BASE_URL), max_tokens_limit=defaults.max_tokens_limit)


SPEC = ProviderSpec(
    name="ollama",
    dialect="chat",
    variables=f"OLLAMA_BASE_URL (or PREFERRED_PROVIDER=ollama for {DEFAULT_BASE_URL})",
    configured=_configured,
    from_env=_from_env,
)
