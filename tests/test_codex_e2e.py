"""End to end: the real Codex CLI (`codex exec`), through switchboard's Responses front, to a fake Chat
Completions upstream scripted to call `exec_command` and then `apply_patch`: the command runs and the
file is written.

Codex speaks only the Responses API; switchboard serves it through the hub (Responses -> Anthropic
Messages -> Chat). `apply_patch` is a freeform `custom` tool: it reaches the upstream as a function with
one string argument and must come back to Codex as a `custom_tool_call` with the raw patch, or Codex
rejects it. The model name is one Codex knows (`gpt-5.5`), so it offers its patch tool.

The test skips when no Codex binary is found: SWITCHBOARD_CODEX_BIN first, then `codex` on PATH
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

from fake_upstream import FakeUpstream, Received, Reply, RunningProxy, chunk, frames

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


def test_codex_runs_a_command_and_applies_a_patch_through_switchboard(tmp_path: Path):
    codex = codex_binary()
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    model = FakeModel()
    with FakeUpstream(model) as upstream, RunningProxy({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": upstream.url + "/v1"}) as proxy:
        (home / ".codex" / "config.toml").write_text(
            'model = "gpt-5.5"\n'
            'model_provider = "switchboard"\n'
            'approval_policy = "never"\n'
            'sandbox_mode = "workspace-write"\n\n'
            "[model_providers.switchboard]\n"
            'name = "switchboard"\n'
            f'base_url = "{proxy.url}/v1"\n'
            'env_key = "SWITCHBOARD_API_KEY"\n'
            'wire_api = "responses"\n'
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "SWITCHBOARD_API_KEY": "x",
               "CODEX_HOME": str(home / ".codex")}
        run = subprocess.run([codex, "exec", "--skip-git-repo-check", "Create hello.txt"], cwd=work, env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        requests = [received.json() for received in upstream.requests]
    output = f"exit {run.returncode}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    assert run.returncode == 0, output
    assert model.requests < FakeModel.PATIENCE, f"Codex looped\n{output}"
    assert (work / "ran.txt").read_text().strip() == "ran", output  # exec_command ran
    assert (work / "hello.txt").read_text() == "hello from switchboard\n", output  # the custom tool's patch applied
    assert "apply_patch" in function_names(requests[0]) and "exec_command" in function_names(requests[0])
    # The patch went upstream as a function with one string argument and its result came back as a tool message.
    tool_messages = [m for m in requests[-1]["messages"] if m.get("role") == "tool"]
    assert len(tool_messages) == 2, requests[-1]["messages"][-4:]
