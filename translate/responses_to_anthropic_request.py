"""Responses requests to Anthropic Messages requests (a `/v1/responses` front on the hub).

Codex CLI and other clients of the OpenAI Responses API reach Claude through this module, and every
other upstream through the hub after it. It is pure: the response id, the timestamp and the
requested model come in and go out in `ResponsesContext`, so the same input gives the same bytes.

Request policies (RESPONSES.md 1-3, PROTOCOLS.md 1.9):
- `instructions`, then every `system`/`developer` message in order, become the `system` blocks
  [LOSSY: a mid-conversation instruction moves to the top]. `target.system_prompt` is used only
  when the request brings no system text.
- Items become turns: user messages and call outputs are user turns; assistant messages, reasoning
  and calls are assistant turns. Adjacent turns of one role merge, so consecutive assistant-side items
  form one assistant turn in order, and the outputs after it one user turn, tool results first in call
  order (chat_to_anthropic_request's pairing). A call without an output gets an `is_error` result;
  an output that answers no call of the assistant turn before it is a 400, as on OpenAI.
- `reasoning` items carry thinking only when `encrypted_content` is our envelope
  (`encode_thinking_envelope` in translate/responses_context.py, re-exported here): the original Anthropic block, verbatim, since Claude verifies its
  signature. Other reasoning items (OpenAI's blobs, bare summaries) are dropped [LOSSY].
- Calls: `function_call` -> tool_use (arguments parsed; bad JSON -> {}); `custom_tool_call` ->
  tool_use with input {"input": raw}; `tool_search_call` -> tool_use `tool_search` with its
  arguments; `local_shell_call` -> tool_use `local_shell` {command, workdir, timeout_ms}. Their
  outputs -> tool_result (string, or input_text/input_image/input_file parts). Ids are `call_id`
  through `portable_tool_id`, so a call and its output always meet.
- Tools: `function` as is; `custom` -> a tool with one required string `input`, the grammar in the
  description; `namespace` members flattened to their short name, or `<namespace>__<name>` when the
  short name collides (sanitised to Anthropic's pattern when needed); client `tool_search` ->
  `tool_search`; `local_shell` -> `local_shell`. Tools returned by `tool_search_output` items and
  `additional_tools` items join the list (the first tool of a name wins). Hosted tools (web_search,
  file_search, code_interpreter, mcp, image_generation, computer_use, server tool_search...) are
  dropped and named in `dropped_tools` [LOSSY].
- `reasoning.effort` low..max -> thinking budgets of chat_to_anthropic_request; none/minimal -> no
  thinking. Thinking stays off for a prefill, and for a tool loop whose last assistant turn does not
  start with a thinking block from our envelope (Anthropic requires it). Without thinking, thinking
  blocks are removed from the history.
- `text.format` json_schema -> `output_config.format` (RESPONSES.md 1); json_object -> a system
  instruction [LOSSY: a Markdown fence around the answer is not removed].
- 400: `previous_response_id` (code previous_response_not_found), `conversation`, `background:true`
  and `prompt` (code unsupported_parameter), `file_id` images and files, audio parts. 404:
  `item_reference` ("Item with id '...' not found.", OpenAI's wording).
- Dropped: store, include, prompt_cache_key, metadata, service_tier, truncation, top_logprobs,
  max_tool_calls, text.verbosity, reasoning.summary, client_metadata, item ids and statuses, image
  `detail`, output_text annotations, hosted-tool items (web_search_call, compaction, mcp_*...) unless
  they carry text, which becomes user text.

The way back (Anthropic answers -> Responses objects) reads only `ResponsesContext`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .chat_to_anthropic_request import (
    JSON_OBJECT_INSTRUCTION,
    NO_THINKING_EFFORTS,
    PLACEHOLDER_USER_TEXT,
    THINKING_BUDGET_TOKENS_BY_EFFORT,
    AnthropicTarget,
    add_cache_breakpoints,
    append_turn,
    document_block,
    fit_max_tokens,
    image_block,
    lift_forced_tool,
    make_tool_ids_unique,
    pair_tool_results,
    put_thinking_and_sampling,
    text_blocks,
    trim_prefill,
)
from .errors import InvalidRequest, NotFound
from .responses_context import (
    THINKING_ENVELOPE_PREFIX,
    ResponsesContext,
    decode_thinking_envelope,
    encode_thinking_envelope,
)
from .responses_tools import (
    LOCAL_SHELL_TOOL,
    TOOL_SEARCH_TOOL,
    ResponsesTools,
    responses_tool_choice,
)
from .reuse import loads_strict
from .tools import portable_tool_id

# The thinking envelope lives with the context, which both directions import; re-exported here.
__all__ = [
    "THINKING_ENVELOPE_PREFIX",
    "ResponsesOnAnthropic",
    "decode_thinking_envelope",
    "encode_thinking_envelope",
    "responses_to_anthropic_request",
]

THINKING_BLOCK_TYPES = ("thinking", "redacted_thinking")
STATELESS_PARAMETERS = ("conversation", "prompt")  # refused whenever present; background only when true

# Fields of a Responses request that its response object echoes (RESPONSES.md 5).
ECHOED_FIELDS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "instructions",
    "temperature",
    "top_p",
    "max_output_tokens",
    "reasoning",
    "text",
    "store",
    "metadata",
)
# Item types that are calls (assistant side) and outputs (user side), by the tool_use name they get.
CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "tool_search_call", "local_shell_call"})
OUTPUT_ITEMS = frozenset(
    {"function_call_output", "custom_tool_call_output", "tool_search_output", "local_shell_call_output"}
)


@dataclass(frozen=True)
class ResponsesOnAnthropic:
    """A translated Responses request: the hub body, the record for the way back, what was left out."""

    body: dict  # the Anthropic /v1/messages body
    context: ResponsesContext
    dropped_tools: tuple[str, ...]  # hosted tools (by name or type) not sent upstream, for a log line


# ---------------------------------------------------------------------------------------------
# Request: top level
# ---------------------------------------------------------------------------------------------


def responses_to_anthropic_request(
    body: dict, target: AnthropicTarget, *, response_id: str, created_at: int
) -> ResponsesOnAnthropic:
    """Translate a Responses request body (POST /v1/responses) into an Anthropic Messages request.

    Returns the body to POST to /v1/messages, the `ResponsesContext` the answer's translation needs,
    and the hosted tools left out. Raises `InvalidRequest` (400, `param` and sometimes `code` set) for
    what cannot be served statelessly or by Claude, and `NotFound` (404) for an `item_reference`. The
    input is never modified.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model is required.", param="model")
    _reject_stateful_parameters(body)
    items = _input_items(body.get("input"))

    tools = ResponsesTools()
    tools.collect(body.get("tools"), "tools", repeats_allowed=False)
    for i, item in enumerate(items):
        kind = item.get("type")
        if kind in ("tool_search_output", "additional_tools"):
            tools.collect(item.get("tools"), f"input[{i}].tools")
    tools.flatten()

    system: list[dict] = text_blocks(body.get("instructions"), "instructions")
    turns = _turns(items, system, tools, store=body.get("store"))
    anthropic_tools, tool_choice = responses_tool_choice(body, tools)

    budget = _thinking_budget(body.get("reasoning"), turns, target.hub)
    max_tokens, budget = fit_max_tokens(body.get("max_output_tokens"), "max_output_tokens", target, budget)
    if budget is None:
        _remove_thinking(turns)
    trim_prefill(turns)

    if not system and target.system_prompt:
        system.append({"type": "text", "text": target.system_prompt})
    output_format = _text_format(body.get("text"))
    if output_format == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    tool_choice = lift_forced_tool(tool_choice, budget, target)

    out: dict = {"model": target.model, "max_tokens": max_tokens}
    if system:
        out["system"] = system
    out["messages"] = turns
    if anthropic_tools:
        out["tools"] = anthropic_tools
        if tool_choice is not None:
            out["tool_choice"] = tool_choice
    put_thinking_and_sampling(out, body, budget, target)
    if isinstance(output_format, dict):
        out["output_config"] = {"format": output_format}
    user_id = body.get("safety_identifier") or body.get("user")
    if isinstance(user_id, str) and user_id:
        out["metadata"] = {"user_id": user_id}
    if body.get("stream") is True:
        out["stream"] = True
    if target.auto_cache:
        add_cache_breakpoints(out.get("tools", []), system, turns)

    context = ResponsesContext(
        requested_model=model,
        response_id=response_id,
        created_at=created_at,
        custom_tools=frozenset(tools.custom),
        namespaced=dict(tools.namespaced),
        tool_search=frozenset(tools.tool_search),
        echo={name: copy.deepcopy(body[name]) for name in ECHOED_FIELDS if name in body},
    )
    return ResponsesOnAnthropic(out, context, tuple(tools.dropped))


