"""Validation of Anthropic Messages requests (`POST /v1/messages`, `/v1/messages/count_tokens`).

The policies are translate/validate.py's. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from translate.validate_fields import (
    BLOCK,
    CONTENT,
    MESSAGE,
    NON_EMPTY,
    OBJECT,
    STRING,
    UNIT,
    Check,
    Found,
    check_body,
    check_boolean,
    check_model,
    check_non_negative_int,
    check_object,
    check_objects,
    check_string,
    check_string_or_object,
    check_strings,
    check_tool_list,
    each,
    fail,
    fail_nested,
    index_of,
    inside,
    non_empty,
    optional_bools,
    optional_strings,
)

# ---------------------------------------------------------------------------------------------
# Anthropic: content blocks
# ---------------------------------------------------------------------------------------------


def _source(source: object) -> Found:
    """An image's or a document's `source`, as ".source..." findings."""
    if not isinstance(source, dict):
        return ".source", OBJECT
    kind = source.get("type")
    if not isinstance(kind, str):
        return ".source.type", STRING
    if kind == "base64" or kind == "text":
        if not isinstance(source.get("data"), str):
            return ".source.data", STRING
        return inside(".source", optional_strings(source, ("media_type",)))
    if kind == "url" or kind == "file":
        name = "url" if kind == "url" else "file_id"
        return None if isinstance(source.get(name), str) else (f".source.{name}", STRING)
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return None
        if not isinstance(content, list):
            return ".source.content", CONTENT
        return inside(".source.content", each(content, _block))
    return None


def image_block(block: dict) -> Found:
    source = block.get("source")
    return None if source is None else _source(source)  # no source: the translators leave it out


def document_block(block: dict) -> Found:
    source = block.get("source")
    return (None if source is None else _source(source)) or optional_strings(block, ("title", "context"))


def _tool_use_block(block: dict) -> Found:
    if not non_empty(block.get("id")):
        return ".id", NON_EMPTY
    if not non_empty(block.get("name")):
        return ".name", NON_EMPTY
    value = block.get("input")
    return None if value is None or isinstance(value, dict) else (".input", OBJECT)


def _tool_result_block(block: dict) -> Found:
    if not non_empty(block.get("tool_use_id")):
        return ".tool_use_id", NON_EMPTY
    content = block.get("content")
    if content is not None and not isinstance(content, str):
        if not isinstance(content, list):
            return ".content", CONTENT
        found = each(content, _block)
        if found is not None:
            return ".content" + found[0], found[1]
    return optional_bools(block, ("is_error",))


def _thinking_block(block: dict) -> Found:
    return optional_strings(block, ("thinking", "signature"))


def _search_result_block(block: dict) -> Found:
    content = block.get("content")
    if content is not None:
        if not isinstance(content, list):
            return ".content", "a list of content blocks is required"
        found = each(content, _block)
        if found is not None:
            return ".content" + found[0], found[1]
    return optional_strings(block, ("title", "source"))


def _tool_reference_block(block: dict) -> Found:
    return optional_strings(block, ("tool_name",))


# The blocks a translator reads, besides text; any other type needs only its `type` (PROTOCOLS.md 1.4).
_BLOCK_CHECKS: dict[str, Callable[[dict], Found]] = {
    "image": image_block,
    "document": document_block,
    "tool_use": _tool_use_block,
    "tool_result": _tool_result_block,
    "thinking": _thinking_block,
    "search_result": _search_result_block,
    "tool_reference": _tool_reference_block,
}


def _block(block: object) -> Found:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":  # the common case first, without a call
        return None if isinstance(block.get("text"), str) else (".text", STRING)  # type: ignore[union-attr]
    if not isinstance(kind, str):
        return "", BLOCK
    check = _BLOCK_CHECKS.get(kind)
    return None if check is None else check(block)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Anthropic: top-level fields
# ---------------------------------------------------------------------------------------------

_ANTHROPIC_ROLES = ("user", "assistant", "system")


def _anthropic_message(message: object) -> Found:
    if not isinstance(message, dict):
        return "", MESSAGE
    if message.get("role") not in _ANTHROPIC_ROLES:  # a tuple: `in` never hashes the role
        return ".role", 'must be "user", "assistant" or "system"'
    content = message.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return ".content", CONTENT
    for block in content:
        found = _block(block)
        if found is not None:
            return f".content[{index_of(content, block)}]{found[0]}", found[1]
    return None


def _anthropic_messages(messages: object, path: str) -> None:
    if not isinstance(messages, list):
        fail(path, "a list of messages is required")
    fail_nested(path, each(messages, _anthropic_message))  # type: ignore[arg-type]


def _system_block(block: object) -> Found:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        return "", BLOCK
    if kind == "text" and not isinstance(block.get("text"), str):  # type: ignore[union-attr]
        return ".text", STRING
    return None


def _anthropic_system(system: object, path: str) -> None:
    if isinstance(system, str):
        return
    if not isinstance(system, list):
        fail(path, "a string or a list of text blocks is required")
    fail_nested(path, each(system, _system_block))  # type: ignore[arg-type]


def _anthropic_tool(tool: object) -> Found:
    if not isinstance(tool, dict):
        return "", "a tool object is required"
    kind = tool.get("type")
    if kind is None or kind == "custom":
        if not non_empty(tool.get("name")):
            return ".name", NON_EMPTY
        schema = tool.get("input_schema")
        if schema is not None and not isinstance(schema, dict):
            return ".input_schema", OBJECT
        found = optional_strings(tool, ("description",)) or optional_bools(tool, ("strict", "defer_loading"))
    elif not isinstance(kind, str):
        return ".type", STRING
    else:  # a server tool (web_search_20250305...): run by Anthropic, dropped elsewhere
        found = optional_strings(tool, ("name",))
    cache_control = tool.get("cache_control")
    if found is None and cache_control is not None and not isinstance(cache_control, dict):
        return ".cache_control", OBJECT
    return found


def _anthropic_tools(tools: object, path: str) -> None:
    check_tool_list(tools, path, _anthropic_tool, "valid:anthropic")


def _anthropic_tool_choice(choice: object, path: str) -> None:
    if not isinstance(choice, dict):
        fail(path, OBJECT)
    kind = choice.get("type")  # type: ignore[union-attr]
    if not isinstance(kind, str):
        fail(f"{path}.type", STRING)
    if kind == "tool" and not non_empty(choice.get("name")):  # type: ignore[union-attr]
        fail(f"{path}.name", NON_EMPTY)
    fail_nested(path, optional_bools(choice, ("disable_parallel_tool_use",)))  # type: ignore[arg-type]


def _thinking(thinking: object, path: str) -> None:
    if not isinstance(thinking, dict):
        fail(path, OBJECT)
    if not isinstance(thinking.get("type"), str):  # type: ignore[union-attr]
        fail(f"{path}.type", STRING)
    budget = thinking.get("budget_tokens")  # type: ignore[union-attr]
    if budget is not None:
        check_non_negative_int(budget, f"{path}.budget_tokens")
    fail_nested(path, optional_strings(thinking, ("display",)))  # type: ignore[arg-type]


def _output_config(config: object, path: str) -> None:
    if not isinstance(config, dict):
        fail(path, OBJECT)
    fail_nested(path, optional_strings(config, ("effort",)))  # type: ignore[arg-type]
    fmt = config.get("format")  # type: ignore[union-attr]
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        fail(f"{path}.format", OBJECT)
    if not isinstance(fmt.get("type"), str):
        fail(f"{path}.format.type", STRING)
    if fmt["type"] == "json_schema" and not isinstance(fmt.get("schema"), dict):
        fail(f"{path}.format.schema", OBJECT)


def _anthropic_metadata(metadata: object, path: str) -> None:
    if not isinstance(metadata, dict):
        fail(path, OBJECT)
    fail_nested(path, optional_strings(metadata, ("user_id",)))  # type: ignore[arg-type]



# The fields of POST /v1/messages/count_tokens (PROTOCOLS.md 1.6)...
COUNT_TOKENS_FIELDS: dict[str, Check] = {
    "model": check_model,
    "messages": _anthropic_messages,
    "system": _anthropic_system,
    "tools": _anthropic_tools,
    "tool_choice": _anthropic_tool_choice,
    "thinking": _thinking,
    "output_config": _output_config,
    "cache_control": check_object,
    "context_management": check_object,
    "mcp_servers": check_objects,
}
# ...and of POST /v1/messages (PROTOCOLS.md 1.2).
MESSAGES_FIELDS: dict[str, Check] = {
    **COUNT_TOKENS_FIELDS,
    "max_tokens": check_non_negative_int,
    "stop_sequences": check_strings,
    "temperature": UNIT,
    "top_p": UNIT,
    "top_k": check_non_negative_int,
    "stream": check_boolean,
    "metadata": _anthropic_metadata,
    "service_tier": check_string,
    "container": check_string_or_object,
    "inference_geo": check_string,
}


def validate_messages_request(body: object) -> None:
    """Check an Anthropic `POST /v1/messages` body (parsed, MODEL_NAME filled in) against the API.

    Returns None when every field the endpoint defines has the right type and range. Raises
    InvalidRequest (400, `param` = the field's path) for the first one that does not; the caller
    renders it in the Anthropic envelope and sends nothing upstream.
    """
    check_body(body, MESSAGES_FIELDS, ("model", "messages", "max_tokens"))


def validate_count_tokens_request(body: object) -> None:
    """Check an Anthropic `POST /v1/messages/count_tokens` body: as `validate_messages_request`,
    for the fields count_tokens defines; `model` may be missing (the server counts with its default).

    Returns None, or raises InvalidRequest (400) naming the first wrong field.
    """
    check_body(body, COUNT_TOKENS_FIELDS, ("messages",))
