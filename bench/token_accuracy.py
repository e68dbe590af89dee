"""How far is translate.tokens' estimate from a real tokenizer, and how fast is it?

Builds a fixed set of real-looking Anthropic Messages requests (no network, no randomness that
changes between runs; code and documentation text come from this Python's standard library, so
figures move slightly between Python versions), estimates each with
`translate.tokens.input_breakdown`, and, when a reference tokenizer can be loaded, counts the same
rendered text with it. Prints one table row per request and the time of the estimate on the
~76 KB Claude Code first request (best of N).

The reference is the legacy Claude tokenizer (Claude 2 era BPE) that `anthropic` SDK releases
before 0.39 shipped as `tokenizer.json`, loaded with the `tokenizers` package. Current Claude
models use a different, unpublished tokenizer, so the error figures are indicative only. Both
sides count the same rendered text and add the same fixed costs (images, tool-use system prompt,
turn markup), so the "text err" column isolates the per-byte text model.

    python -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers
    /tmp/tokvenv/bin/pip download --no-deps "anthropic==0.34.2" -d /tmp/oldanthropic
    /tmp/tokvenv/bin/python bench/token_accuracy.py --tokenizer /tmp/oldanthropic/anthropic-0.34.2-py3-none-any.whl

`--tokenizer` takes the wheel or an extracted tokenizer.json. Without a tokenizer the script
prints our estimates only and says the reference is missing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from translate.tokens import estimate_input_tokens, input_breakdown  # noqa: E402

# --------------------------------------------------------------------------------------------
# Deterministic helpers
# --------------------------------------------------------------------------------------------


def _hex(seed: str, length: int = 32) -> str:
    out = ""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).hexdigest()
        counter += 1
    return out[:length]


def _pick(seed: str, options: list) -> object:
    return options[int(_hex(seed, 8), 16) % len(options)]


def _number(seed: str, low: int, high: int) -> int:
    return low + int(_hex(seed, 12), 16) % (high - low + 1)


def _uuid(seed: str) -> str:
    h = _hex(seed)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _stdlib_source(module_name: str, first_line: int = 1, max_lines: int = 400) -> str:
    """A slice of a standard-library module in the `cat -n` form Claude Code's Read tool returns."""
    module = __import__(module_name, fromlist=["_"])
    lines = inspect.getsource(module).splitlines()[first_line - 1 : first_line - 1 + max_lines]
    return "\n".join(f"{first_line + i:6}\u2192{line}" for i, line in enumerate(lines))


def _python_docs(*topics: str) -> str:
    import pydoc_data.topics

    return "\n\n".join(pydoc_data.topics.topics[t] for t in topics)


def png_bytes(width: int, height: int) -> bytes:
    """A valid grey PNG of the given size, built with zlib and struct."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + b"\x80" * width
    raw = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def jpeg_header_bytes(width: int, height: int) -> bytes:
    """The first segments of a baseline JPEG (SOI, APP0, a 600-byte APP1, SOF0), then filler."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    exif = b"Exif\x00\x00" + bytes(range(256)) * 2 + b"\x00" * 82
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + app1 + sof0 + b"\x00" * 4000


def _image_block(data: bytes, media_type: str) -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}}


# --------------------------------------------------------------------------------------------
# A coding agent's system prompt and tools (original text, shaped like Claude Code's)
# --------------------------------------------------------------------------------------------

AGENT_GUIDELINES = """You are an interactive command-line assistant that helps people with software engineering work. Use the instructions below and the tools available to you to help the user.

IMPORTANT: Help with defensive security tasks only. Refuse to create, modify, or improve code that may be used maliciously. Explaining how an attack works for the purpose of detection and defence is fine.
IMPORTANT: Never guess URLs for the user unless you are confident they help with programming. You may use URLs that the user gives you or that appear in local files.

# Tone and style
Be concise, direct, and to the point. Your output is shown in a terminal, rendered as GitHub-flavoured Markdown in a monospace font. Answer the question that was asked; do not add an introduction or a summary unless the user asks for one. When you run a non-trivial command, say in one sentence what it does and why, especially when it changes the user's system.
Keep answers short: fewer than four lines of prose unless the user asks for detail. One-word answers are best when they are enough. Do not explain your code after writing it unless asked.

<example>
user: what is 2 + 2?
assistant: 4
</example>

<example>
user: which file defines the retry policy?
assistant: [searches the repository]
src/net/retry.py
</example>

<example>
user: is 11 a prime number?
assistant: Yes
</example>

# Proactiveness
Do what the user asks, including the obvious follow-up actions, but do not surprise them with actions they did not ask for. If they ask how to approach something, answer the question first instead of jumping into edits.

# Following conventions
When you change a file, first understand its conventions. Mimic the code style, use the libraries and utilities already in the project, and follow the existing patterns.
- Never assume that a library is available, even a well-known one. Check that the codebase already uses it: look at neighbouring files, or at package.json, pyproject.toml, Cargo.toml or go.mod, depending on the language.
- When you create a new component, look at existing components first: framework choice, naming, typing and other conventions.
- When you edit code, look at its surrounding context, especially its imports, to understand the choice of frameworks and libraries, and make the change in the most idiomatic way.
- Follow security best practice. Never write code that logs or exposes secrets and keys, and never commit secrets or keys to the repository.

# Code style
- Do not add comments unless they are asked for or the code is genuinely subtle.

# Task management
You have the TodoWrite tool to plan and track tasks. Use it very often, so that you track your progress and the user can see it. It is also extremely helpful for breaking a large task into smaller steps. Mark each todo as completed as soon as it is done; do not batch several completions.

<example>
user: Run the build and fix any type errors
assistant: I will add these items to the todo list:
- Run the build
- Fix any type errors

I am now going to run the build.

Looks like I found 10 type errors. I will add 10 items to the todo list.

Marking the first todo as in_progress.

The first item is fixed; marking it as completed and moving on to the second...
</example>

# Doing tasks
The user will mostly ask for software engineering work: fixing bugs, adding functionality, refactoring code, explaining code, and more. For these tasks the following steps are recommended:
- Use the TodoWrite tool to plan the task if it needs planning.
- Use the search tools to understand the codebase and the user's query. Use them extensively, both in parallel and one after another.
- Implement the solution using all the tools available to you.
- Verify the solution with tests if possible. Never assume a particular test framework or test script: check the README or search the codebase to find how tests are run.
- VERY IMPORTANT: when you have finished a task, run the lint and typecheck commands (for example npm run lint, npm run typecheck, ruff, mypy) if they were given to you, to make sure your code is correct. If you cannot find the right command, ask the user for it and suggest writing it down in the project memory file so that you will know it next time.
NEVER commit changes unless the user explicitly asks you to. It is VERY IMPORTANT to commit only when asked; otherwise the user will feel that you are too proactive.

Tool results and user messages may include <system-reminder> tags. They carry useful information and reminders; they are added automatically and bear no direct relation to the tool result or user message in which they appear.

# Tool usage policy
- When doing file search, prefer the Task tool, to reduce context usage.
- Prefer specialised agents when the task at hand matches an agent's description.
- When WebFetch returns a message about a redirect to a different host, immediately make a new WebFetch request with the redirect URL given in the response.
- You can call several tools in a single response. When several independent pieces of information are requested, batch your tool calls together for optimal performance. When making several bash calls, send a single message with several tool calls so that they run in parallel. For example, if you need to run "git status" and "git diff", send one message with two tool calls.

IMPORTANT: Always use the TodoWrite tool to plan and track tasks throughout the conversation.

# Code references
When you refer to specific functions or pieces of code, include the pattern `file_path:line_number` so that the user can easily jump to the source.

<example>
user: Where are client errors handled?
assistant: Clients are marked as failed in the `connect` function in src/services/process.ts:712.
</example>
"""

