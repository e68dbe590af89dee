"""Anthropic hub answers -> OpenAI Responses: whole responses, streams and the thinking envelope.

Golden cases live in tests/fixtures/anthropic_to_responses/<case>/, one directory each:
- context.json: the ResponsesContext fields (sets as lists, namespaced values as [namespace, short]).
- message.json (optional): an Anthropic whole answer; expected.json is its translation.
- events.json (optional): the Anthropic stream as [event name, data] pairs; expected_events.json is
  the Responses events it becomes. When both are present, the folded stream must equal the whole
  answer's translation.

Every translated object is also validated with the official openai SDK types, and every stream is run
through the SDK's own stream accumulator (`ResponseStreamState`), so the SDK accepts what we send.

To write expected files after an intended change, run with SWITCHBOARD_UPDATE_GOLDEN=1 and review
the diff: the golden files are the spec.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from translate.anthropic_to_responses_response import (
    AnthropicToResponsesStream,
    anthropic_to_responses_response,
    encode_responses_event,
    item_id,
    responses_error,
)
from translate.responses_context import decode_thinking_envelope, encode_thinking_envelope
from translate.errors import (
    InvalidRequest,
    ProxyError,
    UpstreamTimeout,
    error_from_upstream,
)
from translate.responses_context import ResponsesContext
from translate.sse import SSEDecoder, SSEEvent, dumps

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic_to_responses"
UPDATE_GOLDEN = os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1"
STREAM_EVENT = TypeAdapter(ResponseStreamEvent)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
# ResponseError.code in the SDK is a closed Literal without Codex's codes (RESPONSES.md 6: "treat codes
# as open strings"); the SDK itself parses streams without validation, so only our checks must bend.
SDK_ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")


def all_cases(filename: str) -> list[str]:
    return sorted(path.parent.name for path in FIXTURES.glob(f"*/{filename}"))


def load_json(case: str, filename: str) -> object:
    return json.loads((FIXTURES / case / filename).read_text(encoding="utf-8"))


def load_context(case: str) -> ResponsesContext:
    fields = load_json(case, "context.json")
    return ResponsesContext(
        requested_model=fields["requested_model"],
        response_id=fields["response_id"],
        created_at=fields["created_at"],
        custom_tools=frozenset(fields.get("custom_tools", ())),
        namespaced={name: tuple(pair) for name, pair in fields.get("namespaced", {}).items()},
        tool_search=frozenset(fields.get("tool_search", ())),
        echo=fields.get("echo", {}),
    )


def context_for(**fields: object) -> ResponsesContext:
    return ResponsesContext(
        requested_model="gpt-5.5", response_id="resp_0123456789abcdef", created_at=1765100000, **fields
    )


def check_golden(case: str, filename: str, actual: object) -> None:
    path = FIXTURES / case / filename
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))


def sdk_response(response: dict) -> Response:
    """Validate a response object with the SDK's model (error codes relaxed, see SDK_ERROR_CODES)."""
    response = copy.deepcopy(response)
    if response.get("error") and response["error"]["code"] not in SDK_ERROR_CODES:
        response["error"]["code"] = "server_error"
    return Response.model_validate(response)


def sdk_event(event: dict):
    event = copy.deepcopy(event)
    error = event["response"].get("error") if "response" in event else None
    if error and error["code"] not in SDK_ERROR_CODES:
        error["code"] = "server_error"
    return STREAM_EVENT.validate_python(event)


# ---------------------------------------------------------------------------------------------
# Stream harness
# ---------------------------------------------------------------------------------------------


def sse_bytes(pairs: list) -> bytes:
    return b"".join(f"event: {name}\ndata: {dumps(data)}\n\n".encode() for name, data in pairs)


