"""Reading token usage from traffic that passes through untouched, for the access log.

Passthrough never rewrites a byte; these readers look at the same bytes on the side. They decode
SSE incrementally (no buffering of the stream) and parse JSON only for the few events that carry
usage, so the cost per chunk stays small.
"""

from __future__ import annotations

import json

from translate.sse import SSEDecoder


class UsageReader:
    """Accumulates input/output tokens from a response of one dialect ("anthropic" or "openai")."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.input_tokens = 0
        self.output_tokens = 0
        self._decoder = SSEDecoder()

    # ---- whole bodies ----------------------------------------------------------------------

    def read_body(self, body: bytes) -> None:
        """Take usage from a non-stream JSON response body; ignores bodies that are not JSON."""
        try:
            value = json.loads(body)
        except ValueError:
            return
        if isinstance(value, dict):
            self._take(value.get("usage"))

    # ---- streams ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Look at one chunk of a passing SSE stream."""
        for event in self._decoder.feed(chunk):
            data = event.data
            if '"usage"' not in data:
                continue
            try:
                value = json.loads(data)
            except ValueError:
                continue
            if not isinstance(value, dict):
                continue
            if self.dialect == "anthropic" and value.get("type") == "message_start":
                self._take((value.get("message") or {}).get("usage"))
            else:
                self._take(value.get("usage"))

    def _take(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        if self.dialect == "anthropic":
            # message_delta usage is cumulative: present fields replace earlier values.
            cached = [usage.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
            if any(isinstance(v, int) for v in cached):
                self.input_tokens = sum(v for v in cached if isinstance(v, int))
            if isinstance(usage.get("output_tokens"), int):
                self.output_tokens = usage["output_tokens"]
        else:
            if isinstance(usage.get("prompt_tokens"), int):
                self.input_tokens = usage["prompt_tokens"]
            if isinstance(usage.get("completion_tokens"), int):
                self.output_tokens = usage["completion_tokens"]