ENVIRONMENT_TEMPLATE = """Here is useful information about the environment you are running in:
<env>
Working directory: /home/dev/projects/switchboard
Is directory a git repo: Yes
Platform: linux
OS Version: Linux 6.8.0-49-generic
Today's date: 2026-03-14
</env>
You are powered by the model named Sonnet 5. The exact model ID is claude-sonnet-5.

Assistant knowledge cutoff is January 2026.

gitStatus: This is the git status at the start of the conversation. Note that this status is a snapshot in time, and will not update during the conversation.
Current branch: feature/count-tokens

Main branch (you will usually use this for PRs): main

Status:
{status}

Recent commits:
{commits}
"""


def _environment_block() -> str:
    files = ["proxy.py", "translate/tokens.py", "translate/sse.py", "tests/test_tokens.py", "README.md", "bench/token_accuracy.py"]
    status = "\n".join(f"{_pick('st' + f, [' M', '??', 'M ', ' D'])} {f}" for f in files)
    subjects = [
        "Answer count_tokens locally",
        "Send ping events while the upstream is silent",
        "Map context-length errors to prompt is too long",
        "Rewrite tool ids that do not fit the target",
        "Close the upstream when the client goes away",
        "Read gzip bodies from upstreams",
        "Add the echo provider",
        "Fold system-role turns into the system prompt",
    ]
    commits = "\n".join(f"{_hex('commit' + s, 7)} {s}" for s in subjects)
    return ENVIRONMENT_TEMPLATE.format(status=status, commits=commits)


USAGE_NOTES = """Usage notes:
  - The command argument is required.
  - You can give an optional timeout in milliseconds (up to 600000ms / 10 minutes). Without one, the command times out after 120000ms (2 minutes).
  - Write a clear, concise description of what this command does in 5-10 words.
  - If the output exceeds 30000 characters, it is truncated before being returned to you.
  - Avoid find, grep, cat, head, tail, sed, awk or echo for file work unless explicitly instructed: use the dedicated tools instead (Glob, Grep, Read, Edit, Write).
  - When issuing several commands, use ';' or '&&' to separate them. Do not use newlines (newlines are fine inside quoted strings).
  - Keep the current working directory throughout the session by using absolute paths and avoiding cd, unless the user asks for it.
"""

GIT_NOTES = """# Committing changes with git

When the user asks you to create a new git commit, follow these steps carefully:

1. Run the following commands in parallel, each with its own tool call:
   - git status, to see all untracked files.
   - git diff, to see both staged and unstaged changes that will be committed.
   - git log, to see recent commit messages, so that you can follow this repository's message style.
2. Analyse all staged changes (previously staged and newly added) and draft a commit message:
   - Summarise the nature of the changes (a new feature, an enhancement, a bug fix, a refactoring, a test, docs).
   - Do not commit files that probably contain secrets (.env, credentials.json). Warn the user if they asked you to commit such files.
   - Draft a concise (1-2 sentences) message that says why rather than what.
3. Run the following commands in parallel:
   - Add the relevant untracked files to the staging area.
   - Create the commit.
   - Run git status to make sure the commit succeeded.
4. If the commit fails because of pre-commit hook changes, retry ONCE to include them. If it fails again, a hook is probably blocking the commit.

Important notes:
- NEVER update the git config.
- NEVER run additional commands to read or explore code, besides git bash commands.
- NEVER use git commands with the -i flag (like git rebase -i or git add -i), since they need interactive input, which is not supported.
- DO NOT push to the remote repository unless the user explicitly asks you to.
- Always pass the commit message through a HEREDOC, to get the formatting right, for example:
<example>
git commit -m "$(cat <<'EOF'
   Commit message here.
   EOF
   )"
</example>

# Creating pull requests
Use the gh command via the Bash tool for ALL GitHub-related tasks, including issues, pull requests, checks and releases. If given a GitHub URL, use the gh command to get the information needed.
"""

SCHEMA_URL = "http://json-schema.org/draft-07/schema#"
MAX_SAFE_INTEGER = 9007199254740991


def _schema(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False, "$schema": SCHEMA_URL}


def _string(description: str, **extra: object) -> dict:
    return {"type": "string", "description": description, **extra}


def _number_property(description: str) -> dict:
    return {"type": "number", "description": description, "exclusiveMinimum": 0, "maximum": MAX_SAFE_INTEGER}


def _tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"name": name, "description": description, "input_schema": _schema(properties, required)}


