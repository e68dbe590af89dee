"""Anthropic Messages answers to OpenAI Responses: whole responses and the stream translator.

The way back for translate/responses_to_anthropic_request.py (a Responses front on the Anthropic hub).
Pure: the response id, the timestamp and the requested model name come in a ResponsesContext, and item
ids are derived from the response id and the item's output index, so the same input always gives the
same bytes.

Response policies (RESPONSES.md 2, 4, 5, 6):
- One output item per content block, in block order: text -> `message` (one per text block, never
  merged, so a stream and a whole answer agree), thinking / redacted_thinking -> `reasoning` whose
  `encrypted_content` is the thinking envelope (below), tool_use -> `function_call` (compact JSON
  arguments; streamed arguments are Anthropic's fragments as sent). Calls to tools the request side
  bridged are turned back: `custom` tools -> `custom_tool_call{input}`, namespaced (MCP) tools ->
  the short name + `namespace`, client `tool_search` -> `tool_search_call{arguments: object}`.
  server_tool_use, web search results, citations and other block kinds are dropped [LOSSY].
- Item ids: `<prefix><response id without "resp_">_<output index>`, prefixes msg_ rs_ fc_ ctc_ tsc_,
  cut to 64 characters. `call_id` is Anthropic's tool_use id, unchanged.
- Status: end_turn, tool_use, stop_sequence, pause_turn -> completed; max_tokens and
  model_context_window_exceeded -> incomplete{max_output_tokens}; refusal -> incomplete{content_filter}
  plus a last `message` item carrying the refusal explanation as output_text (Codex drops messages
  with a `refusal` part). Items are `completed` even in an incomplete response: a stream has closed
  them before the stop reason arrives [LOSSY].
- Usage: input_tokens counts input, cache reads and cache writes; cached_tokens is the cache read,
  cache_write_tokens the cache write; reasoning_tokens only when the upstream reports thinking tokens.
- The response object echoes the request's parameters (context.echo), with the fields the SDK
  requires defaulted: parallel_tool_calls true, tool_choice "auto", tools [].
- Streams: response.created and response.in_progress first; every item `added` -> parts and deltas ->
  `done`, never interleaved, output_index in `added` order; one terminal event (completed,
  incomplete or failed), then the stream is over. Every event carries `sequence_number` 0, 1, 2, ...
  Bridged calls (custom, tool_search) are buffered and sent whole at their block stop. A thinking
  block's summary part opens at its first non-empty text, so thinking without text (omitted display)
  gives `summary: []`, as the whole answer does.
- Failures (an upstream `error` event, `fail()`, or EOF before a stop reason) give one
  response.failed whose error code is what Codex acts on: context_length_exceeded (compaction),
  server_is_overloaded, rate_limit_exceeded with "try again in N s" when the retry delay is known,
  insufficient_quota for billing errors, server_error for api_error, else the error's code or type.
  An EOF after message_delta carried a stop reason still finishes normally.

The thinking envelope (translate/responses_context.py, RESPONSES.md 8) holds the block verbatim:
Claude verifies thinking blocks it gets back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum

from .anthropic_reading import (
    AnthropicStreamReader,
    AnthropicUsage,
    StreamState,
)
from .errors import ProxyError, UpstreamUnavailable
from .responses_context import ResponsesContext, encode_thinking_envelope
from .sse import dumps

MAX_ITEM_ID_CHARS = 64
REFUSAL_FALLBACK_TEXT = "The model declined to respond."

# Anthropic stop_reason -> Responses incomplete_details.reason; anything else is "completed".
INCOMPLETE_REASON_BY_STOP_REASON = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}

# Anthropic error type -> Responses error code, where Codex needs a particular word (RESPONSES.md 4).
ERROR_CODE_BY_ANTHROPIC_TYPE = {
    "overloaded_error": "server_is_overloaded",
    "rate_limit_error": "rate_limit_exceeded",
    "billing_error": "insufficient_quota",
    "api_error": "server_error",
}

# Fields every response object carries; echoed request parameters never replace them.
_OWN_FIELDS = frozenset(
    {"id", "object", "created_at", "status", "error", "incomplete_details", "model", "output", "usage"}
)


# ---------------------------------------------------------------------------------------------
# Pieces shared by whole answers and streams
# ---------------------------------------------------------------------------------------------


def item_id(prefix: str, context: ResponsesContext, output_index: int) -> str:
    """A deterministic item id: the prefix, the response id's tail and the output index, ≤64 chars."""
    tail = context.response_id.removeprefix("resp_")
    suffix = f"_{output_index}"
    return prefix + tail[: MAX_ITEM_ID_CHARS - len(prefix) - len(suffix)] + suffix


