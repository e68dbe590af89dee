"""Hypothesis strategies for tests/test_properties.py: valid requests and streams in both dialects.

Each strategy draws something a well-behaved client or upstream could send, so a translator has
no excuse to fail on it:
- `anthropic_requests()`: Anthropic Messages bodies as Claude Code and SDK clients send them
  (alternating turns, tool_use answered by tool_result, thinking, server tools, odd tool ids, long
  MCP tool names, Anthropic-only fields), with an ChatTarget.
- `openai_requests()`: Chat Completions bodies (system/developer anywhere, parts, tool calls
  answered by runs of tool messages, response_format, reasoning_effort...), with an
  AnthropicTarget.
- `openai_streams()` / `anthropic_streams()`: upstream streams as SSE bytes, with what the
  translated stream must carry (text, reasoning, tool calls) and how the bytes are split, cut and
  ended.

Tool ids and names are unique by construction: every id embeds a counter as `n<k>z`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from hypothesis import strategies as st

from translate.anthropic_to_chat_request import ChatTarget
from translate.chat_to_anthropic_request import JSON_RESPONSE_TOOL, AnthropicTarget
from translate.sse import dumps, encode_anthropic_event

# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
NAME_CHARS = ALNUM + "_-"

# Text a client really sends, plus whatever hypothesis makes up (unicode, control characters).
tricky_texts = st.sampled_from([
    "Hi",
    "Fix the failing test.",
    " ",
    "\n",
    "\t\n ",
    "\u00a0",
    "ünïcödé ✓",
    "日本語のテキスト",
    "emoji 🎉👍🏽",
    "line\u2028separator",
    "trailing space  ",
    "<think>not a tag here</think>",
    '{"looks": "like json"}',
])
texts = tricky_texts | st.text(max_size=40)
nonblank_texts = texts.filter(lambda text: text.strip() != "")
# Pieces of inline reasoning tags, for upstreams that send <think>...</think> in content.
THOUGHT_TAG_PIECES = st.sampled_from(["<think>", "</think>", "<thought>", "</thought>", "<th", "ink>", "</thi", "ought>", "\n\n"])
PREFILL_ENDINGS = st.sampled_from([" ", "\n\n", ":\n", " \t", "\u3000", "."])  # mostly whitespace
short_words = st.text(alphabet=ALNUM, min_size=1, max_size=12)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)

PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
PDF_BYTES = base64.b64encode(b"%PDF-1.4\n1 0 obj<</Type/Pages/Count 1>>endobj\n%%EOF").decode()
IMAGE_MEDIA_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"]

SCHEMAS = [
    {"type": "object", "properties": {}},
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    {  # Claude Code's shape: $schema, additionalProperties, exclusiveMinimum, a huge maximum
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991},
            "command": {"type": "string", "description": "The command to run"},
        },
        "required": ["command"],
    },
    {
        "type": "object",
        "properties": {
            "edits": {"type": "array", "items": {"type": "object", "properties": {"old": {"type": "string"}}}},
            "mode": {"enum": ["a", "b"]},
            "maybe": {"type": ["string", "null"]},
            "ref": {"$ref": "#/$defs/thing"},
        },
        "$defs": {"thing": {"type": "object", "properties": {"x": {"const": 1}}}},
    },
]

# ---------------------------------------------------------------------------------------------
# Unique tool ids of many shapes
# ---------------------------------------------------------------------------------------------


def rarely(draw, one_in: int) -> bool:
    """True about once in `one_in` draws; False is the simplest choice, so shrinking heads for it."""
    return draw(st.integers(min_value=1, max_value=one_in)) == one_in


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@st.composite
def tool_ids(draw, serial: int) -> str:
    """A tool id in one of the shapes seen in the wild; `serial` makes it unique."""
    tag = f"n{serial}z"
    shape = draw(st.sampled_from(
        ["toolu", "call", "dotted", "colons", "long", "exactly_40", "unicode", "space", "signed_bytes", "signed_text"]
    ))
    if shape == "toolu":
        return f"toolu_01{tag}" + draw(st.text(alphabet=ALNUM, min_size=8, max_size=20))
    if shape == "call":
        return f"call_{tag}" + draw(st.text(alphabet=ALNUM, max_size=20))
    if shape == "dotted":
        return f"functions.Bash.{tag}"
    if shape == "colons":
        return f"functions.Bash:{tag}:0"  # Kimi-style
    if shape == "long":
        return f"toolu_{tag}_" + "x" * draw(st.integers(min_value=30, max_value=200))
    if shape == "exactly_40":
        return (f"call_{tag}_" + "y" * 40)[:40]
    if shape == "unicode":
        return f"ид-{tag}"
    if shape == "space":
        return f"call {tag}"
    # Ids carrying a Gemini thought signature, as the response translation makes them.
    if shape == "signed_bytes":
        payload = _b64url(draw(st.binary(min_size=1, max_size=24)))
        return f"toolu_{tag}__tsgb_{payload}"
    payload = _b64url(draw(st.text(min_size=1, max_size=12)).encode("utf-8"))
    return f"call_{tag}__tsvt_{payload}"


# ---------------------------------------------------------------------------------------------
# Anthropic requests
# ---------------------------------------------------------------------------------------------

SERVER_TOOLS = [
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    {"type": "web_fetch_20250910", "name": "web_fetch"},
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    {"type": "code_execution_20250825", "name": "code_execution"},
]
ANTHROPIC_ONLY_FIELDS = {
    "top_k": st.integers(min_value=1, max_value=500),
    "service_tier": st.sampled_from(["auto", "standard_only"]),
    "container": st.just("container_01abc"),
    "cache_control": st.just({"type": "ephemeral"}),
    "inference_geo": st.just("us"),
    "context_management": st.just({"edits": [{"type": "clear_tool_uses_20250919"}]}),
    "mcp_servers": st.just([{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}]),
    "betas": st.just(["interleaved-thinking-2025-05-14"]),
}

anthropic_tool_names = st.one_of(
    st.sampled_from(["get_weather", "Bash", "Read", "Edit", "TodoWrite", "x"]),
    st.builds(  # MCP names past OpenAI's 64 characters, sharing long prefixes
        lambda server, size: f"mcp__{server}__" + ("read_page_text" * 7)[:size],
        st.sampled_from(["claude-in-chrome", "plugin_context7_context7", "github"]),
        st.integers(min_value=30, max_value=90),
    ),
    st.builds(
        lambda server, tool: f"mcp__{server}__{tool}",
        st.text(alphabet=NAME_CHARS, min_size=1, max_size=40),
        st.text(alphabet=NAME_CHARS, min_size=1, max_size=70),
    ),
    st.text(alphabet=NAME_CHARS, min_size=1, max_size=128),
)


def _cache_control(draw) -> dict:
    return {"cache_control": {"type": "ephemeral"}} if rarely(draw, 5) else {}


@st.composite
def anthropic_text_blocks(draw) -> dict:
    block = {"type": "text", "text": draw(texts), **_cache_control(draw)}
    if rarely(draw, 10):
        block["citations"] = [{"type": "char_location", "cited_text": "x", "document_index": 0,
                               "start_char_index": 0, "end_char_index": 1}]
    return block


@st.composite
def anthropic_media_blocks(draw) -> dict:
    """An image or a document in one of its source forms."""
    kind = draw(st.sampled_from(["image_b64", "image_url", "pdf", "text_doc", "content_doc", "url_doc", "search_result"]))
    if kind == "image_b64":
        source = {"type": "base64", "media_type": draw(st.sampled_from(IMAGE_MEDIA_TYPES)), "data": PNG_1X1}
        return {"type": "image", "source": source, **_cache_control(draw)}
    if kind == "image_url":
        return {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    if kind == "search_result":
        return {"type": "search_result", "source": "https://example.com/page", "title": draw(texts),
                "content": [{"type": "text", "text": draw(nonblank_texts)}]}
    block: dict = {"type": "document"}
    if kind == "pdf":
        block["source"] = {"type": "base64", "media_type": "application/pdf", "data": PDF_BYTES}
    elif kind == "text_doc":
        block["source"] = {"type": "text", "media_type": "text/plain", "data": draw(texts)}
    elif kind == "content_doc":
        block["source"] = {"type": "content", "content": [{"type": "text", "text": draw(nonblank_texts)}]}
    else:
        block["source"] = {"type": "url", "url": "https://example.com/paper.pdf"}
    if draw(st.booleans()):
        block["title"] = draw(texts)
    if draw(st.booleans()):
        block["citations"] = {"enabled": True}
    if draw(st.booleans()):
        block["context"] = draw(texts)
    return block


@st.composite
def tool_result_blocks(draw, tool_use_id: str) -> dict:
    block: dict = {"type": "tool_result", "tool_use_id": tool_use_id}
    form = draw(st.sampled_from(["string", "empty_string", "absent", "empty_list", "blocks"]))
    if form == "string":
        block["content"] = draw(texts)
    elif form == "empty_string":
        block["content"] = ""
    elif form == "empty_list":
        block["content"] = []
    elif form == "blocks":
        inner = st.one_of(
            anthropic_text_blocks(),
            anthropic_media_blocks(),
            st.builds(lambda name: {"type": "tool_reference", "tool_name": name}, anthropic_tool_names),
        )
        block["content"] = draw(st.lists(inner, min_size=1, max_size=3))
    if rarely(draw, 4):
        block["is_error"] = True
    block.update(_cache_control(draw))
    return block


class _Serials:
    """Hands out increasing numbers within one drawn request, for unique ids."""

    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        self.next += 1
        return self.next


@st.composite
def assistant_turns(draw, serials: _Serials, names: list[str], allow_tools: bool) -> tuple[dict, list[str]]:
    """(an assistant message, the ids of its tool_use blocks, which the next user turn answers)."""
    if rarely(draw, 6):
        return {"role": "assistant", "content": draw(texts)}, []
    blocks: list[dict] = []
    ids: list[str] = []
    if rarely(draw, 3):
        signature = _b64url(draw(st.binary(min_size=4, max_size=32)))
        blocks.append({"type": "thinking", "thinking": draw(texts), "signature": signature})
    if rarely(draw, 7):
        blocks.append({"type": "redacted_thinking", "data": _b64url(draw(st.binary(min_size=4, max_size=32)))})
    if rarely(draw, 7):
        server_id = f"srvtoolu_n{serials.take()}z"
        blocks.append({"type": "server_tool_use", "id": server_id, "name": "web_search", "input": {"query": draw(texts)}})
        result = {"type": "web_search_result", "url": "https://example.com", "title": "Example",
                  "encrypted_content": "EqgfCioIARgBIiQ3", "page_age": None}
        blocks.append({"type": "web_search_tool_result", "tool_use_id": server_id, "content": [result]})
    blocks += draw(st.lists(anthropic_text_blocks(), max_size=2))
    if allow_tools:
        for _ in range(draw(st.integers(0, 3))):
            tool_id = draw(tool_ids(serials.take()))
            name = draw(st.sampled_from(names)) if names and not rarely(draw, 5) else draw(anthropic_tool_names)
            blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": draw(json_objects)})
            ids.append(tool_id)
    if rarely(draw, 6):
        blocks += draw(st.lists(anthropic_text_blocks(), min_size=1, max_size=1))  # text after a tool_use
    if not blocks:
        blocks = [{"type": "text", "text": draw(nonblank_texts)}]
    return {"role": "assistant", "content": blocks}, ids


@st.composite
def user_turns(draw, answering: list[str], first: bool) -> dict:
    """A user message: the results for `answering` first (in any order), then its own content."""
    results = [draw(tool_result_blocks(tool_id)) for tool_id in draw(st.permutations(answering))]
    if not results and rarely(draw, 4):
        text = draw(nonblank_texts) if first else draw(texts)
        return {"role": "user", "content": text}
    own = draw(st.lists(st.one_of(anthropic_text_blocks(), anthropic_media_blocks()), max_size=3))
    if first:
        own.insert(0, {"type": "text", "text": draw(nonblank_texts)})
    if not results and not own:
        own = [{"type": "text", "text": draw(nonblank_texts)}]
    return {"role": "user", "content": results + own}


@st.composite
def anthropic_tools(draw) -> list[dict]:
    custom_names = draw(st.lists(anthropic_tool_names, max_size=4, unique=True))
    servers = draw(st.lists(st.sampled_from(SERVER_TOOLS), max_size=2, unique_by=lambda tool: tool["name"]))
    tools: list[dict] = []
    for name in custom_names:
        if name in {server["name"] for server in servers}:
            continue
        tool: dict = {"name": name, "input_schema": draw(st.sampled_from(SCHEMAS))}
        if draw(st.booleans()):
            tool["description"] = draw(texts)
        if rarely(draw, 4):
            tool["type"] = "custom"
        if rarely(draw, 4):
            tool["strict"] = True
        tool.update(_cache_control(draw))
        tools.append(tool)
    tools += [dict(server) for server in servers]
    return draw(st.permutations(tools))


@st.composite
def anthropic_requests(draw) -> tuple[dict, ChatTarget]:
    """A valid Anthropic Messages request and the OpenAI target it is translated for."""
    serials = _Serials()
    tools = draw(anthropic_tools())
    custom_names = [tool["name"] for tool in tools if tool.get("type") in (None, "custom")]
    messages: list[dict] = []
    pending: list[str] = []  # tool_use ids the next user turn must answer
    for exchange in range(draw(st.integers(min_value=1, max_value=5))):
        messages.append(draw(user_turns(pending, first=exchange == 0)))
        assistant, pending = draw(assistant_turns(serials, custom_names, allow_tools=True))
        messages.append(assistant)
    ending = draw(st.sampled_from(["user", "prefill"]))
    if pending or ending == "user":
        messages.append(draw(user_turns(pending, first=False)))
    else:
        messages.pop()  # end on a prefill: a text-only assistant turn, trailing whitespace and all
        messages.append({"role": "assistant", "content": "Sure" + draw(PREFILL_ENDINGS | texts)})
    # Claude Code's mid-conversation system turns, even where tool results are still due.
    for _ in range(draw(st.integers(1, 2)) if rarely(draw, 3) else 0):
        position = draw(st.integers(min_value=1, max_value=len(messages)))
        content = draw(st.one_of(texts, st.lists(anthropic_text_blocks(), max_size=2)))
        messages.insert(position, {"role": "system", "content": content})

    thinking_kind = draw(st.sampled_from([None, "enabled", "adaptive", "disabled"]))
    max_tokens = draw(st.integers(min_value=1025 if thinking_kind == "enabled" else 0, max_value=64000))
    body: dict = {"model": draw(st.sampled_from(["claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5-20251001"])),
                  "max_tokens": max_tokens, "messages": messages}
    system_form = draw(st.sampled_from([None, "string", "blocks"]))
    if system_form == "string":
        body["system"] = draw(texts)
    elif system_form == "blocks":
        body["system"] = [{"type": "text", "text": draw(nonblank_texts), **_cache_control(draw)}
                          for _ in range(draw(st.integers(1, 3)))]
    if tools:
        body["tools"] = tools
        names = [tool["name"] for tool in tools]
        choices = [{"type": "auto"}, {"type": "none"}]
        if thinking_kind != "enabled":  # Anthropic: with thinking, tool_choice is auto or none
            choices += [{"type": "any"}, {"type": "tool", "name": draw(st.sampled_from(names))}]
        choice = draw(st.none() | st.sampled_from(choices))
        if choice is not None:
            if choice["type"] != "none" and draw(st.booleans()):
                choice = {**choice, "disable_parallel_tool_use": True}
            body["tool_choice"] = choice
    if thinking_kind == "enabled":
        body["thinking"] = {"type": "enabled", "budget_tokens": draw(st.integers(1024, max_tokens - 1))}
    elif thinking_kind is not None:
        body["thinking"] = {"type": thinking_kind}
    output_config: dict = {}
    if draw(st.booleans()):
        output_config["effort"] = draw(st.sampled_from(["low", "medium", "high", "xhigh", "max"]))
    if rarely(draw, 5):
        output_config["format"] = {"type": "json_schema", "schema": draw(st.sampled_from(SCHEMAS))}
    if output_config:
        body["output_config"] = output_config
    if thinking_kind != "enabled" and draw(st.booleans()):
        body["temperature"] = draw(st.floats(min_value=0, max_value=1))
    if rarely(draw, 4):
        body["top_p"] = draw(st.floats(min_value=0.95, max_value=1))
    if draw(st.booleans()):
        body["stop_sequences"] = draw(st.lists(nonblank_texts, max_size=7))
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(st.sampled_from(['{"device_id":"abc","session_id":"s1"}', "user-1234", ""]))}
    if draw(st.booleans()):
        body["stream"] = draw(st.booleans())
    for name in draw(st.lists(st.sampled_from(sorted(ANTHROPIC_ONLY_FIELDS)), max_size=3, unique=True)):
        body[name] = draw(ANTHROPIC_ONLY_FIELDS[name])
    for name in draw(st.lists(st.text(alphabet=ALNUM + "_", min_size=1, max_size=12), max_size=2)):
        body.setdefault("x_" + name, draw(json_values))  # fields newer than the translator

    reasoning = draw(st.booleans())
    target = ChatTarget(
        model="gpt-5" if reasoning else draw(st.sampled_from(["gpt-4o", "gemini-2.5-flash", "llama3.2"])),
        reasoning=reasoning,
        max_tokens_limit=draw(st.none() | st.integers(min_value=1, max_value=32000)),
        reasoning_history_field=draw(st.sampled_from([None, "reasoning_content", "reasoning"])),
        send_user=draw(st.booleans()),
        thought_signatures=draw(st.booleans()),
        max_stop_sequences=draw(st.sampled_from([4, 5])),
    )
    return body, target


# ---------------------------------------------------------------------------------------------
# OpenAI requests
# ---------------------------------------------------------------------------------------------

openai_tool_names = st.one_of(
    st.sampled_from(["get_weather", "Bash", "search_docs", "x"]),
    st.text(alphabet=NAME_CHARS, min_size=1, max_size=64),
    st.sampled_from(["mcp.server/search", "tool with spaces", "ünï", "a" * 150]),  # Anthropic rejects these
).filter(lambda name: name != JSON_RESPONSE_TOOL)


def _data_uri(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


@st.composite
def openai_user_parts(draw, for_tool: bool = False) -> dict:
    kinds = ["text", "text", "image"] + ([] if for_tool else ["file"])
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        return {"type": "text", "text": draw(texts)}
    if kind == "image":
        url = draw(st.sampled_from([
            "https://example.com/cat.png",
            _data_uri("image/png", PNG_1X1),
            _data_uri("image/jpg", PNG_1X1),  # a common alias
            _data_uri("IMAGE/WEBP", PNG_1X1),
        ]))
        image: dict = {"url": url}
        if draw(st.booleans()):
            image["detail"] = draw(st.sampled_from(["auto", "low", "high"]))
        return {"type": "image_url", "image_url": image}
    text_file = base64.b64encode(draw(texts).encode("utf-8")).decode()
    file_data = draw(st.sampled_from([
        _data_uri("application/pdf", PDF_BYTES),
        PDF_BYTES,  # bare base64: a PDF
        _data_uri("text/plain", text_file),
    ]))
    file: dict = {"file_data": file_data}
    if draw(st.booleans()):
        file["filename"] = draw(st.sampled_from(["report.pdf", "notes.txt", "ünï.pdf"]))
    return {"type": "file", "file": file}


def _openai_content(draw, parts: st.SearchStrategy) -> object:
    form = draw(st.sampled_from(["string", "string", "parts"]))
    if form == "string":
        return draw(texts)
    return draw(st.lists(parts, max_size=3))


@st.composite
def openai_arguments(draw) -> str:
    form = draw(st.sampled_from(["empty", "blank", "braces", "compact", "pretty", "ascii"]))
    if form == "empty":
        return ""
    if form == "blank":
        return "  "
    if form == "braces":
        return "{}"
    value = draw(json_objects)
    if form == "compact":
        return dumps(value)
    if form == "pretty":
        return json.dumps(value, indent=2)
    return json.dumps(value)


@st.composite
def openai_assistant_messages(draw, calls: list[dict]) -> dict:
    message: dict = {"role": "assistant"}
    form = draw(st.sampled_from(["none", "empty", "string", "parts", "absent"]))
    if form == "none":
        message["content"] = None
    elif form == "empty":
        message["content"] = ""
    elif form == "string":
        message["content"] = draw(texts)
    elif form == "parts":
        part = st.one_of(
            st.builds(lambda text: {"type": "text", "text": text}, texts),
            st.builds(lambda text: {"type": "refusal", "refusal": text}, texts),
        )
        message["content"] = draw(st.lists(part, max_size=2))
    if not calls and form in ("none", "empty", "absent"):
        message["content"] = draw(nonblank_texts)
    if rarely(draw, 7):
        message["refusal"] = draw(texts)
    if rarely(draw, 5):
        message[draw(st.sampled_from(["reasoning_content", "reasoning"]))] = draw(texts)
    if rarely(draw, 7):
        message["name"] = "helper"
    if calls:
        message["tool_calls"] = calls
    return message


@st.composite
def openai_tools(draw) -> list[dict]:
    names = draw(st.lists(openai_tool_names, max_size=4, unique=True))
    tools = []
    for name in names:
        function: dict = {"name": name}
        parameters = draw(st.sampled_from(["absent", "schema", "untyped"]))
        if parameters == "schema":
            function["parameters"] = draw(st.sampled_from(SCHEMAS))
        elif parameters == "untyped":  # no "type": the translator adds "object"
            function["parameters"] = {"properties": {"q": {"type": "string"}}}
        if draw(st.booleans()):
            function["description"] = draw(texts)
        if rarely(draw, 4):
            function["strict"] = True
        tools.append({"type": "function", "function": function})
    return tools


@st.composite
def openai_requests(draw) -> tuple[dict, AnthropicTarget]:
    """A valid Chat Completions request (tool messages answer the calls just made) and a target."""
    serial = 0
    tools = draw(openai_tools())
    names = [tool["function"]["name"] for tool in tools]
    messages: list[dict] = []
    system_part = st.builds(lambda text: {"type": "text", "text": text}, texts)
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        kind = draw(st.sampled_from(["system", "user", "user", "assistant", "assistant_tools", "assistant_tools"]))
        if kind == "system":
            role = draw(st.sampled_from(["system", "developer"]))
            messages.append({"role": role, "content": _openai_content(draw, system_part)})
        elif kind == "user":
            messages.append({"role": "user", "content": _openai_content(draw, openai_user_parts())})
        elif kind == "assistant":
            messages.append(draw(openai_assistant_messages([])))
        else:
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                serial += 1
                name = draw(st.sampled_from(names)) if names and not rarely(draw, 5) else draw(openai_tool_names)
                call = {"id": draw(tool_ids(serial)), "type": "function",
                        "function": {"name": name, "arguments": draw(openai_arguments())}}
                calls.append(call)
            messages.append(draw(openai_assistant_messages(calls)))
            # The run of tool messages: every call answered once, in any order. Rarely a result
            # goes missing (an interrupted turn) or comes twice; both are documented tolerances.
            answered = list(draw(st.permutations([call["id"] for call in calls])))
            if rarely(draw, 10):
                answered.pop()
            if answered and rarely(draw, 10):
                answered.append(answered[0])
            for call_id in answered:
                content = _openai_content(draw, openai_user_parts(for_tool=True))
                tool_message = {"role": "tool", "tool_call_id": call_id, "content": content}
                if rarely(draw, 4):
                    tool_message["name"] = "whatever"
                messages.append(tool_message)
                if rarely(draw, 10):  # a system message inside the run
                    messages.append({"role": "system", "content": draw(texts)})

    if rarely(draw, 4):  # a prefill, often with trailing whitespace Anthropic refuses
        messages.append({"role": "assistant", "content": "Sure" + draw(PREFILL_ENDINGS | texts)})
    body: dict = {"model": draw(st.sampled_from(["gpt-4o", "claude-sonnet-5", "o3"])), "messages": messages}
    if tools:
        body["tools"] = tools
        choice = draw(st.sampled_from(["absent", "none", "auto", "required", "named", "allowed"]))
        if choice in ("none", "auto", "required"):
            body["tool_choice"] = choice
        elif choice == "named":
            body["tool_choice"] = {"type": "function", "function": {"name": draw(st.sampled_from(names))}}
        elif choice == "allowed":
            allowed = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
            body["tool_choice"] = {"type": "allowed_tools", "allowed_tools": {
                "mode": draw(st.sampled_from(["auto", "required"])),
                "tools": [{"type": "function", "function": {"name": name}} for name in allowed],
            }}
        if draw(st.booleans()):
            body["parallel_tool_calls"] = draw(st.booleans())
    response_format = draw(st.sampled_from(["absent", "text", "json_object", "json_schema", "json_schema_bare"]))
    if response_format in ("text", "json_object"):
        body["response_format"] = {"type": response_format}
    elif response_format == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "description": draw(texts), "strict": True, "schema": draw(st.sampled_from(SCHEMAS))}}
    elif response_format == "json_schema_bare":
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer"}}
    effort = draw(st.sampled_from([None, "none", "minimal", "low", "medium", "high", "xhigh", "max"]))
    if effort is not None:
        body["reasoning_effort"] = effort
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(min_value=0, max_value=2))
    if rarely(draw, 4):
        body["top_p"] = draw(st.floats(min_value=0, max_value=1))
    stop = draw(st.sampled_from(["absent", "string", "list"]))
    stops = st.sampled_from(["\n", " ", "\n\n", "END", "###", "Observation:"]) | texts
    if stop == "string":
        body["stop"] = draw(stops)
    elif stop == "list":
        body["stop"] = draw(st.lists(stops, max_size=4))
    limit_field = draw(st.sampled_from([None, "max_tokens", "max_completion_tokens", "both"]))
    if limit_field in ("max_tokens", "both"):
        body["max_tokens"] = draw(st.integers(min_value=1, max_value=200000))
    if limit_field in ("max_completion_tokens", "both"):
        body["max_completion_tokens"] = draw(st.integers(min_value=1, max_value=200000))
    if draw(st.booleans()):
        body["stream"] = draw(st.booleans())
        if body["stream"] and draw(st.booleans()):
            body["stream_options"] = {"include_usage": draw(st.booleans())}
    extras = {
        "n": st.just(1),
        "user": st.sampled_from(["user-42", ""]),
        "safety_identifier": st.just("hash-abc"),
        "seed": st.integers(0, 2**31),
        "logit_bias": st.just({"50256": -100}),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "store": st.booleans(),
        "metadata": st.just({"k": "v"}),
        "service_tier": st.just("auto"),
        "verbosity": st.sampled_from(["low", "high"]),
        "prompt_cache_key": st.just("key-1"),
        "logprobs": st.just(False),
        "web_search_options": st.just({}),
    }
    for name in draw(st.lists(st.sampled_from(sorted(extras)), max_size=4, unique=True)):
        body[name] = draw(extras[name])
    target = AnthropicTarget(
        model="claude-sonnet-4-5",
        default_max_tokens=draw(st.sampled_from([4096, 8192, 32000])),
        max_tokens_limit=draw(st.none() | st.integers(min_value=1, max_value=64000)),
        system_prompt=draw(st.none() | st.just("Be helpful.")),
        auto_cache=draw(st.booleans()),
    )
    return body, target


# ---------------------------------------------------------------------------------------------
# Byte plumbing shared by both stream strategies
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How upstream bytes reach the translator: where reads split, where the body is cut, how it ends."""

    splits: tuple[int, ...]  # read boundaries, sorted offsets into the (cut) bytes
    cut_at: int | None  # the body stops after this many bytes (a broken connection); None = whole
    ending: str  # "close" (clean EOF) or "fail" (the read raised)

    def pieces(self, raw: bytes) -> list[bytes]:
        raw = raw if self.cut_at is None else raw[: self.cut_at]
        bounds = [0, *[offset for offset in self.splits if 0 < offset < len(raw)], len(raw)]
        return [raw[start:end] for start, end in zip(bounds, bounds[1:]) if end > start]


