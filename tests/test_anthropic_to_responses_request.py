"""Anthropic front -> OpenAI Responses upstream: request translation.

Golden cases live in tests/fixtures/anthropic_to_responses_request/<case>/, one directory each:
request.json (the Anthropic body), target.json (ResponsesTarget fields) and expected.json
({"body", "tool_names", "dropped_tools"}). Every produced body is also read by the openai SDK's own
request types, so a misspelt or misplaced field fails here rather than at OpenAI.

To write expected.json files after an intended change, run with SWITCHBOARD_UPDATE_GOLDEN=1 and
review the diff: the golden files are the spec.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from translate.anthropic_to_responses_request import (
    RESPONSES_MIN_OUTPUT_TOKENS,
    ResponsesRequest,
    ResponsesTarget,
    anthropic_to_responses_request,
)
from translate.errors import InvalidRequest
from translate.responses_context import encode_reasoning_signature
from translate.reuse import RememberedList

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic_to_responses_request"
UPDATE_GOLDEN = os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1"
REQUESTED_MODEL = "claude-sonnet-4-5"
PLAIN = ResponsesTarget(model="gpt-4.1", reasoning=False)
REASONING = ResponsesTarget(model="gpt-5-codex", reasoning=True)
# Every top-level field the translator may write: anything else would be a leak.
BODY_FIELDS = {
    "model", "instructions", "input", "max_output_tokens", "temperature", "top_p", "stream", "tools",
    "tool_choice", "parallel_tool_calls", "reasoning", "text", "safety_identifier", "store", "include",
}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def cases() -> list[str]:
    return sorted(path.parent.name for path in FIXTURES.glob("*/request.json"))


def load_json(case: str, filename: str) -> object:
    return json.loads((FIXTURES / case / filename).read_text(encoding="utf-8"))


def translate_case(case: str) -> ResponsesRequest:
    return anthropic_to_responses_request(load_json(case, "request.json"), ResponsesTarget(**load_json(case, "target.json")))


def request_as_dict(request: ResponsesRequest) -> dict:
    return {"body": request.body, "tool_names": request.tool_names, "dropped_tools": list(request.dropped_tools)}


def minimal_body(**fields: object) -> dict:
    return {"model": REQUESTED_MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}], **fields}


def reasoning_signature(blob: str = "gAAAAABblob==", summary: str = "Thinking it over.") -> str:
    """The signature the response side puts on a thinking block made from an OpenAI reasoning item."""
    item = {"id": "rs_01", "type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]}
    return encode_reasoning_signature(dict(item, encrypted_content=blob))


def items_of(body: dict, kind: str) -> list[dict]:
    return [item for item in body["input"] if item["type"] == kind]


# ---------------------------------------------------------------------------------------------
# The openai SDK reads our bodies
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_request_types():
    """pydantic readers for the SDK's request TypedDicts: (streaming body, non-streaming body)."""
    pydantic = pytest.importorskip("pydantic")
    params = pytest.importorskip("openai.types.responses.response_create_params")
    return (
        pydantic.TypeAdapter(params.ResponseCreateParamsStreaming),
        pydantic.TypeAdapter(params.ResponseCreateParamsNonStreaming),
    )


def as_the_sdk_types_it(body: dict) -> dict:
    """`body` with the fields the SDK's input types mark required but we leave out on purpose.

    Reasoning items and assistant messages go without `id` (under store:false OpenAI looks ids up
    among stored items), without `status`, and output_text without `annotations`, as Codex sends
    them; the SDK's types describe items as OpenAI returns them, with all three.
    """
    body = copy.deepcopy(body)
    for item in body["input"]:
        if item["type"] == "reasoning":
            assert "id" not in item
            item["id"] = "rs_placeholder"
        elif item["type"] == "message" and item["role"] == "assistant":
            assert "id" not in item and "status" not in item
            item.update(id="msg_placeholder", status="completed")
            for part in item["content"]:
                assert part["type"] == "output_text" and "annotations" not in part
                part["annotations"] = []
    return body


def materialised(value: object) -> object:
    """`value` with the SDK's lazily validated iterables read out (which validates them)."""
    if isinstance(value, dict):
        return {key: materialised(inner) for key, inner in value.items()}
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ValidatorIterator":
        return [materialised(inner) for inner in value]
    return value