class _CallKind(Enum):
    FUNCTION = "function_call"
    CUSTOM = "custom_tool_call"
    TOOL_SEARCH = "tool_search_call"


def _call_kind(name: object, context: ResponsesContext) -> _CallKind:
    if name in context.custom_tools:
        return _CallKind.CUSTOM
    if name in context.tool_search:
        return _CallKind.TOOL_SEARCH
    return _CallKind.FUNCTION


def _client_name(name: object, context: ResponsesContext) -> tuple[str, str | None]:
    """(the client's tool name, its namespace or None) for an Anthropic tool name."""
    name = name if isinstance(name, str) else ""
    namespaced = context.namespaced.get(name)
    if namespaced is not None:
        namespace, short = namespaced
        return short, namespace
    return name, None


def _custom_input(arguments: object) -> str:
    """The raw text of a bridged custom tool call: the one string argument `input`."""
    value = arguments.get("input") if isinstance(arguments, dict) else None
    if value is None:
        return ""
    return value if isinstance(value, str) else dumps(value)


def _message_item(context: ResponsesContext, index: int, text: str, status: str) -> dict:
    return {
        "id": item_id("msg_", context, index),
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [_text_part(text)] if status == "completed" else [],
    }


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": []}


def _reasoning_item(context: ResponsesContext, index: int, summary: str, block: dict | None) -> dict:
    item: dict = {
        "id": item_id("rs_", context, index),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if summary else [],
    }
    if block is not None:
        item["encrypted_content"] = encode_thinking_envelope(block)
    return item


def _call_item(
    context: ResponsesContext, index: int, kind: _CallKind, call_id: str, name: object, arguments: object, status: str
) -> dict:
    """A call item. `arguments` is the argument string for functions, the parsed input otherwise."""
    short, namespace = _client_name(name, context)
    if kind is _CallKind.CUSTOM:
        item: dict = {
            "id": item_id("ctc_", context, index),
            "type": "custom_tool_call",
            "call_id": call_id,
            "name": short,
            "input": _custom_input(arguments),
        }
    elif kind is _CallKind.TOOL_SEARCH:
        return {
            "id": item_id("tsc_", context, index),
            "type": "tool_search_call",
            "call_id": call_id,
            "execution": "client",
            "arguments": arguments if isinstance(arguments, dict) else {},
            "status": status,
        }
    else:
        item = {
            "id": item_id("fc_", context, index),
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": short,
            "arguments": arguments,
        }
    if namespace is not None:
        item["namespace"] = namespace
    return item


class _Usage(AnthropicUsage):
    """Anthropic token counts (translate/anthropic_reading.py), rendered for Responses."""

    def responses(self) -> dict:
        input_tokens = self.input_tokens + self.cache_read_tokens + self.cache_creation_tokens
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {
                "cached_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_creation_tokens,
            },
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": input_tokens + self.output_tokens,
        }


def _response_object(
    context: ResponsesContext,
    *,
    status: str,
    output: list[dict],
    usage: dict | None,
    incomplete_reason: str | None = None,
    error: dict | None = None,
) -> dict:
    response: dict = {
        "id": context.response_id,
        "object": "response",
        "created_at": context.created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "model": context.requested_model,
        "output": output,
    }
    for key, value in context.echo.items():
        if key not in _OWN_FIELDS:
            response[key] = value
    response.setdefault("parallel_tool_calls", True)
    response.setdefault("tool_choice", "auto")
    response.setdefault("tools", [])
    response["usage"] = usage
    return response


