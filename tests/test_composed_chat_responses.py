"""chat -> anthropic -> responses: a Chat Completions client on an OpenAI Responses upstream, as golden cases.

translate/dialects.py composes the pair ("chat", "responses") as (chat_to_anthropic, anthropic_to_responses):
the client's chat body goes through the hub (Anthropic Messages) into a Responses body (gpt-5-codex and
the other models that answer only on /v1/responses), and the answer or stream comes back through the
hub as a chat.completion or chunks. tests/test_responses_upstream.py drives this pair over loopback;
these cases pin down each field, in memory.

Golden cases live in fixtures/composed_chat_responses/<case>/, each named after what it shows:
- request_*: input.json (the client's chat body) + target.json (ResponsesTarget fields, optional; by
  default gpt-5-codex with reasoning) -> expected.json (the Responses body sent upstream);
- response_*: request.json (the client's chat body) + response.json (a whole Responses answer) ->
  expected.json (the chat.completion the client gets; for a failure, {"raises": {status, type,
  message}} and what a chat client is answered);
- stream_*: request.json + events.json (the upstream's Responses events, written with
  tests/fake_upstream.py `responses_events`) -> expected.json (the chunks, then "[DONE]" or the error object).
SWITCHBOARD_UPDATE_GOLDEN=1 rewrites expected.json after an intended change: review the diff.

Losses these cases record (the hub applies Claude's rules though no Claude is involved):
- stop sequences: the Responses API has none, and nothing tells the client they were ignored;
- `strict` on a function tool and on a json_schema response_format: the hub has no strict mode, so
  OpenAI gets `strict: false`. json_schema becomes a forced `json_response` function tool (asked for
  in words under a reasoning effort) and json_object an instruction, never Responses' `text.format`;
- reasoning_effort: minimal (and none) sends no effort, so the model's default applies; any effort is
  dropped while a tool loop continues (the hub's rule for Claude's signed thinking); with an effort a
  forced tool_choice becomes auto; on a plain target the effort still raises max_tokens to the hub's
  thinking budget and drops temperature and top_p;
- temperature is clamped into the hub's [0, 1]; image detail becomes "auto"; developer messages
  move into `instructions`;
- on the way back, reasoning summaries become `reasoning_content`, but the encrypted reasoning is not
  carried, so a chat client can never send it back; reasoning_tokens read 0; a refusal's text lands
  in `content` and `refusal` holds a generic sentence; an upstream error's code
  (context_length_exceeded) is lost inside a stream, though a whole answer keeps it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from openai.types import ErrorObject
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.fake_upstream import (
    function_call_item,
    reasoning_item,
    responses_answer,
    responses_events,
)
from tests.test_dialects import cases, fold, load, run, summary, three_ways
from translate.anthropic_to_responses_request import ResponsesTarget
from translate.dialects import (
    CHAT,
    PAIRS,
    ResponseIds,
    anthropic_to_responses,
    chat_to_anthropic,
    open_exchange,
)
from translate.errors import (
    InvalidRequest,
    ProxyError,
    UpstreamTimeout,
    UpstreamUnavailable,
    chat_error_body,
    chat_status,
)
from translate.sse import SSEEvent, dumps

FIXTURES = Path(__file__).parent / "fixtures" / "composed_chat_responses"
IDS = ResponseIds(requested_model="my-alias", token="composed", created=1754000000)
TARGET = {"model": "gpt-5-codex", "reasoning": True}
CHAT_ON_RESPONSES = (chat_to_anthropic, anthropic_to_responses)
HI = {"role": "user", "content": "Hi"}


def compose(body: dict, target: dict = TARGET):
    return open_exchange(CHAT_ON_RESPONSES, body, ResponsesTarget(**target), IDS)


def exchange_for(case: str):
    return compose(load(FIXTURES, case, "input.json") or load(FIXTURES, case, "request.json"),
                   load(FIXTURES, case, "target.json", TARGET))


def check_golden(case: str, actual: object) -> None:
    path = FIXTURES / case / "expected.json"
    if os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == load(FIXTURES, case, "expected.json")


def events_bytes(case: str) -> bytes:
    """The upstream stream as OpenAI frames it: `event: <type>`, then `data: <json>`, then a blank line."""
    return b"".join(f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode() for event in load(FIXTURES, case, "events.json"))


def terminal_answer(case: str) -> dict | None:
    """The whole answer a stream ended with (response.completed or .incomplete), or None."""
    last = load(FIXTURES, case, "events.json")[-1]
    return last["response"] if last["type"] in ("response.completed", "response.incomplete") else None


def validate_chat_items(out: list) -> None:
    """Every chunk is a ChatCompletionChunk, every error object an ErrorObject; "[DONE]" is plain."""
    for item in out:
        if item == "[DONE]":
            continue
        if "error" in item:
            ErrorObject.model_validate(item["error"])
        else:
            ChatCompletionChunk.model_validate(item)


def as_data(folded: dict, json_content: bool) -> dict:
    """A whole answer re-serializes tool arguments (and a json_schema answer); a stream carries the
    upstream's text: compare them as data."""
    (content, reasoning), calls = folded["text"], folded["calls"]
    return {**folded, "text": (json.loads(content) if json_content else content, reasoning),
            "calls": [(call_id, name, json.loads(arguments)) for call_id, name, arguments in calls]}


