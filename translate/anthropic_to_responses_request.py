"""Anthropic Messages requests to OpenAI Responses requests (the `responses` dialect, as an upstream).

The Anthropic front talking to an upstream that is reached through `POST /v1/responses` (the codex
family and the `-pro` models on api.openai.com answer nowhere else). Pure: dicts in, dicts out. The
sibling for Chat Completions upstreams is translate/anthropic_to_chat_request.py; this module reuses
its readers (system text, content parts, tools, tool choice, effort) so both upstreams see a
conversation the same way. RESPONSES.md 8 "From Anthropic" is the spec.

Policies:
- Built from an allowlist, like the Chat translator. Always `store: false`: nothing is kept at
  OpenAI, so every turn carries its whole history and no item carries an `id` (under `store: false`
  OpenAI looks ids up among stored items and answers 404). Reasoning targets also get
  `include: ["reasoning.encrypted_content"]`, which brings back the reasoning we carry to the next
  turn. Other targets never do: OpenAI refuses that include for models without reasoning (gpt-4o,
  gpt-4.1: 400 "Encrypted content is not supported with this model", pydantic-ai #2865).
- `system` becomes `instructions`, its text blocks joined with blank lines (cache_control lost).
  `role: "system"` turns inside `messages` become developer messages at their place, held back
  until after the function call outputs when they arrived while outputs were still due.
- `max_tokens` becomes `max_output_tokens`, capped by the target, and raised to 16 when below:
  OpenAI refuses less ("integer below minimum value. Expected a value >= 16", vectorize-io/hindsight
  #58), and Anthropic clients send 0 or 1 to pre-warm a cache or probe a quota.
- `temperature` and `top_p` go only to targets without reasoning (reasoning models accept only the
  defaults). `top_k` and `stop_sequences` are dropped: the Responses API has neither [LOSSY].
- Thinking settings become `reasoning: {effort, summary: "auto"}` for reasoning targets, the effort
  read as the Chat translator reads it (budget thresholds, or `output_config.effort`); disabled
  thinking, or none and no effort, sends no `reasoning` (the model's default).
- `output_config.format` json_schema becomes `text.format`, flat: {type, name, schema, strict}.
- Tools are flat functions with `strict: false` unless the Anthropic tool says `strict: true`: an
  omitted `strict` makes OpenAI rewrite the schema to strict mode, every property required.
  Server tools (any `type` but "custom") are left out and named in `dropped_tools`; a tool_choice
  forcing one becomes "auto". Names OpenAI would refuse are shortened (translate/tools.py); deferred
  tools go only once loaded (translate/tool_search.py).
- Each user turn's `tool_result` blocks become `function_call_output` items first, in their order,
  then the rest of the turn as one user message. An output is a string, or a list of input parts
  when the result holds images or files. An error result is prefixed "Error:", an empty one is
  "(no output)", as for Chat.
- Assistant blocks become items in their order: text -> an assistant message (consecutive texts
  share one), tool_use -> `function_call` (arguments as compact JSON). A thinking block whose
  signature is our reasoning envelope (translate/responses_context.py) goes back as the reasoning
  item it carried, unchanged, at its place, so before the calls it preceded; for targets without
  reasoning it is dropped. Other thinking (Claude's own signatures, foreign ones) and
  redacted_thinking are dropped: OpenAI cannot verify them [LOSSY]. A reasoning item with nothing
  after it in its turn is dropped too (a turn cut short), and a turn left empty sends nothing.
- Tool ids become `call_id`s through `plain_tool_id`, the Chat translator's rule (at most 40
  characters, any other id replaced by a stable hash, Gemini signatures removed), applied to calls
  and outputs alike, so they still match; OpenAI allows 64.
- `metadata.user_id` becomes `safety_identifier` when it fits OpenAI's 64 characters; longer ones
  (Claude Code's) are dropped.
- User content: text -> input_text; images -> input_image (a data URL for base64, else the URL,
  detail "auto"); base64 documents -> input_file (data URL, title or "document.pdf" as the
  filename); URL documents -> input_file with file_url; text documents and search results ->
  input_text; file ids and server-tool results are dropped [LOSSY].
"""

from __future__ import annotations

from dataclasses import dataclass

from translate.anthropic_to_chat_request import (
    EMPTY_TOOL_RESULT_TEXT,
    checked_hub_request,
    chat_response_format,
    chat_tool_choice,
    chat_tools,
    chat_user_parts,
    content_blocks,
    is_number,
    plain_tool_id,
    reasoning_effort,
    system_text,
    tool_names_of,
)
from translate.errors import InvalidRequest
from translate.responses_context import decode_reasoning_signature
from translate.reuse import RememberedList
from translate.sse import dumps
from translate.tools import chat_function_name, function_name_map

# OpenAI refuses a smaller max_output_tokens with a 400.
RESPONSES_MIN_OUTPUT_TOKENS = 16
# OpenAI's limit on safety_identifier (and the older `user`).
SAFETY_IDENTIFIER_MAX_CHARS = 64
# What a stateless caller must ask for to get reasoning back in a form it can resend.
ENCRYPTED_REASONING_INCLUDE = "reasoning.encrypted_content"
IMAGE_DETAIL = "auto"
TOOL_ERROR_PREFIX = "Error:"


