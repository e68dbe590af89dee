"""Gemini quirks: tool schema cleaning, the request allowlist, thought signatures, thought tags.

Golden cases live in tests/fixtures/gemini/<case>/, one directory each; the files present say the
kind:
- schema:   tools.json (Anthropic tools), expected.json ({tool name: cleaned parameters}).
- prepare:  openai_request.json (an OpenAI body), optional options.json (keyword arguments),
            expected.json (what prepare_gemini_request makes of it).
- response: response.json (a Gemini body), options.json (translation flags), expected.json.
- stream:   upstream.sse, options.json (stream flags), expected.json (the Anthropic events), and
            optionally equivalent.json (the same answer unstreamed; the folded stream must equal
            its translation).

To write expected.json files after an intended change, run with SWITCHBOARD_UPDATE_GOLDEN=1 and
review the diff: the golden files are the spec.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# The Anthropic-front stream harness (invariants, folding, the three ways of splitting bytes).
from test_anthropic_to_chat import check_stream_invariants, fold, three_ways

from translate.anthropic_to_chat_request import (
    ChatTarget,
    anthropic_to_chat_request,
)
from translate.chat_to_anthropic_response import ChatToAnthropicStream, chat_to_anthropic_response
from translate.thought_tags import InlineThoughtSplitter, split_inline_thoughts
from translate.gemini import (
    DUMMY_THOUGHT_SIGNATURE,
    GEMINI_REQUEST_FIELDS,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    clean_tool_schema,
    is_thought_signature_error,
    prepare_gemini_request,
    with_dummy_thought_signatures,
)
from translate.sse import SSEDecoder, encode_anthropic_event
from translate.tools import ThoughtSignature, signed_tool_id, split_signed_tool_id

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
UPDATE_GOLDEN = os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1"
REQUESTED_MODEL = "claude-opus-4-8"
MESSAGE_ID = "msg_01GeminiTest"
ANTHROPIC_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
GEMINI = ChatTarget(
    model="gemini-3-pro-preview",
    reasoning=False,
    reasoning_history_field=None,
    send_user=False,
    thought_signatures=True,
    max_stop_sequences=5,
)
PLAIN = ChatTarget(model="gpt-4o", reasoning=False)
# What Gemini accepts in a function declaration schema (the proto's fields we choose to send).
GEMINI_SCHEMA_KEYS = {
    "type", "nullable", "description", "title", "enum", "format", "minLength", "maxLength", "pattern",
    "minimum", "maximum", "items", "minItems", "maxItems", "properties", "required", "minProperties",
    "maxProperties", "anyOf",
}
GEMINI_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
SIGNATURE_OSLO = (
    "pU3KGCUwux1tEyze1iN7LtkeP3IfyxlxF0SU1kk8nVw0YL4xIB5p/tqg7ui5mX9cfCmZ/a/lkyU81lSvTfrXFCegrrP+6SMvivIhH57kkcWxC+"
    "y1Vjv8Hm+TQn7LyP4p"
)
SIGNATURE_BERGEN = "VeXNjkbcjtS3wnZNKlpNdncG+F2GkAJK1r2jQBvpyMvMyTX2zR9hImrhUziuGjQATTO6DSRqwEyBsbryPg=="


def cases_with(filename: str) -> list[str]:
    return sorted(path.parent.name for path in FIXTURES.glob(f"*/{filename}"))


def load_json(case: str, filename: str, default: object = None) -> object:
    path = FIXTURES / case / filename
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def check_golden(case: str, actual: object) -> None:
    path = FIXTURES / case / "expected.json"
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))


def schema_nodes(schema: dict):
    """Every schema object inside a cleaned schema, the root included."""
    yield schema
    for child in (schema.get("properties") or {}).values():
        yield from schema_nodes(child)
    if isinstance(schema.get("items"), dict):
        yield from schema_nodes(schema["items"])
    for branch in schema.get("anyOf") or []:
        yield from schema_nodes(branch)


def check_gemini_schema(schema: dict) -> None:
    """The rules Gemini enforces, each of which has produced a 400 in the field."""
    for node in schema_nodes(schema):
        assert set(node) <= GEMINI_SCHEMA_KEYS, set(node) - GEMINI_SCHEMA_KEYS
        if "anyOf" in node:
            assert set(node) <= {"anyOf", "nullable", "description", "title"} and len(node["anyOf"]) >= 2
            continue
        assert node.get("type") in GEMINI_TYPES
        if "enum" in node:
            assert node["type"] == "string" and node["enum"]
            assert all(isinstance(value, str) and value for value in node["enum"])
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict)
        else:
            assert not {"items", "minItems", "maxItems"} & set(node)
        if node["type"] != "object":
            assert not {"properties", "required"} & set(node)
        assert set(node.get("required", [])) <= set(node.get("properties", {}))
        assert node.get("properties", None) != {}


# ---------------------------------------------------------------------------------------------
# Stream harness
# ---------------------------------------------------------------------------------------------


def new_stream(options: dict) -> ChatToAnthropicStream:
    return ChatToAnthropicStream(
        requested_model=REQUESTED_MODEL,
        message_id=MESSAGE_ID,
        tool_names={},
        buffer_tool_calls=options.get("buffer_tool_calls", False),
        thought_signatures=options.get("thought_signatures", False),
        thought_tags=options.get("thought_tags", False),
    )


def translate_stream(pieces: list[bytes], options: dict) -> tuple[list[dict], ChatToAnthropicStream]:
    """Decode the pieces as network reads, feed every event, then close as at EOF."""
    decoder = SSEDecoder()
    stream = new_stream(options)
    events: list[dict] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            events += stream.feed(event)
    for event in decoder.close():
        events += stream.feed(event)
    events += stream.close()
    assert stream.finished
    return events, stream


def translate_response(response: dict, options: dict) -> dict:
    return chat_to_anthropic_response(
        response,
        requested_model=REQUESTED_MODEL,
        message_id=MESSAGE_ID,
        tool_names={},
        thought_signatures=options.get("thought_signatures", False),
        thought_tags=options.get("thought_tags", False),
    )


def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    """One Gemini-style SSE chunk (empty id, no tool index)."""
    body: dict = {"id": "", "object": "chat.completion.chunk", "model": "gemini-2.5-pro"}
    body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


# ---------------------------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases_with("tools.json"))
def test_schema_golden_case(case: str) -> None:
    """A real tool set cleans into exactly the expected Gemini schemas, each obeying Gemini's rules."""
    tools = load_json(case, "tools.json")
    cleaned = {tool["name"]: clean_tool_schema(tool["input_schema"]) for tool in tools}
    for schema in cleaned.values():
        check_gemini_schema(schema)
        assert clean_tool_schema(schema) == schema
    check_golden(case, cleaned)


