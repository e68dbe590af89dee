"""Metrics, structured logs, request ids, and the redaction of secrets across every logging path."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fake_upstream import FakeUpstream, Reply, RunningProxy, completion, text_stream
from loopback import request
from test_server import MESSAGE

from server.config import Config
from server.logs import setup_logging
from server.metrics import Metrics
from upstreams.resilience import RetryPolicy, parse_retry_after

SECRETS = {
    "PROXY_API_KEY": "inbound-key-4f9a",
    "OPENAI_API_KEY": "sk-openai-secret-77c1",
    "ANTHROPIC_API_KEY": "sk-ant-secret-12ab",
}


# ---------------------------------------------------------------------------------------------
# Pure pieces
# ---------------------------------------------------------------------------------------------


def test_metrics_render_counters_histograms_and_gauges_in_prometheus_text():
    """The exposition has HELP/TYPE lines, cumulative buckets, +Inf, _sum and _count, escaped labels."""
    metrics = Metrics()
    metrics.inc("switchboard_requests_total", front="anthropic", provider="openai", model='we"ird', status="200")
    metrics.observe("switchboard_request_duration_seconds", 0.3, front="anthropic", provider="openai")
    metrics.observe("switchboard_request_duration_seconds", 7.0, front="anthropic", provider="openai")
    metrics.set("switchboard_active_streams", 3)
    text = metrics.render()
    assert "# TYPE switchboard_requests_total counter" in text
    assert 'model="we\\"ird"' in text
    assert 'switchboard_request_duration_seconds_bucket{front="anthropic",provider="openai",le="0.5"} 1' in text
    assert 'switchboard_request_duration_seconds_bucket{front="anthropic",provider="openai",le="10"} 2' in text
    assert 'le="+Inf"} 2' in text and "switchboard_request_duration_seconds_count" in text
    assert "switchboard_active_streams 3" in text


def test_metrics_cap_label_values_so_clients_cannot_explode_the_series():
    """Past max_label_values distinct values of a label, new ones count as 'other'."""
    metrics = Metrics(max_label_values=3)
    for index in range(10):
        metrics.inc("switchboard_requests_total", model=f"m{index}")
    assert metrics.render().count("switchboard_requests_total{") == 4
    assert metrics.value("switchboard_requests_total", model="other") == 7


def test_metrics_refuse_undeclared_families_and_wrong_kinds():
    """Recording into an unknown family or with the wrong kind is a programming error."""
    metrics = Metrics()
    with pytest.raises(KeyError):
        metrics.inc("nope_total")
    with pytest.raises(KeyError):
        metrics.observe("switchboard_requests_total", 1.0)


def test_retry_after_accepts_seconds_and_http_dates():
    """retry-after as delta-seconds or an HTTP date; garbage is ignored."""
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_grows_exponentially_with_jitter_and_honours_a_capped_retry_after():
    """Delays double up to the cap, jitter keeps them in [half, full]; a long retry-after means no retry."""
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, max_retry_after=30.0)
    assert [policy.delay(n, None, 0.999999) for n in range(5)] == pytest.approx([0.5, 1.0, 2.0, 4.0, 4.0], rel=1e-3)
    assert policy.delay(1, None, 0.0) == pytest.approx(0.5)
    assert policy.delay(0, 12.0, 0.5) == 12.0
    assert policy.delay(0, 31.0, 0.5) is None


# ---------------------------------------------------------------------------------------------
# Through the server
# ---------------------------------------------------------------------------------------------


def test_metrics_endpoint_counts_requests_tokens_and_needs_the_key():
    """GET /metrics reflects traffic; it needs PROXY_API_KEY unless METRICS_PUBLIC=true."""
    with FakeUpstream([Reply.json(completion("hi", prompt_tokens=30, completion_tokens=4)), Reply.sse(text_stream(["a"]))]) as upstream:
        env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url, "PROXY_API_KEY": "inbound"}
        with RunningProxy(env) as running:
            key = {"x-api-key": "inbound"}
            request(running, "POST", "/v1/messages", MESSAGE, key)
            request(running, "POST", "/v1/messages", dict(MESSAGE, stream=True), key)
            assert request(running, "GET", "/metrics").status == 401
            answer = request(running, "GET", "/metrics", headers=key)
        with RunningProxy(dict(env, METRICS_PUBLIC="true")) as running:
            assert request(running, "GET", "/metrics").status == 200
    text = answer.raw.decode()
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert ('switchboard_requests_total{front="anthropic",provider="openai",model="claude-sonnet-4-5",status="200",'
            'client="default",route_rule="default"} 2') in text
    assert 'switchboard_tokens_total{provider="openai",kind="input",client="default",model="claude-sonnet-4-5"} 41' in text
    assert "switchboard_time_to_first_token_seconds_count" in text
    assert 'switchboard_upstream_pool_connections{state="idle"}' in text
    assert "switchboard_active_streams 0" in text


def capture_logs(config: Config) -> io.StringIO:
    """Install the proxy's real logging setup, with its stderr handler writing into a buffer."""
    setup_logging(config)
    buffer = io.StringIO()
    for handler in logging.getLogger("switchboard").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setStream(buffer)
    return buffer