def agent_tools() -> list[dict]:
    """24 tool definitions, built-in and MCP, shaped like a coding agent's."""
    todo_item = {
        "type": "object",
        "properties": {
            "content": {"type": "string", "minLength": 1},
            "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
            "activeForm": {"type": "string", "minLength": 1},
        },
        "required": ["content", "status", "activeForm"],
        "additionalProperties": False,
    }
    question = {
        "type": "object",
        "properties": {
            "question": _string("The complete question to ask the user, ending with a question mark."),
            "header": _string("A very short label shown as a chip (at most 12 characters)."),
            "options": {
                "type": "array",
                "minItems": 2,
                "maxItems": 4,
                "items": {
                    "type": "object",
                    "properties": {"label": _string("The text of this option, 1-5 words."), "description": _string("What choosing this option means.")},
                    "required": ["label", "description"],
                    "additionalProperties": False,
                },
            },
            "multiSelect": {"type": "boolean", "default": False},
        },
        "required": ["question", "header", "options", "multiSelect"],
        "additionalProperties": False,
    }
    agents = "\n".join(
        f"- {name}: {text} (Tools: {tools})"
        for name, text, tools in [
            ("general-purpose", "General agent for researching complex questions, searching for code and executing multi-step tasks.", "*"),
            ("explore", "Fast agent for exploring codebases: finding files by pattern, searching code for keywords, answering questions about the structure.", "Glob, Grep, Read, Bash"),
            ("planner", "Software architect agent for designing an implementation plan. Returns step-by-step plans and names the critical files.", "All tools"),
            ("statusline-setup", "Configures the user's status line setting.", "Read, Edit"),
        ]
    )
    tools = [
        _tool(
            "Task",
            "Launch a new agent to handle complex, multi-step tasks autonomously.\n\nAvailable agent types and the tools they have access to:\n"
            + agents
            + "\n\nWhen using the Task tool, you must specify a subagent_type parameter to select which agent type to use.\n\nWhen NOT to use the agent tool:\n- To read a specific file path, use Read or Glob instead, to find the match more quickly.\n- To search for a specific class definition like \"class Foo\", use Glob instead.\n- To search within two or three specific files, use Read instead.\n\nUsage notes:\n1. Launch several agents concurrently whenever possible, to maximise performance.\n2. When the agent is done, it returns a single message to you. The result is not visible to the user; send the user a short summary.\n3. Each agent invocation is stateless. Your prompt should contain a highly detailed task description for the agent to perform autonomously, and say exactly what information it should return.\n4. The agent's outputs should generally be trusted.\n5. Clearly tell the agent whether you expect it to write code or just to do research.",
            {
                "description": _string("A short (3-5 word) description of the task"),
                "prompt": _string("The task for the agent to perform"),
                "subagent_type": _string("The type of specialized agent to use for this task"),
                "model": _string("Optional model for this agent.", enum=["sonnet", "opus", "haiku"]),
            },
            ["description", "prompt", "subagent_type"],
        ),
        _tool(
            "Bash",
            "Executes a given bash command in a persistent shell session with an optional timeout, with proper handling and security measures.\n\nBefore executing the command, follow these steps:\n\n1. Directory verification: if the command will create new directories or files, first use `ls` to verify that the parent directory exists and is the correct location.\n2. Command execution: always quote file paths that contain spaces with double quotes (cd \"path with spaces/file.txt\"). After quoting, run the command and capture its output.\n\n"
            + USAGE_NOTES
            + "\n"
            + GIT_NOTES,
            {
                "command": _string("The command to execute"),
                "timeout": _number_property("Optional timeout in milliseconds (max 600000)"),
                "description": _string("Clear, concise description of what this command does in 5-10 words, in active voice."),
                "run_in_background": {"type": "boolean", "description": "Set to true to run this command in the background. Use BashOutput to read the output later."},
                "dangerouslyDisableSandbox": {"type": "boolean", "description": "Set this to true to run the command without the sandbox."},
            },
            ["command"],
        ),
        _tool(
            "Glob",
            "- Fast file pattern matching tool that works with any codebase size\n- Supports glob patterns like \"**/*.js\" or \"src/**/*.ts\"\n- Returns matching file paths sorted by modification time\n- Use this tool when you need to find files by name patterns\n- When an open-ended search may need several rounds of globbing and grepping, use the Task tool instead\n- It is always better to run several potentially useful searches in parallel, in one response.",
            {"pattern": _string("The glob pattern to match files against"), "path": _string("The directory to search in. If not specified, the current working directory is used. Omit it for the default; do not write \"undefined\" or \"null\".")},
            ["pattern"],
        ),
        _tool(
            "Grep",
            "A powerful search tool built on ripgrep\n\n  Usage:\n  - ALWAYS use Grep for search tasks. NEVER invoke `grep` or `rg` as a Bash command. Grep has been tuned for correct permissions and access.\n  - Supports full regex syntax (e.g. \"log.*Error\", \"function\\\\s+\\\\w+\")\n  - Filter files with the glob parameter (e.g. \"*.js\", \"**/*.tsx\") or the type parameter (e.g. \"js\", \"py\", \"rust\")\n  - Output modes: \"content\" shows matching lines, \"files_with_matches\" shows only file paths (default), \"count\" shows match counts\n  - Use the Task tool for open-ended searches that need several rounds\n  - Pattern syntax: uses ripgrep (not grep): literal braces need escaping (use `interface\\\\{\\\\}` to find `interface{}` in Go code)\n  - Multiline matching: by default patterns match within single lines only. For patterns that span lines, use `multiline: true`\n",
            {
                "pattern": _string("The regular expression pattern to search for in file contents"),
                "path": _string("File or directory to search in (rg PATH). Defaults to the current working directory."),
                "glob": _string("Glob pattern to filter files (e.g. \"*.js\", \"*.{ts,tsx}\") - maps to rg --glob"),
                "output_mode": _string("Output mode. Defaults to \"files_with_matches\".", enum=["content", "files_with_matches", "count"]),
                "-B": {"type": "number", "description": "Number of lines to show before each match (rg -B). Requires output_mode: \"content\"."},
                "-A": {"type": "number", "description": "Number of lines to show after each match (rg -A). Requires output_mode: \"content\"."},
                "-C": {"type": "number", "description": "Number of lines to show before and after each match (rg -C)."},
                "-n": {"type": "boolean", "description": "Show line numbers in output (rg -n). Defaults to true."},
                "-i": {"type": "boolean", "description": "Case insensitive search (rg -i)"},
                "type": _string("File type to search (rg --type). Common types: js, py, rust, go, java."),
                "head_limit": {"type": "number", "description": "Limit output to the first N lines or entries, like \"| head -N\"."},
                "multiline": {"type": "boolean", "description": "Enable multiline mode where . matches newlines (rg -U --multiline-dotall). Default: false."},
            },
            ["pattern"],
        ),
        _tool(
            "ExitPlanMode",
            "Use this tool when you are in plan mode and have finished presenting your plan and are ready to code. This prompts the user to leave plan mode.\nIMPORTANT: Only use this tool when the task requires planning the implementation steps of a task that needs code. For research tasks (searching files, reading files, understanding the codebase) do NOT use this tool.",
            {"plan": _string("The plan you came up with, that you want to run by the user for approval. Supports markdown. The plan should be pretty concise.")},
            ["plan"],
        ),
        _tool(
            "Read",
            "Reads a file from the local filesystem. You can access any file directly by using this tool.\nAssume this tool is able to read all files on the machine. If the user provides a path to a file, assume that path is valid. It is okay to read a file that does not exist; an error will be returned.\n\nUsage:\n- The file_path parameter must be an absolute path, not a relative path\n- By default, it reads up to 2000 lines starting from the beginning of the file\n- You can optionally specify a line offset and limit (especially handy for long files)\n- Any lines longer than 2000 characters will be truncated\n- Results are returned using cat -n format, with line numbers starting at 1\n- This tool can read images (PNG, JPG, ...): the contents are presented visually.\n- This tool can read PDF files (.pdf), page by page, extracting both text and visual content.\n- This tool can read Jupyter notebooks (.ipynb files) and returns all cells with their outputs.\n- This tool can only read files, not directories. To read a directory, use ls via the Bash tool.\n- You can call several tools in a single response. It is always better to speculatively read several potentially useful files in parallel.\n- If you read a file that exists but has empty contents you will receive a system reminder warning in place of file contents.",
            {"file_path": _string("The absolute path to the file to read"), "offset": _number_property("The line number to start reading from."), "limit": _number_property("The number of lines to read.")},
            ["file_path"],
        ),
        _tool(
            "Edit",
            "Performs exact string replacements in files.\n\nUsage:\n- You must use your `Read` tool at least once in the conversation before editing. This tool errors if you edit without reading the file.\n- When editing text from Read output, preserve the exact indentation (tabs/spaces) as it appears AFTER the line number prefix. The line number prefix format is: spaces + line number + tab. Everything after that tab is the actual file content to match. Never include any part of the line number prefix in old_string or new_string.\n- ALWAYS prefer editing existing files in the codebase. NEVER write new files unless explicitly required.\n- Only use emojis if the user explicitly requests it.\n- The edit FAILS if `old_string` is not unique in the file. Provide a larger string with more surrounding context to make it unique, or use `replace_all` to change every instance of `old_string`.\n- Use `replace_all` for replacing and renaming strings across the file, for instance to rename a variable.",
            {
                "file_path": _string("The absolute path to the file to modify"),
                "old_string": _string("The text to replace"),
                "new_string": _string("The text to replace it with (must be different from old_string)"),
                "replace_all": {"type": "boolean", "default": False, "description": "Replace all occurences of old_string (default false)"},
            },
            ["file_path", "old_string", "new_string"],
        ),
        _tool(
            "Write",
            "Writes a file to the local filesystem.\n\nUsage:\n- This tool overwrites the existing file if there is one at the provided path.\n- If this is an existing file, you MUST use the Read tool first to read its contents. This tool fails if you did not read the file first.\n- ALWAYS prefer editing existing files in the codebase. NEVER write new files unless explicitly required.\n- NEVER proactively create documentation files (*.md) or README files. Only create documentation files if explicitly requested by the user.",
            {"file_path": _string("The absolute path to the file to write (must be absolute, not relative)"), "content": _string("The content to write to the file")},
            ["file_path", "content"],
        ),
        _tool(
            "NotebookEdit",
            "Completely replaces the contents of a specific cell in a Jupyter notebook (.ipynb file) with new source. The notebook_path parameter must be an absolute path. The cell_id is the id of the cell to edit. Use edit_mode=insert to add a new cell at the index given by cell_id, and edit_mode=delete to delete the cell.",
            {
                "notebook_path": _string("The absolute path to the Jupyter notebook file to edit"),
                "cell_id": _string("The ID of the cell to edit."),
                "new_source": _string("The new source for the cell"),
                "cell_type": _string("The type of the cell (code or markdown).", enum=["code", "markdown"]),
                "edit_mode": _string("The type of edit to make (replace, insert, delete). Defaults to replace.", enum=["replace", "insert", "delete"]),
            },
            ["notebook_path", "new_source"],
        ),
        _tool(
            "WebFetch",
            "- Fetches content from a specified URL and processes it using an AI model\n- Takes a URL and a prompt as input\n- Fetches the URL content and converts HTML to markdown\n- Processes the content with the prompt using a small, fast model\n- Returns the model's response about the content\n- Use this tool when you need to retrieve and analyse web content\n\nUsage notes:\n  - IMPORTANT: if an MCP-provided web fetch tool is available, prefer it, as it may have fewer restrictions.\n  - The URL must be a fully-formed valid URL\n  - HTTP URLs are automatically upgraded to HTTPS\n  - The prompt should describe what information you want to extract from the page\n  - This tool is read-only and does not modify any files\n  - Results may be summarised if the content is very large\n  - Includes a self-cleaning 15-minute cache for faster responses when the same URL is accessed repeatedly\n  - When a URL redirects to a different host, the tool tells you and gives the redirect URL in a special format. Make a new WebFetch request with the redirect URL.",
            {"url": _string("The URL to fetch content from", format="uri"), "prompt": _string("The prompt to run on the fetched content")},
            ["url", "prompt"],
        ),
        _tool(
            "TodoWrite",
            "Use this tool to create and manage a structured task list for your current coding session. This helps you track progress, organise complex tasks and show thoroughness to the user.\nIt also helps the user understand the progress of the task and of their requests overall.\n\n## When to Use This Tool\nUse this tool proactively in these scenarios:\n\n1. Complex multi-step tasks - when a task needs 3 or more distinct steps or actions\n2. Non-trivial and complex tasks - tasks that need careful planning or several operations\n3. User explicitly requests a todo list\n4. User provides multiple tasks - when users provide a list of things to be done (numbered or comma-separated)\n5. After receiving new instructions - immediately capture user requirements as todos\n6. When you start working on a task - mark it as in_progress BEFORE beginning work. Ideally only one todo is in_progress at a time\n7. After completing a task - mark it as completed and add any new follow-up tasks discovered during implementation\n\n## When NOT to Use This Tool\n\nSkip this tool when:\n1. There is only a single, straightforward task\n2. The task is trivial and tracking it gives no organisational benefit\n3. The task can be completed in fewer than 3 trivial steps\n4. The task is purely conversational or informational\n\n## Task States and Management\n\n1. **Task States**: use these states to track progress:\n   - pending: task not yet started\n   - in_progress: currently working on (limit to ONE task at a time)\n   - completed: task finished successfully\n\n   **IMPORTANT**: task descriptions must have two forms:\n   - content: the imperative form describing what needs to be done (e.g. \"Run tests\", \"Build the project\")\n   - activeForm: the present continuous form shown during execution (e.g. \"Running tests\", \"Building the project\")\n\n2. **Task Management**:\n   - Update task status in real time as you work\n   - Mark tasks complete IMMEDIATELY after finishing (do not batch completions)\n   - Exactly ONE task must be in_progress at any time\n   - Remove tasks that are no longer relevant from the list entirely\n\n3. **Task Completion Requirements**:\n   - ONLY mark a task as completed when you have FULLY accomplished it\n   - If you encounter errors, blockers, or cannot finish, keep the task as in_progress\n   - Never mark a task as completed if tests are failing, the implementation is partial, or you hit unresolved errors\n\nWhen in doubt, use this tool. Being proactive with task management shows attentiveness and ensures you complete all requirements.",
            {"todos": {"type": "array", "items": todo_item, "description": "The updated todo list"}},
            ["todos"],
        ),
        _tool(
            "WebSearch",
            "- Allows searching the web and using the results to inform responses\n- Provides up-to-date information for current events and recent data\n- Returns search result information formatted as search result blocks\n- Use this tool for accessing information beyond the knowledge cutoff\n- Searches are performed automatically within a single API call\n\nUsage notes:\n  - Domain filtering is supported to include or block specific websites\n  - Web search is only available in the US\n  - Account for \"Today's date\" in <env>. For example, if <env> says \"Today's date: 2026-03-14\", and the user wants the latest docs, do not use 2025 in the search query.",
            {
                "query": _string("The search query to use", minLength=2),
                "allowed_domains": {"type": "array", "items": {"type": "string"}, "description": "Only include search results from these domains"},
                "blocked_domains": {"type": "array", "items": {"type": "string"}, "description": "Never include search results from these domains"},
            },
            ["query"],
        ),
        _tool(
            "BashOutput",
            "- Retrieves output from a running or completed background bash shell\n- Takes a shell_id parameter identifying the shell\n- Always returns only new output since the last check\n- Returns stdout and stderr output along with shell status\n- Supports optional regex filtering to show only lines matching a pattern\n- Use this tool when you need to monitor or check the output of a long-running shell",
            {"bash_id": _string("The ID of the background shell to retrieve output from"), "filter": _string("Optional regular expression to filter the output lines. Only lines matching this regex are included in the result.")},
            ["bash_id"],
        ),
        _tool(
            "KillShell",
            "- Kills a running background bash shell by its ID\n- Takes a shell_id parameter identifying the shell to kill\n- Returns a success or failure status\n- Use this tool when you need to terminate a long-running shell",
            {"shell_id": _string("The ID of the background shell to kill")},
            ["shell_id"],
        ),
        _tool(
            "AskUserQuestion",
            "Use this tool when you need to ask the user questions during execution. This allows you to:\n1. Gather user preferences or requirements\n2. Clarify ambiguous instructions\n3. Get decisions on implementation choices as you work\n4. Offer choices to the user about what direction to take.\n\nUsage notes:\n- Users can always select \"Other\" to provide custom text input\n- Use multiSelect: true to allow several answers to be selected for a question",
            {"questions": {"type": "array", "minItems": 1, "maxItems": 4, "items": question, "description": "Questions to ask the user (1-4 questions)"}},
            ["questions"],
        ),
        _tool(
            "Skill",
            "Execute a skill within the main conversation\n\n<skills_instructions>\nWhen users ask you to perform tasks, check if any of the available skills below can help complete the task more effectively. Skills provide specialised capabilities and domain knowledge.\n\nHow to use skills:\n- Invoke skills using this tool with the skill name only (no arguments)\n- When you invoke a skill, you will see <command-message>The \"{name}\" skill is loading</command-message>\n- The skill's prompt will expand and provide detailed instructions on how to complete the task\n</skills_instructions>\n\n<available_skills>\n<skill><name>pdf</name><description>Extract text and tables from PDF files, fill forms, merge documents.</description><location>user</location></skill>\n<skill><name>xlsx</name><description>Create and edit spreadsheets with formulas and formatting.</description><location>user</location></skill>\n</available_skills>",
            {"command": _string("The skill name (no arguments). E.g., \"pdf\" or \"xlsx\"")},
            ["command"],
        ),
        _tool(
            "SlashCommand",
            "Execute a slash command within the main conversation\nUsage:\n- `command` (required): The slash command to execute, including any arguments\n- Example: `command: \"/review-pr 123\"`\nIMPORTANT: Only use this tool for custom slash commands that appear in the Available Commands list below. Do NOT use it for built-in CLI commands (like /help or /clear), or for commands not shown in the list.\n\nAvailable Commands:\n/release-notes: Draft release notes from the commits since the last tag (project)\n/check-ci: Summarise the last CI run and its failures (project)",
            {"command": _string("The slash command to execute with its arguments, e.g., \"/review-pr 123\"")},
            ["command"],
        ),
        _tool(
            "EnterPlanMode",
            "Use this tool when a task needs careful planning before any code is written: it switches the session into plan mode, in which you may read and search but not edit. Leave plan mode with ExitPlanMode once the user approves the plan.",
            {},
            [],
        ),
    ]
    mcp = [
        ("mcp__github__create_issue", "Create a new issue in a GitHub repository.", {"owner": _string("Repository owner"), "repo": _string("Repository name"), "title": _string("Issue title"), "body": _string("Issue body"), "labels": {"type": "array", "items": {"type": "string"}, "description": "Labels to apply to this issue"}}, ["owner", "repo", "title"]),
        ("mcp__github__search_code", "Search for code across GitHub repositories using GitHub's code search syntax.", {"q": _string("Search query using GitHub code search syntax"), "page": {"type": "number", "minimum": 1, "description": "Page number for pagination"}, "perPage": {"type": "number", "minimum": 1, "maximum": 100, "description": "Results per page (max 100)"}}, ["q"]),
        ("mcp__ide__getDiagnostics", "Get language diagnostics from the editor for a file, or for all open files when no URI is given.", {"uri": _string("Optional file URI to get diagnostics for. If not provided, gets diagnostics for all files.")}, []),
        ("mcp__ide__executeCode", "Execute python code in the Jupyter kernel for the current notebook file.\n\nAll code is executed in the current Jupyter kernel. Avoid declaring variables or changing the kernel's state unless the user asks for it. Any code executed persists across calls unless the kernel is restarted.", {"code": _string("The code to be executed on the kernel.")}, ["code"]),
        ("mcp__browser__navigate", "Navigate the controlled browser tab to a URL and wait for the page to load.", {"url": _string("The URL to navigate to", format="uri"), "timeout_ms": _number_property("How long to wait for the load event")}, ["url"]),
        ("mcp__browser__screenshot", "Take a screenshot of the current page or of one element, returned as a PNG image.", {"selector": _string("Optional CSS selector of the element to capture"), "full_page": {"type": "boolean", "default": False, "description": "Capture the whole scrollable page"}}, []),
    ]
    tools += [_tool(name, text, properties, required) for name, text, properties, required in mcp]
    assert len(tools) == 24, len(tools)
    return tools


