"""translate/dialects.py: the dialect descriptors, the PAIRS table, and hops composed through the hub.

Sections:
- Dialects: front paths, error statuses and envelopes (read back with the official SDK types),
  stream errors, heartbeats, usage readers (translate/usage.py).
- PAIRS: every pair of dialects is declared, and its hops lead from the front to the upstream.
- One hop is the direct translator: the golden cases of both directions, run through open_exchange.
- Two hops, chat -> anthropic -> chat: what survives and what is lost. Requests and answers are golden
  cases in fixtures/composed/, each named after what it shows, so a loss that changes breaks a test;
  streams reuse the chat streams of fixtures/anthropic_to_chat/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from anthropic.types import ErrorResponse
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import ErrorObject
from openai.types.chat import ChatCompletionChunk

from translate.anthropic_to_chat_request import ChatTarget
from translate.anthropic_to_chat_response import AnthropicToChatStream
from translate.chat_to_anthropic_request import AnthropicTarget
from translate.chat_to_anthropic_response import ChatToAnthropicStream
from translate.dialects import (
    ANTHROPIC, CHAT, DIALECTS, HUB, PAIRS, ResponseIds, anthropic_to_chat, chat_to_anthropic, front_for_path,
    hops_between, open_exchange,
)
from translate.errors import (
    AuthenticationFailed, InvalidRequest, NotFound, Overloaded, ProxyError, RequestTooLarge, UpstreamTimeout,
    UpstreamUnavailable,
)
from translate.sse import CHAT_DONE, SSEDecoder, SSEEvent
from translate.usage import Usage, UsageReader, read_anthropic_usage, read_chat_usage

FIXTURES = Path(__file__).parent / "fixtures"
A2C, C2A = FIXTURES / "anthropic_to_chat", FIXTURES / "chat_to_anthropic"
A2C_IDS = ResponseIds(requested_model="claude-opus-4-8", token="01TestMessage", created=0)  # as in its golden files
C2A_IDS = ResponseIds(requested_model="claude-sonnet-4-5", token="test", created=1754000000)
IDS = ResponseIds(requested_model="my-alias", token="composed", created=1754000000)
TARGET = ChatTarget(model="gpt-4o-mini", reasoning=False)
THROUGH_THE_HUB = (chat_to_anthropic, anthropic_to_chat)
HI = {"role": "user", "content": "Hi"}


def cases(folder: Path, marker: str) -> list[str]:
    return sorted(path.parent.name for path in folder.glob(f"*/{marker}"))


def load(folder: Path, case: str, name: str, default: object = None) -> object:
    path = folder / case / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def decode(raw: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.close()


def three_ways(raw: bytes) -> dict[str, list[bytes]]:
    return {"whole": [raw], "lines": raw.splitlines(keepends=True), "bytes": [raw[i : i + 1] for i in range(len(raw))]}


def run(translator, pieces: list[bytes]) -> list:
    """Decode the pieces as network reads, feed every event, then close as at EOF."""
    decoder, out = SSEDecoder(), []
    for piece in pieces:
        for event in decoder.feed(piece):
            out += translator.feed(event)
    for event in decoder.close():
        out += translator.feed(event)
    return out + translator.close()


def compose(body: dict, target: ChatTarget = TARGET):
    return open_exchange(THROUGH_THE_HUB, body, target, IDS)


# =============================================================================================
# Dialects
# =============================================================================================


@pytest.mark.parametrize(
    "path, name",
    [
        ("/v1/messages", "anthropic"), ("/v1/messages/count_tokens", "anthropic"), ("/v1/chat/completions", "chat"),
        ("/v1/chat/anything", "chat"), ("/v1/models", "chat"), ("/v1/chatty", "anthropic"), ("/health", "anthropic"),
        ("/v2/chat/completions", "anthropic"), ("/", "anthropic"),
    ],
)
def test_a_path_is_answered_in_its_front_dialect_and_unknown_paths_in_anthropic(path, name):
    """Prefixes match whole path segments ("/v1/chatty" is not chat); anything unknown gets Anthropic's envelope."""
    assert front_for_path(path) is DIALECTS[name]


def test_each_dialect_is_registered_under_its_name_and_serves_its_own_endpoint():
    """DIALECTS maps each name to its descriptor, whose endpoint routes back to it."""
    assert set(DIALECTS) == {"anthropic", "chat", "responses"} and HUB in DIALECTS
    for name, dialect in DIALECTS.items():
        assert dialect.name == name and front_for_path(dialect.endpoint) is dialect


