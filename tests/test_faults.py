"""Fault injection on loopback: broken upstreams, hostile clients, and a storm of streams that leave.

Each fault checks three things. The client gets the right outcome in the right shape: a status and
the front's error envelope before a stream started, the front's stream error after. It gets it
within the configured bound, never a hang: limits are set to fractions of a second and timing
assertions have a ceiling (and a floor where waiting out the bound is the point), so a limit that
stopped being enforced fails its test instead of passing late. And afterwards the server is whole (`assert_recovered`): /health answers,
no upstream connection is lent out (idle ones only where the exchange ended cleanly), and a normal
request is served.

Proxy bugs this suite found were fixed; each has its test here.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import random
import threading
import time


import loopback
from fake_upstream import FakeUpstream, Reply, RunningProxy, chunk, completion, frames, text_stream
from faults_helpers import CHAT, MESSAGE, CountingEvent, RawUpstream, assert_recovered, http_response_bytes, rss_bytes
from loopback import READ_DEADLINE_SECONDS, RawClient, free_port, http_request_bytes, parse_response

# Every request of this suite has the raw clients' read deadline, so a fault that hangs fails fast.
request = functools.partial(loopback.request, timeout=READ_DEADLINE_SECONDS)

# Slack allowed on top of a configured bound before a late answer counts as the bound not working.
MARGIN_SECONDS = 0.6
# A floor just under a bound: an answer earlier than this did not wait for the bound at all.
EARLY_SECONDS = 0.05


def openai_env(upstream: FakeUpstream | RawUpstream, **extra: str) -> dict[str, str]:
    """An OpenAI-compatible upstream with short timeouts, so that no fault can hang a test for long."""
    env = {"OPENAI_API_KEY": "sk-upstream-secret", "OPENAI_BASE_URL": upstream.url + "/v1", "CONNECT_TIMEOUT": "1", "READ_TIMEOUT": "2"}
    env.update(extra)
    return env


def both_env(openai_upstream: FakeUpstream, anthropic_upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    """OpenAI preferred (Anthropic-front traffic is translated to it); claude-* on the OpenAI front goes to Anthropic."""
    env = openai_env(openai_upstream, ANTHROPIC_API_KEY="sk-ant-upstream", ANTHROPIC_BASE_URL=anthropic_upstream.url)
    env.update(extra)
    return env


def anthropic_message(text: str) -> dict:
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake", "stop_reason": "end_turn",
        "stop_sequence": None, "content": [{"type": "text", "text": text}], "usage": {"input_tokens": 3, "output_tokens": 2},
    }


def anthropic_sse(*events: dict) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def names(events: list[tuple[str, object]]) -> list[str]:
    return [name for name, _ in events]


def text_of(events: list[tuple[str, object]]) -> str:
    return "".join(data["delta"].get("text", "") for name, data in events if name == "content_block_delta")


def metric(proxy: RunningProxy, name: str, **labels: str) -> float:
    """A counter or gauge, read on the proxy's own loop."""
    async def read() -> float:
        return proxy.server.gateway.metrics.value(name, **labels)

    return proxy.call(read)


# =============================================================================================
# Upstream faults: the upstream is down, speaks garbage, breaks or stalls
# =============================================================================================


def test_refused_upstream_is_502_on_both_fronts_after_a_quick_retry():
    """A refused connection is retried once (MAX_RETRIES=1) and then answered 502 in each front's envelope, fast."""
    port = free_port()
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "MAX_RETRIES": "1"}
    with RunningProxy(env) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 502 and answer.body["type"] == "error" and answer.body["error"]["type"] == "api_error"
        assert "refused" in answer.body["error"]["message"]
        assert answer.elapsed < 0.5 + MARGIN_SECONDS  # one backoff of at most 0.5 s
        answer = request(proxy, "POST", "/v1/chat/completions", CHAT)
        assert answer.status == 502 and answer.body["error"]["type"] == "server_error" and "refused" in answer.body["error"]["message"]
        assert answer.elapsed < 0.5 + MARGIN_SECONDS
        assert metric(proxy, "switchboard_upstream_retries_total", provider="openai", reason="connect") == 2
        assert proxy.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
        assert_recovered(proxy)


