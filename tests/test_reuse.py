"""translate/reuse.py: a remembered tool list is json.loads, only faster; nobody changes it; the server reuses it.

Every parse is checked against `json.loads` itself, made strict the plain way (hooks refusing NaN,
Infinity and numbers past a double; a value holding a lone surrogate refused after parsing): same
value (same key order and types, compared by repr), the same error (type, message and position), or
both refusing it as not strict JSON. translate/reuse.py's own strict rules are tested in
tests/test_strict_json.py.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, Reply, RunningProxy, completion
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback import request

from translate.anthropic_to_chat_request import ChatTarget, anthropic_to_chat_request
from translate.chat_to_anthropic_request import AnthropicTarget
from translate.dialects import ResponseIds, anthropic_to_chat, chat_to_anthropic
from translate.gemini import prepare_gemini_request
from translate.reuse import (
    MIN_REMEMBERED_CHARS,
    TOOLS_MEMO_ENTRIES,
    RememberedList,
    StrictJSONError,
    ToolsMemo,
    dumps_request,
    loads_request,
)
from translate.sse import dumps
from translate.tokens import estimate_input_tokens
from upstreams.ollama import OllamaProvider

_saved_path = list(sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import payloads  # bench/ has its own fake_upstream.py: keep bench/ off the path afterwards

sys.path[:] = _saved_path

TOOLS = [{"name": f"tool_{i}", "description": f"Does thing number {i}. " * 8, "input_schema": {"type": "object"}} for i in range(12)]
TOOLS_TEXT = json.dumps(TOOLS)
IDS = ResponseIds(requested_model="claude-sonnet-4-5", token="0123abcd", created=1)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def outcome(parse, raw: bytes) -> tuple:
    """What a parse gives: ("value", repr), ("not strict JSON",) or ("error", type, message, msg, pos)."""
    try:
        return ("value", repr(parse(raw)))
    except StrictJSONError:
        return ("not strict JSON",)
    except ValueError as error:
        return ("error", type(error).__name__, str(error), getattr(error, "msg", None), getattr(error, "pos", None))


def refuse_constant(name: str) -> object:
    raise StrictJSONError(name)


def finite_float(text: str) -> float:
    if math.isinf(float(text)):
        raise StrictJSONError(text)
    return float(text)


def json_loads_strictly(raw: bytes) -> object:
    """json.loads refusing NaN, Infinity and overflowing numbers as it scans, then lone surrogates."""
    value = json.loads(raw, parse_constant=refuse_constant, parse_float=finite_float)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise StrictJSONError("lone surrogate") from None
    return value


def assert_parses_as_json_loads(raw: bytes, memo: ToolsMemo) -> None:
    """Parse twice with one memo (remember, then recall) and require strict json.loads's outcome both times."""
    expected = outcome(json_loads_strictly, raw)
    assert outcome(lambda r: loads_request(r, memo), raw) == expected
    assert outcome(lambda r: loads_request(r, memo), raw) == expected


def body_text(*members: str) -> bytes:
    """A JSON object from ready-made `"key": value` texts (T alone is past the fast-path length)."""
    return ("{" + ",".join(members) + "}").encode()


# ---------------------------------------------------------------------------------------------
# loads_request is json.loads
# ---------------------------------------------------------------------------------------------

