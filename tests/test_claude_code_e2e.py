"""End to end: the real Claude Code CLI, through switchboard, to fake OpenAI upstreams (Chat Completions, Responses).

Claude Code runs as a subprocess (`claude -p ...`) with an MCP stdio server (tests/mcp_stdio_server.py)
offering ~40 tools. Claude Code defers MCP tools behind its `ToolSearch` tool: they are not in `tools`
until the model searches for them, after which they are sent with `"defer_loading": true`. It also
sends a `DeferredToolPlaceholder` tool with `"defer_loading": true`. The fake upstream plays the model:
it calls ToolSearch for `mcp__fake__weather`, then calls the weather tool, then answers in text.

What the test checks is what reaches the upstream: a deferred tool goes upstream only once loaded, so
the placeholder never does, and the weather tool only after the ToolSearch result.

The test skips when no Claude Code binary is found: SWITCHBOARD_CLAUDE_BIN first, then `claude` on
PATH (.ci/run installs a pinned one into a private prefix when npm is available).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fake_upstream import (
    FakeUpstream,
    Received,
    Reply,
    RunningProxy,
    chunk,
    completion,
    frames,
    function_call_item,
    message_item,
    reasoning_item,
    responses_answer,
    responses_reply,
)

MCP_SERVER = Path(__file__).with_name("mcp_stdio_server.py")
WEATHER_TOOL = "mcp__fake__weather"
PLACEHOLDER = "DeferredToolPlaceholder"
PROMPT = "What is the weather in Paris? Use the weather tool."
CLAUDE_TIMEOUT = 120


def claude_binary() -> str:
    """SWITCHBOARD_CLAUDE_BIN, else `claude` on PATH; the test skips when neither is there."""
    chosen = os.environ.get("SWITCHBOARD_CLAUDE_BIN")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            pytest.skip(f"claude CLI not found: SWITCHBOARD_CLAUDE_BIN={chosen!r} is not an executable file")
        return chosen
    found = shutil.which("claude")
    if not found:
        pytest.skip("claude CLI not found: set SWITCHBOARD_CLAUDE_BIN or install @anthropic-ai/claude-code")
    return found


# ---------------------------------------------------------------------------------------------
# The fake model
# ---------------------------------------------------------------------------------------------


class FakeModel:
    """Answers each Chat Completions request from what it holds, like a model that knows the plan."""

    PATIENCE = 25  # a conversation this long is a loop: end it, and let the assertions say so

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._requests = 0

    def new_call_id(self) -> str:
        # Unique over the whole run: Claude Code merges turns that reuse an id and then loops.
        with self._lock:
            return f"call_e2e_{next(self._ids):04d}"

    def __call__(self, received: Received) -> Reply:
        body = received.json()
        messages = body.get("messages") or []
        with self._lock:
            self._requests += 1
            if self._requests >= self.PATIENCE:
                return self.text(body, "Giving up: the conversation loops.")
        tool_names = function_names(body)
        answered = answered_functions(messages)
        if WEATHER_TOOL in answered:
            return self.text(body, "It is sunny in Paris.")
        if "ToolSearch" in answered:
            return self.tool_call(body, WEATHER_TOOL, {"city": "Paris"})
        if "ToolSearch" in tool_names:
            return self.tool_call(body, "ToolSearch", {"query": f"select:{WEATHER_TOOL}"})
        return self.text(body, "Weather in Paris")  # a side request, e.g. a title without tools

    def text(self, body: dict, text: str) -> Reply:
        if not body.get("stream"):
            return Reply.json(completion(text))
        return Reply.sse(frames(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": text}),
            chunk({}, "stop"),
            chunk(None, usage=usage()),
        ))

    def tool_call(self, body: dict, name: str, arguments: dict) -> Reply:
        call_id = self.new_call_id()
        encoded = json.dumps(arguments)
        if not body.get("stream"):
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}
            return Reply.json(completion(None, tool_calls=[call], finish="tool_calls"))
        start = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return Reply.sse(frames(
            chunk({"role": "assistant", "content": None, "tool_calls": [start]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": encoded}}]}),
            chunk({}, "tool_calls"),
            chunk(None, usage=usage()),
        ))


def usage() -> dict:
    return {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129}


def function_names(body: dict) -> list[str]:
    return [tool.get("function", {}).get("name") for tool in body.get("tools") or []]


def answered_anywhere(body: dict) -> list[str]:
    """Every function whose result the conversation holds."""
    messages = body.get("messages") or []
    calls = {call.get("id"): call.get("function", {}).get("name") for m in messages for call in m.get("tool_calls") or []}
    return [calls.get(m.get("tool_call_id")) for m in messages if m.get("role") == "tool"]


def answered_functions(messages: list[dict]) -> list[str]:
    """The functions whose results end the conversation: the `tool` messages after the last assistant turn.

    Claude Code often follows a tool result with user text ("Tool loaded.", a "System note"), so the
    results are not always the very last message.
    """
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            calls = {call.get("id"): call.get("function", {}).get("name") for call in message.get("tool_calls") or []}
            return [calls[call_id] for call_id in results if call_id in calls]
        if message.get("role") == "tool":
            results.append(message.get("tool_call_id"))
    return []


# ---------------------------------------------------------------------------------------------
# Running Claude Code
# ---------------------------------------------------------------------------------------------


def claude_env(home: Path, proxy_url: str) -> dict[str, str]:
    """A scrubbed environment: nothing of the developer's Claude Code setup, proxies or keys leaks in.

    Claude Code 2.1.332 turns tool search on by itself against a non-Anthropic ANTHROPIC_BASE_URL (its
    debug log says "[ToolSearch:optimistic] mode=tst, ENABLE_TOOL_SEARCH=undefined, result=true"), so
    ENABLE_TOOL_SEARCH is deliberately left unset: the test sees what users get by default. Things that
    would turn it off: CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS, ENABLE_TOOL_SEARCH=false, or the endpoint
    refusing a tool-search request earlier in the process; ENABLE_TOOL_SEARCH=true forces it on.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),  # no ~/.claude.json, settings, plugins or MCP servers of the developer's
        "ANTHROPIC_BASE_URL": proxy_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",  # switchboard has no PROXY_API_KEY here: any key passes
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, bootstrap or catalog calls
        "DISABLE_AUTOUPDATER": "1",
    }


