"""No configured secret reaches a client through any path; an upstream's answer cannot take the memory.

An upstream that quotes the key it was sent (some do, in a 401) is played on every path: translated
and passed through, stream and not, before the stream and inside it. The key must never be in the
bytes the client receives.
"""

from __future__ import annotations

import gzip
import json

import pytest

from fake_upstream import FakeUpstream, Reply, RunningProxy, chunk, completion, frames
from loopback import request
from server.logs import Redactor

KEY = "sk-upstream-SECRET-0123456789"
INBOUND = "inbound-key-4242"
CLIENT = {"x-api-key": INBOUND, "anthropic-version": "2023-06-01"}

MESSAGES_BODY = {"model": "claude-sonnet-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
CHAT_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def openai_401() -> Reply:
    return Reply.json({"error": {"message": f"Incorrect API key provided: {KEY}. You can find your key at ...",
                                 "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}, status=401)


def anthropic_401() -> Reply:
    return Reply.json({"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"}}, status=401)


def openai_stream_failing_with_the_key() -> Reply:
    return Reply.sse(frames(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "partial "}),
        {"error": {"message": f"key {KEY} was revoked mid-stream", "type": "server_error"}},
        done=False,
    ))


def anthropic_stream_failing_with_the_key() -> Reply:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                                                "content": [], "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 0}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial "}}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": f"key {KEY} is over its quota"}}),
    ]
    return Reply.sse([f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events])


OPENAI_ENV = {"OPENAI_API_KEY": KEY, "PROXY_API_KEY": INBOUND, "MAX_RETRIES": "0"}
ANTHROPIC_ENV = {"ANTHROPIC_API_KEY": KEY, "PREFERRED_PROVIDER": "anthropic", "PROXY_API_KEY": INBOUND, "MAX_RETRIES": "0"}

PATHS = [
    # (name, env, base-url variable, path, body, reply)
    ("translated messages -> chat", OPENAI_ENV, "OPENAI_BASE_URL", "/v1/messages", MESSAGES_BODY, openai_401),
    ("translated chat -> anthropic", ANTHROPIC_ENV, "ANTHROPIC_BASE_URL", "/v1/chat/completions",
     dict(CHAT_BODY, model="claude-sonnet-5-5"), anthropic_401),
    ("passthrough chat", OPENAI_ENV, "OPENAI_BASE_URL", "/v1/chat/completions", CHAT_BODY, openai_401),
    ("passthrough messages", ANTHROPIC_ENV, "ANTHROPIC_BASE_URL", "/v1/messages", MESSAGES_BODY, anthropic_401),
    ("translated messages stream, mid-stream", OPENAI_ENV, "OPENAI_BASE_URL", "/v1/messages",
     dict(MESSAGES_BODY, stream=True), openai_stream_failing_with_the_key),
    ("passthrough chat stream, mid-stream", OPENAI_ENV, "OPENAI_BASE_URL", "/v1/chat/completions",
     dict(CHAT_BODY, stream=True), openai_stream_failing_with_the_key),
    ("translated chat -> anthropic stream, mid-stream", ANTHROPIC_ENV, "ANTHROPIC_BASE_URL", "/v1/chat/completions",
     dict(CHAT_BODY, model="claude-sonnet-5-5", stream=True), anthropic_stream_failing_with_the_key),
    ("passthrough messages stream, mid-stream", ANTHROPIC_ENV, "ANTHROPIC_BASE_URL", "/v1/messages",
     dict(MESSAGES_BODY, stream=True), anthropic_stream_failing_with_the_key),
]


# Each non-stream path once more as a stream request, whose 401 arrives before the stream starts.
CASES = [*PATHS, *[(f"{name} (stream request, 401 first)", env, var, path, dict(body, stream=True), reply)
                   for name, env, var, path, body, reply in PATHS if not body.get("stream")]]


