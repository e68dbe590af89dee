"""Property-based tests: the translators never raise on valid input and always keep their invariants.

Strategies (tests/strategies.py) draw valid requests in both dialects and valid upstream streams in
both dialects; the checks below are the rules the other side enforces (PROTOCOLS.md 1.9, 2.1, 3.5,
4.1, 4.2; FIELD-NOTES "Streaming traps" and "Translation traps"), written from the spec rather
than from the translators. Streams go through SSEDecoder as raw bytes split at random read
boundaries, sometimes cut short, and end with close() or fail(); the translated events must not
depend on where the reads split.

Hypothesis explores (no fixed seed); a failure prints the blob to reproduce it with
`@reproduce_failure`. Cases the properties found are kept as plain tests at the end.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re

from hypothesis import HealthCheck, given, settings
from strategies import (
    STREAM_TOOL_NAMES,
    AnthropicStream,
    Delivery,
    OpenAIStream,
    anthropic_requests,
    anthropic_streams,
    openai_requests,
    openai_streams,
)

from translate.anthropic_to_chat_request import (
    ChatRequest,
    ChatTarget,
    anthropic_to_chat_request,
)
from translate.anthropic_to_chat_response import AnthropicToChatStream
from translate.chat_to_anthropic_request import (
    JSON_RESPONSE_TOOL,
    AnthropicRequest,
    AnthropicTarget,
    chat_to_anthropic_request,
)
from translate.chat_to_anthropic_response import ChatToAnthropicStream, chat_to_anthropic_response
from translate.thought_tags import split_inline_thoughts
from translate.errors import UpstreamTimeout
from translate.sse import SSEDecoder, SSEEvent
from translate.tokens import estimate_input_tokens, input_breakdown
from translate.tools import (
    THOUGHT_SIGNATURE_MARKER,
    portable_tool_id,
    split_signed_tool_id,
)

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
STREAM_PROPERTY = settings(PROPERTY, max_examples=200)  # cheap examples: explore more

PORTABLE_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
CHAT_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]+")
ANTHROPIC_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")

# ---------------------------------------------------------------------------------------------
# Anthropic request -> OpenAI request
# ---------------------------------------------------------------------------------------------

# Every top-level field an OpenAI-compatible upstream may receive from us (PROTOCOLS 3.1, 5.3).
OPENAI_TOP_LEVEL_KEYS = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort", "response_format", "user",
}
OPENAI_MESSAGE_KEYS = {"role", "content", "tool_calls", "tool_call_id", "reasoning_content", "reasoning", "name"}
OPENAI_TOOL_CALL_KEYS = {"id", "type", "function", "extra_content"}
OPENAI_PART_TYPES = {"text", "image_url", "file"}
# Anthropic-only keys that must not appear anywhere in an OpenAI body.
ANTHROPIC_ONLY_KEYS = {"cache_control", "citations", "signature", "budget_tokens", "input_schema", "tool_use_id", "is_error"}


def keys_anywhere(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_anywhere(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_anywhere(item) for item in value))
    return set()


def check_openai_message(message: dict) -> None:
    """One message as OpenAI accepts it: known keys, no empty content it would reject."""
    assert set(message) <= OPENAI_MESSAGE_KEYS, f"unexpected message keys {set(message) - OPENAI_MESSAGE_KEYS}"
    role = message["role"]
    content = message.get("content")
    if role in ("system", "tool"):
        assert isinstance(content, str) and content, f"a {role} message needs non-empty text"
    elif role == "user":
        assert content, "a user message needs content"
        if isinstance(content, list):
            for part in content:
                assert part["type"] in OPENAI_PART_TYPES
                if part["type"] == "text":
                    assert part["text"], "empty text part"
                elif part["type"] == "image_url":
                    assert part["image_url"]["url"]
                else:
                    assert part["file"]["file_data"].startswith("data:")
        else:
            assert isinstance(content, str)
    else:
        assert role == "assistant", f"unknown role {role!r}"
        calls = message.get("tool_calls")
        if content is None:
            assert calls, "content null only next to tool_calls"
        else:
            assert isinstance(content, str) and content, "assistant content is non-empty text or null"
        for call in calls or []:
            assert set(call) <= OPENAI_TOOL_CALL_KEYS
            assert PORTABLE_ID.fullmatch(call["id"]), f"tool call id {call['id']!r} does not fit OpenAI"
            assert call["type"] == "function"
            assert CHAT_FUNCTION_NAME.fullmatch(call["function"]["name"])
            assert isinstance(json.loads(call["function"]["arguments"]), dict), "arguments are a JSON object"
    if role == "tool":
        assert PORTABLE_ID.fullmatch(message["tool_call_id"])


def check_tool_messages_follow_their_calls(messages: list[dict]) -> None:
    """Each assistant tool call is answered exactly once, in the run of tool messages right after it."""
    position = 0
    while position < len(messages):
        message = messages[position]
        assert message["role"] != "tool", f"messages[{position}]: a tool message answering no tool call"
        position += 1
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        if not calls:
            continue
        ids = [call["id"] for call in calls]
        assert len(set(ids)) == len(ids), "tool call ids repeat within a turn"
        answered = []
        while position < len(messages) and messages[position]["role"] == "tool":
            answered.append(messages[position]["tool_call_id"])
            position += 1
        assert sorted(answered) == sorted(ids), "every call needs exactly one tool message, right after it"


def history_of(body: dict) -> tuple[list[dict], list[str]]:
    """(tool_use blocks in order, tool_use_ids of the tool_result blocks in order) of a request."""
    uses, results = [], []
    for message in body["messages"]:
        content = message["content"]
        for block in content if isinstance(content, list) else []:
            if block["type"] == "tool_use":
                uses.append(block)
            elif block["type"] == "tool_result":
                results.append(block["tool_use_id"])
    return uses, results


def check_openai_request(request: ChatRequest, body: dict, target: ChatTarget) -> None:
    """What an OpenAI-compatible upstream accepts, and what the translation must keep of the request."""
    out = request.body
    assert set(out) <= OPENAI_TOP_LEVEL_KEYS, f"leaked fields {set(out) - OPENAI_TOP_LEVEL_KEYS}"
    leaked = keys_anywhere({k: v for k, v in out.items() if k not in ("tools", "response_format")}) & ANTHROPIC_ONLY_KEYS
    assert not leaked, f"Anthropic-only keys inside the body: {leaked}"
    assert out["model"] == target.model
    messages = out["messages"]
    for message in messages:
        check_openai_message(message)
    assert all(message["role"] != "system" for message in messages[1:]), "one leading system message at most"
    assert any(message["role"] == "user" for message in messages)
    check_tool_messages_follow_their_calls(messages)

    # Tool calls and results keep their pairing, names map back, inputs survive as arguments.
    uses, result_ids = history_of(body)
    calls = [call for message in messages for call in message.get("tool_calls") or []]
    assert len(calls) == len(uses)
    for use, call in zip(uses, calls):
        sent = call["function"]["name"]
        assert request.tool_names.get(sent, sent) == use["name"]
        assert json.loads(call["function"]["arguments"]) == use["input"]
        assert ("extra_content" in call) <= target.thought_signatures
    id_map = {use["id"]: call["id"] for use, call in zip(uses, calls)}
    assert len(set(id_map.values())) == len(id_map), "two tool_use ids became one"
    tool_message_ids = [message["tool_call_id"] for message in messages if message["role"] == "tool"]
    assert tool_message_ids == [id_map[tool_use_id] for tool_use_id in result_ids], "results answer their own call"

    # Tools: custom ones sent in order with their schema, server tools dropped, names restorable.
    tools = body.get("tools", [])
    custom = [tool for tool in tools if tool.get("type") in (None, "custom")]
    sent_tools = out.get("tools", [])
    sent_names = [tool["function"]["name"] for tool in sent_tools]
    assert len(set(sent_names)) == len(sent_names)
    assert [request.tool_names.get(name, name) for name in sent_names] == [tool["name"] for tool in custom]
    assert all(CHAT_FUNCTION_NAME.fullmatch(name) for name in sent_names)
    assert [tool["function"]["parameters"] for tool in sent_tools] == [tool["input_schema"] for tool in custom]
    assert sorted(request.dropped_tools) == sorted(tool["name"] for tool in tools if tool not in custom)
    if "tool_choice" in out or "parallel_tool_calls" in out:
        assert sent_tools, "tool_choice and parallel_tool_calls only with tools"
    if isinstance(out.get("tool_choice"), dict):
        assert out["tool_choice"]["function"]["name"] in sent_names
    else:
        assert out.get("tool_choice") in (None, "auto", "required", "none")

    # Limits and sampling per target.
    limit_key = "max_completion_tokens" if target.reasoning else "max_tokens"
    other_key = "max_tokens" if target.reasoning else "max_completion_tokens"
    assert other_key not in out and out[limit_key] >= 1
    if target.max_tokens_limit is not None:
        assert out[limit_key] <= target.max_tokens_limit
    if target.reasoning:
        assert "temperature" not in out and "top_p" not in out
        assert out.get("reasoning_effort") in (None, "low", "medium", "high")
    else:
        assert "reasoning_effort" not in out
    assert len(out.get("stop", [])) <= target.max_stop_sequences
    assert ("stream_options" in out) == (out.get("stream") is True)
    assert "user" not in out or target.send_user
    fields = {"reasoning_content", "reasoning"}
    sent = {field for message in messages for field in fields if field in message}
    assert sent <= ({target.reasoning_history_field} if target.reasoning_history_field else set())


@given(anthropic_requests())
@PROPERTY
def test_any_valid_anthropic_request_translates_to_a_body_openai_accepts(request_and_target):
    """A valid Anthropic request never raises and gives a well-formed, leak-free OpenAI body."""
    body, target = request_and_target
    snapshot = copy.deepcopy(body)
    request = anthropic_to_chat_request(body, target)
    assert body == snapshot, "the client's body is never modified"
    check_openai_request(request, body, target)
    assert anthropic_to_chat_request(copy.deepcopy(body), target) == request, "translation is deterministic"


@given(anthropic_requests())
@PROPERTY
def test_the_reasoning_flag_changes_only_the_limit_field_sampling_and_effort(request_and_target):
    """Reasoning and plain targets get the same messages and tools; only the documented fields differ."""
    body, target = request_and_target
    plain = anthropic_to_chat_request(body, dataclasses.replace(target, reasoning=False))
    reasoning = anthropic_to_chat_request(body, dataclasses.replace(target, reasoning=True))
    check_openai_request(reasoning, body, dataclasses.replace(target, reasoning=True))
    differing = {key for key in plain.body.keys() | reasoning.body.keys() if plain.body.get(key) != reasoning.body.get(key)}
    assert differing <= {"max_tokens", "max_completion_tokens", "temperature", "top_p", "reasoning_effort"}
    assert plain.body["max_tokens"] == reasoning.body["max_completion_tokens"]
    assert (plain.tool_names, plain.dropped_tools, plain.stop_sequences) == (
        reasoning.tool_names, reasoning.dropped_tools, reasoning.stop_sequences
    )


@given(anthropic_requests())
@settings(PROPERTY, max_examples=50)  # tests/test_tokens.py already throws arbitrary JSON at it
def test_token_estimate_of_any_valid_request_is_a_stable_non_negative_int(request_and_target):
    """count_tokens never fails on a valid request and answers the same int >= 0 every time."""
    body, _target = request_and_target
    snapshot = copy.deepcopy(body)
    tokens = estimate_input_tokens(body)
    assert isinstance(tokens, int) and tokens >= 0
    assert tokens == estimate_input_tokens(copy.deepcopy(body)) == input_breakdown(body).total
    assert body == snapshot


# ---------------------------------------------------------------------------------------------
# OpenAI request -> Anthropic request
# ---------------------------------------------------------------------------------------------

ANTHROPIC_TOP_LEVEL_KEYS = {
    "model", "max_tokens", "system", "messages", "tools", "tool_choice", "thinking", "temperature", "top_p",
    "stop_sequences", "metadata", "stream",
}
BLOCK_TYPES_BY_ROLE = {"user": {"text", "image", "document", "tool_result"}, "assistant": {"text", "tool_use"}}
IMAGE_MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def blocks_everywhere(body: dict) -> list[dict]:
    """Every content block of a request: system, messages and inside tool results."""
    blocks = list(body.get("system", []))
    for message in body["messages"]:
        for block in message["content"]:
            blocks.append(block)
            if block["type"] == "tool_result" and isinstance(block.get("content"), list):
                blocks += block["content"]
    return blocks


def check_anthropic_rules(request: AnthropicRequest, body: dict) -> None:
    """The rules Anthropic enforces with a 400 (PROTOCOLS 1.9), checked on a translated body."""
    out = request.body
    assert set(out) <= ANTHROPIC_TOP_LEVEL_KEYS, f"unknown fields {set(out) - ANTHROPIC_TOP_LEVEL_KEYS}"
    messages = out["messages"]
    assert messages and messages[0]["role"] == "user", "first message must use the user role"
    for before, after in zip(messages, messages[1:]):
        assert before["role"] != after["role"], "roles alternate"
    for message in messages:
        assert message["role"] in BLOCK_TYPES_BY_ROLE
        assert isinstance(message["content"], list) and message["content"], "non-empty content"
        assert {block["type"] for block in message["content"]} <= BLOCK_TYPES_BY_ROLE[message["role"]]
    for block in blocks_everywhere(out):
        if block["type"] == "text":
            assert block["text"].strip(), "text content blocks must contain non-whitespace text"
        if block["type"] == "image" and block["source"]["type"] == "base64":
            assert block["source"]["media_type"] in IMAGE_MEDIA_TYPES
    last = messages[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        text = last["content"][-1]["text"]
        assert text == text.rstrip(), "final assistant content cannot end with trailing whitespace"

    # Tool use: answered first in the very next user message, ids valid and unique.
    all_ids = []
    for position, message in enumerate(messages):
        uses = [block for block in message["content"] if block["type"] == "tool_use"]
        results = [block for block in message["content"] if block["type"] == "tool_result"]
        for use in uses:
            assert ANTHROPIC_ID.fullmatch(use["id"]) and ANTHROPIC_TOOL_NAME.fullmatch(use["name"])
            assert isinstance(use["input"], dict)
        all_ids += [use["id"] for use in uses]
        if uses:
            reply = messages[position + 1]["content"] if position + 1 < len(messages) else []
            leading = [block.get("tool_use_id") for block in reply[: len(uses)]]
            assert sorted(leading, key=str) == sorted(use["id"] for use in uses), (
                "every tool_use needs its tool_result first in the very next user message"
            )
        if results:
            assert message["content"][: len(results)] == results, "tool_result blocks come first"
            asked = {block["id"] for block in messages[position - 1]["content"] if block["type"] == "tool_use"}
            assert {block["tool_use_id"] for block in results} <= asked, "a result answers the turn before"
            assert len({block["tool_use_id"] for block in results}) == len(results), "one result per call"
    assert len(set(all_ids)) == len(all_ids), "tool_use ids must be unique"

    # Request-level rules.
    assert sum("cache_control" in block for block in blocks_everywhere(out) + out.get("tools", [])) <= 4
    for stop in out.get("stop_sequences", []):
        assert stop.strip(), "each stop sequence must contain non-whitespace"
    assert 0 <= out.get("temperature", 0) <= 1
    assert isinstance(out["max_tokens"], int) and out["max_tokens"] >= 1
    for block in out.get("system", []):
        assert block["type"] == "text"
    tools = out.get("tools", [])
    names = [tool["name"] for tool in tools]
    assert len(set(names)) == len(names)
    for tool in tools:
        assert ANTHROPIC_TOOL_NAME.fullmatch(tool["name"]) and tool["input_schema"].get("type") == "object"
    if "tool_choice" in out:
        assert tools, "tool_choice only with tools"
        assert out["tool_choice"]["type"] in ("auto", "any", "tool", "none")
        if out["tool_choice"]["type"] == "tool":
            assert out["tool_choice"]["name"] in names
    thinking = out.get("thinking")
    if thinking is not None:
        assert thinking["type"] == "enabled"
        assert 1024 <= thinking["budget_tokens"] < out["max_tokens"], "max_tokens > thinking budget"
        assert "temperature" not in out and "top_p" not in out
        assert out.get("tool_choice", {"type": "auto"})["type"] in ("auto", "none")
        assert last["role"] == "user" and not any(block["type"] == "tool_result" for block in last["content"])

    # Shortened names map back to the client's names.
    client_names = {tool["function"]["name"] for tool in body.get("tools", [])}
    client_names |= {
        call["function"]["name"]
        for message in body["messages"]
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or []
    }
    used_names = set(names) | {
        block["name"] for message in messages for block in message["content"] if block["type"] == "tool_use"
    }
    for name in used_names - {JSON_RESPONSE_TOOL}:
        assert request.tool_names.get(name, name) in client_names


@given(openai_requests())
@PROPERTY
def test_any_valid_openai_request_translates_to_a_body_anthropic_accepts(request_and_target):
    """A valid Chat Completions request never raises and breaks none of Anthropic's 400 rules."""
    body, target = request_and_target
    snapshot = copy.deepcopy(body)
    request = chat_to_anthropic_request(body, target)
    assert body == snapshot, "the client's body is never modified"
    check_anthropic_rules(request, body)
    assert chat_to_anthropic_request(copy.deepcopy(body), target) == request, "translation is deterministic"
    stream_options = body.get("stream_options") or {}
    assert request.include_usage == (stream_options.get("include_usage") is True)