@st.composite
def deliveries(draw, raw: bytes) -> Delivery:
    """Random read boundaries (now and then byte by byte), sometimes a cut, then EOF or a failed read."""
    cut_at = None
    if rarely(draw, 5):
        cut_at = draw(st.integers(min_value=0, max_value=len(raw)))
    splits = draw(st.lists(st.integers(min_value=1, max_value=max(1, len(raw) - 1)), max_size=12))
    if rarely(draw, 6):
        splits += list(range(1, min(len(raw), 400)))  # byte by byte through the first events
    return Delivery(tuple(sorted(set(splits))), cut_at, draw(st.sampled_from(["close", "close", "fail"])))


def _split_text(draw, text: str) -> list[str]:
    """`text` in consecutive non-empty pieces, cut anywhere (inside characters' JSON escapes too)."""
    if len(text) < 2:
        return [text] if text else []
    cuts = sorted(set(draw(st.lists(st.integers(1, len(text) - 1), max_size=4))))
    bounds = [0, *cuts, len(text)]
    return [text[start:end] for start, end in zip(bounds, bounds[1:])]


# ---------------------------------------------------------------------------------------------
# OpenAI streams (the upstream side of the Anthropic front)
# ---------------------------------------------------------------------------------------------


@dataclass
class ExpectedCall:
    """One upstream tool call, as the translated tool_use block must carry it."""

    upstream_id: str | None
    name: str
    arguments: str  # the concatenated argument text
    upstream_index: int | None  # the index of its first fragment
    signature: str | None = None


