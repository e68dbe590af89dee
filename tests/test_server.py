"""The server over real sockets on 127.0.0.1: endpoints, auth, errors, streaming, disconnects.

The upstream is the in-repo FakeUpstream; the clients are tests/loopback.py's `request` (the
standard library's http.client, an independent HTTP implementation) and raw sockets where the bytes
matter.
"""

from __future__ import annotations

import http.client
import json
import socket
import time

from fake_upstream import FakeUpstream, Reply, RunningProxy, chunk, completion, frames, text_stream
from loopback import free_port, request

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}


def openai_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    env = {"OPENAI_API_KEY": "sk-upstream-secret", "OPENAI_BASE_URL": upstream.url + "/v1"}
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------
# Small endpoints and routing of paths
# ---------------------------------------------------------------------------------------------


def test_health_answers_without_auth():
    """GET /health is 200 JSON even when PROXY_API_KEY is set."""
    with RunningProxy({"PROXY_API_KEY": "inbound"}) as proxy:
        answer = request(proxy, "GET", "/health")
    assert answer.status == 200 and answer.body["status"] == "ok"


def test_root_answers_get_and_head():
    """Claude Code sends HEAD / before it starts; GET / and HEAD / are both 200."""
    with RunningProxy({}) as proxy:
        assert request(proxy, "GET", "/").status == 200
        assert request(proxy, "HEAD", "/").status == 200


def test_unknown_path_is_404_in_anthropic_shape():
    """An unknown path gets a 404 with the Anthropic error envelope."""
    with RunningProxy({}) as proxy:
        answer = request(proxy, "GET", "/nope")
    assert answer.status == 404
    assert answer.body["type"] == "error" and answer.body["error"]["type"] == "not_found_error"


def test_event_logging_is_answered_quietly():
    """Claude Code's telemetry POST gets a 204, not an error."""
    with RunningProxy({}) as proxy:
        assert request(proxy, "POST", "/api/event_logging/batch", {"events": []}).status == 204


def test_query_string_is_ignored_when_routing():
    """POST /v1/messages?beta=true reaches the messages handler."""
    with FakeUpstream([Reply.json(completion("ok"))]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages?beta=true", MESSAGE)
    assert answer.status == 200 and answer.body["content"][0]["text"] == "ok"


def test_count_tokens_answers_locally_with_query_string():
    """count_tokens returns a positive estimate with no upstream call."""
    with FakeUpstream([]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages/count_tokens?beta=true", {"model": "x", "messages": [{"role": "user", "content": "hello world"}]})
    assert answer.status == 200 and answer.body["input_tokens"] > 0
    assert upstream.requests == []


# ---------------------------------------------------------------------------------------------
# Inbound auth
# ---------------------------------------------------------------------------------------------


def test_auth_rejects_missing_and_wrong_keys():
    """With PROXY_API_KEY set, /v1/* without a valid key is 401 authentication_error."""
    with RunningProxy({"PROXY_API_KEY": "k1,k2"}) as proxy:
        for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}):
            answer = request(proxy, "POST", "/v1/messages/count_tokens", {"messages": []}, headers)
            assert answer.status == 401 and answer.body["error"]["type"] == "authentication_error"


def test_auth_accepts_x_api_key_and_bearer_from_the_list():
    """Any key of the comma-separated list works, as x-api-key or as a Bearer token."""
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    with RunningProxy({"PROXY_API_KEY": "k1, k2"}) as proxy:
        assert request(proxy, "POST", "/v1/messages/count_tokens", body, {"x-api-key": "k1"}).status == 200
        assert request(proxy, "POST", "/v1/messages/count_tokens", body, {"authorization": "Bearer k2"}).status == 200


# ---------------------------------------------------------------------------------------------
# Messages: translation through the server
# ---------------------------------------------------------------------------------------------


def test_message_is_translated_routed_and_answered_with_the_requested_model_name():
    """sonnet maps to MIDDLE_MODEL upstream; the reply names the model the client asked for."""
    with FakeUpstream([Reply.json(completion("Hello there", prompt_tokens=20, completion_tokens=5))]) as upstream, RunningProxy(
        openai_env(upstream, BIG_MODEL="big-one", MIDDLE_MODEL="middle-one", SMALL_MODEL="small-one")
    ) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
    assert answer.status == 200
    assert answer.body["model"] == "claude-sonnet-4-5"
    assert answer.body["content"] == [{"type": "text", "text": "Hello there"}]
    assert answer.body["stop_reason"] == "end_turn"
    assert answer.body["usage"]["input_tokens"] == 20 and answer.body["usage"]["output_tokens"] == 5
    assert answer.headers["request-id"].startswith("req_")
    sent = upstream.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-upstream-secret"
    assert sent.json()["model"] == "middle-one"