def agent_system() -> list[dict]:
    """Three system blocks: a per-session billing line, an identity line, the long prompt."""
    cache = {"type": "ephemeral"}
    return [
        {"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.37.{_hex('v', 3)}; cc_entrypoint=cli; cch={_hex('cch', 5)};"},
        {"type": "text", "text": "You are an agentic coding assistant that runs in the user's terminal.", "cache_control": cache},
        {"type": "text", "text": AGENT_GUIDELINES + "\n\n" + _environment_block(), "cache_control": cache},
    ]


def _system_reminder(text: str) -> str:
    return f"<system-reminder>\n{text}\n</system-reminder>"


def _project_memory(target_bytes: int) -> str:
    """A project instructions file for the first user turn, topped up to `target_bytes`."""
    head = (
        "As you answer the user's questions, you can use the following context:\n"
        "# claudeMd\nCodebase and user instructions are shown below. Be sure to adhere to these instructions.\n\n"
        "Contents of /home/dev/projects/switchboard/CLAUDE.md (project instructions, checked into the codebase):\n\n"
        "# switchboard\n\n- Run tests with `python -m pytest -q`; they must pass before every commit.\n"
        "- translate/ is pure: no sockets, no asyncio, no clocks. Pass in what varies.\n"
        "- Runtime dependencies are h11 and certifi only.\n- Keep each file readable in one sitting.\n\n"
        "## Notes on Python semantics we rely on\n\n"
    )
    docs = _python_docs("exceptions", "execmodel", "function", "typesseq", "with", "assignment", "lambda", "import")
    return head + docs[: max(0, target_bytes - len(head))]