@dataclass
class OpenAIStream:
    """An upstream OpenAI stream and what its translation must say."""

    raw: bytes
    delivery: Delivery
    options: dict  # ChatToAnthropicStream keyword arguments
    text: str  # content + refusal before the finish, in order
    reasoning: str
    calls: list[ExpectedCall] = field(default_factory=list)
    interleaved: bool = False  # parallel calls' fragments interleave: unbuffered mode must fail
    only_content: bool = True  # no reasoning, refusal or tool call deltas: just content
    usage: dict | None = None
    done: bool = False  # data: [DONE] is in the stream
    error_chunk: bool = False  # an upstream {"error": ...} chunk is in the stream
    chunk_count: int = 0  # JSON chunks other than the error chunk


STREAM_ID = "chatcmpl-prop"
STREAM_TOOL_NAMES = {"mcp_server_search_1a2b3c4d": "mcp.server/search"}


def _chunk(delta: dict | None = None, finish: str | None = None, *, choices: bool = True, **extra) -> dict:
    chunk: dict = {"id": STREAM_ID, "object": "chat.completion.chunk", "created": 1754000000, "model": "gpt-4o"}
    if choices:
        chunk["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    else:
        chunk["choices"] = []
    chunk.update(extra)
    return chunk


@st.composite
def _tool_call_groups(draw, calls: list[ExpectedCall], next_index: int, serial: int, signatures: bool):
    """One group of tool calls in one upstream's style.

    Returns (chunks, whether unbuffered translation must fail on them, the next free index).
    """
    style = draw(st.sampled_from(["openai", "late_name", "no_index", "whole", "whole_one_chunk", "gemini", "reused_index", "interleaved"]))
    count = draw(st.integers(1, 3))
    group: list[ExpectedCall] = []
    for k in range(count):
        name = draw(st.sampled_from(["get_weather", "Bash", "mcp_server_search_1a2b3c4d"]) | short_words)
        arguments = draw(st.one_of(st.just(""), st.just("{}"), json_objects.map(dumps), st.just('{"partial": ')))
        index = {"gemini": None, "no_index": None, "reused_index": next_index}.get(style, next_index + k)
        has_id = style not in ("gemini", "no_index") or draw(st.booleans())
        upstream_id = draw(tool_ids(serial * 10 + k)) if has_id else None
        signature = None
        if signatures and style in ("gemini", "whole", "whole_one_chunk") and draw(st.booleans()):
            signature = base64.b64encode(draw(st.binary(min_size=1, max_size=20))).decode()
        group.append(ExpectedCall(upstream_id, name, arguments, index, signature))

    def entry(call: ExpectedCall, **function) -> dict:
        out: dict = {}
        if call.upstream_index is not None:
            out["index"] = call.upstream_index
        if call.upstream_id is not None and "name" in function:
            out["id"] = call.upstream_id
            out["type"] = "function"
        out["function"] = function
        if call.signature is not None and "name" in function:
            out["extra_content"] = {"google": {"thought_signature": call.signature}}
        return out

    chunks: list[dict] = []
    if style in ("whole", "gemini", "reused_index"):
        for call in group:
            chunks.append(_chunk({"tool_calls": [entry(call, name=call.name, arguments=call.arguments)]}))
    elif style == "whole_one_chunk":
        chunks.append(_chunk({"tool_calls": [entry(call, name=call.name, arguments=call.arguments) for call in group]}))
    elif style in ("openai", "late_name", "no_index"):  # no_index: later fragments go to the latest call
        for call in group:
            pieces = _split_text(draw, call.arguments)
            if style == "late_name" and pieces:
                chunks.append(_chunk({"tool_calls": [entry(call, arguments=pieces.pop(0))]}))
            chunks.append(_chunk({"tool_calls": [entry(call, name=call.name, arguments="")]}))
            chunks += [_chunk({"tool_calls": [entry(call, arguments=piece)]}) for piece in pieces]
    else:  # interleaved: every call starts, then argument pieces round-robin by index
        chunks.append(_chunk({"tool_calls": [entry(call, name=call.name, arguments="") for call in group]}))
        queues = [_split_text(draw, call.arguments) for call in group]
        while any(queues):
            for call, queue in zip(group, queues):
                if queue:
                    chunks.append(_chunk({"tool_calls": [entry(call, arguments=queue.pop(0))]}))
    calls += group
    # Unbuffered, a fragment for a call whose block is no longer the open one cannot be placed:
    # here the last call to start is the open one, so any other call's arguments arrive too late.
    interleaved = style == "interleaved" and any(call.arguments for call in group[:-1])
    return chunks, interleaved, (next_index if style in ("gemini", "no_index") else next_index + count)


def _encode_data_events(draw, payloads: list[str]) -> bytes:
    """SSE bytes for data-only events, in one of the framings upstreams use."""
    newline = draw(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]))
    space = draw(st.sampled_from([b" ", b" ", b""]))
    raw = b"\xef\xbb\xbf" if rarely(draw, 10) else b""
    for payload in payloads:
        if rarely(draw, 7):
            raw += b": keep-alive" + newline + newline
        raw += b"data:" + space + payload.encode("utf-8") + newline + newline
    return raw


