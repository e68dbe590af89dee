"""The official `anthropic` Python SDK, the client our users run, against the proxy and a fake OpenAI upstream."""

from __future__ import annotations

import json

import anthropic
import pytest

from fake_upstream import FakeUpstream, Reply, RunningProxy, chunk, completion, frames, text_stream
from loopback import request

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def client(proxy: RunningProxy, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="inbound-key", max_retries=0, timeout=10, **kwargs)


def env(upstream: FakeUpstream) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-up", "OPENAI_BASE_URL": upstream.url + "/v1", "PROXY_API_KEY": "inbound-key"}


def tool_call_stream() -> list[bytes]:
    """Two parallel tool calls whose arguments arrive split at awkward places."""
    return frames(
        chunk({"role": "assistant", "content": None}),
        chunk({"content": "Checking both."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": ' "Bergen"}'}}]}),
        chunk({}, "tool_calls"),
        chunk(None, usage={"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340, "prompt_tokens_details": {"cached_tokens": 100}}),
    )


def test_sdk_non_stream_message():
    """messages.create returns a typed Message with text, stop reason and usage."""
    with FakeUpstream([Reply.json(completion("Hi from upstream", prompt_tokens=12, completion_tokens=4))]) as upstream, RunningProxy(env(upstream)) as proxy:
        message = client(proxy).messages.create(model="claude-sonnet-5", max_tokens=64, messages=[{"role": "user", "content": "Hello"}])
    assert message.content[0].text == "Hi from upstream"
    assert message.model == "claude-sonnet-5" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)


def test_sdk_stream_text_and_final_usage():
    """messages.stream yields the text and a final message whose usage has the real input tokens."""
    with FakeUpstream([Reply.sse(text_stream(["Hel", "lo ", "wörld"], prompt_tokens=55, completion_tokens=3))]) as upstream, RunningProxy(env(upstream)) as proxy:
        with client(proxy).messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text == "Hello wörld"
    assert final.usage.input_tokens == 55 and final.usage.output_tokens == 3
    assert final.stop_reason == "end_turn"


def test_sdk_stream_parallel_tool_calls_then_tool_results_round_trip():
    """Two streamed tool calls arrive as tool_use blocks with parsed input; the next turn carries results upstream."""
    replies = [Reply.sse(tool_call_stream()), Reply.json(completion("Oslo 4°C, Bergen 7°C"))]
    with FakeUpstream(replies) as upstream, RunningProxy(env(upstream)) as proxy:
        sdk = client(proxy)
        messages = [{"role": "user", "content": "Weather in Oslo and Bergen?"}]
        with sdk.messages.stream(model="claude-sonnet-5", max_tokens=256, tools=[WEATHER_TOOL], messages=messages) as stream:
            first = stream.get_final_message()
        tool_uses = [b for b in first.content if b.type == "tool_use"]
        assert first.stop_reason == "tool_use"
        assert [(t.id, t.input) for t in tool_uses] == [("call_a", {"city": "Oslo"}), ("call_b", {"city": "Bergen"})]
        assert first.usage.input_tokens == 200 and first.usage.cache_read_input_tokens == 100
        messages += [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "4°C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "7°C"}]},
            ]},
        ]
        second = sdk.messages.create(model="claude-sonnet-5", max_tokens=256, tools=[WEATHER_TOOL], messages=messages)
    assert second.content[0].text == "Oslo 4°C, Bergen 7°C"
    sent = upstream.requests[1].json()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [t["id"] for t in sent[1]["tool_calls"]] == ["call_a", "call_b"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [("call_a", "4°C"), ("call_b", "7°C")]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}


def test_sdk_image_is_sent_upstream_as_a_data_uri():
    """A base64 image block reaches the upstream as an image_url data URI."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    with FakeUpstream([Reply.json(completion("a tiny image"))]) as upstream, RunningProxy(env(upstream)) as proxy:
        client(proxy).messages.create(model="claude-sonnet-5", max_tokens=64, messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}])
    parts = upstream.requests[0].json()["messages"][0]["content"]
    assert {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}} in parts


def test_sdk_count_tokens():
    """messages.count_tokens answers locally with a positive count that grows with tools."""
    with FakeUpstream([]) as upstream, RunningProxy(env(upstream)) as proxy:
        sdk = client(proxy)
        plain = sdk.messages.count_tokens(model="claude-sonnet-5", messages=[{"role": "user", "content": "Hello"}])
        with_tools = sdk.messages.count_tokens(model="claude-sonnet-5", tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "Hello"}])
    assert 0 < plain.input_tokens < with_tools.input_tokens
    assert upstream.requests == []


@pytest.mark.parametrize(
    "status, error_class",
    [(400, anthropic.BadRequestError), (401, anthropic.AuthenticationError), (404, anthropic.NotFoundError),
     (429, anthropic.RateLimitError), (500, anthropic.InternalServerError)],
)
def test_sdk_raises_the_matching_error_class(status, error_class):
    """Upstream errors reach the SDK as the exception class its users catch."""
    with FakeUpstream([Reply.json({"error": {"message": "nope"}}, status=status)]) as upstream, RunningProxy(env(upstream)) as proxy:
        with pytest.raises(error_class) as raised:
            client(proxy).messages.create(model="claude-sonnet-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert "nope" in str(raised.value)


def test_sdk_sees_a_wrong_key_as_authentication_error():
    """A wrong inbound key is the SDK's AuthenticationError, with the Anthropic envelope."""
    with FakeUpstream([]) as upstream, RunningProxy(env(upstream)) as proxy:
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(base_url=proxy.url, api_key="wrong", max_retries=0).messages.create(
                model="claude-sonnet-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )


def test_sdk_stream_broken_mid_way_raises_instead_of_returning_a_truncated_answer():
    """A stream the upstream breaks makes the SDK raise, so no truncated answer is kept."""
    reply = Reply.sse(frames(chunk({"role": "assistant", "content": "half an ans"}), done=False), break_after_chunks=True)
    with FakeUpstream([reply]) as upstream, RunningProxy(env(upstream)) as proxy:
        with pytest.raises(anthropic.APIStatusError):
            with client(proxy).messages.stream(model="claude-sonnet-5", max_tokens=64, messages=[{"role": "user", "content": "x"}]) as stream:
                stream.get_final_message()


def test_claude_code_shaped_request_is_accepted_and_cleaned():
    """A Claude Code-like request (system blocks, system-role turn, adaptive thinking, betas) is translated cleanly."""
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Available agents: general-purpose"},
        ],
        "tools": [{
            "name": "Bash",
            "description": "Run a command",
            "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
                             "properties": {"command": {"type": "string"}, "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991}},
                             "required": ["command"]},
        }, {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "metadata": {"user_id": json.dumps({"device_id": "abc", "session_id": "s1"})},
    }
    headers = {"anthropic-beta": "interleaved-thinking-2025-05-14,context-management-2025-06-27", "x-api-key": "inbound-key",
               "anthropic-version": "2023-06-01", "user-agent": "claude-cli/2.1.0"}
    with FakeUpstream([Reply.sse(text_stream(["done"]))]) as upstream, RunningProxy(dict(env(upstream), BIG_MODEL="gpt-4.1")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(body, stream=True), headers)
        events = answer.events()
    assert answer.status == 200 and events[-1][0] == "message_stop"
    sent = upstream.requests[0].json()
    assert sent["model"] == "gpt-4.1"
    assert not {"thinking", "output_config", "context_management", "metadata", "system"} & set(sent)
    assert [t["function"]["name"] for t in sent["tools"]] == ["Bash"]
    assert all(m["role"] in ("system", "user", "assistant", "tool") for m in sent["messages"])
    assert "Available agents" in json.dumps(sent["messages"])
