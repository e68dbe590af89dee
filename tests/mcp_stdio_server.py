"""A tiny MCP server over stdio, for tests/test_claude_code_e2e.py.

Newline-delimited JSON-RPC 2.0 on stdin and stdout, standard library only. It offers about forty
tools (`weather` and `tool_001`..`tool_039`), enough for Claude Code to defer them behind its tool
search. `weather` answers "Sunny, 21C in <city>"; the others answer "ok". Notifications (messages
without an id) are ignored.
"""

from __future__ import annotations

import json
import sys

PROTOCOL_VERSION = "2025-06-18"

WEATHER = {
    "name": "weather",
    "description": "Get the current weather for a city.",
    "inputSchema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
        "required": ["city"],
    },
}

FILLERS = [
    {
        "name": f"tool_{n:03d}",
        "description": f"Filler tool number {n}; it does nothing useful.",
        "inputSchema": {"type": "object", "properties": {"value": {"type": "string"}}},
    }
    for n in range(1, 40)
]


def answer(message: dict) -> dict | None:
    """The response to one request, or None for a notification."""
    if "id" not in message:
        return None
    method = message.get("method")
    params = message.get("params") or {}
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion") or PROTOCOL_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake", "version": "1.0.0"},
        }
    elif method == "tools/list":
        result = {"tools": [WEATHER, *FILLERS]}
    elif method == "tools/call":
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if name == "weather":
            text = f"Sunny, 21C in {arguments.get('city', 'somewhere')}"
        elif any(tool["name"] == name for tool in FILLERS):
            text = "ok"
        else:
            return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32602, "message": f"Unknown tool: {name}"}}
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    elif method == "ping":
        result = {}
    elif method in ("resources/list", "prompts/list", "resources/templates/list"):
        key = {"resources/list": "resources", "prompts/list": "prompts", "resources/templates/list": "resourceTemplates"}[method]
        result = {key: []}
    else:
        return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": f"Method not found: {method}"}}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        reply = answer(message) if isinstance(message, dict) else None
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