# ---------------------------------------------------------------------------------------------
# OpenAI stream -> Anthropic events
# ---------------------------------------------------------------------------------------------

MESSAGE_ID = "msg_01Property"
STOP_REASONS = {"end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal"}
DELTA_TYPES_BY_BLOCK = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
}


def run_openai_stream(stream: OpenAIStream, delivery: Delivery) -> list[dict]:
    """Decode the bytes read by read, translate every event, end as the delivery says."""
    decoder = SSEDecoder()
    translator = ChatToAnthropicStream(
        requested_model="claude-sonnet-5", message_id=MESSAGE_ID, tool_names=STREAM_TOOL_NAMES, **stream.options
    )
    events: list[dict] = []
    for piece in delivery.pieces(stream.raw):
        for event in decoder.feed(piece):
            events += translator.feed(event)
    for event in decoder.close():
        events += translator.feed(event)
    if delivery.ending == "close":
        events += translator.close()
    else:
        events += translator.fail(UpstreamTimeout("The upstream went silent."))
    assert translator.finished
    late = translator.feed(SSEEvent(data="[DONE]")) + translator.close() + translator.fail(UpstreamTimeout("late"))
    assert late == [], "nothing after the end"
    return events


def check_anthropic_events(events: list[dict]) -> None:
    """A well-formed Anthropic stream: PROTOCOLS 1.8 and 4.1 invariants, FIELD-NOTES streaming traps."""
    assert events, "a stream always ends with something"
    kinds = [event["type"] for event in events]
    assert kinds[-1] in ("message_stop", "error"), "the stream ends with message_stop or an error"
    assert kinds.count("message_stop") + kinds.count("error") == 1, "exactly one end, and nothing after it"
    if kinds[0] == "error":
        assert len(events) == 1, "an error before message_start is the only event"
        return
    assert kinds[0] == "message_start" and kinds.count("message_start") == 1
    assert events[0]["message"]["content"] == [] and events[0]["message"]["stop_reason"] is None
    open_block: dict | None = None
    open_index = -1
    next_index = 0
    got_delta = False
    signature_seen = False
    message_delta_seen = False
    for event in events[1:]:
        kind = event["type"]
        assert not message_delta_seen or kind in ("message_stop", "error"), "only the end after message_delta"
        if kind == "content_block_start":
            assert open_block is None, "a block opened while another was open"
            assert event["index"] == next_index, "indexes start at 0 and increase by 1"
            open_block, open_index = event["content_block"], next_index
            next_index += 1
            got_delta = signature_seen = False
            if open_block["type"] == "text":
                assert open_block["text"] == ""
            elif open_block["type"] == "thinking":
                assert open_block["thinking"] == ""
            else:
                assert open_block["type"] == "tool_use"
                assert open_block["input"] == {}, "tool input arrives only through input_json_delta"
                assert ANTHROPIC_ID.fullmatch(open_block["id"]) and isinstance(open_block["name"], str)
        elif kind == "content_block_delta":
            assert open_block is not None and event["index"] == open_index, "a delta for the open block only"
            delta = event["delta"]
            assert delta["type"] in DELTA_TYPES_BY_BLOCK[open_block["type"]]
            assert not signature_seen, "the signature is the thinking block's last delta"
            if delta["type"] == "text_delta":
                assert delta["text"], "no empty text deltas"
                got_delta = True
            elif delta["type"] == "thinking_delta":
                assert delta["thinking"]
                got_delta = True
            elif delta["type"] == "signature_delta":
                assert isinstance(delta["signature"], str)
                signature_seen = True
            elif delta["type"] == "input_json_delta":
                assert delta["partial_json"], "no empty argument fragments"
        elif kind == "content_block_stop":
            assert open_block is not None and event["index"] == open_index, "each start has exactly one stop"
            if open_block["type"] in ("text", "thinking"):
                assert got_delta, f"an empty {open_block['type']} block"
            if open_block["type"] == "thinking":
                assert signature_seen, "a thinking block ends with its signature_delta"
            open_block = None
        elif kind == "message_delta":
            assert open_block is None, "nothing is open at message_delta"
            assert event["delta"]["stop_reason"] in STOP_REASONS
            usage = event["usage"]
            for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
                assert isinstance(usage[name], int) and usage[name] >= 0
            message_delta_seen = True
        elif kind == "message_stop":
            assert message_delta_seen, "message_delta comes before message_stop"
        elif kind == "error":
            assert open_block is None, "open blocks are closed before the error event"
            assert set(event["error"]) >= {"type", "message"}
        else:
            raise AssertionError(f"unexpected event type {kind!r}")
    stop_reasons = [event["delta"]["stop_reason"] for event in events if event["type"] == "message_delta"]
    has_tool = any(e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use" for e in events)
    if stop_reasons:
        assert (stop_reasons[0] == "tool_use") == has_tool, "stop_reason is tool_use exactly when a tool_use exists"


def blocks_of(events: list[dict]) -> list[dict]:
    """Fold the events into content blocks; tool_use blocks keep their joined `partial_json`."""
    blocks: list[dict] = []
    for event in events:
        if event["type"] == "content_block_start":
            blocks.append({**event["content_block"], "partial_json": ""})
        elif event["type"] == "content_block_delta":
            delta, block = event["delta"], blocks[event["index"]]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "input_json_delta":
                block["partial_json"] += delta["partial_json"]
    return blocks


def expected_openai_outcome(stream: OpenAIStream, ending: str) -> str:
    """How a stream delivered whole must end: "message_stop" or "error"."""
    if stream.error_chunk or stream.chunk_count == 0:
        return "error"
    if stream.interleaved and not stream.options["buffer_tool_calls"]:
        return "error"
    return "message_stop" if stream.done or ending == "close" else "error"


def is_sent_text(received: str, sent: str, prefix: bool = False) -> bool:
    """`received` is `sent` (or, with `prefix`, its beginning) less whitespace-only runs between blocks."""
    kept, expected = "".join(received.split()), "".join(sent.split())
    if not (expected.startswith(kept) if prefix else kept == expected):
        return False
    position = 0  # and every received character appears in order in what was sent
    for character in received:
        position = sent.find(character, position)
        if position < 0:
            return False
        position += 1
    return True


@given(openai_streams())
@STREAM_PROPERTY
def test_any_openai_stream_becomes_a_well_formed_anthropic_stream(stream):
    """Whatever the chunks and however the bytes are split or cut, the events are well-formed."""
    events = run_openai_stream(stream, stream.delivery)
    check_anthropic_events(events)
    whole = Delivery((), stream.delivery.cut_at, stream.delivery.ending)
    assert run_openai_stream(stream, whole) == events, "the result does not depend on read boundaries"

    blocks = blocks_of(events)
    text = "".join(block["text"] for block in blocks if block["type"] == "text")
    reasoning = "".join(block["thinking"] for block in blocks if block["type"] == "thinking")
    if not stream.options["thought_tags"]:
        # Whitespace that would open a text block alone is dropped (Anthropic rejects such blocks).
        assert is_sent_text(text, stream.text, prefix=True), "text is never altered"
        assert stream.reasoning.startswith(reasoning), "reasoning is never altered"
    assert all(block["text"].strip() for block in blocks if block["type"] == "text"), "no whitespace-only text block"
    if stream.delivery.cut_at is not None:
        return
    assert events[-1]["type"] == expected_openai_outcome(stream, stream.delivery.ending)
    if events[-1]["type"] != "message_stop":
        return
    if not stream.options["thought_tags"]:
        assert is_sent_text(text, stream.text) and reasoning == stream.reasoning, "all text and reasoning arrive"
    elif stream.only_content:
        expected_reasoning, expected_text = split_inline_thoughts(stream.text)
        assert reasoning == expected_reasoning and is_sent_text(text, expected_text), "tags split as in the whole response"
    check_tool_blocks(stream, [block for block in blocks if block["type"] == "tool_use"])
    if stream.usage is not None:
        usage = next(event["usage"] for event in events if event["type"] == "message_delta")
        cached = stream.usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
        assert usage["input_tokens"] == max(0, stream.usage["prompt_tokens"] - cached)
        assert usage["cache_read_input_tokens"] == cached
        assert usage["output_tokens"] >= stream.usage["completion_tokens"]


def check_tool_blocks(stream: OpenAIStream, tool_blocks: list[dict]) -> None:
    """One tool_use block per upstream call, in order, with its name restored and all its arguments."""
    calls = list(stream.calls)
    if stream.options["buffer_tool_calls"]:  # emitted at the finish, in upstream index order
        calls.sort(key=lambda call: (call.upstream_index is None, call.upstream_index or 0))
    assert [block["name"] for block in tool_blocks] == [STREAM_TOOL_NAMES.get(c.name, c.name) for c in calls]
    assert [block["partial_json"] for block in tool_blocks] == [call.arguments for call in calls]
    for block, call in zip(tool_blocks, calls):
        if call.signature is not None and stream.options["thought_signatures"]:
            plain, signature = split_signed_tool_id(block["id"])
            assert signature is not None and signature.value == call.signature, "the signature rides in the id"
        else:
            plain = block["id"]
        if call.upstream_id is not None and THOUGHT_SIGNATURE_MARKER not in call.upstream_id:
            assert plain == portable_tool_id(call.upstream_id)
    assert len({block["id"] for block in tool_blocks}) == len(tool_blocks)


# ---------------------------------------------------------------------------------------------
# Anthropic stream -> OpenAI chunks
# ---------------------------------------------------------------------------------------------

COMPLETION_ID = "chatcmpl-property"
CREATED = 1754000000


def run_anthropic_stream(stream: AnthropicStream, delivery: Delivery) -> list:
    """Decode the bytes read by read, translate every event, end as the delivery says."""
    decoder = SSEDecoder()
    translator = AnthropicToChatStream(
        requested_model="gpt-4o", completion_id=COMPLETION_ID, created=CREATED, **stream.options
    )
    out: list = []
    for piece in delivery.pieces(stream.raw):
        for event in decoder.feed(piece):
            out += translator.feed(event)
    for event in decoder.close():
        out += translator.feed(event)
    out += translator.close() if delivery.ending == "close" else translator.fail(UpstreamTimeout("silent"))
    assert translator.finished
    late = translator.feed(SSEEvent(data='{"type":"message_stop"}')) + translator.close()
    assert late == [], "nothing after the end"
    return out


def check_openai_chunks(out: list, include_usage: bool) -> None:
    """A well-formed OpenAI stream: role first, one finish, usage chunk if asked, then [DONE] or one error."""
    assert out, "a stream always ends with something"
    assert out.count("[DONE]") + sum(isinstance(item, dict) and "error" in item for item in out) == 1
    assert out[-1] == "[DONE]" or "error" in out[-1], "it ends with [DONE] or an error object"
    chunks = [item for item in out if isinstance(item, dict) and "error" not in item]
    if chunks:
        assert chunks[0]["choices"][0]["delta"].get("role") == "assistant", "the role comes first"
    for chunk in chunks:
        assert (chunk["id"], chunk["object"], chunk["created"]) == (COMPLETION_ID, "chat.completion.chunk", CREATED)
        assert ("usage" in chunk) == include_usage
    finishes = [chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0]["finish_reason"] is not None]
    if out[-1] == "[DONE]":
        assert len(finishes) == 1
        tail = out[out.index(finishes[0]):]
        if include_usage:
            assert len(tail) == 3 and tail[1]["choices"] == [] and tail[1]["usage"]["total_tokens"] >= 0
        else:
            assert len(tail) == 2
    else:
        assert not finishes


