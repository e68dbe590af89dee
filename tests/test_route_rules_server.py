"""Routing by what a request is, through the server: the right upstream model receives each request.

The pure decision is tested in tests/test_request_class.py; here each rule's request goes through the
real server (all three fronts), and the access log and metrics name the rule.
"""

from __future__ import annotations

import logging

import pytest

from fake_upstream import FakeUpstream, Received, Reply, RunningProxy, completion
from loopback import request
from server.config import Config
from server.gateway import Gateway
from upstreams.settings import ConfigError

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
RULES = {
    "ROUTE_BACKGROUND": "openai/gpt-bg",
    "ROUTE_SUBAGENT": "openai/gpt-sub",
    "ROUTE_THINK": "openai/gpt-think",
    "ROUTE_LONG_CONTEXT": "openai/gpt-long",
    "LONG_CONTEXT_THRESHOLD": "2000",
    "ROUTE_IMAGE": "openai/gpt-vision",
    "ROUTE_COMPACTION": "openai/gpt-compact",
}


class Echoing:
    """Answers every chat request with a completion; the test reads which model each one named."""

    def __call__(self, received: Received) -> Reply:
        return Reply.json(completion("ok"))


def env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-up", "OPENAI_BASE_URL": upstream.url + "/v1", "PREFERRED_PROVIDER": "openai",
            "BIG_MODEL": "gpt-big", "SMALL_MODEL": "gpt-small", **RULES, **extra}


def message(content: object, model: str = "claude-sonnet-5", **extra: object) -> dict:
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": content}], **extra}


LONG = "word " * 12000  # about 12k tokens by the estimate: over LONG_CONTEXT_THRESHOLD=2000
IMAGE = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
         {"type": "text", "text": "What is this?"}]
CASES = [
    ("main turn", message("Hi"), {}, "gpt-big", "default"),
    ("main, hinted", message("Hi"), {"x-claude-code-request-class": "main"}, "gpt-big", "default"),
    ("subagent by its agent id (Claude Code 2.1.332)", message("Hi"), {"x-claude-code-agent-id": "a969b1e4447a280dd"},
     "gpt-sub", "subagent"),
    ("subagent by its parent id", message("Hi"), {"x-claude-code-parent-agent-id": "agent_1"}, "gpt-sub", "subagent"),
    ("subagent, hinted", message("Hi"), {"x-claude-code-request-class": "subagent"}, "gpt-sub", "subagent"),
    ("compaction, hinted", message("Summarise"), {"x-claude-code-request-class": "compaction"}, "gpt-compact", "compaction"),
    ("auxiliary", message("Title?"), {"x-claude-code-request-class": "auxiliary"}, "gpt-bg", "background"),
    ("haiku without headers", message("Title?", model="claude-haiku-4-5"), {}, "gpt-bg", "background"),
    ("a long session", message(LONG), {}, "gpt-long", "long_context"),
    ("a long subagent", message(LONG), {"x-claude-code-parent-agent-id": "agent_1"}, "gpt-long", "long_context"),
    ("an image", message(IMAGE), {}, "gpt-vision", "image"),
    ("thinking", message("Plan it", thinking={"type": "enabled", "budget_tokens": 2048}), {}, "gpt-think", "think"),
]


@pytest.mark.parametrize(("what", "body", "headers", "model", "rule"), CASES, ids=[case[0] for case in CASES])
def test_each_request_class_reaches_the_model_its_rule_names(what, body, headers, model, rule, caplog):
    caplog.set_level(logging.INFO, logger="switchboard.access")
    with FakeUpstream(Echoing()) as upstream, RunningProxy(env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", body, headers)
        metrics = request(proxy, "GET", "/metrics").raw.decode()
    assert answer.status == 200, answer.body
    assert upstream.requests[0].json()["model"] == model
    assert answer.json()["model"] == body["model"]  # the client's name comes back, whatever served it
    logged = [record.getMessage() for record in caplog.records if "/v1/messages" in record.getMessage()]
    assert logged and (f"route_rule={rule}" in logged[-1]) == (rule != "default")
    assert f'route_rule="{rule}"' in metrics


def test_the_rules_work_on_the_chat_and_responses_fronts():
    image = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}, {"type": "text", "text": "?"}]
    with FakeUpstream(Echoing()) as upstream, RunningProxy(env(upstream)) as proxy:
        chat = request(proxy, "POST", "/v1/chat/completions",
                       {"model": "gpt-4.1", "messages": [{"role": "user", "content": image}]})
        responses = request(proxy, "POST", "/v1/responses", {"model": "gpt-4.1", "input": LONG},
                            {"x-claude-code-parent-agent-id": "a"})
    assert chat.status == 200 and responses.status == 200, (chat.body, responses.body)
    assert [received.json()["model"] for received in upstream.requests] == ["gpt-vision", "gpt-long"]


def test_unset_rules_leave_routing_as_it_was():
    with FakeUpstream(Echoing()) as upstream, RunningProxy(env(upstream, ROUTE_SUBAGENT="", ROUTE_IMAGE="")) as proxy:
        request(proxy, "POST", "/v1/messages", message("Hi"), {"x-claude-code-parent-agent-id": "agent_1"})
        request(proxy, "POST", "/v1/messages", message(IMAGE))
    assert [received.json()["model"] for received in upstream.requests] == ["gpt-big", "gpt-big"]


def test_fallbacks_keep_working_for_a_routed_request():
    def answer(received: Received) -> Reply:
        if received.json()["model"] == "gpt-sub":
            return Reply.json({"error": {"message": "down"}}, status=503)
        return Reply.json(completion("from the fallback"))

    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, FALLBACK_MODELS="openai/gpt-fallback")) as proxy:
        answered = request(proxy, "POST", "/v1/messages", message("Hi"), {"x-claude-code-request-class": "subagent"})
    assert answered.status == 200
    assert answered.json()["content"][0]["text"] == "from the fallback"
    assert [received.json()["model"] for received in upstream.requests] == ["gpt-sub", "gpt-fallback"]


def test_a_rule_naming_an_unconfigured_provider_stops_the_start():
    config = Config.from_env({"OPENAI_API_KEY": "sk", "ROUTE_THINK": "anthropic/claude-opus-5"})
    with pytest.raises(ConfigError, match="ROUTE_THINK"):
        Gateway(config)


def test_the_banner_prints_the_rules():
    from server.listener import banner

    config = Config.from_env({"OPENAI_API_KEY": "sk", "ROUTE_LONG_CONTEXT": "openai/gpt-long"})
    assert "request class long_context (> 60000 tokens) -> openai/gpt-long" in str(banner(config, Gateway(config), 1))


def test_a_request_the_hub_cannot_hold_is_routed_as_usual_and_passes_through():
    """previous_response_id: no rule can read it, and OpenAI's own /responses (passthrough) serves it."""
    from fake_upstream import message_item, responses_answer

    with FakeUpstream([Reply.json(responses_answer([message_item("from the stored conversation")]))]) as upstream, \
            RunningProxy(env(upstream, OPENAI_WIRE_API="responses")) as proxy:
        answered = request(proxy, "POST", "/v1/responses", {"model": "gpt-4.1", "input": "and then?",
                                                            "previous_response_id": "resp_1"},
                           {"x-claude-code-parent-agent-id": "a"})
    assert answered.status == 200, answered.body
    assert upstream.requests[0].path == "/v1/responses" and upstream.requests[0].json()["model"] == "gpt-4.1"
