"""End to end: the real Codex CLI (`codex exec`), through switchboard's Responses front, to a fake Chat
Completions upstream scripted to call `exec_command` and then `apply_patch`: the command runs and the
file is written.

Codex speaks only the Responses API; switchboard serves it through the hub (Responses -> Anthropic
Messages -> Chat). `apply_patch` is a freeform `custom` tool: it reaches the upstream as a function with
one string argument and must come back to Codex as a `custom_tool_call` with the raw patch, or Codex
rejects it. The model name is one Codex knows (`gpt-5.5`), so it offers its patch tool.

A third run goes to a fake OpenAI Responses upstream (`OPENAI_WIRE_API=responses`): there the requests and
answers pass through untouched, custom tools and encrypted reasoning included.

The tests skip when no Codex binary is found: SWITCHBOARD_CODEX_BIN first, then `codex` on PATH
(.ci/run installs a pinned one into a private prefix when npm is available).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fake_upstream import (
    FakeUpstream,
    Received,
    Reply,
    RunningProxy,
    chunk,
    frames,
    function_call_item,
    message_item,
    reasoning_item,
    responses_answer,
    responses_reply,
)

PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from switchboard\n*** End Patch\n"
USAGE = {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}


def codex_binary() -> str:
    chosen = os.environ.get("SWITCHBOARD_CODEX_BIN")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            pytest.skip(f"codex CLI not found: SWITCHBOARD_CODEX_BIN={chosen!r} is not an executable file")
        return chosen
    found = shutil.which("codex")
    if not found:
        pytest.skip("codex CLI not found: set SWITCHBOARD_CODEX_BIN or install @openai/codex")
    return found


def function_names(body: dict) -> list[str]:
    return [tool.get("function", {}).get("name") for tool in body.get("tools") or []]


def answered(messages: list[dict]) -> list[str]:
    """The functions whose results follow the last assistant turn."""
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            calls = {call["id"]: call["function"]["name"] for call in message.get("tool_calls") or []}
            return [calls.get(call_id) for call_id in results]
        if message.get("role") == "tool":
            results.append(message.get("tool_call_id"))
    return []


class FakeModel:
    """Runs a command, then writes a file with apply_patch, then says it is done."""

    PATIENCE = 12

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.requests = 0

    def __call__(self, received: Received) -> Reply:
        body = received.json()
        self.requests += 1
        done = answered(body.get("messages") or [])
        if self.requests >= self.PATIENCE or "apply_patch" in done:
            return self.text("Done: hello.txt written.")
        if "exec_command" in done:
            return self.call("apply_patch", {"input": PATCH})
        if "exec_command" in function_names(body):
            return self.call("exec_command", {"cmd": "echo ran > ran.txt"})
        return self.text("No tools were offered.")

    def call(self, name: str, arguments: dict) -> Reply:
        start = {"index": 0, "id": f"call_e2e_{next(self.ids)}", "type": "function", "function": {"name": name, "arguments": ""}}
        return Reply.sse(frames(
            chunk({"role": "assistant", "content": None, "tool_calls": [start]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps(arguments)}}]}),
            chunk({}, "tool_calls"),
            chunk(None, usage=USAGE),
        ))

    def text(self, text: str) -> Reply:
        return Reply.sse(frames(chunk({"role": "assistant", "content": text}), chunk({}, "stop"), chunk(None, usage=USAGE)))


class FakeClaude:
    """The same plan as FakeModel, answered in Anthropic's dialect, with a signed thinking block per turn."""

    PATIENCE = 12

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.requests = 0

    def __call__(self, received: Received) -> Reply:
        body = received.json()
        self.requests += 1
        messages = body.get("messages") or []
        last, previous = messages[-1], (messages[-2] if len(messages) > 1 else {})
        answered_tools = [block.get("name") for block in previous.get("content") or [] if isinstance(block, dict)
                          and block.get("type") == "tool_use"] if isinstance(last.get("content"), list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in last["content"]) else []
        if self.requests >= self.PATIENCE or "apply_patch" in answered_tools:
            return self.message([{"type": "text", "text": "Done: hello.txt written."}], "end_turn")
        if "exec_command" in answered_tools:
            return self.message([("thinking", "now the file"), ("apply_patch", {"input": PATCH})], "tool_use")
        return self.message([("thinking", "first a command"), ("exec_command", {"cmd": "echo ran > ran.txt"})], "tool_use")

    def message(self, blocks: list, stop: str) -> Reply:
        events = [{"type": "message_start", "message": {"id": f"msg_{next(self.ids)}", "type": "message", "role": "assistant",
                                                        "model": "claude-sonnet-5-5", "content": [], "stop_reason": None,
                                                        "usage": {"input_tokens": 50, "output_tokens": 1}}}]
        for index, block in enumerate(blocks):
            if isinstance(block, dict):  # text
                events += [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                           {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": block["text"]}}]
            elif block[0] == "thinking":
                events += [{"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                           {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": block[1]}},
                           {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "sig:" + block[1]}}]
            else:
                events += [{"type": "content_block_start", "index": index,
                            "content_block": {"type": "tool_use", "id": f"toolu_e2e_{next(self.ids)}", "name": block[0], "input": {}}},
                           {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": json.dumps(block[1])}}]
            events.append({"type": "content_block_stop", "index": index})
        events += [{"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 5}},
                   {"type": "message_stop"}]
        return Reply.sse([f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


def run_codex(codex: str, tmp_path: Path, proxy_url: str) -> tuple[subprocess.CompletedProcess, Path]:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "gpt-5.5"\n'
        'model_provider = "switchboard"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "workspace-write"\n\n'
        "[model_providers.switchboard]\n"
        'name = "switchboard"\n'
        f'base_url = "{proxy_url}/v1"\n'
        'env_key = "SWITCHBOARD_API_KEY"\n'
        'wire_api = "responses"\n'
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "SWITCHBOARD_API_KEY": "x",
           "CODEX_HOME": str(home / ".codex")}
    run = subprocess.run([codex, "exec", "--skip-git-repo-check", "Create hello.txt"], cwd=work, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    return run, work


def test_codex_runs_a_command_and_applies_a_patch_through_switchboard(tmp_path: Path):
    codex = codex_binary()
    model = FakeModel()
    with FakeUpstream(model) as upstream, RunningProxy({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": upstream.url + "/v1"}) as proxy:
        run, work = run_codex(codex, tmp_path, proxy.url)
        requests = [received.json() for received in upstream.requests]
    output = f"exit {run.returncode}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    assert run.returncode == 0, output
    assert model.requests < FakeModel.PATIENCE, f"Codex looped\n{output}"
    assert (work / "ran.txt").read_text().strip() == "ran", output  # exec_command ran
    assert (work / "hello.txt").read_text() == "hello from switchboard\n", output  # the custom tool's patch applied
    assert "apply_patch" in function_names(requests[0]) and "exec_command" in function_names(requests[0])
    tool_messages = [m for m in requests[-1]["messages"] if m.get("role") == "tool"]
    assert len(tool_messages) == 2, requests[-1]["messages"][-4:]


def test_codex_on_claude_keeps_the_signed_thinking_across_its_tool_calls(tmp_path: Path):
    """A name Codex knows, mapped to Claude: the thinking block rides in encrypted_content and comes back verbatim."""
    codex = codex_binary()
    model = FakeClaude()
    env = {"ANTHROPIC_API_KEY": "sk-ant-test", "MODEL_ALIASES": "gpt-5.5=anthropic/claude-sonnet-5-5"}
    with FakeUpstream(model) as upstream, RunningProxy(dict(env, ANTHROPIC_BASE_URL=upstream.url)) as proxy:
        run, work = run_codex(codex, tmp_path, proxy.url)
        requests = [received.json() for received in upstream.requests]
    output = f"exit {run.returncode}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    assert run.returncode == 0, output
    assert (work / "ran.txt").read_text().strip() == "ran" and (work / "hello.txt").read_text() == "hello from switchboard\n", output
    assert all(body["model"] == "claude-sonnet-5-5" for body in requests)
    thinking = [block for block in requests[1]["messages"][-2]["content"] if block.get("type") == "thinking"]
    assert thinking == [{"type": "thinking", "thinking": "first a command", "signature": "sig:first a command"}]


class FakeResponsesModel:
    """The same plan on OpenAI's own Responses API: reasoning items with encrypted content, a
    function_call for the command and a custom_tool_call for the patch, as OpenAI sends them."""

    PATIENCE = 12

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.requests = 0

    def __call__(self, received: Received) -> Reply:
        body = received.json()
        self.requests += 1
        kinds = {item.get("type"): item for item in body.get("input") or [] if isinstance(item, dict)}
        if self.requests >= self.PATIENCE or "custom_tool_call_output" in kinds:
            return self.answer([message_item("Done: hello.txt written.")])
        number = next(self.ids)
        thought = reasoning_item(["Planning."], f"enc-{number}", item_id=f"rs_{number}")
        if "function_call_output" in kinds:
            patch = {"type": "custom_tool_call", "id": f"ctc_{number}", "call_id": f"call_p{number}", "name": "apply_patch",
                     "input": PATCH, "status": "completed"}
            return self.answer([thought, patch])
        return self.answer([thought, function_call_item("exec_command", {"cmd": "echo ran > ran.txt"}, f"call_c{number}",
                                                        item_id=f"fc_{number}")])

    @staticmethod
    def answer(items: list[dict]) -> Reply:
        return responses_reply(responses_answer(items, model="gpt-5.5"), stream=True)


def test_codex_on_an_openai_responses_upstream_passes_through_untouched(tmp_path: Path):
    """OPENAI_WIRE_API=responses: Codex's requests reach the upstream as Codex sent them (custom tools,
    reasoning items with their encrypted content) and the answers reach Codex as the upstream sent them."""
    codex = codex_binary()
    model = FakeResponsesModel()
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_WIRE_API": "responses"}
    with FakeUpstream(model) as upstream, RunningProxy(dict(env, OPENAI_BASE_URL=upstream.url + "/v1")) as proxy:
        run, work = run_codex(codex, tmp_path, proxy.url)
        received = list(upstream.requests)
    output = f"exit {run.returncode}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    assert run.returncode == 0, output
    assert (work / "ran.txt").read_text().strip() == "ran" and (work / "hello.txt").read_text() == "hello from switchboard\n", output
    assert {request.path for request in received} == {"/v1/responses"}
    first = received[0].json()
    assert any(tool.get("type") == "custom" and tool.get("name") == "apply_patch" for tool in first["tools"])
    reasoning = [item for item in received[1].json()["input"] if item.get("type") == "reasoning"]
    assert [item["encrypted_content"] for item in reasoning] == ["enc-1"]  # Codex sent it back; we did not touch it
