"""What a Responses request's translation into the hub must leave for its answer's way back.

The Responses front (`POST /v1/responses`) is served through Anthropic Messages, the hub
(translate/dialects.py). Translating a request flattens what Anthropic has no word for: freeform
`custom` tools become functions with one string argument, namespaced (MCP) tools get flat names,
a client-side `tool_search` tool becomes a function. The answer must undo each of those, and echo
the request's parameters the way OpenAI's Responses objects do. This is that record. Pure data.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

# Reasoning's opaque field carries the hub's thinking block (RESPONSES.md 8): "swb1." + unpadded
# base64url(JSON {"k": "anth", "d": block}). Claude verifies thinking blocks it gets back, so the
# block rides verbatim; a value without the prefix (OpenAI's own, another proxy's) is foreign.
THINKING_ENVELOPE_PREFIX = "swb1."
THINKING_ENVELOPE_KIND = "anth"
# The other way: an OpenAI reasoning item rides in an Anthropic thinking block's signature.
REASONING_ENVELOPE_KIND = "oai"


@dataclass(frozen=True)
class ResponsesContext:
    """Built by translate/responses_to_anthropic_request.py, read by translate/anthropic_to_responses_response.py."""

    requested_model: str  # the model the client named, echoed in every response object
    response_id: str  # "resp_<hex>", the same in every event of a stream and in the whole answer
    created_at: int  # Unix seconds
    # Anthropic tool name -> the client's tool, for calls coming back:
    custom_tools: frozenset[str] = frozenset()  # were Responses `custom` tools: answer with custom_tool_call{input}
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat name -> (namespace, short name)
    tool_search: frozenset[str] = frozenset()  # were client-executed tool_search tools: answer with tool_search_call
    # Request parameters a Responses object echoes (tools, tool_choice, parallel_tool_calls,
    # instructions, temperature, top_p, max_output_tokens, reasoning, text, store, metadata...),
    # as the client sent them.
    echo: dict = field(default_factory=dict)


def encode_envelope(kind: str, data: dict) -> str:
    """An opaque value carrying `data` across a dialect boundary: "swb1." + base64url(JSON {"k", "d"})."""
    raw = json.dumps({"k": kind, "d": data}, separators=(",", ":"), ensure_ascii=False)
    return THINKING_ENVELOPE_PREFIX + base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_envelope(text: object, kind: str) -> dict | None:
    """The data inside our envelope of `kind`, or None when `text` is not one (foreign or damaged)."""
    if not isinstance(text, str) or not text.startswith(THINKING_ENVELOPE_PREFIX):
        return None
    payload = text[len(THINKING_ENVELOPE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        envelope = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not isinstance(envelope, dict) or envelope.get("k") != kind:
        return None
    data = envelope.get("d")
    return data if isinstance(data, dict) else None


def encode_thinking_envelope(block: dict) -> str:
    """The `encrypted_content` carrying one Anthropic thinking or redacted_thinking block, verbatim."""
    return encode_envelope(THINKING_ENVELOPE_KIND, block)


def decode_thinking_envelope(text: object) -> dict | None:
    """The Anthropic thinking block inside `text`, or None when it is not our well-formed envelope."""
    block = decode_envelope(text, THINKING_ENVELOPE_KIND)
    if block is None:
        return None
    if block.get("type") == "thinking" and isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str):
        return block
    if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
        return block
    return None


def encode_reasoning_signature(item: dict) -> str:
    """An Anthropic thinking block's `signature` carrying an OpenAI Responses reasoning item.

    Only what the item needs to go back under `store: false` rides along (its summary, its content
    when present, its encrypted_content), never its `rs_` id: OpenAI resolves ids against stored
    items, and nothing is stored.
    """
    data = {key: item[key] for key in ("summary", "content", "encrypted_content") if item.get(key) is not None}
    return encode_envelope(REASONING_ENVELOPE_KIND, data)


def decode_reasoning_signature(signature: object) -> dict | None:
    """The Responses reasoning item (`type`, `summary`, `encrypted_content`...) inside a thinking signature, or None."""
    data = decode_envelope(signature, REASONING_ENVELOPE_KIND)
    if data is None or not isinstance(data.get("encrypted_content"), str):
        return None
    summary = data.get("summary")
    item = {"type": "reasoning", "summary": summary if isinstance(summary, list) else []}
    if isinstance(data.get("content"), list):
        item["content"] = data["content"]
    item["encrypted_content"] = data["encrypted_content"]
    return item
