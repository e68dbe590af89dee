"""OpenAI front, Anthropic upstream: golden fixtures, stream invariants and the two SDKs as judges.

Requests that must be refused are a table here (REJECTED_REQUESTS), not fixtures.

Fixture directories under fixtures/chat_to_anthropic/, one kind each, recognised by their files:
- request_*: input.json (+ target.json, AnthropicTarget fields) -> expected.json (AnthropicRequest fields)
- response_*: response.json (+ options.json) -> expected.json (the chat.completion)
- stream_*: upstream.sse (Anthropic SSE bytes) (+ options.json) -> expected.json (chunks and "[DONE]")
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import typing
from pathlib import Path

import anthropic.lib.streaming._messages as anthropic_streaming
import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from openai.types.shared.reasoning_effort import ReasoningEffort

from translate.anthropic_to_chat_response import (
    AnthropicToChatStream,
    anthropic_to_chat_response,
)
from translate.chat_to_anthropic_request import (
    JSON_RESPONSE_TOOL,
    MAX_CACHE_BREAKPOINTS,
    AnthropicRequest,
    AnthropicTarget,
    chat_to_anthropic_request,
)
from translate.errors import InvalidRequest, UpstreamTimeout
from translate.sse import CHAT_DONE, SSEDecoder, SSEEvent, dumps, encode_chat_chunk

try:  # the HTTP library the installed OpenAI SDK is built on
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs
    import httpx

FIXTURES = Path(__file__).parent / "fixtures" / "chat_to_anthropic"
IDENTITY = {"requested_model": "claude-sonnet-4-5", "completion_id": "chatcmpl-test", "created": 1754000000}
DEFAULT_TARGET = {"model": "claude-sonnet-4-5"}


def _cases(marker: str) -> list[str]:
    return sorted(path.parent.name for path in FIXTURES.glob(f"*/{marker}"))


REQUEST_CASES = _cases("expected.json")
REQUEST_CASES = [case for case in REQUEST_CASES if (FIXTURES / case / "input.json").exists()]
RESPONSE_CASES = _cases("response.json")
STREAM_CASES = _cases("upstream.sse")


def _load(case: str, name: str, default: object = None) -> typing.Any:
    path = FIXTURES / case / name
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def _translate_fixture_request(case: str) -> AnthropicRequest:
    target = AnthropicTarget(**_load(case, "target.json", DEFAULT_TARGET))
    return chat_to_anthropic_request(_load(case, "input.json"), target)


def _stream_translator(case: str) -> AnthropicToChatStream:
    options = _load(case, "options.json", {})
    return AnthropicToChatStream(
        **IDENTITY,
        include_usage=options.get("include_usage", False),
        json_mode=options.get("json_mode"),
        tool_names=options.get("tool_names"),
    )


def _run_stream(case: str, pieces: list[bytes]) -> list:
    """Decode the upstream bytes read by read, translate every event, then signal EOF."""
    decoder = SSEDecoder()
    translator = _stream_translator(case)
    out: list = []
    for piece in pieces:
        for event in decoder.feed(piece):
            out += translator.feed(event)
    for event in decoder.close():
        out += translator.feed(event)
    out += translator.close()
    return out


def _upstream_bytes(case: str) -> bytes:
    return (FIXTURES / case / "upstream.sse").read_bytes()


# ---------------------------------------------------------------------------------------------
# What Anthropic would reject (PROTOCOLS.md 1.9), checked on every translated body
# ---------------------------------------------------------------------------------------------

ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]+")
ANTHROPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _blocks_with_nested(body: dict) -> list[dict]:
    blocks = list(body.get("system", [])) + list(body.get("tools", []))
    for message in body["messages"]:
        for block in message["content"]:
            blocks.append(block)
            if block["type"] == "tool_result" and isinstance(block.get("content"), list):
                blocks.extend(block["content"])
    return blocks


def assert_anthropic_accepts(body: dict) -> None:
    """Fail with the rule a translated body breaks, if any."""
    messages = body["messages"]
    assert messages, "at least one message"
    assert messages[0]["role"] == "user", "first message must use the user role"
    for before, after in zip(messages, messages[1:]):
        assert before["role"] != after["role"], "roles must alternate (merged turns)"
    for message in messages:
        assert isinstance(message["content"], list) and message["content"], "messages must have non-empty content"
    for block in _blocks_with_nested(body):
        if block.get("type") == "text":
            assert block["text"].strip(), "text content blocks must contain non-whitespace text"
    last = messages[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        assert last["content"][-1]["text"] == last["content"][-1]["text"].rstrip(), "no trailing whitespace in prefill"

    for position, message in enumerate(messages):
        calls = [block for block in message["content"] if block["type"] == "tool_use"]
        results = [block for block in message["content"] if block["type"] == "tool_result"]
        if message["role"] == "assistant":
            assert not results
            for call in calls:
                assert ANTHROPIC_ID.fullmatch(call["id"]) and ANTHROPIC_NAME.fullmatch(call["name"])
                assert isinstance(call["input"], dict)
            if calls:
                reply = messages[position + 1]["content"]
                leading = reply[: len(calls)]
                assert [block.get("tool_use_id") for block in leading] == [call["id"] for call in calls], (
                    "every tool_use needs its tool_result first in the very next user message, in call order"
                )
        else:
            assert not calls
            if results:
                previous = messages[position - 1]
                asked = [block["id"] for block in previous["content"] if block["type"] == "tool_use"]
                assert [block["tool_use_id"] for block in results] == asked, "results answer the previous turn"
                assert message["content"][: len(results)] == results, "tool_result blocks come first"

    marked = [block for block in _blocks_with_nested(body) if "cache_control" in block]
    assert len(marked) <= MAX_CACHE_BREAKPOINTS, "at most 4 cache_control breakpoints"
    assert all(block.get("type") != "thinking" for block in marked)

    for stop in body.get("stop_sequences", []):
        assert stop.strip(), "each stop sequence must contain non-whitespace"
    assert 0 <= body.get("temperature", 0) <= 1
    assert body["max_tokens"] >= 1
    if "tool_choice" in body:
        assert body.get("tools"), "tool_choice only with tools"
        if body["tool_choice"]["type"] == "tool":
            assert body["tool_choice"]["name"] in {tool["name"] for tool in body["tools"]}
    for tool in body.get("tools", []):
        assert ANTHROPIC_NAME.fullmatch(tool["name"]) and tool["input_schema"]["type"] == "object"
    thinking = body.get("thinking")
    if thinking:
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]
        assert "temperature" not in body and "top_p" not in body
        assert body.get("tool_choice", {"type": "auto"})["type"] in ("auto", "none")
        assert last["role"] == "user" and not any(block["type"] == "tool_result" for block in last["content"])


# ---------------------------------------------------------------------------------------------
# Golden fixtures
# ---------------------------------------------------------------------------------------------


def test_fixture_directories_are_all_recognised():
    """Every fixture directory is one of the three kinds, so none is silently skipped."""
    known = set(REQUEST_CASES) | set(RESPONSE_CASES) | set(STREAM_CASES)
    assert sorted(path.name for path in FIXTURES.iterdir() if path.is_dir()) == sorted(known)
    assert len(known) >= 30


@pytest.mark.parametrize("case", REQUEST_CASES)
def test_request_fixture_translates_to_the_recorded_anthropic_request(case):
    """Each OpenAI request becomes exactly the recorded Anthropic body and response settings."""
    assert dataclasses.asdict(_translate_fixture_request(case)) == _load(case, "expected.json")


@pytest.mark.parametrize("case", REQUEST_CASES)
def test_request_fixture_translates_to_a_body_anthropic_accepts(case):
    """No recorded translation breaks one of Anthropic's validation rules."""
    assert_anthropic_accepts(_translate_fixture_request(case).body)