# --------------------------------------------------------------------------------------------
# The request set
# --------------------------------------------------------------------------------------------


def claude_code_first_request(target_bytes: int = 76_000) -> dict:
    """The first turn of a coding session: 3 system blocks, 24 tools, ~76 KB as JSON."""
    body = {
        "model": "claude-sonnet-5",
        "max_tokens": 32000,
        "stream": True,
        "system": agent_system(),
        "tools": agent_tools(),
        "messages": [
            {"role": "system", "content": "The following agents are available: general-purpose, explore, planner, statusline-setup."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": ""},
                    {"type": "text", "text": "count_tokens under-reports on long sessions; make the estimate count tool schemas and images, and add tests."},
                ],
            },
        ],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": json.dumps({"device_id": _hex("device", 64), "session_id": _uuid("session")})},
    }
    reminder = body["messages"][1]["content"][0]
    memory_bytes = target_bytes - len(json.dumps(body))
    for _ in range(3):  # JSON escaping makes the text grow a little when serialised; converge
        reminder["text"] = _system_reminder(_project_memory(memory_bytes))
        memory_bytes -= len(json.dumps(body)) - target_bytes
    return body


def late_session_request() -> dict:
    """Many turns later: tool calls and long tool results of source code, logs and search hits."""
    body = claude_code_first_request()
    messages = body["messages"]
    turn = 0

    def call(name: str, tool_input: dict, result: str | list, text: str | None = None) -> None:
        nonlocal turn
        turn += 1
        tool_id = "toolu_01" + _hex(f"tool{turn}", 22)
        content: list[dict] = []
        if text:
            content.append({"type": "text", "text": text})
        content.append({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
        messages.append({"role": "assistant", "content": content})
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": result}]})

    files = [f"/home/dev/projects/switchboard/{p}" for p in ["proxy.py", "translate/tokens.py", "translate/sse.py", "translate/tools.py", "translate/errors.py", "upstreams/http.py", "upstreams/openai.py", "tests/test_tokens.py", "tests/test_server.py"]]
    call("Glob", {"pattern": "**/*.py"}, "\n".join(files), "I'll look at the layout first.")
    call("Read", {"file_path": files[1]}, _stdlib_source("textwrap", 1, 480))
    grep_hits = "\n".join(f"{_pick('g%d' % i, files)}:{_number('l%d' % i, 1, 900)}:    tokens = estimate_text_tokens(piece)  # {_pick('c%d' % i, ['fast path', 'per block', 'tools', 'images'])}" for i in range(40))
    call("Grep", {"pattern": "estimate_text_tokens", "output_mode": "content", "-n": True}, grep_hits)
    messages[-2]["content"].insert(0, {"type": "thinking", "thinking": "The estimator is called per block; the fixed costs are added in one place. I should check the JSON decoder path next, since tool inputs are serialised compactly.", "signature": base64.b64encode(_hex("sig", 96).encode()).decode()})
    call("Read", {"file_path": files[0], "offset": 1, "limit": 400}, _stdlib_source("json.decoder", 1, 400))
    call(
        "Edit",
        {"file_path": files[1], "old_string": "    return (units + 8) // 16\n", "new_string": "    # Round half up to whole tokens.\n    return (units + TEXT_WEIGHT_UNITS_PER_TOKEN // 2) // TEXT_WEIGHT_UNITS_PER_TOKEN\n"},
        "The file " + files[1] + " has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n" + _stdlib_source("shlex", 120, 40),
    )
    log = ["============================= test session starts ==============================", "platform linux -- Python 3.11.7, pytest-8.3.4, pluggy-1.5.0", "rootdir: /home/dev/projects/switchboard", "configfile: pyproject.toml", "plugins: hypothesis-6.112.0", f"collected {_number('n', 150, 250)} items", ""]
    for name in ["test_server", "test_tokens", "test_sse", "test_tools", "test_errors", "test_openai_stream"]:
        log.append(f"tests/{name}.py " + "." * _number(name, 10, 60) + f" [{_number(name + 'p', 5, 99):3d}%]")
    log += ["", "=================================== FAILURES ===================================", "___________________ test_images_use_header_dimensions ___________________", "", "    def test_images_use_header_dimensions():", '        """A 100x100 PNG and a 1000x1000 PNG give different counts."""', ">       assert small < large", "E       assert 1600 < 1600", "", "tests/test_tokens.py:88: AssertionError", "=========================== short test summary info ============================", "FAILED tests/test_tokens.py::test_images_use_header_dimensions - assert 1600 < 1600", "==================== 1 failed, 211 passed in 4.37s ===================="]
    call("Bash", {"command": "python -m pytest -q", "description": "Run the test suite"}, "\n".join(log))
    call("Read", {"file_path": files[5]}, _stdlib_source("http.client", 1, 600), "One failure: the PNG header is not being read. Let me look at the client code path too.")
    call("Read", {"file_path": files[6], "offset": 200, "limit": 300}, [{"type": "text", "text": _stdlib_source("argparse", 200, 300)}])
    call("TodoWrite", {"todos": [{"content": "Read PNG size from IHDR", "status": "completed", "activeForm": "Reading PNG size"}, {"content": "Handle JPEG segments", "status": "in_progress", "activeForm": "Handling JPEG segments"}, {"content": "Run the tests", "status": "pending", "activeForm": "Running the tests"}]}, "Todos have been modified successfully. Ensure that you continue to use the todo list to track your progress. Please proceed with the current tasks if applicable")
    call("Read", {"file_path": files[2]}, _stdlib_source("difflib", 1, 500))
    messages.append({"role": "assistant", "content": [{"type": "text", "text": "Fixed: the PNG width and height are now read from the IHDR chunk, and JPEG frame headers are found by skipping segments without decoding the image. All 212 tests pass."}]})
    messages.append({"role": "user", "content": "Great. Now also explain how PDFs are counted, and whether the per-page figure is documented."})
    return body


ENGLISH_QUESTIONS = [
    "I'm confused about how exceptions propagate through a with statement. Can you walk me through it?",
    "And what exactly happens when a function is defined? When are default values evaluated?",
    "How do name binding and scopes interact inside a class body? I keep hitting NameError in comprehensions there.",
    "Thanks. Can you summarise how augmented assignment differs from normal assignment?",
    "Last question: how does the import system find a module?",
]


def english_chat_request() -> dict:
    """A prose conversation: questions, and long explanatory answers from Python's reference docs."""
    answers = ["with", "function", "naming", "augassign", "import"]
    messages: list[dict] = []
    for question, topic in zip(ENGLISH_QUESTIONS, answers):
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": "Here is how the language reference puts it.\n\n" + _python_docs(topic)}]})
    messages.append({"role": "user", "content": "That helps a lot. Could you turn the parts about scopes into a short checklist I can pin above my desk?"})
    return {"model": "claude-haiku-4-5-20251001", "max_tokens": 4096, "system": "You are a patient Python tutor. Explain precisely, with short examples.", "messages": messages}


CJK_TURNS = [
    ("user", "你好！我正在写一个代理服务器，它把 Anthropic 的请求转换成 OpenAI 的格式。请问怎样在本地估算一个请求的 token 数量，而不需要调用网络接口？"),
    ("assistant", "可以按字符类别来估算。英文单词大约每个一个 token，标点和数字比较密集，中文和日文的汉字大约每个字一个 token。具体做法是：先把文本编码成 UTF-8，然后根据每个字节的类别给出一个权重，最后把所有权重加起来。这样做的好处是速度很快，而且结果是确定的，同样的输入永远得到同样的输出。需要注意的是，图片和 PDF 不能用文字的方法来估算，要用图片的宽和高来计算。"),
    ("user", "明白了。那工具的定义也要算进去吗？我们的客户端每次请求都会带二十多个工具。"),
    ("assistant", "一定要算进去。工具的名称、描述和参数的 JSON 结构都会被放进提示词里，而且只要请求里有工具，服务端还会额外加上一段固定长度的系统提示，大约三百多个 token。如果漏掉这些，估算结果可能会少十倍，客户端就不会及时压缩对话，最后会收到“提示词太长”的错误。"),
    ("user", "ありがとうございます。日本語のテキストでも同じ方法で大丈夫ですか？ひらがなとカタカナが混ざっている場合はどうなりますか。"),
    ("assistant", "はい、同じ方法で大丈夫です。ひらがな、カタカナ、漢字はどれも UTF-8 で三バイトになるので、先頭のバイトを見れば文字の種類がわかります。一文字あたりおよそ一トークンとして数えます。ただし、実際のトークナイザーはよく使われる言葉をまとめて一つのトークンにすることがあるので、見積もりは少し多めになる場合があります。コンテキストの上限に近づいたときに会話を要約するかどうかを決めるためなら、少し多めのほうが安全です。"),
    ("user", "테스트는 어떻게 작성하면 좋을까요? 한국어 문장도 포함해서 확인하고 싶습니다."),
    ("assistant", "입력이 길어지면 결과도 커지는지 확인하는 단조성 테스트, 이미지 크기에 따라 값이 달라지는지 확인하는 테스트, 그리고 이상한 형태의 요청에서도 예외가 나지 않는지 확인하는 테스트를 추천합니다. 한국어, 중국어, 일본어 문장을 섞은 예제도 하나 넣어 두면 좋습니다."),
    ("user", "最后一个问题：估算的误差大概有多少？有没有办法测量？"),
]


def cjk_chat_request() -> dict:
    """A Chinese, Japanese and Korean conversation with an English system prompt."""
    messages = [{"role": role, "content": text} for role, text in CJK_TURNS]
    return {"model": "claude-sonnet-5", "max_tokens": 2048, "system": "Answer in the language of the question.", "messages": messages}


def _records(count: int) -> list[dict]:
    regions = ["eu-west-1", "us-east-2", "ap-northeast-1", "sa-east-1"]
    statuses = ["active", "suspended", "pending_verification", "closed"]
    first = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances"]
    last = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen"]
    out = []
    for i in range(count):
        name = f"{_pick(f'f{i}', first)} {_pick(f'l{i}', last)}"
        out.append(
            {
                "id": f"cus_{_hex(f'id{i}', 14)}",
                "uuid": _uuid(f"u{i}"),
                "name": name,
                "email": name.lower().replace(" ", ".") + f"{_number(f'e{i}', 1, 99)}@example.com",
                "status": _pick(f"s{i}", statuses),
                "region": _pick(f"r{i}", regions),
                "balance_cents": _number(f"b{i}", 0, 2_500_000),
                "score": _number(f"sc{i}", 0, 100_000) / 1000,
                "created_at": f"2025-{_number(f'm{i}', 1, 12):02d}-{_number(f'd{i}', 1, 28):02d}T{_number(f'h{i}', 0, 23):02d}:{_number(f'mi{i}', 0, 59):02d}:{_number(f'se{i}', 0, 59):02d}Z",
                "tags": [_pick(f"t{i}{k}", ["beta", "enterprise", "trial", "churn-risk", "vip", "eu"]) for k in range(_number(f"tc{i}", 0, 3))],
                "limits": {"requests_per_minute": _pick(f"rpm{i}", [60, 600, 6000]), "max_tokens": _pick(f"mt{i}", [4096, 32000, 64000])},
                "verified": _number(f"v{i}", 0, 1) == 1,
            }
        )
    return out


def json_payload_request() -> dict:
    """Pasted API responses: pretty-printed, compact, and as a tool call and tool result."""
    pretty = json.dumps({"object": "list", "has_more": True, "data": _records(60)}, indent=2)
    compact = json.dumps(_records(120)[60:], separators=(",", ":"))
    messages = [
        {"role": "user", "content": "Here is a page from our customers API. Which accounts look inconsistent?\n\n```json\n" + pretty + "\n```"},
        {"role": "assistant", "content": [{"type": "text", "text": "Three records have a status of closed but a non-zero balance. Let me fetch the next page."}, {"type": "tool_use", "id": "toolu_01" + _hex("j", 22), "name": "fetch_customers", "input": {"starting_after": "cus_" + _hex("id59", 14), "limit": 60, "expand": ["limits", "tags"]}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01" + _hex("j", 22), "content": compact}]},
    ]
    tools = [{"name": "fetch_customers", "description": "Fetch one page of customers.", "input_schema": {"type": "object", "properties": {"starting_after": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 100}, "expand": {"type": "array", "items": {"type": "string"}}}, "required": ["limit"]}}]
    return {"model": "claude-sonnet-5", "max_tokens": 8192, "tools": tools, "messages": messages}


def image_request() -> dict:
    """Screenshots and photos: a 1920x1080 PNG, an 800x600 JPEG, a small PNG and a URL image."""
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here is a screenshot of the dashboard and a photo of the whiteboard. Why does the chart on the left stop at noon?"},
                _image_block(png_bytes(1920, 1080), "image/png"),
                _image_block(jpeg_header_bytes(800, 600), "image/jpeg"),
            ],
        },
        {"role": "assistant", "content": "The chart's query uses a 12-hour window that starts at midnight UTC, so everything after noon falls outside it. The whiteboard sketch shows the intended 24-hour window."},
        {"role": "user", "content": [{"type": "text", "text": "And this icon, and the logo at this URL?"}, _image_block(png_bytes(64, 64), "image/png"), {"type": "image", "source": {"type": "url", "url": "https://example.com/logo.png"}}]},
    ]
    return {"model": "claude-sonnet-5", "max_tokens": 1024, "system": [{"type": "text", "text": "You review dashboards for an operations team."}], "messages": messages}


# The three requests below were written after the weights were fitted and never used to tune
# them: their rows show how the estimate does on text it has not seen.


def held_out_code_review_request() -> dict:
    """A review session over modules the fit never saw, with reference-doc answers."""
    body = {"model": "claude-opus-4-8", "max_tokens": 16000, "system": agent_system(), "tools": agent_tools()[:8], "messages": []}
    messages = body["messages"]
    messages.append({"role": "user", "content": "Review the address parsing and the archive reader for edge cases; list concrete bugs only."})
    for turn, (module, first, count) in enumerate([("ipaddress", 1, 450), ("tarfile", 700, 350), ("calendar", 1, 250)]):
        tool_id = "toolu_01" + _hex(f"review{turn}", 22)
        messages.append({"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": "Read", "input": {"file_path": f"/usr/lib/python3/{module}.py", "offset": first, "limit": count}}]})
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": _stdlib_source(module, first, count)}]})
    messages.append({"role": "assistant", "content": "Before listing bugs, the relevant language rules:\n\n" + _python_docs("string-methods", "typesmapping", "try")})
    messages.append({"role": "user", "content": "Fine, now the list, most severe first."})
    return body


