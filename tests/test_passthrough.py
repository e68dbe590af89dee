"""Passthrough: when client and provider speak the same dialect, bytes go through untouched."""

from __future__ import annotations

import json

from fake_upstream import FakeUpstream, Reply, RunningProxy, chunk, completion, frames
from loopback import request
from test_openai_front import anthropic_sse, message

ANTHROPIC_REQUEST = (
    b'{"model":"claude-sonnet-5","max_tokens":64,"stream":false,"messages":[{"role":"user","content":[{"type":"text",'
    b'"text":"Hi","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":[{"type":"thinking",'
    b'"thinking":"t","signature":"SIG=="}]}],"context_management":{"edits":[]},  "weird_spacing" : 1}'
)


def passthrough_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    env = {"ANTHROPIC_API_KEY": "sk-ant-upstream", "ANTHROPIC_BASE_URL": upstream.url, "PREFERRED_PROVIDER": "anthropic", "PROXY_API_KEY": "inbound"}
    env.update(extra)
    return env


CLIENT_HEADERS = {
    "x-api-key": "inbound",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "interleaved-thinking-2025-05-14",
    "x-evil": "smuggled",
    "content-type": "application/json",
}


def test_anthropic_to_anthropic_request_and_response_bytes_are_untouched():
    """The request body reaches Anthropic byte for byte; the response body comes back byte for byte."""
    answer = json.dumps(message([{"type": "thinking", "thinking": "x", "signature": "S1"}, {"type": "text", "text": "Hi", "citations": []}])).encode() + b"  "
    reply = Reply(headers=[("content-type", "application/json"), ("anthropic-ratelimit-requests-remaining", "99")], body=answer)
    with FakeUpstream([reply]) as upstream, RunningProxy(passthrough_env(upstream)) as proxy:
        response = request(proxy, "POST", "/v1/messages", ANTHROPIC_REQUEST, CLIENT_HEADERS)
    assert response.status == 200 and response.raw == answer
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "99"
    sent = upstream.requests[0]
    assert sent.body == ANTHROPIC_REQUEST
    assert sent.headers["x-api-key"] == "sk-ant-upstream"
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "x-evil" not in sent.headers


def test_anthropic_passthrough_stream_bytes_are_untouched():
    """Every stream byte (signatures, citations, unknown events) is relayed exactly; usage still logged."""
    events = anthropic_sse(
        {"type": "message_start", "message": message([], stop_reason=None, input_tokens=77)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCkYIARgCKkD"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "some_future_event", "x": 1},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 12}},
        {"type": "message_stop"},
    )
    # Split one event across two network writes to prove the relay does not re-frame.
    pieces = [events[0][:10], events[0][10:], *events[1:]]
    with FakeUpstream([Reply.sse(pieces)]) as upstream, RunningProxy(passthrough_env(upstream)) as proxy:
        response = request(proxy, "POST", "/v1/messages", ANTHROPIC_REQUEST.replace(b'"stream":false', b'"stream":true'), CLIENT_HEADERS)
        stats = proxy.pool_stats()
    assert response.status == 200 and response.raw == b"".join(events)
    assert stats["idle"] == 1


def test_passthrough_replaces_only_the_model_when_routing_renames_it():
    """A routed name change (an alias: on Anthropic the tiers never rename) rewrites the model field and nothing else."""
    with FakeUpstream([Reply.json(message([{"type": "text", "text": "ok"}]))]) as upstream, RunningProxy(passthrough_env(upstream, MODEL_ALIASES="claude-opus-4-8=claude-opus-4-1")) as proxy:
        renamed = json.loads(ANTHROPIC_REQUEST)
        renamed["model"] = "claude-opus-4-8"
        request(proxy, "POST", "/v1/messages", json.dumps(renamed).encode(), CLIENT_HEADERS)
    sent = upstream.requests[0].json()
    assert sent.pop("model") == "claude-opus-4-1"
    renamed.pop("model")
    assert sent == renamed


def test_passthrough_errors_keep_status_and_body():
    """An Anthropic error response comes back with its own status and body, untouched."""
    error = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with FakeUpstream([Reply(status=529, body=error)]) as upstream, RunningProxy(passthrough_env(upstream)) as proxy:
        response = request(proxy, "POST", "/v1/messages", ANTHROPIC_REQUEST, CLIENT_HEADERS)
    assert response.status == 529 and response.raw == error


def test_count_tokens_is_forwarded_for_exact_counts_and_falls_back_to_the_estimate():
    """count_tokens goes to Anthropic's endpoint; when that fails the local estimate answers."""
    body = b'{"model":"claude-sonnet-5","messages":[{"role":"user","content":"hello there"}]}'
    replies = [Reply(body=b'{"input_tokens":4242}'), Reply(status=500, body=b"{}")]
    with FakeUpstream(replies) as upstream, RunningProxy(passthrough_env(upstream)) as proxy:
        first = request(proxy, "POST", "/v1/messages/count_tokens?beta=true", body, CLIENT_HEADERS)
        second = request(proxy, "POST", "/v1/messages/count_tokens", body, CLIENT_HEADERS)
    assert first.json() == {"input_tokens": 4242}
    assert second.status == 200 and 0 < second.json()["input_tokens"] < 100
    assert [r.path for r in upstream.requests] == ["/v1/messages/count_tokens"] * 2


def test_openai_to_openai_bytes_are_untouched_both_ways():
    """An OpenAI client on an OpenAI provider: the body goes up unchanged, answer and stream come back unchanged."""
    chat_request = b'{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"logprobs":true,"n":2,"seed":7}'
    answer = json.dumps(completion("plain")).encode()
    stream = frames(chunk({"role": "assistant", "content": ""}), chunk({"content": "a"}), chunk({}, "stop"))
    with FakeUpstream([Reply(body=answer), Reply.sse(stream)]) as upstream, RunningProxy(
        {"OPENAI_API_KEY": "sk-up", "OPENAI_BASE_URL": upstream.url + "/v1"}
    ) as proxy:
        headers = {"content-type": "application/json", "authorization": "Bearer whatever"}
        first = request(proxy, "POST", "/v1/chat/completions", chat_request, headers)
        second = request(proxy, "POST", "/v1/chat/completions", chat_request.replace(b'"seed":7', b'"stream":true'), headers)
    assert first.raw == answer and second.raw == b"".join(stream)
    assert upstream.requests[0].body == chat_request
    assert upstream.requests[0].headers["authorization"] == "Bearer sk-up"


def test_passthrough_stream_heartbeats_only_between_events():
    """While a passthrough stream is silent, pings go out only at event boundaries."""
    events = anthropic_sse(
        {"type": "message_start", "message": message([], stop_reason=None)},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 1}},
        {"type": "message_stop"},
    )
    # The first event arrives in two halves with a silence in the middle, then another silence.
    pieces = [events[0][:20], events[0][20:], events[1], events[2]]
    reply = Reply.sse(pieces, delay_between_chunks=0.35)
    with FakeUpstream([reply]) as upstream, RunningProxy(passthrough_env(upstream, PING_INTERVAL="0.1")) as proxy:
        response = request(proxy, "POST", "/v1/messages", ANTHROPIC_REQUEST.replace(b'"stream":false', b'"stream":true'), CLIENT_HEADERS)
    assert response.status == 200
    assert response.raw.replace(b'event: ping\ndata: {"type":"ping"}\n\n', b"") == b"".join(events)
    assert events[0] in response.raw  # never split by a ping
    assert response.raw.count(b"event: ping") >= 2
