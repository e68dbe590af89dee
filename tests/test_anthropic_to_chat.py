"""Anthropic front -> OpenAI-dialect upstream: request, response and stream translation.

Golden cases live in tests/fixtures/anthropic_to_chat/<case>/, one directory each; the files present
say the kind:
- request:  input.json (Anthropic body), target.json (ChatTarget fields), expected.json
            ({"body", "tool_names", "dropped_tools", "stop_sequences"}).
- response: response.json (OpenAI body), options.json (tool_names, stop_sequences), expected.json.
- stream:   upstream.sse (raw bytes as the upstream sends them), options.json (tool_names,
            stop_sequences, buffer_tool_calls), expected.json (the Anthropic events), and optionally
            equivalent.json: the non-streamed OpenAI body with the same content, whose translation
            the folded stream must equal.

To write expected.json files after an intended change, run with SWITCHBOARD_UPDATE_GOLDEN=1 and
review the diff: the golden files are the spec.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from translate.anthropic_to_chat_request import (
    ChatRequest,
    ChatTarget,
    anthropic_to_chat_request,
    is_reasoning_model,
)
from translate.chat_to_anthropic_response import (
    ChatToAnthropicStream,
    chat_to_anthropic_response,
)
from translate.errors import (
    InvalidRequest,
    ProxyError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from translate.sse import SSEDecoder, SSEEvent, encode_anthropic_event

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic_to_chat"
UPDATE_GOLDEN = os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1"
REQUESTED_MODEL = "claude-opus-4-8"
MESSAGE_ID = "msg_01TestMessage"
PLAIN = ChatTarget(model="gpt-4o", reasoning=False)
REASONING = ChatTarget(model="gpt-5", reasoning=True)


def cases_with(filename: str) -> list[str]:
    return sorted(path.parent.name for path in FIXTURES.glob(f"*/{filename}"))


def load_json(case: str, filename: str, default: object = None) -> object:
    path = FIXTURES / case / filename
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def check_golden(case: str, actual: object) -> None:
    path = FIXTURES / case / "expected.json"
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))


def request_as_dict(request: ChatRequest) -> dict:
    return {
        "body": request.body,
        "tool_names": request.tool_names,
        "dropped_tools": list(request.dropped_tools),
        "stop_sequences": list(request.stop_sequences),
    }


def user_message(text: str = "Hi") -> dict:
    return {"role": "user", "content": text}


def minimal_body(**fields: object) -> dict:
    return {"model": REQUESTED_MODEL, "max_tokens": 100, "messages": [user_message()], **fields}


# ---------------------------------------------------------------------------------------------
# Stream harness
# ---------------------------------------------------------------------------------------------


def new_stream(options: dict) -> ChatToAnthropicStream:
    return ChatToAnthropicStream(
        requested_model=REQUESTED_MODEL,
        message_id=MESSAGE_ID,
        tool_names=options.get("tool_names", {}),
        stop_sequences=tuple(options.get("stop_sequences", ())),
        buffer_tool_calls=options.get("buffer_tool_calls", False),
    )


def translate_stream(pieces: list[bytes], options: dict) -> list[dict]:
    """Decode the pieces as network reads, feed every event, then close as at EOF."""
    decoder = SSEDecoder()
    stream = new_stream(options)
    events: list[dict] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            events += stream.feed(event)
    for event in decoder.close():
        events += stream.feed(event)
    events += stream.close()
    assert stream.finished
    assert stream.feed(SSEEvent(data="[DONE]")) == [] and stream.close() == []
    return events


def three_ways(raw: bytes) -> dict[str, list[bytes]]:
    return {
        "whole": [raw],
        "lines": raw.splitlines(keepends=True),
        "bytes": [raw[i : i + 1] for i in range(len(raw))],
    }


def check_stream_invariants(events: list[dict]) -> None:
    """PROTOCOLS 4.1 invariants and the FIELD-NOTES streaming traps, on any event list."""
    assert events, "a stream always ends with something"
    assert events[-1]["type"] in ("message_stop", "error")
    assert all(event["type"] != "error" for event in events[:-1])
    started = events[0]["type"] == "message_start"
    if not started:
        assert [event["type"] for event in events] == ["error"]
        return
    assert events[0]["message"]["content"] == []
    open_index: int | None = None
    next_index = 0
    text_seen: dict[int, str] = {}
    for event in events[1:]:
        kind = event["type"]
        assert kind != "message_start"
        if kind == "content_block_start":
            assert open_index is None, "a block opened while another was open"
            assert event["index"] == next_index, "indexes must be contiguous from 0"
            open_index = next_index
            next_index += 1
            block = event["content_block"]
            if block["type"] == "tool_use":
                assert block["input"] == {}
            if block["type"] == "text":
                assert block["text"] == ""
                text_seen[open_index] = ""
        elif kind == "content_block_delta":
            assert event["index"] == open_index, "a delta for a block that is not open"
            delta = event["delta"]
            if delta["type"] == "text_delta":
                text_seen[open_index] += delta["text"]
            if delta["type"] == "input_json_delta":
                assert delta["partial_json"] != ""
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            if open_index in text_seen:
                assert text_seen[open_index] != "", "empty text block"
            open_index = None
        elif kind == "message_delta":
            assert open_index is None, "a block still open at message_delta"
            assert isinstance(event["usage"]["output_tokens"], int)
        elif kind == "error":
            assert open_index is None, "a block still open at the error event"
    if events[-1]["type"] == "message_stop":
        assert events[-2]["type"] == "message_delta"


def fold(events: list[dict]) -> dict:
    """Accumulate events into a message the way the Anthropic SDK does."""
    message: dict | None = None
    json_parts: dict[int, str] = {}
    for event in events:
        kind = event["type"]
        if kind == "message_start":
            message = json.loads(json.dumps(event["message"]))
        elif kind == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            block = message["content"][event["index"]]
            delta = event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                json_parts[event["index"]] = json_parts.get(event["index"], "") + delta["partial_json"]
        elif kind == "content_block_stop":
            block = message["content"][event["index"]]
            if block["type"] == "tool_use":
                block["input"] = json.loads(json_parts.get(event["index"]) or "{}")
        elif kind == "message_delta":
            message["stop_reason"] = event["delta"]["stop_reason"]
            message["stop_sequence"] = event["delta"]["stop_sequence"]
            message["usage"].update(event["usage"])
    return message


# ---------------------------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases_with("input.json"))
def test_request_golden_case(case: str) -> None:
    """The Anthropic request translates into exactly the expected OpenAI request."""
    target = ChatTarget(**load_json(case, "target.json", {"model": "gpt-4o", "reasoning": False}))
    request = anthropic_to_chat_request(load_json(case, "input.json"), target)
    check_golden(case, request_as_dict(request))


@pytest.mark.parametrize("case", cases_with("response.json"))
def test_response_golden_case(case: str) -> None:
    """The OpenAI response translates into exactly the expected Anthropic message."""
    options = load_json(case, "options.json", {})
    message = chat_to_anthropic_response(
        load_json(case, "response.json"),
        requested_model=REQUESTED_MODEL,
        message_id=MESSAGE_ID,
        tool_names=options.get("tool_names", {}),
        stop_sequences=tuple(options.get("stop_sequences", ())),
    )
    check_golden(case, message)


@pytest.mark.parametrize("case", cases_with("upstream.sse"))
def test_stream_golden_case_fed_whole_by_line_and_by_byte(case: str) -> None:
    """The upstream stream gives the expected events however the bytes are split, and keeps the invariants."""
    raw = (FIXTURES / case / "upstream.sse").read_bytes()
    options = load_json(case, "options.json", {})
    results = {name: translate_stream(pieces, options) for name, pieces in three_ways(raw).items()}
    assert results["lines"] == results["whole"]
    assert results["bytes"] == results["whole"]
    check_stream_invariants(results["whole"])
    check_golden(case, results["whole"])


@pytest.mark.parametrize("case", cases_with("equivalent.json"))
def test_folded_stream_equals_the_translated_whole_response(case: str) -> None:
    """Folding the translated stream gives the same message as translating the equivalent non-stream body."""
    options = load_json(case, "options.json", {})
    events = translate_stream([(FIXTURES / case / "upstream.sse").read_bytes()], options)
    whole = chat_to_anthropic_response(
        load_json(case, "equivalent.json"),
        requested_model=REQUESTED_MODEL,
        message_id=MESSAGE_ID,
        tool_names=options.get("tool_names", {}),
        stop_sequences=tuple(options.get("stop_sequences", ())),
    )
    assert fold(events) == whole


def test_every_fixture_directory_is_a_known_kind() -> None:
    """No fixture directory is silently skipped for lack of a recognised input file."""
    kinds = set(cases_with("input.json")) | set(cases_with("response.json")) | set(cases_with("upstream.sse"))
    assert {path.name for path in FIXTURES.iterdir() if path.is_dir()} == kinds
    assert all((FIXTURES / case / "expected.json").exists() for case in kinds)


# ---------------------------------------------------------------------------------------------
# The Anthropic SDK reads our stream
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases_with("equivalent.json"))
def test_anthropic_sdk_accumulates_the_stream_into_the_whole_response(case: str) -> None:
    """The real Anthropic SDK, reading our encoded events, builds the same message as the non-stream path."""
    anthropic = pytest.importorskip("anthropic")
    try:
        import httpx2 as httpx
    except ImportError:
        httpx = pytest.importorskip("httpx")
    options = load_json(case, "options.json", {})
    events = translate_stream([(FIXTURES / case / "upstream.sse").read_bytes()], options)
    body = b"".join(encode_anthropic_event(event) for event in events)

    def handler(request):  # an in-memory transport: no socket is opened
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = anthropic.Anthropic(
        api_key="test", base_url="http://127.0.0.1:1", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with client.messages.stream(model=REQUESTED_MODEL, max_tokens=100, messages=[user_message()]) as stream:
        final = stream.get_final_message()
    whole = chat_to_anthropic_response(
        load_json(case, "equivalent.json"),
        requested_model=REQUESTED_MODEL,
        message_id=MESSAGE_ID,
        tool_names=options.get("tool_names", {}),
        stop_sequences=tuple(options.get("stop_sequences", ())),
    )
    got = final.model_dump(exclude_none=True)
    assert [block for block in got["content"]] == [
        {key: value for key, value in block.items() if value is not None} for block in whole["content"]
    ]
    assert (final.stop_reason, final.stop_sequence) == (whole["stop_reason"], whole["stop_sequence"])
    assert final.usage.input_tokens == whole["usage"]["input_tokens"]
    assert final.usage.output_tokens == whole["usage"]["output_tokens"]
    assert final.usage.cache_read_input_tokens == whole["usage"]["cache_read_input_tokens"]


# ---------------------------------------------------------------------------------------------
# Requests: rules worth stating on their own
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("o1", True),
        ("o1-mini", True),
        ("o3-mini", True),
        ("o4-mini-2025-04-16", True),
        ("gpt-5", True),
        ("gpt-5.1-codex", True),
        ("openai/gpt-5-mini", True),
        ("azure/o3", True),
        ("gpt-4o", False),
        ("gpt-4.1-mini", False),
        ("llama3.2", False),
        ("gemini-2.5-pro", False),
        ("openai/gpt-4o", False),
    ],
)
def test_reasoning_models_are_recognised_by_family(name: str, expected: bool) -> None:
    """o1/o3/o4/gpt-5 names (with or without a provider prefix) are reasoning models; others are not."""
    assert is_reasoning_model(name) is expected


@pytest.mark.parametrize(
    "thinking, output_config, effort",
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 4095}, None, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 16383}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 16384}, None, "high"),
        ({"type": "enabled", "budget_tokens": 2000}, {"effort": "max"}, "low"),
        ({"type": "adaptive"}, {"effort": "low"}, "low"),
        ({"type": "adaptive"}, {"effort": "medium"}, "medium"),
        ({"type": "adaptive"}, {"effort": "xhigh"}, "high"),
        ({"type": "adaptive"}, {"effort": "max"}, "high"),
        # Claude Code 2.1.332: adaptive thinking with its text left out of the answer.
        ({"type": "adaptive", "display": "omitted"}, {"effort": "medium"}, "medium"),
        ({"type": "adaptive", "display": "omitted"}, {"effort": "max"}, "high"),
        ({"type": "adaptive"}, None, None),
        (None, {"effort": "medium"}, "medium"),
        ({"type": "disabled"}, {"effort": "high"}, None),
        (None, None, None),
    ],
)
def test_thinking_settings_become_reasoning_effort_for_reasoning_targets(thinking, output_config, effort) -> None:
    """Budgets map below 4096 -> low, below 16384 -> medium, else high; adaptive takes the effort."""
    fields = {key: value for key, value in (("thinking", thinking), ("output_config", output_config)) if value}
    body = anthropic_to_chat_request(minimal_body(**fields), REASONING).body
    assert body.get("reasoning_effort") == effort
    assert "reasoning_effort" not in anthropic_to_chat_request(minimal_body(**fields), PLAIN).body


def test_only_allowlisted_fields_reach_the_upstream() -> None:
    """Anthropic-only and unknown top-level fields never appear in the OpenAI body."""
    body = minimal_body(
        temperature=0.5,
        top_p=0.9,
        top_k=5,
        stop_sequences=["END"],
        stream=True,
        metadata={"user_id": "u1"},
        thinking={"type": "enabled", "budget_tokens": 2048},
        output_config={"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        context_management={"edits": []},
        service_tier="auto",
        container="c1",
        cache_control={"type": "ephemeral"},
        inference_geo="eu",
        mcp_servers=[],
        betas=["x"],
        some_future_field=True,
        tools=[{"name": "t", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    allowed = {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
        "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort", "response_format",
        "user",
    }
    for target in (PLAIN, REASONING):
        assert set(anthropic_to_chat_request(body, target).body) <= allowed


def test_reasoning_targets_get_max_completion_tokens_and_no_sampling() -> None:
    """A reasoning target gets max_completion_tokens, and temperature/top_p are left out."""
    body = anthropic_to_chat_request(minimal_body(max_tokens=500, temperature=0.2, top_p=0.5), REASONING).body
    assert body["max_completion_tokens"] == 500
    assert not {"max_tokens", "temperature", "top_p"} & set(body)


def test_max_tokens_is_capped_by_the_target_limit_only_when_above_it() -> None:
    """max_tokens_limit caps large requests and leaves smaller ones alone."""
    capped = ChatTarget(model="gpt-4o", reasoning=False, max_tokens_limit=16384)
    assert anthropic_to_chat_request(minimal_body(max_tokens=64000), capped).body["max_tokens"] == 16384
    assert anthropic_to_chat_request(minimal_body(max_tokens=1000), capped).body["max_tokens"] == 1000


def test_stop_sequences_are_capped_at_four_but_all_are_kept_for_the_response() -> None:
    """OpenAI takes at most four stop strings; the client's full list still comes back for stop_sequence."""
    stops = ["a", "b", "c", "d", "e"]
    request = anthropic_to_chat_request(minimal_body(stop_sequences=stops), PLAIN)
    assert request.body["stop"] == ["a", "b", "c", "d"]
    assert request.stop_sequences == tuple(stops)


