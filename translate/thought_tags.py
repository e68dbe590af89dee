"""Reasoning sent inline as <thought>...</thought> (or <think>) at the start of a chat answer's content.

Gemini through its OpenAI-compatible endpoint, and several open models, put their reasoning in the
content behind such tags. These split it off, for the chat -> Anthropic translators to make a
thinking block of it: `InlineThoughtSplitter` for a stream (text arrives in pieces, a tag may be
split between two), `split_inline_thoughts` for a whole answer. Only leading sections count: a tag
after ordinary text is ordinary text.
"""

from __future__ import annotations

from enum import Enum

_THOUGHT_OPEN_TAGS = ("<thought>", "<think>")
THOUGHT_SECTION_SEPARATOR = "\n\n"  # between two leading sections that share one thinking block


class ThoughtTagState(Enum):
    LEADING = "leading"  # before any answer text: whitespace or an opening tag may come
    IN_THOUGHT = "in_thought"  # inside a section: watching for its closing tag
    TEXT = "text"  # answer text has started: everything is text


class InlineThoughtSplitter:
    """Split leading `<thought>`/`<think>` sections off content text, however it is chunked.

    `feed(text)` returns [(kind, piece)] with kind "thinking" or "text"; pieces may be fewer than the
    input while a possible tag is held back. `flush()` returns what is held (at the end of content,
    or before a tool call) and ends tag handling: later content is text.
    """

    def __init__(self) -> None:
        self._state = ThoughtTagState.LEADING
        self._held = ""  # text that may still turn out to be (part of) a tag
        self._close_tag = ""
        self._sections = 0  # sections opened so far
        self._section_start = False  # inside a section, before its first non-blank character
        self._thought_emitted = False
        self._separator_due = False  # a later section owes a separator before its first piece

    def feed(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        buffer = self._held + text
        self._held = ""
        while buffer:
            if self._state is ThoughtTagState.TEXT:
                out.append(("text", buffer))
                break
            if self._state is ThoughtTagState.LEADING:
                buffer = self._leading(buffer)
            else:
                buffer = self._in_thought(buffer, out)
        return out

    def flush(self) -> list[tuple[str, str]]:
        held, self._held = self._held, ""
        out: list[tuple[str, str]] = []
        if self._state is ThoughtTagState.LEADING:
            text = held.lstrip() if self._sections else held
            if text:
                out.append(("text", text))
        elif self._state is ThoughtTagState.IN_THOUGHT:
            self._thinking(held.strip() if self._section_start else held.rstrip(), out)
        self._state = ThoughtTagState.TEXT
        return out

    def _leading(self, buffer: str) -> str:
        """Consume `buffer` before any answer text; returns what is left to process."""
        stripped = buffer.lstrip()
        for tag in _THOUGHT_OPEN_TAGS:
            if stripped.startswith(tag):
                self._state = ThoughtTagState.IN_THOUGHT
                self._close_tag = "</" + tag[1:]
                self._sections += 1
                self._section_start = True
                self._separator_due = self._thought_emitted
                return stripped[len(tag) :]
        if not stripped or any(tag.startswith(stripped) for tag in _THOUGHT_OPEN_TAGS):
            self._held = buffer  # blank so far, or a tag cut short: wait for more
            return ""
        self._state = ThoughtTagState.TEXT
        return stripped if self._sections else buffer  # blank lines after a section are dropped

    def _in_thought(self, buffer: str, out: list[tuple[str, str]]) -> str:
        if self._section_start:
            buffer = buffer.lstrip()
            if not buffer:
                return ""
            self._section_start = False
        end = buffer.find(self._close_tag)
        if end >= 0:
            self._thinking(buffer[:end].rstrip(), out)
            self._state = ThoughtTagState.LEADING
            return buffer[end + len(self._close_tag) :]
        # Hold back a tail that may be the start of the closing tag, and blanks that may precede it.
        partial = next(
            (k for k in range(len(self._close_tag) - 1, 0, -1) if buffer.endswith(self._close_tag[:k])), 0
        )
        body = buffer[: len(buffer) - partial]
        keep = len(buffer) - len(body.rstrip())
        self._held = buffer[len(buffer) - keep :]
        self._thinking(buffer[: len(buffer) - keep], out)
        return ""

    def _thinking(self, piece: str, out: list[tuple[str, str]]) -> None:
        if not piece:
            return
        if self._separator_due:
            piece = THOUGHT_SECTION_SEPARATOR + piece
            self._separator_due = False
        self._thought_emitted = True
        out.append(("thinking", piece))


def split_inline_thoughts(text: str) -> tuple[str, str]:
    """(thinking, text) of a whole content string, exactly as the stream translation splits it."""
    splitter = InlineThoughtSplitter()
    pieces = splitter.feed(text) + splitter.flush()
    thinking = "".join(piece for kind, piece in pieces if kind == "thinking")
    return thinking, "".join(piece for kind, piece in pieces if kind == "text")
