"""Responses front, Anthropic hub: golden request fixtures, the thinking envelope and every refusal.

Fixture directories under fixtures/responses_to_anthropic/<case>/: input.json (a Responses request
body) (+ target.json, AnthropicTarget fields) -> expected.json ({"body", "context", "dropped_tools"}).
To write expected.json files after an intended change, run with SWITCHBOARD_UPDATE_GOLDEN=1 and
review the diff by eye.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import json_values, texts
from tests.test_chat_to_anthropic import assert_anthropic_accepts
from translate.chat_to_anthropic_request import AnthropicTarget
from translate.errors import InvalidRequest, NotFound, ProxyError, chat_error_body
from translate.responses_to_anthropic_request import (
    THINKING_ENVELOPE_PREFIX,
    ResponsesOnAnthropic,
    decode_thinking_envelope,
    encode_thinking_envelope,
    responses_to_anthropic_request,
)

FIXTURES = Path(__file__).parent / "fixtures" / "responses_to_anthropic"
UPDATE_GOLDEN = os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1"
DEFAULT_TARGET = {"model": "claude-sonnet-4-5"}
RESPONSE_ID = "resp_0123456789abcdef"
CREATED_AT = 1765000000
CASES = sorted(path.parent.name for path in FIXTURES.glob("*/input.json"))

THINKING = {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkgIARABGAIiQGx0"}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}


def load_json(case: str, name: str, default: object = None) -> object:
    path = FIXTURES / case / name
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def translate(body: dict, target: AnthropicTarget | None = None) -> ResponsesOnAnthropic:
    return responses_to_anthropic_request(
        body, target or AnthropicTarget(**DEFAULT_TARGET), response_id=RESPONSE_ID, created_at=CREATED_AT
    )


def as_dict(result: ResponsesOnAnthropic) -> dict:
    context = dataclasses.asdict(result.context)
    for name in ("custom_tools", "tool_search"):
        context[name] = sorted(context[name])
    context["namespaced"] = {flat: list(pair) for flat, pair in context["namespaced"].items()}
    return {"body": result.body, "context": context, "dropped_tools": list(result.dropped_tools)}


# ---------------------------------------------------------------------------------------------
# Golden fixtures
# ---------------------------------------------------------------------------------------------


def assert_hub_accepts(body: dict) -> None:
    """Anthropic's rules (chat's checker), plus the one this module relies on for thinking in a tool loop.

    Chat never sends thinking in a tool loop; here it may, when the last assistant turn starts with
    its signed thinking block, and without thinking no thinking block is sent at all.
    """
    messages = body["messages"]
    blocks = [block["type"] for message in messages for block in message["content"]]
    if "thinking" not in body:
        assert "thinking" not in blocks and "redacted_thinking" not in blocks
    last = messages[-1]["content"]
    if "thinking" in body and any(block["type"] == "tool_result" for block in last):
        assert messages[-2]["content"][0]["type"] in ("thinking", "redacted_thinking")
        body = {key: value for key, value in body.items() if key != "thinking"}
        assert "temperature" not in body and "top_p" not in body
    assert_anthropic_accepts(body)


@pytest.mark.parametrize("case", CASES)
def test_request_fixture(case: str) -> None:
    """Each fixture request translates to its expected Anthropic body and context, which Anthropic accepts."""
    body = load_json(case, "input.json")
    pristine = copy.deepcopy(body)
    result = translate(body, AnthropicTarget(**load_json(case, "target.json", DEFAULT_TARGET)))
    actual = json.loads(json.dumps(as_dict(result)))
    path = FIXTURES / case / "expected.json"
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))
    assert body == pristine, "the input is never modified"
    assert_hub_accepts(result.body)


def test_fixture_cases_exist() -> None:
    """The golden directory holds the Codex turn and every expected.json is present."""
    assert "codex_full_turn" in CASES
    assert all((FIXTURES / case / "expected.json").exists() for case in CASES)


# ---------------------------------------------------------------------------------------------
# Thinking envelope
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [THINKING, REDACTED, {**THINKING, "thinking": 'ünïcode \u2028 and "quotes"'}])
def test_envelope_round_trip_is_identity(block: dict) -> None:
    """encode then decode gives the block back unchanged, behind the recognisable prefix."""
    text = encode_thinking_envelope(block)
    assert text.startswith(THINKING_ENVELOPE_PREFIX)
    assert "=" not in text and "+" not in text and "/" not in text
    assert decode_thinking_envelope(text) == block


@pytest.mark.parametrize(
    "text",
    [
        "gAAAAABoOpenAIsOwnEncryptedReasoning==",
        None,
        "",
        THINKING_ENVELOPE_PREFIX,
        THINKING_ENVELOPE_PREFIX + "!!!not base64!!!",
        THINKING_ENVELOPE_PREFIX + "bm90IGpzb24",  # "not json"
        encode_thinking_envelope({"type": "thinking", "thinking": "no signature"}),
        encode_thinking_envelope({"type": "text", "text": "not thinking"}),
    ],
)
def test_foreign_or_damaged_encrypted_content_decodes_to_none(text: object) -> None:
    """Anything but our own well-formed envelope is foreign: None."""
    assert decode_thinking_envelope(text) is None


def test_envelope_of_another_kind_is_foreign() -> None:
    """An envelope with the prefix but another kind (k) is not an Anthropic thinking block."""
    import base64

    raw = json.dumps({"k": "oai", "d": THINKING}).encode()
    assert decode_thinking_envelope(THINKING_ENVELOPE_PREFIX + base64.urlsafe_b64encode(raw).decode()) is None


# ---------------------------------------------------------------------------------------------
# Focused rules
# ---------------------------------------------------------------------------------------------


def test_outputs_go_first_in_their_user_turn_in_call_order() -> None:
    """Results follow the assistant's call order and come before any user text in the same turn."""
    result = translate(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "b", "name": "f", "arguments": "{}"},
                {"role": "user", "content": "also this"},
                {"type": "function_call_output", "call_id": "b", "output": "B"},
                {"type": "function_call_output", "call_id": "a", "output": "A"},
            ],
        }
    )
    last = result.body["messages"][-1]["content"]
    assert [block.get("tool_use_id") or block["text"] for block in last] == ["a", "b", "also this"]


