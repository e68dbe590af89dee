"""The bad-input corpus, through the real server: every case is a 4xx in the client's dialect, nothing
reaches the upstream, and each request writes exactly one access line.

Grow it: every input that once produced a 500 (or reached an upstream it should not have) belongs
here. translate/validate.py's own tests (tests/test_validate.py) check the field paths in detail;
this one checks what a client and the upstream see.
"""

from __future__ import annotations

import json
import logging

import pytest

from fake_upstream import FakeUpstream, Reply, RunningProxy, completion
from loopback import request
from translate.anthropic_to_chat_request import ChatTarget, anthropic_to_chat_request
from translate.chat_to_anthropic_request import AnthropicTarget, chat_to_anthropic_request
from translate.chat_to_anthropic_response import chat_to_anthropic_response
from translate.errors import InvalidRequest
from translate.tool_search import without_unloaded_tools

MESSAGES = {"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
COUNT = {"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

ANY = {"string": "x", "number": 7, "true": True, "null": None, "list": [], "object": {}}


def wrong(*allowed: str, null_ok: bool = False) -> list[object]:
    """Every JSON type not in `allowed` (null counts as allowed for optional fields when `null_ok`)."""
    skip = set(allowed) | ({"null"} if null_ok else set())
    return [value for name, value in ANY.items() if name not in skip]


# field -> values that must be refused, per endpoint.
MESSAGES_FIELDS = {
    "model": wrong("string") + ["", "bad\nname"],
    "messages": wrong("list") + [[7], [{"role": "wizard", "content": "x"}], [{"role": "user", "content": 7}],
                                 [{"role": "user", "content": [{"type": "text", "text": 7}]}]],
    "max_tokens": wrong("number") + [-1, 1.5],
    "system": wrong("string", "list", null_ok=True) + [[7]],
    "tools": wrong("list", null_ok=True) + [[7], [{"name": 7}]],
    "tool_choice": wrong("object", null_ok=True),
    "temperature": wrong("number", null_ok=True),
    "top_p": wrong("number", null_ok=True),
    "stop_sequences": wrong("list", null_ok=True) + [[7]],
    "stream": wrong("true", null_ok=True),
    "metadata": wrong("object", null_ok=True),
    "thinking": wrong("object", null_ok=True),
    "output_config": wrong("object", null_ok=True),
}
COUNT_FIELDS = {key: MESSAGES_FIELDS[key] for key in ("messages", "system", "tools")}
CHAT_FIELDS = {
    "model": wrong("string") + ["", "bad\nname"],
    "messages": wrong("list") + [[7], [{"role": "wizard", "content": "x"}], [{"role": "user", "content": 7}]],
    "max_tokens": wrong("number", null_ok=True) + [-1, 1.5],
    "max_completion_tokens": wrong("number", null_ok=True) + [-1],
    "temperature": wrong("number", null_ok=True),
    "top_p": wrong("number", null_ok=True),
    "stop": wrong("string", "list", null_ok=True) + [[7]],
    "stream": wrong("true", null_ok=True),
    "tools": wrong("list", null_ok=True) + [[7], [{"type": "function"}]],
    "tool_choice": wrong("string", "object", null_ok=True) + ["sometimes"],
    "reasoning_effort": wrong("string", null_ok=True),
    "response_format": wrong("object", null_ok=True),
    "n": wrong("number", null_ok=True),
}


def field_cases(path: str, base: dict, fields: dict) -> list[tuple[str, str, bytes]]:
    cases = []
    for field, values in fields.items():
        for value in values:
            body = dict(base, **{field: value})
            cases.append((f"{path} {field}={json.dumps(value)}", path, json.dumps(body).encode()))
    return cases


def raw_cases() -> list[tuple[str, str, bytes]]:
    """Bodies that are not valid strict JSON, or carry what no upstream can take."""
    deep = b'{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"metadata":' + b"[" * 5000 + b"]" * 5000 + b"}"
    cases = []
    for path, base in (("/v1/messages", MESSAGES), ("/v1/chat/completions", CHAT), ("/v1/messages/count_tokens", COUNT)):
        text = json.dumps(base)
        cases += [
            (f"{path} NaN", path, text.replace('"messages"', '"temperature": NaN, "messages"', 1).encode()),
            (f"{path} Infinity", path, text.replace('"messages"', '"top_p": Infinity, "messages"', 1).encode()),
            (f"{path} escaped lone surrogate in content", path, text.replace('"hi"', '"hi \\ud800"').encode()),
            (f"{path} escaped lone surrogate in the model", path, text.replace('"model": "', '"model": "\\udfff', 1).encode()),
            (f"{path} raw surrogate bytes", path, text.replace('"hi"', '"hi \xed\xa0\x80"').encode("latin-1")),
            (f"{path} deep nesting", path, deep),
            (f"{path} not JSON", path, b"{nope"),
            (f"{path} not an object", path, b"[1, 2]"),
            (f"{path} empty", path, b""),
            (f"{path} invalid UTF-8", path, text.replace('"hi"', '"hi \xff\xfe"').encode("latin-1")),
        ]
    return cases


CASES = (
    field_cases("/v1/messages", MESSAGES, MESSAGES_FIELDS)
    + field_cases("/v1/messages/count_tokens", COUNT, COUNT_FIELDS)
    + field_cases("/v1/chat/completions", CHAT, CHAT_FIELDS)
    + raw_cases()
)


def is_anthropic_error(body: object) -> bool:
    return isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error", {}).get("message"), str)


def is_chat_error(body: object) -> bool:
    return isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"].get("message"), str)


class AccessLines(logging.Handler):
    """Keeps every access line the gateway writes, formatted as the text log would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def gateway():
    access = logging.getLogger("switchboard.access")
    lines = AccessLines()
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(lines)
    try:
        with FakeUpstream(lambda received: Reply.json(completion("should not be asked"))) as upstream, RunningProxy(
            {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url, "MAX_RETRIES": "0"}
        ) as proxy:
            yield proxy, upstream, lines
    finally:
        access.removeHandler(lines)
        access.setLevel(level)


@pytest.mark.parametrize(("name", "path", "body"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_a_4xx_in_the_clients_dialect_with_nothing_sent_upstream(gateway, name, path, body):
    proxy, upstream, access = gateway
    before_upstream, before_lines = len(upstream.requests), len(access.lines)
    answer = request(proxy, "POST", path, body)
    assert 400 <= answer.status < 500, (answer.status, answer.body)
    if path.startswith("/v1/chat"):
        assert is_chat_error(answer.body), answer.body
    else:
        assert is_anthropic_error(answer.body), answer.body
    assert len(upstream.requests) == before_upstream, "an invalid request reached the upstream"
    assert proxy.wait_for(lambda: len(access.lines) >= before_lines + 1)
    written = access.lines[before_lines:]
    assert len(written) == 1 and "\n" not in written[0], written


@pytest.mark.parametrize(
    ("path", "base"), [("/v1/messages", MESSAGES), ("/v1/chat/completions", CHAT)], ids=["messages", "chat"]
)
def test_the_valid_bases_do_reach_the_upstream(gateway, path, base):
    """The corpus's base bodies are valid: each refusal above is the changed field's doing."""
    proxy, upstream, _ = gateway
    before = len(upstream.requests)
    assert request(proxy, "POST", path, base).status == 200
    assert len(upstream.requests) == before + 1


# ---------------------------------------------------------------------------------------------
# The translators stand on their own: what once crashed them is a 400 (or degraded) without the validator
# ---------------------------------------------------------------------------------------------

DEEP = "[" * 3000 + "]" * 3000
CHAT_TARGET = AnthropicTarget(model="claude-sonnet-5-5", default_max_tokens=1024)


@pytest.mark.parametrize(
    "body",
    [
        dict(CHAT, reasoning_effort=["high"]),
        dict(CHAT, reasoning_effort={"level": "high"}),
        dict(CHAT, tools=[{"type": "function", "function": {"name": "f"}}],
             tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [7]}}),
        *[dict(CHAT, messages=[{"role": "user", "content": "x"},
                               {"role": "assistant", "content": None, "tool_calls": [
                                   {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
                               {"role": "tool", "tool_call_id": "c1", "content": "ok"}])
          for arguments in ('{"x": NaN}', '{"x": 1e999}', '{"x": "\\ud800"}', '{"x": ' + DEEP + "}")],
    ],
    ids=["effort-list", "effort-object", "allowed-tools-entry", "args-nan", "args-overflow", "args-surrogate", "args-deep"],
)
def test_chat_translator_refuses_what_once_crashed_it(body):
    with pytest.raises(InvalidRequest):
        chat_to_anthropic_request(body, CHAT_TARGET)


def test_anthropic_translator_checks_messages_before_tool_search():
    body = dict(MESSAGES, messages=True, tools=[{"name": "t", "input_schema": {}, "defer_loading": True}])
    with pytest.raises(InvalidRequest):
        anthropic_to_chat_request(body, ChatTarget(model="gpt-4o", reasoning=False))


def test_tool_search_takes_hostile_tool_output_and_odd_names():
    body = {
        "tools": [{"name": ["not", "a", "name"]}, {"name": "t", "defer_loading": True}],
        "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x",
                                                    "content": f"<function>{DEEP}</function>"}]}],
    }
    assert [tool["name"] for tool in without_unloaded_tools(body)["tools"]] == [["not", "a", "name"]]


def test_a_models_deeply_nested_arguments_are_kept_raw_not_a_crash():
    arguments = '{"a": ' + DEEP + "}"
    answer = completion(None, tool_calls=[{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}],
                        finish="tool_calls")
    message = chat_to_anthropic_response(answer, requested_model="m", message_id="msg_1", tool_names={})
    assert message["content"][0]["input"] == {"_raw_arguments": arguments}
