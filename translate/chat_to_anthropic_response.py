"""Chat Completions answers to Anthropic Messages: the stream translator, whole answers, and the helpers both share.

The way back for translate/anthropic_to_chat_request.py (an Anthropic front on a chat upstream).

Policies (PROTOCOLS.md 3.3, 3.4, 4.1; FIELD-NOTES "Streaming traps"):
- message_start goes out on the first chunk, with our message id, the requested model and zero
  usage: OpenAI reports usage only at the end, so the real numbers (input_tokens included, which
  Claude Code needs to auto-compact) ride on message_delta.
- A text block opens only on text with a non-whitespace character (an empty or whitespace-only
  text block poisons Claude Code's history: Anthropic rejects it when sent back); whitespace before
  it waits and is dropped if no text follows. A thinking block opens on non-empty thinking text.
  One block is open at a time and is closed before the next opens; indexes run from 0.
- A thinking block ends with a signature_delta of "": typed clients require a string and there is
  no Anthropic signature to give [LOSSY].
- Tool calls are keyed by `index`, else by `id`, else belong to the latest call (a second name
  without index or id starts a new call). A tool_use block opens once the call's name is known, with
  `input: {}`; every argument fragment goes out as input_json_delta, fragments that came before the
  name in one delta. An upstream that interleaves fragments of parallel calls needs
  `buffer_tool_calls=True` (each call emitted whole, in index order, at the finish; text keeps
  streaming); without it such a fragment is an error event, never misplaced JSON.
- finish_reason closes the open block but not the message: the usage chunk (`choices: []`) comes
  after it; deltas arriving after finish_reason are ignored (buffered calls are already out). [DONE] or a clean EOF ends the message with message_delta + message_stop, even without a
  finish_reason; `fail()` (read error, timeout) and an upstream error object end it with an error
  event after closing the open block. A stream that ends before any chunk is an error.
- Usage: `input_tokens` excludes cache reads and cache writes (prompt_tokens counts both);
  `output_tokens` is max(completion, total - prompt), which repairs Gemini's missing thought tokens
  and changes nothing elsewhere. No usage means zeros, never invented numbers.
- `stop_reason` is `tool_use` exactly when the message holds a tool_use block, whatever the
  finish_reason said (Gemini says "stop" with tool calls; a "tool_calls" finish with no call is
  `end_turn`, since the client would wait for tool results that cannot come).
- Tool call arguments that are not a JSON object are kept, not lost: the input becomes
  {"_raw_arguments": "<text as received>"}; empty arguments are {}.
- `thought_signatures=True` (Gemini): a tool call's `extra_content.google.thought_signature` (or
  `extra_content.vertex...`) is appended to its Anthropic tool id (translate/tools.py
  `signed_tool_id`); the request translation takes it back out. The signature must be known when
  the tool_use block opens: Gemini sends it with the call, in the same chunk. One that arrives in a
  later metadata-only delta still makes it in buffered tool mode (blocks open at the finish);
  otherwise it is lost and counted in `lost_thought_signatures` (the next request then carries a
  dummy signature, see translate/gemini.py). Signatures on text parts are not kept [LOSSY]: Gemini
  validates only function-call signatures.
- `thought_tags=True`: reasoning sent inline at the start of `content` as `<thought>...</thought>`
  or `<think>...</think>` (Gemini snapshots with include_thoughts, some reasoning servers) becomes
  a thinking block. Only leading sections are converted (whitespace around them is dropped); once
  answer text has started, tags are text. Tags split across chunks are held back until they can be
  told from text (`InlineThoughtSplitter`); an unclosed section at the end stays thinking.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

from translate.errors import (
    ProxyError,
    UpstreamUnavailable,
    anthropic_error_body,
    error_from_upstream,
    is_context_length_error,
    upstream_error_message,
)
from translate.sse import SSEEvent, dumps
from translate.thought_tags import InlineThoughtSplitter, split_inline_thoughts
from translate.tools import ThoughtSignature, portable_tool_id, signed_tool_id

# Name used in error messages about the upstream ("OpenAI-compatible upstream: ...").
UPSTREAM_LABEL = "OpenAI-compatible"


def is_int(value: object) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# Reading OpenAI answers (shared with the whole-body translation)
# ---------------------------------------------------------------------------------------------

_STOP_REASON_BY_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    # "tool_calls" and "function_call" mean tool_use, decided by the presence of a tool call.
}

_STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "insufficient_quota": 402,  # not retryable: must not look like a 429 or a 5xx
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "overloaded_error": 529,
}


def anthropic_stop_reason(finish: object, has_tool_use: bool, refused: bool, matched_stop: str | None) -> str:
    """The Anthropic stop_reason: tool_use whenever a tool_use block exists, else from finish_reason."""
    if has_tool_use:
        return "tool_use"
    if matched_stop is not None:
        return "stop_sequence"
    if refused:
        return "refusal"
    return _STOP_REASON_BY_FINISH.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def matched_stop_sequence(choice: dict, stop_sequences: tuple[str, ...]) -> str | None:
    """The client's stop sequence that ended generation, when the upstream says which (else None)."""
    # vLLM reports the matched stop string in the choice's `stop_reason`; OpenAI reports nothing.
    matched = choice.get("stop_reason")
    return matched if isinstance(matched, str) and matched in stop_sequences else None