def test_consecutive_assistant_items_form_one_turn_in_order() -> None:
    """Reasoning, message and calls in a row make one assistant turn, thinking first."""
    result = translate(
        {
            "model": "m",
            "reasoning": {"effort": "medium"},
            "input": [
                {"role": "user", "content": "go"},
                {"type": "reasoning", "summary": [], "encrypted_content": encode_thinking_envelope(THINKING)},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
                {"type": "function_call", "call_id": "a", "name": "f", "arguments": '{"x": 1}'},
                {"type": "function_call_output", "call_id": "a", "output": "ok"},
            ],
        }
    )
    roles = [turn["role"] for turn in result.body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assistant = result.body["messages"][1]["content"]
    assert [block["type"] for block in assistant] == ["thinking", "text", "tool_use"]
    assert assistant[0] == THINKING and assistant[2]["input"] == {"x": 1}
    assert result.body["thinking"] == {"type": "enabled", "budget_tokens": 8192}


def test_bad_json_arguments_become_an_empty_object() -> None:
    """function_call arguments that are not a JSON object become {}."""
    for arguments in ("{oops", "[1, 2]", "", None):
        result = translate(
            {
                "model": "m",
                "input": [
                    {"role": "user", "content": "go"},
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": arguments},
                ],
            }
        )
        assert result.body["messages"][1]["content"][0]["input"] == {}


def test_custom_tool_becomes_a_function_with_one_string_input() -> None:
    """A custom tool is sent with a required string `input` and its grammar, and recorded for the way back."""
    result = translate(
        {
            "model": "m",
            "input": "patch it",
            "tools": [
                {
                    "type": "custom",
                    "name": "apply_patch",
                    "description": "Edit files.",
                    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "x"'},
                }
            ],
        }
    )
    tool = result.body["tools"][0]
    assert tool["name"] == "apply_patch"
    assert tool["input_schema"]["required"] == ["input"]
    assert tool["input_schema"]["properties"]["input"]["type"] == "string"
    assert tool["description"].startswith("Edit files.") and 'start: "x"' in tool["description"]
    assert result.context.custom_tools == frozenset({"apply_patch"})


def test_namespace_names_are_short_unless_they_collide() -> None:
    """Namespaced tools keep their short name, prefixed with the namespace only on a collision."""
    result = translate(
        {
            "model": "m",
            "input": "x",
            "tools": [
                {"type": "function", "name": "search"},
                {
                    "type": "namespace",
                    "name": "mcp__a",
                    "tools": [{"type": "function", "name": "search"}, {"type": "function", "name": "read"}],
                },
            ],
        }
    )
    assert [tool["name"] for tool in result.body["tools"]] == ["search", "mcp__a__search", "read"]
    assert result.context.namespaced == {"mcp__a__search": ("mcp__a", "search"), "read": ("mcp__a", "read")}


def test_long_namespaced_names_fit_anthropic_pattern() -> None:
    """A flattened name that would pass 128 characters is shortened to a valid, recorded name."""
    namespace = "mcp__" + "n" * 200
    result = translate(
        {
            "model": "m",
            "input": "x",
            "tools": [
                {"type": "namespace", "name": namespace, "tools": [{"type": "function", "name": "go"}]},
                {"type": "function", "name": "go"},
            ],
        }
    )
    flat = result.body["tools"][0]["name"]
    assert len(flat) <= 64 and flat.replace("_", "").replace("-", "").isalnum()
    assert result.context.namespaced[flat] == (namespace, "go")


def test_tool_search_output_tools_join_the_tool_list() -> None:
    """Tools a client tool search returned are sent upstream, and the search tool is recorded."""
    result = translate(
        {
            "model": "m",
            "tools": [{"type": "tool_search", "execution": "client", "description": "Find tools."}],
            "input": [
                {"role": "user", "content": "find"},
                {"type": "tool_search_call", "call_id": "s1", "execution": "client", "arguments": {"query": "weather"}},
                {
                    "type": "tool_search_output",
                    "call_id": "s1",
                    "execution": "client",
                    "tools": [
                        {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
                    ],
                },
            ],
        }
    )
    assert [tool["name"] for tool in result.body["tools"]] == ["tool_search", "get_weather"]
    call = result.body["messages"][1]["content"][0]
    assert call == {"type": "tool_use", "id": "s1", "name": "tool_search", "input": {"query": "weather"}}
    assert "get_weather" in result.body["messages"][2]["content"][0]["content"]
    assert result.context.tool_search == frozenset({"tool_search"})


def test_hosted_tools_are_dropped_and_named() -> None:
    """Hosted tools never go upstream; dropped_tools names them for the log."""
    result = translate(
        {
            "model": "m",
            "input": "x",
            "tools": [
                {"type": "web_search"},
                {"type": "code_interpreter", "container": {"type": "auto"}},
                {"type": "mcp", "server_label": "wiki"},
                {"type": "computer_use_preview"},
            ],
        }
    )
    assert "tools" not in result.body
    assert result.dropped_tools == ("web_search", "code_interpreter", "wiki", "computer_use_preview")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", {"type": "none"}),
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ({"type": "function", "name": "f"}, {"type": "tool", "name": "f"}),
        ({"type": "web_search_preview"}, {"type": "auto"}),
    ],
)
def test_tool_choice(choice: object, expected: dict) -> None:
    """tool_choice maps to none/auto/any/tool; a hosted tool's choice becomes auto."""
    result = translate(
        {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": choice}
    )
    assert result.body["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    """parallel_tool_calls false sets disable_parallel_tool_use, with auto when no choice was given."""
    result = translate(
        {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}], "parallel_tool_calls": False}
    )
    assert result.body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_effort_table_and_no_thinking_efforts() -> None:
    """reasoning.effort uses chat's budgets; none and minimal leave thinking off."""
    assert (
        translate({"model": "m", "input": "x", "reasoning": {"effort": "low"}}).body["thinking"]["budget_tokens"]
        == 2048
    )
    assert (
        translate({"model": "m", "input": "x", "reasoning": {"effort": "xhigh"}}).body["thinking"]["budget_tokens"]
        == 24576
    )
    for effort in ("none", "minimal", None):
        assert "thinking" not in translate({"model": "m", "input": "x", "reasoning": {"effort": effort}}).body


def test_thinking_blocks_removed_when_thinking_is_off() -> None:
    """Without reasoning, enveloped thinking in the history is not sent."""
    result = translate(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "reasoning", "summary": [], "encrypted_content": encode_thinking_envelope(THINKING)},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"},
            ],
        }
    )
    assert result.body["messages"][1]["content"] == [{"type": "text", "text": "hello"}]