def check_with_the_sdk(body: dict, sdk_request_types) -> None:
    """The SDK's request types accept `body` and keep every field of it (they drop unknown ones)."""
    streaming, non_streaming = sdk_request_types
    expected = as_the_sdk_types_it(body)
    adapter = streaming if body.get("stream") is True else non_streaming
    assert materialised(adapter.validate_python(expected)) == expected


# ---------------------------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
def test_request_golden_case(case: str, sdk_request_types) -> None:
    """The Anthropic request translates into exactly the expected Responses request, which the SDK accepts."""
    actual = request_as_dict(translate_case(case))
    path = FIXTURES / case / "expected.json"
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))
    check_with_the_sdk(actual["body"], sdk_request_types)


@pytest.mark.parametrize("case", cases())
def test_every_golden_body_keeps_the_stateless_rules(case: str) -> None:
    """store:false, no item ids, every output after its call, call ids within 64 characters."""
    target = ResponsesTarget(**load_json(case, "target.json"))
    body = translate_case(case).body
    assert set(body) <= BODY_FIELDS
    assert body["store"] is False
    assert ("include" in body) == target.reasoning
    assert all("id" not in item for item in body["input"])
    called: set[str] = set()
    for item in body["input"]:
        if item["type"] == "function_call":
            assert len(item["call_id"]) <= 64
            assert isinstance(json.loads(item["arguments"]), dict)
            called.add(item["call_id"])
        elif item["type"] == "function_call_output":
            assert item["call_id"] in called
    if not target.reasoning:
        assert not items_of(body, "reasoning") and "reasoning" not in body


def test_every_fixture_directory_is_a_case() -> None:
    """No fixture directory is silently skipped for lack of a request.json or an expected.json."""
    directories = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    assert directories == set(cases())
    assert all((FIXTURES / case / "expected.json").exists() for case in directories)


# ---------------------------------------------------------------------------------------------
# Rules worth stating on their own
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "thinking, output_config, reasoning",
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, {"effort": "low", "summary": "auto"}),
        ({"type": "enabled", "budget_tokens": 8000}, None, {"effort": "medium", "summary": "auto"}),
        ({"type": "enabled", "budget_tokens": 31999}, {"effort": "low"}, {"effort": "high", "summary": "auto"}),
        ({"type": "adaptive"}, {"effort": "medium"}, {"effort": "medium", "summary": "auto"}),
        ({"type": "adaptive"}, {"effort": "max"}, {"effort": "high", "summary": "auto"}),
        (None, {"effort": "xhigh"}, {"effort": "high", "summary": "auto"}),
        ({"type": "adaptive"}, None, None),
        (None, None, None),
        ({"type": "disabled"}, {"effort": "high"}, None),
    ],
)
def test_thinking_settings_become_reasoning_for_reasoning_targets(thinking, output_config, reasoning) -> None:
    """Effort is read as for Chat and asks for an automatic summary; disabled thinking sends none."""
    fields = {key: value for key, value in (("thinking", thinking), ("output_config", output_config)) if value}
    assert anthropic_to_responses_request(minimal_body(**fields), REASONING).body.get("reasoning") == reasoning
    assert "reasoning" not in anthropic_to_responses_request(minimal_body(**fields), PLAIN).body


def test_reasoning_targets_get_no_sampling_and_plain_targets_no_encrypted_reasoning() -> None:
    """temperature/top_p go only to plain targets; the encrypted-reasoning include only to reasoning ones."""
    body = minimal_body(temperature=0.5, top_p=0.9)
    reasoning = anthropic_to_responses_request(body, REASONING).body
    plain = anthropic_to_responses_request(body, PLAIN).body
    assert "temperature" not in reasoning and "top_p" not in reasoning
    assert reasoning["include"] == ["reasoning.encrypted_content"] and reasoning["store"] is False
    assert (plain["temperature"], plain["top_p"]) == (0.5, 0.9)
    assert "include" not in plain and plain["store"] is False


@pytest.mark.parametrize(
    "max_tokens, limit, sent",
    [
        (100, None, 100),
        (100, 50, 50),
        (100, 200, 100),
        (0, None, RESPONSES_MIN_OUTPUT_TOKENS),
        (1, 8192, RESPONSES_MIN_OUTPUT_TOKENS),
    ],
)
def test_max_output_tokens_is_capped_and_never_below_openais_minimum(max_tokens, limit, sent) -> None:
    """The target's cap applies only when lower; a pre-warm's 0 or a probe's 1 is raised to 16."""
    target = ResponsesTarget(model="gpt-5", reasoning=True, max_tokens_limit=limit)
    assert anthropic_to_responses_request(minimal_body(max_tokens=max_tokens), target).body["max_output_tokens"] == sent


