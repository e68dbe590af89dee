"""translate/reuse.py: request bodies are strict JSON; what json.loads lets through (or crashes on) is a ValueError.

Each refused body is tried three ways: as bytes with no memo, as bytes through a ToolsMemo (twice: the
list is remembered the first time), and as a str. Each accepted body must give exactly json.loads's
value, again all three ways. To add a case, add a line to REFUSED or ACCEPTED.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from translate.reuse import (
    MAX_JSON_DEPTH,
    MIN_REMEMBERED_CHARS,
    RememberedList,
    StrictJSONError,
    ToolsMemo,
    loads_request,
    loads_strict,
)

_saved_path = list(sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import payloads  # bench/ has its own fake_upstream.py: keep bench/ off the path afterwards

sys.path[:] = _saved_path

FIXTURES = Path(__file__).parent / "fixtures"
CLAUDE_CODE = FIXTURES / "anthropic_to_chat" / "request_claude_code_2_1_332_tool_search_loaded_a_deferred_tool" / "input.json"

# A tools array long enough to be remembered, as JSON text.
TOOLS_TEXT = json.dumps(
    [{"name": f"tool_{i}", "description": "Does a thing. " * 10, "input_schema": {"type": "object"}} for i in range(12)]
)
assert len(TOOLS_TEXT) > MIN_REMEMBERED_CHARS


def body(*members: str, tools: str = TOOLS_TEXT) -> bytes:
    """A JSON object text: a model, the rememberable tools, then `members` ("key": value texts)."""
    return ("{" + ",".join(['"model": "m"', f'"tools": {tools}', *members]) + "}").encode()


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    """`depth` containers, one inside the other, around a 1."""
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return opener * depth + "1" + closer * depth


# ---------------------------------------------------------------------------------------------
# The corpus: (raw body, words the error message must contain)
# ---------------------------------------------------------------------------------------------

REFUSED: dict[str, tuple[bytes, str]] = {
    # Numbers JSON has no spelling for.
    "NaN": (body('"a": NaN'), "NaN is not valid JSON"),
    "Infinity": (body('"a": Infinity'), "Infinity is not valid JSON"),
    "-Infinity": (body('"a": [1, -Infinity]'), "-Infinity is not valid JSON"),
    "NaN in temperature": (b'{"model": "m", "temperature": NaN}', "NaN is not valid JSON"),
    "NaN in a tool schema": (body(tools=TOOLS_TEXT[:-1] + ', {"name": "x", "input_schema": {"maximum": NaN}}]'), "NaN is not valid JSON"),
    "a number past a double": (body('"temperature": 1e999'), "1e999 is too large"),
    "a negative number past a double": (body('"a": {"b": -2.5E+400}'), "-2.5E+400 is too large"),
    # Lone surrogates, escaped.
    "lone high surrogate escape": (body('"messages": [{"role": "user", "content": "a\\ud800b"}]'), "lone surrogate \\ud800 in a string"),
    "lone low surrogate escape": (body('"messages": [{"role": "user", "content": "\\udc00"}]'), "lone surrogate \\udc00"),
    "uppercase lone escape": (body('"a": "\\uDBFF"'), "lone surrogate \\udbff"),
    "high surrogate then a letter": (body('"a": "\\ud83d\\u0041"'), "lone surrogate \\ud83d"),
    "high surrogate at the end": (body('"a": "x\\ud83d"'), "lone surrogate \\ud83d"),
    "pair the wrong way round": (body('"a": "\\ude00\\ud83d"'), "lone surrogate \\ude00"),
    "two highs then a low": (body('"a": "\\ud83d\\ud83d\\ude00"'), "lone surrogate \\ud83d"),
    "escaped backslash then a real lone escape": (body('"a": "\\\\\\ud800"'), "lone surrogate \\ud800"),
    "lone escape in a key": (body('"\\ud800": 1'), "lone surrogate \\ud800"),
    "lone escape in the model name": (b'{"model": "claude-\\udfff"}', "lone surrogate \\udfff"),
    "lone escape inside the tools text": (body(tools=TOOLS_TEXT[:-1] + ', {"name": "\\ud800"}]'), "lone surrogate \\ud800"),
    "lone escape in a small body": (b'{"a": "\\ud800"}', "lone surrogate \\ud800"),
    "lone escape right after an escaped backslash and a u": (body('"a": "\\\\u\\ud800"'), "lone surrogate \\ud800"),
    "lone escape after many other escapes": (body('"a": "' + "\\u00e9\\u001b" * 100 + '\\udc00"'), "lone surrogate \\udc00"),
    "lone escape after many pairs": (body('"a": "' + "\\ud83d\\ude00" * 100 + '", "b": "\\ud83d"'), "lone surrogate \\ud83d"),
    # Lone surrogates as raw bytes (json.loads decodes them with "surrogatepass").
    "raw surrogate bytes": (body().replace(b'"m"', b'"m\xed\xa0\x80"'), "lone surrogate \\ud800"),
    "raw surrogate bytes in content": (b'{"messages": [{"role": "user", "content": "a\xed\xb0\x80"}]}', "lone surrogate \\udc00"),
    "surrogate pair as raw bytes (CESU-8)": (b'{"a": "\xed\xa0\xbd\xed\xb8\x80"}', "not valid utf-8"),
    # Nesting.
    "arrays one level too deep": (body(f'"a": {nested(MAX_JSON_DEPTH)}'), f"nested deeper than {MAX_JSON_DEPTH} levels"),
    "objects one level too deep": (body(f'"a": {nested(MAX_JSON_DEPTH, "{")}'), f"nested deeper than {MAX_JSON_DEPTH} levels"),
    "a bare array too deep": (nested(MAX_JSON_DEPTH + 1).encode(), "nested deeper"),
    "deep enough for RecursionError": (body(f'"a": {nested(5000)}'), "nested deeper"),
    "far too deep": (b"[" * 1_000_000, "nested deeper"),
    "deep in a tool schema": (body(tools=TOOLS_TEXT[:-1] + f', {{"name": "x", "input_schema": {nested(200, "{")}}}]'), "nested deeper"),
    "deep in tool input": (
        body(f'"messages": [{{"role": "assistant", "content": [{{"type": "tool_use", "id": "t", "name": "x", "input": {nested(300, "{")}}}]}}]'),
        "nested deeper",
    ),
}

ACCEPTED: dict[str, bytes] = {
    "escaped emoji pair": body('"messages": [{"role": "user", "content": "hi \\ud83d\\ude00 there"}]'),
    "uppercase and mixed-case pairs": body('"a": "\\uD83D\\uDE00\\uD83d\\ude00\\ud83D\\uDe00"'),
    "pairs back to back": body('"a": "\\ud83d\\ude00\\ud83d\\ude01\\udbff\\udfff"'),
    "an escaped backslash before u-d-8-0-0 is plain text": body('"a": "\\\\ud800 and \\\\\\\\udc00"'),
    "three backslashes then a real pair": body('"a": "\\\\\\ud83d\\ude00"'),
    "many escapes, as ensure_ascii writes them": body('"a": "' + "caf\\u00e9 \\ud83d\\ude00 \\u001b[0m " * 200 + '"'),
    "other escapes": body('"a": "\\u0000\\u001b[0m \\u00e9 \\u20ac \\uffff \\ue000 \\n\\t\\"\\/"'),
    "emoji as UTF-8": body('"a": "\U0001f600 caf\u00e9 \u65e5\u672c"'),
    "the deepest nesting allowed": body(f'"a": {nested(MAX_JSON_DEPTH - 1)}'),  # the body is level 1
    "the deepest objects allowed": body(f'"a": {nested(MAX_JSON_DEPTH - 1, "{")}'),
    "a bare array exactly at the limit": nested(MAX_JSON_DEPTH).encode(),
    "wide rather than deep": body('"a": [' + ",".join(["[[1]]"] * 5000) + "]"),
    "numbers at a double's edges": body('"a": [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 1e-999, -0.0, 1E+2]'),
    "a huge integer": body('"a": ' + "9" * 4000),
    "the words NaN and Infinity in strings": body('"a": "NaN", "Infinity": "-Infinity"'),
    "brackets in strings do not count as nesting": body('"a": "' + "[{" * 1000 + '"'),
    "UTF-8 BOM": b"\xef\xbb\xbf" + body(),
    "UTF-16": body('"a": "\U0001f600"').decode().encode("utf-16"),
    "Claude Code request": CLAUDE_CODE.read_bytes(),
    "late Claude Code session, 300 KB": payloads.encode(payloads.claude_code_late("claude-sonnet-4-5")),
    "late Claude Code session, ensure_ascii": json.dumps(payloads.claude_code_late("claude-sonnet-4-5")).encode(),
}


def three_ways(raw: bytes) -> list:
    """Parse `raw` without a memo, twice through one memo (remembering, then recalling) and as a str."""
    memo = ToolsMemo()
    parses = [lambda: loads_request(raw, None), lambda: loads_request(raw, memo), lambda: loads_request(raw, memo)]
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        text = None  # raw surrogate bytes: a str cannot hold them as they are
    if text is not None and not text.startswith("\ufeff"):
        parses.append(lambda: loads_request(text, None))
    return parses


@pytest.mark.parametrize("raw, words", REFUSED.values(), ids=REFUSED.keys())
def test_what_strict_json_forbids_is_a_value_error_saying_what(raw, words):
    """NaN, Infinity, numbers past a double, lone surrogates and deep nesting raise StrictJSONError, never RecursionError."""
    for parse in three_ways(raw):
        with pytest.raises(StrictJSONError) as raised:
            parse()
        assert isinstance(raised.value, ValueError)
        assert words in str(raised.value)


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_valid_json_parses_exactly_as_json_loads(raw):
    """Escaped pairs, deep-but-allowed nesting, odd numbers and big bodies give json.loads's value."""
    expected = repr(json.loads(raw))
    for parse in three_ways(raw):
        assert repr(parse()) == expected


