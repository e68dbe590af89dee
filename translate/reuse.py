"""Work that repeats byte for byte between requests, done once: the tool list.

Claude Code sends the same tool definitions, byte for byte, on every request of a session: tens of
kilobytes of JSON schemas (two thirds of a typical request before the history grows). Parsing,
translating and re-encoding them is most of the CPU a translated request costs. This module
remembers them.

Policies:
- `loads_request` parses a request body exactly as `json.loads` does, except that a top-level
  "tools" array whose text equals one seen recently is not parsed again: the body gets the parsed
  list remembered for it, a `RememberedList`. Anything irregular (not an object, bad JSON, extra
  data) falls back to `json.loads`, so errors read the same.
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
import re

from translate.sse import dumps

TOOLS_MEMO_ENTRIES = 8
MIN_REMEMBERED_CHARS = 1024
_SCAN_ONCE = json.scanner.make_scanner(json.JSONDecoder())
_WHITESPACE = re.compile(r"[ \t\n\r]*")


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
    """`json.loads(raw)`, with a top-level "tools" array taken from `memo` when its text was seen.

    Raises ValueError exactly where `json.loads` does.
    """
    if memo is None or not isinstance(raw, bytes) or len(raw) < 2 * MIN_REMEMBERED_CHARS or b'"tools"' not in raw:
        return json.loads(raw)  # nothing to remember: json's own loop is faster than walking keys here
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        parsed = _object_with_remembered_tools(text, memo)
    except (ValueError, StopIteration):
        parsed = None
    return json.loads(raw) if parsed is None else parsed


def _object_with_remembered_tools(text: str, memo: ToolsMemo) -> dict | None:
    """The top-level object of `text`, walked key by key (values parsed by json's own scanner), or
    None for anything else: the caller then lets json.loads parse it, or say what is wrong."""
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
