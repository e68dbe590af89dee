"""Compressed request bodies (server/content_coding.py), through the real server."""

from __future__ import annotations

import gzip
import importlib.util
import json
import zlib

import pytest

from fake_upstream import FakeUpstream, Reply, RunningProxy, completion
from loopback import request

MESSAGES = {"model": "claude-sonnet-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ENV = {"OPENAI_API_KEY": "k"}


@pytest.mark.parametrize(
    ("coding", "pack"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", lambda data: zlib.compress(data)[2:-4]), ("identity", bytes)],
    ids=["gzip", "deflate", "raw-deflate", "identity"],
)
def test_compressed_bodies_are_decoded_for_translation_and_passthrough(coding, pack):
    with FakeUpstream([Reply.json(completion("one")), Reply.json(completion("two"))]) as upstream, \
            RunningProxy(dict(ENV, OPENAI_BASE_URL=upstream.url)) as proxy:
        translated = request(proxy, "POST", "/v1/messages", pack(json.dumps(MESSAGES).encode()), {"content-encoding": coding})
        passed = request(proxy, "POST", "/v1/chat/completions", pack(json.dumps(CHAT).encode()), {"content-encoding": coding})
    assert translated.status == 200 and passed.status == 200
    assert upstream.requests[1].json() == CHAT  # passthrough forwards the decoded body
    assert "content-encoding" not in upstream.requests[1].headers


def test_a_body_inflating_past_max_request_bytes_is_a_413():
    bomb = gzip.compress(json.dumps(dict(CHAT, padding="x" * 200_000)).encode())
    assert len(bomb) < 4096
    with RunningProxy(dict(ENV, MAX_REQUEST_BYTES="65536")) as proxy:
        answer = request(proxy, "POST", "/v1/chat/completions", bomb, {"content-encoding": "gzip"})
    assert answer.status == 413 and "MAX_REQUEST_BYTES" in answer.body["error"]["message"]


@pytest.mark.parametrize(("coding", "body", "status"), [("br", b"xx", 415), ("gzip", b"not gzip at all", 400)])
def test_unknown_or_broken_codings_are_refused_in_the_clients_dialect(coding, body, status):
    with RunningProxy(ENV) as proxy:
        answer = request(proxy, "POST", "/v1/chat/completions", body, {"content-encoding": coding})
    assert answer.status == status and set(answer.body) == {"error"}


@pytest.mark.skipif(importlib.util.find_spec("compression") is not None, reason="this Python decodes zstd itself")
def test_zstd_without_a_decoder_names_codexs_setting():
    with RunningProxy(ENV) as proxy:
        answer = request(proxy, "POST", "/v1/responses", b"(zstd frame)", {"content-encoding": "zstd"})
    assert answer.status == 415 and "enable_request_compression=false" in answer.body["error"]["message"]