def _reject_stateful_parameters(body: dict) -> None:
    previous = body.get("previous_response_id")
    if previous is not None:
        # OpenAI's own answer for an id it does not know; this gateway stores nothing.
        raise InvalidRequest(
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    for name in STATELESS_PARAMETERS:
        if body.get(name) is not None:
            raise InvalidRequest(
                f"{name} is not supported: this gateway stores no state; send the whole conversation in input.",
                param=name,
                code="unsupported_parameter",
            )
    if body.get("background") is True:
        raise InvalidRequest(
            "background is not supported: this gateway stores no responses to poll.",
            param="background",
            code="unsupported_parameter",
        )


def _input_items(value: object) -> list[dict]:
    """`input` as a list of item objects: a string is one user message."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest("input must be a string or an array of items.", param="input")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequest(f"input[{i}] must be an object.", param=f"input[{i}]")
    return value


# ---------------------------------------------------------------------------------------------
# Request: items to turns
# ---------------------------------------------------------------------------------------------


def _turns(items: list[dict], system: list[dict], tools: ResponsesTools, *, store: object) -> list[dict]:
    """Anthropic messages for the input items; system and developer text is appended to `system`."""
    turns: list[dict] = []
    shell_ids: dict[str, str] = {}  # local_shell_call item id -> tool_use id, for outputs that name `id`
    for i, item in enumerate(items):
        where = f"input[{i}]"
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system.extend(_message_blocks(item.get("content"), where, role="system"))
                continue
            if role not in ("user", "assistant"):
                raise InvalidRequest(
                    f"{where}.role must be user, assistant, system or developer; got {role!r}.", param=f"{where}.role"
                )
            append_turn(turns, role, _message_blocks(item.get("content"), where, role=role))
        elif kind == "reasoning":
            block = decode_thinking_envelope(item.get("encrypted_content"))
            if block is not None:
                append_turn(turns, "assistant", [block])
        elif kind in CALL_ITEMS:
            block = _call_block(item, kind, where, tools)
            if kind == "local_shell_call" and isinstance(item.get("id"), str):
                shell_ids[item["id"]] = block["id"]
            append_turn(turns, "assistant", [block])
        elif kind in OUTPUT_ITEMS:
            append_turn(turns, "user", [_output_block(item, kind, where, _open_calls(turns), shell_ids, tools)])
        elif kind == "item_reference":
            suffix = " Items are not persisted when `store` is set to false." if store is False else ""
            # OpenAI answers 404 with type invalid_request_error and no code.
            raise NotFound(
                f"Item with id '{item.get('id')}' not found.{suffix}", error_type="invalid_request_error", param="input"
            )
        elif kind == "additional_tools":
            continue  # its tools joined the tool list
        else:
            # Hosted-tool items (web_search_call, compaction, mcp_*...) mean nothing to Claude; an
            # unknown item's text (agent_message) is kept as user text.
            append_turn(turns, "user", _loose_text(item))
    _drop_thinking_only_turns(turns)
    pair_tool_results(turns)
    make_tool_ids_unique(turns)
    if not turns or turns[0]["role"] != "user":
        # Anthropic: "first message must use the user role".
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]})
    return turns


def _open_calls(turns: list[dict]) -> set[str]:
    """The tool_use ids of the latest assistant turn: the calls an output may answer."""
    for turn in reversed(turns):
        if turn["role"] == "assistant":
            return {block["id"] for block in turn["content"] if block["type"] == "tool_use"}
    return set()


def _drop_thinking_only_turns(turns: list[dict]) -> None:
    """Remove assistant turns holding nothing but thinking (a reasoning item with no answer after it)."""
    kept: list[dict] = []
    for turn in turns:
        thinking_only = turn["role"] == "assistant" and all(
            block["type"] in THINKING_BLOCK_TYPES for block in turn["content"]
        )
        if not thinking_only:
            append_turn(kept, turn["role"], turn["content"])
    turns[:] = kept


def _remove_thinking(turns: list[dict]) -> None:
    """Without thinking, signed thinking blocks from earlier answers are left out of the history."""
    for turn in turns:
        if turn["role"] == "assistant":
            turn["content"] = [block for block in turn["content"] if block["type"] not in THINKING_BLOCK_TYPES]


def _loose_text(item: dict) -> list[dict]:
    text = item.get("text")
    if isinstance(text, str):
        return text_blocks(text)
    content = item.get("content")
    if isinstance(content, str):
        return text_blocks(content)
    blocks: list[dict] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                blocks.extend(text_blocks(part["text"]))
    return blocks


def _message_blocks(content: object, where: str, *, role: str) -> list[dict]:
    """Anthropic blocks for a message's content: a string or an array of parts."""
    if isinstance(content, str) or content is None:
        return text_blocks(content, f"{where}.content")
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array of parts.", param=f"{where}.content")
    blocks: list[dict] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"{at} must be an object.", param=at)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            blocks.extend(text_blocks(part.get("text"), f"{at}.text"))
        elif kind == "refusal":
            blocks.extend(text_blocks(part.get("refusal"), f"{at}.refusal"))
        elif kind in ("input_image", "input_file") and role == "user":
            blocks.append(_media_block(part, at))
        elif kind in ("input_image", "input_file"):
            raise InvalidRequest(f"{at}: a {role} message can hold text only.", param=f"{at}.type")
        elif kind == "input_audio":
            raise InvalidRequest(f"{at}: audio input is not supported by Claude models.", param=at)
        elif isinstance(part.get("text"), str):
            blocks.extend(text_blocks(part["text"]))
        else:
            raise InvalidRequest(f"{at}.type {kind!r} is not a content part Claude can take here.", param=f"{at}.type")
    return blocks