def tool_calls_of(out: list) -> list[dict]:
    """Fold tool call fragments by index; indexes must be 0..n-1 in order of first appearance."""
    calls: list[dict] = []
    for item in out:
        if not isinstance(item, dict) or not item.get("choices"):
            continue
        for fragment in item["choices"][0]["delta"].get("tool_calls") or []:
            index = fragment["index"]
            if index == len(calls):
                assert fragment["type"] == "function" and fragment["function"]["arguments"] == ""
                calls.append({"id": fragment["id"], "name": fragment["function"]["name"], "arguments": ""})
            else:
                assert index < len(calls), "tool call indexes are 0..n-1 in order of first appearance"
                assert set(fragment) == {"index", "function"}, "only the first fragment carries id and name"
                calls[index]["arguments"] += fragment["function"]["arguments"]
    return calls


@given(anthropic_streams())
@STREAM_PROPERTY
def test_any_anthropic_stream_becomes_a_well_formed_openai_stream(stream):
    """Whatever the events and however the bytes are split or cut, the chunks are well-formed."""
    out = run_anthropic_stream(stream, stream.delivery)
    include_usage = stream.options["include_usage"]
    check_openai_chunks(out, include_usage)
    whole = Delivery((), stream.delivery.cut_at, stream.delivery.ending)
    assert run_anthropic_stream(stream, whole) == out, "the result does not depend on read boundaries"

    calls = tool_calls_of(out)
    assert len(calls) <= len(stream.calls)
    for call, expected in zip(calls, stream.calls):
        assert (call["id"], call["name"]) == (portable_tool_id(expected["id"]), expected["name"])
        assert expected["arguments"].startswith(call["arguments"]), "argument fragments arrive in order"
    content = "".join(
        item["choices"][0]["delta"].get("content") or ""
        for item in out
        if isinstance(item, dict) and item.get("choices")
    )
    if stream.options["json_mode"] is None:
        assert stream.text.startswith(content), "text is never altered"
    if stream.delivery.cut_at is not None:
        return
    ends_cleanly = stream.complete or (stream.stop_reason is not None and stream.delivery.ending == "close")
    assert (out[-1] == "[DONE]") == (ends_cleanly and not stream.error_event), "ends with [DONE] exactly when complete"
    if out[-1] != "[DONE]":
        return
    assert [call["arguments"] for call in calls] == [expected["arguments"] for expected in stream.calls]
    for call in calls:
        json.loads(call["arguments"])  # concatenated fragments are valid JSON, as the input's were
    if stream.options["json_mode"] is None:
        reasoning = "".join(
            item["choices"][0]["delta"].get("reasoning_content") or ""
            for item in out
            if isinstance(item, dict) and item.get("choices")
        )
        assert (content, reasoning) == (stream.text, stream.reasoning)
    finish = next(item for item in out if isinstance(item, dict) and item["choices"] and item["choices"][0]["finish_reason"])
    finish_reason = finish["choices"][0]["finish_reason"]
    assert (finish_reason == "tool_calls") <= bool(calls), "tool_calls only when a call was sent"
    if calls and stream.stop_reason not in ("max_tokens", "refusal", "model_context_window_exceeded"):
        assert finish_reason == "tool_calls"
    if include_usage:
        usage = out[-2]["usage"]
        prompt = sum(stream.usage[name] for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, stream.usage["output_tokens"])
        assert usage["prompt_tokens_details"]["cached_tokens"] == stream.usage["cache_read_input_tokens"]


