"""Validation of OpenAI Responses requests (`POST /v1/responses`): top-level fields and item shapes.

The policies are translate/validate.py's. Items are checked as far as every translation reads them
(a `type` string, a role for messages, call ids and names for calls); their content is the
request translator's to judge (translate/responses_to_anthropic_request.py), which degrades what it
does not know instead of refusing it. Pure.
"""

from __future__ import annotations

from translate.validate_fields import (
    OBJECT,
    UNIT,
    Check,
    check_body,
    check_boolean,
    check_model,
    check_object,
    check_positive_int,
    check_string,
    check_string_or_object,
    check_strings,
    fail,
    number_from,
)

INPUT = "a string or a list of input items is required"
ITEM = "an input item object is required"
TOOL = "a tool object with a string `type` is required"


def _input(value: object, path: str) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        fail(path, INPUT)
    for index, item in enumerate(value):
        at = f"{path}[{index}]"
        if not isinstance(item, dict):
            fail(at, ITEM)
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"  # an easy input message: role and content, no type
        if not isinstance(kind, str):
            fail(f"{at}.type", "a string is required")
        if kind == "message":
            if not isinstance(item.get("role"), str):
                fail(f"{at}.role", "a string is required")
            content = item.get("content")
            if not isinstance(content, (str, list)):
                fail(f"{at}.content", "a string or a list of content parts is required")
            if isinstance(content, list):
                for part_index, part in enumerate(content):
                    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                        fail(f"{at}.content[{part_index}]", "a content part object with a string `type` is required")
        elif kind in ("function_call", "custom_tool_call"):
            for name in ("call_id", "name"):
                if not isinstance(item.get(name), str) or not item[name]:
                    fail(f"{at}.{name}", "a non-empty string is required")
        elif kind in ("function_call_output", "custom_tool_call_output"):
            if not isinstance(item.get("call_id"), str) or not item["call_id"]:
                fail(f"{at}.call_id", "a non-empty string is required")


def _tools(value: object, path: str) -> None:
    if not isinstance(value, list):
        fail(path, "a list of tools is required")
    for index, tool in enumerate(value):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            fail(f"{path}[{index}]", TOOL)


def _tool_choice(value: object, path: str) -> None:
    check_string_or_object(value, path)


def _reasoning(value: object, path: str) -> None:
    check_object(value, path)
    effort = value.get("effort")
    if effort is not None and not isinstance(effort, str):
        fail(f"{path}.effort", "a string is required")


def _text(value: object, path: str) -> None:
    check_object(value, path)
    text_format = value.get("format")
    if text_format is not None and not (isinstance(text_format, dict) and isinstance(text_format.get("type"), str)):
        fail(f"{path}.format", OBJECT.replace("an object", "an object with a string `type`"))


RESPONSES_FIELDS: dict[str, Check] = {
    "model": check_model,
    "input": _input,
    "instructions": check_string,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": check_boolean,
    "stream": check_boolean,
    "max_output_tokens": check_positive_int,
    "temperature": number_from(0, 2),
    "top_p": UNIT,
    "reasoning": _reasoning,
    "text": _text,
    "store": check_boolean,
    "include": check_strings,
    "metadata": check_object,
    "user": check_string,
    "safety_identifier": check_string,
    "prompt_cache_key": check_string,
    "previous_response_id": check_string,
    "service_tier": check_string,
}


def validate_responses_request(body: object) -> None:
    """Check an OpenAI `POST /v1/responses` body (parsed, MODEL_NAME filled in).

    Returns None, or raises InvalidRequest (400, `param` = the field's path) for the first wrong field.
    """
    check_body(body, RESPONSES_FIELDS, ("model", "input"))
