"""OpenAI Responses upstream -> Anthropic hub: golden whole answers and streams, judged by both SDKs.

Golden cases live in tests/fixtures/responses_to_anthropic_response/<case>/, one directory each:
- answer.json (optional): a whole Responses `response` object; expected.json is the Anthropic
  message it becomes, or {"raises": {"status", "type", "message"}} for the ProxyError it raises.
- events.json (optional): the upstream stream as a list of event objects, sent as OpenAI frames them
  (`event: <type>` + `data: <json>`); expected_events.json is the Anthropic events it becomes.
- options.json (optional): {"tool_names": {sent name: client's name}}.
When both answer.json and events.json exist and the stream ends with message_stop, the folded
stream (the Anthropic SDK's own accumulator) must equal the whole answer's translation.

Every upstream fixture is validated with the openai SDK's types (so the shapes are realistic), and
every message and event produced with the anthropic SDK's types (so a typed client accepts them).

To write expected files after an intended change, run with SWITCHBOARD_UPDATE_GOLDEN=1 and review
the diff: the golden files are the spec.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import anthropic.lib.streaming._messages as anthropic_streaming
import pytest
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.test_anthropic_to_chat import check_stream_invariants, three_ways
from translate.errors import ProxyError, UpstreamTimeout
from translate.responses_context import decode_reasoning_signature
from translate.responses_to_anthropic_response import (
    ResponsesToAnthropicStream,
    responses_to_anthropic_response,
)
from translate.sse import SSEDecoder, SSEEvent, dumps

FIXTURES = Path(__file__).parent / "fixtures" / "responses_to_anthropic_response"
UPDATE_GOLDEN = os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1"
REQUESTED_MODEL = "claude-sonnet-4-5"
MESSAGE_ID = "msg_01ResponsesUpstreamTest"
ANTHROPIC_EVENT = TypeAdapter(RawMessageStreamEvent)
OPENAI_EVENT = TypeAdapter(ResponseStreamEvent)
# ResponseError.code in the openai SDK is a closed Literal without some codes OpenAI sends
# (RESPONSES.md 6: "treat codes as open strings"); only the realism check bends for them.
SDK_ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")


def cases_with(filename: str) -> list[str]:
    return sorted(path.parent.name for path in FIXTURES.glob(f"*/{filename}"))


def load_json(case: str, filename: str, default: object = None) -> object:
    path = FIXTURES / case / filename
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def check_golden(case: str, filename: str, actual: object) -> None:
    path = FIXTURES / case / filename
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))


def tool_names(case: str) -> dict[str, str]:
    return load_json(case, "options.json", {}).get("tool_names", {})


# ---------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------


def translate_whole(case: str) -> dict:
    """The Anthropic message, or {"raises": ...} describing the ProxyError."""
    try:
        return responses_to_anthropic_response(
            load_json(case, "answer.json"), requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names=tool_names(case)
        )
    except ProxyError as error:
        return {"raises": {"status": error.status, "type": error.error_type, "message": error.message}}


def upstream_bytes(events: list[dict]) -> bytes:
    """The stream as OpenAI frames it: the event name, then the JSON, then a blank line."""
    return b"".join(f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode() for event in events)


def translate_stream(pieces: list[bytes], names: dict[str, str]) -> list[dict]:
    """Decode the pieces as network reads, feed every event, then close as at EOF."""
    decoder = SSEDecoder()
    stream = ResponsesToAnthropicStream(requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names=names)
    events: list[dict] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            events += stream.feed(event)
    for event in decoder.close():
        events += stream.feed(event)
    events += stream.close()
    assert stream.finished
    assert stream.close() == [] and stream.fail(UpstreamTimeout("late")) == []
    return events


def validate_anthropic_events(events: list[dict]) -> None:
    for event in events:
        if event["type"] == "error":
            ErrorResponse.model_validate(event)
        else:
            ANTHROPIC_EVENT.validate_python(event)


def check_thinking_signatures(events: list[dict]) -> None:
    """Every thinking block gets exactly one signature_delta, as its last delta."""
    thinking = {event["index"] for event in events if event["type"] == "content_block_start" and event["content_block"]["type"] == "thinking"}
    for index in thinking:
        deltas = [event["delta"]["type"] for event in events if event["type"] == "content_block_delta" and event["index"] == index]
        assert deltas.count("signature_delta") == 1 and deltas[-1] == "signature_delta"


def fold(events: list[dict]) -> dict:
    """The message the Anthropic SDK accumulates from the events."""
    snapshot = None
    buffers: dict = {}
    for event in events:
        snapshot = anthropic_streaming.accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    return snapshot.model_dump(mode="json", exclude_none=True)


def openai_event(event: dict):
    event = copy.deepcopy(event)
    error = event.get("response", {}).get("error")
    if error and error["code"] not in SDK_ERROR_CODES:
        error["code"] = "server_error"
    return OPENAI_EVENT.validate_python(event)


# ---------------------------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------------------------


def test_fixture_directories_are_all_recognised() -> None:
    """Every fixture directory holds an answer or a stream, so none is silently skipped."""
    known = set(cases_with("answer.json")) | set(cases_with("events.json"))
    assert sorted(path.name for path in FIXTURES.iterdir() if path.is_dir()) == sorted(known)
    assert len(known) >= 12


@pytest.mark.parametrize("case", cases_with("answer.json"))
def test_upstream_answer_fixture_is_a_response_the_openai_sdk_accepts(case: str) -> None:
    """The recorded whole answers have the shape the openai SDK's Response type describes."""
    answer = copy.deepcopy(load_json(case, "answer.json"))
    if answer.get("error") and answer["error"]["code"] not in SDK_ERROR_CODES:
        answer["error"]["code"] = "server_error"
    Response.model_validate(answer)