@pytest.mark.parametrize("case", cases_with("openai_request.json"))
def test_prepare_golden_case(case: str) -> None:
    """An OpenAI body becomes exactly the expected Gemini body, and the input is left untouched."""
    body = load_json(case, "openai_request.json")
    before = json.dumps(body, sort_keys=True)
    prepared = prepare_gemini_request(body, **load_json(case, "options.json", {}))
    assert json.dumps(body, sort_keys=True) == before
    assert set(prepared) <= set(GEMINI_REQUEST_FIELDS)
    for tool in prepared.get("tools", []):
        if "parameters" in tool["function"]:
            check_gemini_schema(tool["function"]["parameters"])
    check_golden(case, prepared)


@pytest.mark.parametrize("case", cases_with("response.json"))
def test_response_golden_case(case: str) -> None:
    """A Gemini body translates into exactly the expected Anthropic message."""
    message = translate_response(load_json(case, "response.json"), load_json(case, "options.json", {}))
    assert all(ANTHROPIC_TOOL_ID.fullmatch(block["id"]) for block in message["content"] if block["type"] == "tool_use")
    check_golden(case, message)


@pytest.mark.parametrize("case", cases_with("upstream.sse"))
def test_stream_golden_case_fed_whole_by_line_and_by_byte(case: str) -> None:
    """A Gemini stream gives the expected events however its bytes are split, and keeps the invariants."""
    raw = (FIXTURES / case / "upstream.sse").read_bytes()
    options = load_json(case, "options.json", {})
    results = {name: translate_stream(pieces, options)[0] for name, pieces in three_ways(raw).items()}
    assert results["lines"] == results["whole"]
    assert results["bytes"] == results["whole"]
    check_stream_invariants(results["whole"])
    for event in results["whole"]:
        if event["type"] == "content_block_start" and event["content_block"]["type"] == "tool_use":
            assert ANTHROPIC_TOOL_ID.fullmatch(event["content_block"]["id"])
    check_golden(case, results["whole"])