@dataclass(frozen=True)
class ResponsesTarget:
    """What the translated request is for: the upstream model and what it accepts."""

    model: str  # upstream model name to put in the body
    reasoning: bool  # reasoning family: no temperature/top_p; reasoning param and items allowed
    max_tokens_limit: int | None = None  # cap on max_output_tokens; None = no cap


@dataclass(frozen=True)
class ResponsesRequest:
    """A translated request and what the response translation needs to undo it."""

    body: dict  # the Responses request body
    tool_names: dict[str, str]  # {name sent upstream: client's original name} for shortened names
    dropped_tools: tuple[str, ...]  # server tools (web_search_* etc.) left out, for a log line


# ---------------------------------------------------------------------------------------------
# Request: Anthropic -> Responses
# ---------------------------------------------------------------------------------------------


def anthropic_to_responses_request(body: dict, target: ResponsesTarget) -> ResponsesRequest:
    """Translate an Anthropic Messages request body into an OpenAI Responses request body.

    Returns the body plus the reverse tool-name map (pass it to the response translation) and the
    dropped server tools. Raises InvalidRequest (400, `param` set) for a request that cannot be
    translated; unknown content is degraded instead, as the Chat translator does.
    """
    body, messages, max_tokens = checked_hub_request(body)

    tools, dropped_tools = _responses_tools(body.get("tools"))
    history_names: list[str] = []

    out: dict = {"model": target.model}
    instructions = system_text(body.get("system"))
    if instructions:
        out["instructions"] = instructions
    out["input"] = _input_items(messages, target, history_names)
    out_tokens = max_tokens
    if target.max_tokens_limit is not None:
        out_tokens = min(out_tokens, target.max_tokens_limit)
    out["max_output_tokens"] = max(out_tokens, RESPONSES_MIN_OUTPUT_TOKENS)
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if not is_number(value):
            raise InvalidRequest(f"{name}: a number is required.", param=name)
        if not target.reasoning:  # reasoning models accept only the default sampling
            out[name] = value
    if body.get("stream") is True:
        out["stream"] = True  # usage always arrives in response.completed: no stream_options needed
    if tools:
        out["tools"] = tools
        choice, one_call_at_most = chat_tool_choice(body.get("tool_choice"), {tool["name"] for tool in tools})
        if isinstance(choice, dict):  # Chat nests the name under "function"; Responses does not
            choice = {"type": "function", "name": choice["function"]["name"]}
        if choice is not None:
            out["tool_choice"] = choice
        if one_call_at_most:
            out["parallel_tool_calls"] = False
    if target.reasoning:
        effort = reasoning_effort(body.get("thinking"), body.get("output_config"))
        if effort is not None:
            out["reasoning"] = {"effort": effort, "summary": "auto"}
    response_format = chat_response_format(body.get("output_config"))
    if response_format is not None:
        out["text"] = {"format": {"type": "json_schema", **response_format["json_schema"]}}
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str) and 0 < len(user_id) <= SAFETY_IDENTIFIER_MAX_CHARS:
        out["safety_identifier"] = user_id
    out["store"] = False
    if target.reasoning:
        out["include"] = [ENCRYPTED_REASONING_INCLUDE]

    tool_names = function_name_map(tool_names_of(body.get("tools")) + history_names)
    return ResponsesRequest(out, tool_names, tuple(dropped_tools))


def _responses_tools(tools: object) -> tuple[list[dict], list[str]]:
    """(flat function tools to send, names of the server tools left out).

    The Chat translator checks the tools and drops the server ones; this flattens its functions.
    A list remembered between requests (translate/reuse.py) is flattened once.
    """
    derived = getattr(tools, "derived", None)
    translated = derived.get("responses_tools") if derived is not None else None
    if translated is not None:
        return translated  # type: ignore[return-value]
    functions, dropped = chat_tools(tools)
    flat = [_flat_function(tool["function"]) for tool in functions]
    if derived is None:
        return flat, dropped
    translated = derived["responses_tools"] = (RememberedList(flat), dropped)
    return translated


def _flat_function(function: dict) -> dict:
    tool: dict = {"type": "function", "name": function["name"]}
    if "description" in function:
        tool["description"] = function["description"]
    tool["parameters"] = function["parameters"]
    tool["strict"] = function.get("strict") is True
    return tool


# ---------------------------------------------------------------------------------------------
# Request: messages -> input items
# ---------------------------------------------------------------------------------------------