def _count(value: object) -> int:
    return value if is_int(value) and value > 0 else 0


def anthropic_usage(usage: object) -> dict:
    """Anthropic usage from an OpenAI usage object (zeros when absent), PROTOCOLS 3.4."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    prompt = _count(usage.get("prompt_tokens"))
    cached = _count(details.get("cached_tokens"))
    written = _count(details.get("cache_write_tokens"))
    completion = _count(usage.get("completion_tokens"))
    total = _count(usage.get("total_tokens"))
    return {
        "input_tokens": max(0, prompt - cached - written),
        "output_tokens": max(completion, total - prompt),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def tool_input(arguments: object) -> dict:
    """A tool_use input from OpenAI arguments: parsed JSON object, {} when empty, else kept raw."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except (ValueError, RecursionError):  # a model's arguments: kept raw below, never a crash
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"_raw_arguments": arguments if isinstance(arguments, str) else dumps(arguments)}


def first_choice(choices: object) -> dict | None:
    """Choice 0 of a response or chunk (n is never sent), None when there is none."""
    if not isinstance(choices, list):
        return None
    candidates = [choice for choice in choices if isinstance(choice, dict)]
    for choice in candidates:
        if choice.get("index", 0) == 0:
            return choice
    return candidates[0] if candidates else None


def text_of(content: object) -> str:
    """The text of a content value: a string, or a list of text parts as a few servers send."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def reasoning_of(message: dict) -> str:
    """The reasoning text of a message or delta ("" when none); never both fields twice."""
    # DeepSeek and vLLM say reasoning_content, Ollama and OpenRouter say reasoning; some send both.
    return text_of(message.get("reasoning_content")) or text_of(message.get("reasoning"))


def thought_signature_of(call: object) -> ThoughtSignature | None:
    """The thought signature on an OpenAI tool call (or fragment) from Gemini, None when it has none.

    Gemini puts it in `extra_content.google.thought_signature`; some Vertex captures use
    `extra_content.vertex` (PROTOCOLS 5.6).
    """
    extra = call.get("extra_content") if isinstance(call, dict) else None
    if not isinstance(extra, dict):
        return None
    for namespace in ("google", "vertex"):
        holder = extra.get(namespace)
        value = holder.get("thought_signature") if isinstance(holder, dict) else None
        if isinstance(value, str) and value:
            return ThoughtSignature(value, namespace)
    return None


def anthropic_tool_id(upstream_id: object, seed: str, signature: ThoughtSignature | None) -> str:
    """The Anthropic tool_use id: the portable id, plus the thought signature when one is carried."""
    tool_id = portable_tool_id(upstream_id, seed=seed)
    return tool_id if signature is None else signed_tool_id(tool_id, signature)


def is_error_payload(payload: object) -> bool:
    """True for an upstream error object: {"error": ...}, or Google's [{"error": ...}]."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    return isinstance(payload, dict) and payload.get("error") is not None