def test_tool_ids_round_trip_between_tool_calls_and_tool_messages() -> None:
    """A rewritten tool id is the same in the assistant's tool_calls and in the matching tool message."""
    weird = "functions.Bash:0"
    body = minimal_body(
        messages=[
            user_message(),
            {"role": "assistant", "content": [{"type": "tool_use", "id": weird, "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": weird, "content": "ok"}]},
        ]
    )
    messages = anthropic_to_chat_request(body, PLAIN).body["messages"]
    call_id = messages[1]["tool_calls"][0]["id"]
    assert call_id != weird and len(call_id) <= 40
    assert messages[2] == {"role": "tool", "tool_call_id": call_id, "content": "ok"}


def test_tool_arguments_are_compact_utf8_json() -> None:
    """tool_use input becomes compact JSON with non-ASCII kept; an empty input is "{}"."""
    body = minimal_body(
        messages=[
            user_message(),
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "say", "input": {"text": "Grüße 世界", "n": [1, 2]}},
                    {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
                ],
            },
        ]
    )
    calls = anthropic_to_chat_request(body, PLAIN).body["messages"][1]["tool_calls"]
    assert [call["function"]["arguments"] for call in calls] == ['{"text":"Grüße 世界","n":[1,2]}', "{}"]


@pytest.mark.parametrize(
    "body, param",
    [
        (["not", "an", "object"], None),
        ({"max_tokens": 10, "messages": []}, "model"),
        ({"model": "", "max_tokens": 10, "messages": []}, "model"),
        ({"model": "m", "max_tokens": 10}, "messages"),
        ({"model": "m", "max_tokens": 10, "messages": {"role": "user"}}, "messages"),
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": -1, "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": "10", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": True, "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": 10, "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "max_tokens": 10, "messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "max_tokens": 10, "messages": [{"role": "tool", "content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "max_tokens": 10, "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]"),
        (
            {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
            "messages[0].content[0]",
        ),
        (
            {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages[0].content[0].text",
        ),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}],
            },
            "messages[0].content[0].tool_use_id",
        ),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]}],
            },
            "messages[0].content[0].name",
        ),
        ({"model": "m", "max_tokens": 10, "messages": [], "system": 5}, "system"),
        ({"model": "m", "max_tokens": 10, "messages": [], "system": ["x"]}, "system[0]"),
        ({"model": "m", "max_tokens": 10, "messages": [], "tools": {"name": "t"}}, "tools"),
        ({"model": "m", "max_tokens": 10, "messages": [], "tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"model": "m", "max_tokens": 10, "messages": [], "tools": [{"name": "t"}], "tool_choice": "auto"}, "tool_choice"),
        ({"model": "m", "max_tokens": 10, "messages": [], "stop_sequences": "END"}, "stop_sequences"),
        ({"model": "m", "max_tokens": 10, "messages": [], "temperature": "hot"}, "temperature"),
    ],
)
def test_invalid_requests_are_400s_naming_the_field(body: object, param: str | None) -> None:
    """A request that cannot be translated raises InvalidRequest whose message and param name the field."""
    with pytest.raises(InvalidRequest) as caught:
        anthropic_to_chat_request(body, PLAIN)
    assert caught.value.status == 400
    assert caught.value.param == param
    if param is not None:
        assert caught.value.message.startswith(param + ":")