def test_family_names_map_to_their_tiers():
    """haiku goes to SMALL_MODEL, opus to BIG_MODEL, openai/name unchanged, other names pass through."""
    cases = {"claude-3-5-haiku-latest": "small-one", "claude-opus-4-1": "big-one", "openai/gpt-9": "gpt-9", "my-model": "my-model"}
    replies = [Reply.json(completion("x")) for _ in cases]
    with FakeUpstream(replies) as upstream, RunningProxy(openai_env(upstream, BIG_MODEL="big-one", SMALL_MODEL="small-one")) as proxy:
        for requested in cases:
            assert request(proxy, "POST", "/v1/messages", dict(MESSAGE, model=requested)).status == 200
    assert [r.json()["model"] for r in upstream.requests] == list(cases.values())


def test_upstream_connections_are_kept_alive_and_reused():
    """Two sequential requests use one pooled upstream connection."""
    with FakeUpstream([Reply.json(completion("a")), Reply.json(completion("b"))]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        request(proxy, "POST", "/v1/messages", MESSAGE)
        request(proxy, "POST", "/v1/messages", MESSAGE)
    assert upstream.connections_opened == 1


def test_client_keep_alive_serves_several_requests_on_one_connection():
    """Two requests on one client connection, the second with a chunked body."""
    with FakeUpstream([Reply.json(completion("a")), Reply.json(completion("b"))]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("POST", "/v1/messages", body=json.dumps(MESSAGE), headers={"content-type": "application/json"})
        first = json.loads(conn.getresponse().read())
        conn.request("POST", "/v1/messages", body=iter([json.dumps(MESSAGE).encode()]), headers={"content-type": "application/json"}, encode_chunked=True)
        second = json.loads(conn.getresponse().read())
        conn.close()
    assert first["content"][0]["text"] == "a" and second["content"][0]["text"] == "b"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_invalid_json_and_missing_fields_are_400_naming_the_field():
    """Bad JSON, and missing model / messages / max_tokens, are 400 invalid_request_error."""
    with RunningProxy({}) as proxy:
        answer = request(proxy, "POST", "/v1/messages", b"{not json")
        assert answer.status == 400 and answer.body["error"]["type"] == "invalid_request_error"
        for field in ("model", "messages", "max_tokens"):
            broken = {k: v for k, v in MESSAGE.items() if k != field}
            answer = request(proxy, "POST", "/v1/messages", broken)
            assert answer.status == 400, field
            assert field in answer.body["error"]["message"]


def test_oversized_body_is_413():
    """A body larger than MAX_REQUEST_BYTES is refused with 413 request_too_large."""
    with RunningProxy({"MAX_REQUEST_BYTES": "2048"}) as proxy:
        big = dict(MESSAGE, messages=[{"role": "user", "content": "x" * 5000}])
        answer = request(proxy, "POST", "/v1/messages", big)
    assert answer.status == 413 and answer.body["error"]["type"] == "request_too_large"


def test_upstream_errors_keep_their_meaning():
    """Upstream 401/403/404/429/500/503/529 keep their status; 429 passes retry-after on."""
    cases = [
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ]
    replies = [Reply.json({"error": {"message": f"boom {s}"}}, status=s, headers=[("retry-after", "7")]) for s, _ in cases]
    with FakeUpstream(replies) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        for status, error_type in cases:
            answer = request(proxy, "POST", "/v1/messages", MESSAGE)
            assert answer.status == status
            assert answer.body["error"]["type"] == error_type
            assert f"boom {status}" in answer.body["error"]["message"]
            assert ("retry-after" in answer.headers) == (status == 429)


def test_context_length_error_tells_claude_code_to_compact():
    """An upstream context_length_exceeded becomes a 400 containing 'prompt is too long'."""
    error = {"error": {"message": "This model's maximum context length is 128000 tokens.", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    with FakeUpstream([Reply.json(error, status=400)]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
    assert answer.status == 400 and "prompt is too long" in answer.body["error"]["message"]


def test_unreachable_upstream_is_502():
    """A refused connection to the upstream is a 502 in the Anthropic shape."""
    with RunningProxy({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
    assert answer.status == 502 and answer.body["type"] == "error"


def test_upstream_timeout_is_504():
    """An upstream silent for longer than READ_TIMEOUT is a 504 timeout_error."""
    with FakeUpstream([Reply(delay_before_head=3, body=b"{}")]) as upstream, RunningProxy(openai_env(upstream, READ_TIMEOUT="0.3")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
    assert answer.status == 504 and answer.body["error"]["type"] == "timeout_error"


def test_route_to_unconfigured_provider_names_the_variables():
    """openai/model without OpenAI configured is a 400 naming OPENAI_API_KEY."""
    with RunningProxy({}) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="openai/gpt-4.1"))
    assert answer.status == 400 and "OPENAI_API_KEY" in answer.body["error"]["message"]


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------


def test_stream_is_relayed_as_anthropic_events_with_real_input_tokens():
    """A streamed answer arrives as the exact Anthropic event sequence; message_delta has input_tokens."""
    with FakeUpstream([Reply.sse(text_stream(["Hel", "lo"], prompt_tokens=42, completion_tokens=3))]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
    assert answer.status == 200
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert events[-2][1]["usage"]["input_tokens"] == 42
    assert upstream.requests[0].json()["stream_options"] == {"include_usage": True}


def test_quick_upstream_error_on_a_stream_keeps_its_status():
    """A 429 before any stream byte is sent as a real HTTP 429, not an event inside a 200."""
    with FakeUpstream([Reply.json({"error": {"message": "slow down"}}, status=429, headers=[("retry-after", "3")])]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
    assert answer.status == 429 and answer.body["error"]["type"] == "rate_limit_error"


def test_pings_flow_while_the_upstream_is_silent():
    """With PING_INTERVAL=0.2 and a 0.7 s silent upstream, ping events arrive before the text."""
    reply = Reply.sse(text_stream(["late"]), delay_before_head=0.7)
    with FakeUpstream([reply]) as upstream, RunningProxy(openai_env(upstream, PING_INTERVAL="0.2")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
    names = [name for name, _ in events]
    assert answer.status == 200
    assert names[0] == "ping" and names.count("ping") >= 2
    assert names[-1] == "message_stop"


def test_broken_upstream_stream_ends_with_an_error_event():
    """An upstream that drops the connection mid-stream yields an error event, not a fake end_turn."""
    reply = Reply.sse(frames(chunk({"role": "assistant", "content": "par"}), chunk({"content": "tial"}), done=False), break_after_chunks=True)
    with FakeUpstream([reply]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
    names = [name for name, _ in events]
    assert answer.status == 200
    assert names[-1] == "error"
    assert "message_delta" not in names


def test_client_disconnect_mid_stream_cancels_the_upstream_request():
    """When the client leaves mid-stream, the upstream connection is closed and not pooled."""
    reply = Reply.sse(text_stream(["a"] * 3), delay_between_chunks=0.3, stall_after_chunks=5)
    with FakeUpstream([reply]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port))
        body = json.dumps(dict(MESSAGE, stream=True)).encode()
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while b"message_start" not in received:
            received += sock.recv(65536)
        sock.close()
        started = time.monotonic()
        assert upstream.client_went_away.wait(2)
        assert time.monotonic() - started < 1.5
        assert proxy.wait_for(lambda: proxy.pool_stats()["active"] == 0 and proxy.pool_stats()["idle"] == 0)


def test_client_disconnect_before_the_first_token_cancels_the_upstream_request():
    """A client that leaves while the upstream is still thinking stops the upstream request too."""
    with FakeUpstream([Reply(delay_before_head=5, body=b"{}")]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port))
        body = json.dumps(MESSAGE).encode()
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        assert proxy.wait_for(lambda: len(upstream.requests) == 1)
        sock.close()
        assert upstream.client_went_away.wait(1.5)


# ---------------------------------------------------------------------------------------------
# The echo provider
# ---------------------------------------------------------------------------------------------


def test_echo_answers_when_no_upstream_is_configured():
    """With no provider configured the proxy still answers, saying it is the echo provider and what to set."""
    with RunningProxy({}) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        events = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True)).events()
    text = answer.body["content"][0]["text"]
    assert answer.status == 200 and "echo provider" in text and "OPENAI_API_KEY" in text
    streamed = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert streamed == text


def test_echo_model_prefix_selects_echo_even_with_a_real_provider():
    """model echo/anything is answered by the echo provider without calling the upstream."""
    with FakeUpstream([]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="echo/test"))
    assert answer.status == 200 and "echo provider" in answer.body["content"][0]["text"]
    assert upstream.requests == []
