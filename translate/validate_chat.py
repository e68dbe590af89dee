"""Validation of Chat Completions requests (`POST /v1/chat/completions`).

The policies are translate/validate.py's. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from translate.reuse import MAX_JSON_DEPTH, StrictJSONError, loads_strict
from translate.validate_fields import (
    MESSAGE,
    NON_EMPTY,
    OBJECT,
    PART,
    PARTS,
    STRING,
    UNIT,
    Check,
    Found,
    check_body,
    check_boolean,
    check_integer,
    check_model,
    check_object,
    check_objects,
    check_positive_int,
    check_string,
    check_string_or_object,
    check_strings,
    check_tool_list,
    each,
    fail,
    fail_nested,
    index_of,
    inside,
    int_from,
    is_number,
    non_empty,
    number_from,
    optional_bools,
    optional_strings,
)

# ---------------------------------------------------------------------------------------------
# Chat Completions: content parts
# ---------------------------------------------------------------------------------------------


def _image_url_part(part: dict) -> Found:
    image = part.get("image_url")
    if isinstance(image, str):
        return None if image else (".image_url", NON_EMPTY)  # a bare URL: the translator takes it
    if not isinstance(image, dict) or not non_empty(image.get("url")):
        return ".image_url.url", NON_EMPTY
    return inside(".image_url", optional_strings(image, ("detail",)))


def _input_audio_part(part: dict) -> Found:
    audio = part.get("input_audio")
    if not isinstance(audio, dict):
        return ".input_audio", OBJECT
    for name in ("data", "format"):
        if not isinstance(audio.get(name), str):
            return f".input_audio.{name}", STRING
    return None


def _file_part(part: dict) -> Found:
    file = part.get("file")
    if not isinstance(file, dict):
        return ".file", OBJECT
    return inside(".file", optional_strings(file, ("file_data", "file_id", "filename")))


def _refusal_part(part: dict) -> Found:
    return None if isinstance(part.get("refusal"), str) else (".refusal", STRING)


_PART_CHECKS: dict[str, Callable[[dict], Found]] = {
    "refusal": _refusal_part,
    "image_url": _image_url_part,
    "input_audio": _input_audio_part,
    "file": _file_part,
}
_TEXT_ONLY = ("text",)
_ASSISTANT_PARTS = ("text", "refusal")


def _content(message: dict, allowed: tuple[str, ...] | None = None) -> Found:
    """A message's `content`: null, a string, or a list of parts.

    A bare string in the list is taken as a text part (the translator does). `allowed` limits the
    part types (system and assistant messages carry text only); None allows any, unknown included.
    """
    content = message.get("content")
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list):
        return ".content", PARTS
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if isinstance(part.get("text"), str):  # type: ignore[union-attr]
                continue
            found: Found = (".text", STRING)
        elif isinstance(part, str):
            continue
        elif not isinstance(kind, str):
            found = ("", PART)
        elif allowed is not None and kind not in allowed:
            found = (".type", "must be " + " or ".join(f'"{name}"' for name in allowed) + " here")
        else:
            check = _PART_CHECKS.get(kind)
            found = None if check is None else check(part)  # type: ignore[arg-type]
            if found is None:
                continue
        return f".content[{index_of(content, part)}]{found[0]}", found[1]
    return None


# ---------------------------------------------------------------------------------------------
# Chat Completions: messages
# ---------------------------------------------------------------------------------------------


def _arguments(arguments: object) -> str | None:
    """What is wrong with a tool call's `arguments`, or None."""
    if arguments is None or isinstance(arguments, dict):
        return None  # an object: odd, but the translator takes it
    if not isinstance(arguments, str):
        return "a string of JSON is required"
    if not (
        "NaN" in arguments
        or "Infinity" in arguments
        or "\\ud" in arguments
        or "\\uD" in arguments
        or arguments.count("[") + arguments.count("{") > MAX_JSON_DEPTH
    ):
        return None  # nothing json.loads takes that strict JSON refuses
    try:
        loads_strict(arguments)
    except StrictJSONError as error:
        return str(error)
    except ValueError:
        return None  # not JSON at all: the translator (or the upstream) decides
    return None