def _media_block(part: dict, at: str) -> dict:
    """An image or document block for an input_image or input_file part."""
    if part.get("type") == "input_image":
        url = part.get("image_url")
        if not url and part.get("file_id") is not None:
            raise InvalidRequest(
                f"{at}.file_id refers to an OpenAI upload, which Claude cannot read; send image_url.",
                param=f"{at}.file_id",
            )
        if isinstance(url, dict):  # some clients nest it as in Chat Completions
            url = url.get("url")
        return image_block(url, f"{at}.image_url")
    file_url = part.get("file_url")
    if not part.get("file_data") and isinstance(file_url, str) and file_url.startswith(("http://", "https://")):
        block: dict = {"type": "document", "source": {"type": "url", "url": file_url}}
        if isinstance(part.get("filename"), str) and part["filename"]:
            block["title"] = part["filename"]
        return block
    return document_block(part, at)


def _tool_use_id(item: dict, where: str) -> str:
    call_id = item.get("call_id")
    if call_id is None and item.get("type") in ("local_shell_call", "local_shell_call_output"):
        call_id = item.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.call_id is required.", param=f"{where}.call_id")
    return portable_tool_id(call_id)


def _call_block(item: dict, kind: str, where: str, tools: ResponsesTools) -> dict:
    """The tool_use block of a call item."""
    block_id = _tool_use_id(item, where)
    if kind == "tool_search_call":
        arguments = item.get("arguments")
        if isinstance(arguments, str):
            arguments = _arguments(arguments)
        name, tool_input = TOOL_SEARCH_TOOL, arguments if isinstance(arguments, dict) else {}
    elif kind == "local_shell_call":
        name, tool_input = LOCAL_SHELL_TOOL, _shell_input(item.get("action"))
    else:
        raw_name = item.get("name")
        if not isinstance(raw_name, str) or not raw_name:
            raise InvalidRequest(f"{where}.name is required.", param=f"{where}.name")
        name = tools.sent_name(raw_name, item.get("namespace"))
        if kind == "custom_tool_call":
            raw = item.get("input")
            tool_input = {"input": raw if isinstance(raw, str) else ""}
        else:
            tool_input = _arguments(item.get("arguments"))
    return {"type": "tool_use", "id": block_id, "name": name, "input": tool_input}