def upstream_error(payload: object, *, default_status: int = 502) -> ProxyError:
    """The ProxyError for an upstream error object received with a 200 (whole body or stream chunk).

    The status comes from the error's numeric `code` or its `type`, else `default_status`; a
    context-length error becomes the 400 whose message contains "prompt is too long".
    """
    raw = dumps(payload).encode()
    message, code, _param = upstream_error_message(raw)
    status = default_status
    error = payload[0] if isinstance(payload, list) and payload else payload
    error = error.get("error") if isinstance(error, dict) else None
    if isinstance(error, dict):
        numeric = error.get("code")
        if isinstance(numeric, str) and numeric.isdigit():
            numeric = int(numeric)
        if is_int(numeric) and 400 <= numeric <= 599:
            status = numeric
        else:
            status = _STATUS_BY_ERROR_TYPE.get(
                str(error.get("type")), _STATUS_BY_ERROR_TYPE.get(str(error.get("code")), default_status)
            )
    if is_context_length_error(message, code):
        status = 400
    return error_from_upstream(status, raw, provider=UPSTREAM_LABEL)


# ---------------------------------------------------------------------------------------------
# Stream: OpenAI chunks -> Anthropic events (PROTOCOLS 4.1)
# ---------------------------------------------------------------------------------------------


class StreamState(Enum):
    BEFORE_START = "before_start"  # nothing received; message_start not sent
    STREAMING = "streaming"  # message_start sent; deltas are translated
    FINISHING = "finishing"  # finish_reason seen; waiting for the usage chunk and [DONE]
    DONE = "done"  # message_stop or an error event sent; everything else is ignored


# (state, what happened) -> next state. "chunk" = a JSON chunk, "finish" = its finish_reason,
# "end" = [DONE] or a clean EOF after message_start, "fail" = an error event.
_TRANSITIONS: dict[tuple[StreamState, str], StreamState] = {
    (StreamState.BEFORE_START, "chunk"): StreamState.STREAMING,
    (StreamState.STREAMING, "chunk"): StreamState.STREAMING,
    (StreamState.STREAMING, "finish"): StreamState.FINISHING,
    (StreamState.FINISHING, "chunk"): StreamState.FINISHING,
    (StreamState.STREAMING, "end"): StreamState.DONE,
    (StreamState.FINISHING, "end"): StreamState.DONE,
    (StreamState.BEFORE_START, "fail"): StreamState.DONE,
    (StreamState.STREAMING, "fail"): StreamState.DONE,
    (StreamState.FINISHING, "fail"): StreamState.DONE,
}


@dataclass
class _ToolCall:
    """One upstream tool call, from its first fragment until its block is emitted."""

    ordinal: int  # position among the message's tool calls: seeds a missing id
    upstream_index: int | None
    upstream_id: str | None = None
    name: str | None = None
    pending_arguments: list[str] = field(default_factory=list)  # not yet emitted
    block_index: int | None = None  # Anthropic content index once its block has started
    signature: ThoughtSignature | None = None  # Gemini thought signature, carried in the tool id


class StreamBroken(Exception):
    """Raised inside a stream translator's handling of one event: the stream ends with `error`."""

    def __init__(self, error: ProxyError) -> None:
        super().__init__(error.message)
        self.error = error


class TableDrivenStream:
    """What the stream translators into the hub share: a state machine given as a table of
    (state, what happened) -> next state, whose `done` state ends the stream, and the token counters
    the proxy reads for its access log. Shared with translate/responses_to_anthropic_response.py."""

    def __init__(self, transitions: dict, start: Enum, done: Enum) -> None:
        self._transitions = transitions
        self._state = start
        self._done = done
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_creation_tokens = 0

    @property
    def finished(self) -> bool:
        return self._state is self._done

    def _advance(self, happened: str) -> None:
        try:
            self._state = self._transitions[(self._state, happened)]
        except KeyError:
            message = f"stream translator: {happened!r} is not expected in state {self._state.name}"
            raise RuntimeError(message) from None


