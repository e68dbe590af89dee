"""OpenAI front, Anthropic upstream: Chat Completions requests in, Messages responses and streams out.

Apps written against the OpenAI SDK talk to Claude through this module. It is pure: ids, timestamps
and the requested model name are passed in, so the same input always gives the same bytes.

Request policies (PROTOCOLS.md 3.2, 1.9):
- `system` and `developer` messages, wherever they stand, become the top-level `system` blocks in
  order [LOSSY: a mid-conversation instruction moves to the top]. `target.system_prompt` is used only
  when the request brings no system text of its own.
- Consecutive turns of one role are merged. A run of `tool` messages becomes one user turn of
  `tool_result` blocks in the order of the assistant's `tool_calls`, with any user content that
  follows merged in after them. A call with no result gets an `is_error` result saying so, because
  Anthropic rejects a `tool_use` without its `tool_result`; a result that answers no call of the
  preceding assistant turn is a 400. A repeated result for the same call keeps the first.
- Text blocks are never empty or whitespace-only. A conversation that starts with the assistant (or
  holds only system text) gets a leading user turn `PLACEHOLDER_USER_TEXT`; a final assistant message
  (a prefill) loses its trailing whitespace.
- Tool call ids pass through `portable_tool_id`; tool names Anthropic rejects are shortened with
  `openai_function_name` and restored in responses through `AnthropicRequest.tool_names`.
- Reasoning history (`reasoning_content`, `reasoning`) is dropped: it carries no signature, and an
  unsigned thinking block is rejected.
- Refused with a 400 naming the parameter: `n` > 1, `logprobs`/`top_logprobs`, audio, `file_id`
  parts, tool arguments that are not a JSON object, image types other than jpeg/png/gif/webp, unknown
  roles, the legacy `functions`/`function_call` API and custom (non-function) tools.
- Dropped silently: `seed`, `logit_bias`, penalties, `store`, `metadata`, `prediction`,
  `service_tier`, `verbosity`, `web_search_options`, `prompt_cache_key`, message `name`s and any
  field this module does not know.
- `max_completion_tokens` ?? `max_tokens` ?? `target.default_max_tokens`, capped by
  `target.max_tokens_limit`. `temperature` is clamped into [0, 1]; whitespace-only stop strings go.
- `response_format` json_object: a system instruction asks for one bare JSON object, and a Markdown
  code fence around the answer is removed from the response. json_schema: a tool named
  `JSON_RESPONSE_TOOL` takes the schema as its `input_schema` and is forced (`tool_choice` tool, or
  `any` when the client's own tools may still be called); the response turns that call back into
  `message.content` JSON with finish_reason "stop". `output_config.format` is not used because older
  models reject it.
- `reasoning_effort` low/medium/high (xhigh/max count as high) enables thinking with the budgets in
  `THINKING_BUDGET_TOKENS_BY_EFFORT`; none/minimal leave it off. With thinking, `max_tokens` is raised
  to budget + `MIN_ANSWER_TOKENS`, temperature and top_p are removed, and a forced tool_choice becomes
  auto. A request that continues a tool loop (its last user turn holds tool results) is sent without
  thinking [LOSSY]: Anthropic requires the previous assistant turn to start with its signed thinking
  block, which an OpenAI client never sends back. A request ending in a prefill goes without
  thinking too, since Anthropic refuses the two together.
- With `target.auto_cache`, `cache_control` breakpoints go on the last tool, the last system block and
  the last block of the two latest user turns: at most `MAX_CACHE_BREAKPOINTS`, never on empty text.

Response policies (PROTOCOLS.md 3.3, 3.4, 4.2):
- Text blocks join into `content`; thinking into `reasoning_content` (never into `content`); tool_use
  into `tool_calls` (compact JSON arguments). redacted_thinking, signatures, citations, server tools and
  their results are dropped [LOSSY].
- A response holding a tool call finishes with "tool_calls" unless it was cut short (length) or
  refused (content_filter). A refusal also fills `message.refusal`.
- Usage: prompt_tokens counts input, cache reads and cache writes; cached_tokens is the cache read.
- Tool call ids are kept (`portable_tool_id` leaves Anthropic's ids alone); shortened names are
  restored. A call whose input arrives without deltas (or empty) streams as one "{}"-style arguments
  fragment at its block stop, because clients json.loads() the arguments and "" is not JSON.
- Streams: the role comes first, tool calls are numbered by their order among tool calls, the usage
  chunk (only with include_usage) follows the finish chunk, then "[DONE]". An upstream `error`
  event, or `fail()`, yields one `{"error": ...}` object and ends the stream without "[DONE]": the
  OpenAI SDK raises on it, and "[DONE]" would tell other clients the answer was complete. An upstream
  EOF after `message_delta` carried a stop reason still finishes normally (only `message_stop` was
  lost); an EOF before that is an error.
- In json_schema mode streamed text is held back until the end of the message, so text written around
  the forced tool call never reaches the client; json_object mode holds back only what could still
  turn out to be a code fence.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from enum import Enum

from .errors import InvalidRequest, ProxyError, UpstreamUnavailable, openai_error_body
from .sse import SSEEvent, dumps
from .tools import openai_function_name, portable_tool_id

# Thinking budget for each reasoning_effort; efforts missing here and not in NO_THINKING_EFFORTS
# are rejected.
THINKING_BUDGET_TOKENS_BY_EFFORT = {
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}
NO_THINKING_EFFORTS = frozenset({"none", "minimal"})
# Anthropic: budget_tokens >= 1024 and < max_tokens. What is left over is for the answer.
MIN_THINKING_BUDGET_TOKENS = 1024
MIN_ANSWER_TOKENS = 1024

MAX_CACHE_BREAKPOINTS = 4  # Anthropic's limit per request
CACHED_USER_TURNS = 2  # the newest reads the cache the previous request wrote

PLACEHOLDER_USER_TEXT = "(continue)"
MISSING_TOOL_RESULT_TEXT = "No result was provided for this tool call."
REFUSAL_FALLBACK_TEXT = "The model declined to respond."

JSON_RESPONSE_TOOL = "json_response"
JSON_OBJECT_INSTRUCTION = (
    "Respond with a single JSON object and nothing else: no prose before or after it and no "
    "Markdown code fences."
)
JSON_TOOL_INSTRUCTION = (
    f"Give your final answer by calling the `{JSON_RESPONSE_TOOL}` tool; do not write it as text."
)

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MEDIA_TYPE_ALIASES = {"image/jpg": "image/jpeg"}
ANTHROPIC_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
DATA_URI = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", re.DOTALL)

FINISH_REASON_BY_STOP_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}


# ---------------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnthropicTarget:
    """Where a translated request goes and the operator's settings for it."""

    model: str  # upstream Claude model name
    default_max_tokens: int = 8192  # DEFAULT_MAX_TOKENS: when the client sets no limit
    max_tokens_limit: int | None = None  # the upstream model's output cap, if known
    system_prompt: str | None = None  # SYSTEM_PROMPT: only when the request has no system text
    auto_cache: bool = True  # ANTHROPIC_AUTO_CACHE: add cache_control breakpoints