@pytest.mark.parametrize("case", cases_with("equivalent.json"))
def test_folded_stream_equals_the_translated_whole_response(case: str) -> None:
    """Folding the translated stream gives the same message as translating the unstreamed answer."""
    options = load_json(case, "options.json", {})
    events, _ = translate_stream([(FIXTURES / case / "upstream.sse").read_bytes()], options)
    assert fold(events) == translate_response(load_json(case, "equivalent.json"), options)


def test_every_fixture_directory_is_a_known_kind() -> None:
    """No fixture directory is silently skipped for lack of a recognised input file."""
    kinds = set()
    for filename in ("tools.json", "openai_request.json", "response.json", "upstream.sse"):
        kinds |= set(cases_with(filename))
    assert {path.name for path in FIXTURES.iterdir() if path.is_dir()} == kinds
    assert all((FIXTURES / case / "expected.json").exists() for case in kinds)


def test_the_anthropic_sdk_reads_signed_tool_ids_unchanged() -> None:
    """The real Anthropic SDK accumulates the signed stream into the message the non-stream path gives."""
    anthropic = pytest.importorskip("anthropic")
    try:
        import httpx2 as httpx
    except ImportError:
        httpx = pytest.importorskip("httpx")
    case = "stream_parallel_signed_calls_without_index"
    options = load_json(case, "options.json")
    events, _ = translate_stream([(FIXTURES / case / "upstream.sse").read_bytes()], options)
    body = b"".join(encode_anthropic_event(event) for event in events)

    def handler(request):  # an in-memory transport: no socket is opened
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = anthropic.Anthropic(
        api_key="test", base_url="http://127.0.0.1:1", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with client.messages.stream(model=REQUESTED_MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]) as stream:
        final = stream.get_final_message()
    whole = translate_response(load_json(case, "equivalent.json"), options)
    assert [block.id for block in final.content if block.type == "tool_use"] == [
        block["id"] for block in whole["content"] if block["type"] == "tool_use"
    ]
    assert final.stop_reason == "tool_use"


# ---------------------------------------------------------------------------------------------
# Thought signatures: the multi-turn round trip
# ---------------------------------------------------------------------------------------------


def gemini_turn(options: dict | None = None) -> dict:
    """The assistant message Claude Code keeps after the signed parallel-calls stream."""
    case = "stream_parallel_signed_calls_without_index"
    events, _ = translate_stream([(FIXTURES / case / "upstream.sse").read_bytes()], options or {"thought_signatures": True})
    return fold(events)