@pytest.mark.parametrize("user_id, sent", [("u-1", "u-1"), ("x" * 64, "x" * 64), ("x" * 65, None), ("", None), (7, None)])
def test_user_id_becomes_safety_identifier_only_when_it_fits(user_id, sent) -> None:
    """OpenAI takes at most 64 characters; Claude Code's longer ids are left out rather than cut."""
    body = anthropic_to_responses_request(minimal_body(metadata={"user_id": user_id}), PLAIN).body
    assert body.get("safety_identifier") == sent


def test_stream_is_sent_only_when_true() -> None:
    """A false or missing stream leaves the field out; true is copied with no stream_options."""
    assert "stream" not in anthropic_to_responses_request(minimal_body(stream=False), PLAIN).body
    body = anthropic_to_responses_request(minimal_body(stream=True), PLAIN).body
    assert body["stream"] is True and "stream_options" not in body


def test_tool_choice_without_any_tool_sent_is_left_out() -> None:
    """Only server tools: no tools, no tool_choice, no parallel_tool_calls, and the tools named as dropped."""
    server = {"type": "web_search_20250305", "name": "web_search"}
    request = anthropic_to_responses_request(
        minimal_body(tools=[server], tool_choice={"type": "any", "disable_parallel_tool_use": True}), REASONING
    )
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(request.body)
    assert request.dropped_tools == ("web_search",)


def test_tools_are_strict_only_when_the_client_asked() -> None:
    """strict:false by default, so OpenAI does not make every property required; strict:true is kept."""
    tools = [WEATHER_TOOL, dict(WEATHER_TOOL, name="strict_weather", strict=True), {"name": "bare"}]
    sent = anthropic_to_responses_request(minimal_body(tools=tools), REASONING).body["tools"]
    assert [tool["strict"] for tool in sent] == [False, True, False]
    assert sent[2] == {"type": "function", "name": "bare", "parameters": {"type": "object", "properties": {}}, "strict": False}


def test_a_remembered_tool_list_is_translated_once_and_never_changed() -> None:
    """The flat tool list made from a remembered list is reused as is, and the client's list is untouched."""
    remembered = RememberedList([copy.deepcopy(WEATHER_TOOL), {"type": "web_search_20250305", "name": "web_search"}])
    before = copy.deepcopy(list(remembered))
    first = anthropic_to_responses_request(minimal_body(tools=remembered), REASONING)
    second = anthropic_to_responses_request(minimal_body(tools=remembered), REASONING)
    assert second.body["tools"] is first.body["tools"]
    assert isinstance(first.body["tools"], RememberedList)
    assert second.dropped_tools == ("web_search",)
    assert list(remembered) == before


def test_the_client_body_is_never_changed() -> None:
    """Translating builds new values; every golden request is byte-identical afterwards."""
    for case in cases():
        body = load_json(case, "request.json")
        before = copy.deepcopy(body)
        anthropic_to_responses_request(body, ResponsesTarget(**load_json(case, "target.json")))
        assert body == before, case


def test_reasoning_is_carried_back_before_the_calls_it_preceded() -> None:
    """Our envelope turns back into the reasoning item it carried, unchanged and without an id, in place."""
    signature = reasoning_signature("gAAAAABsecret==", "Two cities.")
    body = minimal_body(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Two cities.", "signature": signature},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18°C"}]},
        ],
    )
    items = anthropic_to_responses_request(body, REASONING).body["input"]
    assert [item["type"] for item in items] == ["message", "reasoning", "function_call", "function_call_output"]
    assert items[1] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Two cities."}],
        "encrypted_content": "gAAAAABsecret==",
    }


def test_reasoning_that_led_to_nothing_is_not_sent() -> None:
    """A turn ending in reasoning (cut short) loses that reasoning; a turn of reasoning alone sends nothing."""
    signature = reasoning_signature()
    body = minimal_body(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello."}, {"type": "thinking", "thinking": "", "signature": signature}]},
            {"role": "user", "content": "Again"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": signature}]},
            {"role": "user", "content": "Go on"},
        ],
    )
    items = anthropic_to_responses_request(body, REASONING).body["input"]
    assert [(item["type"], item["role"]) for item in items] == [
        ("message", "user"), ("message", "assistant"), ("message", "user"), ("message", "user"),
    ]