@dataclass(frozen=True)
class AnthropicRequest:
    """A translated request plus what the response translators need to know about it."""

    body: dict  # the Anthropic /v1/messages body
    include_usage: bool  # the client's stream_options.include_usage
    json_mode: str | None  # None, "json_object" or "json_schema": how response_format was met
    tool_names: dict[str, str]  # {name sent upstream: client's name} for names that had to change


# ---------------------------------------------------------------------------------------------
# Request: top level
# ---------------------------------------------------------------------------------------------


def openai_to_anthropic_request(body: dict, target: AnthropicTarget) -> AnthropicRequest:
    """Translate a Chat Completions request body into an Anthropic Messages request.

    Returns the body to POST to /v1/messages with what the caller must hand to
    `anthropic_to_openai_response` or `AnthropicToOpenAIStream`. Raises `InvalidRequest` (400) with
    `param` set to the offending field when the request cannot be expressed for Claude. The input is
    never modified.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model is required.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages is required and must be a non-empty array.", param="messages")
    _reject_unsupported_parameters(body)

    tool_names: dict[str, str] = {}
    system, turns = _openai_to_anthropic_messages(messages, tool_names)
    tools = _openai_to_anthropic_tools(body.get("tools"), tool_names)
    tools, tool_choice = _openai_to_anthropic_tool_choice(body, tools, tool_names)
    json_mode, json_schema = _response_format(body.get("response_format"))
    budget = _thinking_budget(body.get("reasoning_effort"), turns)
    max_tokens, budget = _max_tokens(body, target, budget)

    if not system and target.system_prompt:
        system.append({"type": "text", "text": target.system_prompt})
    if json_mode == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    elif json_mode == "json_schema":
        tools, tool_choice = _force_json_tool(tools, tool_choice, json_schema, body["response_format"])
    if budget is not None and tool_choice is not None and tool_choice["type"] in ("any", "tool"):
        # Thinking allows only auto or none. Without the force, ask in words for the JSON tool.
        if json_mode == "json_schema":
            system.append({"type": "text", "text": JSON_TOOL_INSTRUCTION})
        tool_choice = {**tool_choice, "type": "auto"}
        tool_choice.pop("name", None)

    out: dict = {"model": target.model, "max_tokens": max_tokens}
    if system:
        out["system"] = system
    out["messages"] = turns
    if tools:
        out["tools"] = tools
        if tool_choice is not None:
            out["tool_choice"] = tool_choice
    temperature = _number(body, "temperature")
    top_p = _number(body, "top_p")
    if budget is not None:
        # Anthropic requires temperature 1 and top_p >= 0.95 with thinking: leave both out.
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        if temperature is not None:
            out["temperature"] = min(max(temperature, 0.0), 1.0)
        if top_p is not None:
            out["top_p"] = top_p
    stop_sequences = _stop_sequences(body.get("stop"))
    if stop_sequences:
        out["stop_sequences"] = stop_sequences
    user_id = body.get("safety_identifier") or body.get("user")
    if isinstance(user_id, str) and user_id:
        out["metadata"] = {"user_id": user_id}
    if body.get("stream") is True:
        out["stream"] = True
    if target.auto_cache:
        _add_cache_breakpoints(out.get("tools", []), system, turns)

    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return AnthropicRequest(out, include_usage, json_mode, tool_names)


def _reject_unsupported_parameters(body: dict) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("n must be 1: Claude returns one choice per request.", param="n")
    if body.get("logprobs"):
        raise InvalidRequest("logprobs is not supported by Claude models.", param="logprobs")
    if body.get("top_logprobs"):
        raise InvalidRequest("top_logprobs is not supported by Claude models.", param="top_logprobs")
    if body.get("audio") is not None:
        raise InvalidRequest("audio is not supported: Claude models do not produce audio.", param="audio")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise InvalidRequest("modalities cannot include audio: Claude models do not produce audio.", param="modalities")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            raise InvalidRequest(
                f"{legacy} belongs to the deprecated functions API; use tools and tool_choice.",
                param=legacy,
            )


def _number(body: dict, name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"{name} must be a number.", param=name)
    return value


def _stop_sequences(stop: object) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        raise InvalidRequest("stop must be a string or an array of strings.", param="stop")
    # Anthropic: "each stop sequence must contain non-whitespace"; OpenAI clients often send "\n".
    return [item for item in stop if item.strip()]


def _max_tokens(body: dict, target: AnthropicTarget, budget: int | None) -> tuple[int, int | None]:
    """The max_tokens to send, and the thinking budget that fits under it (None: no thinking)."""
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    requested = body.get(name)
    if requested is None:
        max_tokens = target.default_max_tokens
    elif isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise InvalidRequest(f"{name} must be a positive integer.", param=name)
    else:
        max_tokens = requested
    if budget is not None:
        # OpenAI counts reasoning inside max_completion_tokens; Anthropic wants budget < max_tokens.
        max_tokens = max(max_tokens, budget + MIN_ANSWER_TOKENS)
    if target.max_tokens_limit is not None and max_tokens > target.max_tokens_limit:
        max_tokens = target.max_tokens_limit
    if budget is not None:
        budget = min(budget, max_tokens - MIN_ANSWER_TOKENS)
        if budget < MIN_THINKING_BUDGET_TOKENS:
            budget = None
    return max_tokens, budget


# ---------------------------------------------------------------------------------------------
# Request: messages
# ---------------------------------------------------------------------------------------------


def _openai_to_anthropic_messages(messages: list, tool_names: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Return (system blocks, Anthropic messages) for the OpenAI `messages` array."""
    system: list[dict] = []
    turns: list[dict] = []
    # Tool calls of the latest assistant turn, which the following tool messages may answer.
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object.", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_system_blocks(message.get("content"), where))
            continue
        if role == "user":
            _append_turn(turns, "user", _content_blocks(message.get("content"), where, for_tool=False))
        elif role == "assistant":
            blocks = _assistant_blocks(message, where, tool_names)
            calls = {block["id"] for block in blocks if block["type"] == "tool_use"}
            if turns and turns[-1]["role"] == "assistant":
                open_calls |= calls
            elif blocks:
                open_calls = calls
            _append_turn(turns, "assistant", blocks)
        elif role == "tool":
            _append_turn(turns, "user", [_tool_result_block(message, where, open_calls)])
        elif role == "function":
            raise InvalidRequest(
                f"{where}.role 'function' belongs to the deprecated functions API; send tool messages instead.",
                param=f"{where}.role",
            )
        else:
            raise InvalidRequest(
                f"{where}.role must be system, developer, user, assistant or tool; got {role!r}.",
                param=f"{where}.role",
            )
    _pair_tool_results(turns)
    if not turns or turns[0]["role"] != "user":
        # Anthropic: "first message must use the user role".
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]})
    _trim_prefill(turns)
    return system, turns