def next_request(assistant: dict, *, extra_turns: list[dict] = ()) -> dict:
    """The Anthropic request Claude Code sends next: the assistant turn, then a result per tool_use."""
    results = [
        {"type": "tool_result", "tool_use_id": block["id"], "content": f"weather {position}"}
        for position, block in enumerate(assistant["content"])
        if block["type"] == "tool_use"
    ]
    return {
        "model": REQUESTED_MODEL,
        "max_tokens": 1000,
        "stream": True,
        "messages": [
            {"role": "user", "content": "Weather in Oslo and Bergen?"},
            {"role": "assistant", "content": assistant["content"]},
            {"role": "user", "content": results},
            *extra_turns,
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    }


def test_signatures_ride_in_tool_ids_and_come_back_on_their_own_calls() -> None:
    """Gemini stream -> Anthropic ids -> next request -> the exact signatures on the right calls, plain ids."""
    assistant = gemini_turn()
    tool_ids = [block["id"] for block in assistant["content"] if block["type"] == "tool_use"]
    assert len(tool_ids) == 2
    assert all(ANTHROPIC_TOOL_ID.fullmatch(tool_id) for tool_id in tool_ids)
    assert tool_ids[0].startswith("jm4owj31__ts") and tool_ids[1].startswith("function-call-2__ts")

    request = anthropic_to_chat_request(next_request(assistant), GEMINI)
    prepared = prepare_gemini_request(request.body)
    messages = prepared["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "tool", "tool"]
    calls = messages[1]["tool_calls"]
    assert [call["id"] for call in calls] == ["jm4owj31", "function-call-2"]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": SIGNATURE_OSLO}}
    assert calls[1]["extra_content"] == {"vertex": {"thought_signature": SIGNATURE_BERGEN}}
    assert [(m["tool_call_id"], m["name"]) for m in messages[2:]] == [
        ("jm4owj31", "get_weather"),
        ("function-call-2", "get_weather"),
    ]
    assert messages[1]["content"] == "I'll check both cities."


def test_non_stream_answers_carry_signatures_the_same_way() -> None:
    """The whole-body translation makes the same signed ids as the stream, so both round-trip alike."""
    options = {"thought_signatures": True}
    message = translate_response(load_json("stream_parallel_signed_calls_without_index", "equivalent.json"), options)
    request = anthropic_to_chat_request(next_request(message), GEMINI)
    calls = request.body["messages"][1]["tool_calls"]
    assert [call["extra_content"] for call in calls] == [
        {"google": {"thought_signature": SIGNATURE_OSLO}},
        {"vertex": {"thought_signature": SIGNATURE_BERGEN}},
    ]


def test_with_the_feature_off_ids_are_plain_and_nothing_extra_is_sent() -> None:
    """Without thought_signatures, neither side carries signatures: plain ids, no extra_content."""
    assistant = gemini_turn({"thought_signatures": False})
    tool_ids = [block["id"] for block in assistant["content"] if block["type"] == "tool_use"]
    assert tool_ids == ["jm4owj31", "function-call-2"]
    body = anthropic_to_chat_request(next_request(assistant), PLAIN).body
    assert "extra_content" not in json.dumps(body)


def test_signed_ids_sent_to_another_upstream_become_plain_ids() -> None:
    """A session moved from Gemini to another upstream sends the plain ids, consistently, with no signature."""
    body = anthropic_to_chat_request(next_request(gemini_turn()), PLAIN).body
    calls = body["messages"][1]["tool_calls"]
    assert [call["id"] for call in calls] == ["jm4owj31", "function-call-2"]
    assert [message["tool_call_id"] for message in body["messages"][2:]] == ["jm4owj31", "function-call-2"]
    assert "extra_content" not in json.dumps(body)
    assert all(len(call["id"]) <= 40 for call in calls)


def test_unsigned_calls_of_the_current_turn_get_the_dummy_signature() -> None:
    """History from another model (no signature in the ids) gets Google's dummy on the current turn's calls."""
    migrated = {
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Bergen"}},
        ]
    }
    request = anthropic_to_chat_request(next_request(migrated), GEMINI)
    calls = prepare_gemini_request(request.body)["messages"][1]["tool_calls"]
    assert [call["id"] for call in calls] == ["toolu_01A", "toolu_01B"]
    assert [call["extra_content"] for call in calls] == [{"google": {"thought_signature": DUMMY_THOUGHT_SIGNATURE}}] * 2


def test_older_turns_get_no_dummy_and_dummies_can_be_turned_off() -> None:
    """Only the current turn is checked by Gemini; an older unsigned turn is sent as it was."""
    migrated = {"content": [{"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}]}
    later = [
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
        {"role": "user", "content": "Thanks. Now something else."},
    ]
    request = anthropic_to_chat_request(next_request(migrated, extra_turns=later), GEMINI)
    assert "extra_content" not in json.dumps(prepare_gemini_request(request.body))
    current = anthropic_to_chat_request(next_request(migrated), GEMINI)
    assert "extra_content" not in json.dumps(prepare_gemini_request(current.body, dummy_thought_signatures=False))


def test_a_late_signature_without_buffering_is_counted_as_lost() -> None:
    """A signature arriving after its tool_use block opened cannot join the id: it is counted for a log line."""
    raw = (FIXTURES / "stream_late_signature_lost_when_unbuffered" / "upstream.sse").read_bytes()
    events, stream = translate_stream([raw], {"thought_signatures": True})
    assert stream.lost_thought_signatures == 1
    buffered_events, buffered = translate_stream([raw], {"thought_signatures": True, "buffer_tool_calls": True})
    assert buffered.lost_thought_signatures == 0
    ids = [fold(found)["content"][0]["id"] for found in (events, buffered_events)]
    assert ids[0] == "c-1"
    assert split_signed_tool_id(ids[1]) == ("c-1", ThoughtSignature("c2lnbmF0dXJlLWZvci1scw=="))


def test_a_corrupted_signature_can_be_swapped_for_the_dummy_on_retry() -> None:
    """Gemini's signature errors are recognised, and the retry body carries dummies on every call."""
    assert is_thought_signature_error("Corrupted thought signature.")
    assert is_thought_signature_error("Function call is missing a thought_signature in functionCall parts")
    assert not is_thought_signature_error("Unknown name \"seed\": Cannot find field.")
    request = anthropic_to_chat_request(next_request(gemini_turn()), GEMINI)
    prepared = prepare_gemini_request(request.body)
    retry = with_dummy_thought_signatures(prepared)
    assert [call["extra_content"] for call in retry["messages"][1]["tool_calls"]] == [
        {"google": {"thought_signature": DUMMY_THOUGHT_SIGNATURE}}
    ] * 2
    assert prepared["messages"][1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"] == SIGNATURE_OSLO


# ---------------------------------------------------------------------------------------------
# Thought signatures: the id codec
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        ThoughtSignature(SIGNATURE_OSLO),
        ThoughtSignature(SIGNATURE_BERGEN, "vertex"),
        ThoughtSignature("not base64: keep me exactly!"),
        ThoughtSignature("YR=="),  # decodable but not canonical: must not be normalised
        ThoughtSignature("Grüße, 世界 __tsgb_ inside"),
        ThoughtSignature("a"),
    ],
)
def test_signed_ids_match_anthropic_pattern_and_give_back_the_exact_signature(signature: ThoughtSignature) -> None:
    """Every signature survives the id exactly, in an id Anthropic accepts, whatever its text."""
    tool_id = signed_tool_id("call_1", signature)
    assert ANTHROPIC_TOOL_ID.fullmatch(tool_id)
    assert split_signed_tool_id(tool_id) == ("call_1", signature)


def test_base64_signatures_are_carried_as_bytes_a_quarter_shorter() -> None:
    """A canonical base64 signature is carried as its bytes in base64url, not re-encoded text."""
    tool_id = signed_tool_id("c", ThoughtSignature(SIGNATURE_OSLO))
    assert tool_id.startswith("c__tsgb_")
    payload = tool_id[len("c__tsgb_") :]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == base64.b64decode(SIGNATURE_OSLO)
    assert len(tool_id) < len("c") + len(SIGNATURE_OSLO) + 8


def test_plain_ids_and_broken_payloads_split_to_plain_ids() -> None:
    """Ids without a marker are left alone; a marker whose payload does not decode yields no signature."""
    assert split_signed_tool_id("toolu_01AbC") == ("toolu_01AbC", None)
    assert split_signed_tool_id("call__tsgb_") == ("call__tsgb_", None)
    assert split_signed_tool_id("call__tsgt_gA") == ("call", None)  # not UTF-8
    assert split_signed_tool_id("call__tsgb_A") == ("call", None)  # not base64


def test_an_upstream_id_holding_the_marker_is_rewritten_so_the_split_stays_exact() -> None:
    """An id that already contains the marker is replaced by a stable portable id before signing."""
    tool_id = signed_tool_id("x__tsgb_y", ThoughtSignature("c2ln"))
    plain, signature = split_signed_tool_id(tool_id)
    assert plain.startswith("toolu_") and "__ts" not in plain and signature == ThoughtSignature("c2ln")
    assert signed_tool_id("x__tsgb_y", ThoughtSignature("c2ln")) == tool_id


def test_generated_ids_of_calls_without_id_keep_their_signature() -> None:
    """Gemini may omit the call id: the generated id is portable and the signature still rides along."""
    response = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "tool_calls": [
                        {"function": {"name": "f", "arguments": "{}"}, "extra_content": {"google": {"thought_signature": "c2ln"}}}
                    ]
                },
            }
        ]
    }
    tool_id = translate_response(response, {"thought_signatures": True})["content"][0]["id"]
    plain, signature = split_signed_tool_id(tool_id)
    assert plain.startswith("toolu_") and len(plain) <= 40 and signature == ThoughtSignature("c2ln")