def test_unknown_blocks_anywhere_are_degraded_not_rejected() -> None:
    """Blocks of unknown or Anthropic-only types in any role never make the request fail."""
    odd = [{"type": kind} for kind in ("future_thing", "server_tool_use", "redacted_thinking", "image", "document")]
    body = minimal_body(
        messages=[
            {"role": "user", "content": odd + [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": odd + [{"type": "text", "text": "hello"}]},
            {"role": "system", "content": odd},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": odd}]},
        ]
    )
    messages = anthropic_to_chat_request(body, PLAIN).body["messages"]
    assert messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "tool", "tool_call_id": "t1", "content": "(no output)"},
    ]


# ---------------------------------------------------------------------------------------------
# Responses: errors
# ---------------------------------------------------------------------------------------------


def translate_response(response: object) -> dict:
    return chat_to_anthropic_response(response, requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names={})


def test_a_response_without_choices_is_a_502() -> None:
    """A 200 body with no choices cannot be answered: UpstreamUnavailable, status 502."""
    for response in ({"id": "x", "choices": []}, {"id": "x"}, ["not an object"]):
        with pytest.raises(UpstreamUnavailable) as caught:
            translate_response(response)
        assert caught.value.status == 502


def test_a_response_carrying_an_error_object_keeps_its_meaning() -> None:
    """An error object in a 200 body becomes a ProxyError with the mapped status and the upstream's message."""
    with pytest.raises(ProxyError) as caught:
        translate_response({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
    assert (caught.value.status, caught.value.error_type) == (429, "rate_limit_error")
    assert "Rate limit reached" in caught.value.message
    with pytest.raises(ProxyError) as caught:
        translate_response([{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}])
    assert caught.value.status == 503


def test_a_context_length_error_in_a_response_says_prompt_is_too_long() -> None:
    """Claude Code compacts only on "prompt is too long": a context-length error must carry it, as a 400."""
    with pytest.raises(ProxyError) as caught:
        translate_response(
            {"error": {"message": "This model's maximum context length is 8192 tokens.", "code": "context_length_exceeded"}}
        )
    assert caught.value.status == 400
    assert caught.value.error_type == "invalid_request_error"
    assert "prompt is too long" in caught.value.message


# ---------------------------------------------------------------------------------------------
# Streams: behaviour outside the fixtures
# ---------------------------------------------------------------------------------------------


def chunk_event(delta: dict, finish: str | None = None) -> SSEEvent:
    return SSEEvent(data=json.dumps({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))


def test_fail_after_start_closes_the_open_block_then_reports_the_error() -> None:
    """A broken upstream (e.g. a read timeout) ends the stream with the open block closed and one error event."""
    stream = new_stream({})
    stream.feed(chunk_event({"content": "Hel"}))
    events = stream.fail(UpstreamTimeout("upstream went silent for 300 s"))
    assert events == [
        {"type": "content_block_stop", "index": 0},
        {"type": "error", "error": {"type": "timeout_error", "message": "upstream went silent for 300 s"}},
    ]
    assert stream.finished
    assert stream.fail(UpstreamTimeout("again")) == [] and stream.close() == []


def test_fail_before_any_chunk_is_a_lone_error_event() -> None:
    """Nothing was sent yet, so the error event stands alone (the proxy may still answer with an HTTP error)."""
    stream = new_stream({})
    assert stream.fail(UpstreamUnavailable("connection reset")) == [
        {"type": "error", "error": {"type": "api_error", "message": "connection reset"}}
    ]


def test_fail_drops_buffered_tool_calls_rather_than_emitting_half_calls() -> None:
    """In buffered mode, calls not yet emitted are not sent when the stream breaks."""
    stream = new_stream({"buffer_tool_calls": True})
    stream.feed(chunk_event({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "Bash", "arguments": "{"}}]}))
    events = stream.fail(UpstreamUnavailable("connection reset"))
    assert [event["type"] for event in events] == ["error"]