def _tool_call(call: object) -> Found:
    if not isinstance(call, dict):
        return "", OBJECT
    kind = call.get("type")
    if kind is not None and not isinstance(kind, str):
        return ".type", STRING
    found = optional_strings(call, ("id",))
    if found is not None:
        return found
    if kind is None or kind == "function":
        function = call.get("function")
        if not isinstance(function, dict):
            return ".function", OBJECT
        if not non_empty(function.get("name")):
            return ".function.name", NON_EMPTY
        problem = _arguments(function.get("arguments"))
        return None if problem is None else (".function.arguments", problem)
    if kind == "custom":
        custom = call.get("custom")
        if not isinstance(custom, dict):
            return ".custom", OBJECT
        if not non_empty(custom.get("name")):
            return ".custom.name", NON_EMPTY
        return inside(".custom", optional_strings(custom, ("input",)))
    return None


def _system_message(message: dict) -> Found:
    return _content(message, _TEXT_ONLY) or optional_strings(message, ("name",))


def _user_message(message: dict) -> Found:
    return _content(message) or optional_strings(message, ("name",))


def _assistant_message(message: dict) -> Found:
    found = _content(message, _ASSISTANT_PARTS) or optional_strings(message, ("refusal", "name"))
    if found is not None:
        return found
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return ".tool_calls", "a list of tool calls is required"
        found = inside(".tool_calls", each(calls, _tool_call))
        if found is not None:
            return found
    legacy = message.get("function_call")
    if legacy is None:
        return None
    if not isinstance(legacy, dict):
        return ".function_call", OBJECT
    return inside(".function_call", optional_strings(legacy, ("name", "arguments")))


def _tool_message(message: dict) -> Found:
    if not non_empty(message.get("tool_call_id")):
        return ".tool_call_id", NON_EMPTY
    return _content(message)


def _function_message(message: dict) -> Found:
    # The deprecated functions API: refused by the Anthropic translation, taken by OpenAI.
    if not non_empty(message.get("name")):
        return ".name", NON_EMPTY
    return optional_strings(message, ("content",))


_MESSAGE_CHECKS: dict[str, Callable[[dict], Found]] = {
    "system": _system_message,
    "developer": _system_message,
    "user": _user_message,
    "assistant": _assistant_message,
    "tool": _tool_message,
    "function": _function_message,
}


def _chat_message(message: object) -> Found:
    if not isinstance(message, dict):
        return "", MESSAGE
    role = message.get("role")
    check = _MESSAGE_CHECKS.get(role) if isinstance(role, str) else None
    if check is None:
        return ".role", "must be system, developer, user, assistant, tool or function"
    return check(message)


def _chat_messages(messages: object, path: str) -> None:
    if not isinstance(messages, list) or not messages:
        fail(path, "a non-empty list of messages is required")
    fail_nested(path, each(messages, _chat_message))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Chat Completions: top-level fields
# ---------------------------------------------------------------------------------------------


def _chat_tool(tool: object) -> Found:
    if not isinstance(tool, dict):
        return "", "a tool object is required"
    kind = tool.get("type")
    if kind is None or kind == "function":
        function = tool.get("function")
        if not isinstance(function, dict):
            return ".function", OBJECT
        if not non_empty(function.get("name")):
            return ".function.name", NON_EMPTY
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            return ".function.parameters", OBJECT
        return inside(".function", optional_strings(function, ("description",)) or optional_bools(function, ("strict",)))
    if not isinstance(kind, str):
        return ".type", STRING
    if kind == "custom":
        custom = tool.get("custom")
        if not isinstance(custom, dict):
            return ".custom", OBJECT
        if not non_empty(custom.get("name")):
            return ".custom.name", NON_EMPTY
    return None


def _chat_tools(tools: object, path: str) -> None:
    check_tool_list(tools, path, _chat_tool, "valid:chat")


