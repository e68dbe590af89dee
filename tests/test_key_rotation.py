"""Several API keys per provider, through the server: fake upstreams that refuse by key.

Each fake upstream knows what it thinks of each key (healthy, rate-limited, out of quota, revoked) and
answers by the key a request carries. Checked: the traffic moves to the healthy keys, a refused key
rests as long as it should, nothing is lost or doubled, every key's state is visible by fingerprint
only, and no key ever appears in a log line, metric or error.
"""

from __future__ import annotations

import logging

import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream, Received, Reply, RunningProxy, completion
from loopback import request
from upstreams.keys import fingerprint

KEYS = ("sk-alpha-0001", "sk-bravo-0002", "sk-charlie-0003")
RATE_LIMITED = Reply.json({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
                          status=429, headers=[("retry-after", "20")])
NO_QUOTA = Reply.json({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                                 "type": "insufficient_quota", "code": "insufficient_quota"}}, status=429)
REVOKED = Reply.json({"error": {"message": "Incorrect API key provided: sk-alph***0001", "type": "invalid_request_error",
                                "code": "invalid_api_key"}}, status=401)


class KeyedUpstream:
    """Answers each request by its key: `refusals[key]` if the key is refused, else a completion."""

    def __init__(self, refusals: dict[str, Reply]) -> None:
        self.refusals = refusals
        self.by_key: dict[str, int] = {}

    def __call__(self, received: Received) -> Reply:
        key = received.headers.get("authorization", "").removeprefix("Bearer ") or received.headers.get("x-api-key", "")
        self.by_key[key] = self.by_key.get(key, 0) + 1
        return self.refusals.get(key) or Reply.json(completion(f"answered with key #{KEYS.index(key)}"))


def env(upstream: FakeUpstream, keys: tuple[str, ...] = KEYS, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": ",".join(keys), "OPENAI_BASE_URL": upstream.url + "/v1", "PREFERRED_PROVIDER": "openai",
            "MAX_RETRIES": "2", **extra}


def ask(proxy: RunningProxy) -> str:
    sdk = anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10)
    return sdk.messages.create(model="gpt-x", max_tokens=16, messages=[{"role": "user", "content": "Hi"}]).content[0].text


def test_requests_spread_evenly_over_healthy_keys():
    model = KeyedUpstream({})
    with FakeUpstream(model) as upstream, RunningProxy(env(upstream)) as proxy:
        for _ in range(9):
            ask(proxy)
    assert model.by_key == {key: 3 for key in KEYS}


@pytest.mark.parametrize("refusal", [RATE_LIMITED, NO_QUOTA, REVOKED], ids=["rate_limited", "quota", "revoked"])
def test_a_refused_key_hands_the_request_to_another_and_then_rests(refusal):
    """Nothing lost: every request is answered; the refused key is asked once, then left alone."""
    model = KeyedUpstream({KEYS[0]: refusal})
    with FakeUpstream(model) as upstream, RunningProxy(env(upstream)) as proxy:
        answers = [ask(proxy) for _ in range(8)]
    assert all(answer.startswith("answered with key #") for answer in answers)
    assert "answered with key #0" not in answers
    assert model.by_key[KEYS[0]] == 1  # refused once, then resting (or disabled)
    assert model.by_key[KEYS[1]] + model.by_key[KEYS[2]] == 8  # each request answered exactly once


