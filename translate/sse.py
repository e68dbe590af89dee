"""Server-sent events: an incremental decoder (bytes in, events out) and the encoders.

Policies (PROTOCOLS.md 8):
- Lines are split on bytes, before any UTF-8 decoding, so a multi-byte character or a line split
  across two network reads survives; U+2028 inside JSON is not a line break here.
- `\\r\\n`, `\\n` and a lone `\\r` all end a line. A `\\r` at the very end of a read may be the first
  half of `\\r\\n`, so it is held back until the next read decides.
- A blank line dispatches the event; several `data:` lines join with `\\n`; comments (`:`) and
  `id:`/`retry:`/unknown fields are ignored; a leading BOM is dropped; a pending event is flushed
  at `close()`.
- Events without data are not dispatched (a bare `event: ping` with no data line is still one:
  Anthropic pings always carry data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event. `event` is "message" when the stream gave no `event:` line."""

    data: str
    event: str = "message"


class SSEDecoder:
    """Turn a byte stream into SSEEvents, one `feed()` per network read."""

    def __init__(self) -> None:
        self._carry = b""
        self._started = False
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume one read; return the events it completed (possibly none)."""
        if not chunk:
            return []
        buffer = self._carry + chunk if self._carry else chunk
        if not self._started:
            if len(buffer) < len(BOM) and BOM.startswith(buffer):
                self._carry = buffer
                return []
            self._started = True
            if buffer.startswith(BOM):
                buffer = buffer[len(BOM):]
        events: list[SSEEvent] = []
        start = 0
        length = len(buffer)
        while start < length:
            newline = buffer.find(b"\n", start)
            carriage = buffer.find(b"\r", start, newline if newline >= 0 else length)
            if carriage >= 0:
                if carriage == length - 1:
                    break  # maybe the first half of \r\n: wait for the next read
                end, after = carriage, carriage + (2 if buffer[carriage + 1] == 10 else 1)
            elif newline >= 0:
                end, after = newline, newline + 1
            else:
                break
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = after
        self._carry = buffer[start:]
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: flush a final line and a pending event that had no blank line after it."""
        events: list[SSEEvent] = []
        if self._carry:
            for line in self._carry.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
                event = self._line(line)
                if event is not None:
                    events.append(event)
            self._carry = b""
        event = self._line(b"")
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:
            return self._dispatch()
        if raw[:1] == b":":
            return None
        name, colon, value = raw.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        event = SSEEvent(data="\n".join(self._data), event=self._event or "message")
        self._event = None
        self._data = []
        return event


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


# One encoder for every body we write, made once (json.dumps builds a new one per call with these
# options). No circular-reference check: everything we encode came from json.loads or from our own
# translators, which build trees, and the check's bookkeeping per dict and list costs about 40% of
# the time on a Claude Code-sized request.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def dumps(value: object) -> str:
    """Compact JSON with UTF-8 kept as is: the one serialisation used for every body we write."""
    return _ENCODER.encode(value)


def encode_anthropic_event(event: dict) -> bytes:
    """`event: <type>` plus `data: <json>`: the Anthropic SDK dispatches on the event name."""
    return f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode()


def encode_chat_chunk(chunk: dict) -> bytes:
    """A data-only event, as OpenAI streams carry them."""
    return f"data: {dumps(chunk)}\n\n".encode()


CHAT_DONE = b"data: [DONE]\n\n"
KEEPALIVE_COMMENT = b": keep-alive\n\n"