@pytest.mark.parametrize("case", cases_with("events.json"))
def test_upstream_stream_fixture_is_events_the_openai_sdk_accepts(case: str) -> None:
    """Every recorded upstream event is one of the openai SDK's stream event types, numbered in order."""
    events = load_json(case, "events.json")
    for number, event in enumerate(events):
        assert openai_event(event).type == event["type"] and event["sequence_number"] == number


@pytest.mark.parametrize("case", cases_with("answer.json"))
def test_whole_answer_translates_to_the_recorded_message(case: str) -> None:
    """Each Responses object becomes exactly the recorded Anthropic message (or error), which the SDK accepts."""
    actual = translate_whole(case)
    check_golden(case, "expected.json", actual)
    if "raises" not in actual:
        Message.model_validate(actual)


@pytest.mark.parametrize("case", cases_with("events.json"))
def test_stream_gives_the_recorded_events_whole_line_by_line_and_byte_by_byte(case: str) -> None:
    """The upstream stream gives the recorded events however the bytes are split, in Anthropic's order."""
    raw = upstream_bytes(load_json(case, "events.json"))
    results = {name: translate_stream(pieces, tool_names(case)) for name, pieces in three_ways(raw).items()}
    assert results["lines"] == results["whole"]
    assert results["bytes"] == results["whole"]
    events = results["whole"]
    check_stream_invariants(events)
    check_thinking_signatures(events)
    validate_anthropic_events(events)
    check_golden(case, "expected_events.json", events)


FOLDABLE = [
    case
    for case in sorted(set(cases_with("answer.json")) & set(cases_with("events.json")))
    if load_json(case, "answer.json")["status"] != "failed"
]


@pytest.mark.parametrize("case", FOLDABLE)
def test_folded_stream_equals_the_whole_translation(case: str) -> None:
    """A client gets the same message streaming or not."""
    events = translate_stream([upstream_bytes(load_json(case, "events.json"))], tool_names(case))
    assert events[-1]["type"] == "message_stop"
    whole = Message.model_validate(translate_whole(case)).model_dump(mode="json", exclude_none=True)
    assert fold(events) == whole


@pytest.mark.parametrize("case", sorted(set(cases_with("answer.json")) & set(cases_with("events.json")) - set(FOLDABLE)))
def test_failed_answer_and_failed_stream_report_the_same_error(case: str) -> None:
    """A failed response raises, whole, the error its stream ends with."""
    raised = translate_whole(case)["raises"]
    last = translate_stream([upstream_bytes(load_json(case, "events.json"))], tool_names(case))[-1]
    assert last == {"type": "error", "error": {"type": raised["type"], "message": raised["message"]}}