HI = {"role": "user", "content": "Hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "ping", "arguments": "{}"}}
PING = {"type": "function", "function": {"name": "ping"}}


def _with_part(part: dict) -> dict:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}


def _with_assistant(**fields) -> dict:
    return {"model": "gpt-4o", "messages": [HI, {"role": "assistant", **fields}]}


def _with_tools(**fields) -> dict:
    return {"model": "gpt-4o", "messages": [HI], "tools": [PING], **fields}


JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}

# name: (request body, the param the 400 must name)
REJECTED_REQUESTS = {
    # What Claude cannot do
    "missing model": ({"messages": [HI]}, "model"),
    "missing messages": ({"model": "gpt-4o", "messages": []}, "messages"),
    "n above one": ({"model": "gpt-4o", "messages": [HI], "n": 3}, "n"),
    "logprobs": ({"model": "gpt-4o", "messages": [HI], "logprobs": True, "top_logprobs": 2}, "logprobs"),
    "top_logprobs": ({"model": "gpt-4o", "messages": [HI], "top_logprobs": 2}, "top_logprobs"),
    "audio modality": ({"model": "gpt-4o", "messages": [HI], "modalities": ["text", "audio"]}, "modalities"),
    "audio output": ({"model": "gpt-4o", "messages": [HI], "audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    "input_audio part": (
        {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "text": "Transcribe"}, {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]},
        "messages[0].content[1]",
    ),
    "file_id": (_with_part({"type": "file", "file": {"file_id": "file-abc"}}), "messages[0].content[0].file.file_id"),
    "bmp image": (_with_part({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}), "messages[0].content[0].image_url.url"),
    "arguments not an object": (
        _with_assistant(content=None, tool_calls=[{"id": "c", "type": "function", "function": {"name": "ping", "arguments": '["Oslo"]'}}]),
        "messages[1].tool_calls[0].function.arguments",
    ),
    "unknown role": ({"model": "gpt-4o", "messages": [HI, {"role": "bot", "content": "Hello"}]}, "messages[1].role"),
    "orphan tool result": ({"model": "gpt-4o", "messages": [{"role": "tool", "tool_call_id": "call_gone", "content": "4 C"}, HI]}, "messages[0].tool_call_id"),
    "legacy functions": ({"model": "gpt-4o", "messages": [HI], "functions": [{"name": "f"}]}, "functions"),
    "legacy function_call": ({"model": "gpt-4o", "messages": [HI], "function_call": "auto"}, "function_call"),
    "custom tool": ({"model": "gpt-4o", "messages": [HI], "tools": [{"type": "custom", "custom": {"name": "grammar"}}]}, "tools[0].type"),
    "unknown tool_choice name": (_with_tools(tool_choice={"type": "function", "function": {"name": "get_time"}}), "tool_choice.function.name"),
    "unknown reasoning_effort": ({"model": "gpt-4o", "messages": [HI], "reasoning_effort": "extreme"}, "reasoning_effort"),
    "reserved JSON tool name": (
        {"model": "gpt-4o", "messages": [HI], "tools": [{"type": "function", "function": {"name": JSON_RESPONSE_TOOL}}], "response_format": JSON_SCHEMA},
        "response_format",
    ),
    # Malformed fields
    "temperature": ({"model": "gpt-4o", "messages": [HI], "temperature": "hot"}, "temperature"),
    "top_p": ({"model": "gpt-4o", "messages": [HI], "top_p": True}, "top_p"),
    "stop": ({"model": "gpt-4o", "messages": [HI], "stop": 5}, "stop"),
    "max_tokens": ({"model": "gpt-4o", "messages": [HI], "max_tokens": 0}, "max_tokens"),
    "max_completion_tokens": ({"model": "gpt-4o", "messages": [HI], "max_completion_tokens": "lots"}, "max_completion_tokens"),
    "message": ({"model": "gpt-4o", "messages": ["Hi"]}, "messages[0]"),
    "function role": ({"model": "gpt-4o", "messages": [HI, {"role": "function", "name": "f", "content": "1"}]}, "messages[1].role"),
    "system content": ({"model": "gpt-4o", "messages": [{"role": "system", "content": 5}, HI]}, "messages[0].content"),
    "system image": (
        {"model": "gpt-4o", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": "https://x/a.png"}]}, HI]},
        "messages[0].content[0]",
    ),
    "function_call": (_with_assistant(content=None, function_call={"name": "f", "arguments": "{}"}), "messages[1].function_call"),
    "assistant image": (_with_assistant(content=[{"type": "image_url", "image_url": "https://x/a.png"}]), "messages[1].content[0]"),
    "assistant content": (_with_assistant(content=5), "messages[1].content"),
    "tool_calls": (_with_assistant(content=None, tool_calls={"id": "call_1"}), "messages[1].tool_calls"),
    "custom call": (_with_assistant(content=None, tool_calls=[{"id": "c", "type": "custom", "custom": {}}]), "messages[1].tool_calls[0]"),
    "call name": (_with_assistant(content=None, tool_calls=[{"id": "c", "function": {"arguments": "{}"}}]), "messages[1].tool_calls[0].function.name"),
    "call arguments": (
        _with_assistant(content=None, tool_calls=[{"id": "c", "function": {"name": "ping", "arguments": 5}}]),
        "messages[1].tool_calls[0].function.arguments",
    ),
    "tool_call_id": (
        {"model": "gpt-4o", "messages": [HI, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "content": "1"}]},
        "messages[2].tool_call_id",
    ),
    "file in tool message": (
        {"model": "gpt-4o", "messages": [HI, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "file", "file": {"file_data": "JVBE"}}]}]},
        "messages[2].content[0].type",
    ),
    "text part": (_with_part({"type": "text", "text": 5}), "messages[0].content[0].text"),
    "user content": ({"model": "gpt-4o", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    "part type": (_with_part({"type": "video_url", "video_url": "https://x/v.mp4"}), "messages[0].content[0].type"),
    "image without url": (_with_part({"type": "image_url", "image_url": {"detail": "low"}}), "messages[0].content[0].image_url.url"),
    "ftp image": (_with_part({"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}), "messages[0].content[0].image_url.url"),
    "image data URI without base64": (
        _with_part({"type": "image_url", "image_url": {"url": "data:image/png,abc"}}),
        "messages[0].content[0].image_url.url",
    ),
    "file": (_with_part({"type": "file"}), "messages[0].content[0].file"),
    "file_data": (_with_part({"type": "file", "file": {"filename": "a.pdf"}}), "messages[0].content[0].file.file_data"),
    "text file not base64": (
        _with_part({"type": "file", "file": {"file_data": "data:text/plain;base64,@@@"}}),
        "messages[0].content[0].file.file_data",
    ),
    "image as file": (
        _with_part({"type": "file", "file": {"file_data": "data:image/png;base64,iVBO"}}),
        "messages[0].content[0].file.file_data",
    ),
    "tools": (_with_tools(tools={"ping": PING}), "tools"),
    "tool name": (_with_tools(tools=[{"type": "function", "function": {"description": "x"}}]), "tools[0].function.name"),
    "duplicate tool": (_with_tools(tools=[PING, PING]), "tools[1].function.name"),
    "tool parameters": (
        _with_tools(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]),
        "tools[0].function.parameters",
    ),
    "tool_choice": (_with_tools(tool_choice="sometimes"), "tool_choice"),
    "allowed_tools mode": (
        _with_tools(tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "any", "tools": []}}),
        "tool_choice.allowed_tools.mode",
    ),
    "allowed_tools tools": (
        _with_tools(tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto"}}),
        "tool_choice.allowed_tools.tools",
    ),
    "allowed_tools name": (
        _with_tools(tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "name": "nope"}]}}),
        "tool_choice.allowed_tools.tools[0]",
    ),
    "json_schema": (_with_tools(response_format={"type": "json_schema"}), "response_format.json_schema"),
    "json_schema schema": (
        _with_tools(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}),
        "response_format.json_schema.schema",
    ),
    "response_format type": (_with_tools(response_format={"type": "yaml"}), "response_format.type"),
}