HELD_OUT_MULTILINGUAL_TURNS = [
    ("user", "Hola, ¿me ayudas a revisar el mensaje de error? Los usuarios dicen que no entienden qué deben hacer cuando la sesión caduca."),
    ("assistant", "Claro. El mensaje actual solo dice «sesión inválida». Propongo explicar qué pasó y qué hacer: «Tu sesión ha caducado por inactividad. Vuelve a iniciar sesión; no perderás los cambios guardados.»"),
    ("user", "Perfeito! Agora em português também, por favor, e em italiano."),
    ("assistant", "Português: «A sua sessão expirou por inatividade. Inicie sessão novamente; as alterações guardadas não serão perdidas.»\nItaliano: «La sessione è scaduta per inattività. Accedi di nuovo; le modifiche salvate non andranno perse.»"),
    ("user", "И по-русски, пожалуйста. А ещё подскажи, нужно ли переводить слово «сессия» или лучше оставить английское?"),
    ("assistant", "«Ваш сеанс истёк из-за отсутствия активности. Войдите снова — сохранённые изменения не пропадут.» Слово «сеанс» звучит естественнее, чем «сессия», в интерфейсах для обычных пользователей."),
    ("user", "最后请给我一个中文版本，语气要友好一点。😊"),
    ("assistant", "「由于长时间没有操作，您的登录已过期。请重新登录，已保存的内容不会丢失。」如果想更亲切，可以在前面加一句「别担心！」🙂"),
]