def _append_turn(turns: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _pair_tool_results(turns: list[dict]) -> None:
    """Give every tool_use its tool_result, first in the very next user turn, in call order."""
    position = 0
    while position < len(turns):
        turn = turns[position]
        call_ids = [block["id"] for block in turn["content"] if block["type"] == "tool_use"]
        position += 1
        if turn["role"] != "assistant" or not call_ids:
            continue
        if position == len(turns):
            turns.append({"role": "user", "content": []})
        reply = turns[position]["content"]
        results: dict[str, dict] = {}
        for block in reply:
            if block["type"] == "tool_result":
                results.setdefault(block["tool_use_id"], block)
        ordered = [
            results.get(call_id)
            or {
                "type": "tool_result",
                "tool_use_id": call_id,
                "content": MISSING_TOOL_RESULT_TEXT,
                "is_error": True,
            }
            for call_id in call_ids
        ]
        turns[position]["content"] = ordered + [block for block in reply if block["type"] != "tool_result"]


def _trim_prefill(turns: list[dict]) -> None:
    # Anthropic: "final assistant content cannot end with trailing whitespace". Text blocks are
    # never blank (see _text_blocks), so the stripped text is never empty.
    last = turns[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        last["content"][-1] = {**last["content"][-1], "text": last["content"][-1]["text"].rstrip()}


def _system_blocks(content: object, where: str) -> list[dict]:
    if isinstance(content, str) or content is None:
        return _text_blocks(content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array of text parts.", param=f"{where}.content")
    blocks: list[dict] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            blocks.extend(_text_blocks(part))
        elif isinstance(part, dict) and part.get("type") == "text":
            blocks.extend(_text_blocks(part.get("text"), f"{where}.content[{j}].text"))
        else:
            raise InvalidRequest(
                f"{where}.content[{j}] must be a text part in a system message.", param=f"{where}.content[{j}]"
            )
    return blocks


def _assistant_blocks(message: dict, where: str, tool_names: dict[str, str]) -> list[dict]:
    if message.get("function_call") is not None:
        raise InvalidRequest(
            f"{where}.function_call belongs to the deprecated functions API; use tool_calls.",
            param=f"{where}.function_call",
        )
    blocks: list[dict] = []
    content = message.get("content")
    if isinstance(content, str) or content is None:
        blocks.extend(_text_blocks(content))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            at = f"{where}.content[{j}]"
            if isinstance(part, str):
                blocks.extend(_text_blocks(part))
            elif isinstance(part, dict) and part.get("type") in ("text", "refusal"):
                key = part["type"]
                blocks.extend(_text_blocks(part.get(key), f"{at}.{key}"))
            else:
                raise InvalidRequest(f"{at} must be a text or refusal part in an assistant message.", param=at)
    else:
        raise InvalidRequest(f"{where}.content must be a string, an array or null.", param=f"{where}.content")
    blocks.extend(_text_blocks(message.get("refusal"), f"{where}.refusal"))

    tool_calls = message.get("tool_calls")
    if tool_calls is None:
        return blocks
    if not isinstance(tool_calls, list):
        raise InvalidRequest(f"{where}.tool_calls must be an array.", param=f"{where}.tool_calls")
    for k, call in enumerate(tool_calls):
        at = f"{where}.tool_calls[{k}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise InvalidRequest(f"{at} must be a function tool call.", param=at)
        function = call.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{at}.function.name is required.", param=f"{at}.function.name")
        blocks.append(
            {
                "type": "tool_use",
                "id": portable_tool_id(call.get("id"), seed=at),
                "name": _anthropic_tool_name(name, tool_names),
                "input": _tool_arguments(function.get("arguments"), f"{at}.function.arguments"),
            }
        )
    return blocks


def _tool_arguments(arguments: object, param: str) -> dict:
    """Parse a tool call's JSON-string arguments: "" means {}, anything but an object is a 400."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str):
        raise InvalidRequest(f"{param} must be a string of JSON.", param=param)
    try:
        parsed = json.loads(arguments)
    except ValueError as error:
        raise InvalidRequest(f"{param} is not valid JSON ({error}).", param=param) from None
    if not isinstance(parsed, dict):
        raise InvalidRequest(f"{param} must be a JSON object.", param=param)
    return parsed


def _tool_result_block(message: dict, where: str, open_calls: set[str]) -> dict:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.tool_call_id is required.", param=f"{where}.tool_call_id")
    tool_use_id = portable_tool_id(call_id)
    if tool_use_id not in open_calls:
        raise InvalidRequest(
            f"{where}.tool_call_id {call_id!r} answers no tool call of the preceding assistant message.",
            param=f"{where}.tool_call_id",
        )
    block: dict = {"type": "tool_result", "tool_use_id": tool_use_id}
    content = message.get("content")
    if isinstance(content, str) or content is None:
        if content and content.strip():
            block["content"] = content
    else:
        # OpenAI documents text parts only; images are accepted too since tool_result can hold them.
        blocks = _content_blocks(content, where, for_tool=True)
        if blocks:
            block["content"] = blocks
    return block


# ---------------------------------------------------------------------------------------------
# Request: content parts
# ---------------------------------------------------------------------------------------------


def _text_blocks(text: object, param: str | None = None) -> list[dict]:
    """One text block, or none for empty or whitespace-only text (Anthropic rejects those)."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise InvalidRequest(f"{param or 'text'} must be a string.", param=param)
    return [{"type": "text", "text": text}] if text.strip() else []


def _content_blocks(content: object, where: str, *, for_tool: bool) -> list[dict]:
    """Anthropic blocks for a user (or tool) message's content: a string or an array of parts."""
    if isinstance(content, str) or content is None:
        return _text_blocks(content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array of parts.", param=f"{where}.content")
    blocks: list[dict] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if isinstance(part, str):
            blocks.extend(_text_blocks(part))
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.extend(_text_blocks(part.get("text"), f"{at}.text"))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(_image_block(url, f"{at}.image_url.url"))
        elif kind == "file" and not for_tool:
            blocks.append(_document_block(part.get("file"), f"{at}.file"))
        elif kind == "input_audio":
            raise InvalidRequest(f"{at}: audio input is not supported by Claude models.", param=at)
        else:
            raise InvalidRequest(f"{at}.type {kind!r} is not a content part Claude can take here.", param=f"{at}.type")
    return blocks


def _image_block(url: object, param: str) -> dict:
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{param} is required.", param=param)
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _data_uri(url, param)
    media_type = MEDIA_TYPE_ALIASES.get(media_type, media_type)
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequest(
            f"{param}: unsupported image type {media_type!r}; Claude accepts {', '.join(IMAGE_MEDIA_TYPES)}.",
            param=param,
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _data_uri(url: str, param: str) -> tuple[str, str]:
    """(media type, base64 data) of a base64 data URI."""
    match = DATA_URI.fullmatch(url)
    if not match or ";base64" not in match.group(2).lower():
        raise InvalidRequest(f"{param} must be an http(s) URL or a base64 data URI.", param=param)
    return match.group(1).strip().lower(), match.group(3)


def _document_block(file: object, param: str) -> dict:
    if not isinstance(file, dict):
        raise InvalidRequest(f"{param} must be an object.", param=param)
    file_data = file.get("file_data")
    if not isinstance(file_data, str) or not file_data:
        if file.get("file_id") is not None:
            raise InvalidRequest(
                f"{param}.file_id refers to an OpenAI upload, which Claude cannot read; send file_data.",
                param=f"{param}.file_id",
            )
        raise InvalidRequest(f"{param}.file_data is required.", param=f"{param}.file_data")
    if file_data.startswith("data:"):
        media_type, data = _data_uri(file_data, f"{param}.file_data")
    else:
        media_type, data = "application/pdf", file_data  # OpenAI's file parts carry PDFs
    if media_type == "application/pdf":
        block: dict = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequest(f"{param}.file_data is not base64 UTF-8 text.", param=f"{param}.file_data") from None
        block = {"type": "document", "source": {"type": "text", "media_type": media_type, "data": text}}
    else:
        raise InvalidRequest(
            f"{param}.file_data: unsupported file type {media_type!r}; Claude reads application/pdf and text/plain.",
            param=f"{param}.file_data",
        )
    filename = file.get("filename")
    if isinstance(filename, str) and filename:
        block["title"] = filename
    return block


# ---------------------------------------------------------------------------------------------
# Request: tools, tool_choice, response_format, reasoning
# ---------------------------------------------------------------------------------------------


def _anthropic_tool_name(name: str, tool_names: dict[str, str]) -> str:
    """`name` if Anthropic accepts it, else a stable shortened form recorded in `tool_names`."""
    if ANTHROPIC_TOOL_NAME.fullmatch(name):
        return name
    sent = openai_function_name(name)  # also fits Anthropic's pattern
    tool_names[sent] = name
    return sent


def _openai_to_anthropic_tools(tools: object, tool_names: dict[str, str]) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array.", param="tools")
    out: list[dict] = []
    for i, tool in enumerate(tools):
        at = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise InvalidRequest(f"{at}.type must be function: only function tools are supported.", param=f"{at}.type")
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{at}.function.name is required.", param=f"{at}.function.name")
        sent = _anthropic_tool_name(name, tool_names)
        if any(existing["name"] == sent for existing in out):
            raise InvalidRequest(f"{at}.function.name {name!r} is used by another tool.", param=f"{at}.function.name")
        parameters = function.get("parameters")
        if parameters is None:
            schema: dict = {"type": "object", "properties": {}}
        elif isinstance(parameters, dict) and parameters.get("type", "object") == "object":
            schema = parameters if "type" in parameters else {"type": "object", **parameters}
        else:
            raise InvalidRequest(
                f"{at}.function.parameters must be a JSON schema of type object.", param=f"{at}.function.parameters"
            )
        converted: dict = {"name": sent}
        description = function.get("description")
        if isinstance(description, str) and description:
            converted["description"] = description
        converted["input_schema"] = schema
        out.append(converted)
    return out


def _openai_to_anthropic_tool_choice(
    body: dict, tools: list[dict], tool_names: dict[str, str]
) -> tuple[list[dict], dict | None]:
    """The tools to send (allowed_tools filters them) and the Anthropic tool_choice, if any."""
    choice = body.get("tool_choice")
    known = {tool["name"] for tool in tools}
    if choice is None:
        converted = None
    elif choice in ("none", "auto"):
        converted = {"type": choice}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or _anthropic_tool_name(name, tool_names) not in known:
            raise InvalidRequest("tool_choice.function.name must name one of the tools.", param="tool_choice.function.name")
        converted = {"type": "tool", "name": _anthropic_tool_name(name, tool_names)}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        tools, converted = _allowed_tools(choice.get("allowed_tools"), tools, tool_names)
    else:
        raise InvalidRequest("tool_choice must be none, auto, required, a function or allowed_tools.", param="tool_choice")
    if not tools:
        return [], None  # Anthropic rejects a tool_choice without tools
    if body.get("parallel_tool_calls") is False:
        if converted is None:
            converted = {"type": "auto"}
        if converted["type"] != "none":
            converted["disable_parallel_tool_use"] = True
    return tools, converted


def _allowed_tools(allowed: object, tools: list[dict], tool_names: dict[str, str]) -> tuple[list[dict], dict]:
    param = "tool_choice.allowed_tools"
    if not isinstance(allowed, dict) or allowed.get("mode") not in ("auto", "required"):
        raise InvalidRequest(f"{param}.mode must be auto or required.", param=f"{param}.mode")
    entries = allowed.get("tools")
    if not isinstance(entries, list):
        raise InvalidRequest(f"{param}.tools must be an array.", param=f"{param}.tools")
    known = {tool["name"] for tool in tools}
    names = set()
    for k, entry in enumerate(entries):
        function = entry.get("function") if isinstance(entry, dict) else None
        # Chat Completions nests the name under "function"; the Responses API puts it on the entry.
        name = function.get("name") if isinstance(function, dict) else (entry or {}).get("name")
        if not isinstance(name, str) or _anthropic_tool_name(name, tool_names) not in known:
            raise InvalidRequest(f"{param}.tools[{k}] must name one of the tools.", param=f"{param}.tools[{k}]")
        names.add(_anthropic_tool_name(name, tool_names))
    kept = [tool for tool in tools if tool["name"] in names]
    return kept, {"type": "auto" if allowed["mode"] == "auto" else "any"}


def _response_format(response_format: object) -> tuple[str | None, dict | None]:
    """(json_mode, schema) for `response_format`."""
    if response_format is None:
        return None, None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None, None
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise InvalidRequest("response_format.json_schema is required.", param="response_format.json_schema")
        schema = spec.get("schema")
        if schema is None:
            schema = {"type": "object"}
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise InvalidRequest(
                "response_format.json_schema.schema must describe a JSON object.",
                param="response_format.json_schema.schema",
            )
        return "json_schema", (schema if "type" in schema else {"type": "object", **schema})
    raise InvalidRequest("response_format.type must be text, json_object or json_schema.", param="response_format.type")


def _force_json_tool(
    tools: list[dict], tool_choice: dict | None, schema: dict | None, response_format: dict
) -> tuple[list[dict], dict]:
    """Add the JSON_RESPONSE_TOOL carrying the schema and make the model call a tool."""
    if any(tool["name"] == JSON_RESPONSE_TOOL for tool in tools):
        raise InvalidRequest(
            f"The tool name {JSON_RESPONSE_TOOL!r} is reserved for response_format json_schema.",
            param="response_format",
        )
    spec = response_format["json_schema"]
    description = f"Return the final answer as JSON matching the schema {spec.get('name') or 'response'!r}."
    if isinstance(spec.get("description"), str) and spec["description"]:
        description += " " + spec["description"]
    json_tool = {"name": JSON_RESPONSE_TOOL, "description": description, "input_schema": schema}
    if tool_choice is None or tool_choice["type"] == "none" or not tools:
        return [json_tool], {"type": "tool", "name": JSON_RESPONSE_TOOL, "disable_parallel_tool_use": True}
    if tool_choice["type"] == "tool":
        return tools + [json_tool], tool_choice
    # The model may still call the client's tools, but its final answer must be the JSON tool.
    return tools + [json_tool], {**tool_choice, "type": "any"}


def _thinking_budget(effort: object, turns: list[dict]) -> int | None:
    if effort is None or effort in NO_THINKING_EFFORTS:
        return None
    if effort not in THINKING_BUDGET_TOKENS_BY_EFFORT:
        raise InvalidRequest(
            "reasoning_effort must be none, minimal, low, medium, high, xhigh or max.", param="reasoning_effort"
        )
    last = turns[-1]
    if last["role"] == "assistant" or any(block["type"] == "tool_result" for block in last["content"]):
        # A prefill cannot be combined with thinking, and a tool loop would need the signed
        # thinking block of the previous assistant turn: see the module docstring.
        return None
    return THINKING_BUDGET_TOKENS_BY_EFFORT[effort]


def _add_cache_breakpoints(tools: list[dict], system: list[dict], turns: list[dict]) -> None:
    """Mark the end of the tools, of the system prompt and of the two latest user turns."""
    spots = []
    if tools:
        spots.append(tools[-1])
    if system:
        spots.append(system[-1])
    user_turns = [turn for turn in turns if turn["role"] == "user"]
    for turn in reversed(user_turns[-CACHED_USER_TURNS:]):
        spots.append(turn["content"][-1])
    for spot in spots[:MAX_CACHE_BREAKPOINTS]:
        spot["cache_control"] = {"type": "ephemeral"}


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def anthropic_to_openai_response(
    response: dict,
    *,
    requested_model: str,
    completion_id: str,
    created: int,
    json_mode: str | None = None,
    tool_names: dict[str, str] | None = None,
) -> dict:
    """Translate an Anthropic Messages response body into a Chat Completions response body."""
    names = tool_names or {}
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict] = []
    json_answer: str | None = None
    for position, block in enumerate(response.get("content") or []):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use" and json_mode == "json_schema" and block.get("name") == JSON_RESPONSE_TOOL:
            if json_answer is None:
                json_answer = dumps(block.get("input") or {})
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": portable_tool_id(block.get("id"), seed=f"{completion_id}:{position}"),
                    "type": "function",
                    "function": {
                        "name": names.get(block.get("name"), block.get("name")),
                        "arguments": dumps(block.get("input") or {}),
                    },
                }
            )
        # redacted_thinking, server_tool_use, web_search_tool_result, ...: no OpenAI form [LOSSY]
    if json_answer is not None:
        content = json_answer
    elif json_mode is not None:
        content = _strip_code_fence("".join(texts))
    else:
        content = "".join(texts)
    stop_reason = response.get("stop_reason")
    message: dict = {
        "role": "assistant",
        "content": content if content or not tool_calls else None,
        "refusal": _refusal_text(response.get("stop_details")) if stop_reason == "refusal" else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if "".join(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": requested_model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _finish_reason(stop_reason, has_tool_calls=bool(tool_calls)),
                "logprobs": None,
            }
        ],
        "usage": _Usage.from_anthropic(response.get("usage")).openai(),
    }


def _finish_reason(stop_reason: object, *, has_tool_calls: bool) -> str:
    finish = FINISH_REASON_BY_STOP_REASON.get(stop_reason, "stop")
    if has_tool_calls and finish == "stop":
        return "tool_calls"
    if not has_tool_calls and finish == "tool_calls":
        return "stop"  # the only call was the JSON answer, or a server tool
    return finish


def _refusal_text(stop_details: object) -> str:
    explanation = stop_details.get("explanation") if isinstance(stop_details, dict) else None
    return explanation if isinstance(explanation, str) and explanation else REFUSAL_FALLBACK_TEXT


class _Usage:
    """Anthropic token counts, updated from message_start/message_delta, rendered for OpenAI."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_creation_tokens = 0
        self.reasoning_tokens = 0

    @classmethod
    def from_anthropic(cls, usage: object) -> _Usage:
        counts = cls()
        counts.update(usage)
        return counts

    def update(self, usage: object) -> None:
        """Take the fields present in `usage`: Anthropic's counts are cumulative, absent ones stay."""
        if not isinstance(usage, dict):
            return
        for field, attribute in (
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_read_input_tokens", "cache_read_tokens"),
            ("cache_creation_input_tokens", "cache_creation_tokens"),
        ):
            value = usage.get(field)
            if isinstance(value, int):
                setattr(self, attribute, value)
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
            self.reasoning_tokens = details["thinking_tokens"]

    def openai(self) -> dict:
        prompt_tokens = self.input_tokens + self.cache_read_tokens + self.cache_creation_tokens
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": prompt_tokens + self.output_tokens,
            "prompt_tokens_details": {
                "cached_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_creation_tokens,
            },
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


# ---------------------------------------------------------------------------------------------
# Code fences around JSON answers
# ---------------------------------------------------------------------------------------------


class _FenceState(Enum):
    UNDECIDED = "before the first visible character"
    OPENING = "inside the opening fence line"
    FENCED = "inside a fenced answer"
    PLAIN = "in an answer without a fence"


_FENCE = "```"
_FENCE_TAIL = re.compile(r"[\s`]*\Z")


class _FenceStripper:
    """Remove a Markdown code fence wrapped around a whole answer, however the text is split.

    Only a fence that opens the answer counts. Text is passed on as soon as it can no longer be part
    of a fence: after an opening fence, trailing whitespace and backticks wait for the next piece.
    """

    def __init__(self) -> None:
        self._state = _FenceState.UNDECIDED
        self._pending = ""

    def feed(self, text: str) -> str:
        self._pending += text
        if self._state is _FenceState.UNDECIDED:
            visible = self._pending.lstrip()
            if visible.startswith(_FENCE):
                self._state = _FenceState.OPENING
                self._pending = visible[len(_FENCE):]
            elif not visible or _FENCE.startswith(visible):
                return ""
            else:
                self._state = _FenceState.PLAIN
        if self._state is _FenceState.OPENING:
            newline = self._pending.find("\n")
            if newline < 0:
                return ""  # still in the info string ("json")
            self._state = _FenceState.FENCED
            self._pending = self._pending[newline + 1:]
        if self._state is _FenceState.FENCED:
            cut = _FENCE_TAIL.search(self._pending).start()
            out, self._pending = self._pending[:cut], self._pending[cut:]
            return out
        out, self._pending = self._pending, ""
        return out

    def finish(self) -> str:
        pending, self._pending = self._pending, ""
        if self._state is _FenceState.OPENING:
            # A one-line answer such as ```json{"a": 1}```.
            return re.sub(r"^[A-Za-z]*\s*", "", re.sub(r"\s*`{3}\s*\Z", "", pending))
        if self._state is _FenceState.FENCED and _FENCE in pending:
            return ""  # the closing fence
        return pending


def _strip_code_fence(text: str) -> str:
    stripper = _FenceStripper()
    return stripper.feed(text) + stripper.finish()


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


class _StreamState(Enum):
    AWAITING_START = "waiting for message_start"
    STREAMING = "streaming"
    DONE = "done"
    FAILED = "failed"


# The state each Anthropic event is valid in; other event types (ping, unknown ones) are ignored.
_EXPECTED_STATE = {
    "message_start": _StreamState.AWAITING_START,
    "content_block_start": _StreamState.STREAMING,
    "content_block_delta": _StreamState.STREAMING,
    "content_block_stop": _StreamState.STREAMING,
    "message_delta": _StreamState.STREAMING,
    "message_stop": _StreamState.STREAMING,
}


class _BlockKind(Enum):
    TEXT = "text"
    THINKING = "thinking"
    TOOL = "tool call"
    JSON_ANSWER = "json answer"
    IGNORED = "ignored"


@dataclass
class _Block:
    kind: _BlockKind
    tool_index: int = 0  # the OpenAI tool_calls index, for TOOL blocks
    start_input: dict | None = None  # input given whole in content_block_start, if any
    saw_input_delta: bool = False  # a non-empty input_json_delta arrived


class AnthropicToOpenAIStream:
    """Translate Anthropic stream events into Chat Completions chunks, one `feed()` per event.

    Each method returns what to send to the client, in order: chunk dicts (encode them with
    `encode_openai_chunk`) and the string "[DONE]" (send `OPENAI_DONE`). Once `finished` is true
    the stream is over and further calls return []. Token counts (Anthropic's meaning:
    `input_tokens` excludes the cache) are readable at any time for the access log.
    """

    def __init__(
        self,
        *,
        requested_model: str,
        completion_id: str,
        created: int,
        include_usage: bool,
        json_mode: str | None = None,
        tool_names: dict[str, str] | None = None,
    ) -> None:
        # The completion being written
        self._completion_id = completion_id
        self._created = created
        self._model = requested_model
        self._include_usage = include_usage
        self._json_mode = json_mode
        self._tool_names = tool_names or {}
        # Upstream progress
        self._state = _StreamState.AWAITING_START
        self._blocks: dict[int, _Block] = {}
        self._tool_count = 0
        self._stop_reason: str | None = None
        self._stop_details: dict | None = None
        self._usage = _Usage()
        # Text held back in JSON modes
        self._fences = _FenceStripper()
        self._held_text: list[str] = []
        self._saw_json_answer = False

    # -- public surface ----------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._state in (_StreamState.DONE, _StreamState.FAILED)

    @property
    def input_tokens(self) -> int:
        return self._usage.input_tokens

    @property
    def output_tokens(self) -> int:
        return self._usage.output_tokens

    @property
    def cache_read_tokens(self) -> int:
        return self._usage.cache_read_tokens

    @property
    def cache_creation_tokens(self) -> int:
        return self._usage.cache_creation_tokens

    def feed(self, event: SSEEvent) -> list[dict | str]:
        """Consume one upstream event; return the chunks (and finally "[DONE]") it produces."""
        if self.finished:
            return []
        try:
            data = json.loads(event.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self.fail(UpstreamUnavailable("The Anthropic upstream sent a stream event that is not a JSON object."))
        kind = data.get("type") or event.event  # PROTOCOLS 8: trust the JSON type over the name
        if kind == "error":
            return self.fail(_upstream_stream_error(data.get("error")))
        expected = _EXPECTED_STATE.get(kind)
        if expected is None:
            return []  # ping, or an event type newer than this code
        if expected is not self._state:
            return self.fail(
                UpstreamUnavailable(f"The Anthropic upstream sent {kind} while the stream was {self._state.value}.")
            )
        return getattr(self, "_on_" + kind)(data)

    def close(self) -> list[dict | str]:
        """The upstream ended. Finish normally if the stop reason arrived, else report an error."""
        if self.finished:
            return []
        if self._state is _StreamState.STREAMING and self._stop_reason is not None:
            return self._finish()
        return self.fail(UpstreamUnavailable("The upstream stream ended before the message was complete."))

    def fail(self, error: ProxyError) -> list[dict | str]:
        """The stream cannot go on: return the OpenAI error object to send last (no "[DONE]")."""
        if self.finished:
            return []
        self._state = _StreamState.FAILED
        return [openai_error_body(error)]

    # -- event handlers ----------------------------------------------------------------------

    def _on_message_start(self, data: dict) -> list[dict | str]:
        message = data.get("message")
        self._usage.update(message.get("usage") if isinstance(message, dict) else None)
        self._state = _StreamState.STREAMING
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_content_block_start(self, data: dict) -> list[dict | str]:
        index = data.get("index")
        block = data.get("content_block")
        if not isinstance(block, dict):
            block = {}
        kind = block.get("type")
        out: list[dict | str] = []
        if kind == "text":
            self._blocks[index] = _Block(_BlockKind.TEXT)
            out += self._text(block.get("text") or "")
        elif kind == "thinking":
            self._blocks[index] = _Block(_BlockKind.THINKING)
            out += self._reasoning(block.get("thinking") or "")
        elif kind == "tool_use" and self._json_mode == "json_schema" and block.get("name") == JSON_RESPONSE_TOOL:
            # Only the first JSON answer counts; text around it is dropped (see module docstring).
            kind_here = _BlockKind.IGNORED if self._saw_json_answer else _BlockKind.JSON_ANSWER
            self._saw_json_answer = True
            self._held_text = []
            self._blocks[index] = _Block(kind_here, start_input=block.get("input") or None)
        elif kind == "tool_use":
            self._blocks[index] = _Block(_BlockKind.TOOL, self._tool_count, start_input=block.get("input") or None)
            name = block.get("name")
            call = {
                "index": self._tool_count,
                "id": portable_tool_id(block.get("id"), seed=f"{self._completion_id}:{index}"),
                "type": "function",
                "function": {"name": self._tool_names.get(name, name), "arguments": ""},
            }
            self._tool_count += 1
            out.append(self._chunk({"tool_calls": [call]}))
        else:
            # redacted_thinking, server_tool_use, web_search_tool_result, ...: not for OpenAI [LOSSY]
            self._blocks[index] = _Block(_BlockKind.IGNORED)
        return out

    def _on_content_block_delta(self, data: dict) -> list[dict | str]:
        block = self._blocks.get(data.get("index"))
        delta = data.get("delta")
        if block is None or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and block.kind is _BlockKind.TEXT:
            return self._text(delta.get("text") or "")
        if kind == "thinking_delta" and block.kind is _BlockKind.THINKING:
            return self._reasoning(delta.get("thinking") or "")
        if kind == "input_json_delta":
            fragment = delta.get("partial_json") or ""
            if not fragment:
                return []
            block.saw_input_delta = True
            return self._arguments(block, fragment)
        return []  # signature_delta, citations_delta [LOSSY]

    def _on_content_block_stop(self, data: dict) -> list[dict | str]:
        block = self._blocks.get(data.get("index"))
        if block is None or block.saw_input_delta:
            return []
        # No input arrived as deltas: send the input given at the start, or "{}" for a call
        # without arguments, since clients json.loads() the arguments and "" is not JSON.
        return self._arguments(block, dumps(block.start_input or {}))

    def _on_message_delta(self, data: dict) -> list[dict | str]:
        delta = data.get("delta")
        if isinstance(delta, dict):
            if delta.get("stop_reason") is not None:
                self._stop_reason = delta["stop_reason"]
            if isinstance(delta.get("stop_details"), dict):
                self._stop_details = delta["stop_details"]
        self._usage.update(data.get("usage"))
        return []

    def _on_message_stop(self, data: dict) -> list[dict | str]:
        return self._finish()

    # -- output ------------------------------------------------------------------------------

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        chunk: dict = {
            "id": self._completion_id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def _text(self, text: str) -> list[dict | str]:
        if self._json_mode == "json_schema":
            if not self._saw_json_answer:
                self._held_text.append(text)
            return []
        if self._json_mode == "json_object":
            text = self._fences.feed(text)
        return [self._chunk({"content": text})] if text else []

    def _reasoning(self, text: str) -> list[dict | str]:
        return [self._chunk({"reasoning_content": text})] if text else []

    def _arguments(self, block: _Block, fragment: str) -> list[dict | str]:
        if block.kind is _BlockKind.TOOL:
            return [self._chunk({"tool_calls": [{"index": block.tool_index, "function": {"arguments": fragment}}]})]
        if block.kind is _BlockKind.JSON_ANSWER:
            return [self._chunk({"content": fragment})]
        return []  # server_tool_use input, or a second JSON answer

    def _finish(self) -> list[dict | str]:
        out: list[dict | str] = []
        if self._json_mode == "json_object":
            tail = self._fences.finish()
        elif self._json_mode == "json_schema" and not self._saw_json_answer:
            tail = _strip_code_fence("".join(self._held_text))
        else:
            tail = ""
        if tail:
            out.append(self._chunk({"content": tail}))
        if self._stop_reason == "refusal":
            out.append(self._chunk({"refusal": _refusal_text(self._stop_details)}))
        out.append(self._chunk({}, _finish_reason(self._stop_reason, has_tool_calls=self._tool_count > 0)))
        if self._include_usage:
            out.append(
                {
                    "id": self._completion_id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [],
                    "usage": self._usage.openai(),
                }
            )
        out.append("[DONE]")
        self._state = _StreamState.DONE
        return out


def _upstream_stream_error(error: object) -> ProxyError:
    """The ProxyError for an Anthropic `error` event that arrived after HTTP 200."""
    error = error if isinstance(error, dict) else {}
    message = error.get("message")
    error_type = error.get("type")
    return ProxyError(
        message if isinstance(message, str) and message else "The Anthropic upstream reported an error mid-stream.",
        error_type=error_type if isinstance(error_type, str) and error_type else "api_error",
    )
