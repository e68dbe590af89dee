"""The Responses front (`POST /v1/responses`) through the real server, driven by the official openai SDK.

Served through the hub: Responses -> Anthropic Messages -> the upstream's dialect (a chat upstream
composes two hops, an Anthropic upstream one). The SDK's typed stream accumulator must rebuild the
same response the non-stream call returns.
"""

from __future__ import annotations

import json

import openai
import pytest

from fake_upstream import FakeUpstream, Reply, RunningProxy, completion, text_stream


def anthropic_message(blocks: list[dict], stop: str = "end_turn") -> dict:
    return {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5", "content": blocks,
            "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 5}}


def anthropic_stream(text: str) -> list[bytes]:
    events = [
        {"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant", "model": "m", "content": [],
                                              "stop_reason": None, "usage": {"input_tokens": 12, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *[{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
          for piece in (text[: len(text) // 2], text[len(text) // 2 :])],
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ]
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def sdk(proxy: RunningProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0, timeout=10)


CHAT_ENV = {"OPENAI_API_KEY": "k"}
CLAUDE_ENV = {"ANTHROPIC_API_KEY": "sk-ant-k", "PREFERRED_PROVIDER": "anthropic"}


@pytest.mark.parametrize(
    ("env", "url_variable", "model", "whole", "streamed"),
    [
        (CHAT_ENV, "OPENAI_BASE_URL", "gpt-4.1", Reply.json(completion("Hello there")), Reply.sse(text_stream(["Hello", " there"]))),
        (CLAUDE_ENV, "ANTHROPIC_BASE_URL", "claude-sonnet-5-5",
         Reply.json(anthropic_message([{"type": "text", "text": "Hello there"}])), Reply.sse(anthropic_stream("Hello there"))),
    ],
    ids=["chat-upstream", "anthropic-upstream"],
)
def test_sdk_create_and_stream_agree(env, url_variable, model, whole, streamed):
    with FakeUpstream([whole, streamed]) as upstream, RunningProxy(dict(env, **{url_variable: upstream.url})) as proxy:
        client = sdk(proxy)
        created = client.responses.create(model=model, input="Say hello", instructions="Be brief.")
        with client.responses.stream(model=model, input="Say hello", instructions="Be brief.") as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
    assert created.output_text == "Hello there" == final.output_text
    assert created.status == final.status == "completed"
    assert created.model == final.model == model
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.usage is not None and final.usage.input_tokens > 0
    sent = upstream.requests[0].json()
    if url_variable == "OPENAI_BASE_URL":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert sent["system"][0]["text"] == "Be brief." if isinstance(sent["system"], list) else sent["system"] == "Be brief."


def test_function_call_round_trip_on_a_chat_upstream():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    replies = [Reply.json(completion(None, tool_calls=[call], finish="tool_calls")), Reply.json(completion("It is sunny."))]
    tools = [{"type": "function", "name": "get_weather", "description": "Weather", "strict": False,
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    with FakeUpstream(replies) as upstream, RunningProxy(dict(CHAT_ENV, OPENAI_BASE_URL=upstream.url)) as proxy:
        client = sdk(proxy)
        first = client.responses.create(model="gpt-4.1", input="Weather in Oslo?", tools=tools)
        calls = [item for item in first.output if item.type == "function_call"]
        assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Oslo"}
        history = [{"role": "user", "content": "Weather in Oslo?"}, calls[0].model_dump(exclude_none=True),
                   {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"}]
        second = client.responses.create(model="gpt-4.1", input=history, tools=tools)
    assert second.output_text == "It is sunny."
    messages = upstream.requests[1].json()["messages"]
    assert messages[-1] == {"role": "tool", "tool_call_id": messages[-2]["tool_calls"][0]["id"], "content": "sunny, 21C"}


def test_invalid_responses_request_is_a_400_in_openais_envelope():
    with RunningProxy(CHAT_ENV) as proxy:
        client = sdk(proxy)
        with pytest.raises(openai.BadRequestError) as raised:
            client.responses.create(model="gpt-4.1", input=7)
    assert raised.value.status_code == 400 and "input" in raised.value.message


def test_previous_response_id_is_refused_with_openais_code():
    # Translated (here to Chat Completions): nothing holds the state. Passed through to OpenAI's own
    # /v1/responses (OPENAI_WIRE_API=auto on api.openai.com), OpenAI would resolve it itself.
    with RunningProxy(dict(CHAT_ENV, OPENAI_WIRE_API="chat")) as proxy:
        with pytest.raises(openai.BadRequestError) as raised:
            sdk(proxy).responses.create(model="gpt-4.1", input="hi", previous_response_id="resp_123")
    assert "resp_123" in raised.value.message


def test_context_overflow_on_a_stream_arrives_in_stream_as_response_failed():
    """Codex compacts only on `context_length_exceeded` inside the stream; an HTTP 400 would be fatal to it."""
    overflow = Reply.json({"error": {"message": "This model's maximum context length is 128000 tokens.", "type": "invalid_request_error",
                                     "code": "context_length_exceeded", "param": "messages"}}, status=400)
    with FakeUpstream([overflow]) as upstream, RunningProxy(dict(CHAT_ENV, OPENAI_BASE_URL=upstream.url)) as proxy:
        with sdk(proxy).responses.stream(model="gpt-4.1", input="a very long prompt") as stream:
            events = list(stream)
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "context_length_exceeded"


def test_codex_model_catalog_request_gets_codexs_own_shape():
    """Codex asks `GET /v1/models?client_version=...` and reads only `{"models": [...]}`; an empty list keeps its catalog."""
    from loopback import request

    with RunningProxy(CHAT_ENV) as proxy:
        catalog = request(proxy, "GET", "/v1/models?client_version=0.171.0")
        listing = request(proxy, "GET", "/v1/models")
    assert catalog.status == 200 and catalog.body == {"models": []}
    assert listing.body["object"] == "list"


def test_a_silent_upstream_gets_numbered_in_progress_events_codex_counts_as_activity():
    """Codex's idle timer ignores SSE comments: once the stream runs, heartbeats are response.in_progress events."""
    slow = Reply.sse(text_stream(["Hello", " there"]), delay_between_chunks=0.35)
    with FakeUpstream([slow]) as upstream, RunningProxy(dict(CHAT_ENV, OPENAI_BASE_URL=upstream.url, PING_INTERVAL="0.1")) as proxy:
        with sdk(proxy).responses.stream(model="gpt-4.1", input="hi") as stream:
            events = list(stream)
            final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds.count("response.in_progress") >= 2 and kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.output_text == "Hello there"