def test_gemini_allows_five_stop_sequences() -> None:
    """The Gemini target keeps five stop strings where OpenAI takes four."""
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "stop_sequences": list("abcdef")}
    assert anthropic_to_chat_request(body, GEMINI).body["stop"] == list("abcde")
    assert anthropic_to_chat_request(body, PLAIN).body["stop"] == list("abcd")


# ---------------------------------------------------------------------------------------------
# Thought tags
# ---------------------------------------------------------------------------------------------

TAGGED_CONTENTS = [
    ("<thought>Plan: add 2 and 2.</thought>\n\nThe answer is 4.", "Plan: add 2 and 2.", "The answer is 4."),
    ("<think>\nshort\n</think>The answer.", "short", "The answer."),
    ("  \n<thought>a</thought>\n<thought>b</thought>\nText", "a\n\nb", "Text"),
    ("No tags at all.", "", "No tags at all."),
    ("  Leading blanks are text.", "", "  Leading blanks are text."),
    ("Answer first <thought>not a thought</thought>", "", "Answer first <thought>not a thought</thought>"),
    ("<thinking>is not our tag</thinking>", "", "<thinking>is not our tag</thinking>"),
    ("<thought>cut off by max_tokens", "cut off by max_tokens", ""),
    ("<thought>ends in a half tag</tho", "ends in a half tag</tho", ""),
    ("<thou", "", "<thou"),
    ("<thought></thought>Only text.", "", "Only text."),
    ("<thought>a < b and </think> is not my closer</thought>ok", "a < b and </think> is not my closer", "ok"),
]