def _arguments(arguments: object) -> dict:
    """A call's JSON-string arguments as an object; what does not parse to one becomes {} [LOSSY]."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = loads_strict(arguments)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _shell_input(action: object) -> dict:
    if not isinstance(action, dict):
        return {"command": []}
    tool_input: dict = {"command": action.get("command") if isinstance(action.get("command"), list) else []}
    if isinstance(action.get("working_directory"), str):
        tool_input["workdir"] = action["working_directory"]
    if isinstance(action.get("timeout_ms"), int):
        tool_input["timeout_ms"] = action["timeout_ms"]
    return tool_input


def _output_block(
    item: dict, kind: str, where: str, open_calls: set[str], shell_ids: dict[str, str], tools: ResponsesTools
) -> dict:
    """The tool_result block of an output item; it must answer a call of the latest assistant turn."""
    if kind == "local_shell_call_output" and item.get("call_id") is None and item.get("id") in shell_ids:
        tool_use_id = shell_ids[item["id"]]
    else:
        tool_use_id = _tool_use_id(item, where)
    if tool_use_id not in open_calls:
        # OpenAI: "No tool call found for function call output with call_id ...".
        raise InvalidRequest(
            f"No tool call found for {kind} with call_id '{item.get('call_id') or item.get('id')}'.",
            param=f"{where}.call_id",
        )
    block: dict = {"type": "tool_result", "tool_use_id": tool_use_id}
    if kind == "tool_search_output":
        content: object = _tool_search_result_text(item.get("tools"), tools)
    else:
        content = item.get("output")
    if isinstance(content, str) or content is None:
        if content and content.strip():
            block["content"] = content
    elif isinstance(content, list):
        blocks = _output_parts(content, f"{where}.output")
        if blocks:
            block["content"] = blocks
    else:
        raise InvalidRequest(f"{where}.output must be a string or an array of parts.", param=f"{where}.output")
    return block


def _output_parts(parts: list, where: str) -> list[dict]:
    blocks: list[dict] = []
    for j, part in enumerate(parts):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            blocks.extend(text_blocks(part.get("text"), f"{at}.text"))
        elif kind in ("input_image", "input_file"):
            blocks.append(_media_block(part, at))
        # Anything else (Codex's {encrypted_content} parts) has no meaning for Claude: dropped.
    return blocks


def _tool_search_result_text(found: object, tools: ResponsesTools) -> str:
    """What a client tool search returned, in words (names as sent): the tools join the tool list."""
    names: list[str] = []
    for tool in found if isinstance(found, list) else []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            names.extend(
                tools.sent_name(inner["name"], tool.get("name"))
                for inner in tool["tools"]
                if isinstance(inner, dict) and isinstance(inner.get("name"), str)
            )
        elif isinstance(tool.get("name"), str):
            names.append(tools.sent_name(tool["name"], None))
    if not names:
        return "No tools found."
    return "Tools loaded and now available: " + ", ".join(names) + "."


# ---------------------------------------------------------------------------------------------
# Request: reasoning and text format
# ---------------------------------------------------------------------------------------------


def _thinking_budget(reasoning: object, turns: list[dict], hub: bool) -> int | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise InvalidRequest("reasoning must be an object.", param="reasoning")
    effort = reasoning.get("effort")
    if effort is None or (isinstance(effort, str) and effort in NO_THINKING_EFFORTS):
        return None
    if not isinstance(effort, str) or effort not in THINKING_BUDGET_TOKENS_BY_EFFORT:
        raise InvalidRequest(
            "reasoning.effort must be none, minimal, low, medium, high, xhigh or max.", param="reasoning.effort"
        )
    if hub:
        return THINKING_BUDGET_TOKENS_BY_EFFORT[effort]  # Claude's constraints below do not apply
    last = turns[-1]
    if last["role"] == "assistant":
        return None  # Anthropic refuses a prefill together with thinking
    if any(block["type"] == "tool_result" for block in last["content"]):
        # Anthropic: in a tool loop the final assistant turn must start with its signed thinking
        # block, which only our envelope brings back. Without one, answer without thinking.
        previous = turns[-2]["content"] if len(turns) > 1 else []
        if not previous or previous[0]["type"] not in THINKING_BLOCK_TYPES:
            return None
    return THINKING_BUDGET_TOKENS_BY_EFFORT[effort]


def _text_format(text: object) -> dict | str | None:
    """`output_config.format` for json_schema, "json_object", or None for plain text."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise InvalidRequest("text must be an object.", param="text")
    fmt = text.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return "json_object"
    if kind == "json_schema":
        schema = fmt.get("schema")  # flat in Responses, unlike Chat's response_format.json_schema
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise InvalidRequest("text.format.schema must describe a JSON object.", param="text.format.schema")
        return {"type": "json_schema", "schema": schema if "type" in schema else {"type": "object", **schema}}
    raise InvalidRequest("text.format.type must be text, json_object or json_schema.", param="text.format.type")
