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
- Two wires (`OPENAI_WIRE_API`): Chat Completions, or the Responses API at `{base_url}/responses`.
  `auto` (the default) sends there the models that answer nowhere else (the codex family, the
  `-pro` reasoning models, deep research, computer use), and, on OpenAI's own host, every request
  of a Responses client, which then passes through untouched (hosted tools, encrypted reasoning
  and all). `responses` sends every model there, `chat` none. Other OpenAI-compatible servers
  mostly have no /responses, so `auto` keeps them on Chat Completions but for those models.
- Two refusals of the Responses API are answered by sending again, once, without what was refused
  (`responses_retry_body`): an organisation not verified for reasoning summaries gets a 400 on
  `reasoning.summary` (then no summary is asked for again by this process), and reasoning that
  OpenAI can no longer decrypt (`invalid_encrypted_content`, e.g. after a key moved to another
  organisation) is left out of the history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from translate.anthropic_to_chat_request import ChatTarget, is_reasoning_model
from translate.anthropic_to_responses_request import ResponsesTarget
from upstreams import settings
from translate.errors import upstream_error_message
from translate.sse import dumps
from upstreams.http import HTTPClient, MemoryResponse, UpstreamResponse
from upstreams.keys import parse_keys
from upstreams.provider import Provider, ProviderDefaults, ProviderSpec

log = logging.getLogger("switchboard.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
WIRE_APIS = ("auto", "chat", "responses")
# Model names that answer only on the Responses API (matched anywhere in the name, lower-cased).
RESPONSES_ONLY_MARKS = ("codex", "deep-research", "computer-use")
# ... and the `-pro` reasoning models (gpt-5-pro, o3-pro, o1-pro, with or without a date suffix).
RESPONSES_ONLY_PRO = ("o1-pro", "o3-pro", "gpt-5-pro", "gpt-5.1-pro", "gpt-5.2-pro", "gpt-5.5-pro")
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


def answers_only_on_responses(model: str) -> bool:
    """True for the models OpenAI serves only on /v1/responses (RESPONSES.md 8)."""
    name = model.lower().rsplit("/", 1)[-1]
    if any(mark in name for mark in RESPONSES_ONLY_MARKS):
        return True
    return any(name == pro or name.startswith(pro + "-") for pro in RESPONSES_ONLY_PRO) or (
        name.startswith("gpt-") and name.endswith("-pro")
    )


def responses_retry_body(body: bytes, error: bytes) -> tuple[bytes, str] | None:
    """(the request to send again, what was left out) when a Responses 400 names a refusal that
    leaving something out cures (see the module's policies); None for any other 400."""
    message, code, param = upstream_error_message(error)
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    reasoning = request.get("reasoning")
    if param == "reasoning.summary" and isinstance(reasoning, dict) and "summary" in reasoning:
        request["reasoning"] = {key: value for key, value in reasoning.items() if key != "summary"}
        return dumps(request).encode(), "reasoning.summary"
    items = request.get("input")
    if code == "invalid_encrypted_content" and isinstance(items, list):
        kept = [item for item in items if not (isinstance(item, dict) and item.get("type") == "reasoning")]
        if len(kept) < len(items):
            request["input"] = kept
            return dumps(request).encode(), "reasoning items"
    return None


def is_openai_host(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "").lower() == "api.openai.com"


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
        # Served on /v1/responses (OPENAI_WIRE_API=auto sends them there):
        "gpt-5-codex", "gpt-5-pro", "o3-pro", "codex-mini-latest",
    )

    def __init__(self, name: str, base_url: str, api_key: str | None, *, max_tokens_limit: int | None = None,
                 reasoning_content: bool | None = None, wire_api: str = "chat") -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_tokens_limit = max_tokens_limit
        self.wire_api = wire_api  # one of WIRE_APIS (see the module's policies)
        # Under `auto`, a Responses client's requests pass through to the server's own /responses.
        self.serves_responses_clients = is_openai_host(self.base_url)
        self.reasoning_summary_refused = False  # this organisation may not ask for reasoning summaries
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

    def dialect_for(self, model: str, front: str) -> str:
        if self.wire_api == "auto":
            if answers_only_on_responses(model) or (front == "responses" and self.serves_responses_clients):
                return "responses"
            return "chat"
        return self.wire_api

    def target_for(self, model: str, dialect: str) -> ChatTarget | ResponsesTarget:
        if dialect == "responses":
            reasoning = is_reasoning_model(model) or answers_only_on_responses(model)
            return ResponsesTarget(model=model, reasoning=reasoning, max_tokens_limit=self.output_cap(model))
        return super().target_for(model, dialect)

    def describe(self) -> str:
        return self.base_url if self.wire_api == "chat" else f"{self.base_url} (wire API {self.wire_api})"

    def chat_url(self, model: str) -> str:
        return f"{self.base_url}/chat/completions"

    def responses_url(self, model: str) -> str:
        return f"{self.base_url}/responses"

    async def auth_headers(self, client: HTTPClient, api_key: str | None) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {api_key}")] if api_key else []

    async def send(
        self,
        client: HTTPClient,
        body: bytes,
        *,
        model: str,
        extra_headers: list[tuple[str, str]] = (),
        client_headers: dict[str, str] | None = None,
        path: str | None = None,
        dialect: str | None = None,
        api_key: str | None = None,
    ) -> UpstreamResponse:
        """POST an already-serialised chat.completions (or responses) body; returns once the response head arrived.

        No client header is forwarded: the client can never inject headers upstream.
        """
        headers = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
        headers += await self.auth_headers(client, api_key or self.api_key)
        headers += list(extra_headers)
        if dialect != "responses":
            return await client.request("POST", self.chat_url(model), headers, body)
        url = self.responses_url(model)
        response = await client.request("POST", url, headers, body)
        if response.status != 400:
            return response
        async with response:
            raw = await response.read()
        retry = responses_retry_body(body, raw)
        if retry is None:
            return MemoryResponse(response.status, response.headers, [raw])
        body, left_out = retry
        if left_out == "reasoning.summary":
            self.reasoning_summary_refused = True
        log.warning("%s refused the request (%s); sending it again without %s", self.name,
                    upstream_error_message(raw)[0][:200], left_out)
        return await client.request("POST", url, headers, body)

    def prepare(self, body: dict) -> dict:
        reasoning = body.get("reasoning")  # only Responses bodies have it (Chat's is `reasoning_effort`)
        if self.reasoning_summary_refused and isinstance(reasoning, dict) and "summary" in reasoning:
            body = dict(body, reasoning={key: value for key, value in reasoning.items() if key != "summary"})
        return body


