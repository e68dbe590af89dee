"""The wire dialects, each declared once, and the table of how a front dialect reaches an upstream one.

Three names: `anthropic` (Messages), `chat` (Chat Completions) and `responses` (OpenAI's Responses
API). OpenAI is a provider, never a dialect; it speaks two (upstreams/openai.py chooses per model).

Policies:
- A `Dialect` holds everything the server needs to speak it without asking which one it is: the
  paths of its front, its error envelope and status mapping, its stream framing, its stream error,
  its heartbeat and its usage reader. The server has no `if dialect == ...` anywhere.
- Anthropic Messages is the hub: every other dialect translates to and from it, and two different
  non-hub dialects meet by composing two hops (front -> anthropic -> upstream). It is the hub
  because it loses least: typed content blocks, thinking with signatures, cache control.
- `PAIRS` maps (front dialect, upstream dialect) to the hops to compose; no hops means passthrough
  (the same dialect on both sides: bytes flow untouched and usage is read on the side).
- A hop turns one request into an `Exchange`: the request for the next dialect, plus how to turn
  that dialect's answers (whole or streamed) back. An exchange holds only what this one request
  needs, so the server keeps no conversation state.
- Pure: ids and timestamps come in through `ResponseIds`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from translate.anthropic_to_chat_request import ChatTarget, anthropic_to_chat_request
from translate.anthropic_to_chat_response import (
    AnthropicToChatStream,
    anthropic_to_chat_response,
)
from translate.anthropic_to_responses_request import ResponsesTarget, anthropic_to_responses_request
from translate.anthropic_to_responses_response import (
    AnthropicToResponsesStream,
    anthropic_to_responses_response,
    encode_responses_event,
)
from translate.chat_to_anthropic_request import (
    AnthropicTarget,
    chat_to_anthropic_request,
)
from translate.chat_to_anthropic_response import (
    ChatToAnthropicStream,
    chat_to_anthropic_response,
)
from translate.errors import (
    ProxyError,
    anthropic_error_body,
    chat_error_body,
    chat_status,
)
from translate.responses_context import ResponsesContext
from translate.responses_to_anthropic_request import responses_to_anthropic_request
from translate.responses_to_anthropic_response import (
    ResponsesToAnthropicStream,
    responses_to_anthropic_response,
)
from translate.sse import (
    CHAT_DONE,
    KEEPALIVE_COMMENT,
    SSEEvent,
    dumps,
    encode_anthropic_event,
    encode_chat_chunk,
)
from translate.usage import (
    Usage,
    read_anthropic_usage,
    read_chat_usage,
    read_responses_usage,
)
from translate.validate import (
    validate_chat_request,
    validate_messages_request,
    validate_responses_request,
)

HUB = "anthropic"


# =============================================================================================
# Dialect descriptors
# =============================================================================================


@dataclass(frozen=True)
class Dialect:
    """One wire dialect as the server speaks it, on a front or to an upstream."""

    name: str
    endpoint: str  # the front's main path, served by the one generic serve path
    paths: tuple[str, ...]  # path prefixes served in this dialect (their errors use its envelope)
    heartbeat: bytes  # written into an idle stream, between events
    error_body: Callable[[ProxyError], dict]
    error_status: Callable[[ProxyError], int]
    encode: Callable[[object], bytes]  # frames one stream event of this dialect
    read_usage: Callable[[Usage, dict], None]  # folds one answer or stream event into the counts
    # Checks a parsed request to `endpoint` (translate/validate.py); InvalidRequest names the field.
    validate: Callable[[object], None]
    # The events of a failure inside a stream, when they differ from `error_body` (Responses: a
    # response.failed, preceded by the events its clients need first).
    stream_error_body: Callable[[ProxyError], dict | list[dict]] | None = None
    # Upstream failures of a stream request go inside a 200 stream, never as an HTTP error (Codex
    # acts on `context_length_exceeded` and timed rate limits only there).
    upstream_errors_in_stream: bool = False

    def render_error(self, error: ProxyError) -> tuple[int, bytes]:
        """(HTTP status, JSON body) of an error answered before any byte of a response."""
        return self.error_status(error), dumps(self.error_body(error)).encode()

    def stream_error(self, error: ProxyError) -> bytes:
        """A failure inside an already-started stream, as this dialect's own stream error."""
        body = (self.stream_error_body or self.error_body)(error)
        return b"".join(self.encode(event) for event in body) if isinstance(body, list) else self.encode(body)