def translate_pairs(pairs: list, context: ResponsesContext) -> list[dict]:
    """Feed every event as given, then close as at EOF."""
    stream = AnthropicToResponsesStream(context)
    events: list[dict] = []
    for name, data in pairs:
        events += stream.feed(SSEEvent(data=dumps(data), event=name))
    events += stream.close()
    assert stream.finished
    assert stream.feed(SSEEvent(data='{"type":"ping"}', event="ping")) == [] and stream.close() == []
    return events


def translate_pieces(pieces: list[bytes], context: ResponsesContext) -> list[dict]:
    decoder = SSEDecoder()
    stream = AnthropicToResponsesStream(context)
    events: list[dict] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            events += stream.feed(event)
    for event in decoder.close():
        events += stream.feed(event)
    return events + stream.close()


def check_stream_invariants(events: list[dict]) -> None:
    """RESPONSES.md 4: order, sequence numbers, added/done pairs, one terminal event."""
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert [event["type"] for event in events[:2]] == ["response.created", "response.in_progress"]
    for event in events[:2]:
        assert event["response"]["status"] == "in_progress" and event["response"]["output"] == []
    assert events[-1]["type"] in TERMINAL
    assert all(event["type"] not in TERMINAL for event in events[:-1])
    open_index: int | None = None
    done_items: list[dict] = []
    for event in events[2:-1]:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert open_index is None, "items must not interleave"
            assert event["output_index"] == len(done_items), "output_index follows the order of added"
            open_index = event["output_index"]
            item = event["item"]
            assert len(item["id"]) <= 64 and item["id"].split("_")[0] in ("msg", "rs", "fc", "ctc", "tsc")
            if item["type"] == "message":
                assert item["content"] == []
            if item["type"] == "function_call":
                assert item["arguments"] == ""
            if item["type"] == "reasoning":
                assert item["summary"] == []
        elif kind == "response.output_item.done":
            assert event["output_index"] == open_index
            done_items.append(event["item"])
            open_index = None
        elif kind != "response.in_progress":
            assert event["output_index"] == open_index, f"{kind} outside its item"
    assert open_index is None or events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["output"] == done_items


def check_with_sdk(events: list[dict]) -> None:
    """Every event parses as an SDK stream event, and the SDK's accumulator accepts the sequence."""
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        parsed = sdk_event(event)
        state.handle_event(parsed)
    sdk_response(events[-1]["response"])


def fold(events: list[dict]) -> dict:
    """Rebuild the final response from the deltas alone, as a client accumulating the stream would."""
    response = copy.deepcopy(events[0]["response"])
    items: list[dict] = []
    for event in events:
        kind = event["type"]
        if kind == "response.output_item.added":
            items.append(copy.deepcopy(event["item"]))
            continue
        item = items[event["output_index"]] if "output_index" in event else None
        if kind == "response.content_part.added":
            item["content"].append(dict(event["part"]))
        elif kind == "response.output_text.delta":
            item["content"][event["content_index"]]["text"] += event["delta"]
        elif kind == "response.reasoning_summary_part.added":
            item["summary"].append(dict(event["part"]))
        elif kind == "response.reasoning_summary_text.delta":
            item["summary"][event["summary_index"]]["text"] += event["delta"]
        elif kind == "response.function_call_arguments.delta":
            item["arguments"] += event["delta"]
        elif kind == "response.custom_tool_call_input.delta":
            item["input"] += event["delta"]
        elif kind == "response.output_item.done":
            # Only what deltas cannot carry comes from the done item: statuses, the envelope and
            # bridged tool_search arguments.
            for key in ("status", "encrypted_content"):
                if key in event["item"]:
                    item[key] = event["item"][key]
            if item["type"] == "tool_search_call":
                item["arguments"] = event["item"]["arguments"]
            assert item == event["item"], "the done item must equal its accumulated deltas"
        elif kind in TERMINAL:
            response.update({key: value for key, value in event["response"].items() if key != "output"})
            response["output"] = items
    return response


