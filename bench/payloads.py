"""Request bodies for the benchmark, built deterministically (no randomness, no network).

Policies:
- The Claude Code-sized requests reuse the builders in `bench/token_accuracy.py`, so the token
  benchmark and the load benchmark measure the same shapes: 3 system blocks, 24 tools with
  `$schema` and `additionalProperties: false`, a `role: "system"` turn, adaptive thinking,
  `output_config`, `metadata`. The late-session request is topped up here to ~300 KB.
- The model name tells the fake upstream how to answer (see `bench/fake_upstream.py`):
  `bench-json` is a short non-stream answer, `bench-s50` a 50-event stream, `bench-s5p1000` five
  events one second apart. The proxy forwards the name unchanged (rule 5 of README "How models map";
  on the OpenAI front a `claude-` prefix routes to the Anthropic upstream).
- Bodies are serialised once, compactly, the way SDKs send them.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import token_accuracy as shapes  # noqa: E402

LATE_SESSION_TARGET_BYTES = 300_000
TOOLS_REQUEST_TARGET_BYTES = 31_000
# Source files read by the extra turns of the late session, in order (standard library, so they exist).
EXTRA_READS = ["email.message", "tarfile", "zipfile", "configparser", "pathlib", "logging.handlers", "ftplib", "calendar"]


def encode(body: dict) -> bytes:
    """A body as the SDKs send it: compact JSON, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# =============================================================================================
# Small requests
# =============================================================================================


def anthropic_small(model: str, stream: bool = False) -> dict:
    """A one-turn chat on the Anthropic front, ~250 bytes."""
    body = {
        "model": model,
        "max_tokens": 1024,
        "system": "You are a concise assistant.",
        "messages": [{"role": "user", "content": "In two sentences: why do HTTP/1.1 clients reuse connections?"}],
    }
    if stream:
        body["stream"] = True
    return body


def openai_small(model: str, stream: bool = False) -> dict:
    """A one-turn chat on the OpenAI front, ~250 bytes."""
    body = {
        "model": model,
        "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "In two sentences: why do HTTP/1.1 clients reuse connections?"},
        ],
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def responses_small(model: str, stream: bool = False) -> dict:
    """The same one-turn chat on the Responses front (Codex's API), ~250 bytes."""
    body = {
        "model": model,
        "instructions": "You are a concise assistant.",
        "input": [{"role": "user", "content": "In two sentences: why do HTTP/1.1 clients reuse connections?"}],
        "max_output_tokens": 1024,
        "store": False,
    }
    if stream:
        body["stream"] = True
    return body


# =============================================================================================
# Tool-heavy and Claude Code-sized requests
# =============================================================================================


def tools_request(model: str) -> dict:
    """~31 KB: 20 tool schemas and a short tool loop (one call, one result, a follow-up question)."""
    tools = shapes.agent_tools()[:20]
    body = {
        "model": model,
        "max_tokens": 4096,
        "system": "You are a coding assistant. Use the tools to inspect the repository before answering.",
        "tools": tools,
        "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": "Which files define the HTTP client, and how large are they?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "I'll list the Python files first."},
                    {"type": "tool_use", "id": "toolu_01" + shapes._hex("bench-glob", 22), "name": tools[0]["name"], "input": {"pattern": "**/*.py"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01" + shapes._hex("bench-glob", 22), "content": ""}],
            },
        ],
    }
    # Fill the tool result with a file listing until the body reaches the target size.
    listing: list[str] = []
    result = body["messages"][2]["content"][0]
    index = 0
    while len(encode(body)) < TOOLS_REQUEST_TARGET_BYTES:
        listing.append(f"/home/dev/projects/switchboard/module_{index:03d}/{shapes._hex(f'f{index}', 8)}.py  {shapes._number(f's{index}', 200, 90000)} bytes")
        result["content"] = "\n".join(listing)
        index += 1
    return body


def claude_code_first(model: str) -> dict:
    """The ~76 KB first request of a Claude Code session (streamed), with the bench model name."""
    body = shapes.claude_code_first_request()
    body["model"] = model
    return body


def claude_code_late(model: str) -> dict:
    """A late-session request: the token benchmark's late session plus more file reads, ~300 KB."""
    body = shapes.late_session_request()
    body["model"] = model
    messages = body["messages"]
    closing = messages[-2:]  # the last assistant answer and the user's new question stay last
    del messages[-2:]
    turn = 0
    for module_name in EXTRA_READS:
        if len(encode(body)) >= LATE_SESSION_TARGET_BYTES:
            break
        turn += 1
        tool_id = "toolu_01" + shapes._hex(f"bench-read{turn}", 22)
        path = "/home/dev/projects/switchboard/vendor/" + module_name.replace(".", "/") + ".py"
        messages.append({"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": "Read", "input": {"file_path": path}}]})
        source = shapes._stdlib_source(module_name, 1, 2000)
        room = LATE_SESSION_TARGET_BYTES - len(encode(body)) - 200
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": source[: max(0, room)]}]})
    messages.extend(closing)
    return body


def count_tokens_body(body: dict, model: str) -> dict:
    """What Claude Code sends to count_tokens for a request: model, system, tools, messages."""
    counted = {key: copy.deepcopy(body[key]) for key in ("system", "tools", "messages", "thinking") if key in body}
    return {"model": model, **counted}
