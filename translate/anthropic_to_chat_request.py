"""Anthropic Messages requests to Chat Completions requests (the `chat` dialect).

The Anthropic front talking to a chat-dialect upstream (OpenAI, Azure, Gemini, Ollama, vLLM...).
Pure functions; provider quirks (Gemini schema cleaning, Azure frames) belong to the provider
modules. The way back (whole answers and the stream translator) is translate/chat_to_anthropic_response.py.

Policies (PROTOCOLS.md 3.1, 3.3, 3.4; FIELD-NOTES "Claude Code's traffic", "Translation traps"):
- The OpenAI body is built from an allowlist: Anthropic-only fields (thinking, output_config,
  context_management, metadata, service_tier, container, cache_control, top_k, mcp_servers and
  anything unknown) never leak upstream.
- Requests are validated only as far as translation needs: a body that is not an object, a missing
  `model`, `messages` that is not a list, a missing or negative `max_tokens`, a message with an
  unknown role and content of the wrong shape are 400s naming the field. Unknown or Anthropic-only
  content blocks are degraded (dropped, or rendered as text where they carry text), never rejected.
- `role: "system"` turns inside `messages` (Claude Code's mid-conversation system messages) become a
  user note ("System note:" + text) at their place in the conversation rather than text folded into
  the leading system message: folding would rewrite the prompt prefix every time such a turn
  appears, which defeats the upstream's prompt cache, and several chat templates reject a second
  system message. A note that arrives while tool results are still due is held back until just
  after the tool messages, because OpenAI requires those right after the assistant's tool calls.
- Tool results become one `tool` message each, right after the assistant turn and before the rest of
  that user turn. A `tool` message carries text only: images and PDFs found in tool results go into
  one user message right after the run of tool messages, labelled with the tool call id. A result
  without text still yields a tool message, with a short placeholder rather than "" (several
  OpenAI-compatible servers reject empty content; Gemini wants one response per call).
- Assistant text blocks are joined into one `content` string (text after a tool_use moves before the
  tool calls [LOSSY]); `content` is null when only tool calls remain; an assistant turn with nothing
  left (only thinking or server-tool blocks) is not sent.
- `max_tokens: 0` (Anthropic's cache pre-warm) is sent as 1, OpenAI's minimum.
- Thinking settings become `reasoning_effort` only for reasoning targets: a budget below 4096 is
  "low", below 16384 "medium", else "high"; adaptive thinking (or no thinking field) takes
  `output_config.effort`, with "xhigh" and "max" sent as "high"; disabled thinking sends nothing.
- Thinking blocks in history travel on the assistant message in the field the target names
  (`reasoning_content`: DeepSeek and Kimi require it back on tool-call turns; `reasoning`: Ollama),
  or not at all (api.openai.com, Azure and Gemini reject unknown message fields with a 400);
  signatures and redacted thinking are lost.
- Server tools (a `type` other than "custom": web_search_*, web_fetch_*, code_execution_*...) are
  left out and named in `dropped_tools`; a tool_choice forcing one of them becomes "auto".
- Deferred tools (`defer_loading: true`) go only once the conversation loaded them, as Anthropic's
  tool search would: translate/tool_search.py.
- Tool ids that carry a thought signature (`<id>__ts..._<payload>`, made by the response side for
  Gemini, translate/tools.py) always go upstream as the plain id, in tool_calls and tool messages
  alike. With `ChatTarget.thought_signatures` the signature goes back on its tool call as
  `extra_content.<namespace>.thought_signature`; without it (the user moved the session to another
  upstream) it is dropped. Calls without a signature get none here: the Gemini provider adds
  dummies (translate/gemini.py), since only it knows the upstream wants them.
- The response side takes `thought_signatures` and `thought_tags` too; see
  translate/chat_to_anthropic_response.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from translate.chat_to_anthropic_response import is_int
from translate.errors import InvalidRequest
from translate.reuse import RememberedList
from translate.sse import dumps
from translate.tool_search import without_unloaded_tools
from translate.tools import (
    chat_function_name,
    function_name_map,
    portable_tool_id,
    split_signed_tool_id,
)

# OpenAI accepts at most this many stop strings (Gemini five: ChatTarget.max_stop_sequences);
# extra ones are dropped [LOSSY].
CHAT_MAX_STOP_SEQUENCES = 4

# Thinking budget thresholds for reasoning_effort: below LOW -> "low", below MEDIUM -> "medium".
EFFORT_LOW_BELOW_TOKENS = 4096
EFFORT_MEDIUM_BELOW_TOKENS = 16384

# Anthropic effort -> OpenAI reasoning_effort; OpenAI families disagree above "high", so cap there.
_EFFORT_BY_ANTHROPIC_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}

_REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")

SYSTEM_NOTE_PREFIX = "System note:\n\n"
EMPTY_TOOL_RESULT_TEXT = "(no output)"
TOOL_RESULT_ATTACHED_TEXT = "(the output is attached in the next message)"


@dataclass(frozen=True)
class ChatTarget:
    """What the translated request is for: the upstream model and what it accepts."""

    model: str  # upstream model name to put in the body
    reasoning: bool  # OpenAI reasoning family: max_completion_tokens, no temperature/top_p, effort
    max_tokens_limit: int | None = None  # cap on max_tokens; None = no cap
    # Where history thinking goes on an assistant message: "reasoning_content" (DeepSeek, Kimi, vLLM
    # need it back), "reasoning" (Ollama), or None for upstreams that reject unknown fields (OpenAI).
    reasoning_history_field: str | None = "reasoning_content"
    send_user: bool = True  # metadata.user_id -> `user`
    thought_signatures: bool = False  # signatures carried in tool ids -> tool_calls[].extra_content (Gemini)
    buffer_tool_calls: bool = False  # the upstream interleaves parallel calls' fragments: emit each call whole
    max_stop_sequences: int = CHAT_MAX_STOP_SEQUENCES  # Gemini takes 5


def is_reasoning_model(name: str) -> bool:
    """True for OpenAI reasoning models (o1*, o3*, o4*, gpt-5*), with any "provider/" prefix ignored."""
    return name.rsplit("/", 1)[-1].lower().startswith(_REASONING_MODEL_PREFIXES)


@dataclass(frozen=True)
class ChatRequest:
    """A translated request and what the response translation needs to undo it."""

    body: dict  # the OpenAI chat.completions request body
    tool_names: dict[str, str]  # {name sent upstream: client's original name} for shortened names
    dropped_tools: tuple[str, ...]  # server tools (web_search_* etc.) left out, for a log line
    stop_sequences: tuple[str, ...]  # the client's stop sequences, to report stop_sequence when known


# ---------------------------------------------------------------------------------------------
# Request: Anthropic -> OpenAI
# ---------------------------------------------------------------------------------------------


def checked_hub_request(body: object) -> tuple[dict, list, int]:
    """(body, messages, max_tokens) of a Messages request any translator out of the hub can read.

    The body comes back with only the tools the conversation loaded: no upstream but Anthropic runs
    tool search. Raises InvalidRequest for what no translation could carry.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: a non-empty string is required.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: a list of messages is required.", param="messages")
    body = without_unloaded_tools(body)  # no tool search upstream: only the tools the conversation loaded
    max_tokens = body.get("max_tokens")
    if not is_int(max_tokens) or max_tokens < 0:
        raise InvalidRequest("max_tokens: a non-negative integer is required.", param="max_tokens")
    return body, messages, max_tokens