@pytest.mark.parametrize("content, thinking, text", TAGGED_CONTENTS)
def test_leading_thought_tags_split_the_same_whole_or_one_character_per_chunk(content, thinking, text) -> None:
    """Content fed as one chunk per character gives the same thinking and text blocks as the whole body."""
    assert split_inline_thoughts(content) == (thinking, text)
    raw = b"".join(chunk({"content": character}) for character in content)
    raw += chunk({}, "stop", {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}) + b"data: [DONE]\n\n"
    events, _ = translate_stream([raw], {"thought_tags": True})
    check_stream_invariants(events)
    whole = translate_response(
        {"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": content}}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}},
        {"thought_tags": True},
    )
    assert fold(events) == whole
    expected = ([{"type": "thinking", "thinking": thinking, "signature": ""}] if thinking else []) + (
        [{"type": "text", "text": text}] if text else []
    )
    assert whole["content"] == expected


def test_thought_tags_are_text_when_the_feature_is_off() -> None:
    """Without thought_tags, tagged content is ordinary text, untouched."""
    content = TAGGED_CONTENTS[0][0]
    message = translate_response({"choices": [{"index": 0, "message": {"content": content}}]}, {})
    assert message["content"] == [{"type": "text", "text": content}]


def test_a_tool_call_flushes_held_thought_text_before_its_block() -> None:
    """Text held back as a possible tag goes out before the tool_use block, never after it."""
    raw = chunk({"content": "<thought>check</thought>\n"}) + chunk(
        {"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "stop"
    )
    events, _ = translate_stream([raw + b"data: [DONE]\n\n"], {"thought_tags": True})
    assert [block["type"] for block in fold(events)["content"]] == ["thinking", "tool_use"]
    raw = chunk({"content": "<thought>unfinished"}) + chunk(
        {"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "stop"
    )
    events, _ = translate_stream([raw + b"data: [DONE]\n\n"], {"thought_tags": True})
    assert [block["type"] for block in fold(events)["content"]] == ["thinking", "tool_use"]


def test_reasoning_field_and_leading_tags_share_one_thinking_block() -> None:
    """A reasoning delta followed by tagged content makes one thinking block, as in the whole-body path."""
    raw = chunk({"reasoning_content": "from the field. "}) + chunk({"content": "<thought>from tags</thought>Answer"})
    events, _ = translate_stream([raw + chunk({}, "stop") + b"data: [DONE]\n\n"], {"thought_tags": True})
    whole = translate_response(
        {"choices": [{"index": 0, "finish_reason": "stop",
                      "message": {"reasoning_content": "from the field. ", "content": "<thought>from tags</thought>Answer"}}]},
        {"thought_tags": True},
    )
    assert fold(events) == whole
    assert [block["type"] for block in whole["content"]] == ["thinking", "text"]
    assert whole["content"][0]["thinking"] == "from the field. from tags"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(
        st.sampled_from(["<thought>", "</thought>", "<think>", "</think>", "<", "</", "tho", "ught>", " ", "\n", "a", "b c", "é"]),
        max_size=14,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_any_chunking_of_any_content_splits_like_the_whole(parts: list[str], cuts: list[int]) -> None:
    """Whatever the content and wherever the chunks break it, the splitter gives the whole-content result."""
    content = "".join(parts)
    bounds = sorted({min(cut, len(content)) for cut in cuts} | {0, len(content)})
    splitter = InlineThoughtSplitter()
    pieces: list[tuple[str, str]] = []
    for start, end in zip(bounds, bounds[1:]):
        pieces += splitter.feed(content[start:end])
    pieces += splitter.flush()
    thinking = "".join(piece for kind, piece in pieces if kind == "thinking")
    text = "".join(piece for kind, piece in pieces if kind == "text")
    assert (thinking, text) == split_inline_thoughts(content)
    assert all(piece for _, piece in pieces)


# ---------------------------------------------------------------------------------------------
# Tool schemas: rules worth stating on their own
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"type": "integer", "exclusiveMinimum": 0}, {"type": "integer", "minimum": 1}),
        ({"type": "integer", "exclusiveMinimum": 0.5, "exclusiveMaximum": 10}, {"type": "integer", "minimum": 1, "maximum": 9}),
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, {"type": "number", "minimum": 0, "maximum": 1}),
        ({"type": "integer", "minimum": 3, "exclusiveMinimum": 0}, {"type": "integer", "minimum": 3}),
        ({"type": "integer", "minimum": 0, "exclusiveMinimum": True}, {"type": "integer", "minimum": 1}),
        ({"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991}, {"type": "integer"}),
        ({"type": "number", "maximum": 1e308}, {"type": "number"}),
    ],
)
def test_exclusive_bounds_become_inclusive_and_no_op_bounds_go(schema: dict, expected: dict) -> None:
    """Exclusive bounds turn inclusive (the next integer for integers); JavaScript's safe-integer limits are dropped."""
    assert clean_tool_schema({"type": "object", "properties": {"n": schema}})["properties"]["n"] == expected


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        ({"type": ["null", "integer"], "minimum": 1}, {"type": "integer", "nullable": True, "minimum": 1}),
        ({"type": "null"}, {"type": "string", "nullable": True}),
        (
            {"type": ["string", "array"], "items": {"type": "integer"}, "maxLength": 3},
            {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "array", "items": {"type": "integer"}}]},
        ),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"}, {"type": "integer", "nullable": True, "description": "n"}),
        ({"oneOf": [{"type": "string"}, {"type": "boolean"}]}, {"anyOf": [{"type": "string"}, {"type": "boolean"}]}),
        ({"const": "x"}, {"type": "string", "enum": ["x"]}),
        ({"enum": ["a", "", None, "a"]}, {"type": "string", "nullable": True, "enum": ["a"]}),
        ({"type": "string", "enum": [1, "b"]}, {"type": "string", "enum": ["1", "b"]}),
        ({"type": "integer", "enum": [1, 2], "description": "Level."}, {"type": "integer", "description": "Level. Allowed values: 1, 2."}),
        ({"const": False}, {"type": "boolean", "description": "Allowed values: false."}),
        ({"type": "string", "format": "uri"}, {"type": "string"}),
        ({"type": "string", "format": "date-time"}, {"type": "string", "format": "date-time"}),
        ({"type": "string", "format": "enum"}, {"type": "string"}),
        ({"type": "array"}, {"type": "array", "items": {"type": "string"}}),
        ({"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
         {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}),
        ({"type": "object", "additionalProperties": {"type": "string"}, "propertyNames": {"pattern": "^a"}}, {"type": "object"}),
        ({"type": "object", "properties": {}, "required": ["a"]}, {"type": "object"}),
        ({"properties": {"a": {"type": "string"}}, "required": ["a", "b", "a"]},
         {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
        ({"type": "string", "items": {"type": "string"}, "properties": {"a": {}}, "minimum": 1}, {"type": "string"}),
        ({"description": "anything"}, {"type": "string", "description": "anything"}),
        ({"type": "any"}, {"type": "string"}),
        (True, {"type": "string"}),
        ({"minimum": 0}, {"type": "number", "minimum": 0}),
        ({"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"properties": {"b": {"type": "integer"}}}]},
         {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}),
        (
            {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
             "anyOf": [{"required": ["a"]}, {"required": ["b"]}]},
            {"anyOf": [
                {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]},
                {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["b"]},
            ]},
        ),
        (
            {"type": "string", "default": "x", "examples": ["y"], "$comment": "c", "readOnly": True, "if": {}, "then": {}, "not": {}},
            {"type": "string"},
        ),
    ],
)
def test_schema_keywords_are_rewritten_into_what_gemini_accepts(schema: object, expected: dict) -> None:
    """Type arrays, null branches, const, enums, formats, items, required and combinators take Gemini's forms."""
    cleaned = clean_tool_schema({"type": "object", "properties": {"p": schema}})["properties"]["p"]
    assert cleaned == expected
    check_gemini_schema({"type": "object", "properties": {"p": cleaned}})


def test_local_refs_are_inlined_and_cycles_end_in_a_plain_object() -> None:
    """$refs into $defs, definitions or any local pointer are inlined; a recursive ref stops at an object."""
    schema = {
        "type": "object",
        "definitions": {"Id": {"type": "string", "pattern": "^[a-z]+$"}},
        "$defs": {"Tree": {"type": "object", "description": "A node", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}}}},
        "properties": {
            "id": {"$ref": "#/definitions/Id", "description": "The id"},
            "same": {"$ref": "#/properties/id"},
            "tree": {"$ref": "#/$defs/Tree"},
            "remote": {"$ref": "https://example.com/schema.json", "description": "Fetched elsewhere"},
            "dead": {"$ref": "#/$defs/Missing"},
        },
    }
    cleaned = clean_tool_schema(schema)["properties"]
    assert cleaned["id"] == {"type": "string", "description": "The id", "pattern": "^[a-z]+$"}
    assert cleaned["same"] == cleaned["id"]
    assert cleaned["tree"] == {
        "type": "object",
        "description": "A node",
        "properties": {"kids": {"type": "array", "items": {"type": "object"}}},
    }
    assert cleaned["remote"] == {"type": "object", "description": "Fetched elsewhere"}
    assert cleaned["dead"] == {"type": "object"}
    assert clean_tool_schema({"$ref": "#"}) == {"type": "object"}
    assert clean_tool_schema({"allOf": [{"$ref": "#"}], "properties": {"a": {"type": "string"}}}) == {
        "type": "object",
        "properties": {"a": {"type": "string"}},
    }