def _encode_chat_item(item: object) -> bytes:
    return CHAT_DONE if item == "[DONE]" else encode_chat_chunk(item)


def _anthropic_status(error: ProxyError) -> int:
    return error.status


ANTHROPIC = Dialect(
    name="anthropic",
    endpoint="/v1/messages",
    paths=("/v1/messages",),
    # Anthropic's own keep-alive: a ping event every client already ignores.
    heartbeat=encode_anthropic_event({"type": "ping"}),
    error_body=anthropic_error_body,
    error_status=_anthropic_status,
    encode=encode_anthropic_event,
    read_usage=read_anthropic_usage,
    validate=validate_messages_request,
)
CHAT = Dialect(
    name="chat",
    endpoint="/v1/chat/completions",
    paths=("/v1/chat", "/v1/models"),
    # An SSE comment: Chat Completions has no ping event, and every SSE parser skips comments.
    heartbeat=KEEPALIVE_COMMENT,
    error_body=chat_error_body,
    error_status=chat_status,
    encode=_encode_chat_item,
    read_usage=read_chat_usage,
    validate=validate_chat_request,
)
def _responses_stream_failure(error: ProxyError) -> list[dict]:
    """A stream that fails before its translator ran: created, in_progress, then response.failed."""
    return AnthropicToResponsesStream(ResponsesContext(requested_model="", response_id="resp_failed", created_at=0)).fail(error)


RESPONSES = Dialect(
    name="responses",
    endpoint="/v1/responses",
    paths=("/v1/responses",),
    # An SSE comment: Codex's idle timer does not count it, but its timer is 300 s, far above PING_INTERVAL.
    heartbeat=KEEPALIVE_COMMENT,
    error_body=chat_error_body,
    error_status=chat_status,
    encode=encode_responses_event,  # `event: <type>` + `data:`, as OpenAI sends Responses events
    read_usage=read_responses_usage,
    validate=validate_responses_request,
    stream_error_body=_responses_stream_failure,
    upstream_errors_in_stream=True,
)
DIALECTS = {dialect.name: dialect for dialect in (ANTHROPIC, CHAT, RESPONSES)}


def front_for_path(path: str) -> Dialect:
    """The dialect a client on `path` speaks: the one to answer its errors in (Anthropic's by default)."""
    for dialect in DIALECTS.values():
        for prefix in dialect.paths:
            if path == prefix or path.startswith(prefix + "/"):
                return dialect
    return ANTHROPIC


# =============================================================================================
# Exchanges: one request translated through one hop, and its answers back
# =============================================================================================


class StreamTranslator(Protocol):
    """Upstream-side stream events in, client-side events out (h2's receive_data shape)."""

    finished: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int

    def feed(self, event: SSEEvent) -> list: ...
    def close(self) -> list: ...
    def fail(self, error: ProxyError) -> list: ...


class Exchange(Protocol):
    """One request on its way through a hop: the translated request, and the way back."""

    body: dict  # the request in the next dialect
    dropped_tools: tuple[str, ...]  # tools the next dialect cannot carry, for a log line

    def response(self, answer: dict) -> dict: ...
    def stream(self) -> StreamTranslator: ...


@dataclass(frozen=True)
class ResponseIds:
    """What varies between runs, passed in so translations stay byte-stable."""

    requested_model: str  # the model name the client asked for, echoed in answers
    token: str  # random hex, made into each dialect's own id ("msg_...", "chatcmpl-...")
    created: int  # Unix seconds