REQUESTS = cases(FIXTURES, "input.json")
ANSWERS = cases(FIXTURES, "response.json")
STREAMS = cases(FIXTURES, "events.json")
FINISHED_STREAMS = [case for case in STREAMS if terminal_answer(case) is not None]


def test_every_fixture_directory_is_a_known_kind_and_the_pair_is_composed_as_tested():
    """No case is skipped for lack of a recognised input file; dialects.py composes the pair with these hops."""
    directories = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    assert directories == set(REQUESTS) | set(ANSWERS) | set(STREAMS)
    assert all(case.startswith(kind) for kind, group in (("request_", REQUESTS), ("response_", ANSWERS), ("stream_", STREAMS)) for case in group)
    assert PAIRS[("chat", "responses")] == CHAT_ON_RESPONSES


# =============================================================================================
# Requests: the client's chat body, as the Responses upstream receives it
# =============================================================================================


@pytest.mark.parametrize("case", REQUESTS)
def test_a_chat_request_reaches_the_responses_upstream_as_recorded(case):
    """Exactly the recorded Responses body, stateless and without stream_options, with no tool dropped."""
    exchange = exchange_for(case)
    assert exchange.dropped_tools == ()
    assert exchange.body["store"] is False and "stream_options" not in exchange.body
    check_golden(case, exchange.body)


def test_stop_sequences_change_nothing_in_the_upstream_body():
    """Stop strings are dropped without a word: the body is the one sent without them [LOSSY]."""
    plain = {"model": "my-alias", "messages": [HI], "max_tokens": 100}
    assert compose({**plain, "stop": ["END", "\n\n"]}).body == compose(plain).body == compose({**plain, "stop": "END"}).body


def test_a_reasoning_target_gets_encrypted_reasoning_and_no_sampling_a_plain_one_the_opposite():
    """include asks for encrypted reasoning only on a reasoning target; temperature goes only to a plain one."""
    body = {"model": "my-alias", "messages": [HI], "temperature": 0.5}
    reasoning, plain = compose(body).body, compose(body, {"model": "gpt-4.1", "reasoning": False}).body
    assert reasoning["include"] == ["reasoning.encrypted_content"] and "temperature" not in reasoning
    assert "include" not in plain and plain["temperature"] == 0.5


