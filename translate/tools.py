"""Tool call ids and tool names that fit both dialects, rewritten deterministically.

Policies (PROTOCOLS.md 3.5, FIELD-NOTES "Translation traps"):
- A tool id passes through unchanged when it matches `^[A-Za-z0-9_-]{1,40}$`, the intersection of
  OpenAI's limit (40 characters) and Anthropic's pattern. Any other id is replaced by `toolu_` and
  24 base32 characters of its SHA-1. The result fits both sides and maps to itself, so the same
  function serves both directions and every replayed turn maps identically: a `tool_result` still
  finds its `tool_use` with no state kept on the server.
- A missing id (Ollama, Gemini) is made from a seed the caller passes (message id and position), so
  the output stays byte-stable for a given input.
- Function names longer than 64 characters or holding characters OpenAI rejects are shortened to a
  readable prefix plus a hash; the caller keeps a reverse map built from the request's tool list.
"""

from __future__ import annotations

import base64
import hashlib
import re

PORTABLE_TOOL_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
OPENAI_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
OPENAI_FUNCTION_NAME_MAX_CHARS = 64
_NAME_HASH_CHARS = 8


def _digest(text: str, chars: int) -> str:
    raw = hashlib.sha1(text.encode("utf-8")).digest()
    return base64.b32encode(raw).decode("ascii").lower().rstrip("=")[:chars]


def portable_tool_id(tool_id: object, seed: str = "") -> str:
    """The id to send on either side: `tool_id` itself when it fits both, else a stable rewrite.

    `seed` is used only when `tool_id` is missing or empty; pass something unique to the call
    (message id and block index) so generated ids differ between calls.
    """
    if isinstance(tool_id, str) and PORTABLE_TOOL_ID.fullmatch(tool_id):
        return tool_id
    if not isinstance(tool_id, str) or not tool_id:
        return "toolu_" + _digest("generated:" + seed, 24)
    return "toolu_" + _digest(tool_id, 24)


def openai_function_name(name: str) -> str:
    """`name` if OpenAI accepts it as a function name, else a deterministic shortened form."""
    if OPENAI_FUNCTION_NAME.fullmatch(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    prefix = cleaned[: OPENAI_FUNCTION_NAME_MAX_CHARS - _NAME_HASH_CHARS - 1]
    return f"{prefix}_{_digest(name, _NAME_HASH_CHARS)}"


def function_name_map(names: list[str]) -> dict[str, str]:
    """Reverse map {sent name: original name} for the names that `openai_function_name` changed."""
    return {sent: name for name in names if (sent := openai_function_name(name)) != name}