@dataclass
class _AnthropicOnChat:
    """An Anthropic request for a chat upstream."""

    body: dict
    dropped_tools: tuple[str, ...]
    options: dict = field(repr=False)
    buffer_tool_calls: bool = False

    def response(self, answer: dict) -> dict:
        return chat_to_anthropic_response(answer, **self.options)

    def stream(self) -> StreamTranslator:
        return ChatToAnthropicStream(**self.options, buffer_tool_calls=self.buffer_tool_calls)


def anthropic_to_chat(body: dict, target: ChatTarget, ids: ResponseIds) -> Exchange:
    translated = anthropic_to_chat_request(body, target)
    options = dict(
        requested_model=ids.requested_model,
        message_id="msg_" + ids.token,
        tool_names=translated.tool_names,
        stop_sequences=translated.stop_sequences,
        thought_signatures=target.thought_signatures,
        thought_tags=target.thought_signatures,
    )
    return _AnthropicOnChat(translated.body, translated.dropped_tools, options, target.buffer_tool_calls)


@dataclass
class _ChatOnAnthropic:
    """A chat request for an Anthropic upstream."""

    body: dict
    options: dict = field(repr=False)
    include_usage: bool = False
    dropped_tools: tuple[str, ...] = ()

    def response(self, answer: dict) -> dict:
        return anthropic_to_chat_response(answer, **self.options)

    def stream(self) -> StreamTranslator:
        return AnthropicToChatStream(**self.options, include_usage=self.include_usage)


def chat_to_anthropic(body: dict, target: AnthropicTarget, ids: ResponseIds) -> Exchange:
    translated = chat_to_anthropic_request(body, target)
    options = dict(
        requested_model=ids.requested_model,
        completion_id="chatcmpl-" + ids.token,
        created=ids.created,
        json_mode=translated.json_mode,
        tool_names=translated.tool_names,
    )
    return _ChatOnAnthropic(translated.body, options, translated.include_usage)


@dataclass
class _ResponsesOnAnthropic:
    """A Responses request for the hub (an Anthropic upstream, or the first of two hops)."""

    body: dict
    dropped_tools: tuple[str, ...]
    context: object = field(repr=False)

    def response(self, answer: dict) -> dict:
        return anthropic_to_responses_response(answer, self.context)

    def stream(self) -> StreamTranslator:
        return AnthropicToResponsesStream(self.context)


def responses_to_anthropic(body: dict, target: AnthropicTarget, ids: ResponseIds) -> Exchange:
    translated = responses_to_anthropic_request(body, target, response_id="resp_" + ids.token, created_at=ids.created)
    return _ResponsesOnAnthropic(translated.body, tuple(translated.dropped_tools), translated.context)


@dataclass
class _AnthropicOnResponses:
    """An Anthropic request for an OpenAI Responses upstream."""

    body: dict
    dropped_tools: tuple[str, ...]
    options: dict = field(repr=False)

    def response(self, answer: dict) -> dict:
        return responses_to_anthropic_response(answer, **self.options)

    def stream(self) -> StreamTranslator:
        return ResponsesToAnthropicStream(**self.options)


def anthropic_to_responses(body: dict, target: ResponsesTarget, ids: ResponseIds) -> Exchange:
    translated = anthropic_to_responses_request(body, target)
    options = dict(requested_model=ids.requested_model, message_id="msg_" + ids.token, tool_names=translated.tool_names)
    return _AnthropicOnResponses(translated.body, translated.dropped_tools, options)


Hop = Callable[[dict, object, ResponseIds], Exchange]

# (front dialect, upstream dialect) -> the hops from the front's dialect to the upstream's, in order.
# Empty: passthrough. Two different non-hub dialects compose through the hub.
PAIRS: dict[tuple[str, str], tuple[Hop, ...]] = {
    ("anthropic", "anthropic"): (),
    ("chat", "chat"): (),
    ("responses", "responses"): (),
    ("anthropic", "chat"): (anthropic_to_chat,),
    ("chat", "anthropic"): (chat_to_anthropic,),
    ("responses", "anthropic"): (responses_to_anthropic,),
    ("anthropic", "responses"): (anthropic_to_responses,),
    ("responses", "chat"): (responses_to_anthropic, anthropic_to_chat),
    ("chat", "responses"): (chat_to_anthropic, anthropic_to_responses),
}