def test_reasoning_effort_reaches_the_upstream_inside_a_tool_loop_too():
    """The same effort on a fresh question and once the last message is a tool result: only Claude needs
    signed thinking back in a tool loop, and this hop goes on to OpenAI."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}
    fresh = compose({"model": "my-alias", "messages": [HI], "tools": tools, "reasoning_effort": "high"}).body
    looping = compose({"model": "my-alias", "messages": [HI, call, {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}],
                       "tools": tools, "reasoning_effort": "high"}).body
    assert fresh["reasoning"] == looping["reasoning"] == {"effort": "high", "summary": "auto"}
    assert [item["type"] for item in looping["input"]] == ["message", "function_call", "function_call_output"]


@pytest.mark.parametrize("field, value", [("n", 2), ("logprobs", True), ("top_logprobs", 3), ("modalities", ["audio"]),
                                          ("functions", [{"name": "f"}]), ("function_call", "auto")])
def test_what_the_hub_cannot_carry_is_refused_before_the_responses_upstream(field, value):
    """n > 1, logprobs, audio and the legacy functions API are 400s naming the field."""
    with pytest.raises(InvalidRequest) as raised:
        compose({"model": "my-alias", "messages": [HI], field: value})
    assert (raised.value.status, raised.value.param) == (400, field)


@pytest.mark.parametrize("field, value", [("n", 2), ("logprobs", True)])
def test_a_refusal_on_the_way_to_an_openai_model_does_not_blame_claude(field, value):
    """A gpt-5-codex client told "Claude returns one choice" or "not supported by Claude models" is misled."""
    with pytest.raises(InvalidRequest) as raised:
        compose({"model": "my-alias", "messages": [HI], field: value})
    assert "Claude" not in raised.value.message


def test_a_tool_the_responses_hop_would_drop_cannot_come_from_a_chat_client():
    """Chat has only function tools: anything else is a 400 at the first hop, so dropped_tools stays empty."""
    with pytest.raises(InvalidRequest) as raised:
        compose({"model": "my-alias", "messages": [HI], "tools": [{"type": "custom", "custom": {"name": "apply_patch"}}]})
    assert raised.value.param == "tools[0].type"


# =============================================================================================
# Whole answers: a Responses answer, as the chat client receives it
# =============================================================================================


def answer_outcome(case: str) -> dict:
    """The chat.completion, or {"raises": ...} with what a chat client is answered for the ProxyError."""
    exchange = exchange_for(case)
    try:
        return exchange.response(load(FIXTURES, case, "response.json"))
    except ProxyError as error:
        return {"raises": {"status": error.status, "type": error.error_type, "message": error.message},
                "chat": {"status": chat_status(error), **chat_error_body(error)}}


@pytest.mark.parametrize("case", ANSWERS)
def test_a_responses_answer_reaches_the_chat_client_as_recorded(case):
    """Exactly the recorded completion under our id, created and model (ChatCompletion parses it), or error."""
    outcome = answer_outcome(case)
    if "raises" in outcome:
        assert ErrorObject.model_validate(outcome["chat"]["error"]).message == outcome["raises"]["message"]
    else:
        completion = ChatCompletion.model_validate(outcome)
        assert (completion.id, completion.created, completion.model) == ("chatcmpl-composed", IDS.created, "my-alias")
    check_golden(case, outcome)


def test_reasoning_reaches_a_chat_client_as_text_it_cannot_send_back():
    """The summary arrives as reasoning_content; the encrypted reasoning does not, so the next turn has none [LOSSY]."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    ask = {"model": "my-alias", "messages": [{"role": "user", "content": "Weather?"}], "tools": tools, "reasoning_effort": "high"}
    answer = responses_answer([reasoning_item(["Need the weather."], "enc-opaque-9"), function_call_item("get_weather", {"city": "Oslo"}, "call_o1")])
    completion = compose(ask).response(answer)
    message = completion["choices"][0]["message"]
    assert message["reasoning_content"] == "Need the weather." and "enc-opaque-9" not in dumps(completion)
    next_turn = {**ask, "messages": [*ask["messages"], message, {"role": "tool", "tool_call_id": "call_o1", "content": "Snow"}]}
    body = compose(next_turn).body
    assert [item["type"] for item in body["input"]] == ["message", "function_call", "function_call_output"]
    assert "enc-opaque-9" not in dumps(body)


# =============================================================================================
# Streams: the upstream's Responses events, as the chat client's chunks
# =============================================================================================


@pytest.mark.parametrize("case", STREAMS)
def test_the_upstream_events_are_the_fake_upstreams_for_the_answer_they_end_with(case):
    """A stream that ends is exactly responses_events(its final response); a cut one stops inside an item."""
    events = load(FIXTURES, case, "events.json")
    if events[-1]["type"] in ("response.completed", "response.incomplete", "response.failed"):
        assert events == responses_events(events[-1]["response"])
    else:
        assert events[-1]["type"].startswith("response.output_") and events[0]["type"] == "response.created"


@pytest.mark.parametrize("case", STREAMS)
def test_a_responses_stream_reaches_the_chat_client_as_recorded_however_it_is_read(case):
    """Whole, by line or byte by byte: the same recorded chunks, each one the openai SDK's type."""
    results = {name: run(exchange_for(case).stream(), pieces) for name, pieces in three_ways(events_bytes(case)).items()}
    assert results["lines"] == results["whole"] == results["bytes"]
    validate_chat_items(results["whole"])
    check_golden(case, results["whole"])