# error, Anthropic status, chat status (OpenAI clients know no 529), chat type, chat code
ERRORS = [
    (Overloaded("Busy."), 529, 503, "server_error", "overloaded"),
    (InvalidRequest("Bad.", param="messages"), 400, 400, "invalid_request_error", None),
    (AuthenticationFailed("Who?"), 401, 401, "authentication_error", "invalid_api_key"),
    (NotFound("No model."), 404, 404, "not_found_error", "model_not_found"),
    (RequestTooLarge("Big."), 413, 413, "invalid_request_error", "request_too_large"),
    (ProxyError("Slow down.", status=429), 429, 429, "rate_limit_error", "rate_limit_exceeded"),
    (UpstreamUnavailable("Gone."), 502, 502, "server_error", None),
    (UpstreamTimeout("Silent."), 504, 504, "timeout_error", "timeout"),
]


@pytest.mark.parametrize("error, anthropic_status, chat_status, chat_type, chat_code", ERRORS)
def test_errors_render_with_each_dialects_status_and_an_envelope_its_sdk_parses(error, anthropic_status, chat_status, chat_type, chat_code):
    """Anthropic keeps the status and error type; chat maps 529 to 503 and gives OpenAI's type, code and param."""
    status, body = ANTHROPIC.render_error(error)
    assert status == anthropic_status
    if error.error_type != "request_too_large":  # a real Anthropic type the SDK's union does not list
        parsed = ErrorResponse.model_validate_json(body)
        assert (parsed.error.type, parsed.error.message) == (error.error_type, error.message)
    status, body = CHAT.render_error(error)
    assert status == chat_status
    parsed = ErrorObject.model_validate(json.loads(body)["error"])
    assert (parsed.message, parsed.type, parsed.code, parsed.param) == (error.message, chat_type, chat_code, error.param)


def test_stream_errors_are_an_error_event_in_anthropic_and_a_data_only_error_chunk_in_chat():
    """Anthropic names the event "error"; chat sends {"error": ...} as plain data, and no [DONE]."""
    error = Overloaded("Busy.")
    assert decode(ANTHROPIC.stream_error(error)) == [SSEEvent(json.dumps(ANTHROPIC.error_body(error), separators=(",", ":")), "error")]
    [event] = decode(CHAT.stream_error(error))
    assert event.event == "message" and json.loads(event.data) == {"error": CHAT.error_body(error)["error"]}
    assert CHAT.encode("[DONE]") == CHAT_DONE and b"[DONE]" not in CHAT.stream_error(error)


def test_a_chat_heartbeat_is_a_comment_that_yields_no_event():
    """Between two chunks, the chat heartbeat changes nothing a client decodes."""
    chunk = CHAT.encode({"id": "chatcmpl-1", "choices": []})
    assert CHAT.heartbeat.startswith(b":") and decode(CHAT.heartbeat) == []
    assert decode(chunk + CHAT.heartbeat + CHAT.encode("[DONE]")) == decode(chunk + CHAT.encode("[DONE]"))


def test_an_anthropic_heartbeat_is_a_ping_event_a_stream_reader_passes_over():
    """The heartbeat decodes to one ping event, which a reader of an Anthropic stream ignores mid-message."""
    [ping] = decode(ANTHROPIC.heartbeat)
    assert (ping.event, json.loads(ping.data)) == ("ping", {"type": "ping"})
    reader = AnthropicToChatStream(requested_model="m", completion_id="c", created=0, include_usage=False)
    reader.feed(SSEEvent(json.dumps({"type": "message_start", "message": {"usage": {}}}), "message_start"))
    assert reader.feed(ping) == [] and not reader.finished