def _chat_tool_choice(choice: object, path: str) -> None:
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            fail(path, 'must be "none", "auto", "required" or an object')
        return
    if not isinstance(choice, dict):
        fail(path, 'must be "none", "auto", "required" or an object')
    kind = choice.get("type")  # type: ignore[union-attr]
    if kind == "function" or kind == "custom":
        named = choice.get(kind)  # type: ignore[union-attr]
        if not isinstance(named, dict) or not non_empty(named.get("name")):
            fail(f"{path}.{kind}.name", NON_EMPTY)
    elif kind == "allowed_tools":
        allowed = choice.get("allowed_tools")  # type: ignore[union-attr]
        if not isinstance(allowed, dict):
            fail(f"{path}.allowed_tools", OBJECT)
        if allowed.get("mode") not in ("auto", "required"):
            fail(f"{path}.allowed_tools.mode", 'must be "auto" or "required"')
        check_objects(allowed.get("tools"), f"{path}.allowed_tools.tools")
    else:
        fail(f"{path}.type", 'must be "function", "allowed_tools" or "custom"')


def _stop(stop: object, path: str) -> None:
    if not isinstance(stop, str):
        check_strings(stop, path)


def _stream_options(options: object, path: str) -> None:
    if not isinstance(options, dict):
        fail(path, OBJECT)
    fail_nested(path, optional_bools(options, ("include_usage", "include_obfuscation")))  # type: ignore[arg-type]


def _response_format(response_format: object, path: str) -> None:
    if not isinstance(response_format, dict):
        fail(path, OBJECT)
    kind = response_format.get("type")  # type: ignore[union-attr]
    if not isinstance(kind, str):
        fail(f"{path}.type", STRING)
    if kind != "json_schema":
        return  # text, json_object, or a server's own kind (vLLM's structural_tag)
    spec = response_format.get("json_schema")  # type: ignore[union-attr]
    if not isinstance(spec, dict):
        fail(f"{path}.json_schema", OBJECT)
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        fail(f"{path}.json_schema.schema", OBJECT)
    found = optional_strings(spec, ("name", "description")) or optional_bools(spec, ("strict",))
    fail_nested(f"{path}.json_schema", found)


def _logit_bias(bias: object, path: str) -> None:
    if not isinstance(bias, dict):
        fail(path, OBJECT)
    for token, value in bias.items():  # type: ignore[union-attr]
        if not is_number(value) or not -100 <= value <= 100:
            fail(f"{path}.{token}", "a number from -100 to 100 is required")


_PENALTY = number_from(-2, 2)

# The fields of POST /v1/chat/completions (PROTOCOLS.md 2.1).
CHAT_FIELDS: dict[str, Check] = {
    "model": check_model,
    "messages": _chat_messages,
    "max_tokens": check_positive_int,
    "max_completion_tokens": check_positive_int,
    "temperature": number_from(0, 2),
    "top_p": UNIT,
    "n": check_positive_int,
    "stop": _stop,
    "stream": check_boolean,
    "stream_options": _stream_options,
    "tools": _chat_tools,
    "tool_choice": _chat_tool_choice,
    "parallel_tool_calls": check_boolean,
    "response_format": _response_format,
    "reasoning_effort": check_string,
    "seed": check_integer,
    "logprobs": check_boolean,
    "top_logprobs": int_from(0, 20),
    "logit_bias": _logit_bias,
    "presence_penalty": _PENALTY,
    "frequency_penalty": _PENALTY,
    "modalities": check_strings,
    "audio": check_object,
    "prediction": check_object,
    "store": check_boolean,
    "metadata": check_object,
    "service_tier": check_string,
    "verbosity": check_string,
    "web_search_options": check_object,
    "prompt_cache_key": check_string,
    "safety_identifier": check_string,
    "user": check_string,
    "functions": check_objects,
    "function_call": check_string_or_object,
}


def validate_chat_request(body: object) -> None:
    """Check an OpenAI `POST /v1/chat/completions` body (parsed, MODEL_NAME filled in) against the API.

    Returns None when every field the endpoint defines has the right type and range. Raises
    InvalidRequest (400, `param` = the field's path) for the first one that does not; the caller
    renders it in the OpenAI envelope and sends nothing upstream. What Claude cannot do (n > 1,
    audio...) is the Anthropic translation's to refuse, not this function's.
    """
    check_body(body, CHAT_FIELDS, ("model", "messages"))
