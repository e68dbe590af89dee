"""Anthropic Messages answers to Chat Completions: whole responses and the stream translator.

The way back for translate/chat_to_anthropic_request.py (a chat front on an Anthropic upstream). Pure: ids, timestamps
and the requested model name are passed in, so the same input always gives the same bytes.

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

import re
from dataclasses import dataclass
from enum import Enum

from .anthropic_reading import (
    AnthropicStreamReader,
    AnthropicUsage,
    StreamState,
)
from .chat_to_anthropic_request import JSON_RESPONSE_TOOL
from .errors import ProxyError, UpstreamUnavailable, chat_error_body
from .sse import dumps
from .tools import portable_tool_id

FINISH_REASON_BY_STOP_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
REFUSAL_FALLBACK_TEXT = "The model declined to respond."


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def anthropic_to_chat_response(
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


class _Usage(AnthropicUsage):
    """Anthropic token counts (translate/anthropic_reading.py), rendered for OpenAI."""

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


class AnthropicToChatStream(AnthropicStreamReader):
    """Translate Anthropic stream events into Chat Completions chunks, one `feed()` per event.

    Each method returns what to send to the client, in order: chunk dicts (encode them with
    `encode_chat_chunk`) and the string "[DONE]" (send `CHAT_DONE`). Once `finished` is true
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
        self._state = StreamState.AWAITING_START
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

    def close(self) -> list[dict | str]:
        """The upstream ended. Finish normally if the stop reason arrived, else report an error."""
        if self.finished:
            return []
        if self._state is StreamState.STREAMING and self._stop_reason is not None:
            return self._finish()
        return self.fail(UpstreamUnavailable("The upstream stream ended before the message was complete."))

    def fail(self, error: ProxyError) -> list[dict | str]:
        """The stream cannot go on: return the OpenAI error object to send last (no "[DONE]")."""
        if self.finished:
            return []
        self._state = StreamState.FAILED
        return [chat_error_body(error)]

    # -- event handlers ----------------------------------------------------------------------

    def _on_message_start(self, data: dict) -> list[dict | str]:
        message = data.get("message")
        self._usage.update(message.get("usage") if isinstance(message, dict) else None)
        self._state = StreamState.STREAMING
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
        self._state = StreamState.DONE
        return out