def held_out_multilingual_request() -> dict:
    """Spanish, Portuguese, Italian, Russian and Chinese turns with a few emoji."""
    messages = [{"role": role, "content": text} for role, text in HELD_OUT_MULTILINGUAL_TURNS]
    return {"model": "claude-sonnet-5", "max_tokens": 2048, "system": "You localise user interface text.", "messages": messages}


def held_out_api_debugging_request() -> dict:
    """An HTTP debugging chat: headers, a stack trace, a config file and log lines."""
    trace = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "/srv/app/proxy.py", line 412, in handle_messages',
            "    upstream = await pool.request(route, body, deadline=deadline)",
            '  File "/srv/app/upstreams/http.py", line 188, in request',
            "    status, headers = await self._read_head(connection, timeout=timeout.read)",
            '  File "/srv/app/upstreams/http.py", line 251, in _read_head',
            "    raise UpstreamTimeout(f\"no response head from {host} within {timeout:.1f}s\")",
            "translate.errors.UpstreamTimeout: no response head from api.example.net within 60.0s",
        ]
    )
    logs = "\n".join(
        f"2026-03-{_number(f'day{i}', 10, 14)}T{_number(f'h{i}', 0, 23):02d}:{_number(f'm{i}', 0, 59):02d}:{_number(f's{i}', 0, 59):02d}.{_number(f'ms{i}', 0, 999):03d}Z INFO access method=POST path=/v1/messages status={_pick(f'st{i}', [200, 200, 200, 429, 504])} model={_pick(f'mo{i}', ['claude-sonnet-5', 'gpt-4.1', 'gemini-2.5-pro'])} in={_number(f'in{i}', 100, 90000)} out={_number(f'out{i}', 1, 4000)} ms={_number(f'd{i}', 80, 61000)} req=req_{_hex(f'r{i}', 20)}"
        for i in range(80)
    )
    config = "\n".join(["# switchboard settings", "HOST=0.0.0.0", "PORT=8082", "PREFERRED_PROVIDER=openai", "OPENAI_BASE_URL=https://api.example.net/v1", "BIG_MODEL=gpt-4.1", "SMALL_MODEL=gpt-4.1-mini", "REQUEST_TIMEOUT_SECONDS=60", "MAX_TOKENS_LIMIT=16384", "LOG_LEVEL=DEBUG"])
    headers = "HTTP/1.1 504 Gateway Timeout\r\ncontent-type: application/json\r\nrequest-id: req_" + _hex("hdr", 24) + "\r\nretry-after: 7\r\nx-envoy-upstream-service-time: 60002\r\n\r\n"
    messages = [
        {"role": "user", "content": "Requests time out after exactly 60 s. Here is what the client sees:\n\n```\n" + headers + "```\n\nand the server trace:\n\n```\n" + trace + "\n```"},
        {"role": "assistant", "content": "The upstream never sent a response head within the read timeout. Can you share your settings file and a slice of the access log around a failure?"},
        {"role": "user", "content": "```ini\n" + config + "\n```\n\n```\n" + logs + "\n```"},
    ]
    return {"model": "claude-sonnet-5", "max_tokens": 4096, "system": "You are an SRE helping debug an API gateway.", "messages": messages}