def _refusal_text(stop_details: object) -> str:
    explanation = stop_details.get("explanation") if isinstance(stop_details, dict) else None
    return explanation if isinstance(explanation, str) and explanation else REFUSAL_FALLBACK_TEXT


def responses_error(error: ProxyError) -> dict:
    """The `error` object of a failed response: the code Codex acts on and the message."""
    message = error.message
    if "prompt is too long" in message.lower() or error.code == "context_length_exceeded":
        code = "context_length_exceeded"
    elif error.error_type in ERROR_CODE_BY_ANTHROPIC_TYPE:
        code = ERROR_CODE_BY_ANTHROPIC_TYPE[error.error_type]
    else:
        code = error.code or error.error_type
    if code == "rate_limit_exceeded":
        seconds = _retry_seconds(error.retry_after)
        if seconds is not None and "try again in" not in message.lower():
            # Codex retries after N on "try again in N s" (RESPONSES.md 4).
            message = f"{message.rstrip()} Please try again in {seconds}s."
    return {"code": code, "message": message}


def _retry_seconds(retry_after: str | None) -> str | None:
    """A retry-after header value in seconds, as text, or None (HTTP dates are not used here)."""
    try:
        seconds = float(retry_after) if retry_after is not None else None
    except ValueError:
        return None
    if seconds is None or seconds < 0 or not math.isfinite(seconds):
        return None
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"


# ---------------------------------------------------------------------------------------------
# Whole answers
# ---------------------------------------------------------------------------------------------


def anthropic_to_responses_response(message: dict, context: ResponsesContext) -> dict:
    """Translate an Anthropic Messages response body into a Responses `response` object."""
    output: list[dict] = []
    for block in message.get("content") or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        index = len(output)
        if kind == "text":
            output.append(_message_item(context, index, block.get("text") or "", "completed"))
        elif kind == "thinking":
            output.append(_reasoning_item(context, index, block.get("thinking") or "", block))
        elif kind == "redacted_thinking":
            output.append(_reasoning_item(context, index, "", block))
        elif kind == "tool_use":
            call_kind = _call_kind(block.get("name"), context)
            arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
            if call_kind is _CallKind.FUNCTION:
                arguments = dumps(arguments)
            output.append(
                _call_item(context, index, call_kind, block.get("id") or "", block.get("name"), arguments, "completed")
            )
        # server_tool_use, web_search_tool_result, ...: no Responses form here [LOSSY]
    stop_reason = message.get("stop_reason")
    if stop_reason == "refusal":
        output.append(_message_item(context, len(output), _refusal_text(message.get("stop_details")), "completed"))
    usage = _Usage()
    usage.update(message.get("usage"))
    incomplete_reason = INCOMPLETE_REASON_BY_STOP_REASON.get(stop_reason)
    return _response_object(
        context,
        status="incomplete" if incomplete_reason else "completed",
        output=output,
        usage=usage.responses(),
        incomplete_reason=incomplete_reason,
    )


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


class _BlockKind(Enum):
    TEXT = "text"
    THINKING = "thinking"
    REDACTED = "redacted thinking"
    FUNCTION = "function call, streamed"
    BRIDGED = "bridged call, buffered"
    IGNORED = "ignored"


@dataclass
class _Block:
    """One open Anthropic content block and the output item it becomes."""

    kind: _BlockKind
    output_index: int = -1  # -1 until the item is added (bridged calls are added at their stop)
    item_id: str = ""
    parts: list[str] = field(default_factory=list)  # text, thinking text or argument fragments
    signature: str = ""
    start_block: dict = field(default_factory=dict)  # the content_block of content_block_start
    summary_open: bool = False  # a reasoning summary part was added


