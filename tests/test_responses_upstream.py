"""An OpenAI Responses upstream: Responses-only models (gpt-5-codex, o3-pro) behind every front.

The official SDKs drive switchboard; a fake OpenAI server answers on /v1/responses (and would answer
on /v1/chat/completions too, so the tests see which path each request took). What is checked:
- which wire each model takes (`OPENAI_WIRE_API` auto / responses / chat; Azure's /openai/v1/responses);
- the Anthropic front: reasoning rides in thinking signatures and goes back as the reasoning item
  (`encrypted_content` unchanged, no `rs_` id) before its call on the next turn;
- the Chat front, by composition through the hub;
- the Responses front: passed through untouched (hosted tools and all);
- upstream failures in each client's own dialect.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from fake_upstream import (
    FakeUpstream,
    Received,
    Reply,
    RunningProxy,
    completion,
    function_call_item,
    message_item,
    reasoning_item,
    responses_answer,
    responses_frames,
    responses_reply,
)
from server.config import Config
from translate.responses_context import decode_reasoning_signature
from upstreams.openai import answers_only_on_responses
from upstreams.settings import ConfigError

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def openai_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-up", "OPENAI_BASE_URL": upstream.url + "/v1", "PREFERRED_PROVIDER": "openai", **extra}


def claude(proxy: RunningProxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10)


def gpt(proxy: RunningProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10)


class ResponsesModel:
    """A fake OpenAI: /v1/responses answers `answers` in turn (streamed when asked); chat answers text."""

    def __init__(self, *answers: dict) -> None:
        self.answers = list(answers)

    def __call__(self, received: Received) -> Reply:
        body = received.json()
        if received.path.endswith("/chat/completions"):
            return Reply.json(completion("from chat completions"))
        return responses_reply(self.answers.pop(0), body.get("stream") is True)


def thinking_then_call() -> dict:
    return responses_answer([
        reasoning_item(["Need the weather.", "Call the tool."], "enc-opaque-1"),
        function_call_item("get_weather", {"city": "Paris"}, "call_w1"),
    ])


# ---------------------------------------------------------------------------------------------
# Which wire a model takes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "only"), [
    ("gpt-5-codex", True), ("gpt-5.1-codex-max", True), ("codex-mini-latest", True), ("o3-pro", True),
    ("o3-pro-2025-06-10", True), ("gpt-5-pro", True), ("o3-deep-research", True), ("computer-use-preview", True),
    ("openai/gpt-5-codex", True), ("gpt-5", False), ("gpt-4.1", False), ("o3", False), ("o4-mini", False),
    ("gpt-5-mini", False), ("deepseek-chat", False), ("produce-model", False),
])
def test_models_that_answer_only_on_the_responses_api(model, only):
    assert answers_only_on_responses(model) is only


@pytest.mark.parametrize(("wire", "model", "path"), [
    ("auto", "gpt-5-codex", "/v1/responses"),
    ("auto", "o3-pro", "/v1/responses"),
    ("auto", "gpt-4.1", "/v1/chat/completions"),
    ("responses", "gpt-4.1", "/v1/responses"),
    ("chat", "gpt-5-codex", "/v1/chat/completions"),
])
def test_openai_wire_api_chooses_the_path_per_model(wire, model, path):
    answer = responses_answer([message_item("from responses")])
    with FakeUpstream(ResponsesModel(answer)) as upstream, RunningProxy(openai_env(upstream, OPENAI_WIRE_API=wire)) as proxy:
        message = claude(proxy).messages.create(model=f"openai/{model}", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    assert [received.path for received in upstream.requests] == [path]
    assert message.content[0].text == ("from responses" if path.endswith("responses") else "from chat completions")


def test_a_bad_wire_api_setting_stops_the_start_naming_the_variable():
    with pytest.raises(ConfigError, match="OPENAI_WIRE_API"):
        Config.from_env({"OPENAI_API_KEY": "sk", "OPENAI_WIRE_API": "websocket"})


def test_azure_sends_responses_only_deployments_to_its_v1_responses_path():
    answer = responses_answer([message_item("from azure responses")])
    with FakeUpstream(ResponsesModel(answer)) as upstream, RunningProxy({
        "AZURE_OPENAI_ENDPOINT": upstream.url, "AZURE_OPENAI_API_KEY": "az-key", "PREFERRED_PROVIDER": "azure",
    }) as proxy:
        message = claude(proxy).messages.create(model="azure/gpt-5-codex", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    received = upstream.requests[0]
    assert received.path == "/openai/v1/responses"
    assert received.headers["api-key"] == "az-key"
    assert received.json()["model"] == "gpt-5-codex"
    assert message.content[0].text == "from azure responses"


# ---------------------------------------------------------------------------------------------
# The Anthropic front (Claude Code, the Anthropic SDK)
# ---------------------------------------------------------------------------------------------


def test_the_request_goes_stateless_with_encrypted_reasoning_and_loose_tools():
    answer = responses_answer([message_item("ok")])
    with FakeUpstream(ResponsesModel(answer)) as upstream, RunningProxy(openai_env(upstream, BIG_MODEL="gpt-5-codex")) as proxy:
        claude(proxy).messages.create(
            model="claude-opus-5", max_tokens=2000, system="Be brief.", tools=[WEATHER_TOOL],
            thinking={"type": "enabled", "budget_tokens": 1024}, messages=[{"role": "user", "content": "Hi"}],
        )
    body = upstream.requests[0].json()
    assert body["model"] == "gpt-5-codex"
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    assert body["instructions"] == "Be brief."
    assert body["max_output_tokens"] == 2000
    assert body["reasoning"]["summary"] == "auto" and body["reasoning"]["effort"]
    (tool,) = body["tools"]
    assert tool["type"] == "function" and tool["name"] == "get_weather" and tool["strict"] is False
    assert tool["parameters"] == WEATHER_TOOL["input_schema"]


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_is_carried_across_a_tool_round_trip(stream):
    """Turn 1 answers reasoning + a call; the client sends the thinking block back as it got it; turn 2
    carries the reasoning item (encrypted_content unchanged, no id) before the call, then the output."""
    first, second = thinking_then_call(), responses_answer([message_item("Sunny in Paris.")])
    messages: list[dict] = [{"role": "user", "content": "Weather in Paris?"}]
    with FakeUpstream(ResponsesModel(first, second)) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        sdk = claude(proxy)
        options = dict(model="openai/gpt-5-codex", max_tokens=4000, tools=[WEATHER_TOOL],
                       thinking={"type": "enabled", "budget_tokens": 2000})
        if stream:
            with sdk.messages.stream(messages=messages, **options) as events:
                reply = events.get_final_message()
        else:
            reply = sdk.messages.create(messages=messages, **options)
        assert [block.type for block in reply.content] == ["thinking", "tool_use"]
        thinking, call = reply.content
        assert thinking.thinking == "Need the weather.\n\nCall the tool."
        assert decode_reasoning_signature(thinking.signature)["encrypted_content"] == "enc-opaque-1"
        assert (call.id, call.name, call.input) == ("call_w1", "get_weather", {"city": "Paris"})
        assert reply.stop_reason == "tool_use"
        messages += [
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in reply.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_w1", "content": "Sunny, 21C"}]},
        ]
        final = sdk.messages.create(messages=messages, **options)
    assert final.content[-1].text == "Sunny in Paris."
    items = upstream.requests[1].json()["input"]
    kinds = [item.get("type") for item in items]
    assert kinds == ["message", "reasoning", "function_call", "function_call_output"]
    reasoning = items[1]
    assert "id" not in reasoning
    assert reasoning["encrypted_content"] == "enc-opaque-1"
    assert [part["text"] for part in reasoning["summary"]] == ["Need the weather.", "Call the tool."]
    assert items[2]["call_id"] == items[3]["call_id"] == "call_w1" and "id" not in items[2]
    assert items[3]["output"] == "Sunny, 21C"


def test_thinking_signed_by_claude_is_not_sent_to_a_responses_model():
    answer = responses_answer([message_item("ok")])
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Claude's own thought", "signature": "EqQBCkgIAxgCIkD...claude"},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "Rain"}]},
    ]
    with FakeUpstream(ResponsesModel(answer)) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        claude(proxy).messages.create(model="openai/gpt-5-codex", max_tokens=64, tools=[WEATHER_TOOL], messages=history)
    items = upstream.requests[0].json()["input"]
    assert [item.get("type") for item in items] == ["message", "function_call", "function_call_output"]
    assert "Claude's own thought" not in json.dumps(items)


def test_usage_reaches_the_anthropic_client_with_cached_tokens_apart():
    answer = responses_answer([message_item("ok")], input_tokens=1000, cached_tokens=600, output_tokens=30)
    with FakeUpstream(ResponsesModel(answer)) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        with claude(proxy).messages.stream(model="openai/gpt-5-codex", max_tokens=64,
                                           messages=[{"role": "user", "content": "Hi"}]) as events:
            usage = events.get_final_message().usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (400, 600, 30)


def test_an_incomplete_answer_is_max_tokens():
    answer = responses_answer([message_item("trunc")], status="incomplete", incomplete_reason="max_output_tokens")
    with FakeUpstream(ResponsesModel(answer)) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        message = claude(proxy).messages.create(model="openai/gpt-5-codex", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    assert message.stop_reason == "max_tokens"


def test_context_overflow_in_the_stream_is_claudes_prompt_too_long():
    failed = responses_answer([], status="failed", error={
        "code": "context_length_exceeded", "message": "Your input exceeds the context window of this model."})
    with FakeUpstream([Reply.sse(responses_frames(failed))]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        with pytest.raises(anthropic.APIStatusError) as raised:
            with claude(proxy).messages.stream(model="openai/gpt-5-codex", max_tokens=64,
                                               messages=[{"role": "user", "content": "Hi"}]) as events:
                events.get_final_message()
    assert "invalid_request_error" in str(raised.value.body) or raised.value.status_code == 400


def test_a_rate_limit_before_the_answer_is_claudes_429():
    limited = Reply.json({"error": {"message": "Rate limit reached. Please try again in 2s.", "type": "requests",
                                    "code": "rate_limit_exceeded"}}, status=429, headers=[("retry-after", "2")])
    with FakeUpstream([limited]) as upstream, RunningProxy(openai_env(upstream, MAX_RETRIES="0")) as proxy:
        with pytest.raises(anthropic.RateLimitError):
            claude(proxy).messages.create(model="openai/gpt-5-codex", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])


# ---------------------------------------------------------------------------------------------
# The Chat front, composed through the hub
# ---------------------------------------------------------------------------------------------


def test_chat_completions_on_a_responses_only_model():
    with FakeUpstream(ResponsesModel(thinking_then_call(), responses_answer([message_item("Sunny.")]))) as upstream, \
            RunningProxy(openai_env(upstream)) as proxy:
        sdk = gpt(proxy)
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL["input_schema"]}}]
        first = sdk.chat.completions.create(model="gpt-5-codex", tools=tools, messages=[{"role": "user", "content": "Weather?"}])
        (call,) = first.choices[0].message.tool_calls
        assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_w1", "get_weather", {"city": "Paris"})
        assert first.choices[0].finish_reason == "tool_calls"
        stream = sdk.chat.completions.create(
            model="gpt-5-codex", tools=tools, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Weather?"}, first.choices[0].message.model_dump(exclude_none=True),
                      {"role": "tool", "tool_call_id": "call_w1", "content": "Sunny"}],
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Sunny."
    assert [received.path for received in upstream.requests] == ["/v1/responses", "/v1/responses"]
    items = upstream.requests[1].json()["input"]
    assert [item.get("type") for item in items][-2:] == ["function_call", "function_call_output"]


# ---------------------------------------------------------------------------------------------
# The Responses front: passthrough
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_responses_client_passes_through_untouched(stream):
    answer = responses_answer([message_item("straight through")])
    raw_whole = json.dumps(answer).encode()
    frames = responses_frames(answer)
    reply = Reply.sse(frames) if stream else Reply(body=raw_whole)
    request = {"model": "gpt-5-codex", "input": "Hi", "tools": [{"type": "web_search"}], "store": False, "stream": stream}
    with FakeUpstream([reply]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        response = gpt(proxy).with_raw_response.responses.create(**request)
        received_bytes = response.http_response.read()
    sent = upstream.requests[0]
    assert sent.path == "/v1/responses"
    assert sent.json() == request  # hosted tools and all: nothing rewritten
    assert received_bytes == (b"".join(frames) if stream else raw_whole)


# ---------------------------------------------------------------------------------------------
# Refusals cured by sending again without what was refused
# ---------------------------------------------------------------------------------------------


def test_an_unverified_organisation_is_asked_again_without_reasoning_summaries():
    refused = Reply.json({"error": {"message": "Your organization must be verified to generate reasoning summaries.",
                                    "type": "invalid_request_error", "param": "reasoning.summary",
                                    "code": "unsupported_value"}}, status=400)
    answers = [refused, responses_reply(responses_answer([message_item("one")]), False),
               responses_reply(responses_answer([message_item("two")]), False)]
    options = dict(model="openai/gpt-5-codex", max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2000},
                   messages=[{"role": "user", "content": "Hi"}])
    with FakeUpstream(answers) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        first = claude(proxy).messages.create(**options)
        second = claude(proxy).messages.create(**options)
    assert (first.content[0].text, second.content[0].text) == ("one", "two")
    sent = [received.json()["reasoning"] for received in upstream.requests]
    assert "summary" in sent[0] and "summary" not in sent[1]
    assert "summary" not in sent[2]  # not asked for again: no second refusal
    assert len(upstream.requests) == 3


def test_reasoning_openai_cannot_decrypt_is_left_out_and_the_request_sent_again():
    refused = Reply.json({"error": {"message": "The encrypted content could not be decrypted.",
                                    "type": "invalid_request_error", "param": None,
                                    "code": "invalid_encrypted_content"}}, status=400)
    first = thinking_then_call()
    with FakeUpstream([responses_reply(first, False), refused, responses_reply(responses_answer([message_item("ok")]), False)]) \
            as upstream, RunningProxy(openai_env(upstream)) as proxy:
        sdk = claude(proxy)
        options = dict(model="openai/gpt-5-codex", max_tokens=4000, tools=[WEATHER_TOOL])
        reply = sdk.messages.create(messages=[{"role": "user", "content": "Weather?"}], **options)
        final = sdk.messages.create(messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in reply.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_w1", "content": "Sunny"}]},
        ], **options)
    assert final.content[0].text == "ok"
    kinds = [[item.get("type") for item in received.json()["input"]] for received in upstream.requests[1:]]
    assert kinds == [["message", "reasoning", "function_call", "function_call_output"],
                     ["message", "function_call", "function_call_output"]]


def test_another_400_reaches_the_client_as_it_came():
    refused = Reply.json({"error": {"message": "Invalid value for 'tools[0].name'.", "type": "invalid_request_error",
                                    "param": "tools[0].name", "code": "invalid_value"}}, status=400)
    with FakeUpstream([refused]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        with pytest.raises(anthropic.BadRequestError) as raised:
            claude(proxy).messages.create(model="openai/gpt-5-codex", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    assert "tools[0].name" in str(raised.value)
    assert len(upstream.requests) == 1
