"""Tool search for backends that have none: a deferred tool goes upstream once the conversation loaded it.

On Anthropic, a tool marked `defer_loading: true` stays out of the model's context until a tool
search names it with a `tool_reference` block. A Chat Completions backend knows nothing of that:
every tool it is sent is in the prompt (and OpenAI refuses more than 128), which is exactly what
tool search exists to avoid. So an Anthropic request bound for such a backend is first reduced to
the tools its conversation has loaded.

What Claude Code 2.1.3xx sends (observed): its own client-side `ToolSearch` tool; a
`DeferredToolPlaceholder` tool with `defer_loading: true`; the deferred tools' names listed in a
`role: "system"` message; after a search, a tool_result holding `tool_reference` blocks, and from
then on the loaded tool in `tools` with `defer_loading: true`.

Policies:
- A deferred tool is loaded when the conversation shows it: a `tool_reference` naming it (in a
  tool_result, or in a server tool-search result), a `<function>{..."name": ...}</function>` line
  naming it in a tool_result's text (the text form of a search result), or an earlier call to it.
  It then goes upstream in every request of the conversation: the history travels with each
  request, so this is stateless.
- The client's own search tool is an ordinary tool and passes as one.
- Claude Code's `DeferredToolPlaceholder` (reserved, "never call this tool", there only to keep
  deferred loading on) never goes upstream: sent as a function, it would invite a call.
- When the only way to load tools is Anthropic's server-side search (`tool_search_tool_*`), which
  a Chat Completions backend cannot run (it is dropped with the other server tools), nothing could
  ever load: the deferred tools are sent as ordinary ones [LOSSY: no deferral].
- When nothing in the system prompt (or a system turn) names a deferred tool, one line naming them
  all is added to the system prompt, so the model knows what it can search for. Claude Code names
  them itself; the line is stable across a conversation, so upstream prompt caches stay valid.
- Pure: returns a new body; the client's tool list (maybe shared between requests, see
  translate/reuse.py) is never changed in place. For a remembered list, each reduced list is
  remembered too (per set of loaded names), so its translation is also done once.
"""

from __future__ import annotations

import json
import re

from translate.reuse import RememberedList

# Claude Code's reserved tool that only keeps deferred loading switched on.
PLACEHOLDER_TOOL_NAMES = frozenset({"DeferredToolPlaceholder"})
# Anthropic's server-side tool search tools: `tool_search_tool_regex_20251119`, `..._bm25_...`.
SERVER_SEARCH_TYPE_PREFIX = "tool_search_tool_"
DEFERRED_TOOLS_NOTE = (
    "These tools exist but are not loaded yet; load one with the tool search tool before calling it: {names}."
)
REDUCED_LISTS_REMEMBERED = 32  # per remembered tool list: distinct sets of loaded tools kept
_FUNCTION_LINE = re.compile(r"<function>(.*?)</function>", re.S)


class DeferredTools:
    """What a tool list defers: the deferred names, whether a placeholder is there, server-side search."""

    __slots__ = ("names", "placeholders", "server_search")

    def __init__(self, tools: list) -> None:
        names: list[str] = []
        placeholders = False
        server_search = False
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            name = tool.get("name")
            kind = tool.get("type")
            if isinstance(kind, str) and kind.startswith(SERVER_SEARCH_TYPE_PREFIX):
                server_search = True
            if not isinstance(name, str):
                continue  # not a tool the translator will send; its own checks say so
            if name in PLACEHOLDER_TOOL_NAMES:
                placeholders = True
            elif tool.get("defer_loading") is True:
                names.append(name)
        self.names = tuple(names)
        self.placeholders = placeholders
        self.server_search = server_search

    @property
    def any(self) -> bool:
        return bool(self.names) or self.placeholders