def test_anthropic_usage_counts_the_whole_prompt_and_message_deltas_replace_earlier_counts():
    """input = plain + cache reads + cache writes; message_delta usage is cumulative, not added."""
    usage = Usage()
    read_anthropic_usage(usage, {"usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 7}})
    assert usage == Usage(input_tokens=115, cached_tokens=100, output_tokens=7, cache_write_tokens=5)
    usage = Usage()
    read_anthropic_usage(usage, {"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "output_tokens": 1}}})
    read_anthropic_usage(usage, {"type": "message_delta", "usage": {"output_tokens": 5}})
    read_anthropic_usage(usage, {"type": "message_delta", "usage": {"output_tokens": 30}})
    assert usage == Usage(input_tokens=110, cached_tokens=100, output_tokens=30)
    read_anthropic_usage(usage, {"type": "message_delta", "usage": {"input_tokens": 12, "output_tokens": 31}})
    assert usage == Usage(input_tokens=12, cached_tokens=100, output_tokens=31)


def test_chat_usage_is_read_from_an_answer_and_from_the_usage_chunk_with_cached_tokens():
    """prompt_tokens already includes cached tokens; chunks with "usage": null change nothing."""
    counts = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "prompt_tokens_details": {"cached_tokens": 60}}
    answer, chunk_usage = Usage(), Usage()
    read_chat_usage(answer, {"object": "chat.completion", "choices": [], "usage": counts})
    read_chat_usage(chunk_usage, {"choices": [], "usage": counts})
    read_chat_usage(chunk_usage, {"choices": [{"delta": {"content": "x"}}], "usage": None})
    assert answer == chunk_usage == Usage(input_tokens=100, cached_tokens=60, output_tokens=20)


@pytest.mark.parametrize(
    "stream, read, expected",
    [
        (C2A / "stream_text_with_usage/upstream.sse", read_anthropic_usage, Usage(2460, 2048, 15)),
        (A2C / "stream_text_openai/upstream.sse", read_chat_usage, Usage(2460, 2048, 57)),
    ],
)
def test_usage_read_on_the_side_of_passing_bytes_does_not_depend_on_read_boundaries(stream, read, expected):
    """UsageReader gives the same counts whether the stream comes whole, by line or byte by byte."""
    for pieces in three_ways(stream.read_bytes()).values():
        reader = UsageReader(read)
        for piece in pieces:
            reader.feed(piece)
        assert reader.usage == expected
    whole = UsageReader(read_chat_usage)
    whole.read_body(b"<html>502 Bad Gateway</html>")
    whole.read_body(json.dumps({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode())
    assert whole.usage == Usage(3, 0, 4)


# =============================================================================================
# PAIRS
# =============================================================================================


def test_every_pair_of_dialects_is_declared_and_the_same_dialect_is_passthrough():
    """PAIRS has exactly one entry per (front, upstream dialect some provider speaks); same on both sides
    means no hops. OpenAI and Azure speak Responses too, for the models that need it (`dialect_for`)."""
    from upstreams.registry import provider_specs

    upstream_dialects = {spec.dialect for spec in provider_specs()} | {"responses"}
    assert set(PAIRS) == {(front, upstream) for front in DIALECTS for upstream in upstream_dialects}
    for front, upstream in PAIRS:
        assert (hops_between(front, upstream) == ()) == (front == upstream)


def test_the_hops_of_a_pair_lead_from_the_front_to_the_upstream_through_the_hub():
    """Hop names say their direction; they chain front -> hub -> upstream with no gap."""
    for (front, upstream), hops in PAIRS.items():
        stops = [front] + [hop.__name__.split("_to_")[1] for hop in hops]
        assert [hop.__name__ for hop in hops] == [f"{a}_to_{b}" for a, b in zip(stops, stops[1:])]
        assert stops[-1] == upstream and all(stop == HUB for stop in stops[1:-1])


@pytest.mark.parametrize("front, upstream", [("smoke", "chat"), ("anthropic", "smoke")])
def test_an_unknown_dialect_is_a_key_error_naming_both_sides(front, upstream):
    """hops_between fails loudly, naming the front and the upstream dialect."""
    with pytest.raises(KeyError, match=f"{front} dialect to the {upstream} dialect"):
        hops_between(front, upstream)


# =============================================================================================
# One hop is exactly the direct translator (the golden cases, through open_exchange)
# =============================================================================================


def anthropic_request_for(options: dict) -> tuple[dict, ChatTarget]:
    """An Anthropic request whose translation carries the response options of a golden case."""
    body = {"model": "claude-opus-4-8", "max_tokens": 100, "messages": [HI], "stop_sequences": options.get("stop_sequences", [])}
    return body, ChatTarget(model="gpt-4o", reasoning=False, buffer_tool_calls=options.get("buffer_tool_calls", False))


def chat_request_for(options: dict) -> dict:
    """A chat request whose translation carries the response options of a golden case."""
    formats = {"json_object": {"type": "json_object"}, "json_schema": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {}}}}
    body = {"model": "gpt-4o", "messages": [HI], "stream_options": {"include_usage": options.get("include_usage", False)},
            "tools": [{"type": "function", "function": {"name": name}} for name in options.get("tool_names", {}).values()]}
    if options.get("json_mode"):
        body["response_format"] = formats[options["json_mode"]]
    return body


def answer_or_stream(exchange, folder: Path, case: str) -> object:
    """What the exchange brings back for a golden case: the events of its upstream.sse, else its answer."""
    if (folder / case / "upstream.sse").exists():
        return run(exchange.stream(), [(folder / case / "upstream.sse").read_bytes()])
    return exchange.response(load(folder, case, "response.json"))


# Their shortened names are hand-written in options.json, not what a request would produce.
A2C_ANSWERS = [case for case in cases(A2C, "response.json") + cases(A2C, "upstream.sse") if "tool_names" not in load(A2C, case, "options.json", {})]


@pytest.mark.parametrize("case", cases(A2C, "input.json"))
def test_the_anthropic_to_chat_hop_sends_the_golden_request(case):
    """open_exchange((anthropic_to_chat,), ...) gives exactly the recorded chat body and dropped tools."""
    target = ChatTarget(**load(A2C, case, "target.json", {"model": "gpt-4o", "reasoning": False}))
    exchange = open_exchange((anthropic_to_chat,), load(A2C, case, "input.json"), target, A2C_IDS)
    expected = load(A2C, case, "expected.json")
    assert (exchange.body, list(exchange.dropped_tools)) == (expected["body"], expected["dropped_tools"])


@pytest.mark.parametrize("case", A2C_ANSWERS)
def test_the_anthropic_to_chat_hop_brings_back_the_golden_answer_or_stream(case):
    """The hop's response() and stream() give exactly the recorded Anthropic message or events."""
    exchange = open_exchange((anthropic_to_chat,), *anthropic_request_for(load(A2C, case, "options.json", {})), A2C_IDS)
    assert answer_or_stream(exchange, A2C, case) == load(A2C, case, "expected.json")


@pytest.mark.parametrize("case", cases(C2A, "input.json"))
def test_the_chat_to_anthropic_hop_sends_the_golden_request(case):
    """open_exchange((chat_to_anthropic,), ...) gives exactly the recorded Anthropic body."""
    target = AnthropicTarget(**load(C2A, case, "target.json", {"model": "claude-sonnet-4-5"}))
    exchange = open_exchange((chat_to_anthropic,), load(C2A, case, "input.json"), target, C2A_IDS)
    assert (exchange.body, exchange.dropped_tools) == (load(C2A, case, "expected.json")["body"], ())


@pytest.mark.parametrize("case", cases(C2A, "response.json") + cases(C2A, "upstream.sse"))
def test_the_chat_to_anthropic_hop_brings_back_the_golden_answer_or_stream(case):
    """The hop's response() and stream() give exactly the recorded chat completion or chunks."""
    body = chat_request_for(load(C2A, case, "options.json", {}))
    exchange = open_exchange((chat_to_anthropic,), body, AnthropicTarget(model="claude-sonnet-4-5"), C2A_IDS)
    assert answer_or_stream(exchange, C2A, case) == load(C2A, case, "expected.json")


# =============================================================================================
# Two hops: a chat client on a chat upstream, through the hub
# =============================================================================================

# Golden cases in fixtures/composed/<case>/, named after what the case shows (most name a loss):
# - request_*: input.json (the client's chat body) + target.json (ChatTarget, optional) -> expected.json
#   (the upstream's chat body);
# - response_*: request.json (the client's chat body), response.json (the upstream's answer) ->
#   expected.json (the client's answer).
# SWITCHBOARD_UPDATE_GOLDEN=1 rewrites expected.json after an intended change: review the diff.
COMPOSED = FIXTURES / "composed"
UNCHANGED = "request_messages_tools_stop_sampling_and_user_unchanged"


def check_golden(case: str, actual: object) -> None:
    path = COMPOSED / case / "expected.json"
    if os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == load(COMPOSED, case, "expected.json")


def test_every_composed_fixture_directory_is_a_known_kind():
    """No case is silently skipped for lack of a recognised input file."""
    kinds = set(cases(COMPOSED, "input.json")) | set(cases(COMPOSED, "response.json"))
    assert {path.name for path in COMPOSED.iterdir() if path.is_dir()} == kinds and UNCHANGED in kinds


@pytest.mark.parametrize("case", cases(COMPOSED, "input.json"))
def test_a_chat_request_through_the_hub_reaches_the_chat_upstream_as_recorded(case):
    """chat -> anthropic -> chat gives exactly the recorded upstream body, and drops no tool."""
    target = ChatTarget(**load(COMPOSED, case, "target.json", {"model": TARGET.model, "reasoning": False}))
    exchange = compose(load(COMPOSED, case, "input.json"), target)
    assert exchange.dropped_tools == ()
    check_golden(case, exchange.body)


def test_a_plain_chat_request_reaches_the_chat_upstream_unchanged():
    """Messages, images, tools, tool calls and results, stop, max_tokens, sampling and user all survive the hub."""
    assert load(COMPOSED, UNCHANGED, "expected.json") == {**load(COMPOSED, UNCHANGED, "input.json"), "model": TARGET.model}


@pytest.mark.parametrize("case", cases(COMPOSED, "response.json"))
def test_a_chat_answer_through_the_hub_reaches_the_client_as_recorded(case):
    """The upstream's answer comes back as exactly the recorded one, under our id, created and model."""
    exchange = compose(load(COMPOSED, case, "request.json"))
    check_golden(case, exchange.response(load(COMPOSED, case, "response.json")))


@pytest.mark.parametrize("field, value", [("n", 2), ("logprobs", True), ("modalities", ["audio"]), ("functions", [{"name": "f"}])])
def test_what_the_hub_cannot_carry_is_refused_though_the_upstream_speaks_chat(field, value):
    """n > 1, logprobs, audio and the legacy functions API are 400s naming the field."""
    with pytest.raises(InvalidRequest) as raised:
        compose({"model": "m", "messages": [HI], field: value})
    assert raised.value.param == field


# Streams ----------------------------------------------------------------------------------

CLEAN_STREAMS = cases(A2C, "equivalent.json")  # chat streams that end well, with their whole twin
# Of those, the ones in the common shape (every fragment indexed), which the OpenAI SDK can fold.
SDK_SHAPED = ["stream_interleaved_tool_calls_buffered", "stream_parallel_tool_calls_sequential", "stream_reasoning_content_then_text",
              "stream_text_openai", "stream_text_then_tool_call_fragments"]


def composed_exchange(case: str):
    buffered = load(A2C, case, "options.json", {}).get("buffer_tool_calls", False)
    body = {"model": "my-alias", "messages": [HI], "stream": True, "stream_options": {"include_usage": True}}
    return compose(body, ChatTarget(model=TARGET.model, reasoning=False, buffer_tool_calls=buffered))


def summary(completion: dict) -> dict:
    """What a client reads from a completion: text and reasoning, tool calls, finish and token counts."""
    choice, usage = completion["choices"][0], completion.get("usage") or {}
    return {
        "text": (choice["message"].get("content") or "", choice["message"].get("reasoning_content")),
        "calls": [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in choice["message"].get("tool_calls") or []],
        "finish": choice["finish_reason"],
        "usage": (usage.get("prompt_tokens"), usage.get("completion_tokens"), (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)),
    }


def fold(chunks: list) -> dict:
    """The summary of the completion the OpenAI SDK accumulates from chunks."""
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return summary(state.current_completion_snapshot.model_dump(mode="json", exclude_none=True))


def check_chat_stream(out: list) -> None:
    """Chunks under our identity, the role first, one finish, then the usage chunk and [DONE]."""
    *chunks, done = out
    assert done == "[DONE]" and all(isinstance(chunk, dict) and "error" not in chunk for chunk in chunks)
    for chunk in chunks:
        assert (chunk["id"], chunk["object"], chunk["created"], chunk["model"]) == ("chatcmpl-composed", "chat.completion.chunk", IDS.created, "my-alias")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [n for n, chunk in enumerate(chunks) if chunk["choices"] and chunk["choices"][0]["finish_reason"]]
    assert finishes == [len(chunks) - 2] and chunks[-1]["choices"] == [] and chunks[-1]["usage"]


@pytest.mark.parametrize("case", CLEAN_STREAMS)
def test_a_chat_stream_through_the_hub_is_well_formed_and_folds_into_the_whole_answer(case):
    """Whole, by line or by byte: the same well-formed chunks, folding into what the whole answer gives."""
    exchange, raw = composed_exchange(case), (A2C / case / "upstream.sse").read_bytes()
    results = {name: run(exchange.stream(), pieces) for name, pieces in three_ways(raw).items()}
    assert results["lines"] == results["whole"] == results["bytes"]
    check_chat_stream(results["whole"])
    streamed, whole = fold(results["whole"][:-1]), summary(exchange.response(load(A2C, case, "equivalent.json")))
    for folded in (streamed, whole):  # a whole answer re-serializes the arguments: compare them as data
        folded["calls"] = [(call_id, name, json.loads(arguments)) for call_id, name, arguments in folded["calls"]]
    assert streamed == whole


@pytest.mark.parametrize("case", SDK_SHAPED)
def test_text_tool_calls_and_usage_reach_the_client_as_the_upstream_streamed_them(case):
    """The client's folded stream equals the upstream's; the token counters are those of the upstream's reader."""
    raw, composed = (A2C / case / "upstream.sse").read_bytes(), composed_exchange(case).stream()
    out = run(composed, [raw])
    assert fold(out[:-1]) == fold([json.loads(event.data) for event in decode(raw) if event.data != "[DONE]"])
    direct = ChatToAnthropicStream(requested_model="m", message_id="msg_1", tool_names={}, buffer_tool_calls="buffered" in case)
    run(direct, [raw])
    counters = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
    assert [getattr(composed, name) for name in counters] == [getattr(direct, name) for name in counters]


def half_a_stream_then(error: ProxyError) -> tuple[list, object]:
    """Text and half a tool call through the hub, then fail(error)."""
    stream = composed_exchange("stream_text_then_tool_call_fragments").stream()
    events = decode((A2C / "stream_text_then_tool_call_fragments/upstream.sse").read_bytes())
    out = [item for event in events[:4] for item in stream.feed(event)]
    return out + stream.fail(error), stream


def test_a_failure_mid_stream_through_the_hub_ends_with_one_error_object_and_no_done():
    """The chunks so far, then exactly one error object, then nothing more."""
    error = UpstreamTimeout("The upstream was silent for 60 seconds.")
    out, stream = half_a_stream_then(error)
    assert "[DONE]" not in out and [item for item in out if "error" in item] == [out[-1]] == [CHAT.error_body(error)]
    assert stream.finished and stream.feed(SSEEvent("[DONE]")) == stream.close() == stream.fail(error) == []


def test_a_failure_mid_stream_through_the_hub_reports_the_error_as_one_hop_would():
    """The client's error object is CHAT.error_body(error), its code and param included."""
    error = ProxyError("The prompt is too long.", status=400, code="context_length_exceeded", param="messages")
    assert half_a_stream_then(error)[0][-1] == CHAT.error_body(error)


def test_an_upstream_error_object_mid_stream_loses_its_code_and_param_in_the_hub():
    """Anthropic error events carry only a type and a message, so the client's code and param are null."""
    out = run(composed_exchange("stream_context_length_error_in_stream").stream(), [(A2C / "stream_context_length_error_in_stream/upstream.sse").read_bytes()])
    message = "prompt is too long: This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens."
    assert out == [{"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}]



# Toward another dialect, Claude's own constraints stay out of the hub -----------------------


def test_a_responses_tool_loop_keeps_its_reasoning_effort_on_a_chat_reasoning_model():
    """Codex on an OpenAI-compatible reasoning model: nearly every turn continues a tool loop, and only
    Claude needs signed thinking back there; the effort reaches the chat upstream on every turn."""
    from translate.dialects import hops_between, open_exchange

    body = {
        "model": "o4-mini", "reasoning": {"effort": "high"}, "tool_choice": "required",
        "tools": [{"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}}],
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files."}]},
            {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
        ],
    }
    target = ChatTarget(model="o4-mini", reasoning=True)
    upstream = open_exchange(hops_between("responses", "chat"), body, target, IDS).body
    assert upstream["reasoning_effort"] == "high"
    assert upstream["tool_choice"] == "required"  # Claude lifts a forced tool under thinking; OpenAI need not
    assert [message["role"] for message in upstream["messages"]] == ["user", "assistant", "tool"]


def test_a_hop_into_claude_itself_still_keeps_claudes_constraints():
    """The same request for a real Claude (one hop, not through the hub): no thinking in a tool loop
    without the signed block, and the forced tool lifted, as Anthropic requires."""
    from translate.dialects import hops_between, open_exchange

    body = {
        "model": "my-alias", "messages": [HI, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
        "reasoning_effort": "high", "temperature": 1.7,
    }
    claude = open_exchange(hops_between("chat", "anthropic"), body, AnthropicTarget(model="claude-x"), IDS).body
    assert "thinking" not in claude and claude["temperature"] == 1.0
