"""The OpenAI front: the official `openai` SDK against the proxy and a fake Anthropic upstream; /v1/models."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream, Reply, RunningProxy

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def anthropic_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    env = {"ANTHROPIC_API_KEY": "sk-ant-upstream", "ANTHROPIC_BASE_URL": upstream.url, "PROXY_API_KEY": "inbound"}
    env.update(extra)
    return env


def sdk(proxy: RunningProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key="inbound", max_retries=0, timeout=10)


def message(content: list[dict], stop_reason: str = "end_turn", **usage) -> dict:
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-sonnet-5", "content": content,
        "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, **usage},
    }


def anthropic_sse(*events: dict) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def streamed_tool_answer() -> list[bytes]:
    start = message([], stop_reason=None, input_tokens=900, cache_read_input_tokens=100)
    return anthropic_sse(
        {"type": "message_start", "message": start},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Checking."}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Os'}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": 'lo"}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 33}},
        {"type": "message_stop"},
    )


def test_openai_sdk_non_stream_reaches_claude_with_anthropic_headers():
    """chat.completions.create goes to /v1/messages with x-api-key and anthropic-version, model unchanged."""
    reply = Reply.json(message([{"type": "text", "text": "Hello from Claude"}], cache_read_input_tokens=50))
    with FakeUpstream([reply]) as upstream, RunningProxy(anthropic_env(upstream)) as proxy:
        completion = sdk(proxy).chat.completions.create(
            model="claude-sonnet-5", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        )
    assert completion.choices[0].message.content == "Hello from Claude"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "claude-sonnet-5"
    assert completion.usage.prompt_tokens == 60 and completion.usage.prompt_tokens_details.cached_tokens == 50
    sent = upstream.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-upstream" and sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    body = sent.json()
    assert body["model"] == "claude-sonnet-5"
    assert body["system"][0]["text"] == "Be brief." and body["max_tokens"] == 16384


def test_openai_sdk_stream_with_tool_calls_reasoning_and_usage():
    """A streamed Claude answer becomes chunks: reasoning, text, one tool call with fragments, usage, [DONE]."""
    with FakeUpstream([Reply.sse(streamed_tool_answer())]) as upstream, RunningProxy(anthropic_env(upstream)) as proxy:
        stream = sdk(proxy).chat.completions.create(
            model="claude-sonnet-5", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[TOOL],
            stream=True, stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert text == "Checking." and reasoning == "hmm"
    assert calls[0].id == "toolu_1" and calls[0].function.name == "get_weather" and calls[0].index == 0
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1000 and chunks[-1].usage.completion_tokens == 33
    assert upstream.requests[0].json()["tools"][0]["name"] == "get_weather"


def test_openai_sdk_tool_results_become_one_user_turn_upstream():
    """assistant tool_calls + tool messages reach Claude as tool_use and one user turn of tool_results."""
    with FakeUpstream([Reply.json(message([{"type": "text", "text": "4 degrees"}]))]) as upstream, RunningProxy(anthropic_env(upstream)) as proxy:
        sdk(proxy).chat.completions.create(
            model="claude-sonnet-5",
            tools=[TOOL],
            messages=[
                {"role": "user", "content": "Weather in Oslo and Bergen?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Bergen"}'}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "4"},
                {"role": "tool", "tool_call_id": "call_2", "content": "7"},
            ],
        )
    turns = upstream.requests[0].json()["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1]["content"]] == ["tool_use", "tool_use"]
    assert [(b["type"], b["tool_use_id"]) for b in turns[2]["content"]] == [("tool_result", "call_1"), ("tool_result", "call_2")]


def test_openai_sdk_gets_a_clear_400_for_invalid_tool_arguments():
    """Invalid JSON in tool_call arguments is a 400 BadRequestError naming the parameter, in the OpenAI shape."""
    with FakeUpstream([]) as upstream, RunningProxy(anthropic_env(upstream)) as proxy:
        with pytest.raises(openai.BadRequestError) as raised:
            sdk(proxy).chat.completions.create(
                model="claude-sonnet-5",
                messages=[
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
                    {"role": "tool", "tool_call_id": "c", "content": "r"},
                ],
            )
    assert "arguments" in str(raised.value) and upstream.requests == []


@pytest.mark.parametrize("extra, param", [({"n": 2}, "n"), ({"logprobs": True}, "logprobs")])
def test_unsupported_parameters_are_rejected_by_name(extra, param):
    """n > 1 and logprobs are refused with a 400 that names them."""
    with FakeUpstream([]) as upstream, RunningProxy(anthropic_env(upstream)) as proxy:
        with pytest.raises(openai.BadRequestError) as raised:
            sdk(proxy).chat.completions.create(model="claude-sonnet-5", messages=[{"role": "user", "content": "x"}], **extra)
    assert raised.value.body["param"] == param


def test_anthropic_errors_reach_openai_clients_as_their_error_classes():
    """Claude's 429 (with retry-after) and 529 become the OpenAI SDK's RateLimitError and a 503."""
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    limited = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}
    replies = [Reply.json(limited, status=429, headers=[("retry-after", "9")]), Reply.json(overloaded, status=529)]
    with FakeUpstream(replies) as upstream, RunningProxy(anthropic_env(upstream)) as proxy:
        with pytest.raises(openai.RateLimitError) as raised:
            sdk(proxy).chat.completions.create(model="claude-sonnet-5", messages=[{"role": "user", "content": "x"}])
        assert raised.value.response.headers["retry-after"] == "9"
        with pytest.raises(openai.InternalServerError) as raised:
            sdk(proxy).chat.completions.create(model="claude-sonnet-5", messages=[{"role": "user", "content": "x"}])
        assert raised.value.status_code == 503
        assert "Overloaded" in raised.value.body["message"]


def test_auto_cache_puts_breakpoints_on_the_request_sent_upstream():
    """With ANTHROPIC_AUTO_CACHE on, the upstream request carries cache_control breakpoints (at most 4)."""
    with FakeUpstream([Reply.json(message([{"type": "text", "text": "ok"}]))] * 2) as upstream:
        with RunningProxy(anthropic_env(upstream)) as proxy:
            sdk(proxy).chat.completions.create(model="claude-sonnet-5", tools=[TOOL], messages=[{"role": "system", "content": "Long rules"}, {"role": "user", "content": "Hi"}])
        with RunningProxy(anthropic_env(upstream, ANTHROPIC_AUTO_CACHE="false")) as proxy:
            sdk(proxy).chat.completions.create(model="claude-sonnet-5", tools=[TOOL], messages=[{"role": "system", "content": "Long rules"}, {"role": "user", "content": "Hi"}])
    cached, plain = (json.dumps(r.json()).count('"cache_control"') for r in upstream.requests)
    assert 1 <= cached <= 4 and plain == 0


def test_models_list_serves_both_sdks():
    """GET /v1/models is an OpenAI list the openai SDK reads and an Anthropic page the anthropic SDK reads."""
    with FakeUpstream([]) as upstream, RunningProxy(anthropic_env(upstream, OPENAI_API_KEY="k", OPENAI_BASE_URL=upstream.url, MODEL_ALIASES="my-opus=claude-opus-4-1")) as proxy:
        openai_ids = [m.id for m in sdk(proxy).models.list()]
        client = anthropic.Anthropic(base_url=proxy.url, api_key="inbound", max_retries=0)
        anthropic_page = client.models.list(limit=1000)
    assert {"gpt-4.1", "gpt-4.1-mini", "my-opus", "anthropic/claude-sonnet-4-5"} <= set(openai_ids)
    claude_ids = [m.id for m in anthropic_page.data if m.id.startswith(("claude", "anthropic"))]
    assert "claude-sonnet-4-5" in claude_ids and all(m.type == "model" for m in anthropic_page.data)


def test_claude_names_on_the_openai_front_go_to_anthropic_others_to_the_preferred_provider():
    """claude-* goes to Anthropic unchanged; gpt-* goes to the preferred OpenAI provider."""
    from fake_upstream import completion

    with FakeUpstream([Reply.json(message([{"type": "text", "text": "claude"}]))]) as claude_up, FakeUpstream([Reply.json(completion("gpt"))]) as openai_up:
        env = anthropic_env(claude_up, OPENAI_API_KEY="k", OPENAI_BASE_URL=openai_up.url + "/v1")
        with RunningProxy(env) as proxy:
            client = sdk(proxy)
            first = client.chat.completions.create(model="claude-opus-4-1", messages=[{"role": "user", "content": "x"}])
            second = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "x"}])
    assert (first.choices[0].message.content, second.choices[0].message.content) == ("claude", "gpt")
    assert claude_up.requests[0].json()["model"] == "claude-opus-4-1"