def _input_items(messages: list, target: ResponsesTarget, history_names: list[str]) -> list[dict]:
    items: list[dict] = []
    held_notes: list[dict] = []  # system turns waiting for the outputs of the calls before them
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where}: a message object is required.", param=where)
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            at = f"{where}.role"
            raise InvalidRequest(f'{at}: must be "user", "assistant" or "system".', param=at)
        blocks = content_blocks(message.get("content"), where)
        if role == "assistant":
            items += _assistant_items(blocks, where, target, history_names)
        elif role == "system":
            note = _developer_note(blocks, where)
            if note is None:
                continue
            awaiting_outputs = bool(items) and items[-1]["type"] == "function_call"
            (held_notes if awaiting_outputs else items).append(note)
        else:
            outputs, parts = _user_turn(blocks, where)
            items += outputs
            items += held_notes
            held_notes = []
            if parts:
                items.append(_message("user", parts))
    return items + held_notes


def _message(role: str, content: list[dict]) -> dict:
    return {"type": "message", "role": role, "content": content}


def _developer_note(blocks: list[dict], where: str) -> dict | None:
    """A `role: "system"` turn as a developer message of its text, or None when it has none."""
    texts: list[dict] = []
    for j, block in enumerate(blocks):
        texts += [part for part in _input_parts(block, f"{where}.content[{j}]") if part["type"] == "input_text"]
    return _message("developer", texts) if texts else None


def _user_turn(blocks: list[dict], where: str) -> tuple[list[dict], list[dict]]:
    """(function_call_output items, the turn's own input parts)."""
    outputs: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        if block["type"] == "tool_result":
            outputs.append(_function_call_output(block, at))
        else:
            parts += _input_parts(block, at)
    return outputs, parts


def _function_call_output(block: dict, at: str) -> dict:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise InvalidRequest(f"{at}.tool_use_id: a non-empty string is required.", param=f"{at}.tool_use_id")
    content = block.get("content")
    if content is None:
        content = []
    elif isinstance(content, str):
        content = [{"type": "text", "text": content}]
    parts: list[dict] = []
    for k, inner in enumerate(content_blocks(content, at)):
        parts += _input_parts(inner, f"{at}.content[{k}]")
    is_error = block.get("is_error") is True
    output: str | list[dict]
    if all(part["type"] == "input_text" for part in parts):
        output = "\n\n".join(part["text"] for part in parts) or EMPTY_TOOL_RESULT_TEXT
        if is_error:
            output = f"{TOOL_ERROR_PREFIX} {output}"
    else:  # images or files: the output is a list of parts, in the result's order
        output = parts
        if is_error:
            output = [{"type": "input_text", "text": TOOL_ERROR_PREFIX}, *parts]
    return {"type": "function_call_output", "call_id": plain_tool_id(tool_use_id), "output": output}


def _input_parts(block: dict, at: str) -> list[dict]:
    """Responses input parts for one Anthropic block in a user turn or a tool result."""
    source = block.get("source")
    if block["type"] == "document" and isinstance(source, dict) and source.get("type") == "url":
        url = source.get("url")
        return [{"type": "input_file", "file_url": url}] if isinstance(url, str) and url else []
    return [_input_part(part) for part in chat_user_parts(block, at)]


def _input_part(part: dict) -> dict:
    """One Chat content part (what the Chat translator reads a block into) as a Responses input part."""
    kind = part["type"]
    if kind == "text":
        return {"type": "input_text", "text": part["text"]}
    if kind == "image_url":
        return {"type": "input_image", "image_url": part["image_url"]["url"], "detail": IMAGE_DETAIL}
    file = part["file"]  # the only other kind chat_user_parts makes
    return {"type": "input_file", "filename": file["filename"], "file_data": file["file_data"]}


def _assistant_items(blocks: list[dict], where: str, target: ResponsesTarget, history_names: list[str]) -> list[dict]:
    """The assistant turn as input items in its order; [] when nothing of it survives."""
    items: list[dict] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block["type"]
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"{at}.text: a string is required.", param=f"{at}.text")
            if not text:
                continue
            part = {"type": "output_text", "text": text}
            if items and items[-1]["type"] == "message":
                items[-1]["content"].append(part)
            else:
                items.append(_message("assistant", [part]))
        elif kind == "tool_use":
            items.append(_function_call(block, at))
            history_names.append(block["name"])
        elif kind == "thinking" and target.reasoning:
            reasoning = decode_reasoning_signature(block.get("signature"))
            if reasoning is not None:  # our envelope; Claude's own and foreign signatures are dropped
                items.append(reasoning)
        # redacted_thinking, server_tool_use, web_search_tool_result...: dropped [LOSSY]
    while items and items[-1]["type"] == "reasoning":
        items.pop()  # reasoning that led to nothing: the turn was cut short
    return items


def _function_call(block: dict, at: str) -> dict:
    tool_id = block.get("id")
    name = block.get("name")
    if not isinstance(tool_id, str) or not tool_id:
        raise InvalidRequest(f"{at}.id: a non-empty string is required.", param=f"{at}.id")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{at}.name: a non-empty string is required.", param=f"{at}.name")
    return {
        "type": "function_call",
        "call_id": plain_tool_id(tool_id),
        "name": chat_function_name(name),
        "arguments": dumps({} if block.get("input") is None else block["input"]),  # compact, UTF-8
    }