class ChatToAnthropicStream(TableDrivenStream):
    """Translate decoded OpenAI SSE events into Anthropic stream events (dicts).

    The proxy calls `feed()` for every upstream SSEEvent, `close()` at a clean end of the upstream
    body and `fail(error)` when reading it failed; each returns the events to encode with
    `translate.sse.encode_anthropic_event`. Once `finished` is True every call returns [].
    """

    def __init__(
        self,
        *,
        requested_model: str,
        message_id: str,
        tool_names: dict[str, str],
        stop_sequences: tuple[str, ...] = (),
        buffer_tool_calls: bool = False,
        thought_signatures: bool = False,
        thought_tags: bool = False,
    ) -> None:
        super().__init__(_TRANSITIONS, StreamState.BEFORE_START, StreamState.DONE)
        # Fixed for the stream.
        self._requested_model = requested_model
        self._message_id = message_id
        self._tool_names = tool_names
        self._stop_sequences = stop_sequences
        self._buffer_tool_calls = buffer_tool_calls
        self._thought_signatures = thought_signatures
        self._thought_splitter = InlineThoughtSplitter() if thought_tags else None
        # Progress.
        self._next_index = 0
        self._open_kind: str | None = None  # "text", "thinking" or "tool_use"
        # Whitespace that would start a text block: held until real text follows, else dropped.
        self._held_whitespace = ""
        self._open_tool: _ToolCall | None = None
        self._tools: list[_ToolCall] = []
        self._tools_by_index: dict[int, _ToolCall] = {}
        self._tools_by_id: dict[str, _ToolCall] = {}
        self._has_tool_use = False
        self._finish_reason: str | None = None
        self._refused = False
        self._matched_stop: str | None = None
        # Thought signatures that came after their tool_use block had started (for a log line).
        self.lost_thought_signatures = 0

    # -- entry points ---------------------------------------------------------------------

    def feed(self, event: SSEEvent) -> list[dict]:
        """Translate one upstream SSE event; returns the Anthropic events it completes."""
        if self._state is StreamState.DONE:
            return []
        data = event.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self._end()
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            chunk = {"error": {"message": data}} if event.event == "error" else None
        if event.event == "error" or is_error_payload(chunk):
            return self.fail(upstream_error(chunk))
        if not isinstance(chunk, dict):
            error = UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream sent a stream chunk that is not a JSON object.")
            return self.fail(error)
        out: list[dict] = []
        try:
            self._chunk(chunk, out)
        except StreamBroken as broken:
            out += self.fail(broken.error)
        return out

    def close(self) -> list[dict]:
        """The upstream body ended cleanly: finish the message (an empty stream is an error event)."""
        if self._state is StreamState.DONE:
            return []
        return self._end()

    def fail(self, error: ProxyError) -> list[dict]:
        """The stream broke: close the open block, then one error event. Buffered calls are lost."""
        if self._state is StreamState.DONE:
            return []
        out: list[dict] = []
        self._close_block(out)
        self._advance("fail")
        out.append(anthropic_error_body(error))
        return out

    # -- chunks ---------------------------------------------------------------------------

    def _chunk(self, chunk: dict, out: list[dict]) -> None:
        if self._state is StreamState.BEFORE_START:
            out.append(self._message_start())
        self._advance("chunk")
        usage = chunk.get("usage")
        if isinstance(usage, dict):  # usually the last chunk, with choices: []; last value wins
            self._record_usage(usage)
        choice = first_choice(chunk.get("choices"))
        if choice is None or self._state is StreamState.FINISHING:
            return  # Azure filter frames, the usage chunk, late annotations
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        reasoning = reasoning_of(delta)
        if reasoning:
            self._append_text("thinking", reasoning, out)
        for key in ("content", "refusal"):
            text = text_of(delta.get(key))
            if not text:
                continue
            if key == "content" and self._thought_splitter is not None:
                self._append_pieces(self._thought_splitter.feed(text), out)
            else:
                self._append_text("text", text, out)
            self._refused = self._refused or key == "refusal"
        calls = delta.get("tool_calls")
        calls = [entry for entry in calls if isinstance(entry, dict)] if isinstance(calls, list) else []
        if calls:
            self._flush_thoughts(out)  # held text belongs before the tool calls
        for entry in calls:
            self._tool_fragment(entry, out)
        matched = matched_stop_sequence(choice, self._stop_sequences)
        if matched is not None:
            self._matched_stop = matched
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish_reason = finish
            self._flush_thoughts(out)
            self._close_block(out)
            self._flush_tools(out)
            self._advance("finish")

    def _record_usage(self, usage: dict) -> None:
        mapped = anthropic_usage(usage)
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

    def _message_start(self) -> dict:
        # OpenAI reports usage only at the end: zeros here, the real numbers in message_delta.
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

    def _end(self) -> list[dict]:
        if self._state is StreamState.BEFORE_START:
            return self.fail(UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream returned an empty stream."))
        out: list[dict] = []
        if self._state is StreamState.STREAMING:  # no finish_reason: content may still be held
            self._flush_thoughts(out)
        self._close_block(out)
        self._flush_tools(out)
        matched = self._matched_stop
        stop_reason = anthropic_stop_reason(self._finish_reason, self._has_tool_use, self._refused, matched)
        stop_sequence = matched if stop_reason == "stop_sequence" else None
        out.append({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": self._usage(),
        })
        out.append({"type": "message_stop"})
        self._advance("end")
        return out

    # -- blocks ---------------------------------------------------------------------------

    def _open_block(self, content_block: dict, out: list[dict]) -> int:
        self._close_block(out)
        self._held_whitespace = ""  # it led to no text
        index = self._next_index
        self._next_index += 1
        self._open_kind = content_block["type"]
        out.append({"type": "content_block_start", "index": index, "content_block": content_block})
        return index

    def _close_block(self, out: list[dict]) -> None:
        if self._open_kind is None:
            return
        index = self._next_index - 1
        if self._open_kind == "thinking":
            # Typed clients require a signature string; there is no Anthropic one to give [LOSSY].
            signature = {"type": "signature_delta", "signature": ""}
            out.append({"type": "content_block_delta", "index": index, "delta": signature})
        out.append({"type": "content_block_stop", "index": index})
        self._open_kind = None
        self._open_tool = None

    def _append_pieces(self, pieces: list[tuple[str, str]], out: list[dict]) -> None:
        for kind, piece in pieces:
            self._append_text(kind, piece, out)

    def _flush_thoughts(self, out: list[dict]) -> None:
        if self._thought_splitter is not None:
            self._append_pieces(self._thought_splitter.flush(), out)

    def _append_text(self, kind: str, text: str, out: list[dict]) -> None:
        # Text and thinking blocks open only on non-empty text: an empty text block poisons history,
        # and so does a whitespace-only one (Anthropic: "text content blocks must contain
        # non-whitespace text"), so whitespace before a text block's first real character waits.
        if kind == "text" and self._open_kind != "text":
            if not text.strip():
                self._held_whitespace += text
                return
            text, self._held_whitespace = self._held_whitespace + text, ""
        if kind == "text":
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": text}
        else:
            start = {"type": "thinking", "thinking": "", "signature": ""}
            delta = {"type": "thinking_delta", "thinking": text}
        if self._open_kind != kind:
            self._open_block(start, out)
        out.append({"type": "content_block_delta", "index": self._next_index - 1, "delta": delta})

    # -- tool calls -----------------------------------------------------------------------

    def _tool_for(self, entry: dict, name: str | None) -> _ToolCall:
        """The call a fragment belongs to: by `index`, else by `id`, else the latest call."""
        index = entry.get("index") if is_int(entry.get("index")) else None
        upstream_id = entry.get("id")
        upstream_id = upstream_id if isinstance(upstream_id, str) and upstream_id else None
        tool = self._tools_by_index.get(index) if index is not None else None
        if tool is not None and upstream_id and tool.upstream_id and upstream_id != tool.upstream_id:
            tool = None  # the same index reused for a new call (whole calls, one per chunk)
        if tool is None and upstream_id:
            tool = self._tools_by_id.get(upstream_id)
        if tool is None and index is None and upstream_id is None and self._tools:
            latest = self._tools[-1]
            if not (name and latest.name):  # a second name without index or id starts a new call
                tool = latest
        if tool is None:
            tool = _ToolCall(ordinal=len(self._tools), upstream_index=index)
            self._tools.append(tool)
        if index is not None:
            self._tools_by_index[index] = tool
        if upstream_id and tool.upstream_id is None:
            tool.upstream_id = upstream_id
            self._tools_by_id[upstream_id] = tool
        return tool

    def _tool_fragment(self, entry: dict, out: list[dict]) -> None:
        function = entry.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name")
        name = name if isinstance(name, str) and name else None
        tool = self._tool_for(entry, name)
        if name and tool.name is None:
            tool.name = name
        signature = thought_signature_of(entry) if self._thought_signatures else None
        if signature is not None and tool.signature is None:
            tool.signature = signature
            if tool.block_index is not None:  # its id has been sent already
                self.lost_thought_signatures += 1
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a few servers send whole calls with parsed arguments
            arguments = dumps(arguments)
        if isinstance(arguments, str) and arguments:
            if tool.block_index is not None and tool is not self._open_tool:
                raise StreamBroken(UpstreamUnavailable(
                    f"{UPSTREAM_LABEL} upstream interleaved the arguments of parallel tool calls; "
                    "this upstream needs buffered tool calls."
                ))
            tool.pending_arguments.append(arguments)
        if self._buffer_tool_calls or tool.name is None:
            return  # emitted whole at the finish / opened once its name is known
        if tool.block_index is None:
            self._start_tool(tool, out)
        self._emit_arguments(tool, out)

    def _start_tool(self, tool: _ToolCall, out: list[dict]) -> None:
        name = tool.name or ""
        block = {
            "type": "tool_use",
            "id": anthropic_tool_id(tool.upstream_id, f"{self._message_id}:{tool.ordinal}", tool.signature),
            "name": self._tool_names.get(name, name),
            "input": {},  # the input arrives only through input_json_delta (Claude Code builds it so)
        }
        tool.block_index = self._open_block(block, out)
        self._open_tool = tool
        self._has_tool_use = True

    def _emit_arguments(self, tool: _ToolCall, out: list[dict]) -> None:
        if tool.pending_arguments:
            partial = "".join(tool.pending_arguments)
            tool.pending_arguments.clear()
            out.append({
                "type": "content_block_delta",
                "index": tool.block_index,
                "delta": {"type": "input_json_delta", "partial_json": partial},
            })

    def _flush_tools(self, out: list[dict]) -> None:
        """Emit, whole and in upstream index order, every call whose block has not started."""
        waiting = [tool for tool in self._tools if tool.block_index is None]
        waiting.sort(key=lambda tool: (tool.upstream_index is None, tool.upstream_index or 0, tool.ordinal))
        for tool in waiting:
            self._start_tool(tool, out)
            self._emit_arguments(tool, out)
            self._close_block(out)


# ---------------------------------------------------------------------------------------------
# Whole response: Chat -> Anthropic (built on the same helpers as the stream)
# ---------------------------------------------------------------------------------------------


def chat_to_anthropic_response(
    response: dict,
    *,
    requested_model: str,
    message_id: str,
    tool_names: dict[str, str],
    stop_sequences: tuple[str, ...] = (),
    thought_signatures: bool = False,
    thought_tags: bool = False,
) -> dict:
    """Translate an OpenAI chat.completion body into an Anthropic message.

    `tool_names` is ChatRequest.tool_names (restores shortened names). `thought_signatures`
    carries Gemini thought signatures in the tool ids; `thought_tags` turns leading
    `<thought>`/`<think>` sections of the content into a thinking block (both as in
    ChatToAnthropicStream). Raises ProxyError for a body carrying an `error` object (mapped like
    an upstream error response) and UpstreamUnavailable (502) for a body without choices.
    """
    if is_error_payload(response):
        raise upstream_error(response)
    if not isinstance(response, dict):
        raise UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream returned a response that is not a JSON object.")
    choice = first_choice(response.get("choices"))
    if choice is None:
        raise UpstreamUnavailable(f"{UPSTREAM_LABEL} upstream returned a response without choices.")
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}

    content: list[dict] = []
    reasoning = reasoning_of(message)
    text = text_of(message.get("content"))
    if thought_tags:
        inline_thinking, text = split_inline_thoughts(text)
        reasoning += inline_thinking  # the stream puts both in one thinking block, in this order
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    refusal = text_of(message.get("refusal"))
    text += refusal
    if text.strip():  # whitespace-only text blocks are rejected by Anthropic when sent back
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        name = function.get("name") if isinstance(function.get("name"), str) else ""
        signature = thought_signature_of(call) if thought_signatures else None
        content.append({
            "type": "tool_use",
            "id": anthropic_tool_id(call.get("id"), f"{message_id}:{i}", signature),
            "name": tool_names.get(name, name),
            "input": tool_input(function.get("arguments")),
        })

    has_tool_use = any(block["type"] == "tool_use" for block in content)
    matched = None if has_tool_use else matched_stop_sequence(choice, stop_sequences)
    stop_reason = anthropic_stop_reason(choice.get("finish_reason"), has_tool_use, bool(refusal), matched)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": matched,
        "usage": anthropic_usage(response.get("usage")),
    }