def test_json_access_lines_carry_the_request_id_that_goes_upstream_and_back():
    """LOG_FORMAT=json: one JSON object per line; the request id is in the response, upstream and the log."""
    with FakeUpstream([Reply.json(completion("hi"))]) as upstream:
        with RunningProxy({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url, "LOG_FORMAT": "json"}) as running:
            buffer = capture_logs(running.config)
            try:
                answer = request(running, "POST", "/v1/messages", MESSAGE)
                # The access line is written just after the response: wait for it.
                running.wait_for(lambda: "switchboard.access" in buffer.getvalue())
            finally:
                logging.getLogger("switchboard").handlers.clear()
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "switchboard.access"]
    assert access, buffer.getvalue()
    assert access[0]["request_id"] == answer.headers["request-id"]
    assert access[0]["status"] == 200 and access[0]["model"] == "claude-sonnet-4-5" and access[0]["upstream"] == "openai/gpt-4.1"
    assert upstream.requests[0].headers["x-request-id"] == answer.headers["request-id"]


def test_no_secret_reaches_logs_or_clients_on_success_error_and_debug_paths():
    """Every configured key stays out of captured logs (DEBUG included) and out of error bodies."""
    leaky_error = {"error": {"message": f"Incorrect API key provided: {SECRETS['OPENAI_API_KEY']}", "code": "invalid_api_key"}}
    replies = [Reply.json(completion("fine")), Reply.json(leaky_error, status=401), Reply.sse(text_stream(["x"]))]
    with FakeUpstream(replies) as upstream:
        env = dict(SECRETS, OPENAI_BASE_URL=upstream.url, LOG_LEVEL="DEBUG", HTTPS_PROXY="http://user:proxy-pass-99@127.0.0.1:9")
        with RunningProxy(env) as running:
            buffer = capture_logs(running.config)
            try:
                key = {"authorization": f"Bearer {SECRETS['PROXY_API_KEY']}"}
                bodies = [
                    request(running, "POST", "/v1/messages", MESSAGE, key),
                    request(running, "POST", "/v1/messages", MESSAGE, key),
                    request(running, "POST", "/v1/messages", dict(MESSAGE, stream=True), key),
                    request(running, "POST", "/v1/messages", MESSAGE, {"x-api-key": "wrong"}),
                    request(running, "GET", "/metrics", headers=key),
                ]
                running.wait_for(lambda: buffer.getvalue().count("switchboard.access") >= 4)
            finally:
                logging.getLogger("switchboard").handlers.clear()
    captured = buffer.getvalue()
    assert "upstream body" in captured, "the DEBUG path ran"
    assert bodies[1].status == 401 and "***" in bodies[1].body["error"]["message"]
    everything = captured + "".join(repr(body) for body in bodies)
    for secret in [*SECRETS.values(), "proxy-pass-99"]:
        assert secret not in everything