@pytest.mark.parametrize("name", sorted(REJECTED_REQUESTS))
def test_rejected_request_is_a_400_whose_message_and_param_name_the_field(name):
    """Unsupported or malformed fields are reported by path, in the message and in param, never as a crash."""
    body, param = REJECTED_REQUESTS[name]
    with pytest.raises(InvalidRequest) as raised:
        chat_to_anthropic_request(body, AnthropicTarget(**DEFAULT_TARGET))
    assert (raised.value.status, raised.value.param) == (400, param)
    assert param in raised.value.message


def test_tool_arguments_that_are_not_json_are_a_clear_400_not_a_crash():
    """Broken arguments in history name the exact call, as the OpenAI API itself would."""
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be terse."},
            HI,
            {"role": "assistant", "content": "Checking."},
            {"role": "assistant", "content": None, "tool_calls": [{**CALL, "function": {"name": "ping", "arguments": '{"host": "a'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "pong"},
        ],
    }
    with pytest.raises(InvalidRequest) as raised:
        chat_to_anthropic_request(body, AnthropicTarget(**DEFAULT_TARGET))
    assert raised.value.param == "messages[3].tool_calls[0].function.arguments"
    assert raised.value.message.startswith("messages[3].tool_calls[0].function.arguments is not valid JSON")


def test_request_body_that_is_not_an_object_is_a_400():
    """A JSON array or string as the body is refused in plain words."""
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        chat_to_anthropic_request([], AnthropicTarget(**DEFAULT_TARGET))


def test_json_schema_without_schema_forces_a_tool_taking_any_object():
    """A json_schema response_format with no schema still gets a valid object input_schema."""
    body = {"model": "gpt-4o", "messages": [HI], "response_format": {"type": "json_schema", "json_schema": {"name": "free"}}}
    tools = chat_to_anthropic_request(body, AnthropicTarget(model="claude", auto_cache=False)).body["tools"]
    assert tools == [
        {
            "name": JSON_RESPONSE_TOOL,
            "description": "Return the final answer as JSON matching the schema 'free'.",
            "input_schema": {"type": "object"},
        }
    ]


def test_json_schema_with_a_named_tool_choice_keeps_the_named_tool_forced():
    """A client forcing one of its own tools keeps that choice; the JSON tool is offered beside it."""
    body = _with_tools(
        tool_choice={"type": "function", "function": {"name": "ping"}},
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}},
    )
    translated = chat_to_anthropic_request(body, AnthropicTarget(model="claude", auto_cache=False)).body
    assert [tool["name"] for tool in translated["tools"]] == ["ping", JSON_RESPONSE_TOOL]
    assert translated["tool_choice"] == {"type": "tool", "name": "ping"}