def normalize_arguments(response: dict) -> dict:
    """Streamed arguments are Anthropic's fragments as sent, whole ones compact JSON: compare meanings."""
    response = copy.deepcopy(response)
    for item in response["output"]:
        if item["type"] == "function_call":
            item["arguments"] = json.loads(item["arguments"])
    return response


# ---------------------------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", all_cases("message.json"))
def test_whole_answer_matches_golden_and_the_sdk_accepts_it(case: str) -> None:
    """A whole Anthropic answer translates to the golden Responses object, which the SDK validates."""
    actual = anthropic_to_responses_response(load_json(case, "message.json"), load_context(case))
    check_golden(case, "expected.json", actual)
    sdk_response(actual)
    assert json.loads(dumps(actual)) == actual


@pytest.mark.parametrize("case", all_cases("events.json"))
def test_stream_matches_golden_and_the_sdk_accepts_every_event(case: str) -> None:
    """A stream translates to the golden events, keeps the invariants and passes the SDK's accumulator."""
    events = translate_pairs(load_json(case, "events.json"), load_context(case))
    check_golden(case, "expected_events.json", events)
    check_stream_invariants(events)
    check_with_sdk(events)


@pytest.mark.parametrize("case", all_cases("events.json"))
def test_stream_gives_the_same_events_whole_by_line_and_byte_by_byte(case: str) -> None:
    """Decoding the stream whole, line by line or byte by byte gives the same events."""
    raw = sse_bytes(load_json(case, "events.json"))
    context = load_context(case)
    expected = translate_pairs(load_json(case, "events.json"), context)
    for pieces in ([raw], raw.splitlines(keepends=True), [raw[i : i + 1] for i in range(len(raw))]):
        assert translate_pieces(pieces, context) == expected


@pytest.mark.parametrize("case", sorted(set(all_cases("events.json")) & set(all_cases("message.json"))))
def test_folded_stream_equals_the_whole_answer(case: str) -> None:
    """Folding the stream's deltas, and its final response, both equal translating the whole message."""
    context = load_context(case)
    events = translate_pairs(load_json(case, "events.json"), context)
    whole = anthropic_to_responses_response(load_json(case, "message.json"), context)
    assert normalize_arguments(fold(events)) == normalize_arguments(whole)
    assert normalize_arguments(events[-1]["response"]) == normalize_arguments(whole)


# ---------------------------------------------------------------------------------------------
# Thinking envelope and ids
# ---------------------------------------------------------------------------------------------


def test_thinking_envelope_round_trips_both_block_kinds() -> None:
    """Thinking and redacted_thinking blocks come back verbatim from their envelope."""
    thinking = {"type": "thinking", "thinking": "Zwei Schritte… 🤔\n", "signature": "EqQBCkgIBx+/=="}
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
    for block in (thinking, redacted):
        envelope = encode_thinking_envelope(block)
        assert envelope.startswith("swb1.") and "=" not in envelope and "+" not in envelope
        assert decode_thinking_envelope(envelope) == block


def test_foreign_or_damaged_envelopes_decode_to_none() -> None:
    """Anything that is not exactly one of our envelopes is foreign."""
    good = encode_thinking_envelope({"type": "thinking", "thinking": "a", "signature": "b"})
    for text in (None, 42, "", "gAAAAABoOpenAIblob", "swb1.", "swb1.!!!", good[:-3] + "A", "swb1.e30",
                 "swb1." + "W10", "sbth1." + good[5:]):
        assert decode_thinking_envelope(text) is None, text


def test_item_ids_are_deterministic_prefixed_and_at_most_64_characters() -> None:
    """Ids depend only on the response id and the output index, and fit OpenAI's 64-character limit."""
    long_context = ResponsesContext(requested_model="m", response_id="resp_" + "f" * 120, created_at=0)
    for prefix in ("msg_", "rs_", "fc_", "ctc_", "tsc_"):
        for index in (0, 7, 12345):
            value = item_id(prefix, long_context, index)
            assert value.startswith(prefix) and value.endswith(f"_{index}") and len(value) <= 64
    assert item_id("fc_", context_for(), 3) == "fc_0123456789abcdef_3"