def run_claude(claude: str, args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run Claude Code in its own process group, so a hang kills it and its MCP server together."""
    process = subprocess.Popen(
        [claude, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = process.communicate()
        return subprocess.CompletedProcess(process.args, None, stdout, stderr)  # returncode None: timed out
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def describe(requests: list[dict]) -> str:
    """One line per upstream request, for failure messages: its functions and how it ends."""
    lines = []
    for i, body in enumerate(requests):
        ending = [m.get("role") for m in (body.get("messages") or [])[-3:]]
        lines.append(f"  #{i} stream={body.get('stream')} functions={function_names(body)} last roles={ending}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


def test_claude_code_loads_a_deferred_mcp_tool_through_tool_search(tmp_path):
    """Claude Code -> switchboard -> OpenAI upstream: ToolSearch, then the deferred MCP tool, then text.

    A deferred tool goes upstream only once loaded: the placeholder never, the weather tool only after
    the ToolSearch result names it.
    """
    claude = claude_binary()
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    mcp_config = tmp_path / "mcp.json"
    mcp_config.write_text(json.dumps({
        "mcpServers": {"fake": {"type": "stdio", "command": sys.executable, "args": [str(MCP_SERVER)]}}
    }))
    args = [
        "-p", PROMPT,
        "--mcp-config", str(mcp_config),
        "--strict-mcp-config",  # only this server, whatever else is configured
        "--allowedTools", WEATHER_TOOL,  # ToolSearch needs no permission
    ]

    with FakeUpstream(FakeModel()) as upstream, RunningProxy({
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": upstream.url + "/v1",
        "PREFERRED_PROVIDER": "openai",
        "BIG_MODEL": "gpt-fake",
        "MIDDLE_MODEL": "gpt-fake",
        "SMALL_MODEL": "gpt-fake-mini",
    }) as proxy:
        run = run_claude(claude, args, cwd=work, env=claude_env(home, proxy.url), timeout=CLAUDE_TIMEOUT)
        requests = [received.json() for received in upstream.requests]

    seen = describe(requests)
    output = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}\nupstream requests:\n{seen}"
    assert run.returncode is not None, f"claude did not finish in {CLAUDE_TIMEOUT} s\n{output}"
    assert run.returncode == 0, f"claude exited with {run.returncode}\n{output}"
    assert len(requests) < FakeModel.PATIENCE, f"Claude Code looped\n{output}"
    assert "sunny" in run.stdout.lower(), output

    # Tool search was on: the first request offering ToolSearch is the first turn of the conversation.
    searching = [body for body in requests if "ToolSearch" in function_names(body)]
    assert searching, f"no upstream request offered ToolSearch: Claude Code did not use tool search\n{output}"
    first = function_names(searching[0])
    assert WEATHER_TOOL not in first, f"{WEATHER_TOOL} went upstream before ToolSearch loaded it\n{seen}"
    assert PLACEHOLDER not in first, f"{PLACEHOLDER} went upstream\n{seen}"

    # After the ToolSearch result the weather tool is offered (and called); the placeholder never is.
    loaded = [body for body in requests if "ToolSearch" in answered_anywhere(body)]
    assert loaded, f"no upstream request carried the ToolSearch result\n{seen}"
    for body in loaded:
        assert WEATHER_TOOL in function_names(body), f"{WEATHER_TOOL} not offered after ToolSearch loaded it\n{seen}"
    for body in requests:
        assert PLACEHOLDER not in function_names(body), f"{PLACEHOLDER} went upstream\n{seen}"
    before = [body for body in requests if "ToolSearch" not in answered_anywhere(body)]
    for body in before:
        assert WEATHER_TOOL not in function_names(body), f"{WEATHER_TOOL} went upstream before ToolSearch loaded it\n{seen}"

    # The MCP server's answer reached the model as a `tool` message.
    tool_texts = [m.get("content") for body in requests for m in body.get("messages") or [] if m.get("role") == "tool"]
    assert any("Sunny, 21C in Paris" in json.dumps(text) for text in tool_texts), f"tool messages upstream: {tool_texts}"


# ---------------------------------------------------------------------------------------------
# The same session on a Responses-only model (gpt-5-codex on OpenAI's /v1/responses)
# ---------------------------------------------------------------------------------------------


class FakeResponsesModel(FakeModel):
    """The same plan, answered on the Responses API: each call comes with a reasoning item whose
    `encrypted_content` names the call, as OpenAI's would (opaque, to be sent back unchanged)."""

    def __call__(self, received: Received) -> Reply:
        body = received.json()
        items = body.get("input") or []
        with self._lock:
            self._requests += 1
            if self._requests >= self.PATIENCE:
                return self.answer(body, [message_item("Giving up: the conversation loops.")])
        tool_names = [tool.get("name") for tool in body.get("tools") or []]
        answered = answered_items(items)
        if WEATHER_TOOL in answered:
            return self.answer(body, [message_item("It is sunny in Paris.")])
        if "ToolSearch" in answered:
            return self.call(body, WEATHER_TOOL, {"city": "Paris"})
        if "ToolSearch" in tool_names:
            return self.call(body, "ToolSearch", {"query": f"select:{WEATHER_TOOL}"})
        return self.answer(body, [message_item("Weather in Paris")])

    def call(self, body: dict, name: str, arguments: dict) -> Reply:
        call_id = self.new_call_id()
        reasoning = reasoning_item([f"I should call {name}."], f"enc-{call_id}", item_id=f"rs_{call_id}")
        return self.answer(body, [reasoning, function_call_item(name, arguments, call_id, item_id=f"fc_{call_id}")])

    @staticmethod
    def answer(body: dict, items: list[dict]) -> Reply:
        return responses_reply(responses_answer(items, model=body.get("model", "gpt-5-codex")), body.get("stream") is True)


def answered_items(items: list[dict]) -> list[str]:
    """The functions whose outputs end the input: the function_call_output items after the last call's turn."""
    names = {item.get("call_id"): item.get("name") for item in items if item.get("type") == "function_call"}
    outputs: list[str] = []
    for item in reversed(items):
        kind = item.get("type")
        if kind == "function_call_output":
            outputs.append(item.get("call_id"))
        elif kind in ("function_call", "reasoning") or item.get("role") == "assistant":
            break
    return [names[call_id] for call_id in outputs if call_id in names]


def test_claude_code_on_a_responses_only_model_keeps_its_reasoning_across_tool_calls(tmp_path):
    """Claude Code -> switchboard -> gpt-5-codex on /v1/responses: ToolSearch, the MCP tool, then text.

    Every call came with a reasoning item; on each later turn that item goes back (its
    encrypted_content unchanged, without its rs_ id) right before its call: the model keeps its chain of
    thought across tool calls, with no state in the gateway.
    """
    claude = claude_binary()
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    mcp_config = tmp_path / "mcp.json"
    mcp_config.write_text(json.dumps({
        "mcpServers": {"fake": {"type": "stdio", "command": sys.executable, "args": [str(MCP_SERVER)]}}
    }))
    args = ["-p", PROMPT, "--mcp-config", str(mcp_config), "--strict-mcp-config", "--allowedTools", WEATHER_TOOL]
    with FakeUpstream(FakeResponsesModel()) as upstream, RunningProxy({
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": upstream.url + "/v1",
        "PREFERRED_PROVIDER": "openai",
        "BIG_MODEL": "gpt-5-codex",
        "SMALL_MODEL": "gpt-5.1-codex-mini",
    }) as proxy:
        run = run_claude(claude, args, cwd=work, env=claude_env(home, proxy.url), timeout=CLAUDE_TIMEOUT)
        received = list(upstream.requests)

    paths = {request.path for request in received}
    bodies = [request.json() for request in received]
    output = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}\nupstream paths: {paths}"
    assert run.returncode == 0, f"claude exited with {run.returncode}\n{output}"
    assert "sunny" in run.stdout.lower(), output
    assert paths == {"/v1/responses"}, output
    assert all(body["store"] is False for body in bodies)

    # The turn carrying the weather result also carries both earlier calls, each after its reasoning.
    final = [body for body in bodies if WEATHER_TOOL in answered_items(body.get("input") or [])]
    assert final, f"no request carried the weather result\n{output}"
    items = final[-1]["input"]
    calls = [(position, item) for position, item in enumerate(items) if item.get("type") == "function_call"]
    assert [item["name"] for _, item in calls] == ["ToolSearch", WEATHER_TOOL], json.dumps(items)[:3000]
    for position, call in calls:
        reasoning = items[position - 1]
        assert reasoning.get("type") == "reasoning", json.dumps(items)[:3000]
        assert reasoning["encrypted_content"] == f"enc-{call['call_id']}"
        assert "id" not in reasoning and "id" not in call


