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
- A Gemini thought signature rides in the Anthropic tool id, the one field every Anthropic client
  sends back verbatim (in the tool_use and in its tool_result), so no server-side state is needed:
  `<portable id>__ts<namespace><form>_<base64url payload>`. The namespace letter says where the
  signature came from (`g` = extra_content.google, `v` = extra_content.vertex); the form letter says
  how it is carried (`b` = the signature was canonical standard base64, carried as its bytes, which
  is a quarter shorter; `t` = any other text, carried as its UTF-8 bytes). Payloads are unpadded
  base64url, so the whole id matches Anthropic's `^[a-zA-Z0-9_-]+$`; it may be far longer than 40
  characters, which only the Anthropic side ever sees. The portable part never contains `__ts`
  (such an id is rewritten first), so the first marker in an id is always the real one.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

PORTABLE_TOOL_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
CHAT_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
CHAT_FUNCTION_NAME_MAX_CHARS = 64
_NAME_HASH_CHARS = 8


def _digest(text: str, chars: int) -> str:
    # Imported here: most ids and names fit as they are, and hashlib costs half a megabyte of memory.
    import hashlib

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


def chat_function_name(name: str) -> str:
    """`name` if OpenAI accepts it as a function name, else a deterministic shortened form."""
    if CHAT_FUNCTION_NAME.fullmatch(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    prefix = cleaned[: CHAT_FUNCTION_NAME_MAX_CHARS - _NAME_HASH_CHARS - 1]
    return f"{prefix}_{_digest(name, _NAME_HASH_CHARS)}"


def function_name_map(names: list[str]) -> dict[str, str]:
    """Reverse map {sent name: original name} for the names that `chat_function_name` changed."""
    return {sent: name for name in names if (sent := chat_function_name(name)) != name}


# ---------------------------------------------------------------------------------------------
# Thought signatures carried inside tool ids
# ---------------------------------------------------------------------------------------------

THOUGHT_SIGNATURE_MARKER = "__ts"
_NAMESPACE_LETTERS = {"google": "g", "vertex": "v"}
_NAMESPACES_BY_LETTER = {letter: namespace for namespace, letter in _NAMESPACE_LETTERS.items()}
_SIGNED_TOOL_ID = re.compile(r"(?P<plain>.+?)__ts(?P<namespace>[gv])(?P<form>[bt])_(?P<payload>[A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class ThoughtSignature:
    """An upstream's opaque thought signature and the `extra_content` key it came under."""

    value: str
    namespace: str = "google"  # "google" (AI Studio, Vertex) or "vertex" (some Vertex captures)


def _unpadded_b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _canonical_base64_bytes(text: str) -> bytes | None:
    """The bytes `text` encodes when it is canonical standard base64 (re-encoding gives it back)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw and base64.b64encode(raw).decode("ascii") == text else None


def signed_tool_id(tool_id: str, signature: ThoughtSignature) -> str:
    """`tool_id` (already portable) with `signature` appended, for the Anthropic side.

    `split_signed_tool_id` gives both back exactly. A signature under an unknown namespace is
    carried as "google", the namespace every Gemini endpoint reads.
    """
    if THOUGHT_SIGNATURE_MARKER in tool_id:  # keep the first marker the real one
        tool_id = "toolu_" + _digest("signed:" + tool_id, 24)
    namespace = _NAMESPACE_LETTERS.get(signature.namespace, "g")
    raw = _canonical_base64_bytes(signature.value)
    if raw is not None:
        return f"{tool_id}{THOUGHT_SIGNATURE_MARKER}{namespace}b_{_unpadded_b64url(raw)}"
    payload = _unpadded_b64url(signature.value.encode("utf-8"))
    return f"{tool_id}{THOUGHT_SIGNATURE_MARKER}{namespace}t_{payload}"


def split_signed_tool_id(tool_id: str) -> tuple[str, ThoughtSignature | None]:
    """(the plain id, the signature) of an id made by `signed_tool_id`; (tool_id, None) for others.

    A marker whose payload does not decode yields the plain id and no signature: the upstream then
    sees an unsigned call (and gets a dummy signature where the provider adds them).
    """
    match = _SIGNED_TOOL_ID.fullmatch(tool_id) if THOUGHT_SIGNATURE_MARKER in tool_id else None
    if match is None:
        return tool_id, None
    payload = match["payload"]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        if match["form"] == "b":
            value = base64.b64encode(raw).decode("ascii")
        else:
            value = raw.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return match["plain"], None
    if not value:
        return match["plain"], None
    return match["plain"], ThoughtSignature(value, _NAMESPACES_BY_LETTER[match["namespace"]])
