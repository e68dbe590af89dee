"""OpenAI Responses answers to Anthropic Messages: the stream translator and whole answers.

The way back for an Anthropic front on a Responses upstream (POST /v1/responses on OpenAI, for the
codex and pro models, RESPONSES.md 8). Pure: the message id and the requested model come in, so the
same upstream bytes always give the same events.

Policies (RESPONSES.md 4, 5, 6, 8; PROTOCOLS 1.8, 3.4, 4.1):
- Output items in order: `message` -> one text block per `output_text` or `refusal` part (a refusal
  also makes the stop_reason `refusal`); `reasoning` -> a thinking block whose text is the summary
  texts joined with "\\n\\n" (the `reasoning_text` content when there is no summary) and whose
  signature is the reasoning envelope (translate/responses_context.py `encode_reasoning_signature`),
  so the next turn can send the item back under `store: false`; a reasoning item without any text
  still becomes a thinking block, with empty thinking. `function_call` -> tool_use{id: call_id, name
  restored through `tool_names`, input: the parsed arguments (the chat translator's `tool_input`)};
  `custom_tool_call` -> tool_use{input: {"input": raw text}}. Hosted-tool items (web_search_call,
  file_search_call, code_interpreter_call, mcp_*, image_generation_call...) and every other item
  type are dropped, with their events [LOSSY].
- Text blocks follow the chat translator's rule: a part whose text is empty or whitespace only
  gives no block (Anthropic rejects such blocks when the client sends them back), and whitespace
  before a part's first real character waits for it.
- stop_reason: completed -> tool_use when a call item is present, else refusal when a refusal part
  is, else end_turn; incomplete -> refusal for content_filter, max_tokens for max_output_tokens and
  any other reason (an answer that was cut short is never reported as finished), whatever items it
  holds; failed -> the error (raised whole, an `error` event in a stream). stop_sequence is always
  null: Responses has no stop sequences.
- Usage: cache_read_input_tokens = cached_tokens, cache_creation_input_tokens = cache_write_tokens,
  input_tokens = input_tokens minus both (never below 0), output_tokens = output_tokens (reasoning
  included). No usage means zeros.
- Errors (`response.failed`, an `error` event, an `error` object in a whole answer) keep their
  meaning through the chat translator's `upstream_error`: context_length_exceeded -> 400 "prompt is
  too long: ...", rate_limit_exceeded -> 429, insufficient_quota -> 402; server_is_overloaded and
  slow_down -> 529 overloaded_error; any other code -> 500 api_error.
- Streams: events are dispatched on the JSON `type` (the SSE `event:` name is not trusted).
  message_start goes out with zero usage at the first event (the real numbers ride on
  message_delta). A thinking or tool_use block opens at its item's `output_item.added`; a text
  block at its part's first non-whitespace text. Blocks are strictly one at a time with indexes
  from 0: items never interleave upstream (RESPONSES.md 4), and output for an item whose block has
  already closed ends the stream with an error event rather than landing in the wrong block.
  Summary deltas of a new `summary_index` are preceded by "\\n\\n"; `reasoning_text` deltas are used
  only when no summary delta came first for that item. The complete item at `output_item.done`
  fills in what the deltas did not carry (arguments or text sent only there) and gives the
  reasoning envelope, sent as the thinking block's signature_delta (`encrypted_content` arrives only
  there). The final response of response.completed / response.incomplete does the same for items
  whose events never came, so a server that sends only the terminal event still gives every block.
- Custom tool input is raw text; its tool_use input is {"input": text}, streamed as the JSON text
  of that object in pieces (`{"input":"` + escaped text + `"}`).
- An `error` event or response.failed closes the open block and ends the stream with one Anthropic
  `error` event (later events are ignored: OpenAI sends response.failed after an `error` event).
  `fail()` (read error, idle timeout) does the same. An EOF before response.completed,
  response.incomplete or response.failed is an error event too, never a silent end_turn: the client
  would keep a truncated answer (PROTOCOLS 4.1 step 9).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

from translate.chat_to_anthropic_response import (
    StreamBroken,
    TableDrivenStream,
    anthropic_usage,
    is_int,
    tool_input,
    upstream_error,
)
from translate.errors import ProxyError, UpstreamUnavailable, anthropic_error_body
from translate.responses_context import encode_reasoning_signature
from translate.sse import SSEEvent, dumps
from translate.tools import portable_tool_id

# Name used in our own error messages about the upstream.
UPSTREAM_LABEL = "OpenAI Responses"

# Responses error codes whose status the chat translator's mapping does not know (RESPONSES.md 4:
# Codex reads both as "server overloaded"). Other codes: rate_limit_exceeded, insufficient_quota and
# context_length_exceeded are mapped there; the rest are a 500.
_STATUS_BY_ERROR_CODE = {
    "server_is_overloaded": 529,
    "slow_down": 529,
}
_DEFAULT_ERROR_STATUS = 500

# Output item type -> the Anthropic block it becomes; other item types are dropped.
_BLOCK_KIND_BY_ITEM_TYPE = {
    "message": "text",
    "reasoning": "thinking",
    "function_call": "tool_use",
    "custom_tool_call": "tool_use",
}

_CUSTOM_INPUT_OPENING = '{"input":"'
_CUSTOM_INPUT_CLOSING = '"}'


# ---------------------------------------------------------------------------------------------
# Reading Responses answers (shared by the whole answer and the stream)
# ---------------------------------------------------------------------------------------------


def responses_error(error: object) -> ProxyError:
    """The ProxyError for a Responses `error` object ({code, message, param}, maybe `type`)."""
    error = dict(error) if isinstance(error, dict) else {}
    if not isinstance(error.get("message"), str) or not error["message"]:
        error["message"] = f"{UPSTREAM_LABEL} upstream reported a failure without a message."
    code = error.get("code")
    status = _STATUS_BY_ERROR_CODE.get(code) if isinstance(code, str) else None
    if status is not None:
        error.pop("type", None)  # the code is the more precise word (a "server_error" type would win)
    return upstream_error({"error": error}, default_status=status or _DEFAULT_ERROR_STATUS)


def responses_usage(usage: object) -> dict:
    """Anthropic usage from a Responses usage object (zeros when absent)."""
    usage = usage if isinstance(usage, dict) else {}
    # Same arithmetic as Chat's (PROTOCOLS 3.4); only the field names differ.
    return anthropic_usage({
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "prompt_tokens_details": usage.get("input_tokens_details"),
    })


def stop_reason(status: str, incomplete_reason: object, has_tool_use: bool, refused: bool) -> str:
    """The Anthropic stop_reason of a completed or incomplete response."""
    if status == "incomplete":
        return "refusal" if incomplete_reason == "content_filter" else "max_tokens"
    if has_tool_use:
        return "tool_use"
    return "refusal" if refused else "end_turn"


def _texts(parts: object) -> list[str]:
    """The non-empty `text` of each part of a summary or content list."""
    if not isinstance(parts, list):
        return []
    return [part["text"] for part in parts if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]]


def reasoning_text(item: dict, source: str | None = None) -> str:
    """A reasoning item's thinking: summaries joined with "\\n\\n", else its reasoning_text content.

    `source` ("summary" or "content") forces one of the two, as a stream does once it has begun.
    """
    summary, content = _texts(item.get("summary")), _texts(item.get("content"))
    chosen = content if source == "content" or (source is None and not summary) else summary
    return "\n\n".join(chosen)


def part_text(part: object) -> tuple[str, bool]:
    """(text, is_refusal) of a message content part; ("", False) for parts that carry no text."""
    if not isinstance(part, dict):
        return "", False
    if part.get("type") == "refusal":
        refusal = part.get("refusal")
        return (refusal if isinstance(refusal, str) else ""), True
    text = part.get("text")
    return (text if isinstance(text, str) and part.get("type") == "output_text" else ""), False


def _item_type(item: dict) -> str:
    kind = item.get("type")
    return kind if isinstance(kind, str) else ""


def _tool_use_start(item: dict, output_index: int, *, message_id: str, tool_names: dict[str, str]) -> dict:
    """A tool_use block for a call item, with `input: {}` (the input arrives separately)."""
    name = item.get("name") if isinstance(item.get("name"), str) else ""
    return {
        "type": "tool_use",
        "id": portable_tool_id(item.get("call_id"), seed=f"{message_id}:{output_index}"),
        "name": tool_names.get(name, name),
        "input": {},
    }


def _tool_arguments(item: dict) -> str:
    """The raw text a call item carries: a function's JSON arguments or a custom tool's input."""
    value = item.get("input" if _item_type(item) == "custom_tool_call" else "arguments")
    if isinstance(value, dict):  # a server that sends parsed arguments
        return dumps(value)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------------------------
# Whole response: Responses -> Anthropic
# ---------------------------------------------------------------------------------------------


def responses_to_anthropic_response(
    answer: dict,
    *,
    requested_model: str,
    message_id: str,
    tool_names: dict[str, str],
) -> dict:
    """Translate a Responses `response` object into an Anthropic message.

    `tool_names` maps the names sent upstream to the client's (shortened names are restored);
    `requested_model` becomes the message's `model`. Raises the ProxyError its `error` means for a
    failed response (or a body carrying an `error` object), and UpstreamUnavailable (502) for a
    body that is not a finished response object. The caller sends the message to the client.
    """
    if not isinstance(answer, dict):
        raise UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream returned a response that is not a JSON object.")
    status = answer.get("status") or "completed"
    if status == "failed" or answer.get("error") is not None:
        raise responses_error(answer.get("error"))
    if status not in ("completed", "incomplete"):
        raise UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream returned a response whose status is {status!r}.")

    content: list[dict] = []
    refused = False
    output = answer.get("output")
    for output_index, item in enumerate(output if isinstance(output, list) else []):
        if not isinstance(item, dict):
            continue
        kind = _item_type(item)
        if kind == "message":
            parts = item.get("content")
            for part in parts if isinstance(parts, list) else []:
                text, is_refusal = part_text(part)
                refused = refused or is_refusal
                if text.strip():
                    content.append({"type": "text", "text": text})
        elif kind == "reasoning":
            content.append({
                "type": "thinking",
                "thinking": reasoning_text(item),
                "signature": encode_reasoning_signature(item),
            })
        elif kind in ("function_call", "custom_tool_call"):
            block = _tool_use_start(item, output_index, message_id=message_id, tool_names=tool_names)
            arguments = _tool_arguments(item)
            block["input"] = {"input": arguments} if kind == "custom_tool_call" else tool_input(arguments)
            content.append(block)
        # Hosted-tool items and unknown types: dropped [LOSSY].

    details = answer.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop_reason(status, reason, has_tool_use, refused),
        "stop_sequence": None,
        "usage": responses_usage(answer.get("usage")),
    }


# ---------------------------------------------------------------------------------------------
# Stream: Responses events -> Anthropic events
# ---------------------------------------------------------------------------------------------


class StreamState(Enum):
    BEFORE_START = "before_start"  # nothing translated; message_start not sent
    STREAMING = "streaming"  # message_start sent; items become blocks
    DONE = "done"  # message_stop or an error event sent; everything else is ignored


# (state, what happened) -> next state. "event" = an upstream event that needs message_start,
# "end" = response.completed or response.incomplete, "fail" = an error event goes out.
_TRANSITIONS: dict[tuple[StreamState, str], StreamState] = {
    (StreamState.BEFORE_START, "event"): StreamState.STREAMING,
    (StreamState.STREAMING, "event"): StreamState.STREAMING,
    (StreamState.STREAMING, "end"): StreamState.DONE,
    (StreamState.BEFORE_START, "fail"): StreamState.DONE,
    (StreamState.STREAMING, "fail"): StreamState.DONE,
}


@dataclass
class _Item:
    """One upstream output item, from its first event until the stream ends."""

    output_index: int
    item: dict  # as `added` gave it; replaced by the complete item at `done`
    pieces: dict[int, _Piece] = field(default_factory=dict)  # message: by content_index; others: 0
    done: bool = False

    @property
    def kind(self) -> str:
        return _item_type(self.item)

    @property
    def block_kind(self) -> str | None:
        return _BLOCK_KIND_BY_ITEM_TYPE.get(self.kind)

    def piece(self, key: int = 0) -> _Piece:
        if key not in self.pieces:
            self.pieces[key] = _Piece(owner=self)
        return self.pieces[key]


@dataclass
class _Piece:
    """What becomes one Anthropic block: a message part, a reasoning item or a call."""

    owner: _Item
    # Upstream text so far: text (whitespace held before the block opens included), thinking (with
    # the "\n\n" between summaries), a function's arguments or a custom tool's raw input.
    received: str = ""
    index: int | None = None  # Anthropic content index once its block has started
    closed: bool = False
    source: str | None = None  # thinking: "summary" or "content", whichever delta came first
    section: int | None = None  # thinking: summary_index / content_index of the latest delta


class ResponsesToAnthropicStream(TableDrivenStream):
    """Translate decoded Responses SSE events into Anthropic stream events (dicts).

    The proxy calls `feed()` for every upstream SSEEvent, `close()` at the end of the upstream body
    and `fail(error)` when reading it failed; each returns the events to encode with
    `translate.sse.encode_anthropic_event`. Once `finished` is True every call returns [].
    """

    def __init__(self, *, requested_model: str, message_id: str, tool_names: dict[str, str]) -> None:
        super().__init__(_TRANSITIONS, StreamState.BEFORE_START, StreamState.DONE)
        # Fixed for the stream.
        self._requested_model = requested_model
        self._message_id = message_id
        self._tool_names = tool_names
        # Progress.
        self._items: dict[int, _Item] = {}
        self._next_index = 0
        self._open: _Piece | None = None
        self._has_tool_use = False
        self._refused = False

    # -- entry points ---------------------------------------------------------------------

    def feed(self, event: SSEEvent) -> list[dict]:
        """Translate one upstream SSE event; returns the Anthropic events it completes."""
        if self._state is StreamState.DONE:
            return []
        data = event.data.strip()
        if not data or data == "[DONE]":  # OpenAI sends no [DONE] here; the terminal event ends it
            return []
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            payload = {"type": "error", "message": data} if event.event == "error" else None
        if not isinstance(payload, dict):
            return self.fail(UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream sent a stream event that is not a JSON object."))
        kind = payload.get("type")
        if kind is None and payload.get("error") is not None:
            kind = "error"  # a bare {"error": {...}} object, as Chat-style servers send
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return []  # hosted-tool progress, annotations, newer event types
        out: list[dict] = []
        try:
            handler(self, payload, out)
        except StreamBroken as broken:
            out += self.fail(broken.error)
        return out

    def close(self) -> list[dict]:
        """The upstream body ended: without a terminal event first, that is an error event."""
        if self._state is StreamState.DONE:
            return []
        if self._state is StreamState.BEFORE_START:
            return self.fail(UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream returned an empty stream."))
        return self.fail(UpstreamUnavailable(
            f"{UPSTREAM_LABEL} upstream ended the stream before the response was complete."
        ))

    def fail(self, error: ProxyError) -> list[dict]:
        """The stream broke: close the open block, then one error event."""
        if self._state is StreamState.DONE:
            return []
        out: list[dict] = []
        self._close_open(out)
        self._advance("fail")
        out.append(anthropic_error_body(error))
        return out

    # -- lifecycle events -----------------------------------------------------------------

    def _begin(self, out: list[dict]) -> None:
        if self._state is StreamState.BEFORE_START:
            out.append(self._message_start())
        self._advance("event")

    def _message_start(self) -> dict:
        # The upstream reports usage only in its terminal event: zeros here, the numbers in message_delta.
        message = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._requested_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return {"type": "message_start", "message": message}

    def _on_lifecycle(self, payload: dict, out: list[dict]) -> None:
        self._begin(out)  # response.created / in_progress / queued

    def _on_terminal(self, payload: dict, out: list[dict]) -> None:
        self._begin(out)
        response = payload.get("response")
        response = response if isinstance(response, dict) else {}
        # Items whose events never came (or never finished) are complete in the final response.
        output = response.get("output")
        for output_index, item in enumerate(output if isinstance(output, list) else []):
            known = self._items.get(output_index)
            if isinstance(item, dict) and (known is None or not known.done):
                self._item_done(output_index, item, out)
        self._close_open(out)
        self._record_usage(response.get("usage"))
        status = "incomplete" if payload["type"] == "response.incomplete" else "completed"
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        out.append({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(status, reason, self._has_tool_use, self._refused), "stop_sequence": None},
            "usage": self._usage(),
        })
        out.append({"type": "message_stop"})
        self._advance("end")

    def _on_failed(self, payload: dict, out: list[dict]) -> None:
        response = payload.get("response")
        response = response if isinstance(response, dict) else {}
        self._record_usage(response.get("usage"))
        out += self.fail(responses_error(response.get("error")))

    def _on_error(self, payload: dict, out: list[dict]) -> None:
        # OpenAI's `error` event is flat ({code, message, param}); some servers nest an `error` object.
        error = payload.get("error")
        if not isinstance(error, dict):
            error = {key: payload[key] for key in ("code", "message", "param") if key in payload}
        out += self.fail(responses_error(error))

    def _record_usage(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        mapped = responses_usage(usage)
        self.input_tokens = mapped["input_tokens"]
        self.output_tokens = mapped["output_tokens"]
        self.cache_read_tokens = mapped["cache_read_input_tokens"]
        self.cache_creation_tokens = mapped["cache_creation_input_tokens"]

    def _usage(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
        }

    # -- item events ----------------------------------------------------------------------

    def _item_for(self, payload: dict, implied_type: str | None = None) -> _Item | None:
        """The item an event is about, by output_index; a text or reasoning delta may imply it."""
        output_index = payload.get("output_index")
        if not is_int(output_index):
            return None
        known = self._items.get(output_index)
        if known is None and implied_type is not None:  # its `added` never came: be lenient
            known = self._items[output_index] = _Item(output_index, {"type": implied_type})
        return known

    def _on_item_added(self, payload: dict, out: list[dict]) -> None:
        self._begin(out)
        output_index, item = payload.get("output_index"), payload.get("item")
        if not is_int(output_index) or not isinstance(item, dict) or output_index in self._items:
            return
        known = self._items[output_index] = _Item(output_index, item)
        if known.block_kind in ("thinking", "tool_use"):
            self._start(known.piece(), out)  # text blocks wait for their first real text

    def _on_item_done(self, payload: dict, out: list[dict]) -> None:
        self._begin(out)
        output_index, item = payload.get("output_index"), payload.get("item")
        if is_int(output_index) and isinstance(item, dict):
            self._item_done(output_index, item, out)

    def _item_done(self, output_index: int, item: dict, out: list[dict]) -> None:
        known = self._items.get(output_index)
        if known is None:
            known = self._items[output_index] = _Item(output_index, item)
        if known.done:
            return
        known.item, known.done = item, True
        block_kind = known.block_kind
        if block_kind == "text":
            parts = item.get("content")
            for content_index, part in enumerate(parts if isinstance(parts, list) else []):
                text, is_refusal = part_text(part)
                self._refused = self._refused or is_refusal
                self._finish(known.piece(content_index), text, out)
        elif block_kind == "thinking":
            piece = known.piece()
            self._finish(piece, reasoning_text(item, piece.source), out)
        elif block_kind == "tool_use":
            self._finish(known.piece(), _tool_arguments(item), out)

    def _on_text_delta(self, payload: dict, out: list[dict]) -> None:
        self._begin(out)
        known = self._item_for(payload, "message")
        content_index = payload.get("content_index", 0)
        if known is None or known.block_kind != "text" or not is_int(content_index):
            return
        if payload["type"] == "response.refusal.delta":
            self._refused = True
        delta = payload.get("delta")
        if isinstance(delta, str):
            self._append(known.piece(content_index), delta, out)

    def _on_text_done(self, payload: dict, out: list[dict]) -> None:
        # response.output_text.done {text}, response.refusal.done {refusal}, content_part.done {part}
        self._begin(out)
        known = self._item_for(payload)
        content_index = payload.get("content_index", 0)
        if known is None or known.block_kind != "text" or not is_int(content_index):
            return
        if payload["type"] == "response.content_part.done":
            text, is_refusal = part_text(payload.get("part"))
        elif payload["type"] == "response.refusal.done":
            text, is_refusal = payload.get("refusal"), True
        else:
            text, is_refusal = payload.get("text"), False
        self._refused = self._refused or is_refusal
        self._finish(known.piece(content_index), text if isinstance(text, str) else None, out)

    def _on_reasoning_delta(self, payload: dict, out: list[dict]) -> None:
        self._begin(out)
        known = self._item_for(payload, "reasoning")
        if known is None or known.block_kind != "thinking":
            return
        is_summary = payload["type"] == "response.reasoning_summary_text.delta"
        source, section = ("summary", payload.get("summary_index")) if is_summary else ("content", payload.get("content_index"))
        piece = known.piece()
        delta = payload.get("delta")
        if not isinstance(delta, str) or not delta:
            return
        if piece.source is None:
            piece.source = source
        elif piece.source != source:
            return  # the other kind of text already streams into this block
        if piece.section is not None and section != piece.section:
            delta = "\n\n" + delta
        piece.section = section
        self._append(piece, delta, out)

    def _on_arguments_delta(self, payload: dict, out: list[dict]) -> None:
        # response.function_call_arguments.delta / response.custom_tool_call_input.delta
        self._begin(out)
        known = self._item_for(payload)  # without its `added` the name is unknown: `done` brings it all
        delta = payload.get("delta")
        if known is not None and known.block_kind == "tool_use" and isinstance(delta, str):
            self._append(known.piece(), delta, out)

    def _on_arguments_done(self, payload: dict, out: list[dict]) -> None:
        # response.function_call_arguments.done {arguments} / response.custom_tool_call_input.done {input}
        self._begin(out)
        known = self._item_for(payload)
        if known is None or known.block_kind != "tool_use":
            return
        final = payload.get("input" if known.kind == "custom_tool_call" else "arguments")
        self._finish(known.piece(), final if isinstance(final, str) else None, out)

    # -- blocks ---------------------------------------------------------------------------

    def _start(self, piece: _Piece, out: list[dict]) -> None:
        """Open the piece's block (closing the open one); its index is the next free one."""
        self._close_open(out)
        owner = piece.owner
        kind = owner.block_kind
        if kind == "text":
            block = {"type": "text", "text": ""}
        elif kind == "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            block = _tool_use_start(owner.item, owner.output_index, message_id=self._message_id, tool_names=self._tool_names)
            self._has_tool_use = True
        piece.index = self._next_index
        self._next_index += 1
        self._open = piece
        out.append({"type": "content_block_start", "index": piece.index, "content_block": block})

    def _delta(self, piece: _Piece, delta: dict, out: list[dict]) -> None:
        out.append({"type": "content_block_delta", "index": piece.index, "delta": delta})

    def _append(self, piece: _Piece, text: str, out: list[dict]) -> None:
        """Stream `text` into the piece's block, opening it when due."""
        if not text:
            return
        if piece.closed:
            raise StreamBroken(UpstreamUnavailable(
                f"{UPSTREAM_LABEL} upstream sent more output for an item whose block had already ended."
            ))
        kind = piece.owner.block_kind
        already = piece.received
        piece.received += text
        if kind == "text":
            if piece.index is None:
                if not piece.received.strip():
                    return  # whitespace waits for real text (a whitespace-only block poisons history)
                self._start(piece, out)
                text = piece.received
            self._delta(piece, {"type": "text_delta", "text": text}, out)
            return
        if piece.index is None:
            self._start(piece, out)
        if kind == "thinking":
            self._delta(piece, {"type": "thinking_delta", "thinking": text}, out)
        elif piece.owner.kind == "custom_tool_call":
            escaped = dumps(text)[1:-1]  # JSON escaping is per character, so pieces concatenate
            partial = escaped if already else _CUSTOM_INPUT_OPENING + escaped
            self._delta(piece, {"type": "input_json_delta", "partial_json": partial}, out)
        else:
            self._delta(piece, {"type": "input_json_delta", "partial_json": text}, out)

    def _finish(self, piece: _Piece, final: str | None, out: list[dict]) -> None:
        """The piece is complete: send what `final` has beyond the deltas, then close its block."""
        if piece.closed:
            return
        if final is not None:
            if piece.owner.block_kind == "text" and piece.index is None:
                piece.received = ""  # nothing sent yet: the final text replaces the held whitespace
                self._append(piece, final, out)
            elif final.startswith(piece.received):
                self._append(piece, final[len(piece.received):], out)
            # Otherwise the deltas disagree with the final text: what was sent stands.
        if piece.index is None and piece.owner.block_kind != "text":
            self._start(piece, out)  # a thinking block without text, or a call without arguments
        if piece.index is None:
            piece.closed = True  # a text part without real text: no block at all
            return
        self._close_open(out)  # a started piece that is not closed is the open one (see _start)

    def _close_open(self, out: list[dict]) -> None:
        piece = self._open
        if piece is None:
            return
        owner = piece.owner
        if owner.block_kind == "thinking":
            # The reasoning envelope; complete once `done` has replaced the item (encrypted_content).
            signature = encode_reasoning_signature(owner.item)
            self._delta(piece, {"type": "signature_delta", "signature": signature}, out)
        elif owner.kind == "custom_tool_call":
            closing = _CUSTOM_INPUT_CLOSING if piece.received else dumps({"input": ""})
            self._delta(piece, {"type": "input_json_delta", "partial_json": closing}, out)
        out.append({"type": "content_block_stop", "index": piece.index})
        piece.closed = True
        self._open = None


