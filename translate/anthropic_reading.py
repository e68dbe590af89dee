"""Reading what an Anthropic upstream answers, for every translator from the hub to another dialect.

The Chat translator (translate/anthropic_to_chat_response.py) and the Responses one
(translate/anthropic_to_responses_response.py) read the same thing: token counts in message_start
and message_delta, and a stream of typed events in a fixed order. This is that reading; each
translator says what the events become.

Policies:
- Counts are cumulative in Anthropic's stream: each message_start or message_delta replaces the
  fields it carries; absent ones stay. Booleans are not counts.
- An event's JSON `type` is trusted over its SSE name (PROTOCOLS 8). An `error` event, an event that
  is not a JSON object, or one out of order fails the stream (the subclass's `fail`); `ping` and
  event types newer than this code are ignored.
- Pure.
"""

from __future__ import annotations

import json
from enum import Enum

from translate.errors import ProxyError, UpstreamUnavailable
from translate.sse import SSEEvent


class AnthropicUsage:
    """Anthropic token counts, updated from message_start and message_delta."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_creation_tokens = 0
        self.reasoning_tokens = 0

    @classmethod
    def from_anthropic(cls, usage: object):
        counts = cls()
        counts.update(usage)
        return counts

    def update(self, usage: object) -> None:
        """Take the fields present in `usage`: Anthropic's counts are cumulative, absent ones stay."""
        if not isinstance(usage, dict):
            return
        for name, attribute in (
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_read_input_tokens", "cache_read_tokens"),
            ("cache_creation_input_tokens", "cache_creation_tokens"),
        ):
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, attribute, value)
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
            self.reasoning_tokens = details["thinking_tokens"]


class StreamState(Enum):
    AWAITING_START = "waiting for message_start"
    STREAMING = "streaming"
    DONE = "done"
    FAILED = "failed"


# The state each Anthropic event is valid in; other event types (ping, unknown ones) are ignored.
EXPECTED_STATE = {
    "message_start": StreamState.AWAITING_START,
    "content_block_start": StreamState.STREAMING,
    "content_block_delta": StreamState.STREAMING,
    "content_block_stop": StreamState.STREAMING,
    "message_delta": StreamState.STREAMING,
    "message_stop": StreamState.STREAMING,
}


class AnthropicStreamReader:
    """Dispatches each Anthropic stream event to the subclass's `_on_<type>(data)`, in order.

    A subclass keeps `_state` (a StreamState) and `_usage` (an AnthropicUsage, which the counters
    below read) and defines `fail(error)` and the handlers.
    """

    _state: StreamState
    _usage: AnthropicUsage

    @property
    def finished(self) -> bool:
        return self._state in (StreamState.DONE, StreamState.FAILED)

    @property
    def input_tokens(self) -> int:
        return self._usage.input_tokens

    @property
    def output_tokens(self) -> int:
        return self._usage.output_tokens

    @property
    def cache_read_tokens(self) -> int:
        return self._usage.cache_read_tokens

    @property
    def cache_creation_tokens(self) -> int:
        return self._usage.cache_creation_tokens

    def fail(self, error: ProxyError) -> list:
        raise NotImplementedError

    def feed(self, event: SSEEvent) -> list:
        """Consume one upstream event; return what the client's dialect makes of it."""
        if self.finished:
            return []
        try:
            data = json.loads(event.data)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            return self.fail(UpstreamUnavailable("The Anthropic upstream sent a stream event that is not a JSON object."))
        kind = data.get("type") or event.event  # PROTOCOLS 8: trust the JSON type over the name
        if kind == "error":
            return self.fail(upstream_stream_error(data.get("error")))
        expected = EXPECTED_STATE.get(kind)
        if expected is None:
            return []  # ping, or an event type newer than this code
        if expected is not self._state:
            return self.fail(
                UpstreamUnavailable(f"The Anthropic upstream sent {kind} while the stream was {self._state.value}.")
            )
        return getattr(self, "_on_" + kind)(data)


def upstream_stream_error(error: object) -> ProxyError:
    """The ProxyError for an Anthropic `error` event that arrived after HTTP 200."""
    error = error if isinstance(error, dict) else {}
    message = error.get("message")
    error_type = error.get("type")
    return ProxyError(
        message if isinstance(message, str) and message else "The Anthropic upstream reported an error mid-stream.",
        error_type=error_type if isinstance(error_type, str) and error_type else "api_error",
    )