def test_garbage_instead_of_http_is_502_and_the_socket_is_not_pooled():
    """An upstream that answers with bytes that are not HTTP gets 502 on both fronts, stream or not."""
    garbage = b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe not an HTTP response\r\n\r\n"
    with RawUpstream([garbage] * 3) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 502 and answer.body["error"]["type"] == "api_error"
        assert "invalid or incomplete HTTP response" in answer.body["error"]["message"]
        # Before any stream byte the failure is still a plain response, not an event inside a 200.
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        assert answer.status == 502 and answer.body["error"]["type"] == "api_error"
        answer = request(proxy, "POST", "/v1/chat/completions", CHAT)
        assert answer.status == 502 and answer.body["error"]["type"] == "server_error"
        assert proxy.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
        assert upstream.connections == 3
        assert_recovered(proxy, upstream)


def test_body_shorter_than_its_content_length_is_502():
    """An upstream that closes before sending the body its Content-Length promised is a 502, not a short answer."""
    cut = http_response_bytes(200, json.dumps(completion("whole")).encode())[:-20]
    with RawUpstream([cut]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 502 and answer.body["error"]["type"] == "api_error"
        assert "before the response body was complete" in answer.body["error"]["message"]
        assert proxy.pool_stats()["idle"] == 0
        assert_recovered(proxy, upstream)


def test_invalid_json_answer_is_502_on_both_fronts_and_the_clean_connection_is_pooled():
    """A 200 whose body is not JSON is a 502 in the front's envelope; the exchange ended cleanly, so it is pooled."""
    with FakeUpstream([Reply(body=b'{"id": "chatcmpl-1", "choices": [tru')]) as openai_up, \
         FakeUpstream([Reply(body=b"<html>502 Bad Gateway</html>")]) as anthropic_up, \
         RunningProxy(both_env(openai_up, anthropic_up)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 502 and answer.body["type"] == "error" and answer.body["error"]["type"] == "api_error"
        assert "not JSON" in answer.body["error"]["message"]
        answer = request(proxy, "POST", "/v1/chat/completions", dict(CHAT, model="claude-sonnet-4-5"))
        assert answer.status == 502 and answer.body["error"]["type"] == "server_error" and "not JSON" in answer.body["error"]["message"]
        stats = proxy.pool_stats()
        assert stats["active"] == 0 and stats["idle"] == 2  # one clean connection per upstream
        assert_recovered(proxy, openai_up)


def test_invalid_json_inside_a_stream_ends_it_with_an_error_event_on_both_fronts():
    """A stream chunk that is not JSON ends the stream with the front's error, and nothing after it is relayed."""
    openai_frames = frames(chunk({"role": "assistant", "content": "par"}), done=False) + [b"data: {not json}\n\n"] + text_stream(["AFTER"])
    anthropic_frames = anthropic_sse(
        {"type": "message_start", "message": dict(anthropic_message(""), content=[], stop_reason=None)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}},
    ) + [b"event: content_block_delta\ndata: {not json}\n\n"] + anthropic_sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "AFTER"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    )
    with FakeUpstream([Reply.sse(openai_frames)]) as openai_up, FakeUpstream([Reply.sse(anthropic_frames)]) as anthropic_up, \
         RunningProxy(both_env(openai_up, anthropic_up)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
        assert answer.status == 200
        assert names(events)[-1] == "error" and events[-1][1]["error"]["type"] == "api_error"
        assert "message_delta" not in names(events) and text_of(events) == "par"
        answer = request(proxy, "POST", "/v1/chat/completions", dict(CHAT, model="claude-sonnet-4-5", stream=True))
        events = answer.events()
        assert answer.status == 200
        assert "error" in events[-1][1] and events[-1][1]["error"]["message"]
        assert not any(isinstance(d, dict) and "AFTER" in json.dumps(d) for _, d in events)
        assert proxy.wait_for(lambda: proxy.pool_stats()["active"] == 0)
        assert_recovered(proxy, openai_up)


def test_stream_cut_mid_event_ends_with_an_error_event_not_end_turn():
    """A body that ends in the middle of an SSE event is an error event, never a made-up end_turn."""
    cut = frames(chunk({"role": "assistant", "content": "par"}), done=False) + [b'data: {"id": "chatcmpl-fake", "obj']
    with FakeUpstream([Reply.sse(cut)]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
        assert answer.status == 200
        assert names(events)[-1] == "error"
        assert "message_delta" not in names(events) and "message_stop" not in names(events)
        assert_recovered(proxy, upstream)


def test_stream_ending_cleanly_without_a_finish_gets_a_well_formed_ending():
    """A body that ends cleanly after whole chunks, with no finish_reason or [DONE], still ends well-formed.

    The issue asks for this ("an upstream that ends without finish_reason still gets a well-formed
    ending"); PROTOCOLS.md 4.1 step 9 would make it an error. A body cut inside an event, or a broken
    connection, is an error event (the tests around this one).
    """
    truncated = frames(chunk({"role": "assistant", "content": "par"}), chunk({"content": "tial"}), done=False)
    with FakeUpstream([Reply.sse(truncated)]) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
    assert answer.status == 200
    assert names(events)[-2:] == ["message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn" and text_of(events) == "partial"


def test_reset_mid_stream_ends_with_an_error_event_and_the_connection_is_dropped():
    """An upstream that drops the connection mid-stream gives each front its stream error; nothing is pooled."""
    broken = frames(chunk({"role": "assistant", "content": "par"}), chunk({"content": "tial"}), done=False)
    replies = [Reply.sse(broken, break_after_chunks=True) for _ in range(2)]
    with FakeUpstream(replies) as upstream, RunningProxy(openai_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
        assert answer.status == 200 and answer.elapsed < 1
        assert names(events)[-1] == "error" and events[-1][1]["error"]["type"] == "api_error"
        assert "message_delta" not in names(events) and text_of(events) == "partial"
        answer = request(proxy, "POST", "/v1/chat/completions", dict(CHAT, stream=True))
        events = answer.events()
        assert answer.status == 200 and answer.elapsed < 1
        assert "error" in events[-1][1] and "[DONE]" not in [d for _, d in events]
        assert proxy.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
        assert_recovered(proxy, upstream)


def test_stall_before_headers_is_504_within_read_timeout_and_the_upstream_is_hung_up_on():
    """READ_TIMEOUT=0.3: an upstream silent before its head gets 504 timeout_error after ~0.3 s, stream or not."""
    replies = [Reply.sse(text_stream(["late"]), delay_before_head=5), Reply(body=b"{}", delay_before_head=5)]
    with FakeUpstream(replies) as upstream, RunningProxy(openai_env(upstream, READ_TIMEOUT="0.3")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        assert answer.status == 504 and answer.body["error"]["type"] == "timeout_error"
        assert 0.3 - EARLY_SECONDS <= answer.elapsed < 0.3 + MARGIN_SECONDS
        assert upstream.client_went_away.wait(1)
        answer = request(proxy, "POST", "/v1/chat/completions", CHAT)
        assert answer.status == 504 and answer.body["error"]["type"] == "timeout_error"
        assert 0.3 - EARLY_SECONDS <= answer.elapsed < 0.3 + MARGIN_SECONDS
        assert proxy.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
        assert_recovered(proxy, upstream)


STALL_READ_TIMEOUT = 1.0


def test_stall_mid_stream_ends_with_a_timeout_error_event_within_read_timeout():
    """An upstream that goes silent after two chunks ends each front's stream with a timeout error after READ_TIMEOUT.

    READ_TIMEOUT is 1 s, not less: it also bounds the wait for the response head, which a loaded CI
    machine has been seen to take over 0.3 s to deliver."""
    stalled = frames(chunk({"role": "assistant", "content": "par"}), chunk({"content": "tial"}), done=False)
    replies = [Reply.sse(stalled, stall_after_chunks=5) for _ in range(2)]
    with FakeUpstream(replies) as upstream, RunningProxy(openai_env(upstream, READ_TIMEOUT=str(STALL_READ_TIMEOUT))) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
        assert answer.status == 200 and STALL_READ_TIMEOUT - EARLY_SECONDS <= answer.elapsed < STALL_READ_TIMEOUT + MARGIN_SECONDS
        assert text_of(events) == "partial"
        assert names(events)[-1] == "error" and events[-1][1]["error"]["type"] == "timeout_error"
        answer = request(proxy, "POST", "/v1/chat/completions", dict(CHAT, stream=True))
        events = answer.events()
        assert answer.status == 200 and STALL_READ_TIMEOUT - EARLY_SECONDS <= answer.elapsed < STALL_READ_TIMEOUT + MARGIN_SECONDS
        assert events[-1][1]["error"]["type"] == "timeout_error"
        assert proxy.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
        assert_recovered(proxy, upstream)


# =============================================================================================
# Rate limits, overload, retries and fallbacks
# =============================================================================================


def test_429_retry_after_is_honoured_before_the_one_retry():
    """MAX_RETRIES=1: a 429 with retry-after: 1 is retried no sooner than 1 s later, and the retry's answer is returned."""
    arrivals: list[float] = []

    def script(received) -> Reply:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return Reply.json({"error": {"message": "slow down", "type": "rate_limit"}}, status=429, headers=[("retry-after", "1")])
        return Reply.json(completion("after the pause"))

    with FakeUpstream(script) as upstream, RunningProxy(openai_env(upstream, MAX_RETRIES="1")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 200 and answer.body["content"][0]["text"] == "after the pause"
        assert len(arrivals) == 2
        # Without honouring retry-after the backoff would be 0.25-0.5 s.
        assert 1.0 - 0.01 <= arrivals[1] - arrivals[0] < 1.0 + MARGIN_SECONDS
        assert metric(proxy, "switchboard_upstream_retries_total", provider="openai", reason="429") == 1
        assert_recovered(proxy)


def test_429_asking_for_longer_than_the_cap_goes_back_to_the_client_at_once():
    """A retry-after beyond the 30 s cap is not slept on: the 429 reaches the client at once, retry-after kept."""
    too_long = Reply.json({"error": {"message": "come back in a minute"}}, status=429, headers=[("retry-after", "60")])
    with FakeUpstream([too_long]) as upstream, RunningProxy(openai_env(upstream, MAX_RETRIES="2")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 429 and answer.body["error"]["type"] == "rate_limit_error"
        assert answer.headers["retry-after"] == "60"
        assert answer.elapsed < 0.5 and len(upstream.requests) == 1
        assert_recovered(proxy, upstream)


def test_quota_429_is_never_retried():
    """An insufficient_quota 429 is final: one upstream request, the 429 goes back with its message."""
    quota = Reply.json({"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}, status=429)
    with FakeUpstream([quota]) as upstream, RunningProxy(openai_env(upstream, MAX_RETRIES="2")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 429 and "quota" in answer.body["error"]["message"]
        assert answer.elapsed < 0.5 and len(upstream.requests) == 1
        assert_recovered(proxy, upstream)


def test_529_is_overloaded_on_the_anthropic_front_and_503_on_the_openai_front():
    """An upstream 529 is 529 overloaded_error for Anthropic clients (stream or not) and 503 for OpenAI clients."""
    def overloaded() -> Reply:
        return Reply.json({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, status=529)

    with FakeUpstream([overloaded(), overloaded()]) as openai_up, FakeUpstream([overloaded()]) as anthropic_up, \
         RunningProxy(both_env(openai_up, anthropic_up)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 529 and answer.body["type"] == "error" and answer.body["error"]["type"] == "overloaded_error"
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        assert answer.status == 529 and answer.body["error"]["type"] == "overloaded_error"
        answer = request(proxy, "POST", "/v1/chat/completions", dict(CHAT, model="claude-sonnet-4-5"))
        assert answer.status == 503 and answer.body["error"]["type"] == "server_error" and "Overloaded" in answer.body["error"]["message"]
        assert_recovered(proxy, openai_up)


def test_503_is_retried_and_the_retry_succeeds():
    """MAX_RETRIES=2: a 503 then a 200 gives the client the 200; one retry is counted."""
    unavailable = Reply.json({"error": {"message": "try again"}}, status=503)
    with FakeUpstream([unavailable, Reply.json(completion("second time lucky"))]) as upstream, \
         RunningProxy(openai_env(upstream, MAX_RETRIES="2")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 200 and answer.body["content"][0]["text"] == "second time lucky"
        assert len(upstream.requests) == 2 and answer.elapsed < 0.5 + MARGIN_SECONDS
        assert metric(proxy, "switchboard_upstream_retries_total", provider="openai", reason="503") == 1
        assert_recovered(proxy, upstream)


def test_fallback_model_answers_when_the_primary_fails(caplog):
    """FALLBACK_MODELS=anthropic/claude-fallback: a 503 from OpenAI is answered by Anthropic; log and metric say so."""
    caplog.set_level(logging.INFO, logger="switchboard.access")
    with FakeUpstream([Reply.json({"error": {"message": "down"}}, status=503)]) as openai_up, \
         FakeUpstream([Reply.json(anthropic_message("from the fallback"))]) as anthropic_up, \
         RunningProxy(both_env(openai_up, anthropic_up, FALLBACK_MODELS="anthropic/claude-fallback")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 200 and answer.body["content"][0]["text"] == "from the fallback"
        assert anthropic_up.requests[0].json()["model"] == "claude-fallback"
        assert metric(proxy, "switchboard_fallbacks_total", provider="anthropic") == 1
        assert proxy.wait_for(lambda: "fallback=1" in caplog.text)
        assert_recovered(proxy, openai_up)


def test_fallback_to_echo_serves_a_stream_when_the_primary_is_unreachable():
    """A refused primary on a stream falls back (before any content) to echo/x, and the stream completes."""
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "FALLBACK_MODELS": "echo/x"}
    with RunningProxy(env) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
        assert answer.status == 200 and names(events)[-1] == "message_stop" and "echo provider" in text_of(events)
        assert metric(proxy, "switchboard_fallbacks_total", provider="echo") == 1
        assert_recovered(proxy)


# =============================================================================================
# Concurrency limit, loops, total deadline
# =============================================================================================


def test_concurrency_limit_answers_overloaded_after_the_queue_timeout():
    """MAX_CONCURRENT_UPSTREAM=1, UPSTREAM_QUEUE_TIMEOUT=0.3: while one request is slow, others get 529 / 503
    after ~0.3 s without reaching the upstream; once it finished, the next one is served."""
    slow = Reply(body=json.dumps(completion("first")).encode(), delay_before_head=1.5)
    with FakeUpstream([slow]) as upstream, \
         RunningProxy(openai_env(upstream, MAX_CONCURRENT_UPSTREAM="1", UPSTREAM_QUEUE_TIMEOUT="0.3")) as proxy:
        results: dict[str, tuple] = {}
        first = threading.Thread(target=lambda: results.setdefault("first", request(proxy, "POST", "/v1/messages", MESSAGE)))
        first.start()
        assert proxy.wait_for(lambda: len(upstream.requests) == 1)
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status == 529 and answer.body["type"] == "error" and answer.body["error"]["type"] == "overloaded_error"
        assert 0.3 - EARLY_SECONDS <= answer.elapsed < 0.3 + MARGIN_SECONDS
        answer = request(proxy, "POST", "/v1/chat/completions", CHAT)
        assert answer.status == 503 and answer.body["error"]["code"] == "overloaded"
        assert 0.3 - EARLY_SECONDS <= answer.elapsed < 0.3 + MARGIN_SECONDS
        first.join(5)
        assert results["first"].status == 200 and results["first"].body["content"][0]["text"] == "first"
        assert len(upstream.requests) == 1  # the overloaded ones never left the proxy
        assert_recovered(proxy, upstream)


def test_a_base_url_pointing_at_the_proxy_itself_fails_fast_without_recursion():
    """OPENAI_BASE_URL = the proxy: the looped request is refused at its first hop (508 on the OpenAI front)."""
    port = free_port()
    env = {"PORT": str(port), "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "MAX_RETRIES": "2"}
    with RunningProxy(env) as proxy:
        answer = request(proxy, "POST", "/v1/chat/completions", CHAT)
        assert answer.status == 508 and "loop detected" in answer.body["error"]["message"]
        assert answer.elapsed < 0.5
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
        assert answer.status >= 500 and answer.body["type"] == "error" and "loop detected" in answer.body["error"]["message"]
        assert answer.elapsed < 0.5
        # Exactly one looped hop per client request: the proxy answered itself once each time, no recursion.
        assert metric(proxy, "switchboard_requests_total", front="chat", provider="-", model="-", status="508",
                      client="default", route_rule="default") == 2
        assert_recovered(proxy)


def test_a_loop_is_508_on_the_anthropic_front_too():
    """An Anthropic client whose request loops back through the proxy gets 508, as an OpenAI client does."""
    port = free_port()
    env = {"PORT": str(port), "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    with RunningProxy(env) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
    assert answer.status == 508 and "loop detected" in answer.body["error"]["message"]


def test_request_timeout_is_504_before_content_and_an_error_event_after():
    """REQUEST_TIMEOUT=0.5: a silent upstream gives 504; a slow stream that started ends with a timeout error event."""
    silent = Reply.sse(text_stream(["late"]), delay_before_head=5)
    dribbling = Reply.sse(text_stream(["tick"] * 30), delay_between_chunks=0.1)
    with FakeUpstream([silent, dribbling]) as upstream, RunningProxy(openai_env(upstream, REQUEST_TIMEOUT="0.5")) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        assert answer.status == 504 and answer.body["error"]["type"] == "timeout_error" and "REQUEST_TIMEOUT" in answer.body["error"]["message"]
        assert 0.5 - EARLY_SECONDS <= answer.elapsed < 0.5 + MARGIN_SECONDS
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, stream=True))
        events = answer.events()
        assert answer.status == 200 and 0.5 - EARLY_SECONDS <= answer.elapsed < 0.5 + MARGIN_SECONDS
        assert text_of(events).startswith("tick") and len(text_of(events)) < 4 * 30
        assert names(events)[-1] == "error" and events[-1][1]["error"]["type"] == "timeout_error"
        assert upstream.client_went_away.wait(1)
        assert proxy.wait_for(lambda: proxy.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}})
        assert_recovered(proxy, upstream)


# =============================================================================================
# Client faults over raw sockets
# =============================================================================================


def test_slowloris_head_gets_408_within_header_timeout_while_others_are_served():
    """HEADER_TIMEOUT=0.5: a head sent a byte at a time is cut off with 408 after ~0.5 s; /health stays fast meanwhile."""
    head = http_request_bytes("GET", "/health", headers=[("x-padding", "p" * 200)])
    with RunningProxy({"HEADER_TIMEOUT": "0.5"}) as proxy, RawClient(proxy.port) as slow:
        started = time.monotonic()
        dribbler = threading.Thread(target=slow.send_slowly, args=(head, 0.05, 5.0))
        dribbler.start()
        for _ in range(3):
            answer = request(proxy, "GET", "/health")
            assert answer.status == 200 and answer.elapsed < 0.2
        dribbler.join(6)
        response = slow.read_until_closed(2)
        assert response.status == 408 and response.closed
        assert response.json()["type"] == "error" and "HEADER_TIMEOUT" in response.json()["error"]["message"]
        assert 0.5 - EARLY_SECONDS <= slow.first_byte_at - started < 0.5 + MARGIN_SECONDS
        assert_recovered(proxy)


def test_slow_body_gets_408_within_body_timeout():
    """BODY_TIMEOUT=0.5: a body sent a byte at a time is cut off with 408 about 0.5 s after the head."""
    body = json.dumps(MESSAGE).encode()
    head = http_request_bytes("POST", "/v1/messages/count_tokens", headers=[("content-length", str(len(body)))])
    with RunningProxy({"BODY_TIMEOUT": "0.5"}) as proxy, RawClient(proxy.port) as slow:
        slow.send(head)
        started = time.monotonic()
        slow.send_slowly(body, 0.05, 5.0)
        response = slow.read_until_closed(2)
        assert response.status == 408 and response.closed and "BODY_TIMEOUT" in response.json()["error"]["message"]
        assert 0.5 - EARLY_SECONDS <= slow.first_byte_at - started < 0.5 + MARGIN_SECONDS
        assert_recovered(proxy)


def test_head_over_max_header_bytes_sent_in_pieces_is_431_and_closed():
    """MAX_HEADER_BYTES=2048: a 1.5 KB head is served, a 3 KB one arriving in two pieces gets 431 and a close."""
    with RunningProxy({"MAX_HEADER_BYTES": "2048"}) as proxy:
        with RawClient(proxy.port) as client:
            client.send(http_request_bytes("GET", "/health", headers=[("x-big", "a" * 1500)]))
            assert client.read_response().status == 200
        big = http_request_bytes("GET", "/health", headers=[("x-big", "a" * 3000)])
        with RawClient(proxy.port) as client:
            client.send(big[:2500])
            time.sleep(0.1)
            client.send(big[2500:])
            response = client.read_until_closed(2)
        assert response.status == 431 and response.closed and response.json()["type"] == "error"
        assert_recovered(proxy)


def test_head_over_max_header_bytes_in_one_write_is_431():
    """MAX_HEADER_BYTES=2048: a 3 KB head sent in one write gets 431 and a close."""
    with RunningProxy({"MAX_HEADER_BYTES": "2048"}) as proxy, RawClient(proxy.port) as client:
        client.send(http_request_bytes("GET", "/health", headers=[("x-big", "a" * 3000)]))
        response = client.read_until_closed(1)
    assert response.status == 431 and response.closed


def test_too_many_header_fields_is_431_and_closed():
    """MAX_HEADERS=10: ten header fields are served, eleven get 431 and a close."""
    with RunningProxy({"MAX_HEADERS": "10"}) as proxy:
        with RawClient(proxy.port) as client:  # host + 9
            client.send(http_request_bytes("GET", "/health", headers=[(f"x-h{i}", "v") for i in range(9)]))
            assert client.read_response().status == 200
        with RawClient(proxy.port) as client:  # host + 10
            client.send(http_request_bytes("GET", "/health", headers=[(f"x-h{i}", "v") for i in range(10)]))
            response = client.read_until_closed(2)
        assert response.status == 431 and response.closed and "MAX_HEADERS" in response.json()["error"]["message"]
        assert_recovered(proxy)


def test_request_line_over_8_kib_is_414_and_closed():
    """A request target over 8192 bytes gets 414 and a close; one just under is served."""
    with RunningProxy({}) as proxy:
        with RawClient(proxy.port) as client:
            client.send(http_request_bytes("GET", "/health?" + "a" * 8000))
            assert client.read_response().status == 200
        with RawClient(proxy.port) as client:
            client.send(http_request_bytes("GET", "/health?" + "a" * 8200))
            response = client.read_until_closed(2)
        assert response.status == 414 and response.closed and response.json()["type"] == "error"
        assert_recovered(proxy)


def test_declared_body_over_max_request_bytes_is_413_before_it_is_sent():
    """MAX_REQUEST_BYTES=2048: a Content-Length of 5000 gets 413 and a close at once, before any body byte."""
    with RunningProxy({"MAX_REQUEST_BYTES": "2048"}) as proxy:
        small = dict(MESSAGE, messages=[{"role": "user", "content": "x" * 1500}])
        assert request(proxy, "POST", "/v1/messages/count_tokens", small).status == 200
        with RawClient(proxy.port) as client:
            client.send(http_request_bytes("POST", "/v1/messages", headers=[("content-length", "5000")]))
            response = client.read_until_closed(1)
        assert response.status == 413 and response.closed and response.json()["error"]["type"] == "request_too_large"
        assert_recovered(proxy)


def test_chunked_body_over_max_request_bytes_is_413_and_closed():
    """MAX_REQUEST_BYTES=2048: an undeclared (chunked) body is cut off with 413 once it passes the limit."""
    with RunningProxy({"MAX_REQUEST_BYTES": "2048"}) as proxy, RawClient(proxy.port) as client:
        client.send(http_request_bytes("POST", "/v1/messages", headers=[("transfer-encoding", "chunked")]))
        for _ in range(5):
            if not client.send(b"3e8\r\n" + b"x" * 1000 + b"\r\n"):
                break
            time.sleep(0.02)
        response = client.read_until_closed(2)
        assert response.status == 413 and response.closed and response.json()["error"]["type"] == "request_too_large"
        assert_recovered(proxy)


def test_garbage_request_is_400_and_closed():
    """Bytes that are not HTTP get 400 invalid_request_error and a close; other connections are unaffected."""
    with RunningProxy({}) as proxy, RawClient(proxy.port) as client:
        client.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello to a plain port\r\n\r\n")
        response = client.read_until_closed(2)
        assert response.status == 400 and response.closed
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert_recovered(proxy)


def test_bad_chunk_size_is_400_and_closed():
    """A chunked body with a chunk size that is not hex gets 400 invalid_request_error and a close."""
    with RunningProxy({}) as proxy, RawClient(proxy.port) as client:
        client.send(http_request_bytes("POST", "/v1/messages", headers=[("transfer-encoding", "chunked")]) + b"zz\r\nabc\r\n0\r\n\r\n")
        response = client.read_until_closed(2)
    assert response.status == 400 and response.closed
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_content_length_with_transfer_encoding_is_400_and_closed():
    """Conflicting Content-Length and Transfer-Encoding get 400 and a close, never a served request."""
    body = json.dumps({"model": "x", "messages": [{"role": "user", "content": "hi"}]}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    headers = [("transfer-encoding", "chunked"), ("content-length", str(len(body)))]
    with RunningProxy({}) as proxy, RawClient(proxy.port) as client:
        client.send(http_request_bytes("POST", "/v1/messages/count_tokens", headers=headers) + chunked)
        response = client.read_until_closed(1)
    assert response.status == 400 and response.closed


def test_connections_over_max_connections_get_503_and_close():
    """MAX_CONNECTIONS=3: with three open, a fourth gets a 503 and a close; after one leaves, a new one is served."""
    with RunningProxy({"MAX_CONNECTIONS": "3"}) as proxy:
        held = [RawClient(proxy.port) for _ in range(3)]
        try:
            assert proxy.wait_for(lambda: metric(proxy, "switchboard_open_connections") == 3)
            with RawClient(proxy.port) as extra:
                response = extra.read_until_closed(2)
            assert response.status == 503 and response.closed and response.headers["retry-after"] == "1"
            assert response.json()["type"] == "error"
            held.pop().close()
            assert proxy.wait_for(lambda: metric(proxy, "switchboard_open_connections") == 2)
            assert request(proxy, "GET", "/health").status == 200
        finally:
            for client in held:
                client.close()
        assert proxy.wait_for(lambda: metric(proxy, "switchboard_open_connections") == 0)
        assert_recovered(proxy)


# =============================================================================================
# A storm: 200 concurrent streams, a seeded ~30% of them leaving mid-stream
# =============================================================================================


STORM_CLIENTS = 200
STORM_LEAVING_SHARE = 0.3
STORM_SEED = 20240601
STORM_CHUNKS = 25
MEMORY_GROWTH_LIMIT_BYTES = 30 * 1024 * 1024


async def storm_client(port: int, leave: bool, abort: bool) -> str:
    """One streaming client: reads to the end ("complete"), leaves after the first text ("left"), or
    reports what else it got ("error" event, "status NNN" answer, "closed early")."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(http_request_bytes("POST", "/v1/messages", dict(MESSAGE, stream=True), [("content-type", "application/json")]))
    received = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                return "closed early"
            received += data
            if leave and b"content_block_delta" in received:
                if abort:
                    writer.transport.abort()  # a reset, as a killed client sends
                return "left"
            if b"event: error" in received:
                return "error"
            if b"event: message_stop" in received and received.endswith(b"0\r\n\r\n"):
                return "complete"
            answer = parse_response(received, closed=False)
            if answer.status not in (0, 200) and len(answer.body) >= int(answer.headers.get("content-length", 0)):
                return f"status {answer.status}"
    finally:
        writer.close()


async def storm(port: int, plan: list[tuple[bool, bool]]) -> list[str]:
    """Run one client per (leave, abort) pair of `plan`, all at once; their outcomes in plan order."""
    return await asyncio.wait_for(asyncio.gather(*(storm_client(port, leave, abort) for leave, abort in plan)), 20)


def test_200_concurrent_streams_with_random_disconnects_leak_nothing():
    """200 streams at once, a seeded ~30% leaving mid-stream: every leaver is noticed upstream, and afterwards
    no stream, connection, pooled socket, task or memory is left over."""
    rng = random.Random(STORM_SEED)
    plan = [(rng.random() < STORM_LEAVING_SHARE, rng.random() < 0.5) for _ in range(STORM_CLIENTS)]
    expected = ["left" if leave else "complete" for leave, _ in plan]
    leavers = expected.count("left")
    upstream = FakeUpstream(lambda received: Reply.sse(text_stream(["tok "] * STORM_CHUNKS), delay_between_chunks=0.02))
    upstream.client_went_away = CountingEvent()

    async def task_count() -> int:
        return len(asyncio.all_tasks())

    def settled() -> bool:
        return (
            proxy.pool_stats()["active"] == 0
            and metric(proxy, "switchboard_active_streams") == 0
            and metric(proxy, "switchboard_open_connections") == 0
            and proxy.call(task_count) <= baseline_tasks
        )

    # The default MAX_CONCURRENT_UPSTREAM (64) queues the rest; it also keeps the proxy's connects under
    # FakeUpstream's accept backlog (100), past which dropped SYNs would cost a second each.
    with upstream, RunningProxy(openai_env(upstream, CONNECT_TIMEOUT="5")) as proxy:
        baseline_tasks = proxy.call(task_count)
        # Warm-up: the same storm once, so that buffers and caches grown on first use count as the baseline.
        assert asyncio.run(storm(proxy.port, plan)) == expected
        assert proxy.wait_for(settled, timeout=10), (proxy.pool_stats(), proxy.call(task_count), baseline_tasks)
        gc.collect()
        rss_before = rss_bytes()
        went_away_before = upstream.client_went_away.count

        started = time.monotonic()
        assert asyncio.run(storm(proxy.port, plan)) == expected
        assert time.monotonic() - started < 15
        assert proxy.wait_for(settled, timeout=10), (proxy.pool_stats(), proxy.call(task_count), baseline_tasks)
        # Every leaver's upstream request was cancelled: the fake saw its connection closed mid-answer.
        went_away = lambda: upstream.client_went_away.count - went_away_before  # noqa: E731
        assert proxy.wait_for(lambda: went_away() == leavers, timeout=3), (went_away(), leavers)
        # Completed streams may be pooled (at most max_idle_per_origin), cancelled ones never.
        assert 1 <= proxy.pool_stats()["idle"] <= 16
        gc.collect()
        assert rss_bytes() - rss_before < MEMORY_GROWTH_LIMIT_BYTES
        assert_recovered(proxy, upstream)