def anthropic_to_chat_request(body: dict, target: ChatTarget) -> ChatRequest:
    """Translate an Anthropic Messages request body into an OpenAI chat.completions request.

    Returns the body plus the reverse tool-name map, the dropped server tools and the stop
    sequences; pass the last two to the response translation. Raises InvalidRequest (400, `param`
    set) for a request that cannot be translated; unknown content is degraded instead.
    """
    body, messages, max_tokens = checked_hub_request(body)

    tools, dropped_tools = chat_tools(body.get("tools"))
    stop_sequences = _stop_sequences(body.get("stop_sequences"))
    history_names: list[str] = []

    openai_messages: list[dict] = []
    system = system_text(body.get("system"))
    if system:
        openai_messages.append({"role": "system", "content": system})
    openai_messages += _chat_messages(messages, target, history_names)

    out: dict = {"model": target.model, "messages": openai_messages}
    out_tokens = max(max_tokens, 1)  # OpenAI rejects 0; Anthropic uses 0 to pre-warm a cache
    if target.max_tokens_limit is not None:
        out_tokens = min(out_tokens, target.max_tokens_limit)
    out["max_completion_tokens" if target.reasoning else "max_tokens"] = out_tokens
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if not is_number(value):
            raise InvalidRequest(f"{name}: a number is required.", param=name)
        if not target.reasoning:  # reasoning models accept only the default sampling
            out[name] = value
    if stop_sequences:
        out["stop"] = list(stop_sequences[: target.max_stop_sequences])
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # usage arrives only with this
    if tools:
        out["tools"] = tools
        sent_names = {tool["function"]["name"] for tool in tools}
        choice, one_call_at_most = chat_tool_choice(body.get("tool_choice"), sent_names)
        if choice is not None:
            out["tool_choice"] = choice
        if one_call_at_most:
            out["parallel_tool_calls"] = False
    if target.reasoning:
        effort = reasoning_effort(body.get("thinking"), body.get("output_config"))
        if effort is not None:
            out["reasoning_effort"] = effort
    response_format = chat_response_format(body.get("output_config"))
    if response_format is not None:
        out["response_format"] = response_format
    metadata = body.get("metadata")
    if target.send_user and isinstance(metadata, dict):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            out["user"] = user_id

    tool_names = function_name_map(tool_names_of(body.get("tools")) + history_names)
    return ChatRequest(out, tool_names, tuple(dropped_tools), stop_sequences)