# ---------------------------------------------------------------------------------------------
# Whole answers: details
# ---------------------------------------------------------------------------------------------


def test_echoed_parameters_cannot_replace_the_response_fields() -> None:
    """context.echo adds request parameters; id, status, output and usage stay ours."""
    context = context_for(echo={"id": "bad", "status": "bad", "output": "bad", "temperature": 0.2, "tools": []})
    response = anthropic_to_responses_response({"content": [], "stop_reason": "end_turn"}, context)
    assert response["id"] == "resp_0123456789abcdef" and response["status"] == "completed"
    assert response["output"] == [] and response["temperature"] == 0.2
    assert response["parallel_tool_calls"] is True and response["tool_choice"] == "auto"
    sdk_response(response)


def test_reasoning_tokens_are_reported_when_the_upstream_counts_them() -> None:
    """output_tokens_details.thinking_tokens becomes reasoning_tokens; otherwise it is 0."""
    usage = {"input_tokens": 1, "output_tokens": 9, "output_tokens_details": {"thinking_tokens": 7}}
    response = anthropic_to_responses_response({"content": [], "stop_reason": "end_turn", "usage": usage}, context_for())
    assert response["usage"]["output_tokens_details"] == {"reasoning_tokens": 7}
    assert response["usage"]["total_tokens"] == 10


def test_custom_tool_input_that_is_not_a_string_is_sent_as_json() -> None:
    """A bridged custom call whose `input` argument is missing or not text still gives a string."""
    context = context_for(custom_tools=frozenset({"apply_patch"}))
    blocks = [
        {"type": "tool_use", "id": "toolu_1", "name": "apply_patch", "input": {}},
        {"type": "tool_use", "id": "toolu_2", "name": "apply_patch", "input": {"input": ["x"]}},
    ]
    response = anthropic_to_responses_response({"content": blocks, "stop_reason": "tool_use"}, context)
    assert [item["input"] for item in response["output"]] == ["", '["x"]']
    sdk_response(response)


def test_server_tool_blocks_are_dropped_and_ids_stay_contiguous() -> None:
    """Blocks without a Responses form leave no gap in output indexes."""
    blocks = [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "Found it."},
    ]
    response = anthropic_to_responses_response({"content": blocks, "stop_reason": "end_turn"}, context_for())
    assert [item["id"] for item in response["output"]] == ["msg_0123456789abcdef_0"]


# ---------------------------------------------------------------------------------------------
# Streams: details
# ---------------------------------------------------------------------------------------------


def start_pairs() -> list:
    return [["message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
             "content": [], "stop_reason": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}]]


def feed_all(stream: AnthropicToResponsesStream, pairs: list) -> list[dict]:
    events: list[dict] = []
    for name, data in pairs:
        events += stream.feed(SSEEvent(data=dumps(data), event=name))
    return events