def test_assistant_blocks_keep_their_order_and_consecutive_texts_share_a_message() -> None:
    """Text after a call stays after it; two texts in a row are two parts of one message."""
    body = minimal_body(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Looking."},
                {"type": "text", "text": "One moment."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": None},
                {"type": "text", "text": "Called."},
                {"type": "text", "text": ""},
            ]},
        ],
    )
    items = anthropic_to_responses_request(body, REASONING).body["input"][1:]
    assert items == [
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Looking."}, {"type": "output_text", "text": "One moment."},
        ]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Called."}]},
    ]


def test_outputs_come_first_in_their_turn_and_text_follows_as_a_user_message() -> None:
    """A user turn's tool results are outputs in their order, then its other blocks as one user message."""
    body = minimal_body(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Paris and Oslo?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "Here:"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "4°C"},
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C"},
            ]},
        ],
    )
    items = anthropic_to_responses_request(body, REASONING).body["input"]
    assert [(item["type"], item.get("call_id")) for item in items[3:]] == [
        ("function_call_output", "call_2"), ("function_call_output", "call_1"), ("message", None),
    ]
    assert items[-1]["content"] == [{"type": "input_text", "text": "Here:"}]


def test_a_system_turn_waits_for_the_outputs_it_arrived_before() -> None:
    """Mid-conversation system turns are developer messages, never between calls and their outputs."""
    body = minimal_body(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "system", "content": "Note one."},
            {"role": "user", "content": "Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}]},
            {"role": "system", "content": [{"type": "text", "text": "Note two."}]},
        ],
    )
    items = anthropic_to_responses_request(body, REASONING).body["input"]
    assert items[0] == {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Note one."}]}
    assert [item["type"] for item in items] == ["message", "message", "function_call", "message"]
    body["messages"].append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "ok"}]})
    items = anthropic_to_responses_request(body, REASONING).body["input"]
    assert [item.get("role", item["type"]) for item in items] == [
        "developer", "user", "function_call", "function_call_output", "developer",
    ]


def test_an_error_result_with_an_image_says_so_before_its_parts() -> None:
    """An error result holding an image is a part list opening with "Error:"."""
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    body = minimal_body(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "is_error": True, "content": [image]}]},
        ],
    )
    output = items_of(anthropic_to_responses_request(body, REASONING).body, "function_call_output")[0]["output"]
    assert output == [
        {"type": "input_text", "text": "Error:"},
        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
    ]


def test_json_schema_output_is_a_flat_text_format() -> None:
    """Responses takes the schema flat under text.format, not nested as Chat's response_format."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
    body = anthropic_to_responses_request(
        minimal_body(output_config={"format": {"type": "json_schema", "schema": schema}}), PLAIN
    ).body
    assert body["text"] == {"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": True}}
    assert "response_format" not in body


@pytest.mark.parametrize(
    "body, param",
    [
        ([], None),
        ({"max_tokens": 10, "messages": []}, "model"),
        ({"model": "m", "max_tokens": 10, "messages": {}}, "messages"),
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": -1, "messages": []}, "max_tokens"),
        (minimal_body(temperature="hot"), "temperature"),
        (minimal_body(system=7), "system"),
        (minimal_body(tools={"name": "x"}), "tools"),
        (minimal_body(tools=[{"description": "no name"}]), "tools[0].name"),
        (minimal_body(tools=[WEATHER_TOOL], tool_choice="auto"), "tool_choice"),
        (minimal_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (minimal_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (minimal_body(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages[0].content[0]"),
        (minimal_body(messages=[{"role": "assistant", "content": [{"type": "text", "text": 1}]}]), "messages[0].content[0].text"),
        (minimal_body(messages=[{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}]), "messages[0].content[0].id"),
        (minimal_body(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "c"}]}]), "messages[0].content[0].name"),
        (minimal_body(messages=[{"role": "user", "content": [{"type": "tool_result"}]}]), "messages[0].content[0].tool_use_id"),
    ],
)
def test_invalid_requests_are_400s_naming_the_field(body: object, param: str | None) -> None:
    """A request that cannot be translated raises InvalidRequest with the offending field as `param`."""
    with pytest.raises(InvalidRequest) as raised:
        anthropic_to_responses_request(body, REASONING)  # type: ignore[arg-type]
    assert raised.value.param == param