def is_number(value: object) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def system_text(system: object) -> str:
    """The `system` field's text blocks joined with blank lines ("" when absent); raises InvalidRequest."""
    # Billing-header style first blocks are ordinary text; cache_control is lost [LOSSY].
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise InvalidRequest("system: a string or a list of text blocks is required.", param="system")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict):
            raise InvalidRequest(f"system[{i}]: a content block object is required.", param=f"system[{i}]")
        text = block.get("text")
        if block.get("type") == "text" and isinstance(text, str) and text:
            texts.append(text)
    return "\n\n".join(texts)


def _stop_sequences(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest("stop_sequences: a list of strings is required.", param="stop_sequences")
    return tuple(value)


def tool_names_of(tools: object) -> list[str]:
    """The names of the tools in a request's `tools`, for the reverse name map."""
    if not isinstance(tools, list):
        return []
    return [tool["name"] for tool in tools if isinstance(tool, dict) and isinstance(tool.get("name"), str)]


def chat_tools(tools: object) -> tuple[list[dict], list[str]]:
    """(function tools to send, names of the server tools left out).

    A list remembered between requests (translate/reuse.py) is translated once; the function list
    made from it is remembered too, so its JSON is encoded once.
    """
    derived = getattr(tools, "derived", None)
    if derived is None:
        return _translate_tools(tools)
    translated = derived.get("chat_tools")
    if translated is None:
        functions, dropped = _translate_tools(tools)
        translated = derived["chat_tools"] = (RememberedList(functions), dropped)
    return translated


def _translate_tools(tools: object) -> tuple[list[dict], list[str]]:
    if tools is None:
        return [], []
    if not isinstance(tools, list):
        raise InvalidRequest("tools: a list of tools is required.", param="tools")
    functions: list[dict] = []
    dropped: list[str] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools[{i}]: a tool object is required.", param=f"tools[{i}]")
        name = tool.get("name")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            # Server tools (web_search_*, web_fetch_*, code_execution_*, bash_*, text_editor_*...)
            # run at Anthropic; no Chat Completions upstream can run them [LOSSY].
            dropped.append(name if isinstance(name, str) and name else str(kind))
            continue
        if not isinstance(name, str) or not name:
            at = f"tools[{i}].name"
            raise InvalidRequest(f"{at}: a non-empty string is required.", param=at)
        function: dict = {"name": chat_function_name(name)}
        description = tool.get("description")
        if isinstance(description, str) and description:
            function["description"] = description
        schema = tool.get("input_schema")
        function["parameters"] = schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
        if tool.get("strict") is True:
            function["strict"] = True
        functions.append({"type": "function", "function": function})
    return functions, dropped


def chat_tool_choice(choice: object, sent_names: set[str]) -> tuple[object | None, bool]:
    """(OpenAI tool_choice, None to omit it; True when parallel tool calls must be turned off)."""
    if choice is None:
        return None, False
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: an object is required.", param="tool_choice")
    parallel = choice.get("disable_parallel_tool_use") is True
    kind = choice.get("type")
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", False  # parallel_tool_calls means nothing without tool calls
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("tool_choice.name: a tool name is required.", param="tool_choice.name")
        sent = chat_function_name(name)
        if sent not in sent_names:
            return "auto", parallel  # the forced tool was a dropped server tool
        return {"type": "function", "function": {"name": sent}}, parallel
    return None, parallel  # unknown choice type: let the upstream default apply


def reasoning_effort(thinking: object, output_config: object) -> str | None:
    """OpenAI's effort ("low", "medium", "high") for the thinking settings, or None to send none."""
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not is_int(budget):
            return None
        if budget < EFFORT_LOW_BELOW_TOKENS:
            return "low"
        return "medium" if budget < EFFORT_MEDIUM_BELOW_TOKENS else "high"
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    return _EFFORT_BY_ANTHROPIC_EFFORT.get(effort) if isinstance(effort, str) else None


def chat_response_format(output_config: object) -> dict | None:
    """Chat's nested `response_format` for a json_schema `output_config.format`, or None."""
    fmt = output_config.get("format") if isinstance(output_config, dict) else None
    schema = fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    if not isinstance(schema, dict):
        return None
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


# ---------------------------------------------------------------------------------------------
# Request: messages
# ---------------------------------------------------------------------------------------------


def _chat_messages(messages: list, target: ChatTarget, history_names: list[str]) -> list[dict]:
    out: list[dict] = []
    held_notes: list[dict] = []  # system turns waiting for the tool messages they arrived before
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
            assistant = _assistant_message(blocks, where, target, history_names)
            if assistant is not None:
                out.append(assistant)
        elif role == "system":
            text = "\n\n".join(_text_parts_of(blocks, where))
            if not text:
                continue
            note = {"role": "user", "content": SYSTEM_NOTE_PREFIX + text}
            awaiting_tool_results = bool(out) and bool(out[-1].get("tool_calls"))
            (held_notes if awaiting_tool_results else out).append(note)
        else:
            tool_messages, attachments, parts = _user_turn(blocks, where)
            out += tool_messages
            if attachments:
                out.append(_user_message(attachments))
            out += held_notes
            held_notes = []
            if parts:
                out.append(_user_message(parts))
    return out + held_notes


def content_blocks(content: object, where: str) -> list[dict]:
    """A message's content as a list of block objects (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{where}.content: a string or a list of content blocks is required.", param=f"{where}.content"
        )
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            at = f"{where}.content[{j}]"
            raise InvalidRequest(f"{at}: a content block object with a `type` is required.", param=at)
    return content


def _text_parts_of(blocks: list[dict], where: str) -> list[str]:
    texts = []
    for j, block in enumerate(blocks):
        for part in chat_user_parts(block, f"{where}.content[{j}]"):
            if part["type"] == "text":
                texts.append(part["text"])
    return texts


def _user_message(parts: list[dict]) -> dict:
    # A lone text part is sent as a plain string: the form every OpenAI-compatible server accepts.
    if len(parts) == 1 and parts[0]["type"] == "text":
        return {"role": "user", "content": parts[0]["text"]}
    return {"role": "user", "content": parts}


def _user_turn(blocks: list[dict], where: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(tool messages, parts attached from tool results, the turn's own parts)."""
    tool_messages: list[dict] = []
    attachments: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        if block["type"] == "tool_result":
            message, attached = _tool_message(block, at)
            tool_messages.append(message)
            if attached:
                label = f"Attachments of tool result {message['tool_call_id']}:"
                attachments += [{"type": "text", "text": label}, *attached]
        else:
            parts += chat_user_parts(block, at)
    return tool_messages, attachments, parts


def _tool_message(block: dict, at: str) -> tuple[dict, list[dict]]:
    """One OpenAI `tool` message, and the non-text parts it cannot carry."""
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise InvalidRequest(f"{at}.tool_use_id: a non-empty string is required.", param=f"{at}.tool_use_id")
    content = block.get("content")
    if content is None:
        content = []
    elif isinstance(content, str):
        content = [{"type": "text", "text": content}]
    content = content_blocks(content, at)
    texts: list[str] = []
    attached: list[dict] = []
    for k, inner in enumerate(content):
        for part in chat_user_parts(inner, f"{at}.content[{k}]"):
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                attached.append(part)  # never stringify base64 into the tool text
    text = "\n\n".join(texts)
    if not text:
        text = TOOL_RESULT_ATTACHED_TEXT if attached else EMPTY_TOOL_RESULT_TEXT
    if block.get("is_error") is True:
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": plain_tool_id(tool_use_id), "content": text}, attached


_NOT_USER_CONTENT = ("tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use")


def chat_user_parts(block: dict, at: str) -> list[dict]:
    """OpenAI content parts for one Anthropic block in a user turn or a tool result."""
    kind = block["type"]
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"{at}.text: a string is required.", param=f"{at}.text")
        return [{"type": "text", "text": text}] if text else []
    if kind == "image":
        return _image_parts(block.get("source"))
    if kind == "document":
        return _document_parts(block)
    if kind == "search_result":
        lines = [block.get("title"), block.get("source")]
        lines = [line for line in lines if isinstance(line, str) and line]
        lines += [part["text"] for part in _nested_parts(block.get("content")) if part["type"] == "text"]
        return [{"type": "text", "text": "\n".join(lines)}] if lines else []
    if kind == "tool_reference":
        name = block.get("tool_name")
        return [{"type": "text", "text": f"Tool reference: {name}"}] if isinstance(name, str) and name else []
    if kind in _NOT_USER_CONTENT or kind.endswith("_tool_result"):
        return []  # belongs to the assistant side or to Anthropic's server tools [LOSSY]
    text = block.get("text")  # an unknown block: keep its text if it has one
    return [{"type": "text", "text": text}] if isinstance(text, str) and text else []


