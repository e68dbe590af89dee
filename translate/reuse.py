"""Work that repeats byte for byte between requests, done once: the tool list.

Claude Code sends the same tool definitions, byte for byte, on every request of a session: tens of
kilobytes of JSON schemas (two thirds of a typical request before the history grows). Parsing,
translating and re-encoding them is most of the CPU a translated request costs. This module
remembers them.

Policies:
- `loads_request` parses a request body as `json.loads` does, except that a top-level "tools" array
  whose text equals one seen recently is not parsed again: the body gets the parsed list remembered
  for it, a `RememberedList`. Anything irregular (not an object, bad JSON, extra data) falls back to
  a whole parse, so errors read as json.loads's.
- Strict JSON (RFC 8259), where `json.loads` is lax or crashes: `NaN`, `Infinity`, `-Infinity`, a
  number too large for a double (`1e999`, which json.loads makes infinite), a lone UTF-16 surrogate
  (escaped, as `"\\ud800"`, or as raw bytes `ED A0 80`) and nesting deeper than MAX_JSON_DEPTH
  (json.loads raises RecursionError past ~1000 levels, and Python code walking a value recurses
  too) each raise `StrictJSONError`, a ValueError, with a plain message; the caller answers 400.
  Every one of them would otherwise reach a translator or an upstream as something no JSON encoder
  writes back validly. A valid escaped pair (`"\\ud83d\\ude00"`, how ensure_ascii clients send emoji)
  is fine.
- The strict checks cost little on the common path: the bytes are decoded strictly (the decode
  json.loads does anyway), NaN and Infinity are refused by json's own scanner (`parse_constant`),
  one str.find pass looks for `\\u` escapes and a regex looks for lone surrogates only from the
  first `\\ud..` escape on (or past a great many `\\u` escapes, as ensure_ascii clients write), and
  the nesting check visits containers only (never strings). A remembered tools list that passed
  before is skipped by both.
- A `RememberedList` is shared by every request that sent the same text, so nothing may change
  it in place: translators build new values from it (tests hold every translator to that). Its
  `derived` dict holds what is computed from it once: its JSON text, a dialect's translation.
- `dumps_request` encodes a body as `translate.sse.dumps` does, but writes a top-level
  `RememberedList` from its remembered JSON text (at the end of the object: key order carries no
  meaning in JSON).
- Bounded: at most TOOLS_MEMO_ENTRIES lists, least recently used out first; lists shorter than
  MIN_REMEMBERED_CHARS are parsed as usual (not worth remembering).
- Pure: no I/O; the memo is state the caller owns and passes in.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math
import re

from translate.sse import dumps

TOOLS_MEMO_ENTRIES = 8
MIN_REMEMBERED_CHARS = 1024
# Containers inside containers, the body itself being level 1. Claude Code's deepest tool schema
# is about 12 levels; json.loads itself gives up (RecursionError) somewhere near 1000.
MAX_JSON_DEPTH = 128


class StrictJSONError(ValueError):
    """Text json.loads accepts (or crashes on) that is not strict JSON: see the module policies."""


def _refuse_constant(name: str) -> object:
    # json.loads's parse_constant hook: called for NaN, Infinity and -Infinity.
    raise StrictJSONError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # json.loads's parse_float hook: only numbers with a fraction or exponent come here.
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise StrictJSONError(f"the number {shown} is too large: JSON numbers must fit a double")
    return value


_STRICT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_SCAN_ONCE = json.scanner.make_scanner(_STRICT_DECODER)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_RAW_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LOW_SURROGATE_ESCAPE = re.compile(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
_ESCAPE_HOPS = 32  # \u escapes looked at one by one before a regex takes over (ensure_ascii bodies)


class RememberedList(list):
    """A list shared between requests that sent the same JSON text; never change it in place."""

    __slots__ = ("derived",)

    def __init__(self, items: list, json_text: str | None = None) -> None:
        super().__init__(items)
        self.derived: dict[str, object] = {} if json_text is None else {"json": json_text}


class ToolsMemo:
    """The most recently seen top-level "tools" arrays, by their exact JSON text."""

    def __init__(self, entries: int = TOOLS_MEMO_ENTRIES) -> None:
        self.entries = entries
        self._lists: list[RememberedList] = []  # most recently used first
        self.hits = 0

    def recall(self, text: str, start: int) -> RememberedList | None:
        """The remembered list whose JSON text starts at text[start], or None."""
        for position, remembered in enumerate(self._lists):
            if text.startswith(remembered.derived["json"], start):
                if position:
                    self._lists.insert(0, self._lists.pop(position))
                self.hits += 1
                return remembered
        return None

    def remember(self, json_text: str, value: object) -> object:
        """Keep `value` (parsed from `json_text`) for next time if it is a list worth it; returns what to use."""
        if not isinstance(value, list) or len(json_text) < MIN_REMEMBERED_CHARS:
            return value
        remembered = RememberedList(value, json_text)
        self._lists.insert(0, remembered)
        del self._lists[self.entries :]
        return remembered


def loads_request(raw: bytes | str, memo: ToolsMemo | None) -> object:
    """The parsed body: `json.loads(raw)`, strictly, with a top-level "tools" array taken from
    `memo` when its text was seen.

    Raises ValueError where `json.loads` does (same message and position), and StrictJSONError (a
    ValueError) for NaN, Infinity, numbers past a double, lone surrogates and nesting deeper than
    MAX_JSON_DEPTH; never RecursionError. The caller answers either with a 400.
    """
    text = _decoded(raw)
    parsed = None
    checked: list[tuple[int, int]] = []  # where the texts of lists that passed before stand
    try:
        if memo is not None and isinstance(raw, bytes) and len(text) >= 2 * MIN_REMEMBERED_CHARS and '"tools"' in text:
            try:
                parsed = _object_with_remembered_tools(text, memo, checked)
            except (ValueError, StopIteration, RecursionError):
                parsed = None  # the whole parse below says what is wrong
        if parsed is None:
            checked = []
            parsed = _STRICT_DECODER.decode(text)  # json.loads's own steps for a str
    except RecursionError:
        raise StrictJSONError(_TOO_DEEP) from None
    _check_nesting(parsed)
    surrogate = _lone_surrogate_escape(text, checked)
    if surrogate is not None:
        raise StrictJSONError(f"lone surrogate {surrogate} in a string")
    if type(parsed) is dict:
        for value in parsed.values():
            if type(value) is RememberedList:
                value.derived["strict"] = True  # its text and nesting passed: skip both next time
    return parsed


def loads_strict(raw: bytes | str) -> object:
    """`loads_request(raw, None)`: strict JSON for JSON held inside a body (tool call arguments)."""
    return loads_request(raw, None)


def _decoded(raw: bytes | str) -> str:
    """The text json.loads would parse, decoded strictly: raw surrogates raise StrictJSONError."""
    if isinstance(raw, str):
        if raw.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
        found = _RAW_SURROGATE.search(raw)
        if found is not None:
            raise StrictJSONError(f"lone surrogate {_escape(found.group())} in a string")
        return raw
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError(f"the JSON object must be str, bytes or bytearray, not {type(raw).__name__}")
    encoding = json.detect_encoding(raw)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        # json.loads decodes with "surrogatepass"; where that fails too, its error is the one to give.
        lax = raw.decode(encoding, "surrogatepass")
        found = _RAW_SURROGATE.search(lax)
        code = _escape(found.group()) if found is not None else "?"
        raise StrictJSONError(
            f"lone surrogate {code} in a string (encoded as bytes at byte {error.start}, which is not valid {encoding})"
        ) from None


def _escape(character: str) -> str:
    return f"\\u{ord(character):04x}"


def _lone_surrogate_escape(text: str, checked: list[tuple[int, int]]) -> str | None:
    """The first `\\uXXXX` escape of a surrogate that is not half of a high-low pair, or None.

    The spans in `checked` (texts of remembered lists that passed before) are not looked at again.
    """
    start = 0
    for skip_from, skip_to in checked:
        found = _lone_surrogate_escape_in(text, start, skip_from)
        if found is not None:
            return found
        start = skip_to
    return _lone_surrogate_escape_in(text, start, len(text))


def _lone_surrogate_escape_in(text: str, start: int, end: int) -> str | None:
    # A region starts at a value's first character, outside any escape: backslashes before `start`
    # never matter. One str.find scans it (C speed, the one full pass this check costs) and hops
    # from one \u escape to the next while they are few, as in UTF-8 bodies (control characters);
    # at the first \uD... escape, or past _ESCAPE_HOPS of them (an ensure_ascii body), a regex takes over.
    find = text.find
    position = find("\\u", start, end)
    for _ in range(_ESCAPE_HOPS):
        if position < 0:
            return None  # the common case: no \uD... escape at all
        if text[position + 2 : position + 3] in ("d", "D"):
            break
        position = find("\\u", position + 2, end)
    if position < 0:
        return None
    search = _SURROGATE_ESCAPE.search
    while (found := search(text, position, end)) is not None:
        at = found.start()
        before = at
        while before > start and text[before - 1] == "\\":
            before -= 1
        if (at - before) % 2:  # an escaped backslash followed by "u...": plain text
            position = at + 1
            continue
        if found.group()[3] in "cdefCDEF":
            return found.group().lower()  # a low half with no high half before it
        low = _LOW_SURROGATE_ESCAPE.match(text, found.end(), end)
        if low is None:
            return found.group().lower()  # a high half with no low half after it
        position = low.end()
    return None


def _check_nesting(value: object) -> None:
    """Raise StrictJSONError when containers nest deeper than MAX_JSON_DEPTH.

    Visits containers only, level by level, and skips a RememberedList that passed before (it is
    always a top-level value, at level 2).
    """
    kind = type(value)
    if kind is dict:
        level = []
        for item in value.values():
            kind = type(item)
            if kind is dict or kind is list or (kind is RememberedList and "strict" not in item.derived):
                level.append(item)
        _check_levels(level, 2)
    elif kind is list:
        _check_levels([value], 1)


def _check_levels(level: list, depth: int) -> None:
    # `level` holds the containers at `depth`.
    while level:
        if depth > MAX_JSON_DEPTH:
            raise StrictJSONError(_TOO_DEEP)
        level = [
            child
            for container in level
            for child in (container.values() if type(container) is dict else container)
            if type(child) is dict or type(child) is list
        ]
        depth += 1


def _object_with_remembered_tools(text: str, memo: ToolsMemo, checked: list[tuple[int, int]]) -> dict | None:
    """The top-level object of `text`, walked key by key (values parsed by json's own scanner), or
    None for anything else: the caller then lets json.loads parse it, or say what is wrong.

    Appends to `checked` the span of each recalled list whose text passed the strict checks before.
    """
    space = _WHITESPACE.match
    index = space(text, 0).end()
    if not text.startswith("{", index):
        return None
    index = space(text, index + 1).end()
    result: dict = {}
    if not text.startswith("}", index):
        while True:
            if not text.startswith('"', index):
                return None
            key, index = json.decoder.scanstring(text, index + 1)
            index = space(text, index).end()
            if not text.startswith(":", index):
                return None
            index = space(text, index + 1).end()
            value = memo.recall(text, index) if key == "tools" else None
            if value is not None:
                end = index + len(value.derived["json"])
                if "strict" in value.derived:
                    checked.append((index, end))
            else:
                value, end = _SCAN_ONCE(text, index)
                if key == "tools":
                    value = memo.remember(text[index:end], value)
            result[key] = value
            index = space(text, end).end()
            if text.startswith("}", index):
                break
            if not text.startswith(",", index):
                return None
            index = space(text, index + 1).end()
    if space(text, index + 1).end() != len(text):
        return None  # extra data after the object
    return result


def dumps_request(body: dict) -> str:
    """`dumps(body)`, with each top-level RememberedList written from its JSON text (encoded once)."""
    reused = [key for key, value in body.items() if type(value) is RememberedList]
    if not reused:
        return dumps(body)
    head = dumps({key: value for key, value in body.items() if key not in reused})
    tail = []
    for key in reused:
        remembered = body[key]
        text = remembered.derived.get("json")
        if text is None:
            text = remembered.derived["json"] = dumps(remembered)
        tail.append(f"{dumps(key)}:{text}")
    separator = "," if head != "{}" else ""
    return head[:-1] + separator + ",".join(tail) + "}"
