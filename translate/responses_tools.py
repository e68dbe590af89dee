"""Responses tools for the hub: function, custom (freeform, e.g. apply_patch), namespace (MCP),
client tool_search and local_shell, as Anthropic tools; and tool_choice.

Part of the Responses -> Anthropic request translation (translate/responses_to_anthropic_request.py,
whose docstring holds the policies). The names given here are what the answer's way back undoes,
through translate/responses_context.py. Pure.
"""

from __future__ import annotations

import copy

from .chat_to_anthropic_request import ANTHROPIC_TOOL_NAME, finish_tool_choice
from .errors import InvalidRequest
from .tools import chat_function_name

TOOL_SEARCH_TOOL = "tool_search"
LOCAL_SHELL_TOOL = "local_shell"
NAMESPACE_SEPARATOR = "__"
MAX_TOOL_NAME_CHARS = 128  # Anthropic's pattern ^[a-zA-Z0-9_-]{1,128}$
LOCAL_SHELL_DESCRIPTION = "Run a command on the user's machine and return its output."
LOCAL_SHELL_SCHEMA = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}, "description": "The command and its arguments."},
        "workdir": {"type": "string", "description": "The working directory."},
        "timeout_ms": {"type": "integer", "description": "Time limit in milliseconds."},
    },
    "required": ["command"],
}
TOOL_SEARCH_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to search the available tools for."}},
    "required": ["query"],
}


class ResponsesTools:
    """The client's tools (from `tools`, tool search results and additional_tools) as Anthropic tools.

    `collect` each source in order, `flatten` once, then read `anthropic`, `sent_name` and the
    records for the way back (`custom`, `namespaced`, `tool_search`, `dropped`).
    """

    def __init__(self) -> None:
        # Collected: (namespace or None, tool) in order; namespaced members listed under their namespace.
        self._entries: list[tuple[str | None, dict, str]] = []
        self._seen: set[tuple[str | None, str]] = set()
        # Results of flatten():
        self.anthropic: list[dict] = []
        self.by_key: dict[tuple[str | None, str], str] = {}  # (namespace, client name) -> sent name
        self.custom: set[str] = set()
        self.namespaced: dict[str, tuple[str, str]] = {}
        self.tool_search: set[str] = set()
        self.dropped: list[str] = []

    def collect(self, tools: object, param: str, *, repeats_allowed: bool = True) -> None:
        """Add a list of Responses tools; a repeated name is a 400 unless `repeats_allowed`."""
        if tools is None:
            return
        if not isinstance(tools, list):
            raise InvalidRequest(f"{param} must be an array.", param=param)
        for i, tool in enumerate(tools):
            at = f"{param}[{i}]"
            if not isinstance(tool, dict):
                raise InvalidRequest(f"{at} must be an object.", param=at)
            kind = tool.get("type")
            if kind == "namespace":
                namespace = tool.get("name")
                if not isinstance(namespace, str) or not namespace:
                    raise InvalidRequest(f"{at}.name is required.", param=f"{at}.name")
                members = tool.get("tools")
                if not isinstance(members, list):
                    raise InvalidRequest(f"{at}.tools must be an array.", param=f"{at}.tools")
                for j, member in enumerate(members):
                    self._add(namespace, member, f"{at}.tools[{j}]", repeats_allowed)
            else:
                self._add(None, tool, at, repeats_allowed)

    def _add(self, namespace: str | None, tool: object, at: str, repeats_allowed: bool) -> None:
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{at} must be an object.", param=at)
        kind = tool.get("type")
        if kind in ("function", "custom"):
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"{at}.name is required.", param=f"{at}.name")
        elif kind == "tool_search" and tool.get("execution") == "client":
            name = TOOL_SEARCH_TOOL
        elif kind == "local_shell":
            name = LOCAL_SHELL_TOOL
        else:
            label = tool.get("server_label") or tool.get("name") or kind
            self.dropped.append(str(label))
            return
        key = (namespace, name)
        if key in self._seen:
            if not repeats_allowed:
                raise InvalidRequest(f"{at}.name {name!r} is used by another tool.", param=f"{at}.name")
            return  # the first tool of a name wins (a search may return a tool already listed)
        self._seen.add(key)
        self._entries.append((namespace, tool, at))

    def flatten(self) -> None:
        top_level = {name for namespace, tool, _ in self._entries if namespace is None for name in [self._name(tool)]}
        short_counts: dict[str, int] = {}
        for namespace, tool, _ in self._entries:
            if namespace is not None:
                short_counts[self._name(tool)] = short_counts.get(self._name(tool), 0) + 1
        for namespace, tool, at in self._entries:
            name = self._name(tool)
            if namespace is None:
                if not ANTHROPIC_TOOL_NAME.fullmatch(name):
                    raise InvalidRequest(f"{at}.name {name!r} must match ^[a-zA-Z0-9_-]{{1,128}}$.", param=f"{at}.name")
                sent = name
            else:
                clash = name in top_level or short_counts[name] > 1
                sent = f"{namespace}{NAMESPACE_SEPARATOR}{name}" if clash else name
                if not ANTHROPIC_TOOL_NAME.fullmatch(sent):
                    sent = chat_function_name(sent)  # also fits Anthropic's pattern
                self.namespaced[sent] = (namespace, name)
            if sent in self.by_key.values():
                raise InvalidRequest(f"{at}.name {name!r} is used by another tool.", param=f"{at}.name")
            self.by_key[(namespace, name)] = sent
            self.anthropic.append(self._convert(tool, sent))

    @staticmethod
    def _name(tool: dict) -> str:
        if tool["type"] == "tool_search":
            return TOOL_SEARCH_TOOL
        if tool["type"] == "local_shell":
            return LOCAL_SHELL_TOOL
        return tool["name"]

    def _convert(self, tool: dict, sent: str) -> dict:
        kind = tool["type"]
        description = tool.get("description") if isinstance(tool.get("description"), str) else ""
        if kind == "function":
            schema = _object_schema(tool.get("parameters"))
        elif kind == "custom":
            self.custom.add(sent)
            description = _custom_description(description, tool.get("format"))
            schema = {
                "type": "object",
                "properties": {"input": {"type": "string", "description": "The raw input text (not JSON)."}},
                "required": ["input"],
                "additionalProperties": False,
            }
        elif kind == "tool_search":
            self.tool_search.add(sent)
            parameters = tool.get("parameters")
            schema = _object_schema(parameters) if parameters is not None else copy.deepcopy(TOOL_SEARCH_SCHEMA)
            description = description or "Search for more tools to use."
        else:
            schema = copy.deepcopy(LOCAL_SHELL_SCHEMA)
            description = description or LOCAL_SHELL_DESCRIPTION
        converted: dict = {"name": sent}
        if description:
            converted["description"] = description
        converted["input_schema"] = schema
        return converted

    def sent_name(self, name: str, namespace: object) -> str:
        """The upstream name for a call in the history to the client's `name` (in `namespace`)."""
        key = (namespace if isinstance(namespace, str) and namespace else None, name)
        if key in self.by_key:
            return self.by_key[key]
        if key[0] is None:
            for (other_namespace, other_name), sent in self.by_key.items():
                if other_name == name and other_namespace is not None and sent == name:
                    return sent
        return name if ANTHROPIC_TOOL_NAME.fullmatch(name) else chat_function_name(name)


