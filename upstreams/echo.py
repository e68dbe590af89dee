"""The built-in `echo` provider: answers in the chat dialect without any network.

It lets a new user check their client's wiring (Claude Code, an SDK app) before configuring a real
upstream and spending tokens. Selected when no upstream is configured, by `PREFERRED_PROVIDER=echo`,
or by the model name `echo/anything`. Its replies say that they come from the echo provider and which
variables to set, and it goes through the same translators as a real upstream, so a streamed reply
exercises the whole path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from translate.anthropic_to_chat_request import ChatTarget
from translate.sse import encode_chat_chunk
from upstreams.http import MemoryResponse
from upstreams.provider import Provider, ProviderDefaults, ProviderSpec

HINT = (
    "This reply comes from switchboard's built-in echo provider: no model was called. "
    "To use a real model set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible "
    "server), then BIG_MODEL / MIDDLE_MODEL / SMALL_MODEL as needed, and restart the proxy."
)
WORDS_PER_CHUNK = 8


def _last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
                if texts:
                    return " ".join(texts)
    return ""


def echo_reply(body: dict) -> str:
    """The text the echo provider answers with for an OpenAI-format request body."""
    said = _last_user_text(body.get("messages") or [])
    quoted = said if len(said) <= 400 else said[:400] + "..."
    return f"{HINT}\n\nYou said: {quoted}" if quoted else HINT


class EchoProvider(Provider):
    name = "echo"
    dialect = "chat"
    well_known_models = ("echo",)

    def describe(self) -> str:
        return "built-in, no network"

    def target(self, model: str) -> ChatTarget:
        return ChatTarget(model=model, reasoning=False)

    async def send(self, client: object, body: bytes, *, model: str, extra_headers: object = (), client_headers: object = None,
                   path: str | None = None, dialect: str | None = None, api_key: str | None = None) -> MemoryResponse:
        request = json.loads(body)
        text = echo_reply(request)
        prompt_tokens = len(body) // 4
        completion_tokens = len(text) // 4
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {"id": "chatcmpl-echo", "created": 0, "model": model}
        if not request.get("stream"):
            response = dict(
                base,
                object="chat.completion",
                choices=[{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                usage=usage,
            )
            return MemoryResponse(200, [("content-type", "application/json")], [json.dumps(response).encode()])
        words = text.split(" ")
        pieces = [" ".join(words[i : i + WORDS_PER_CHUNK]) for i in range(0, len(words), WORDS_PER_CHUNK)]
        pieces = [piece + " " for piece in pieces[:-1]] + pieces[-1:]
        chunk = dict(base, object="chat.completion.chunk")
        frames = [encode_chat_chunk(dict(chunk, choices=[{"index": 0, "delta": {"role": "assistant"}}]))]
        frames += [encode_chat_chunk(dict(chunk, choices=[{"index": 0, "delta": {"content": p}}])) for p in pieces]
        frames.append(encode_chat_chunk(dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])))
        frames.append(encode_chat_chunk(dict(chunk, choices=[], usage=usage)))
        frames.append(b"data: [DONE]\n\n")
        return MemoryResponse(200, [("content-type", "text/event-stream")], frames)


def _never_configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    return False  # built in: always there, and never counted as a configured upstream


SPEC = ProviderSpec(
    name="echo",
    dialect="chat",
    variables="nothing: it is built in",
    configured=_never_configured,
    from_env=lambda env, defaults: EchoProvider(),
    tier_defaults=("gpt-4.1", "gpt-4.1-mini"),
    builtin=True,
)