def hops_between(front: str, upstream: str) -> tuple[Hop, ...]:
    """The hops from `front` to `upstream`; () for passthrough. KeyError names an unknown pair."""
    try:
        return PAIRS[(front, upstream)]
    except KeyError:
        raise KeyError(f"no translation from the {front} dialect to the {upstream} dialect") from None


# =============================================================================================
# Composition through the hub
# =============================================================================================


def hub_target(model: str) -> AnthropicTarget:
    """The target of a hop into the hub that is not the last one: no provider shapes it."""
    return AnthropicTarget(model=model, auto_cache=False, hub=True)


def open_exchange(hops: tuple[Hop, ...], body: dict, target: object, ids: ResponseIds) -> Exchange:
    """Translate `body` through `hops`; the last hop gets the provider's `target`. No hops: passthrough, not here."""
    if not hops:
        raise ValueError("open_exchange needs at least one hop; a pair without hops is passthrough")
    if len(hops) == 1:
        return hops[0](body, target, ids)
    legs: list[Exchange] = []
    for position, hop in enumerate(hops):
        last = position == len(hops) - 1
        leg = hop(body, target if last else hub_target(getattr(target, "model", "")), ids)
        legs.append(leg)
        body = leg.body
    return _Composed(legs)


class _Composed:
    """Several exchanges in a row: requests go through them in order, answers come back in reverse."""

    def __init__(self, legs: list[Exchange]) -> None:
        self.legs = legs
        self.body = legs[-1].body
        self.dropped_tools = tuple(name for leg in legs for name in leg.dropped_tools)

    def response(self, answer: dict) -> dict:
        for leg in reversed(self.legs):
            answer = leg.response(answer)
        return answer

    def stream(self) -> StreamTranslator:
        return _ComposedStream([leg.stream() for leg in reversed(self.legs)])


class _ComposedStream:
    """Stream translators in a row; each one's events are re-framed as SSE events for the next.

    Usage is the first translator's (the one reading the upstream): the later ones only re-shape it.
    """

    def __init__(self, translators: list[StreamTranslator]) -> None:
        self.translators = translators

    def __getattr__(self, name: str) -> int:
        if name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens"):
            return getattr(self.translators[0], name)
        raise AttributeError(name)

    @property
    def finished(self) -> bool:
        return self.translators[-1].finished

    def keepalive(self) -> list:
        """The client-side translator's own heartbeat events, if it has any."""
        own = getattr(self.translators[-1], "keepalive", None)
        return own() if own is not None else []

    def feed(self, event: SSEEvent) -> list:
        events = self.translators[0].feed(event)
        for translator in self.translators[1:]:
            events = _relay(translator, events)
        return events

    def close(self) -> list:
        events = self.translators[0].close()
        for translator in self.translators[1:]:
            events = _relay(translator, events) + translator.close()
        return events

    def fail(self, error: ProxyError) -> list:
        # Each translator fails with the error itself: relayed as the hub's error event, it would
        # lose what the hub's envelope has no room for (the chat dialect's code and param).
        events = self.translators[0].fail(error)
        for translator in self.translators[1:]:
            events = _relay(translator, [event for event in events if not _is_error_event(event)]) + translator.fail(error)
        return events


def _is_error_event(event: object) -> bool:
    return isinstance(event, dict) and (event.get("type") == "error" or "error" in event)


def _relay(translator: StreamTranslator, events: list) -> list:
    """Feed one translator's output events to the next one, framed as the SSE events they would be."""
    relayed: list = []
    for event in events:
        if isinstance(event, dict):
            relayed += translator.feed(SSEEvent(data=dumps(event), event=str(event.get("type", "message"))))
        else:  # a sentinel such as "[DONE]"
            relayed += translator.feed(SSEEvent(data=str(event)))
    return relayed