def test_a_str_holding_a_surrogate_is_refused():
    """A str body (already decoded) with a surrogate code point in it is refused like raw bytes."""
    with pytest.raises(StrictJSONError, match=r"lone surrogate \\ud800"):
        loads_request('{"a": "\ud800"}', None)


def test_json_errors_are_still_json_loads_errors():
    """Plain syntax errors keep json.loads's message and position; a syntax error before a NaN wins."""
    for raw in (b'{"a": }', b'{"a": 1', b'{"a": "\xff"}', b'{"a": [1,]}', b'{"a" 1, "b": NaN}'):
        with pytest.raises(ValueError) as ours:
            loads_request(raw, None)
        with pytest.raises(ValueError) as theirs:
            json.loads(raw)
        assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_a_remembered_list_is_checked_once_and_only_when_it_passed():
    """A list that passed is marked and skipped later; one that failed stays unmarked and fails again."""
    memo = ToolsMemo()
    first = loads_request(body(), memo)["tools"]
    assert type(first) is RememberedList and first.derived.get("strict") is True
    assert loads_request(body('"a": 1'), memo)["tools"] is first and memo.hits == 1
    with pytest.raises(StrictJSONError):
        loads_request(body('"a": "\\udc00"'), memo)  # the list is fine, the rest is not
    bad_tools = TOOLS_TEXT[:-1] + f', {{"name": "x", "input_schema": {nested(200, "{")}}}]'
    for _ in range(2):
        with pytest.raises(StrictJSONError, match="nested deeper"):
            loads_request(body(tools=bad_tools), memo)
    bad_text = TOOLS_TEXT[:-1] + ', {"name": "\\ud800"}]'
    for _ in range(2):
        with pytest.raises(StrictJSONError, match="lone surrogate"):
            loads_request(body(tools=bad_text), memo)


def test_loads_strict_is_for_json_inside_json():
    """Tool call arguments are held to the same rules; a plain object parses."""
    assert loads_strict('{"city": "Oslo \\ud83d\\ude00"}') == {"city": "Oslo \U0001f600"}
    for text in ('{"x": NaN}', '{"x": "\\ud800"}', nested(MAX_JSON_DEPTH + 1), "[" * 100_000):
        with pytest.raises(StrictJSONError):
            loads_strict(text)