@st.composite
def openai_streams(draw) -> OpenAIStream:
    """An OpenAI-style upstream stream (OpenAI, Azure, Gemini, Ollama quirks) with its delivery."""
    signatures = draw(st.booleans())
    options = {
        "buffer_tool_calls": draw(st.booleans()),
        "thought_signatures": signatures,
        "thought_tags": rarely(draw, 4),
    }
    chunks: list[dict] = []
    text = reasoning = ""
    calls: list[ExpectedCall] = []
    interleaved = False
    only_content = True
    next_index = 0
    if rarely(draw, 4):  # Azure's first frame: empty id, no choices, filter results
        chunks.append({"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []})
    if draw(st.booleans()):
        chunks.append(_chunk({"role": "assistant", "content": ""}))
    if options["thought_tags"] and not rarely(draw, 3):  # reasoning inline, split anywhere
        tag = draw(st.sampled_from(["think", "thought"]))
        leading = draw(st.sampled_from(["", "\n", "  "])) + f"<{tag}>" + draw(texts) + f"</{tag}>"
        tagged = leading + draw(st.sampled_from(["", "\n\n", leading]) | texts) + draw(texts)
        chunks += [_chunk({"content": piece}) for piece in _split_text(draw, tagged)]
        text += tagged
    kinds = ["text", "text", "reasoning", "refusal", "tools", "empty", "azure_frame", "role_only"]
    if options["thought_tags"] and draw(st.booleans()):
        kinds = ["text", "empty", "azure_frame", "role_only"]  # content only: comparable with the whole body
    for step in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(kinds))
        if kind == "text":
            piece = draw(texts | THOUGHT_TAG_PIECES)
            content = [{"type": "text", "text": piece}] if rarely(draw, 10) else piece
            chunks.append(_chunk({"content": content}))
            text += piece
        elif kind == "reasoning":
            only_content = False
            piece = draw(texts)
            chunks.append(_chunk({draw(st.sampled_from(["reasoning_content", "reasoning"])): piece}))
            reasoning += piece
        elif kind == "refusal":
            only_content = False
            piece = draw(texts)
            chunks.append(_chunk({"refusal": piece}))
            text += piece
        elif kind == "tools":
            only_content = False
            group, group_interleaved, next_index = draw(_tool_call_groups(calls, next_index, step + 1, signatures))
            chunks += group
            interleaved = interleaved or group_interleaved
        elif kind == "empty":
            chunks.append(_chunk({"content": None}))
        elif kind == "azure_frame":
            chunks.append(_chunk(choices=False, prompt_filter_results=[{"prompt_index": 0}]))
        else:
            chunks.append(_chunk({"role": "assistant"}))
    finish = draw(st.sampled_from(["stop", "tool_calls", "length", "content_filter", None]))
    if finish is not None:
        chunks.append(_chunk({}, finish))
    usage = None
    if draw(st.booleans()):
        usage = {"prompt_tokens": draw(st.integers(0, 10**6)), "completion_tokens": draw(st.integers(0, 10**5))}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"] + draw(st.sampled_from([0, 0, 17]))
        if draw(st.booleans()):
            usage["prompt_tokens_details"] = {"cached_tokens": draw(st.integers(0, usage["prompt_tokens"]))}
        chunks.append(_chunk(choices=False, usage=usage))
    if finish is not None and rarely(draw, 5):  # after the finish: ignored
        chunks.append(_chunk({"content": "late text"}))
    chunk_count = len(chunks)
    error_chunk = rarely(draw, 10)
    if error_chunk:
        position = draw(st.integers(0, len(chunks)))
        chunks.insert(position, {"error": {"message": "Overloaded", "type": "server_error", "code": None}})
    done = not rarely(draw, 3)
    payloads = [json.dumps(chunk) if rarely(draw, 5) else dumps(chunk) for chunk in chunks]
    if done:
        payloads.append("[DONE]")
    raw = _encode_data_events(draw, payloads)
    return OpenAIStream(
        raw=raw,
        delivery=draw(deliveries(raw)),
        options=options,
        text=text,
        reasoning=reasoning,
        calls=calls,
        interleaved=interleaved,
        only_content=only_content,
        usage=usage,
        done=done,
        error_chunk=error_chunk,
        chunk_count=chunk_count,
    )


# ---------------------------------------------------------------------------------------------
# Anthropic streams (the upstream side of the OpenAI front)
# ---------------------------------------------------------------------------------------------


@dataclass
class AnthropicStream:
    """An upstream Anthropic stream and what its translation must say."""

    raw: bytes
    delivery: Delivery
    options: dict  # AnthropicToChatStream keyword arguments
    text: str
    reasoning: str
    calls: list[dict]  # {"id", "name", "arguments"} for every tool_use block translated to a call
    stop_reason: str | None  # in message_delta, None when the stream has none
    complete: bool  # message_stop is in the stream
    error_event: bool  # an error event arrives before the stream's end
    usage: dict  # the final cumulative Anthropic usage


ANTHROPIC_STOP_REASONS = ["end_turn", "max_tokens", "tool_use", "stop_sequence", "pause_turn", "refusal",
                          "model_context_window_exceeded"]


@st.composite
def anthropic_streams(draw) -> AnthropicStream:
    """A valid Anthropic stream (pings anywhere, every block kind), possibly cut or failing."""
    json_mode = draw(st.sampled_from([None, None, "json_object", "json_schema"]))
    options = {"include_usage": draw(st.booleans()), "json_mode": json_mode,
               "tool_names": {"mcp_server_search_1a2b3c4d": "mcp.server/search"}}
    usage = {"input_tokens": draw(st.integers(0, 10**6)), "output_tokens": draw(st.integers(0, 5)),
             "cache_creation_input_tokens": draw(st.integers(0, 10**4)),
             "cache_read_input_tokens": draw(st.integers(0, 10**5))}
    message = {"id": "msg_01Prop", "type": "message", "role": "assistant", "model": "claude-sonnet-5",
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": dict(usage)}
    events: list[dict] = [{"type": "message_start", "message": message}]
    text = reasoning = ""
    calls: list[dict] = []
    for index in range(draw(st.integers(0, 6))):
        if rarely(draw, 5):
            events.append({"type": "ping"})
        kind = draw(st.sampled_from(["text", "text", "thinking", "redacted_thinking", "tool_use", "tool_use_whole",
                                     "server_tool_use", "json_answer"]))
        if kind == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            for piece in draw(st.lists(texts, max_size=4)):
                events.append({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})
                text += piece
            if rarely(draw, 6):  # dropped on the way to OpenAI [LOSSY]
                citation = {"type": "web_search_result_location", "url": "https://example.com", "title": "Example",
                            "encrypted_index": "Eo8BCioIAhgB", "cited_text": "x"}
                events.append({"type": "content_block_delta", "index": index,
                               "delta": {"type": "citations_delta", "citation": citation}})
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            events.append({"type": "content_block_start", "index": index, "content_block": start})
            for piece in draw(st.lists(texts, max_size=3)):
                delta = {"type": "thinking_delta", "thinking": piece}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
                reasoning += piece
            signature = {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}
            events.append({"type": "content_block_delta", "index": index, "delta": signature})
        elif kind == "redacted_thinking":
            block = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        elif kind in ("tool_use", "tool_use_whole", "server_tool_use", "json_answer"):
            tool_input = draw(json_objects)
            if kind == "json_answer":
                name = JSON_RESPONSE_TOOL
            else:
                name = draw(st.sampled_from(["get_weather", "Bash", "mcp_server_search_1a2b3c4d"]))
            tool_id = f"toolu_01n{index}z" + draw(st.text(alphabet=ALNUM, min_size=4, max_size=12))
            block_type = "server_tool_use" if kind == "server_tool_use" else "tool_use"
            if kind == "server_tool_use":
                tool_id, name = f"srvtoolu_n{index}z", "web_search"
            whole = kind == "tool_use_whole"
            start = {"type": block_type, "id": tool_id, "name": name, "input": tool_input if whole else {}}
            events.append({"type": "content_block_start", "index": index, "content_block": start})
            fragments = [] if whole else _split_text(draw, dumps(tool_input) if tool_input else draw(st.sampled_from(["", "{}"])))
            if fragments and draw(st.booleans()):
                fragments.insert(0, "")  # Anthropic's first fragment is often empty
            for fragment in fragments:
                delta = {"type": "input_json_delta", "partial_json": fragment}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
            is_call = block_type == "tool_use" and not (json_mode == "json_schema" and name == JSON_RESPONSE_TOOL)
            if is_call:
                joined = "".join(fragments)
                calls.append({"id": tool_id, "name": options["tool_names"].get(name, name),
                              "arguments": joined or dumps(tool_input if whole else {})})
        events.append({"type": "content_block_stop", "index": index})
    stop_reason = draw(st.sampled_from([*ANTHROPIC_STOP_REASONS, None]))  # None: no message_delta
    if stop_reason is not None:
        final_usage = {"output_tokens": draw(st.integers(0, 10**5))}
        if draw(st.booleans()):
            final_usage["input_tokens"] = draw(st.integers(0, 10**6))
        usage.update(final_usage)
        delta: dict = {"stop_reason": stop_reason, "stop_sequence": None}
        if stop_reason == "refusal" and draw(st.booleans()):
            delta["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": "Declined."}
        events.append({"type": "message_delta", "delta": delta, "usage": final_usage})
        if not rarely(draw, 6):
            events.append({"type": "message_stop"})
    complete = events[-1]["type"] == "message_stop"
    if rarely(draw, 10):  # a newer event type, to be ignored (even after message_stop)
        events.insert(draw(st.integers(1, len(events))), {"type": "future_event_type", "payload": 1})
    end = next((i for i, event in enumerate(events) if event["type"] == "message_stop"), len(events))
    error_event = rarely(draw, 10)
    if error_event:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        position = draw(st.integers(0, len(events)))
        events.insert(position, error)
        error_event = position <= end  # one after message_stop is ignored
    raw = b"".join(encode_anthropic_event(event) for event in events)
    return AnthropicStream(
        raw=raw,
        delivery=draw(deliveries(raw)),
        options=options,
        text=text,
        reasoning=reasoning,
        calls=calls,
        stop_reason=stop_reason,
        complete=complete,
        error_event=error_event,
        usage=usage,
    )