def test_echo_holds_the_request_parameters_as_given() -> None:
    """context.echo keeps the echoed fields verbatim, and only those."""
    body = {
        "model": "gpt-5",
        "input": "x",
        "tools": [{"type": "web_search"}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "instructions": "be nice",
        "temperature": 0.5,
        "top_p": 1,
        "max_output_tokens": 50,
        "reasoning": {"effort": "none"},
        "text": {"verbosity": "low"},
        "store": False,
        "metadata": {"a": "b"},
        "prompt_cache_key": "k",
        "include": ["reasoning.encrypted_content"],
    }
    context = translate(body).context
    assert context.echo == {
        name: body[name] for name in body if name not in ("model", "input", "prompt_cache_key", "include")
    }
    assert (context.requested_model, context.response_id, context.created_at) == ("gpt-5", RESPONSE_ID, CREATED_AT)


def test_instructions_come_before_developer_messages_and_replace_the_operator_prompt() -> None:
    """instructions is the first system block; target.system_prompt is used only with no system text."""
    target = AnthropicTarget(model="c", system_prompt="operator", auto_cache=False)
    with_text = translate(
        {
            "model": "m",
            "instructions": "I",
            "input": [{"role": "developer", "content": "D"}, {"role": "user", "content": "u"}],
        },
        target,
    )
    assert [block["text"] for block in with_text.body["system"]] == ["I", "D"]
    without = translate({"model": "m", "input": "u"}, target)
    assert without.body["system"] == [{"type": "text", "text": "operator"}]


def test_missing_input_gets_a_placeholder_user_turn() -> None:
    """A request with instructions only still sends a valid first user turn."""
    result = translate({"model": "m", "instructions": "say hi"})
    assert result.body["messages"][0]["role"] == "user"


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

REJECTED = [
    (
        {"previous_response_id": "resp_abc"},
        400,
        "previous_response_id",
        "previous_response_not_found",
        "Previous response with id 'resp_abc' not found.",
    ),
    ({"conversation": "conv_1"}, 400, "conversation", "unsupported_parameter", None),
    ({"conversation": {"id": "conv_1"}}, 400, "conversation", "unsupported_parameter", None),
    ({"background": True}, 400, "background", "unsupported_parameter", None),
    ({"prompt": {"id": "pmpt_1"}}, 400, "prompt", "unsupported_parameter", None),
    ({"model": None}, 400, "model", None, None),
    ({"input": 5}, 400, "input", None, None),
    ({"input": [5]}, 400, "input[0]", None, None),
    ({"reasoning": {"effort": "extreme"}}, 400, "reasoning.effort", None, None),
    ({"max_output_tokens": 0}, 400, "max_output_tokens", None, None),
    ({"temperature": "hot"}, 400, "temperature", None, None),
    ({"text": {"format": {"type": "yaml"}}}, 400, "text.format.type", None, None),
    ({"tool_choice": {"type": "function", "name": "nope"}}, 400, "tool_choice.name", None, None),
    ({"tools": [{"type": "function", "name": "bad name!"}]}, 400, "tools[0].name", None, None),
    (
        {"tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]},
        400,
        "tools[1].name",
        None,
        None,
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
        400,
        "input[0].content[0].file_id",
        None,
        None,
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
        400,
        "input[0].content[0].file_id",
        None,
        None,
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        400,
        "input[0].content[0]",
        None,
        None,
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/tiff;base64,AAAA"}]}]},
        400,
        "input[0].content[0].image_url",
        None,
        None,
    ),
    ({"input": [{"role": "tool", "content": "x"}]}, 400, "input[0].role", None, None),
    (
        {"input": [{"type": "function_call_output", "call_id": "nobody", "output": "x"}]},
        400,
        "input[0].call_id",
        None,
        "No tool call found for function_call_output with call_id 'nobody'.",
    ),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, 400, "input[0].call_id", None, None),
    ({"input": [{"type": "item_reference", "id": "rs_123"}]}, 404, "input", None, "Item with id 'rs_123' not found."),
]


@pytest.mark.parametrize(("extra", "status", "param", "code", "message"), REJECTED)
def test_rejected_requests(extra: dict, status: int, param: str, code: str | None, message: str | None) -> None:
    """Each request that cannot be served is refused with its status, param, code and message."""
    body = {"model": "gpt-5", "input": "hi", "tools": [{"type": "function", "name": "f"}], **extra}
    with pytest.raises(ProxyError) as caught:
        translate(body)
    error = caught.value
    assert (error.status, error.param) == (status, param)
    if code is not None:
        assert error.code == code
    if message is not None:
        assert error.message == message
    assert isinstance(error, NotFound if status == 404 else InvalidRequest)


def test_item_reference_renders_like_openai() -> None:
    """The 404 renders as OpenAI's invalid_request_error with no code, and names store:false."""
    with pytest.raises(NotFound) as caught:
        translate({"model": "m", "store": False, "input": [{"type": "item_reference", "id": "rs_1"}]})
    assert "Items are not persisted when `store` is set to false." in caught.value.message
    rendered = chat_error_body(caught.value)["error"]
    assert (rendered["type"], rendered["code"], rendered["param"]) == ("invalid_request_error", None, "input")


def test_previous_response_id_renders_its_code() -> None:
    """The previous_response_id refusal keeps OpenAI's code and param in the OpenAI envelope."""
    with pytest.raises(InvalidRequest) as caught:
        translate({"model": "m", "input": "x", "previous_response_id": "resp_1"})
    rendered = chat_error_body(caught.value)["error"]
    assert rendered["code"] == "previous_response_not_found" and rendered["param"] == "previous_response_id"


# ---------------------------------------------------------------------------------------------
# Any input: a valid hub body or a ProxyError, never a crash
# ---------------------------------------------------------------------------------------------

ITEM_TYPES = [
    "message",
    "reasoning",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "tool_search_call",
    "tool_search_output",
    "local_shell_call",
    "local_shell_call_output",
    "web_search_call",
    "additional_tools",
    None,
]
CALL_IDS = st.sampled_from(["c1", "c1", "c2", "c2", "call with space", "", None])
_field_values = st.one_of(json_values, CALL_IDS, st.sampled_from(["user", "assistant", "developer", "f", "{}", "[]"]))
_parts = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input_text", "output_text", "refusal", "input_image", "input_file", "x"])},
        optional={"text": json_values, "refusal": json_values, "image_url": json_values, "file_data": json_values},
    ),
    max_size=3,
)
_items = st.fixed_dictionaries(
    {"type": st.sampled_from(ITEM_TYPES)},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]),
        "content": st.one_of(texts, _parts, json_values),
        "call_id": CALL_IDS,
        "name": st.sampled_from(["f", "apply_patch", "bad name", ""]),
        "namespace": st.sampled_from(["mcp__a", None]),
        "arguments": _field_values,
        "input": _field_values,
        "output": st.one_of(texts, _parts, json_values),
        "tools": st.one_of(json_values, st.just([{"type": "function", "name": "g"}])),
        "encrypted_content": st.one_of(texts, st.just(encode_thinking_envelope(THINKING))),
        "action": _field_values,
        "id": st.sampled_from(["c1", "rs_1"]),
    },
)
_tools = st.lists(
    st.sampled_from(
        [
            {"type": "function", "name": "f"},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "definition": "x"}},
            {"type": "namespace", "name": "mcp__a", "tools": [{"type": "function", "name": "f"}]},
            {"type": "tool_search", "execution": "client"},
            {"type": "local_shell"},
            {"type": "web_search"},
        ]
    ),
    max_size=4,
    unique_by=lambda tool: json.dumps(tool),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(_items, max_size=6),
    tools=_tools,
    effort=st.sampled_from([None, "none", "medium", "high"]),
    choice=st.sampled_from([None, "auto", "required", {"type": "function", "name": "f"}]),
)
def test_any_request_gives_a_valid_body_or_a_proxy_error(items, tools, effort, choice) -> None:
    """Whatever the items hold, the result is a body Anthropic accepts or a ProxyError."""
    body: dict = {"model": "m", "input": items, "tools": tools}
    if effort is not None:
        body["reasoning"] = {"effort": effort}
    if choice is not None:
        body["tool_choice"] = choice
    try:
        result = translate(body)
    except ProxyError:
        return
    assert_hub_accepts(result.body)