# ---------------------------------------------------------------------------------------------
# Cases the properties found
# ---------------------------------------------------------------------------------------------


def test_a_tool_call_id_reused_in_a_later_turn_still_gives_unique_tool_use_ids():
    """Two turns whose calls share an id become tool_use blocks with distinct ids, each result paired."""
    call = {"id": "call_0", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
    body = {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "a.txt"},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "a.txt b.txt"},
    ]}
    check_anthropic_rules(chat_to_anthropic_request(body, AnthropicTarget(model="claude-sonnet-4-5")), body)
    sent = chat_to_anthropic_request(body, AnthropicTarget(model="claude-sonnet-4-5")).body["messages"]
    first, second = sent[1]["content"][0]["id"], sent[3]["content"][0]["id"]
    assert first == "call_0" and second != first
    assert sent[4]["content"][0]["tool_use_id"] == second


def test_whitespace_before_a_tool_call_never_becomes_a_text_block():
    """Upstreams often send "\n\n" before a tool call: no whitespace-only text block reaches the client."""
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "\n\n"}}]},
        {"choices": [{"index": 0, "delta": {"content": " "}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                                            "function": {"name": "ls", "arguments": "{}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    stream = ChatToAnthropicStream(requested_model="m", message_id="msg_1", tool_names={})
    events = [e for c in chunks for e in stream.feed(SSEEvent(json.dumps(c)))] + stream.feed(SSEEvent("[DONE]"))
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["tool_use"]
    whole = chat_to_anthropic_response(
        {"choices": [{"message": {"content": "\n\n", "tool_calls": [chunks[2]["choices"][0]["delta"]["tool_calls"][0]]}, "finish_reason": "tool_calls"}]},
        requested_model="m", message_id="msg_1", tool_names={},
    )
    assert [b["type"] for b in whole["content"]] == ["tool_use"]