# Upstream event type -> handler. Every other type (hosted-tool progress, content_part.added,
# summary_part.*, annotations, .done events whose item `done` repeats them) is ignored.
_HANDLERS = {
    "response.created": ResponsesToAnthropicStream._on_lifecycle,
    "response.in_progress": ResponsesToAnthropicStream._on_lifecycle,
    "response.queued": ResponsesToAnthropicStream._on_lifecycle,
    "response.output_item.added": ResponsesToAnthropicStream._on_item_added,
    "response.output_item.done": ResponsesToAnthropicStream._on_item_done,
    "response.output_text.delta": ResponsesToAnthropicStream._on_text_delta,
    "response.refusal.delta": ResponsesToAnthropicStream._on_text_delta,
    "response.output_text.done": ResponsesToAnthropicStream._on_text_done,
    "response.refusal.done": ResponsesToAnthropicStream._on_text_done,
    "response.content_part.done": ResponsesToAnthropicStream._on_text_done,
    "response.reasoning_summary_text.delta": ResponsesToAnthropicStream._on_reasoning_delta,
    "response.reasoning_text.delta": ResponsesToAnthropicStream._on_reasoning_delta,
    "response.function_call_arguments.delta": ResponsesToAnthropicStream._on_arguments_delta,
    "response.custom_tool_call_input.delta": ResponsesToAnthropicStream._on_arguments_delta,
    "response.function_call_arguments.done": ResponsesToAnthropicStream._on_arguments_done,
    "response.custom_tool_call_input.done": ResponsesToAnthropicStream._on_arguments_done,
    "response.completed": ResponsesToAnthropicStream._on_terminal,
    "response.incomplete": ResponsesToAnthropicStream._on_terminal,
    "response.failed": ResponsesToAnthropicStream._on_failed,
    "error": ResponsesToAnthropicStream._on_error,
}