def test_a_rate_limited_key_comes_back_after_its_retry_after():
    short = Reply.json({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, status=429,
                       headers=[("retry-after", "1")])
    model = KeyedUpstream({KEYS[0]: short})
    with FakeUpstream(model) as upstream, RunningProxy(env(upstream, KEYS[:2])) as proxy:
        ask(proxy)  # key 0 refused, key 1 answers
        for _ in range(3):
            ask(proxy)  # key 0 rests: all on key 1
        assert model.by_key[KEYS[0]] == 1
        model.refusals.clear()
        proxy.wait_for(lambda: False, timeout=1.1)  # the rest ends
        answers = {ask(proxy) for _ in range(4)}
    assert "answered with key #0" in answers


def test_every_key_resting_is_a_429_with_the_earliest_retry_after_in_each_dialect():
    model = KeyedUpstream({key: RATE_LIMITED for key in KEYS})
    with FakeUpstream(model) as upstream, RunningProxy(env(upstream, MAX_RETRIES="0")) as proxy:
        first = request(proxy, "POST", "/v1/messages", {"model": "gpt-x", "max_tokens": 8,
                                                            "messages": [{"role": "user", "content": "Hi"}]})
        asked = dict(model.by_key)
        anthropic_answer = request(proxy, "POST", "/v1/messages", {"model": "gpt-x", "max_tokens": 8,
                                                                       "messages": [{"role": "user", "content": "Hi"}]})
        chat_answer = request(proxy, "POST", "/v1/chat/completions", {"model": "gpt-x",
                                                                          "messages": [{"role": "user", "content": "Hi"}]})
    assert first.status == 429
    assert asked == {key: 1 for key in KEYS}  # each key tried once, at once
    assert model.by_key == asked  # then none is asked while all rest
    for answer in (anthropic_answer, chat_answer):
        assert answer.status == 429
        assert 1 <= int(answer.headers["retry-after"]) <= 20
    assert anthropic_answer.json()["error"]["type"] == "rate_limit_error"
    assert "resting" in chat_answer.json()["error"]["message"]


def test_no_key_appears_in_logs_metrics_or_errors(caplog):
    model = KeyedUpstream({KEYS[0]: REVOKED, KEYS[1]: NO_QUOTA, KEYS[2]: RATE_LIMITED})
    caplog.set_level(logging.DEBUG)
    with FakeUpstream(model) as upstream, RunningProxy(env(upstream, MAX_RETRIES="0")) as proxy:
        answers = [request(proxy, "POST", "/v1/chat/completions",
                           {"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]}) for _ in range(3)]
        metrics = request(proxy, "GET", "/metrics").raw.decode()
    seen = metrics + "".join(answer.raw.decode() for answer in answers) + caplog.text
    for key in KEYS:
        assert key not in seen
        assert "0001" not in seen  # not even the part OpenAI's own 401 message quotes
        assert fingerprint(key) in metrics
    assert f'switchboard_upstream_key_state{{provider="openai",key="{fingerprint(KEYS[0])}",state="disabled"}} 1' in metrics
    assert f'switchboard_upstream_key_state{{provider="openai",key="{fingerprint(KEYS[1])}",state="cooling"}} 1' in metrics
    assert [record for record in caplog.records if record.levelno == logging.ERROR and fingerprint(KEYS[0]) in record.getMessage()]


def test_a_single_key_behaves_as_it_always_did():
    """One key: no pool, no rest. The upstream's 429 reaches the client after the usual retries."""
    brief = Reply.json({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, status=429,
                       headers=[("retry-after", "0.2")])
    model = KeyedUpstream({KEYS[0]: brief})
    with FakeUpstream(model) as upstream, RunningProxy(env(upstream, KEYS[:1], MAX_RETRIES="1")) as proxy:
        sdk = openai.OpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=20)
        with pytest.raises(openai.RateLimitError):
            sdk.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "Hi"}])
    assert model.by_key == {KEYS[0]: 2}


def test_the_banner_shows_keys_by_fingerprint_only():
    from server.config import Config
    from server.gateway import Gateway
    from server.listener import banner

    config = Config.from_env({"OPENAI_API_KEY": ",".join(KEYS)})
    text = str(banner(config, Gateway(config), 8082))
    assert all(key not in text for key in KEYS)
    assert all(fingerprint(key) in text for key in KEYS)


def test_a_fallback_on_a_provider_whose_keys_all_rest_is_skipped():
    """Every openai key rests: the openai fallback model is behind the same keys, the anthropic one is not."""
    model = KeyedUpstream({key: RATE_LIMITED for key in KEYS})

    def anthropic_answer(received: Received) -> Reply:
        return Reply.json({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                           "content": [{"type": "text", "text": "from claude"}], "stop_reason": "end_turn",
                           "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2}})

    with FakeUpstream(model) as upstream, FakeUpstream(anthropic_answer) as claude, RunningProxy(env(
        upstream, MAX_RETRIES="0", ANTHROPIC_API_KEY="sk-ant-up", ANTHROPIC_BASE_URL=claude.url,
        FALLBACK_MODELS="openai/gpt-mini,anthropic/claude-x",
    )) as proxy:
        request(proxy, "POST", "/v1/chat/completions", {"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]})
        asked = sum(model.by_key.values())
        answer = request(proxy, "POST", "/v1/chat/completions", {"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]})
    assert answer.status == 200 and answer.json()["choices"][0]["message"]["content"] == "from claude"
    assert sum(model.by_key.values()) == asked  # the second request asked no openai key at all
    assert len(claude.requests) == 2


def test_every_key_resting_reaches_a_responses_stream_as_a_timed_rate_limit():
    """Codex acts on rate limits only inside the stream ("try again in N s"); an HTTP 429 would end its turn."""
    model = KeyedUpstream({key: RATE_LIMITED for key in KEYS})
    with FakeUpstream(model) as upstream, RunningProxy(env(upstream, MAX_RETRIES="0")) as proxy:
        request(proxy, "POST", "/v1/chat/completions", {"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]})
        answer = request(proxy, "POST", "/v1/responses", {"model": "gpt-x", "input": "Hi", "stream": True})
    assert answer.status == 200
    (failed,) = [data for name, data in answer.events() if name == "response.failed"]
    error = failed["response"]["error"]
    assert error["code"] == "rate_limit_exceeded" and "try again in" in error["message"].lower()