def _nested_parts(content: object) -> list[dict]:
    # Content nested in search results and content-sourced documents: text and images only.
    parts: list[dict] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            parts.append({"type": "text", "text": block["text"]})
        elif block.get("type") == "image":
            parts += _image_parts(block.get("source"))
    return parts


def _image_parts(source: object) -> list[dict]:
    if not isinstance(source, dict):
        return []
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type") or "image/png"
        url = f"data:{media_type};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        return []  # file ids and unknown sources cannot be expressed [LOSSY]
    return [{"type": "image_url", "image_url": {"url": url}}]


def _document_parts(block: dict) -> list[dict]:
    source = block.get("source")
    if not isinstance(source, dict):
        return []
    title = block.get("title") if isinstance(block.get("title"), str) else ""
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type") or "application/pdf"
        filename = title or ("document.pdf" if media_type == "application/pdf" else "document")
        data_uri = f"data:{media_type};base64,{source['data']}"
        return [{"type": "file", "file": {"filename": filename, "file_data": data_uri}}]
    if kind == "text" and isinstance(source.get("data"), str):
        body = source["data"]
        text = f"{title}\n\n{body}" if title else body
        return [{"type": "text", "text": text}] if text else []
    if kind == "content":
        parts = _nested_parts(source.get("content"))
        if title:
            parts.insert(0, {"type": "text", "text": title})
        return parts
    if kind == "url" and isinstance(source.get("url"), str):
        label = f"Document {title}" if title else "Document"
        return [{"type": "text", "text": f"{label}: {source['url']}"}]
    return []


