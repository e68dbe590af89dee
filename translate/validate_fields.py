"""The shared checks of request validation (translate/validate.py says what is checked and why).

Each check takes (value, path) and raises InvalidRequest naming the path, or returns None; the
nested ones return a `Found` (path suffix, requirement) for the caller to prefix. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from translate.errors import InvalidRequest

# What a field must be, as the end of "<path>: ..." sentences.
STRING = "a string is required"
NON_EMPTY = "a non-empty string is required"
OBJECT = "an object is required"
BOOLEAN = "true or false is required"
NON_NEGATIVE = "a non-negative integer is required"
POSITIVE = "a positive integer is required"
INTEGER = "an integer is required"
STRINGS = "a list of strings is required"
MESSAGE = "a message object is required"
BLOCK = "a content block object with a string `type` is required"
CONTENT = "a string or a list of content blocks is required"
PART = "a content part object with a string `type` is required"
PARTS = "a string or a list of content parts is required"

# C0 and C1 controls, DEL, and surrogates: never part of a model name.
_MODEL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

Check = Callable[[object, str], None]  # (value, path): raises InvalidRequest or returns None
Found = tuple[str, str] | None  # (path suffix, requirement) of the first wrong nested field


def fail(path: str, requirement: str) -> None:
    raise InvalidRequest(f"{path}: {requirement}.", param=path)


def fail_nested(path: str, found: Found) -> None:
    if found is not None:
        fail(path + found[0], found[1])


def index_of(items: list, item: object) -> int:
    # Loops keep no index; the failing item's is worked out when there is an error to report.
    return next(index for index, candidate in enumerate(items) if candidate is item)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def non_empty(value: object) -> bool:
    return isinstance(value, str) and value != ""


def optional_strings(holder: dict, names: tuple[str, ...]) -> Found:
    """The first of `names` present in `holder` (not null) that is not a string."""
    for name in names:
        value = holder.get(name)
        if value is not None and not isinstance(value, str):
            return "." + name, STRING
    return None


def optional_bools(holder: dict, names: tuple[str, ...]) -> Found:
    for name in names:
        value = holder.get(name)
        if value is not None and not isinstance(value, bool):
            return "." + name, BOOLEAN
    return None


def inside(prefix: str, found: Found) -> Found:
    return None if found is None else (prefix + found[0], found[1])


def each(items: list, check: Callable[[object], Found]) -> Found:
    """The first item of `items` that `check` finds wrong, as ("[index]<suffix>", requirement)."""
    for item in items:
        found = check(item)
        if found is not None:
            return f"[{index_of(items, item)}]{found[0]}", found[1]
    return None


# ---------------------------------------------------------------------------------------------
# Top-level field checks shared by both fronts
# ---------------------------------------------------------------------------------------------


def check_model(value: object, path: str) -> None:
    if not non_empty(value):
        fail(path, NON_EMPTY)
    if not (value.isascii() and value.isprintable()) and _MODEL_FORBIDDEN.search(value):  # type: ignore[union-attr]
        fail(path, "must not contain control characters or lone surrogates")


def check_string(value: object, path: str) -> None:
    if not isinstance(value, str):
        fail(path, STRING)


def check_boolean(value: object, path: str) -> None:
    if not isinstance(value, bool):
        fail(path, BOOLEAN)


def check_integer(value: object, path: str) -> None:
    if not is_int(value):
        fail(path, INTEGER)


def check_non_negative_int(value: object, path: str) -> None:
    if not is_int(value) or value < 0:  # type: ignore[operator]
        fail(path, NON_NEGATIVE)


def check_positive_int(value: object, path: str) -> None:
    if not is_int(value) or value < 1:  # type: ignore[operator]
        fail(path, POSITIVE)


def check_object(value: object, path: str) -> None:
    if not isinstance(value, dict):
        fail(path, OBJECT)


def check_string_or_object(value: object, path: str) -> None:
    if not isinstance(value, (str, dict)):
        fail(path, "a string or an object is required")


def check_strings(value: object, path: str) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        fail(path, STRINGS)


def object_item(item: object) -> Found:
    return None if isinstance(item, dict) else ("", OBJECT)


def check_objects(value: object, path: str) -> None:
    if not isinstance(value, list):
        fail(path, "a list of objects is required")
    fail_nested(path, each(value, object_item))  # type: ignore[arg-type]


def number_from(low: float, high: float) -> Check:
    requirement = f"a number from {low:g} to {high:g} is required"

    def check(value: object, path: str) -> None:
        if not is_number(value) or not low <= value <= high:  # type: ignore[operator]
            fail(path, requirement)

    return check


def int_from(low: int, high: int) -> Check:
    requirement = f"an integer from {low} to {high} is required"

    def check(value: object, path: str) -> None:
        if not is_int(value) or not low <= value <= high:  # type: ignore[operator]
            fail(path, requirement)

    return check


def check_body(body: object, fields: dict[str, Check], required: tuple[str, ...]) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    for name in required:
        if body.get(name) is None:
            fields[name](None, name)  # each check refuses null with its own sentence
    for name, value in body.items():
        if value is not None:
            check = fields.get(name)
            if check is not None:
                check(value, name)


UNIT = number_from(0, 1)  # temperature and top_p on Anthropic, top_p on chat


def check_tool_list(tools: object, path: str, check_tool: Callable[[object], Found], memo_key: str) -> None:
    """A list of tools, each passing `check_tool`. A list remembered between requests
    (translate/reuse.py) records that it passed under `memo_key`, so a session's tools are checked once."""
    if not isinstance(tools, list):
        fail(path, "a list of tools is required")
    derived = getattr(tools, "derived", None)
    if derived is not None and memo_key in derived:
        return  # the same remembered list passed before
    fail_nested(path, each(tools, check_tool))  # type: ignore[arg-type]
    if derived is not None:
        derived[memo_key] = True