@pytest.mark.parametrize("case", FINISHED_STREAMS)
def test_a_finished_stream_is_well_formed_and_folds_into_the_whole_answer(case):
    """Role first, one finish, the usage chunk only when asked, then [DONE]; the SDK's fold equals the whole answer."""
    request = load(FIXTURES, case, "request.json")
    exchange, include_usage = exchange_for(case), request.get("stream_options", {}).get("include_usage", False)
    stream = exchange.stream()
    *chunks, done = run(stream, [events_bytes(case)])
    assert done == "[DONE]" and stream.finished
    assert all((chunk["id"], chunk["created"], chunk["model"]) == ("chatcmpl-composed", IDS.created, "my-alias") for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [n for n, chunk in enumerate(chunks) if chunk["choices"] and chunk["choices"][0]["finish_reason"]]
    assert finishes == [len(chunks) - 1 - include_usage]
    assert (chunks[-1]["choices"] == [] and bool(chunks[-1]["usage"])) == include_usage
    whole = summary(exchange.response(terminal_answer(case)))
    streamed = fold(chunks)
    if not include_usage:
        streamed["usage"] = whole["usage"] = None  # nothing to compare: the client asked for no usage
    json_content = "response_format" in request
    assert as_data(streamed, json_content) == as_data(whole, json_content)


@pytest.mark.parametrize("case", [case for case in FINISHED_STREAMS if load(FIXTURES, case, "request.json").get("stream_options")])
def test_a_streams_token_counters_are_the_upstreams_and_match_the_usage_chunk(case):
    """The server's counters come from the Responses reader: input without cached tokens, cached apart."""
    stream = exchange_for(case).stream()
    usage = run(stream, [events_bytes(case)])[-2]["usage"]
    upstream = terminal_answer(case)["usage"]
    cached = upstream["input_tokens_details"]["cached_tokens"]
    assert (stream.input_tokens, stream.cache_read_tokens, stream.output_tokens) == (upstream["input_tokens"] - cached, cached, upstream["output_tokens"])
    assert (usage["prompt_tokens"], usage["prompt_tokens_details"]["cached_tokens"], usage["completion_tokens"]) == (
        upstream["input_tokens"], cached, upstream["output_tokens"])


def test_a_stream_cut_before_response_completed_ends_with_the_chat_error_chunk_never_a_finish():
    """The text so far, then one error object saying the stream ended early; no finish_reason and no [DONE]."""
    case = "stream_cut_before_response_completed_ends_with_an_error_chunk"
    stream = exchange_for(case).stream()
    out = run(stream, [events_bytes(case)])
    error = UpstreamUnavailable("OpenAI Responses upstream ended the stream before the response was complete.")
    assert "[DONE]" not in out and [item for item in out if "error" in item] == [out[-1]] == [CHAT.error_body(error)]
    assert not any(chunk["choices"] and chunk["choices"][0]["finish_reason"] for chunk in out[:-1])
    assert "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in out[:-1] if chunk["choices"]) == "The answer i"
    assert stream.finished and stream.close() == stream.fail(UpstreamTimeout("late")) == []


def test_a_read_failure_mid_stream_is_the_chat_error_chunk_with_its_code():
    """fail() on the way through both hops gives CHAT.error_body(error), code included, and nothing after it."""
    case = "stream_reasoning_then_tool_call"
    stream = exchange_for(case).stream()
    events = [SSEEvent(dumps(event), event["type"]) for event in load(FIXTURES, case, "events.json")[:8]]
    out = [item for event in events for item in stream.feed(event)]
    error = UpstreamTimeout("The upstream sent nothing for 300 seconds.")
    out += stream.fail(error)
    assert out[-1] == CHAT.error_body(error) and out[-1]["error"]["code"] == "timeout" and "[DONE]" not in out
    assert any(chunk.get("choices") and "reasoning_content" in chunk["choices"][0]["delta"] for chunk in out[:-1])
    assert stream.feed(events[-1]) == stream.close() == []


def test_a_failed_response_keeps_its_code_whole_and_loses_it_in_a_stream():
    """Whole, the chat client reads code context_length_exceeded; streamed, the hub's error event has no room for it [LOSSY]."""
    whole = answer_outcome("response_failed_context_length_raises_prompt_too_long")["chat"]["error"]
    streamed = run(exchange_for("stream_failed_context_length_ends_with_an_error_chunk_without_its_code").stream(),
                   [events_bytes("stream_failed_context_length_ends_with_an_error_chunk_without_its_code")])[-1]["error"]
    assert (whole["message"], whole["type"]) == (streamed["message"], streamed["type"])
    assert (whole["code"], streamed["code"]) == ("context_length_exceeded", None)