def test_the_brief_cases_are_all_present() -> None:
    """The cases the translator was specified by exist as fixtures."""
    expected = {
        "text_only",
        "reasoning_summary_then_function_call",
        "function_call_without_argument_deltas",
        "shortened_tool_name_restored",
        "incomplete_max_output_tokens",
        "refusal",
        "failed_context_length_exceeded",
        "failed_rate_limit_exceeded",
        "error_event_overloaded",
        "stream_cut_before_completed",
        "usage_with_cached_tokens",
        "hosted_web_search_call_skipped",
    }
    assert expected <= set(cases_with("events.json"))


# ---------------------------------------------------------------------------------------------
# Reasoning round trip
# ---------------------------------------------------------------------------------------------


def test_thinking_signature_decodes_to_the_reasoning_item_without_its_id() -> None:
    """The next turn can send the reasoning item back from the thinking block, minus its rs_ id."""
    case = "reasoning_summary_then_function_call"
    item = load_json(case, "answer.json")["output"][0]
    assert item["type"] == "reasoning" and item["id"].startswith("rs_")
    original = {key: value for key, value in item.items() if key != "id"}
    streamed = fold(translate_stream([upstream_bytes(load_json(case, "events.json"))], {}))["content"][0]
    whole = translate_whole(case)["content"][0]
    for block in (streamed, whole):
        assert block["type"] == "thinking"
        assert decode_reasoning_signature(block["signature"]) == original


def test_thinking_text_is_the_summaries_joined_by_a_blank_line() -> None:
    """Two summary parts become one thinking text with "\\n\\n" between them."""
    thinking = translate_whole("reasoning_summary_then_function_call")["content"][0]["thinking"]
    assert thinking == "**Checking the weather**\n\nThe user wants Oslo's weather.\n\n**Choosing a tool**\n\nget_weather fits."


# ---------------------------------------------------------------------------------------------
# Whole answers: edges
# ---------------------------------------------------------------------------------------------


def whole(output: list, **fields: object) -> dict:
    answer = {"id": "resp_1", "object": "response", "status": "completed", "output": output, **fields}
    return responses_to_anthropic_response(answer, requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names={})