T = f'"tools": {TOOLS_TEXT}'
CASES = {
    "no tools key": body_text('"model": "m"', '"system": "%s"' % ("s" * 2 * MIN_REMEMBERED_CHARS)),
    "tools only in a value": body_text('"system": "\\"tools\\" %s"' % ("s" * 2 * MIN_REMEMBERED_CHARS)),
    "tools first": body_text(T, '"model": "m"', '"max_tokens": 5'),
    "tools middle": body_text('"model": "m"', T, '"max_tokens": 5'),
    "tools last": body_text('"model": "m"', '"max_tokens": 5', T),
    "tools alone": body_text(T),
    "whitespace everywhere": f' \r\n\t{{ \n"model"\t:\r"m" ,\n\n "tools" \t:\n {TOOLS_TEXT} \r\n,"x" : [ 1 , {{ }} ]\t}}\n\r '.encode(),
    "duplicate tools, last wins": body_text(T, '"model": "m"', '"tools": null'),
    "duplicate tools, same text": body_text(T, '"model": "m"', T),
    "duplicate other keys": body_text('"model": "a"', T, '"model": "b"'),
    "escaped key spelling tools": body_text(f'"tool\\u0073": {TOOLS_TEXT}', '"model": "m"'),
    "unicode and escapes": body_text('"mod\\u00e9l\\n": "\\ud83d\\ude00 caf\u00e9 \\"\\\\\\/\\b\\f\\t"', '"\u2028\U0001f600": "\u00e9"', T),
    "lone surrogate escape": body_text(T, '"x": "\\udc00"'),
    "tools an object": body_text('"tools": {"a": "%s"}' % ("a" * 2 * MIN_REMEMBERED_CHARS)),
    "tools a string": body_text('"tools": "%s"' % ("a" * 2 * MIN_REMEMBERED_CHARS)),
    "tools null": body_text('"tools": null', '"pad": "%s"' % ("p" * 2 * MIN_REMEMBERED_CHARS)),
    "NaN and Infinity tokens": body_text(T, '"a": NaN', '"b": [Infinity, -Infinity]'),
    "empty object": b"{}" + b" " * 2 * MIN_REMEMBERED_CHARS,
    "empty": b"",
    "only whitespace": b" " * 3 * MIN_REMEMBERED_CHARS,
    "truncated": body_text(T, '"model": "m"')[:-1],
    "truncated in tools": body_text('"model": "m"', T)[:-40],
    "trailing garbage": body_text(T) + b" x",
    "two objects": body_text(T) + body_text(T),
    "trailing comma in an array": body_text(T, '"a": [1,]'),
    "comma before close": body_text(T)[:-1] + b",}",
    "missing comma": body_text(T)[:-1] + b' "a": 1}',
    "missing colon": body_text(T)[:-1] + b', "a" 1}',
    "key not a string": body_text(T)[:-1] + b", 1: 1}",
    "control character in a string": body_text(T)[:-1] + b', "a": "\x01"}',
    "control character in a key": body_text(T)[:-1] + b', "a\tb": 1}',
    "invalid UTF-8": body_text(T)[:-1] + b', "a": "\xff"}',
    "huge integer": body_text(T)[:-1] + b', "a": ' + b"9" * 5000 + b"}",
    "not an object (array)": f'["tools", {TOOLS_TEXT}]'.encode(),
    "not an object (string)": json.dumps('"tools"' + TOOLS_TEXT).encode(),
    "remembered text then more array": body_text(T)[:-1] + b"]}",
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
def test_loads_request_gives_what_json_loads_gives(raw):
    """Values, duplicate keys, escapes and every kind of invalid body come out exactly as json.loads's."""
    memo = ToolsMemo()
    loads_request(body_text(T), memo)  # the tools text is already remembered
    assert_parses_as_json_loads(raw, memo)
    assert_parses_as_json_loads(raw, ToolsMemo())


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_other_encodings_parse_as_json_loads_does(encoding):
    """A UTF-8 BOM, UTF-16 and UTF-32 bodies are detected and decoded as json.loads does."""
    raw = body_text('"model": "caf\u00e9"', T).decode().encode(encoding)
    memo = ToolsMemo()
    assert_parses_as_json_loads(raw, memo)
    if encoding == "utf-8-sig":
        assert memo.hits == 1  # a BOM does not keep the list from being remembered


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
spaces = st.text(alphabet=" \t\n\r", max_size=3)


@st.composite
def formatted_bodies(draw) -> bytes:
    """A JSON object with a rememberable "tools" list anywhere among its keys, formatted every way json.dumps can."""
    others = draw(st.dictionaries(st.text(max_size=6).filter(lambda key: key != "tools"), json_values, max_size=4))
    tools = draw(st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=3), max_size=3))
    tools.append({"name": "pad", "description": "p" * 2 * MIN_REMEMBERED_CHARS})
    items = list(others.items())
    items.insert(draw(st.integers(0, len(items))), ("tools", tools))
    separators = (draw(spaces) + "," + draw(spaces), draw(spaces) + ":" + draw(spaces))
    text = json.dumps(dict(items), indent=draw(st.sampled_from([None, 0, 2, "\t", "\r\n"])), separators=separators,
                      ensure_ascii=draw(st.booleans()))
    return (draw(spaces) + text + draw(spaces)).encode("utf-8", "surrogatepass")


@given(formatted_bodies())
@PROPERTY
def test_any_formatting_parses_as_json_loads_first_time_and_from_memory(raw):
    """Generated objects in any json.dumps formatting: the remembering parse and the recalling one equal json.loads."""
    memo = ToolsMemo()
    assert_parses_as_json_loads(raw, memo)
    assert memo.hits == 1  # the second parse really took the list from memory


@given(formatted_bodies(), st.integers(0, 10**6), st.sampled_from([b"", b"}", b"]", b",", b" x", b'"', b"\x00", b"\xff", b"NaN"]))
@PROPERTY
def test_damaged_bodies_fail_as_json_loads_fails(raw, cut, insert):
    """A body cut short or with bytes added anywhere raises json.loads's error, or gives its value."""
    at = cut % (len(raw) + 1)
    memo = ToolsMemo()
    loads_request(raw, memo)  # the undamaged tools text is remembered
    assert_parses_as_json_loads(raw[:at] + insert + raw[at:] if insert else raw[:at], memo)


