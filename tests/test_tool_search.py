"""Tool search for backends without it (translate/tool_search.py), and what count_tokens counts.

The golden cases under tests/fixtures/anthropic_to_chat/request_*tool_search* show whole requests,
two of them built from Claude Code 2.1.332's own; these tests pin the rules one at a time.
"""

from __future__ import annotations

import copy
import json

from fake_upstream import FakeUpstream, RunningProxy
from loopback import request
from translate.reuse import ToolsMemo, loads_request
from translate.tool_search import DEFERRED_TOOLS_NOTE, without_unloaded_tools

SCHEMA = {"type": "object", "properties": {"q": {"type": "string", "description": "what to look for " * 20}}}


def tool(name: str, deferred: bool = True) -> dict:
    definition = {"name": name, "description": f"The {name} tool. " * 10, "input_schema": SCHEMA}
    if deferred:
        definition["defer_loading"] = True
    return definition


def names(body: dict) -> list[str]:
    return [t["name"] for t in body.get("tools", [])]


def with_history(*blocks_by_turn: list[dict]) -> list[dict]:
    messages = [{"role": "user", "content": "go"}]
    for i, blocks in enumerate(blocks_by_turn):
        messages.append({"role": "assistant" if i % 2 == 0 else "user", "content": blocks})
    return messages


def test_a_request_without_deferred_tools_is_left_as_it_is():
    body = {"tools": [tool("a", deferred=False)], "messages": [{"role": "user", "content": "x"}]}
    assert without_unloaded_tools(body) is body


def test_unloaded_deferred_tools_stay_out_and_the_placeholder_always():
    body = {
        "system": "Deferred tools you may load: crm, billing.",
        "tools": [tool("ToolSearch", deferred=False), tool("DeferredToolPlaceholder"), tool("crm"), tool("billing")],
        "messages": [{"role": "user", "content": "hi"}],
    }
    out = without_unloaded_tools(body)
    assert names(out) == ["ToolSearch"]
    assert out["system"] == body["system"]  # the system prompt names them already: no note


def test_each_way_of_loading_a_tool_counts():
    body = {
        "system": "x",
        "tools": [tool("search", deferred=False), tool("by_reference"), tool("by_text"), tool("by_call"), tool("by_server_search"), tool("unloaded")],
        "messages": with_history(
            [{"type": "tool_use", "id": "t1", "name": "search", "input": {}}],
            [{"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "tool_reference", "tool_name": "by_reference"},
                {"type": "text", "text": '<functions><function>{"name": "by_text", "parameters": {}}</function></functions>'},
            ]}],
            [{"type": "tool_use", "id": "t2", "name": "by_call", "input": {}},
             {"type": "tool_search_tool_result", "tool_use_id": "s1", "content": {
                 "type": "tool_search_tool_search_result", "tool_references": [{"type": "tool_reference", "tool_name": "by_server_search"}]}}],
        ),
    }
    assert names(without_unloaded_tools(body)) == ["search", "by_reference", "by_text", "by_call", "by_server_search"]


def test_a_note_names_the_deferred_tools_when_nothing_else_does():
    body = {"system": [{"type": "text", "text": "You help."}], "tools": [tool("search", deferred=False), tool("crm"), tool("billing")],
            "messages": [{"role": "user", "content": "hi"}]}
    out = without_unloaded_tools(body)
    assert out["system"][-1] == {"type": "text", "text": DEFERRED_TOOLS_NOTE.format(names="crm, billing")}
    # The note stays the same once a tool is loaded, so the upstream's prompt cache stays valid.
    loaded = dict(body, messages=with_history([{"type": "tool_use", "id": "t", "name": "crm", "input": {}}]))
    assert without_unloaded_tools(loaded)["system"] == out["system"]
    assert without_unloaded_tools(dict(body, system=None))["system"] == DEFERRED_TOOLS_NOTE.format(names="crm, billing")


def test_with_only_server_side_search_deferred_tools_are_sent():
    """A tool_search_tool_* runs only at Anthropic: on a Chat backend nothing could ever load a tool."""
    body = {"tools": [{"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"}, tool("a"), tool("b")],
            "messages": [{"role": "user", "content": "hi"}]}
    assert names(without_unloaded_tools(body)) == ["tool_search_tool_bm25", "a", "b"]


def test_the_clients_request_and_its_remembered_tool_list_are_never_changed():
    memo = ToolsMemo()
    raw = json.dumps({"tools": [tool("search", deferred=False), tool("crm"), tool("DeferredToolPlaceholder")],
                      "messages": [{"role": "user", "content": "hi"}]}).encode()
    first = loads_request(raw, memo)
    before = copy.deepcopy(first)
    reduced = without_unloaded_tools(first)
    assert first == before and names(reduced) == ["search"]
    # The next request of the session gets the same reduced list object: its translation is reused.
    assert without_unloaded_tools(loads_request(raw, memo))["tools"] is reduced["tools"]


def test_count_tokens_counts_what_a_chat_backend_would_be_sent():
    """Hundreds of deferred MCP tools must not count while they are not loaded."""
    deferred = [tool(f"mcp__server__tool_{i:03d}") for i in range(200)]
    body = {"model": "claude-sonnet-5-5", "tools": [tool("ToolSearch", deferred=False), *deferred],
            "messages": [{"role": "user", "content": "hi"}], "system": " ".join(t["name"] for t in deferred)}
    loaded = dict(body, messages=[*body["messages"],
                                  {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "ToolSearch", "input": {}}]},
                                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                                "content": [{"type": "tool_reference", "tool_name": "mcp__server__tool_007"}]}]}])
    plain = dict(body, tools=[tool("ToolSearch", deferred=False)])
    with FakeUpstream([]) as upstream, RunningProxy({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url}) as proxy:
        counts = [request(proxy, "POST", "/v1/messages/count_tokens", b).body["input_tokens"] for b in (body, plain, loaded)]
    assert counts[0] == counts[1]  # deferred and unloaded: not counted
    assert counts[1] < counts[2] < counts[1] + 400  # one loaded tool counts, not two hundred
    assert upstream.requests == []