def _assistant_message(
    blocks: list[dict], where: str, target: ChatTarget, history_names: list[str]
) -> dict | None:
    """The assistant turn as one OpenAI message, or None when nothing of it survives."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block["type"]
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"{at}.text: a string is required.", param=f"{at}.text")
            if text:
                texts.append(text)
        elif kind == "tool_use":
            calls.append(_tool_call(block, at, target))
            history_names.append(block["name"])
        elif kind == "thinking":
            thinking = block.get("thinking")
            if isinstance(thinking, str) and thinking:
                reasoning.append(thinking)
        # redacted_thinking, server_tool_use, web_search_tool_result...: dropped [LOSSY]
    if not texts and not calls:
        return None
    message: dict = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if reasoning and target.reasoning_history_field:
        message[target.reasoning_history_field] = "\n\n".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def plain_tool_id(tool_id: str) -> str:
    """The id to send upstream: any carried thought signature removed, then made portable."""
    return portable_tool_id(split_signed_tool_id(tool_id)[0])


def _tool_call(block: dict, at: str, target: ChatTarget) -> dict:
    tool_id = block.get("id")
    name = block.get("name")
    if not isinstance(tool_id, str) or not tool_id:
        raise InvalidRequest(f"{at}.id: a non-empty string is required.", param=f"{at}.id")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{at}.name: a non-empty string is required.", param=f"{at}.name")
    arguments = dumps({} if block.get("input") is None else block["input"])  # compact, UTF-8, "{}" if empty
    plain_id, signature = split_signed_tool_id(tool_id)
    call: dict = {
        "id": portable_tool_id(plain_id),
        "type": "function",
        "function": {"name": chat_function_name(name), "arguments": arguments},
    }
    if signature is not None and target.thought_signatures:
        # Gemini 3 wants it back unchanged on the same call (PROTOCOLS 5.6).
        call["extra_content"] = {signature.namespace: {"thought_signature": signature.value}}
    return call