def test_reasoning_is_not_requested_together_with_a_prefill():
    """Anthropic refuses thinking with a final assistant message, so the effort is dropped there."""
    body = {"model": "o3", "reasoning_effort": "high", "messages": [HI, {"role": "assistant", "content": "Sure: "}]}
    translated = chat_to_anthropic_request(body, AnthropicTarget(model="claude")).body
    assert "thinking" not in translated and translated["messages"][-1]["content"][-1]["text"] == "Sure:"


@pytest.mark.parametrize("case", RESPONSE_CASES)
def test_response_fixture_translates_to_the_recorded_completion(case):
    """Each Anthropic message becomes exactly the recorded chat.completion."""
    options = _load(case, "options.json", {})
    translated = anthropic_to_chat_response(_load(case, "response.json"), **IDENTITY, **options)
    assert translated == _load(case, "expected.json")


@pytest.mark.parametrize("case", STREAM_CASES)
def test_stream_fixture_gives_the_recorded_chunks_whole_line_by_line_and_byte_by_byte(case):
    """Reads split anywhere, even inside a UTF-8 character, give the same recorded chunks."""
    data = _upstream_bytes(case)
    whole = _run_stream(case, [data])
    by_line = _run_stream(case, data.splitlines(keepends=True))
    by_byte = _run_stream(case, [data[i : i + 1] for i in range(len(data))])
    assert whole == by_line == by_byte == _load(case, "expected.json")