# ---------------------------------------------------------------------------------------------
# The memo
# ---------------------------------------------------------------------------------------------


def test_same_tools_text_gives_the_same_list_and_counts_a_hit():
    """Other fields and other whitespace around an identical tools text: the very same RememberedList."""
    memo = ToolsMemo()
    first = loads_request(body_text('"model": "a"', T, '"messages": []'), memo)
    second = loads_request(f'{{\n  "messages" : [{{"role": "user"}}],\n  "tools"\t:  {TOOLS_TEXT}\n}}'.encode(), memo)
    assert type(first["tools"]) is RememberedList and second["tools"] is first["tools"]
    assert memo.hits == 1 and second == json.loads(f'{{"messages": [{{"role": "user"}}], {T}}}')


def test_a_tools_text_that_only_starts_alike_is_not_taken_for_a_remembered_one():
    """Remembered `[..]` against `[.., more]`, and the other way round: each parses afresh."""
    longer = TOOLS_TEXT[:-1] + ', {"name": "extra"}]'
    for remembered, sent in ((TOOLS_TEXT, longer), (longer, TOOLS_TEXT)):
        memo = ToolsMemo()
        kept = loads_request(body_text(f'"tools": {remembered}'), memo)["tools"]
        got = loads_request(body_text(f'"tools": {sent}'), memo)["tools"]
        assert got is not kept and got == json.loads(sent) and memo.hits == 0


def test_the_memo_keeps_the_most_recently_used_lists():
    """At most TOOLS_MEMO_ENTRIES lists are kept; the least recently used one goes first."""
    texts = [json.dumps([{"n": n}] + TOOLS) for n in range(TOOLS_MEMO_ENTRIES + 1)]
    memo = ToolsMemo()
    kept = [loads_request(body_text(f'"tools": {text}'), memo)["tools"] for text in texts[:-1]]
    assert loads_request(body_text(f'"tools": {texts[0]}'), memo)["tools"] is kept[0]  # now the most recent
    loads_request(body_text(f'"tools": {texts[-1]}'), memo)  # pushes out texts[1], the least recent
    assert loads_request(body_text(f'"tools": {texts[0]}'), memo)["tools"] is kept[0]
    assert loads_request(body_text(f'"tools": {texts[2]}'), memo)["tools"] is kept[2]
    assert loads_request(body_text(f'"tools": {texts[1]}'), memo)["tools"] is not kept[1]
    assert memo.hits == 3


def test_short_tool_lists_are_plain_lists():
    """A tools text shorter than MIN_REMEMBERED_CHARS is parsed as usual, every time."""
    short = json.dumps(["x" * (MIN_REMEMBERED_CHARS - 10)])
    raw = body_text(f'"tools": {short}', '"pad": "%s"' % ("p" * 2 * MIN_REMEMBERED_CHARS))
    memo = ToolsMemo()
    first, second = loads_request(raw, memo)["tools"], loads_request(raw, memo)["tools"]
    assert type(first) is list and type(second) is list and first is not second and memo.hits == 0


# ---------------------------------------------------------------------------------------------
# dumps_request
# ---------------------------------------------------------------------------------------------


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
@PROPERTY
def test_dumps_request_without_remembered_lists_is_dumps(body):
    """No RememberedList in the body: byte for byte what translate.sse.dumps writes."""
    assert dumps_request(body) == dumps(body)


def test_dumps_request_writes_the_remembered_text():
    """A remembered list is written as the client's own text; the whole still reads as dumps(body)."""
    spaced = json.dumps(TOOLS, indent=2)
    body = loads_request(body_text('"model": "m"', f'"tools": {spaced}', '"n": 1'), ToolsMemo())
    written = dumps_request(body)
    assert spaced in written and json.loads(written) == json.loads(dumps(body)) == {"model": "m", "tools": TOOLS, "n": 1}


def test_a_body_of_nothing_but_remembered_lists_is_valid_json():
    """{"tools": remembered} alone (no other keys to write first) is one valid object, written from the remembered text."""
    spaced = json.dumps(TOOLS, indent=2)
    remembered = loads_request(body_text(f'"tools": {spaced}'), ToolsMemo())["tools"]
    assert json.loads(dumps_request({"tools": remembered})) == {"tools": TOOLS} and spaced in dumps_request({"tools": remembered})
    assert json.loads(dumps_request({"tools": remembered, "again": remembered})) == {"tools": TOOLS, "again": TOOLS}