@pytest.mark.parametrize(("name", "env", "url_variable", "path", "body", "reply"), CASES, ids=[c[0] for c in CASES])
def test_an_upstream_quoting_its_key_never_shows_it_to_the_client(name, env, url_variable, path, body, reply):
    with FakeUpstream([reply()]) as upstream, RunningProxy(dict(env, **{url_variable: upstream.url})) as proxy:
        answer = request(proxy, "POST", path, body, CLIENT)
    assert upstream.requests, "the upstream was not called"
    assert KEY.encode() not in answer.raw and KEY[:-4].encode() not in answer.raw, answer.raw
    assert b"***" in answer.raw  # the message itself still arrives, masked
    if answer.status == 200:
        assert body.get("stream") and b"partial" in answer.raw


def test_a_successful_non_stream_body_is_passed_through_untouched():
    """The exception the issue allows: a 200 answer is the model's, byte for byte."""
    raw = json.dumps(completion(f"the key you pasted was {KEY}")).encode()
    with FakeUpstream([Reply(body=raw)]) as upstream, RunningProxy(dict(OPENAI_ENV, OPENAI_BASE_URL=upstream.url)) as proxy:
        answer = request(proxy, "POST", "/v1/chat/completions", CHAT_BODY, CLIENT)
    assert answer.status == 200 and answer.raw == raw


def test_redactor_masks_tokens_that_change_while_running():
    """The Google access token a provider mints is masked too, the new one after a refresh."""
    current = ["ya29.first-token"]
    redact = Redactor(["static-key-1"], changing=(lambda: list(current),))
    assert redact.bytes(b"x ya29.first-token static-key-1") == b"x *** ***"
    current[0] = "ya29.second-token"
    assert redact("ya29.second-token and ya29.first-token") == "*** and ya29.first-token"
    data = b"nothing secret here"
    assert redact.bytes(data) is data


# ---------------------------------------------------------------------------------------------
# MAX_RESPONSE_BYTES
# ---------------------------------------------------------------------------------------------

BIG_TEXT = "x" * 300_000


@pytest.mark.parametrize(
    ("path", "body", "envelope"),
    [("/v1/messages", MESSAGES_BODY, "type"), ("/v1/chat/completions", CHAT_BODY, "error")],
    ids=["anthropic-front", "chat-front-passthrough"],
)
def test_an_answer_over_max_response_bytes_is_a_502_in_the_clients_dialect(path, body, envelope):
    replies = [Reply.json(completion(BIG_TEXT)), Reply.json(completion(BIG_TEXT))]
    env = dict(OPENAI_ENV, MAX_RESPONSE_BYTES="65536")
    with FakeUpstream(replies) as upstream, RunningProxy(dict(env, OPENAI_BASE_URL=upstream.url)) as proxy:
        answer = request(proxy, "POST", path, body, CLIENT)
        assert proxy.wait_for(lambda: proxy.pool_stats()["idle"] == 0)  # that connection is not pooled
    assert answer.status == 502, answer.body
    assert envelope in answer.body and "MAX_RESPONSE_BYTES" in json.dumps(answer.body)


def test_a_compressed_answer_is_capped_by_its_decoded_size():
    """A gzip bomb: a small body that inflates past the cap."""
    packed = gzip.compress(json.dumps(completion(BIG_TEXT)).encode())
    reply = Reply(headers=[("content-type", "application/json"), ("content-encoding", "gzip")], body=packed)
    assert len(packed) < 65536
    env = dict(OPENAI_ENV, MAX_RESPONSE_BYTES="65536")
    with FakeUpstream([reply]) as upstream, RunningProxy(dict(env, OPENAI_BASE_URL=upstream.url)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGES_BODY, CLIENT)
    assert answer.status == 502


def test_under_the_default_cap_a_large_answer_is_served():
    with FakeUpstream([Reply.json(completion(BIG_TEXT))]) as upstream, RunningProxy(dict(OPENAI_ENV, OPENAI_BASE_URL=upstream.url)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGES_BODY, CLIENT)
    assert answer.status == 200 and answer.body["content"][0]["text"] == BIG_TEXT