class AnthropicToResponsesStream(AnthropicStreamReader):
    """Translate Anthropic stream events into Responses stream events, one `feed()` per event.

    Each method returns the events to send to the client, in order: dicts with "type" and
    "sequence_number" (encode them with `encode_responses_event`). The last one is always
    response.completed, response.incomplete or response.failed; once `finished` is true the
    stream is over and further calls return []: close the body. Token counts (Anthropic's meaning:
    `input_tokens` excludes the cache) are readable at any time for the access log.
    """

    def __init__(self, context: ResponsesContext) -> None:
        # The response being written
        self._context = context
        self._sequence = 0
        self._output: list[dict] = []  # items done, by output index
        self._next_output_index = 0
        # Upstream progress
        self._state = StreamState.AWAITING_START
        self._blocks: dict[object, _Block] = {}
        self._open: _Block | None = None
        self._stop_reason: str | None = None
        self._stop_details: dict | None = None
        self._usage = _Usage()

    # -- public surface ----------------------------------------------------------------------

    def close(self) -> list[dict]:
        """The upstream ended. Finish normally if the stop reason arrived, else fail the response."""
        if self.finished:
            return []
        if self._state is StreamState.STREAMING and self._stop_reason is not None:
            return self._finish()
        return self.fail(UpstreamUnavailable("The upstream stream ended before the message was complete."))

    def fail(self, error: ProxyError) -> list[dict]:
        """The stream cannot go on: return response.failed (after response.created if not yet sent)."""
        if self.finished:
            return []
        out = self._start() if self._state is StreamState.AWAITING_START else []
        self._state = StreamState.FAILED
        response = _response_object(
            self._context,
            status="failed",
            output=list(self._output),
            usage=self._usage.responses(),
            error=responses_error(error),
        )
        out.append(self._event("response.failed", response=response))
        return out

    def keepalive(self) -> list[dict]:
        """A response.in_progress to send when the upstream is quiet: Codex ignores SSE comments."""
        if self._state is not StreamState.STREAMING:
            return []
        return [self._event("response.in_progress", response=self._in_progress())]

    # -- event handlers ----------------------------------------------------------------------

    def _on_message_start(self, data: dict) -> list[dict]:
        message = data.get("message")
        self._usage.update(message.get("usage") if isinstance(message, dict) else None)
        return self._start()

    def _on_content_block_start(self, data: dict) -> list[dict]:
        out = self._close_open_block()  # Anthropic never interleaves blocks; if it did, end the last
        start = data.get("content_block")
        start = start if isinstance(start, dict) else {}
        kind = start.get("type")
        if kind == "text":
            block = _Block(_BlockKind.TEXT, start_block=start)
            out += self._add(block, "msg_", _message_item(self._context, self._next_output_index, "", "in_progress"))
            out.append(self._event(
                "response.content_part.added", item_id=block.item_id, output_index=block.output_index,
                content_index=0, part=_text_part(""),
            ))
            out += self._text(block, start.get("text") or "")
        elif kind in ("thinking", "redacted_thinking"):
            block = _Block(_BlockKind.THINKING if kind == "thinking" else _BlockKind.REDACTED, start_block=start)
            out += self._add(block, "rs_", _reasoning_item(self._context, self._next_output_index, "", None))
            if kind == "thinking":
                out += self._thinking(block, start.get("thinking") or "")
                block.signature = start.get("signature") or ""
        elif kind == "tool_use" and _call_kind(start.get("name"), self._context) is _CallKind.FUNCTION:
            block = _Block(_BlockKind.FUNCTION, start_block=start)
            item = _call_item(
                self._context, self._next_output_index, _CallKind.FUNCTION,
                start.get("id") or "", start.get("name"), "", "in_progress",
            )
            out += self._add(block, "fc_", item)
        elif kind == "tool_use":
            block = _Block(_BlockKind.BRIDGED, start_block=start)
        else:
            # server_tool_use, web_search_tool_result, ...: not for Responses [LOSSY]
            block = _Block(_BlockKind.IGNORED)
        self._blocks[data.get("index")] = block
        self._open = block
        return out

    def _on_content_block_delta(self, data: dict) -> list[dict]:
        block = self._blocks.get(data.get("index"))
        delta = data.get("delta")
        if block is None or block is not self._open or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and block.kind is _BlockKind.TEXT:
            return self._text(block, delta.get("text") or "")
        if kind == "thinking_delta" and block.kind is _BlockKind.THINKING:
            return self._thinking(block, delta.get("thinking") or "")
        if kind == "signature_delta" and block.kind is _BlockKind.THINKING:
            block.signature += delta.get("signature") or ""
            return []
        if kind == "input_json_delta" and block.kind in (_BlockKind.FUNCTION, _BlockKind.BRIDGED):
            fragment = delta.get("partial_json") or ""
            if not fragment:
                return []
            block.parts.append(fragment)
            if block.kind is _BlockKind.BRIDGED:
                return []
            return [self._event(
                "response.function_call_arguments.delta", item_id=block.item_id,
                output_index=block.output_index, delta=fragment,
            )]
        return []  # citations_delta, deltas of ignored blocks [LOSSY]

    def _on_content_block_stop(self, data: dict) -> list[dict]:
        block = self._blocks.get(data.get("index"))
        if block is None or block is not self._open:
            return []
        return self._close_open_block()

    def _on_message_delta(self, data: dict) -> list[dict]:
        delta = data.get("delta")
        if isinstance(delta, dict):
            if delta.get("stop_reason") is not None:
                self._stop_reason = delta["stop_reason"]
            if isinstance(delta.get("stop_details"), dict):
                self._stop_details = delta["stop_details"]
        self._usage.update(data.get("usage"))
        return []

    def _on_message_stop(self, data: dict) -> list[dict]:
        return self._finish()

    # -- output ------------------------------------------------------------------------------

    def _event(self, kind: str, **fields: object) -> dict:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _in_progress(self) -> dict:
        return _response_object(self._context, status="in_progress", output=[], usage=None)

    def _start(self) -> list[dict]:
        self._state = StreamState.STREAMING
        return [
            self._event("response.created", response=self._in_progress()),
            self._event("response.in_progress", response=self._in_progress()),
        ]

    def _add(self, block: _Block, prefix: str, item: dict) -> list[dict]:
        block.output_index = self._next_output_index
        block.item_id = item_id(prefix, self._context, block.output_index)
        self._next_output_index += 1
        return [self._event("response.output_item.added", output_index=block.output_index, item=item)]

    def _done(self, block: _Block, item: dict) -> dict:
        self._output.append(item)
        return self._event("response.output_item.done", output_index=block.output_index, item=item)

    def _text(self, block: _Block, text: str) -> list[dict]:
        if not text:
            return []
        block.parts.append(text)
        return [self._event(
            "response.output_text.delta", item_id=block.item_id, output_index=block.output_index,
            content_index=0, delta=text, logprobs=[],
        )]

    def _thinking(self, block: _Block, text: str) -> list[dict]:
        if not text:
            return []
        out = []
        if not block.summary_open:
            block.summary_open = True
            out.append(self._event(
                "response.reasoning_summary_part.added", item_id=block.item_id, output_index=block.output_index,
                summary_index=0, part={"type": "summary_text", "text": ""},
            ))
        block.parts.append(text)
        out.append(self._event(
            "response.reasoning_summary_text.delta", item_id=block.item_id, output_index=block.output_index,
            summary_index=0, delta=text,
        ))
        return out

    def _close_open_block(self) -> list[dict]:
        block, self._open = self._open, None
        if block is None:
            return []
        if block.kind is _BlockKind.TEXT:
            return self._close_text(block)
        if block.kind in (_BlockKind.THINKING, _BlockKind.REDACTED):
            return self._close_reasoning(block)
        if block.kind is _BlockKind.FUNCTION:
            return self._close_function(block)
        if block.kind is _BlockKind.BRIDGED:
            return self._close_bridged(block)
        return []

    def _close_text(self, block: _Block) -> list[dict]:
        text = "".join(block.parts)
        where = {"item_id": block.item_id, "output_index": block.output_index, "content_index": 0}
        return [
            self._event("response.output_text.done", **where, text=text, logprobs=[]),
            self._event("response.content_part.done", **where, part=_text_part(text)),
            self._done(block, _message_item(self._context, block.output_index, text, "completed")),
        ]

    def _close_reasoning(self, block: _Block) -> list[dict]:
        out = []
        if block.kind is _BlockKind.REDACTED:
            summary, original = "", {"type": "redacted_thinking", "data": block.start_block.get("data") or ""}
        else:
            summary = "".join(block.parts)
            original = {"type": "thinking", "thinking": summary, "signature": block.signature}
        if block.summary_open:
            where = {"item_id": block.item_id, "output_index": block.output_index, "summary_index": 0}
            out.append(self._event("response.reasoning_summary_text.done", **where, text=summary))
            out.append(self._event(
                "response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": summary}
            ))
        out.append(self._done(block, _reasoning_item(self._context, block.output_index, summary, original)))
        return out

    def _close_function(self, block: _Block) -> list[dict]:
        out = []
        if not block.parts:
            # No input arrived as deltas: send the input given at the start, or "{}", since clients
            # json.loads() the arguments and "" is not JSON.
            start_input = block.start_block.get("input")
            arguments = dumps(start_input if isinstance(start_input, dict) else {})
            block.parts.append(arguments)
            out.append(self._event(
                "response.function_call_arguments.delta", item_id=block.item_id,
                output_index=block.output_index, delta=arguments,
            ))
        arguments = "".join(block.parts)
        item = _call_item(
            self._context, block.output_index, _CallKind.FUNCTION,
            block.start_block.get("id") or "", block.start_block.get("name"), arguments, "completed",
        )
        out.append(self._event(
            "response.function_call_arguments.done", item_id=block.item_id, output_index=block.output_index,
            name=item["name"], arguments=arguments,
        ))
        out.append(self._done(block, item))
        return out

    def _close_bridged(self, block: _Block) -> list[dict]:
        start = block.start_block
        try:
            parsed = json.loads("".join(block.parts)) if block.parts else start.get("input")
        except (ValueError, RecursionError):
            parsed = None  # cut short (max_tokens): the call goes out with empty input
        parsed = parsed if isinstance(parsed, dict) else {}
        kind = _call_kind(start.get("name"), self._context)
        call_id, name = start.get("id") or "", start.get("name")
        prefix = "ctc_" if kind is _CallKind.CUSTOM else "tsc_"
        added = _call_item(self._context, self._next_output_index, kind, call_id, name, {}, "in_progress")
        out = self._add(block, prefix, added)
        item = _call_item(self._context, block.output_index, kind, call_id, name, parsed, "completed")
        if kind is _CallKind.CUSTOM:
            where = {"item_id": block.item_id, "output_index": block.output_index}
            if item["input"]:
                out.append(self._event("response.custom_tool_call_input.delta", **where, delta=item["input"]))
            out.append(self._event("response.custom_tool_call_input.done", **where, input=item["input"]))
        out.append(self._done(block, item))
        return out

    def _finish(self) -> list[dict]:
        out = self._close_open_block()
        if self._stop_reason == "refusal":
            refusal = _Block(_BlockKind.TEXT, parts=[_refusal_text(self._stop_details)])
            item = _message_item(self._context, self._next_output_index, "", "in_progress")
            out += self._add(refusal, "msg_", item)
            where = {"item_id": refusal.item_id, "output_index": refusal.output_index, "content_index": 0}
            out.append(self._event("response.content_part.added", **where, part=_text_part("")))
            out.append(self._event("response.output_text.delta", **where, delta=refusal.parts[0], logprobs=[]))
            out += self._close_text(refusal)
        incomplete_reason = INCOMPLETE_REASON_BY_STOP_REASON.get(self._stop_reason)
        response = _response_object(
            self._context,
            status="incomplete" if incomplete_reason else "completed",
            output=list(self._output),
            usage=self._usage.responses(),
            incomplete_reason=incomplete_reason,
        )
        terminal = "response.incomplete" if incomplete_reason else "response.completed"
        out.append(self._event(terminal, response=response))
        self._state = StreamState.DONE
        return out


def encode_responses_event(event: dict) -> bytes:
    """`event: <type>` plus `data: <json>`: clients dispatch on the JSON type, some on the name."""
    return f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode()