def test_usage_is_exposed_for_the_access_log() -> None:
    """input, output and cache-read token counts are readable once the usage chunk has arrived."""
    stream = new_stream({})
    stream.feed(chunk_event({"content": "Hi"}, "stop"))
    usage = {"prompt_tokens": 2460, "completion_tokens": 57, "total_tokens": 2517, "prompt_tokens_details": {"cached_tokens": 2048}}
    stream.feed(SSEEvent(data=json.dumps({"id": "c", "choices": [], "usage": usage})))
    assert (stream.input_tokens, stream.output_tokens, stream.cache_read_tokens) == (412, 57, 2048)
    assert not stream.finished
    events = stream.feed(SSEEvent(data="[DONE]"))
    assert events[-2]["usage"]["input_tokens"] == 412
    assert stream.finished


def test_message_delta_waits_for_done_after_finish_reason() -> None:
    """finish_reason closes the block, but message_delta waits: the usage chunk comes after it."""
    stream = new_stream({})
    stream.feed(chunk_event({"content": "Hi"}))
    events = stream.feed(chunk_event({}, "stop"))
    assert [event["type"] for event in events] == ["content_block_stop"]
    assert not stream.finished


def test_fail_with_an_open_thinking_block_sends_its_signature_first() -> None:
    """A thinking block closed by a failure still gets its signature_delta before content_block_stop."""
    stream = new_stream({})
    stream.feed(chunk_event({"reasoning_content": "Let me think"}))
    events = stream.fail(UpstreamUnavailable("connection reset"))
    assert [event["type"] for event in events] == ["content_block_delta", "content_block_stop", "error"]
    assert events[0]["delta"] == {"type": "signature_delta", "signature": ""}


def test_a_named_error_event_with_plain_text_data_is_reported_with_that_text() -> None:
    """`event: error` whose data is not JSON still becomes an error event carrying the upstream's words."""
    stream = new_stream({})
    stream.feed(chunk_event({"content": "Hi"}))
    events = stream.feed(SSEEvent(data="upstream worker crashed", event="error"))
    assert events[-1]["type"] == "error"
    assert "upstream worker crashed" in events[-1]["error"]["message"]


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
        ("", {}),
        (None, {}),
        ("   ", {}),
        ('{"a": ', {"_raw_arguments": '{"a": '}),
        ('"just a string"', {"_raw_arguments": '"just a string"'}),
        ("[1, 2]", {"_raw_arguments": "[1, 2]"}),
    ],
)
def test_tool_arguments_that_are_not_an_object_are_kept_raw(arguments: object, expected: dict) -> None:
    """Unparseable or non-object arguments never crash and stay recoverable under `_raw_arguments`."""
    response = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": arguments}}]},
            }
        ]
    }
    assert translate_response(response)["content"][0]["input"] == expected