def test_nesting_deeper_than_the_limit_is_cut_to_a_plain_container() -> None:
    """Containers below MAX_SCHEMA_DEPTH keep their children; the ones at the limit become plain objects/arrays."""
    leaf: dict = {"type": "string"}
    schema = leaf
    for _ in range(MAX_SCHEMA_DEPTH + 5):
        schema = {"type": "object", "properties": {"next": schema}}
    cleaned = clean_tool_schema(schema)
    depth, node = 0, cleaned
    while "properties" in node:
        node = node["properties"]["next"]
        depth += 1
    assert depth == MAX_SCHEMA_DEPTH and node == {"type": "object"}
    shallow = clean_tool_schema({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}})
    assert shallow["properties"]["a"]["items"] == {"type": "integer"}


def test_refs_that_multiply_a_schema_are_cut_at_the_node_budget() -> None:
    """Defs each used twice by the next one would inline into 2**30 nodes; the budget keeps it small and fast."""
    defs = {"d0": {"type": "string"}}
    for level in range(1, 31):
        defs[f"d{level}"] = {
            "type": "object",
            "properties": {"left": {"$ref": f"#/$defs/d{level - 1}"}, "right": {"$ref": f"#/$defs/d{level - 1}"}},
        }
    cleaned = clean_tool_schema({"$defs": defs, "type": "object", "properties": {"top": {"$ref": "#/$defs/d30"}}})
    # Siblings already being cleaned when the budget runs out still get a (leaf) node each.
    assert sum(1 for _ in schema_nodes(cleaned)) <= MAX_SCHEMA_NODES + 2 * MAX_SCHEMA_DEPTH
    check_gemini_schema(cleaned)


