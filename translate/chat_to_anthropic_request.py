"""Chat Completions requests to Anthropic Messages requests (a chat front on an Anthropic upstream).

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
  `chat_function_name` and restored in responses through `AnthropicRequest.tool_names`.
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
- Toward another dialect through the hub (`target.hub`), none of Claude's own constraints above is
  applied: the effort survives tool loops, a forced tool stays forced, sampling is kept as sent, and
  json_schema is `output_config.format` (the answer's text is the JSON).
- With `target.auto_cache`, `cache_control` breakpoints go on the last tool, the last system block and
  the last block of the two latest user turns: at most `MAX_CACHE_BREAKPOINTS`, never on empty text.

Responses and streams going the other way are in translate/anthropic_to_chat_response.py.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from .errors import InvalidRequest
from .reuse import loads_strict
from .tools import chat_function_name, portable_tool_id

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
    # The request goes on to another dialect (translate/dialects.py `hub_target`), not to Claude: what
    # only Claude demands does not apply (thinking dropped in tool loops and with a prefill, forced
    # tools lifted under thinking, temperature clamped to [0, 1], sampling left out with thinking), and
    # json_schema goes as `output_config.format`, which every other dialect has, not as a forced tool.
    hub: bool = False


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


def chat_to_anthropic_request(body: dict, target: AnthropicTarget) -> AnthropicRequest:
    """Translate a Chat Completions request body into an Anthropic Messages request.

    Returns the body to POST to /v1/messages with what the caller must hand to
    `anthropic_to_chat_response` or `AnthropicToChatStream`. Raises `InvalidRequest` (400) with
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
    system, turns = _chat_to_anthropic_messages(messages, tool_names)
    tools = _chat_to_anthropic_tools(body.get("tools"), tool_names)
    tools, tool_choice = _chat_to_anthropic_tool_choice(body, tools, tool_names)
    json_mode, json_schema = _response_format(body.get("response_format"))
    budget = _thinking_budget(body.get("reasoning_effort"), turns, target.hub)
    max_tokens, budget = _max_tokens(body, target, budget)

    if not system and target.system_prompt:
        system.append({"type": "text", "text": target.system_prompt})
    output_format = None
    if json_mode == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    elif json_mode == "json_schema" and target.hub:
        output_format = {"type": "json_schema", "schema": json_schema}
        json_mode = None  # the answer's text is the JSON itself
    elif json_mode == "json_schema":
        tools, tool_choice = _force_json_tool(tools, tool_choice, json_schema, body["response_format"])
    lifted = lift_forced_tool(tool_choice, budget, target)
    if lifted is not tool_choice and json_mode == "json_schema":
        system.append({"type": "text", "text": JSON_TOOL_INSTRUCTION})  # without the force, ask in words
    tool_choice = lifted

    out: dict = {"model": target.model, "max_tokens": max_tokens}
    if system:
        out["system"] = system
    out["messages"] = turns
    if tools:
        out["tools"] = tools
        if tool_choice is not None:
            out["tool_choice"] = tool_choice
    put_thinking_and_sampling(out, body, budget, target)
    if output_format is not None:
        out["output_config"] = {"format": output_format}
    stop_sequences = _stop_sequences(body.get("stop"))
    if stop_sequences:
        out["stop_sequences"] = stop_sequences
    user_id = body.get("safety_identifier") or body.get("user")
    if isinstance(user_id, str) and user_id:
        out["metadata"] = {"user_id": user_id}
    if body.get("stream") is True:
        out["stream"] = True
    if target.auto_cache:
        add_cache_breakpoints(out.get("tools", []), system, turns)

    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return AnthropicRequest(out, include_usage, json_mode, tool_names)


def _reject_unsupported_parameters(body: dict) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("n must be 1: a translated request returns one choice.", param="n")
    if body.get("logprobs"):
        raise InvalidRequest("logprobs cannot be returned by a translated request.", param="logprobs")
    if body.get("top_logprobs"):
        raise InvalidRequest("top_logprobs cannot be returned by a translated request.", param="top_logprobs")
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