def test_unparseable_arguments_are_kept_raw_like_the_chat_translator() -> None:
    """Arguments that are not a JSON object keep their text; empty arguments are {}."""
    calls = [
        {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": '{"a": '},
        {"type": "function_call", "call_id": "call_b", "name": "f", "arguments": ""},
    ]
    content = whole(calls)["content"]
    assert [block["input"] for block in content] == [{"_raw_arguments": '{"a": '}, {}]


def test_whitespace_only_text_gives_no_block() -> None:
    """A part with only whitespace is dropped, whole and streamed (Anthropic rejects it sent back)."""
    message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": " \n", "annotations": []}]}
    assert whole([message])["content"] == []
    stream = ResponsesToAnthropicStream(requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names={})
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": {**message, "content": []}},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": " \n"},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": {"status": "completed", "output": [message]}},
    ]
    out = [produced for event in events for produced in stream.feed(SSEEvent(dumps(event), event["type"]))]
    assert [event["type"] for event in out] == ["message_start", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    "status, reason, stop_reason",
    [("incomplete", "max_output_tokens", "max_tokens"), ("incomplete", "content_filter", "refusal"), ("incomplete", None, "max_tokens")],
)
def test_incomplete_answers_are_never_reported_as_finished(status: str, reason: object, stop_reason: str) -> None:
    """An incomplete response says why it stopped, even with a call item in it."""
    call = {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"}
    assert whole([call], status=status, incomplete_details={"reason": reason})["stop_reason"] == stop_reason


@pytest.mark.parametrize(
    "code, status, error_type",
    [
        ("context_length_exceeded", 400, "invalid_request_error"),
        ("rate_limit_exceeded", 429, "rate_limit_error"),
        ("insufficient_quota", 402, "billing_error"),
        ("server_is_overloaded", 529, "overloaded_error"),
        ("slow_down", 529, "overloaded_error"),
        ("server_error", 500, "api_error"),
        ("invalid_prompt", 500, "api_error"),
    ],
)
def test_failed_answer_raises_the_error_its_code_means(code: str, status: int, error_type: str) -> None:
    """Each Responses error code becomes the status and Anthropic type a client acts on."""
    with pytest.raises(ProxyError) as raised:
        whole([], status="failed", error={"code": code, "message": "It failed."})
    assert (raised.value.status, raised.value.error_type) == (status, error_type)
    if code == "context_length_exceeded":
        assert "prompt is too long" in raised.value.message


def test_unfinished_or_foreign_bodies_are_upstream_failures() -> None:
    """A queued response or a body that is not an object is a 502, not an empty message."""
    for answer in ({"status": "queued", "output": []}, ["not", "an", "object"]):
        with pytest.raises(ProxyError) as raised:
            responses_to_anthropic_response(answer, requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names={})
        assert raised.value.status == 502


# ---------------------------------------------------------------------------------------------
# Stream lifecycle
# ---------------------------------------------------------------------------------------------


def stream_of(case: str) -> tuple[ResponsesToAnthropicStream, list[SSEEvent]]:
    stream = ResponsesToAnthropicStream(requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names=tool_names(case))
    decoder = SSEDecoder()
    return stream, decoder.feed(upstream_bytes(load_json(case, "events.json"))) + decoder.close()


def test_stream_token_counts_are_readable_for_the_access_log() -> None:
    """The translator exposes the Anthropic token counts once the response completed."""
    stream, events = stream_of("usage_with_cached_tokens")
    for event in events:
        stream.feed(event)
    counts = (stream.input_tokens, stream.output_tokens, stream.cache_read_tokens, stream.cache_creation_tokens)
    assert counts == (24000 - 20480 - 1024, 350, 20480, 1024)


def test_stream_ignores_everything_after_it_finished() -> None:
    """After message_stop, more events, EOF and failures produce nothing."""
    stream, events = stream_of("text_only")
    out = [produced for event in events for produced in stream.feed(event)]
    assert out[-1] == {"type": "message_stop"} and stream.finished
    assert stream.feed(events[0]) == [] and stream.close() == [] and stream.fail(UpstreamTimeout("idle")) == []


def test_transport_failure_closes_the_open_block_then_sends_one_error() -> None:
    """fail() mid-block stops the block, then sends the error's Anthropic envelope."""
    stream, events = stream_of("text_only")
    for event in events[:6]:  # created, in_progress, item added, part added, two deltas
        stream.feed(event)
    out = stream.fail(UpstreamTimeout("The upstream sent nothing for 300 seconds."))
    assert out == [
        {"type": "content_block_stop", "index": 0},
        {"type": "error", "error": {"type": "timeout_error", "message": "The upstream sent nothing for 300 seconds."}},
    ]
    assert stream.finished


def test_event_that_is_not_json_fails_the_stream() -> None:
    """Garbage from the upstream becomes one error event, not a crash."""
    stream, events = stream_of("text_only")
    stream.feed(events[0])
    out = stream.feed(SSEEvent("{not json", "response.output_text.delta"))
    assert [event["type"] for event in out] == ["error"] and stream.finished


def test_output_for_an_item_whose_block_ended_is_an_error_not_misplaced_text() -> None:
    """A delta arriving for an item after the next one started ends the stream with an error."""
    stream = ResponsesToAnthropicStream(requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names={})
    message = {"type": "message", "role": "assistant", "status": "in_progress", "content": []}
    call = {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": ""}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hi"},
        {"type": "response.output_item.added", "output_index": 1, "item": call},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": " there"},
    ]
    out = [produced for event in events for produced in stream.feed(SSEEvent(dumps(event), event["type"]))]
    check_stream_invariants(out)
    assert out[-1]["type"] == "error" and "already ended" in out[-1]["error"]["message"]


def test_the_json_type_is_trusted_over_the_sse_event_name() -> None:
    """An event named differently on its `event:` line is dispatched by its JSON type."""
    stream = ResponsesToAnthropicStream(requested_model=REQUESTED_MODEL, message_id=MESSAGE_ID, tool_names={})
    created = {"type": "response.created", "response": {"status": "in_progress", "output": []}}
    assert [event["type"] for event in stream.feed(SSEEvent(dumps(created), "error"))] == ["message_start"]