def test_the_translated_function_list_is_encoded_once():
    """The chat translation of a remembered list is shared, and its JSON is worked out on the first write only."""
    parsed = loads_request(payloads.encode(payloads.tools_request("gpt-4.1")), ToolsMemo())
    target = ChatTarget(model="gpt-4.1", reasoning=False)
    functions = anthropic_to_chat_request(parsed, target).body["tools"]
    assert anthropic_to_chat_request(parsed, target).body["tools"] is functions and "json" not in functions.derived
    out = anthropic_to_chat_request(parsed, target).body
    assert json.loads(dumps_request(out)) == json.loads(dumps(out))
    assert functions.derived["json"] == dumps(list(functions))
    functions.derived["json"] = marked = json.dumps(list(functions), indent=1)  # same value, recognisable text
    assert marked in dumps_request(anthropic_to_chat_request(parsed, target).body)


# ---------------------------------------------------------------------------------------------
# Nobody changes a remembered list
# ---------------------------------------------------------------------------------------------

CHAT_TARGETS = [
    ChatTarget(model="gpt-4.1", reasoning=False),
    ChatTarget(model="o4-mini", reasoning=True, max_tokens_limit=1000),
    ChatTarget(model="gemini-2.5-pro", reasoning=False, thought_signatures=True, buffer_tool_calls=True, max_stop_sequences=5),
    OllamaProvider("http://127.0.0.1:1").target("llama3"),
]


@pytest.mark.parametrize("build", [payloads.claude_code_first, payloads.tools_request])
def test_translating_and_writing_leave_a_remembered_list_unchanged(build):
    """Every translator, provider rewrite, the token count and the encoder build new values from a shared list."""
    parsed = loads_request(payloads.encode(build("claude-sonnet-4-5")), ToolsMemo())
    remembered = parsed["tools"]
    assert type(remembered) is RememberedList
    before = copy.deepcopy(list(remembered))
    anthropic_to_chat(parsed, CHAT_TARGETS[0], IDS)
    translated_before = copy.deepcopy(list(remembered.derived["chat_tools"][0]))
    for _ in range(2):
        for target in CHAT_TARGETS:
            body = anthropic_to_chat(parsed, target, IDS).body
            for upstream_body in (body, prepare_gemini_request(body), OllamaProvider("http://127.0.0.1:1").prepare(body)):
                dumps_request(upstream_body)
        estimate_input_tokens(parsed)
        dumps_request(parsed)
    assert remembered == before and json.loads(remembered.derived["json"]) == before
    assert remembered.derived["chat_tools"][0] == translated_before


def test_the_chat_front_translation_leaves_a_remembered_list_unchanged():
    """chat_to_anthropic with auto_cache marks the last tool it sends, never the client's remembered one."""
    tools = [{"type": "function", "function": {"name": tool["name"], "description": tool["description"],
                                               "parameters": tool["input_schema"]}} for tool in payloads.tools_request("m")["tools"]]
    raw = json.dumps({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "tools": tools}).encode()
    parsed = loads_request(raw, ToolsMemo())
    remembered = parsed["tools"]
    assert type(remembered) is RememberedList
    for _ in range(2):
        sent = chat_to_anthropic(parsed, AnthropicTarget(model="claude-sonnet-4-5", auto_cache=True), IDS).body
        assert sent["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        dumps_request(sent)
    assert remembered == tools and json.loads(dumps_request(parsed))["tools"] == tools


# ---------------------------------------------------------------------------------------------
# Through the server
# ---------------------------------------------------------------------------------------------


def test_the_server_reuses_a_tool_list_and_sends_what_a_fresh_translation_gives():
    """Three requests with the same tools: each upstream body is a fresh translation's, and two were memo hits."""
    first = payloads.tools_request("gpt-4.1")
    second = copy.deepcopy(first)
    second["messages"][0]["content"] = "A different question."
    bodies = [payloads.encode(body) for body in (first, second, first)]
    replies = [Reply.json(completion("ok")) for _ in bodies]
    with FakeUpstream(replies) as upstream, RunningProxy({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url + "/v1"}) as proxy:
        answers = [request(proxy, "POST", "/v1/messages", raw) for raw in bodies]

        async def hits_and_target() -> tuple[int, ChatTarget]:
            gateway = proxy.server.gateway
            return gateway.tools_memo.hits, gateway.providers["openai"].target("gpt-4.1")

        memo_hits, target = proxy.call(hits_and_target)
    assert [answer.status for answer in answers] == [200, 200, 200]
    sent = [received.json() for received in upstream.requests]
    assert sent == [anthropic_to_chat_request(json.loads(raw), target).body for raw in bodies]
    assert all(body["tools"] and body["tools"] == sent[0]["tools"] for body in sent)
    assert sent[0] == sent[2] and sent[1]["messages"][1]["content"] == "A different question."
    assert memo_hits == 2