def lift_forced_tool(tool_choice: dict | None, budget: int | None, target: AnthropicTarget) -> dict | None:
    """`tool_choice`, or auto in its place when it forces a tool under thinking, which Claude refuses
    (not toward another dialect: `target.hub`). Shared with translate/responses_to_anthropic_request.py."""
    if budget is None or target.hub or tool_choice is None or tool_choice["type"] not in ("any", "tool"):
        return tool_choice
    return {**{key: value for key, value in tool_choice.items() if key != "name"}, "type": "auto"}


def put_thinking_and_sampling(out: dict, body: dict, budget: int | None, target: AnthropicTarget) -> None:
    """`thinking` (when there is a `budget`) and the client's temperature and top_p, as the target takes them.

    Claude requires temperature 1 and top_p >= 0.95 with thinking, and a temperature in [0, 1]: with
    thinking both are left out, without it the temperature is clamped. Toward another dialect
    (`target.hub`) both go as sent: the next translator decides for its model. Shared with
    translate/responses_to_anthropic_request.py.
    """
    temperature, top_p = number_field(body, "temperature"), number_field(body, "top_p")
    if budget is not None:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if not target.hub:
            return
    if temperature is not None:
        out["temperature"] = temperature if target.hub else min(max(temperature, 0.0), 1.0)
    if top_p is not None:
        out["top_p"] = top_p


def number_field(body: dict, name: str) -> float | None:
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
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    return fit_max_tokens(body.get(name), name, target, budget)


def fit_max_tokens(requested: object, name: str, target: AnthropicTarget, budget: int | None) -> tuple[int, int | None]:
    """The max_tokens to send for the client's `name` field, and the thinking budget that fits under
    it (None: no thinking). OpenAI's APIs count reasoning inside their output limit; Anthropic wants
    budget < max_tokens. Shared with translate/responses_to_anthropic_request.py."""
    if requested is None:
        max_tokens = target.default_max_tokens
    elif isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise InvalidRequest(f"{name} must be a positive integer.", param=name)
    else:
        max_tokens = requested
    if budget is not None:
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


def _chat_to_anthropic_messages(messages: list, tool_names: dict[str, str]) -> tuple[list[dict], list[dict]]:
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
            append_turn(turns, "user", _content_blocks(message.get("content"), where, for_tool=False))
        elif role == "assistant":
            blocks = _assistant_blocks(message, where, tool_names)
            calls = {block["id"] for block in blocks if block["type"] == "tool_use"}
            if turns and turns[-1]["role"] == "assistant":
                open_calls |= calls
            elif blocks:
                open_calls = calls
            append_turn(turns, "assistant", blocks)
        elif role == "tool":
            append_turn(turns, "user", [_tool_result_block(message, where, open_calls)])
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
    pair_tool_results(turns)
    make_tool_ids_unique(turns)
    if not turns or turns[0]["role"] != "user":
        # Anthropic: "first message must use the user role".
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]})
    trim_prefill(turns)
    return system, turns