def _configured(env: Mapping[str, str], defaults: ProviderDefaults) -> bool:
    return bool(settings.text(env, "OPENAI_API_KEY") or settings.text(env, "OPENAI_BASE_URL"))


def _from_env(env: Mapping[str, str], defaults: ProviderDefaults) -> OpenAICompatibleProvider:
    provider = OpenAICompatibleProvider(
        "openai",
        settings.url(env, "OPENAI_BASE_URL", DEFAULT_BASE_URL),
        None,
        max_tokens_limit=defaults.max_tokens_limit,
        reasoning_content=_reasoning_content_setting(env),
        wire_api=wire_api_setting(env, "OPENAI_WIRE_API"),
    )
    provider.use_keys(parse_keys(settings.text(env, "OPENAI_API_KEY")), defaults)
    return provider


def wire_api_setting(env: Mapping[str, str], name: str) -> str:
    """OPENAI_WIRE_API / AZURE_WIRE_API: auto (the default), chat or responses."""
    value = (settings.text(env, name) or "auto").lower()
    if value not in WIRE_APIS:
        raise settings.ConfigError(f"{name} must be one of {', '.join(WIRE_APIS)}, not {value!r}")
    return value


def _reasoning_content_setting(env: Mapping[str, str]) -> bool | None:
    """OPENAI_REASONING_CONTENT: auto (None: by the host), or a boolean (on/off, true/false...)."""
    if (settings.text(env, "OPENAI_REASONING_CONTENT") or "auto").lower() == "auto":
        return None
    return settings.boolean(env, "OPENAI_REASONING_CONTENT", False)


SPEC = ProviderSpec(
    name="openai",
    dialect="chat",
    variables="OPENAI_API_KEY (and OPENAI_BASE_URL for other OpenAI-compatible servers; OPENAI_WIRE_API)",
    configured=_configured,
    from_env=_from_env,
    tier_defaults=("gpt-4.1", "gpt-4.1-mini"),
)