def test_eof_after_the_stop_reason_still_completes() -> None:
    """Only message_stop was lost: the response completes, closing the open block first."""
    pairs = start_pairs() + [
        ["content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}],
        ["content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}],
        ["message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}],
    ]
    events = translate_pairs(pairs, context_for())
    check_stream_invariants(events)
    check_with_sdk(events)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hi"


def test_eof_before_the_stop_reason_fails_the_response() -> None:
    """A stream cut short ends with response.failed, never without a terminal event."""
    pairs = start_pairs() + [
        ["content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}],
    ]
    events = translate_pairs(pairs, context_for())
    check_stream_invariants(events)
    check_with_sdk(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"


def test_failure_before_message_start_still_sends_created_first() -> None:
    """The SDK raises unless response.created comes first, even for a stream that fails at once."""
    stream = AnthropicToResponsesStream(context_for())
    events = stream.fail(UpstreamTimeout("The upstream was silent for 300 seconds."))
    assert [event["type"] for event in events] == ["response.created", "response.in_progress", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "timeout_error", "message": "The upstream was silent for 300 seconds."}
    assert stream.finished and stream.fail(UpstreamTimeout("again")) == [] and stream.keepalive() == []
    check_with_sdk(events)


def test_empty_body_and_bad_json_fail_the_response() -> None:
    """EOF with no events, or an event that is not JSON, gives created, in_progress, failed."""
    assert [event["type"] for event in translate_pairs([], context_for())][-1] == "response.failed"
    stream = AnthropicToResponsesStream(context_for())
    events = stream.feed(SSEEvent(data="{not json", event="message_start"))
    assert events[-1]["type"] == "response.failed" and stream.finished


def test_events_out_of_order_fail_the_response() -> None:
    """A content block before message_start is a broken upstream, reported as response.failed."""
    stream = AnthropicToResponsesStream(context_for())
    events = stream.feed(SSEEvent(data=dumps({"type": "content_block_stop", "index": 0}), event="content_block_stop"))
    assert events[-1]["type"] == "response.failed"
    assert "content_block_stop" in events[-1]["response"]["error"]["message"]


def test_pings_and_unknown_events_are_ignored() -> None:
    """ping and event types newer than this code produce nothing."""
    stream = AnthropicToResponsesStream(context_for())
    feed_all(stream, start_pairs())
    assert feed_all(stream, [["ping", {"type": "ping"}], ["future", {"type": "future_event"}]]) == []


def test_tool_call_without_deltas_sends_its_start_input_or_braces() -> None:
    """Clients json.loads() the arguments, so a call without input deltas sends "{}" or its start input."""
    stream = AnthropicToResponsesStream(context_for())
    events = feed_all(stream, start_pairs() + [
        ["content_block_start", {"type": "content_block_start", "index": 0,
          "content_block": {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}}],
        ["content_block_stop", {"type": "content_block_stop", "index": 0}],
        ["content_block_start", {"type": "content_block_start", "index": 1,
          "content_block": {"type": "tool_use", "id": "toolu_2", "name": "echo", "input": {"a": 1}}}],
        ["content_block_stop", {"type": "content_block_stop", "index": 1}],
        ["message_stop", {"type": "message_stop"}],
    ])
    done = [event for event in events if event["type"] == "response.function_call_arguments.done"]
    assert [event["arguments"] for event in done] == ["{}", '{"a":1}']
    assert [event["name"] for event in done] == ["now", "echo"]
    check_stream_invariants(events)
    check_with_sdk(events)


def test_thinking_without_text_has_an_empty_summary() -> None:
    """Omitted thinking (signature only) opens no summary part; the envelope still carries the signature."""
    stream = AnthropicToResponsesStream(context_for())
    events = feed_all(stream, start_pairs() + [
        ["content_block_start", {"type": "content_block_start", "index": 0,
          "content_block": {"type": "thinking", "thinking": "", "signature": ""}}],
        ["content_block_delta", {"type": "content_block_delta", "index": 0,
          "delta": {"type": "signature_delta", "signature": "sig=="}}],
        ["content_block_stop", {"type": "content_block_stop", "index": 0}],
        ["message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}],
        ["message_stop", {"type": "message_stop"}],
    ])
    assert "response.reasoning_summary_part.added" not in [event["type"] for event in events]
    item = events[-1]["response"]["output"][0]
    assert item["summary"] == []
    assert decode_thinking_envelope(item["encrypted_content"]) == {"type": "thinking", "thinking": "", "signature": "sig=="}
    check_with_sdk(events)


def test_truncated_custom_tool_input_goes_out_empty() -> None:
    """A bridged call cut off by max_tokens cannot be parsed; it is sent with empty input, response incomplete."""
    stream = AnthropicToResponsesStream(context_for(custom_tools=frozenset({"apply_patch"})))
    events = feed_all(stream, start_pairs() + [
        ["content_block_start", {"type": "content_block_start", "index": 0,
          "content_block": {"type": "tool_use", "id": "toolu_1", "name": "apply_patch", "input": {}}}],
        ["content_block_delta", {"type": "content_block_delta", "index": 0,
          "delta": {"type": "input_json_delta", "partial_json": '{"input": "*** Begin'}}],
        ["content_block_stop", {"type": "content_block_stop", "index": 0}],
        ["message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 5}}],
        ["message_stop", {"type": "message_stop"}],
    ])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["output"][0]["input"] == ""
    check_stream_invariants(events)
    check_with_sdk(events)


def test_keepalive_resends_in_progress_with_the_next_sequence_number() -> None:
    """Codex's idle timer ignores SSE comments, so a quiet upstream is covered by response.in_progress."""
    stream = AnthropicToResponsesStream(context_for())
    assert stream.keepalive() == []
    started = feed_all(stream, start_pairs())
    beat = stream.keepalive()
    assert [event["type"] for event in beat] == ["response.in_progress"]
    assert beat[0]["sequence_number"] == started[-1]["sequence_number"] + 1


def test_token_counters_follow_the_anthropic_meaning() -> None:
    """The counters exclude the cache from input_tokens, like AnthropicToChatStream's."""
    stream = AnthropicToResponsesStream(context_for())
    translate = load_json("usage_with_cache_tokens", "events.json")
    feed_all(stream, translate)
    assert (stream.input_tokens, stream.output_tokens, stream.cache_read_tokens, stream.cache_creation_tokens) == (
        5, 30, 12000, 200
    )


def test_encoded_events_carry_the_type_as_event_name() -> None:
    """Each event is written as `event: <type>` plus compact JSON data."""
    stream = AnthropicToResponsesStream(context_for())
    raw = encode_responses_event(feed_all(stream, start_pairs())[0])
    assert raw.startswith(b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,")
    assert raw.endswith(b"\n\n")


# ---------------------------------------------------------------------------------------------
# Error codes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (ProxyError("Overloaded", error_type="overloaded_error"), "server_is_overloaded", "Overloaded"),
        (
            ProxyError("Rate limited.", status=429, retry_after="20"),
            "rate_limit_exceeded",
            "Rate limited. Please try again in 20s.",
        ),
        (ProxyError("Rate limited.", status=429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT"), "rate_limit_exceeded", "Rate limited."),
        (ProxyError("Rate limited.", status=429), "rate_limit_exceeded", "Rate limited."),
        (InvalidRequest("prompt is too long: 210000 tokens > 200000 maximum"), "context_length_exceeded", None),
        (
            error_from_upstream(400, b'{"error":{"message":"maximum context length exceeded"}}', provider="vLLM"),
            "context_length_exceeded",
            None,
        ),
        (ProxyError("No credit.", status=402), "insufficient_quota", "No credit."),
        (ProxyError("Boom.", error_type="api_error"), "server_error", "Boom."),
        (InvalidRequest("Bad image."), "invalid_request_error", "Bad image."),
    ],
)
def test_failed_responses_carry_the_codes_codex_acts_on(error: ProxyError, code: str, message: str | None) -> None:
    """Overload, rate limits with their delay, context length and quota get Codex's codes."""
    body = responses_error(error)
    assert body["code"] == code
    assert body["message"] == (message if message is not None else error.message)


def test_upstream_error_event_mid_stream_keeps_finished_items() -> None:
    """An Anthropic error event fails the response; items already done stay in its output."""
    stream = AnthropicToResponsesStream(context_for())
    events = feed_all(stream, start_pairs() + [
        ["content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}],
        ["content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Done."}}],
        ["content_block_stop", {"type": "content_block_stop", "index": 0}],
        ["error", {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 1 > 0"}}],
    ])
    assert stream.finished
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"]["code"] == "context_length_exceeded"
    assert [item["type"] for item in failed["response"]["output"]] == ["message"]
    check_stream_invariants(events)
    check_with_sdk(events)