# ---------------------------------------------------------------------------------------------
# Routing by request class: Claude Code's subagent goes to ROUTE_SUBAGENT's model
# ---------------------------------------------------------------------------------------------


class SubagentPlan(FakeModel):
    """The main loop hands the task to a subagent through Claude Code's Agent tool, then answers with
    what it said; the subagent (recognised by the model switchboard sent it to) answers at once."""

    def __call__(self, received: Received) -> Reply:
        body = received.json()
        with self._lock:
            self._requests += 1
            if self._requests >= self.PATIENCE:
                return self.text(body, "Giving up: the conversation loops.")
        if body.get("model") == "gpt-sub":
            return self.text(body, "The subagent counted 42.")
        names = function_names(body)
        if "Agent" in answered_functions(body.get("messages") or []):
            return self.text(body, "Final answer: 42.")
        if "Agent" in names:
            return self.tool_call(body, "Agent", {"description": "count", "prompt": "Count to 42 and say the number.",
                                                  "subagent_type": "general-purpose"})
        return self.text(body, "Counting")


def test_claude_codes_subagent_is_routed_to_route_subagent(tmp_path):
    """With ROUTE_SUBAGENT set, the subagent's requests (x-claude-code-agent-id) reach its model, the main
    loop's reach the tier model; no hint headers needed."""
    claude = claude_binary()
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    with FakeUpstream(SubagentPlan()) as upstream, RunningProxy({
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": upstream.url + "/v1", "PREFERRED_PROVIDER": "openai",
        "BIG_MODEL": "gpt-main", "MIDDLE_MODEL": "gpt-main", "SMALL_MODEL": "gpt-small", "ROUTE_SUBAGENT": "openai/gpt-sub",
    }) as proxy:
        run = run_claude(claude, ["-p", "Use a subagent to count to 42.", "--allowedTools", "Agent"], cwd=work,
                         env=claude_env(home, proxy.url), timeout=CLAUDE_TIMEOUT)
        models = [received.json().get("model") for received in upstream.requests]
    output = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-3000:]}\nmodels upstream: {models}"
    assert run.returncode == 0, output
    assert "42" in run.stdout, output
    assert "gpt-sub" in models, output  # the subagent's turn
    assert models.count("gpt-main") >= 2, output  # the main loop before and after it