def append_turn(turns: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def pair_tool_results(turns: list[dict]) -> None:
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


def make_tool_ids_unique(turns: list[dict]) -> None:
    """Rename a tool_use id already used earlier in the conversation, and its tool_result with it.

    Anthropic rejects a request whose tool_use ids repeat ("tool_use ids must be unique"), and some
    servers (Ollama) reuse ids across turns. The new id comes from the old one and the turn's
    position, so replaying the same conversation gives the same ids. Runs after pairing, so each
    call's result sits in the very next user turn.
    """
    seen: set[str] = set()
    for position, turn in enumerate(turns):
        if turn["role"] != "assistant":
            continue
        renamed: dict[str, str] = {}
        for block in turn["content"]:
            if block["type"] == "tool_use" and block["id"] in seen and block["id"] not in renamed:
                renamed[block["id"]] = block["id"] = portable_tool_id(f"{block['id']}:{position}")
        seen.update(block["id"] for block in turn["content"] if block["type"] == "tool_use")
        if renamed and position + 1 < len(turns):
            for block in turns[position + 1]["content"]:
                if block["type"] == "tool_result" and block["tool_use_id"] in renamed:
                    block["tool_use_id"] = renamed[block["tool_use_id"]]


def trim_prefill(turns: list[dict]) -> None:
    # Anthropic: "final assistant content cannot end with trailing whitespace". Text blocks are
    # never blank (see text_blocks), so the stripped text is never empty.
    last = turns[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        last["content"][-1] = {**last["content"][-1], "text": last["content"][-1]["text"].rstrip()}


def _system_blocks(content: object, where: str) -> list[dict]:
    if isinstance(content, str) or content is None:
        return text_blocks(content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array of text parts.", param=f"{where}.content")
    blocks: list[dict] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            blocks.extend(text_blocks(part))
        elif isinstance(part, dict) and part.get("type") == "text":
            blocks.extend(text_blocks(part.get("text"), f"{where}.content[{j}].text"))
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
        blocks.extend(text_blocks(content))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            at = f"{where}.content[{j}]"
            if isinstance(part, str):
                blocks.extend(text_blocks(part))
            elif isinstance(part, dict) and part.get("type") in ("text", "refusal"):
                key = part["type"]
                blocks.extend(text_blocks(part.get(key), f"{at}.{key}"))
            else:
                raise InvalidRequest(f"{at} must be a text or refusal part in an assistant message.", param=at)
    else:
        raise InvalidRequest(f"{where}.content must be a string, an array or null.", param=f"{where}.content")
    blocks.extend(text_blocks(message.get("refusal"), f"{where}.refusal"))

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
        parsed = loads_strict(arguments)  # NaN, 1e999, lone surrogates or deep nesting: not for Anthropic
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


def text_blocks(text: object, param: str | None = None) -> list[dict]:
    """One text block, or none for empty or whitespace-only text (Anthropic rejects those)."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise InvalidRequest(f"{param or 'text'} must be a string.", param=param)
    return [{"type": "text", "text": text}] if text.strip() else []


def _content_blocks(content: object, where: str, *, for_tool: bool) -> list[dict]:
    """Anthropic blocks for a user (or tool) message's content: a string or an array of parts."""
    if isinstance(content, str) or content is None:
        return text_blocks(content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array of parts.", param=f"{where}.content")
    blocks: list[dict] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if isinstance(part, str):
            blocks.extend(text_blocks(part))
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.extend(text_blocks(part.get("text"), f"{at}.text"))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(image_block(url, f"{at}.image_url.url"))
        elif kind == "file" and not for_tool:
            blocks.append(document_block(part.get("file"), f"{at}.file"))
        elif kind == "input_audio":
            raise InvalidRequest(f"{at}: audio input is not supported by Claude models.", param=at)
        else:
            raise InvalidRequest(f"{at}.type {kind!r} is not a content part Claude can take here.", param=f"{at}.type")
    return blocks


def image_block(url: object, param: str) -> dict:
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


def document_block(file: object, param: str) -> dict:
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
    sent = chat_function_name(name)  # also fits Anthropic's pattern
    tool_names[sent] = name
    return sent


def _chat_to_anthropic_tools(tools: object, tool_names: dict[str, str]) -> list[dict]:
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


def _chat_to_anthropic_tool_choice(
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
    return finish_tool_choice(tools, converted, body.get("parallel_tool_calls"))


def finish_tool_choice(tools: list[dict], converted: dict | None, parallel_tool_calls: object) -> tuple[list[dict], dict | None]:
    """(tools, tool_choice) as Anthropic takes them: no choice without tools, and OpenAI's
    `parallel_tool_calls: false` as `disable_parallel_tool_use`. Shared with translate/responses_tools.py."""
    if not tools:
        return [], None  # Anthropic rejects a tool_choice without tools
    if parallel_tool_calls is False:
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
        name = function.get("name") if isinstance(function, dict) else entry.get("name") if isinstance(entry, dict) else None
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


def _thinking_budget(effort: object, turns: list[dict], hub: bool) -> int | None:
    if effort is None or (isinstance(effort, str) and effort in NO_THINKING_EFFORTS):
        return None
    if not isinstance(effort, str) or effort not in THINKING_BUDGET_TOKENS_BY_EFFORT:
        raise InvalidRequest(
            "reasoning_effort must be none, minimal, low, medium, high, xhigh or max.", param="reasoning_effort"
        )
    last = turns[-1]
    if not hub and (last["role"] == "assistant" or any(block["type"] == "tool_result" for block in last["content"])):
        # A prefill cannot be combined with thinking, and a tool loop would need the signed
        # thinking block of the previous assistant turn: see the module docstring.
        return None
    return THINKING_BUDGET_TOKENS_BY_EFFORT[effort]


def add_cache_breakpoints(tools: list[dict], system: list[dict], turns: list[dict]) -> None:
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