REQUESTS = {
    "claude-code-first": claude_code_first_request,
    "late-session-code": late_session_request,
    "english-chat": english_chat_request,
    "cjk-chat": cjk_chat_request,
    "json-payloads": json_payload_request,
    "images": image_request,
    "held-out: code review": held_out_code_review_request,
    "held-out: multilingual": held_out_multilingual_request,
    "held-out: API debugging": held_out_api_debugging_request,
}

# --------------------------------------------------------------------------------------------
# Reference tokenizer and report
# --------------------------------------------------------------------------------------------


def load_reference(path: str | None):
    """A `tokenizers.Tokenizer` from a tokenizer.json or an anthropic<0.39 wheel, else None."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    if path is None:
        try:  # an old anthropic SDK installed in this environment ships the file
            import importlib.resources

            return Tokenizer.from_str(importlib.resources.files("anthropic").joinpath("tokenizer.json").read_text("utf-8"))
        except Exception:
            return None
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            return Tokenizer.from_str(wheel.read("anthropic/tokenizer.json").decode("utf-8"))
    return Tokenizer.from_file(path)


def best_time_us(body: dict, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        estimate_input_tokens(body)
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", help="tokenizer.json, or an anthropic<0.39 wheel that contains one")
    parser.add_argument("--repeats", type=int, default=200, help="timing runs; the best is reported")
    args = parser.parse_args()
    reference = load_reference(args.tokenizer)

    rows = []
    for name, build in REQUESTS.items():
        body = build()
        estimate = input_breakdown(body)
        row = {"name": name, "kb": len(json.dumps(body)) / 1000, "ours": estimate.total, "fixed": estimate.fixed_tokens, "chars4": len(estimate.text) // 4 + estimate.fixed_tokens}
        if reference is not None:
            reference_text = len(reference.encode(estimate.text).ids)
            row["ref"] = reference_text + estimate.fixed_tokens
            row["err"] = (estimate.total - row["ref"]) / row["ref"] * 100
            row["text_err"] = (estimate.text_tokens - reference_text) / max(1, reference_text) * 100
            row["chars4_err"] = (row["chars4"] - row["ref"]) / row["ref"] * 100
        rows.append(row)

    if reference is None:
        print("reference tokenizer missing (pip install tokenizers; pass --tokenizer): our estimates only\n")
        print(f"| request | JSON KB | ours | fixed part |\n|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['name']} | {r['kb']:.1f} | {r['ours']} | {r['fixed']} |")
    else:
        print(f"reference: legacy Claude tokenizer ({args.tokenizer or 'from the installed anthropic package'}); indicative only\n")
        print("| request | JSON KB | reference | ours | error | text error | chars/4 error |\n|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['name']} | {r['kb']:.1f} | {r['ref']} | {r['ours']} | {r['err']:+.1f}% | {r['text_err']:+.1f}% | {r['chars4_err']:+.1f}% |")
        mean_abs = sum(abs(r["err"]) for r in rows) / len(rows)
        print(f"\nmean absolute error: {mean_abs:.1f}% (chars/4 on the same text: {sum(abs(r['chars4_err']) for r in rows) / len(rows):.1f}%)")

    first = claude_code_first_request()
    print(f"\nestimate_input_tokens on claude-code-first ({len(json.dumps(first)) / 1000:.1f} KB, {len(first['tools'])} tools): best of {args.repeats}: {best_time_us(first, args.repeats):.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