def test_junk_instead_of_a_schema_gives_an_empty_object_schema() -> None:
    """A missing or malformed parameters value never raises: it is an object with no properties."""
    for junk in (None, "string", 5, [], {"type": 7}):
        assert clean_tool_schema(junk) == {"type": "object"}


SCHEMA_KEYWORDS = [
    "type", "properties", "items", "anyOf", "oneOf", "allOf", "$ref", "enum", "const", "required", "nullable",
    "minimum", "exclusiveMinimum", "maximum", "format", "additionalProperties", "description", "default", "$defs",
]
schema_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["string", "integer", "number", "null", "object", "array", "#", "#/$defs/a", "date-time", ""]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(SCHEMA_KEYWORDS + ["a", "b"]), children, max_size=4),
    ),
    max_leaves=25,
)


@example(schema={"type": None, "anyOf": [{"type": None, "required": []}], "required": [[]]})  # found by CI once
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schema_values)
def test_any_json_cleans_into_a_valid_gemini_schema_that_cleaning_leaves_alone(schema: object) -> None:
    """Arbitrary JSON never makes clean_tool_schema raise; the result obeys Gemini's rules and is stable."""
    cleaned = clean_tool_schema(schema)
    check_gemini_schema(cleaned)
    assert clean_tool_schema(cleaned) == cleaned