def _object_schema(parameters: object) -> dict:
    if parameters is None:
        return {"type": "object", "properties": {}}
    if isinstance(parameters, dict) and parameters.get("type", "object") == "object":
        return parameters if "type" in parameters else {"type": "object", **parameters}
    raise InvalidRequest("A function tool's parameters must be a JSON schema of type object.", param="tools")


def _custom_description(description: str, fmt: object) -> str:
    """A custom tool's description, plus what its one `input` string must look like."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "grammar":
        syntax = fmt.get("syntax") or "lark"
        rule = (
            f"Pass the raw text (not JSON) in the `input` argument. It must follow this {syntax} grammar:\n"
            f"```\n{fmt.get('definition', '')}\n```"
        )
    else:
        rule = "Pass the raw text (not JSON) in the `input` argument."
    return f"{description}\n\n{rule}" if description else rule


def responses_tool_choice(body: dict, tools: ResponsesTools) -> tuple[list[dict], dict | None]:
    """The tools to send (allowed_tools filters them) and the Anthropic tool_choice, if any."""
    choice = body.get("tool_choice")
    sent = tools.anthropic
    known = {tool["name"] for tool in sent}
    if choice is None:
        converted = None
    elif choice in ("none", "auto"):
        converted = {"type": choice}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        name = choice.get("name")
        flat = tools.sent_name(name, choice.get("namespace")) if isinstance(name, str) else None
        if flat not in known:
            raise InvalidRequest("tool_choice.name must name one of the tools.", param="tool_choice.name")
        converted = {"type": "tool", "name": flat}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise InvalidRequest("tool_choice.mode must be auto or required.", param="tool_choice.mode")
        entries = choice.get("tools")
        if not isinstance(entries, list):
            raise InvalidRequest("tool_choice.tools must be an array.", param="tool_choice.tools")
        allowed = set()
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if entry.get("type") in ("function", "custom") and isinstance(entry.get("name"), str):
                allowed.add(tools.sent_name(entry["name"], entry.get("namespace")))
            elif entry.get("type") == "tool_search":
                allowed |= tools.tool_search
            elif entry.get("type") == "local_shell":
                allowed.add(LOCAL_SHELL_TOOL)
            # Hosted tools named here were dropped with the tools themselves.
        sent = [tool for tool in sent if tool["name"] in allowed]
        converted = {"type": "auto" if mode == "auto" else "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("type"), str):
        converted = {"type": "auto"}  # a hosted tool or an MCP server: dropped, so the model chooses [LOSSY]
    else:
        raise InvalidRequest(
            "tool_choice must be none, auto, required, a function or custom tool, or allowed_tools.",
            param="tool_choice",
        )
    return finish_tool_choice(sent, converted, body.get("parallel_tool_calls"))