def without_unloaded_tools(body: dict) -> dict:
    """`body` as a backend without tool search should get it (see the policies); `body` itself when
    nothing changes."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return body
    deferred = _deferred_of(tools)
    if not deferred.any:
        return body
    if deferred.server_search:
        loaded = frozenset(deferred.names)  # nothing could load them here: send them all
    else:
        loaded = frozenset(deferred.names) & _loaded_names(body.get("messages"))
    out = dict(body, tools=_reduced(tools, deferred, loaded))
    if deferred.names and not deferred.server_search and not _system_names_any(body, deferred.names):
        out["system"] = _with_note(body.get("system"), DEFERRED_TOOLS_NOTE.format(names=", ".join(deferred.names)))
    return out


def _deferred_of(tools: list) -> DeferredTools:
    derived = getattr(tools, "derived", None)
    if derived is None:
        return DeferredTools(tools)
    deferred = derived.get("deferred")
    if deferred is None:
        deferred = derived["deferred"] = DeferredTools(tools)
    return deferred  # type: ignore[return-value]


def _reduced(tools: list, deferred: DeferredTools, loaded: frozenset[str]) -> list:
    """The tools to send: ordinary ones, and deferred ones that are loaded; never a placeholder."""
    derived = getattr(tools, "derived", None)
    reduced_lists = derived.setdefault("reduced", {}) if derived is not None else None
    if reduced_lists is not None and loaded in reduced_lists:
        return reduced_lists[loaded]
    hidden = (set(deferred.names) - loaded) | PLACEHOLDER_TOOL_NAMES
    kept = [tool for tool in tools if not (isinstance(tool, dict) and isinstance(tool.get("name"), str) and tool["name"] in hidden)]
    if reduced_lists is None:
        return kept
    if len(reduced_lists) >= REDUCED_LISTS_REMEMBERED:
        reduced_lists.clear()
    reduced = reduced_lists[loaded] = RememberedList(kept)
    return reduced


def _loaded_names(messages: object) -> frozenset[str]:
    """Every tool name the conversation has loaded or called."""
    names: set[str] = set()
    if not isinstance(messages, list):
        return frozenset()
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "tool_use":
                name = block.get("name")
                if isinstance(name, str):
                    names.add(name)
            elif kind == "tool_result":
                _names_in_result(block.get("content"), names)
            elif kind == "tool_search_tool_result":
                result = block.get("content")
                references = result.get("tool_references") if isinstance(result, dict) else None
                _names_in_result(references, names)
    return frozenset(names)


def _names_in_result(content: object, names: set[str]) -> None:
    if isinstance(content, str):
        _names_in_text(content, names)
        return
    if not isinstance(content, list):
        return
    for item in content:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "tool_reference":
            name = item.get("tool_name")
            if isinstance(name, str):
                names.add(name)
        elif kind == "text" and isinstance(item.get("text"), str):
            _names_in_text(item["text"], names)


def _names_in_text(text: str, names: set[str]) -> None:
    """Names in `<function>{"name": ...}</function>` lines, the text form of a search result."""
    if "<function>" not in text:
        return
    for match in _FUNCTION_LINE.finditer(text):
        try:
            definition = json.loads(match.group(1))
        except (ValueError, RecursionError):  # a tool's output, not ours to judge
            continue
        name = definition.get("name") if isinstance(definition, dict) else None
        if isinstance(name, str):
            names.add(name)


def _system_names_any(body: dict, names: tuple[str, ...]) -> bool:
    """Does the system prompt, or a `role: "system"` turn, name any of `names`?"""
    texts = [_text_of(body.get("system"))]
    for message in body.get("messages") or ():
        if isinstance(message, dict) and message.get("role") == "system":
            texts.append(_text_of(message.get("content")))
    text = "\n".join(texts)
    return any(name in text for name in names)


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def _with_note(system: object, note: str) -> object:
    if isinstance(system, list):
        return [*system, {"type": "text", "text": note}]
    if isinstance(system, str) and system:
        return f"{system}\n\n{note}"
    return note
