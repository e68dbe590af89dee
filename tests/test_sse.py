"""The incremental SSE decoder and the encoders."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from translate.sse import CHAT_DONE, SSEDecoder, SSEEvent, encode_anthropic_event, encode_chat_chunk

STREAM = (
    "\ufeffevent: message_start\r\n"
    'data: {"text":"caf\u00e9 \u2028 \u4e2d\u6587 \U0001f600"}\r\n\r\n'
    ": keep-alive\n\n"
    "data: first\ndata: second\n\n"
    "id: 7\nretry: 100\nfield-we-do-not-know: x\ndata:no-space\r\r"
    "event: ping\n\n"
    "data: [DONE]\n\n"
).encode("utf-8")

EXPECTED = [
    SSEEvent('{"text":"caf\u00e9 \u2028 \u4e2d\u6587 \U0001f600"}', "message_start"),
    SSEEvent("first\nsecond"),
    SSEEvent("no-space"),
    SSEEvent("[DONE]"),
]


def decode_in_pieces(raw: bytes, size: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(raw), size):
        events += decoder.feed(raw[start : start + size])
    return events + decoder.close()


def test_stream_decodes_the_same_whole_line_by_line_and_byte_by_byte():
    """Split UTF-8, U+2028, CRLF, lone CR, BOM, comments and multi-line data survive any read size."""
    assert decode_in_pieces(STREAM, len(STREAM)) == EXPECTED
    assert decode_in_pieces(STREAM, 1) == EXPECTED
    decoder = SSEDecoder()
    events = [e for line in STREAM.splitlines(keepends=True) for e in decoder.feed(line)] + decoder.close()
    assert events == EXPECTED


def test_pending_event_without_blank_line_is_flushed_at_close():
    """An event cut off before its blank line is still delivered at EOF."""
    decoder = SSEDecoder()
    assert decoder.feed(b"event: x\ndata: tail") == []
    assert decoder.close() == [SSEEvent("tail", "x")]


@given(st.lists(st.text(min_size=1), min_size=1, max_size=8), st.integers(min_value=1, max_value=17))
def test_any_data_survives_any_read_size(payloads, size):
    """Property: JSON payloads of any text come back unchanged whatever the read size."""
    raw = b"".join(encode_chat_chunk({"v": p}) for p in payloads)
    assert [json.loads(e.data)["v"] for e in decode_in_pieces(raw, size)] == payloads


def test_encoders_write_named_anthropic_events_and_data_only_openai_chunks():
    """Anthropic events carry an event: line; OpenAI chunks are data-only; [DONE] is literal."""
    assert encode_anthropic_event({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert encode_chat_chunk({"a": "\u00e9"}) == 'data: {"a":"\u00e9"}\n\n'.encode()
    assert CHAT_DONE == b"data: [DONE]\n\n"
