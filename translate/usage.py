"""Token usage, read the same way from whole answers, stream events and passed-through bytes.

Each dialect declares one reader (`read_anthropic_usage`, `read_chat_usage`) that folds one JSON
payload into a `Usage`; translate/dialects.py attaches it to the dialect. Passthrough never rewrites a
byte: `UsageReader` looks at the same bytes on the side, decoding SSE incrementally (no buffering of
the stream) and parsing JSON only for the few events that carry usage, so the cost per chunk stays
small.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from translate.sse import SSEDecoder


@dataclass
class Usage:
    """Token counts of one answer, for the access log and metrics."""

    input_tokens: int = 0  # the whole prompt: cache reads and cache writes included
    cached_tokens: int = 0  # of which read from the prompt cache
    output_tokens: int = 0
    cache_write_tokens: int = 0  # of the prompt, written to the cache (Anthropic's cache_creation_input_tokens)

    @property
    def uncached_input_tokens(self) -> int:
        """The prompt neither read from nor written to the cache (the ledger's disjoint input column)."""
        return max(0, self.input_tokens - self.cached_tokens - self.cache_write_tokens)


def read_anthropic_usage(usage: Usage, payload: dict) -> None:
    """Fold a Messages answer, `message_start` or `message_delta` event into `usage`.

    message_delta usage is cumulative: the fields present replace earlier values.
    """
    if payload.get("type") == "message_start":
        payload = payload.get("message") or {}
    counts = payload.get("usage")
    if not isinstance(counts, dict):
        return
    plain, cached, written = (counts.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    if any(isinstance(v, int) for v in (plain, cached, written)):
        usage.input_tokens = sum(v for v in (plain, cached, written) if isinstance(v, int))
    if isinstance(cached, int):
        usage.cached_tokens = cached
    if isinstance(written, int):
        usage.cache_write_tokens = written
    if isinstance(counts.get("output_tokens"), int):
        usage.output_tokens = counts["output_tokens"]


def read_chat_usage(usage: Usage, payload: dict) -> None:
    """Fold a chat.completion answer or the usage chunk of a stream into `usage`."""
    counts = payload.get("usage")
    if not isinstance(counts, dict):
        return
    if isinstance(counts.get("prompt_tokens"), int):
        usage.input_tokens = counts["prompt_tokens"]
    details = counts.get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        usage.cached_tokens = details["cached_tokens"]
    if isinstance(counts.get("completion_tokens"), int):
        usage.output_tokens = counts["completion_tokens"]


def read_responses_usage(usage: Usage, payload: dict) -> None:
    """Fold a Responses `response` object, or a stream event carrying one (response.completed...), into `usage`."""
    response = payload.get("response") if isinstance(payload.get("response"), dict) else payload
    counts = response.get("usage")
    if not isinstance(counts, dict):
        return
    if isinstance(counts.get("input_tokens"), int):
        usage.input_tokens = counts["input_tokens"]
    details = counts.get("input_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        usage.cached_tokens = details["cached_tokens"]
    if isinstance(details, dict) and isinstance(details.get("cache_write_tokens"), int):
        usage.cache_write_tokens = details["cache_write_tokens"]
    if isinstance(counts.get("output_tokens"), int):
        usage.output_tokens = counts["output_tokens"]


class UsageReader:
    """Accumulates usage from a passing response, whole or streamed, with one dialect's reader."""

    def __init__(self, read: Callable[[Usage, dict], None]) -> None:
        self.usage = Usage()
        self._read = read
        self._decoder = SSEDecoder()

    def read_body(self, body: bytes) -> None:
        """Take usage from a non-stream JSON response body; ignores bodies that are not JSON."""
        try:
            value = json.loads(body)
        except ValueError:
            return
        if isinstance(value, dict):
            self._read(self.usage, value)

    def feed(self, chunk: bytes) -> None:
        """Look at one chunk of a passing SSE stream."""
        for event in self._decoder.feed(chunk):
            if '"usage"' not in event.data:
                continue
            try:
                value = json.loads(event.data)
            except ValueError:
                continue
            if isinstance(value, dict):
                self._read(self.usage, value)