# ---------------------------------------------------------------------------------------------
# Streams folded into completions
# ---------------------------------------------------------------------------------------------

ANTHROPIC_EVENT_TYPES = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
}


def _accumulate_anthropic(data: bytes) -> dict:
    """The message the Anthropic SDK builds from the upstream stream."""
    decoder = SSEDecoder()
    snapshot = None
    json_buffers: dict = {}
    for event in decoder.feed(data) + decoder.close():
        parsed = json.loads(event.data)
        if parsed["type"] in ANTHROPIC_EVENT_TYPES:
            snapshot = anthropic_streaming.accumulate_event(
                event=parsed, current_snapshot=snapshot, json_bufs=json_buffers
            )
    return snapshot.model_dump(mode="json", exclude_none=True)


def _fold_openai(chunks: list) -> dict:
    """The completion the OpenAI SDK builds from the translated chunks."""
    assert chunks[-1] == "[DONE]"
    state = ChatCompletionStreamState()
    for chunk in chunks[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.current_completion_snapshot.model_dump(mode="json", exclude_none=True)


def _comparable(completion: dict, json_mode: str | None) -> dict:
    """What both forms must agree on; JSON text compared as data (the stream keeps its spacing)."""
    choice = completion["choices"][0]
    message = choice["message"]
    content = message.get("content") or ""
    if json_mode == "json_schema" and content:
        content = json.loads(content)
    return {
        "content": content,
        "refusal": message.get("refusal"),
        "reasoning_content": message.get("reasoning_content"),
        "tool_calls": [
            (call["id"], call["type"], call["function"]["name"], json.loads(call["function"]["arguments"]))
            for call in message.get("tool_calls") or []
        ],
        "finish_reason": choice["finish_reason"],
        "usage": completion.get("usage"),
        "identity": (completion["id"], completion["model"], completion["created"]),
    }


COMPLETE_STREAM_CASES = [case for case in STREAM_CASES if _load(case, "expected.json")[-1] == "[DONE]"]


@pytest.mark.parametrize("case", COMPLETE_STREAM_CASES)
def test_folded_stream_matches_the_non_stream_translation_of_the_same_message(case):
    """An OpenAI client gets the same answer streaming or not."""
    options = _load(case, "options.json", {})
    json_mode = options.get("json_mode")
    streamed = _fold_openai(_load(case, "expected.json"))
    whole = anthropic_to_chat_response(
        _accumulate_anthropic(_upstream_bytes(case)), **IDENTITY, json_mode=json_mode, tool_names=options.get("tool_names")
    )
    if not options.get("include_usage"):
        whole["usage"] = None
    assert _comparable(streamed, json_mode) == _comparable(whole, json_mode)


@given(
    text=st.text(alphabet=st.sampled_from(list('`{}"a: \n\tjson,')), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
    json_mode=st.sampled_from([None, "json_object", "json_schema"]),
)
@settings(max_examples=300, deadline=None)
def test_text_split_anywhere_streams_to_the_same_content_as_the_whole_response(text, cuts, json_mode):
    """Code-fence removal and held-back JSON text do not depend on where deltas were cut."""
    points = sorted({min(cut, len(text)) for cut in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(points, points[1:])]
    events = [{"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {"input_tokens": 3, "output_tokens": 1}}}]
    events.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}} for piece in pieces]
    events += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ]
    translator = AnthropicToChatStream(**IDENTITY, include_usage=False, json_mode=json_mode)
    chunks = [chunk for event in events for chunk in translator.feed(SSEEvent(dumps(event), event["type"]))]
    streamed = "".join(
        chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if isinstance(chunk, dict)
    )
    message = {"content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "usage": {}}
    whole = anthropic_to_chat_response(message, **IDENTITY, json_mode=json_mode)
    assert streamed == whole["choices"][0]["message"]["content"]
    if json_mode is None:
        assert streamed == text


@pytest.mark.parametrize(
    "text, content",
    [
        ('\n```json\n{"a": [1, 2]}\n```\n', '{"a": [1, 2]}'),
        ('```json{"a": 1}```', '{"a": 1}'),
        ('```\n{"code": "`x`"}\n```', '{"code": "`x`"}'),
        ('Here: ```json\n{}\n```', 'Here: ```json\n{}\n```'),
        ("`{}`", "`{}`"),
    ],
)
def test_json_object_answer_loses_a_fence_around_it_and_nothing_else(text, content):
    """A json_object answer wrapped in a code fence reaches the client as bare JSON; other text stays."""
    message = {"content": [{"type": "text", "text": text}], "stop_reason": "end_turn"}
    translated = anthropic_to_chat_response(message, **IDENTITY, json_mode="json_object")
    assert translated["choices"][0]["message"]["content"] == content
    untouched = anthropic_to_chat_response(message, **IDENTITY)
    assert untouched["choices"][0]["message"]["content"] == text


# ---------------------------------------------------------------------------------------------
# Stream lifecycle
# ---------------------------------------------------------------------------------------------


def _events(case: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(_upstream_bytes(case)) + decoder.close()


def test_stream_ignores_everything_after_it_finished():
    """After "[DONE]" further events, EOF and failures produce nothing."""
    translator = _stream_translator("stream_text_with_usage")
    out = [chunk for event in _events("stream_text_with_usage") for chunk in translator.feed(event)]
    assert out[-1] == "[DONE]" and translator.finished
    assert translator.feed(_events("stream_text_with_usage")[0]) == []
    assert translator.close() == []
    assert translator.fail(UpstreamTimeout("idle")) == []


def test_stream_failure_is_one_openai_error_object_without_done():
    """fail() mid-stream sends the OpenAI error envelope once and ends the stream."""
    translator = _stream_translator("stream_text_with_usage")
    for event in _events("stream_text_with_usage")[:3]:
        translator.feed(event)
    out = translator.fail(UpstreamTimeout("The upstream sent nothing for 300 seconds."))
    assert out == [
        {
            "error": {
                "message": "The upstream sent nothing for 300 seconds.",
                "type": "timeout_error",
                "param": None,
                "code": "timeout",
            }
        }
    ]
    assert translator.finished and translator.close() == []


def test_stream_event_that_is_not_json_fails_the_stream():
    """Garbage from the upstream becomes an error object, not a crash."""
    translator = _stream_translator("stream_text_with_usage")
    translator.feed(_events("stream_text_with_usage")[0])
    out = translator.feed(SSEEvent("{not json", "content_block_delta"))
    assert len(out) == 1 and "error" in out[0] and translator.finished


def test_stream_token_counts_are_readable_for_the_access_log():
    """The translator exposes Anthropic's token counts, message_delta values overriding message_start."""
    translator = _stream_translator("stream_text_with_usage")
    for event in _events("stream_text_with_usage"):
        translator.feed(event)
    assert (translator.input_tokens, translator.output_tokens, translator.cache_read_tokens) == (412, 15, 2048)
    assert translator.cache_creation_tokens == 0


def test_tool_call_index_counts_tool_calls_not_anthropic_blocks():
    """The OpenAI index of the first tool call is 0 even when it is Anthropic block 1."""
    chunks = _load("stream_parallel_tool_calls", "expected.json")
    starts = [
        call
        for chunk in chunks
        if isinstance(chunk, dict) and chunk["choices"]
        for call in chunk["choices"][0]["delta"].get("tool_calls", [])
        if "id" in call
    ]
    assert [(call["index"], call["id"]) for call in starts] == [(0, "toolu_01Qp"), (1, "toolu_01Rt")]


# ---------------------------------------------------------------------------------------------
# The OpenAI SDK as the client
# ---------------------------------------------------------------------------------------------


def _openai_client(handler) -> openai.OpenAI:
    transport = httpx.MockTransport(handler)
    return openai.OpenAI(
        api_key="test", base_url="http://127.0.0.1:9/v1", http_client=httpx.Client(transport=transport), max_retries=0
    )


def _proxy_streaming(case: str):
    """A fake proxy: translate the SDK's request, then replay a fixture's upstream stream to it."""
    seen: dict = {}

    def handler(request):
        translated = chat_to_anthropic_request(json.loads(request.content), AnthropicTarget(**DEFAULT_TARGET))
        seen["request"] = translated
        translator = AnthropicToChatStream(
            **IDENTITY, include_usage=translated.include_usage, json_mode=translated.json_mode, tool_names=translated.tool_names
        )
        body = b""
        for event in _events(case):
            for chunk in translator.feed(event):
                body += CHAT_DONE if chunk == "[DONE]" else encode_chat_chunk(chunk)
        for chunk in translator.close():
            body += CHAT_DONE if chunk == "[DONE]" else encode_chat_chunk(chunk)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return _openai_client(handler), seen


def test_openai_sdk_streams_text_and_usage_through_the_translation():
    """The SDK's own stream reader accepts every translated chunk and sees the usage last."""
    client, seen = _proxy_streaming("stream_text_with_usage")
    chunks = list(
        client.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert seen["request"].body["stream"] is True and seen["request"].include_usage
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "Naïve ☃ snowman line\u2028separator"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens_details.cached_tokens == 2048


def test_openai_sdk_raises_on_a_mid_stream_upstream_error():
    """An Anthropic error event reaches an OpenAI SDK user as an APIError with the upstream message."""
    client, _ = _proxy_streaming("stream_error_event_mid_stream")
    stream = client.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Overloaded"):
        list(stream)


class WeatherReport(pydantic.BaseModel):
    city: str
    temp_c: float


def test_openai_sdk_parse_gets_its_pydantic_model_from_the_forced_json_tool():
    """client.chat.completions.parse() works: the schema rides a forced tool and returns as content."""
    seen: dict = {}

    def handler(request):
        translated = chat_to_anthropic_request(json.loads(request.content), AnthropicTarget(**DEFAULT_TARGET))
        seen["request"] = translated
        tool = translated.body["tools"][-1]
        assert tool["name"] == JSON_RESPONSE_TOOL and set(tool["input_schema"]["properties"]) == {"city", "temp_c"}
        upstream = {
            "content": [{"type": "tool_use", "id": "toolu_01", "name": JSON_RESPONSE_TOOL, "input": {"city": "Oslo", "temp_c": 4.5}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 50, "output_tokens": 20},
        }
        completion = anthropic_to_chat_response(upstream, **IDENTITY, json_mode=translated.json_mode)
        return httpx.Response(200, json=completion)

    client = _openai_client(handler)
    completion = client.chat.completions.parse(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Oslo weather"}], response_format=WeatherReport
    )
    assert seen["request"].body["tool_choice"] == {
        "type": "tool",
        "name": JSON_RESPONSE_TOOL,
        "disable_parallel_tool_use": True,
    }
    assert completion.choices[0].message.parsed == WeatherReport(city="Oslo", temp_c=4.5)
    assert completion.choices[0].finish_reason == "stop"


def test_every_reasoning_effort_the_openai_sdk_knows_is_accepted():
    """No effort value the SDK can send is refused; only low and up turn thinking on."""
    efforts = [value for value in typing.get_args(typing.get_args(ReasoningEffort)[0])]
    assert efforts
    for effort in efforts:
        body = {"model": "o3", "messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": effort}
        translated = chat_to_anthropic_request(body, AnthropicTarget(**DEFAULT_TARGET)).body
        assert ("thinking" in translated) == (effort not in ("none", "minimal"))


# ---------------------------------------------------------------------------------------------
# Request properties over random conversations
# ---------------------------------------------------------------------------------------------

TOOL_POOL = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "mcp.server/search", "description": "Search"}},
    {"type": "function", "function": {"name": "ping"}},
]
texts = st.sampled_from(["hello", "", "   ", "two words\n", "\n", "ok."])


@st.composite
def openai_requests(draw) -> tuple[dict, AnthropicTarget]:
    """A valid Chat Completions request; tool messages answer only calls that are still open."""
    messages: list[dict] = []
    open_ids: list[str] = []
    last_turn_was_assistant = False
    for position in range(draw(st.integers(min_value=1, max_value=10))):
        kind = draw(st.sampled_from(["system", "developer", "user", "user_parts", "assistant", "assistant_tools", "tool"]))
        if kind == "tool" and not open_ids:
            kind = "user"
        if kind in ("system", "developer"):
            messages.append({"role": kind, "content": draw(texts)})
        elif kind == "user":
            text = draw(texts)
            messages.append({"role": "user", "content": text})
            if text.strip():
                last_turn_was_assistant = False
        elif kind == "user_parts":
            parts = [{"type": "text", "text": draw(texts)} for _ in range(draw(st.integers(0, 2)))]
            if draw(st.booleans()):
                parts.append({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}})
            messages.append({"role": "user", "content": parts})
            if any(part["type"] == "image_url" or part["text"].strip() for part in parts):
                last_turn_was_assistant = False
        elif kind == "assistant":
            text = draw(texts)
            messages.append({"role": "assistant", "content": text})
            if text.strip():
                open_ids = open_ids if last_turn_was_assistant else []
                last_turn_was_assistant = True
        elif kind == "assistant_tools":
            ids = [
                draw(st.sampled_from([f"call_{position}_{k}", f"functions.Bash:{position}{k}"]))
                for k in range(draw(st.integers(1, 3)))
            ]
            calls = [
                {"id": call_id, "type": "function", "function": {"name": draw(st.sampled_from(["get_weather", "mcp.server/search"])), "arguments": draw(st.sampled_from(["", "{}", '{"city": "Oslo"}']))}}
                for call_id in ids
            ]
            messages.append({"role": "assistant", "content": draw(st.sampled_from([None, "", "Checking."])), "tool_calls": calls})
            open_ids = (open_ids if last_turn_was_assistant else []) + ids
            last_turn_was_assistant = True
        else:
            messages.append({"role": "tool", "tool_call_id": draw(st.sampled_from(open_ids)), "content": draw(texts)})
            last_turn_was_assistant = False
    body: dict = {"model": "gpt-4o", "messages": messages}
    tools = draw(st.lists(st.sampled_from(TOOL_POOL), max_size=3, unique_by=lambda tool: tool["function"]["name"]))
    if tools:
        body["tools"] = tools
        names = [tool["function"]["name"] for tool in tools]
        body["tool_choice"] = draw(
            st.sampled_from([None, "none", "auto", "required", {"type": "function", "function": {"name": names[0]}}])
        )
    if draw(st.booleans()):
        body["parallel_tool_calls"] = draw(st.booleans())
    body["response_format"] = draw(
        st.sampled_from([None, {"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {}}}}])
    )
    body["reasoning_effort"] = draw(st.sampled_from([None, "none", "minimal", "low", "medium", "high", "max"]))
    body["temperature"] = draw(st.none() | st.floats(min_value=-1, max_value=3))
    body["stop"] = draw(st.none() | st.lists(st.sampled_from(["\n", " ", "END", "##"]), max_size=3))
    body["max_completion_tokens"] = draw(st.none() | st.integers(min_value=1, max_value=200000))
    target = AnthropicTarget(
        model="claude-sonnet-4-5",
        max_tokens_limit=draw(st.none() | st.integers(min_value=1, max_value=64000)),
        system_prompt=draw(st.none() | st.just("Be helpful.")),
        auto_cache=draw(st.booleans()),
    )
    return body, target


@given(openai_requests())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_conversations_translate_to_bodies_anthropic_accepts(request_and_target):
    """Any valid conversation translates without error into a body that breaks no Anthropic rule."""
    body, target = request_and_target
    snapshot = copy.deepcopy(body)
    translated = chat_to_anthropic_request(body, target)
    assert body == snapshot, "the client's body is never modified"
    assert_anthropic_accepts(translated.body)
    assert chat_to_anthropic_request(body, target) == translated, "translation is deterministic"
    for sent, original in translated.tool_names.items():
        assert ANTHROPIC_NAME.fullmatch(sent) and sent != original


@given(openai_requests())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_auto_cache_never_sets_more_than_four_breakpoints_and_none_without_it(request_and_target):
    """Breakpoints stay within Anthropic's limit of four, and appear only when auto_cache is on."""
    body, target = request_and_target
    marked = [
        block for block in _blocks_with_nested(chat_to_anthropic_request(body, target).body) if "cache_control" in block
    ]
    assert len(marked) <= MAX_CACHE_BREAKPOINTS
    assert bool(marked) == target.auto_cache
    assert all(block["cache_control"] == {"type": "ephemeral"} for block in marked)


def test_tool_results_for_an_interrupted_turn_are_completed_and_reordered():
    """Results arriving after a user note, out of order and incomplete still lead the next turn."""
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "Do three things."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"call_{n}", "type": "function", "function": {"name": "ping", "arguments": "{}"}} for n in (1, 2, 3)
                ],
            },
            {"role": "user", "content": "Hurry up."},
            {"role": "tool", "tool_call_id": "call_3", "content": "three"},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
        ],
    }
    reply = chat_to_anthropic_request(body, AnthropicTarget(model="claude", auto_cache=False)).body["messages"][2]
    assert reply == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "No result was provided for this tool call.", "is_error": True},
            {"type": "tool_result", "tool_use_id": "call_3", "content": "three"},
            {"type": "text", "text": "Hurry up."},
        ],
    }


def test_tool_ids_and_names_round_trip_through_a_second_turn():
    """Ids and shortened names the client got back from a response map the same way next turn."""
    first = chat_to_anthropic_request(
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "File a bug."}],
            "tools": [{"type": "function", "function": {"name": "github.create_issue"}}],
        },
        AnthropicTarget(model="claude"),
    )
    sent_name = first.body["tools"][0]["name"]
    upstream = {"content": [{"type": "tool_use", "id": "toolu_01A", "name": sent_name, "input": {"t": 1}}], "stop_reason": "tool_use"}
    call = anthropic_to_chat_response(upstream, **IDENTITY, tool_names=first.tool_names)["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "github.create_issue"
    second = chat_to_anthropic_request(
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "user", "content": "File a bug."},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "#12"},
            ],
            "tools": [{"type": "function", "function": {"name": "github.create_issue"}}],
        },
        AnthropicTarget(model="claude"),
    )
    assistant, results = second.body["messages"][1:]
    assert assistant["content"][0] == {"type": "tool_use", "id": "toolu_01A", "name": sent_name, "input": {"t": 1}}
    assert results["content"][0]["tool_use_id"] == "toolu_01A"
