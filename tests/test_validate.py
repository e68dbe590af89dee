"""translate/validate.py: every field an endpoint defines is checked, a wrong one is a 400 naming it.

The corpus is data, to grow by adding lines:
- BASES: one valid body per endpoint with every field it defines set.
- KINDS: the JSON kinds each top-level field takes. Every other kind (string, integer, number,
  boolean, list, object; null or missing for a required field) replaces the field in the base body
  and must be refused with `param` naming the field.
- ANTHROPIC_WRONG, CHAT_WRONG: nested cases, (expected param, top-level fields put into the base).
- ODD_BUT_ACCEPTED: shapes the translators take today that must stay valid; with them, every
  request fixture under tests/fixtures/ (but the REFUSED_FIXTURES, each with its reason), the bench
  bodies and the requests tests/strategies.py draws must pass.
And the validator must leave the translators nothing to crash on: every single change to a base
body (each value anywhere replaced by each of NASTY_VALUES, or removed) and drawn requests with one
thing broken either fail validation or translate (or get a translator's own 400).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import anthropic_requests, json_values, openai_requests

from translate import validate
from translate.anthropic_to_chat_request import ChatTarget, anthropic_to_chat_request
from translate.chat_to_anthropic_request import AnthropicTarget, chat_to_anthropic_request
from translate.errors import InvalidRequest
from translate.gemini import prepare_gemini_request
from translate.reuse import MAX_JSON_DEPTH, RememberedList, ToolsMemo, loads_request
from translate.sse import dumps
from translate.tokens import estimate_input_tokens
from translate.tool_search import without_unloaded_tools
from translate.validate import validate_chat_request, validate_count_tokens_request, validate_messages_request

_saved_path = list(sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import payloads  # bench/ has its own fake_upstream.py: keep bench/ off the path afterwards

sys.path[:] = _saved_path

FIXTURES = Path(__file__).parent / "fixtures"
VALIDATORS = {
    "messages": validate_messages_request,
    "count_tokens": validate_count_tokens_request,
    "chat": validate_chat_request,
}
FIELDS = {"messages": validate.MESSAGES_FIELDS, "count_tokens": validate.COUNT_TOKENS_FIELDS, "chat": validate.CHAT_FIELDS}
PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# Valid base bodies
# ---------------------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

MESSAGES_BASE = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 4096,
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}, "title": "a.txt"},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "inline"}]}, "context": "c"},
                {"type": "search_result", "source": "https://example.com", "title": "Example", "content": [{"type": "text", "text": "x"}]},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "EqQBCkgIARABGAIiQL"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": "4 C"}, {"type": "tool_reference", "tool_name": "get_weather"}],
                    "is_error": False,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
        {"role": "system", "content": "Answer in one line."},
    ],
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "tools": [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": SCHEMA, "strict": True},
        {"name": "Deferred", "input_schema": SCHEMA, "defer_loading": True, "type": "custom"},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 2048, "display": "summarized"},
    "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": SCHEMA}},
    "metadata": {"user_id": "user-1"},
    "stop_sequences": ["END"],
    "temperature": 1,
    "top_p": 0.95,
    "top_k": 40,
    "stream": True,
    "service_tier": "auto",
    "container": "container_01",
    "cache_control": {"type": "ephemeral"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}],
    "inference_geo": "us",
}
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                       "cache_control", "context_management", "mcp_servers")
COUNT_TOKENS_BASE = {name: MESSAGES_BASE[name] for name in COUNT_TOKENS_FIELDS}

CHAT_BASE = {
    "model": "gpt-4o",
    "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "Be terse."}]},
        {"role": "system", "content": "Answer in English."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            ],
            "name": "ann",
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "4 C"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 4 C."}, {"type": "refusal", "refusal": "No more."}], "refusal": None},
        {"role": "user", "content": "Thanks"},
    ],
    "max_tokens": 100,
    "max_completion_tokens": 200,
    "temperature": 1.5,
    "top_p": 0.9,
    "n": 2,  # refused by the Anthropic translation, taken by OpenAI: valid for the front
    "stop": ["END", "\n"],
    "stream": True,
    "stream_options": {"include_usage": True, "include_obfuscation": False},
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA, "strict": True}}],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}},
    "reasoning_effort": "low",
    "seed": 7,
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"50256": -100},
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "modalities": ["text"],
    "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "x"},
    "store": False,
    "metadata": {"k": "v"},
    "service_tier": "auto",
    "verbosity": "low",
    "web_search_options": {},
    "prompt_cache_key": "key-1",
    "safety_identifier": "hash-1",
    "user": "user-1",
    "functions": [{"name": "legacy"}],
    "function_call": "auto",
}
BASES = {"messages": MESSAGES_BASE, "count_tokens": COUNT_TOKENS_BASE, "chat": CHAT_BASE}

# ---------------------------------------------------------------------------------------------
# Top-level fields: the JSON kinds each one takes
# ---------------------------------------------------------------------------------------------

MESSAGES_KINDS = {
    "model": {"string"},
    "messages": {"list"},
    "system": {"string", "list"},
    "tools": {"list"},
    "tool_choice": {"object"},
    "thinking": {"object"},
    "output_config": {"object"},
    "cache_control": {"object"},
    "context_management": {"object"},
    "mcp_servers": {"list"},
    "max_tokens": {"integer"},
    "stop_sequences": {"list"},
    "temperature": {"number"},
    "top_p": {"number"},
    "top_k": {"integer"},
    "stream": {"boolean"},
    "metadata": {"object"},
    "service_tier": {"string"},
    "container": {"string", "object"},
    "inference_geo": {"string"},
}
CHAT_KINDS = {
    "model": {"string"},
    "messages": {"list"},
    "max_tokens": {"integer"},
    "max_completion_tokens": {"integer"},
    "temperature": {"number"},
    "top_p": {"number"},
    "n": {"integer"},
    "stop": {"string", "list"},
    "stream": {"boolean"},
    "stream_options": {"object"},
    "tools": {"list"},
    "tool_choice": {"string", "object"},
    "parallel_tool_calls": {"boolean"},
    "response_format": {"object"},
    "reasoning_effort": {"string"},
    "seed": {"integer"},
    "logprobs": {"boolean"},
    "top_logprobs": {"integer"},
    "logit_bias": {"object"},
    "presence_penalty": {"number"},
    "frequency_penalty": {"number"},
    "modalities": {"list"},
    "audio": {"object"},
    "prediction": {"object"},
    "store": {"boolean"},
    "metadata": {"object"},
    "service_tier": {"string"},
    "verbosity": {"string"},
    "web_search_options": {"object"},
    "prompt_cache_key": {"string"},
    "safety_identifier": {"string"},
    "user": {"string"},
    "functions": {"list"},
    "function_call": {"string", "object"},
}
KINDS = {
    "messages": MESSAGES_KINDS,
    "count_tokens": {name: MESSAGES_KINDS[name] for name in COUNT_TOKENS_FIELDS},
    "chat": CHAT_KINDS,
}
REQUIRED = {"messages": ("model", "messages", "max_tokens"), "count_tokens": ("messages",), "chat": ("model", "messages")}
SAMPLES = {"string": "x", "integer": 7, "number": 0.5, "boolean": True, "list": [], "object": {}}


def wrong_kind_cases() -> dict[str, tuple[str, dict, str]]:
    """{case id: (endpoint, body, param)}: each top-level field as each kind it does not take."""
    cases = {}
    for endpoint, kinds in KINDS.items():
        for name, allowed in kinds.items():
            for kind, sample in SAMPLES.items():
                if kind in allowed or (kind == "integer" and "number" in allowed):
                    continue
                cases[f"{endpoint} {name}={json.dumps(sample)}"] = (endpoint, {**BASES[endpoint], name: sample}, name)
        for name in REQUIRED[endpoint]:
            cases[f"{endpoint} {name}=null"] = (endpoint, {**BASES[endpoint], name: None}, name)
            missing = {key: value for key, value in BASES[endpoint].items() if key != name}
            cases[f"{endpoint} {name} missing"] = (endpoint, missing, name)
    return cases


# ---------------------------------------------------------------------------------------------
# Nested cases: (expected param, fields put into the base body)
# ---------------------------------------------------------------------------------------------


def user(*blocks: object) -> dict:
    """{"messages": [one user message with these content blocks]}."""
    return {"messages": [{"role": "user", "content": list(blocks)}]}


def assistant(*blocks: object) -> dict:
    return {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": list(blocks)}]}


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


ANTHROPIC_WRONG: list[tuple[str, dict]] = [
    # model
    ("model", {"model": ""}),
    ("model", {"model": "claude\nsonnet"}),
    ("model", {"model": "claude\x00"}),
    ("model", {"model": "claude\x7f"}),
    ("model", {"model": "claude\x85"}),
    ("model", {"model": "claude-\ud800"}),
    # numbers and ranges
    ("max_tokens", {"max_tokens": -1}),
    ("max_tokens", {"max_tokens": 1.5}),
    ("max_tokens", {"max_tokens": True}),
    ("temperature", {"temperature": 1.5}),
    ("temperature", {"temperature": -0.1}),
    ("temperature", {"temperature": False}),
    ("top_p", {"top_p": 2}),
    ("top_k", {"top_k": -1}),
    ("top_k", {"top_k": 4.5}),
    # messages
    ("messages[0]", {"messages": ["hi"]}),
    ("messages[0].role", {"messages": [{"content": "hi"}]}),
    ("messages[0].role", {"messages": [{"role": "tool", "content": "hi"}]}),
    ("messages[0].role", {"messages": [{"role": ["user"], "content": "hi"}]}),
    ("messages[0].content", {"messages": [{"role": "user"}]}),
    ("messages[0].content", {"messages": [{"role": "user", "content": 5}]}),
    ("messages[0].content", {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]}),
    ("messages[0].content[0]", user("hi")),
    ("messages[0].content[0]", user({"text": "no type"})),
    ("messages[0].content[0]", user({"type": 5})),
    ("messages[0].content[1].text", user({"type": "text", "text": "ok"}, {"type": "text", "text": 5})),
    ("messages[0].content[0].text", user({"type": "text"})),
    ("messages[2].content[0].text", {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                                  {"role": "user", "content": [{"type": "text", "text": None}]}]}),
    # images and documents
    ("messages[0].content[0].source", user({"type": "image", "source": "https://example.com/a.png"})),
    ("messages[0].content[0].source.type", user({"type": "image", "source": {}})),
    ("messages[0].content[0].source.data", user({"type": "image", "source": {"type": "base64", "media_type": "image/png"}})),
    ("messages[0].content[0].source.media_type", user({"type": "image", "source": {"type": "base64", "media_type": 5, "data": "x"}})),
    ("messages[0].content[0].source.url", user({"type": "image", "source": {"type": "url", "url": ["x"]}})),
    ("messages[0].content[0].source.file_id", user({"type": "image", "source": {"type": "file"}})),
    ("messages[0].content[0].title", user({"type": "document", "source": {"type": "url", "url": "https://x"}, "title": 5})),
    ("messages[0].content[0].context", user({"type": "document", "context": {"a": 1}})),
    ("messages[0].content[0].source.data", user({"type": "document", "source": {"type": "text", "media_type": "text/plain"}})),
    ("messages[0].content[0].source.content", user({"type": "document", "source": {"type": "content", "content": 5}})),
    ("messages[0].content[0].source.content[0].text",
     user({"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": 5}]}})),
    # tool_use and tool_result
    ("messages[1].content[0].id", assistant({"type": "tool_use", "name": "x", "input": {}})),
    ("messages[1].content[0].id", assistant({"type": "tool_use", "id": "", "name": "x", "input": {}})),
    ("messages[1].content[0].name", assistant({"type": "tool_use", "id": "t", "input": {}})),
    ("messages[1].content[0].name", assistant({"type": "tool_use", "id": "t", "name": 5, "input": {}})),
    ("messages[1].content[0].input", assistant({"type": "tool_use", "id": "t", "name": "x", "input": [1, 2]})),
    ("messages[1].content[0].input", assistant({"type": "tool_use", "id": "t", "name": "x", "input": "{}"})),
    ("messages[0].content[0].tool_use_id", user({"type": "tool_result", "content": "x"})),
    ("messages[0].content[0].tool_use_id", user({"type": "tool_result", "tool_use_id": 5})),
    ("messages[0].content[0].content", user({"type": "tool_result", "tool_use_id": "t", "content": 5})),
    ("messages[0].content[0].content[0]", user({"type": "tool_result", "tool_use_id": "t", "content": ["x"]})),
    ("messages[0].content[0].content[1].text",
     user({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": {}}]})),
    ("messages[0].content[0].content[0].source", user({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": 1}]})),
    ("messages[0].content[0].is_error", user({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"})),
    # thinking, search results, tool references
    ("messages[1].content[0].thinking", assistant({"type": "thinking", "thinking": ["x"], "signature": "s"})),
    ("messages[1].content[0].signature", assistant({"type": "thinking", "thinking": "x", "signature": 5})),
    ("messages[0].content[0].title", user({"type": "search_result", "title": 5})),
    ("messages[0].content[0].content", user({"type": "search_result", "source": "s", "title": "t", "content": "x"})),
    ("messages[0].content[0].content[0]", user({"type": "search_result", "source": "s", "title": "t", "content": [5]})),
    ("messages[0].content[0].tool_name", user({"type": "tool_reference", "tool_name": 5})),
    # system
    ("system", {"system": 5}),
    ("system[0]", {"system": ["x"]}),
    ("system[0]", {"system": [{"text": "no type"}]}),
    ("system[1].text", {"system": [{"type": "text", "text": "a"}, {"type": "text", "text": 5}]}),
    # tools
    ("tools[0]", {"tools": ["get_weather"]}),
    ("tools[0].name", {"tools": [{"input_schema": SCHEMA}]}),
    ("tools[0].name", {"tools": [{"name": "", "input_schema": SCHEMA}]}),
    ("tools[0].name", {"tools": [{"type": "custom", "name": 5}]}),
    ("tools[0].input_schema", {"tools": [{"name": "t", "input_schema": "object"}]}),
    ("tools[0].description", {"tools": [{"name": "t", "description": 5}]}),
    ("tools[0].strict", {"tools": [{"name": "t", "strict": "yes"}]}),
    ("tools[0].defer_loading", {"tools": [{"name": "t", "defer_loading": 1}]}),
    ("tools[0].type", {"tools": [{"type": 5, "name": "t"}]}),
    ("tools[0].name", {"tools": [{"type": "web_search_20250305", "name": 5}]}),
    ("tools[1].cache_control", {"tools": [{"name": "a"}, {"name": "t", "cache_control": "ephemeral"}]}),
    # tool_choice
    ("tool_choice", {"tool_choice": "auto"}),
    ("tool_choice.type", {"tool_choice": {}}),
    ("tool_choice.type", {"tool_choice": {"type": ["auto"]}}),
    ("tool_choice.name", {"tool_choice": {"type": "tool"}}),
    ("tool_choice.name", {"tool_choice": {"type": "tool", "name": ""}}),
    ("tool_choice.disable_parallel_tool_use", {"tool_choice": {"type": "auto", "disable_parallel_tool_use": "true"}}),
    # thinking, output_config, metadata, lists
    ("thinking.type", {"thinking": {"budget_tokens": 2048}}),
    ("thinking.budget_tokens", {"thinking": {"type": "enabled", "budget_tokens": "2048"}}),
    ("thinking.budget_tokens", {"thinking": {"type": "enabled", "budget_tokens": -5}}),
    ("thinking.display", {"thinking": {"type": "adaptive", "display": False}}),
    ("output_config.effort", {"output_config": {"effort": ["high"]}}),
    ("output_config.format", {"output_config": {"format": "json"}}),
    ("output_config.format.type", {"output_config": {"format": {}}}),
    ("output_config.format.schema", {"output_config": {"format": {"type": "json_schema"}}}),
    ("output_config.format.schema", {"output_config": {"format": {"type": "json_schema", "schema": "{}"}}}),
    ("metadata.user_id", {"metadata": {"user_id": 5}}),
    ("stop_sequences", {"stop_sequences": "END"}),
    ("stop_sequences", {"stop_sequences": ["END", 5]}),
    ("mcp_servers[0]", {"mcp_servers": ["https://mcp.example.com"]}),
]
CHAT_WRONG: list[tuple[str, dict]] = [
    # model, numbers, ranges
    ("model", {"model": ""}),
    ("model", {"model": "gpt-4o\r\n"}),
    ("model", {"model": "\udc00"}),
    ("messages", {"messages": []}),
    ("temperature", {"temperature": 2.5}),
    ("temperature", {"temperature": -0.5}),
    ("top_p", {"top_p": 1.5}),
    ("n", {"n": 0}),
    ("max_tokens", {"max_tokens": 0}),
    ("max_completion_tokens", {"max_completion_tokens": -1}),
    ("max_completion_tokens", {"max_completion_tokens": "lots"}),
    ("top_logprobs", {"top_logprobs": 21}),
    ("presence_penalty", {"presence_penalty": 3}),
    ("frequency_penalty", {"frequency_penalty": -2.5}),
    ("seed", {"seed": 1.5}),
    ("logit_bias.50256", {"logit_bias": {"50256": "x"}}),
    ("logit_bias.50256", {"logit_bias": {"50256": 200}}),
    ("stop", {"stop": 5}),
    ("stop", {"stop": ["a", None]}),
    ("modalities", {"modalities": ["text", 1]}),
    ("stream_options.include_usage", {"stream_options": {"include_usage": "yes"}}),
    ("functions[0]", {"functions": ["f"]}),
    # messages: roles
    ("messages[0]", {"messages": ["Hi"]}),
    ("messages[0].role", {"messages": [{"content": "Hi"}]}),
    ("messages[0].role", {"messages": [{"role": "bot", "content": "Hi"}]}),
    ("messages[0].role", {"messages": [{"role": {"name": "user"}, "content": "Hi"}]}),
    # system and developer
    ("messages[0].content", {"messages": [{"role": "system", "content": 5}]}),
    ("messages[0].content[0].type", {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": "https://x/a.png"}]}]}),
    ("messages[0].content[0].text", {"messages": [{"role": "developer", "content": [{"type": "text", "text": 5}]}]}),
    ("messages[0].content[0]", {"messages": [{"role": "developer", "content": [{}]}]}),
    ("messages[0].name", {"messages": [{"role": "system", "content": "x", "name": 5}]}),
    # user parts
    ("messages[0].content", {"messages": [{"role": "user", "content": 5}]}),
    ("messages[0].content", {"messages": [{"role": "user", "content": {"type": "text", "text": "Hi"}}]}),
    ("messages[0].content[0]", {"messages": [{"role": "user", "content": [5]}]}),
    ("messages[0].content[0]", {"messages": [{"role": "user", "content": [{"type": 5}]}]}),
    ("messages[0].content[0].text", {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]}),
    ("messages[0].content[0].image_url.url", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
    ("messages[0].content[0].image_url.url", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}]}),
    ("messages[0].content[0].image_url.url", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]}),
    ("messages[0].content[0].image_url.detail",
     {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x", "detail": 5}}]}]}),
    ("messages[0].content[0].image_url", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": ""}]}]}),
    ("messages[0].content[0].input_audio", {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": "UklG"}]}]}),
    ("messages[0].content[0].input_audio.format",
     {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG"}}]}]}),
    ("messages[0].content[0].file", {"messages": [{"role": "user", "content": [{"type": "file"}]}]}),
    ("messages[0].content[0].file.file_id", {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": 5}}]}]}),
    # assistant
    ("messages[1].content", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": 5}]}),
    ("messages[1].content[0].type",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [{"type": "image_url", "image_url": "https://x"}]}]}),
    ("messages[1].content[0].refusal",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [{"type": "refusal", "refusal": 5}]}]}),
    ("messages[1].refusal", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x", "refusal": 5}]}),
    ("messages[1].tool_calls", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": {"id": "c"}}]}),
    ("messages[1].tool_calls[0]", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": ["c"]}]}),
    ("messages[1].tool_calls[0].function",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]}]}),
    ("messages[1].tool_calls[0].function.name",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}]}),
    ("messages[1].tool_calls[0].type",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": 5}]}]}),
    ("messages[1].tool_calls[0].id",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [{"id": 5, "function": {"name": "f"}}]}]}),
    ("messages[1].tool_calls[0].custom",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom"}]}]}),
    ("messages[1].function_call", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "function_call": "f"}]}),
    ("messages[1].function_call.arguments",
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "function_call": {"name": "f", "arguments": {}}}]}),
    # tool call arguments: JSON inside a string
    *[
        ("messages[1].tool_calls[0].function.arguments",
         {"messages": [{"role": "user", "content": "Hi"},
                       {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": arguments}}]}]})
        # (1e999 is not looked for: see translate/validate.py's known shortcuts)
        for arguments in (5, ["x"], '{"a": NaN}', '{"a": -Infinity}', '{"a": "\\ud800"}', deep(MAX_JSON_DEPTH + 1), deep(50_000))
    ],
    # tool and function messages
    ("messages[2].tool_call_id", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x"}, {"role": "tool", "content": "1"}]}),
    ("messages[0].tool_call_id", {"messages": [{"role": "tool", "tool_call_id": "", "content": "1"}]}),
    ("messages[0].content", {"messages": [{"role": "tool", "tool_call_id": "c", "content": 5}]}),
    ("messages[0].content[0].text", {"messages": [{"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": 5}]}]}),
    ("messages[0].name", {"messages": [{"role": "function", "content": "1"}]}),
    ("messages[0].content", {"messages": [{"role": "function", "name": "f", "content": [1]}]}),
    # tools
    ("tools[0]", {"tools": ["get_weather"]}),
    ("tools[0].function", {"tools": [{"type": "function"}]}),
    ("tools[0].function.name", {"tools": [{"type": "function", "function": {"description": "x"}}]}),
    ("tools[0].function.name", {"tools": [{"function": {"name": ""}}]}),
    ("tools[0].function.parameters", {"tools": [{"type": "function", "function": {"name": "f", "parameters": "object"}}]}),
    ("tools[0].function.description", {"tools": [{"type": "function", "function": {"name": "f", "description": 5}}]}),
    ("tools[0].function.strict", {"tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}]}),
    ("tools[0].type", {"tools": [{"type": 5}]}),
    ("tools[0].custom", {"tools": [{"type": "custom"}]}),
    ("tools[0].custom.name", {"tools": [{"type": "custom", "custom": {}}]}),
    # tool_choice
    ("tool_choice", {"tool_choice": "sometimes"}),
    ("tool_choice.type", {"tool_choice": {"type": "tool", "name": "f"}}),
    ("tool_choice.type", {"tool_choice": {}}),
    ("tool_choice.function.name", {"tool_choice": {"type": "function"}}),
    ("tool_choice.function.name", {"tool_choice": {"type": "function", "function": {"name": ""}}}),
    ("tool_choice.custom.name", {"tool_choice": {"type": "custom", "custom": "x"}}),
    ("tool_choice.allowed_tools", {"tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}}),
    ("tool_choice.allowed_tools.mode", {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "any", "tools": []}}}),
    ("tool_choice.allowed_tools.tools", {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto"}}}),
    ("tool_choice.allowed_tools.tools[0]", {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": ["ping"]}}}),
    # response_format
    ("response_format.type", {"response_format": {}}),
    ("response_format.json_schema", {"response_format": {"type": "json_schema"}}),
    ("response_format.json_schema.schema", {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": "x"}}}),
    ("response_format.json_schema.name", {"response_format": {"type": "json_schema", "json_schema": {"name": 5}}}),
    ("response_format.json_schema.strict", {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": "yes"}}}),
]
WRONG = {
    "messages": ANTHROPIC_WRONG,
    "count_tokens": [(param, fields) for param, fields in ANTHROPIC_WRONG if param.split(".")[0].split("[")[0] in COUNT_TOKENS_FIELDS],
    "chat": CHAT_WRONG,
}


def wrong_nested_cases() -> dict[str, tuple[str, dict, str]]:
    cases = {}
    for endpoint, entries in WRONG.items():
        for number, (param, fields) in enumerate(entries):
            cases[f"{endpoint} {number} {param}"] = (endpoint, {**BASES[endpoint], **fields}, param)
    return cases


# ---------------------------------------------------------------------------------------------
# Valid bodies: odd but accepted, the fixtures, realistic requests
# ---------------------------------------------------------------------------------------------

NULL_OPTIONALS = {
    endpoint: {name: None for name in kinds if name not in REQUIRED[endpoint]} for endpoint, kinds in KINDS.items()
}
ODD_BUT_ACCEPTED: dict[str, tuple[str, dict]] = {
    "anthropic minimal": ("messages", {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]}),
    "anthropic max_tokens 0 (cache pre-warm), no messages": ("messages", {"model": "m", "max_tokens": 0, "messages": []}),
    "anthropic every optional field null": ("messages", {**MESSAGES_BASE, **NULL_OPTIONALS["messages"]}),
    "anthropic unknown fields and blocks": ("messages", {
        "model": "claude-ünï-4", "max_tokens": 10, "betas": ["x"], "x_new_field": {"a": [1, None]},
        "messages": [
            {"role": "user", "content": [{"type": "future_block", "payload": {"x": 1}}, {"type": "container_upload", "file_id": "f"},
                                         {"type": "mid_conv_system", "text": "note"}, {"type": "image"}, {"type": "document"}]},
            {"role": "assistant", "content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                                              {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                                               "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}},
                                              {"type": "thinking"}, {"type": "tool_use", "id": "t", "name": "x"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}, {"type": "tool_result", "tool_use_id": "u", "content": []},
                                         {"type": "search_result"}, {"type": "tool_reference"}]},
        ],
    }),
    "anthropic edges of ranges": ("messages", {"model": "m", "max_tokens": 1, "messages": [], "temperature": 0, "top_p": 1.0, "top_k": 0}),
    "anthropic tools without schema, unknown tool_choice type": ("messages", {
        "model": "m", "max_tokens": 1, "messages": [], "tools": [{"name": "t"}], "tool_choice": {"type": "whatever"},
        "thinking": {"type": "adaptive"}, "output_config": {"format": {"type": "text"}}, "metadata": {}, "container": {"id": "c"},
        "system": [{"type": "text", "text": ""}, {"type": "not_text"}],
    }),
    "count_tokens without a model": ("count_tokens", {"messages": [{"role": "user", "content": "Hi"}]}),
    "count_tokens every optional field null": ("count_tokens", {**COUNT_TOKENS_BASE, **NULL_OPTIONALS["count_tokens"]}),
    "count_tokens ignores fields it does not define": ("count_tokens", {"messages": [], "max_tokens": "x", "stream": 5}),
    "chat minimal": ("chat", {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}),
    "chat every optional field null": ("chat", {**CHAT_BASE, **NULL_OPTIONALS["chat"]}),
    "chat what only Claude cannot do": ("chat", {
        "model": "m", "n": 3, "logprobs": True, "top_logprobs": 20, "audio": {"voice": "alloy"}, "modalities": ["text", "audio"],
        "reasoning_effort": "extreme", "response_format": {"type": "structural_tag"}, "functions": [{"name": "f"}], "function_call": {"name": "f"},
        "tools": [{"type": "custom", "custom": {"name": "grammar"}}], "tool_choice": {"type": "custom", "custom": {"name": "grammar"}},
        "messages": [
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                                         {"type": "file", "file": {"file_id": "file-abc"}}, {"type": "video_url", "video_url": {"url": "x"}}]},
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "1"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "grammar", "input": "x"}}]},
        ],
    }),
    "chat shapes the translator takes": ("chat", {
        "model": "m", "stop": "\n", "temperature": 2, "tool_choice": {"type": "allowed_tools", "allowed_tools": {
            "mode": "required", "tools": [{"type": "function", "name": "f"}, {"type": "function", "function": {"name": "f"}}]}},
        "tools": [{"function": {"name": "f"}}],
        "messages": [
            {"role": "system", "content": ["bare string part", {"type": "text", "text": ""}]},
            {"role": "system", "content": None},
            {"role": "user", "content": ["bare", {"type": "image_url", "image_url": "https://example.com/a.png"}]},
            {"role": "user", "content": None},
            {"role": "assistant", "content": ["bare"], "reasoning_content": "thought", "tool_calls": [
                {"function": {"name": "f", "arguments": {"already": "an object"}}},
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": '{"broken": '}},
                {"id": "c3", "type": "function", "function": {"name": "f", "arguments": ""}},
                {"id": "c4", "type": "function", "function": {"name": "f"}},
                {"id": "c5", "type": "function", "function": {"name": "f", "arguments": '{"face": "\\ud83d\\ude00", "n": 1e300}'}},
                {"id": "c6", "type": "function", "function": {"name": "f", "arguments": json.dumps({"big": "NaN is a word"})}},
            ]},
            {"role": "tool", "tool_call_id": "c2", "content": None},
            {"role": "tool", "tool_call_id": "c3", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
        ],
    }),
}

# Request fixtures that deliberately hold input the validator refuses: {case: the param it names}.
REFUSED_FIXTURES = {
    # temperature -0.5 tests the translator's clamping into Claude's 0-1; OpenAI's range is 0-2, so
    # the chat front refuses it before any translation (the clamp stays as a second line).
    "chat_to_anthropic/request_whitespace_stop_and_default_max_tokens": "temperature",
}


def fixture_requests() -> dict[str, tuple[str, dict]]:
    found = {}
    for directory, endpoint in (("anthropic_to_chat", "messages"), ("chat_to_anthropic", "chat")):
        for path in sorted((FIXTURES / directory).glob("request_*/input.json")):
            found[f"{directory}/{path.parent.name}"] = (endpoint, json.loads(path.read_text(encoding="utf-8")))
    return found


def valid_cases() -> dict[str, tuple[str, dict]]:
    cases = {f"{endpoint} base": (endpoint, body) for endpoint, body in BASES.items()}
    cases.update(ODD_BUT_ACCEPTED)
    cases.update({name: case for name, case in fixture_requests().items() if name not in REFUSED_FIXTURES})
    cases["bench Claude Code first request"] = ("messages", payloads.claude_code_first("claude-sonnet-4-5"))
    cases["bench Claude Code late request"] = ("messages", payloads.claude_code_late("claude-sonnet-4-5"))
    cases["bench Claude Code count_tokens"] = ("count_tokens", payloads.count_tokens_body(payloads.claude_code_first("m"), "m"))
    cases["bench tools request"] = ("messages", payloads.tools_request("claude-sonnet-4-5"))
    cases["bench chat request"] = ("chat", payloads.openai_small("gpt-4o", stream=True))
    return cases


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def assert_refused(endpoint: str, body: dict, param: str) -> InvalidRequest:
    snapshot = copy.deepcopy(body)
    with pytest.raises(InvalidRequest) as raised:
        VALIDATORS[endpoint](body)
    error = raised.value
    assert (error.status, error.param) == (400, param), error.message
    assert error.message.startswith(param + ": ") and error.message.endswith(".")
    assert body == snapshot, "the body is never modified"
    return error


WRONG_KIND_CASES = wrong_kind_cases()
WRONG_NESTED_CASES = wrong_nested_cases()
VALID_CASES = valid_cases()


@pytest.mark.parametrize("endpoint, body, param", WRONG_KIND_CASES.values(), ids=WRONG_KIND_CASES.keys())
def test_each_top_level_field_of_a_wrong_kind_is_a_400_naming_it(endpoint, body, param):
    """Every field an endpoint defines, replaced by each JSON kind it does not take, is refused by name."""
    assert_refused(endpoint, body, param)


@pytest.mark.parametrize("endpoint, body, param", WRONG_NESTED_CASES.values(), ids=WRONG_NESTED_CASES.keys())
def test_each_wrong_nested_field_is_a_400_naming_its_path(endpoint, body, param):
    """Messages, blocks, parts, tools, tool_choice and the other objects: the path in param and message."""
    assert_refused(endpoint, body, param)


@pytest.mark.parametrize("endpoint, body", VALID_CASES.values(), ids=VALID_CASES.keys())
def test_valid_requests_pass_untouched(endpoint, body):
    """Base bodies, odd-but-accepted shapes, every request fixture and bench bodies pass, unchanged."""
    snapshot = copy.deepcopy(body)
    assert VALIDATORS[endpoint](body) is None
    assert body == snapshot


@pytest.mark.parametrize("name", sorted(REFUSED_FIXTURES))
def test_fixtures_holding_out_of_range_input_are_refused_by_design(name):
    """The fixtures listed in REFUSED_FIXTURES exist and name the field the validator refuses."""
    endpoint, body = fixture_requests()[name]
    assert_refused(endpoint, body, REFUSED_FIXTURES[name])


def test_the_corpus_covers_every_field_the_validators_check():
    """KINDS lists exactly the fields each validator knows, and each base body sets all of them."""
    for endpoint, fields in FIELDS.items():
        assert set(KINDS[endpoint]) == set(fields), endpoint
        assert set(fields) <= set(BASES[endpoint]), endpoint


def test_the_body_must_be_an_object():
    """A list, a string or null as the body is a 400 without a param."""
    for validator in VALIDATORS.values():
        for body in ([], "x", None, 5):
            with pytest.raises(InvalidRequest, match="must be a JSON object") as raised:
                validator(body)
            assert raised.value.param is None


def test_the_first_wrong_field_is_reported_required_fields_first():
    """A body with several wrong fields names a missing required one first, then the first in body order."""
    error = assert_refused("messages", {"temperature": 5, "model": "m", "messages": [], "stream": "yes"}, "max_tokens")
    assert error.message == "max_tokens: a non-negative integer is required."
    assert_refused("messages", {"temperature": 5, "model": "m", "messages": [], "max_tokens": 1, "stream": "yes"}, "temperature")


def test_messages_read_as_sentences():
    """Messages say what the field must be, as the translators' own 400s do."""
    cases = [
        ("messages", {**MESSAGES_BASE, **user({"type": "text", "text": 5})}, "messages[0].content[0].text: a string is required."),
        ("messages", {**MESSAGES_BASE, "model": "a\nb"}, "model: must not contain control characters or lone surrogates."),
        ("messages", {**MESSAGES_BASE, "temperature": 2}, "temperature: a number from 0 to 1 is required."),
        ("chat", {**CHAT_BASE, "reasoning_effort": ["high"]}, "reasoning_effort: a string is required."),
        ("chat", {**CHAT_BASE, "reasoning_effort": {"effort": "high"}}, "reasoning_effort: a string is required."),
        ("chat", {**CHAT_BASE, "temperature": 3}, "temperature: a number from 0 to 2 is required."),
        ("chat", {**CHAT_BASE, "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"a": NaN}'}}]}]},
         "messages[0].tool_calls[0].function.arguments: NaN is not valid JSON."),
    ]
    for endpoint, body, message in cases:
        with pytest.raises(InvalidRequest) as raised:
            VALIDATORS[endpoint](body)
        assert raised.value.message == message


def test_a_remembered_tool_list_is_validated_once_per_front():
    """Claude Code's repeated tool list: checked on first sight, then taken as valid from its derived dict."""
    raw = payloads.encode(payloads.claude_code_first("claude-sonnet-4-5"))
    memo = ToolsMemo()
    first = loads_request(raw, memo)
    tools = first["tools"]
    assert type(tools) is RememberedList and "valid:anthropic" not in tools.derived
    validate_messages_request(first)
    assert tools.derived["valid:anthropic"] is True and "valid:chat" not in tools.derived
    second = loads_request(raw, memo)
    assert second["tools"] is tools
    validate_messages_request(second)
    # The mark is per front: the same list is not valid chat tools.
    with pytest.raises(InvalidRequest) as raised:
        validate_chat_request({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "tools": tools})
    assert raised.value.param == "tools[0].function"


def test_a_remembered_list_that_failed_is_not_marked():
    """A tool list that fails keeps failing: nothing is recorded for it."""
    tools = RememberedList([{"name": "ok"}, {"name": 5}], "[...]")
    for _ in range(2):
        with pytest.raises(InvalidRequest):
            validate_messages_request({"model": "m", "max_tokens": 1, "messages": [], "tools": tools})
    assert "valid:anthropic" not in tools.derived


# ---------------------------------------------------------------------------------------------
# Properties: valid drawn requests pass; what passes never crashes a translator
# ---------------------------------------------------------------------------------------------


@given(anthropic_requests())
@PROPERTY
def test_any_valid_anthropic_request_passes(request_and_target):
    """Every Anthropic request tests/strategies.py draws (Claude Code and SDK shapes) is valid."""
    body, _target = request_and_target
    validate_messages_request(body)
    validate_count_tokens_request(body)


@given(openai_requests())
@PROPERTY
def test_any_valid_chat_request_passes(request_and_target):
    """Every Chat Completions request tests/strategies.py draws is valid."""
    body, _target = request_and_target
    validate_chat_request(body)


NASTY_VALUES = [
    None, True, False, 0, -1, 1.5, 10**30, "", "x", "\n", [], {}, ["x"], [None], [[]], [{}], {"type": None}, {"type": 5},
    {"type": "text"}, {"type": "text", "text": 5}, {"type": "image"}, {"type": "tool_use"}, {"type": "tool_result"},
    {"type": "image_url"}, {"type": "function"}, {"type": "json_schema"}, {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [5]}},
    [{"type": "text", "text": {}}], {"role": "user"}, {"role": "assistant", "content": None}, {"role": "tool"},
]


def paths_in(value: object, prefix: tuple = ()) -> list[tuple]:
    """The path (keys and indexes) of every value inside `value`, shallowest first."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    found = [prefix + (key,) for key, _item in items]
    for key, item in items:
        found += paths_in(item, prefix + (key,))
    return sorted(found, key=len)


REMOVE = object()


def changed(body: dict, path: tuple, value: object) -> dict:
    """A deep copy of `body` with the value at `path` replaced by `value`, or removed when value is REMOVE."""
    copied = copy.deepcopy(body)
    container = copied
    for key in path[:-1]:
        container = container[key]
    if value is REMOVE:
        if isinstance(container, dict):
            del container[path[-1]]
    else:
        container[path[-1]] = copy.deepcopy(value)
    return copied


@st.composite
def mutated(draw, requests, fields: dict):
    """A valid drawn request with one thing broken: a field the endpoint defines set to a nasty value
    (a third of the time), or a value anywhere replaced or removed (each depth as likely as any other)."""
    body, target = draw(requests)
    nasty = st.sampled_from(NASTY_VALUES) | json_values
    if draw(st.integers(0, 2)) == 0:
        return {**body, draw(st.sampled_from(sorted(fields))): copy.deepcopy(draw(nasty))}, target
    paths = paths_in(body)
    depth = draw(st.sampled_from(sorted({len(path) for path in paths})))
    path = draw(st.sampled_from([path for path in paths if len(path) == depth]))
    return changed(body, path, draw(st.just(REMOVE) | nasty)), target


CHAT_TARGETS = [ChatTarget(model="gpt-4o", reasoning=False), ChatTarget(model="gpt-5", reasoning=True, thought_signatures=True)]

# A chat body Claude can take (the base's n, logprobs, audio and legacy functions refused by the translation).
CLAUDE_CHAT_BASE = {
    **{key: value for key, value in CHAT_BASE.items()
       if key not in ("n", "logprobs", "top_logprobs", "audio", "modalities", "functions", "function_call")},
    "messages": [message if message["role"] != "user" or isinstance(message["content"], str)
                 else {**message, "content": message["content"][:3]} for message in CHAT_BASE["messages"]],
}


def translate_or_refuse(endpoint: str, body: dict, chat_targets: tuple = tuple(CHAT_TARGETS)) -> None:
    """Run the request translators that serve `endpoint` on `body`: a 400 is fine, anything else is a crash."""
    if endpoint == "chat":
        try:
            dumps(chat_to_anthropic_request(body, AnthropicTarget(model="claude-sonnet-4-5")).body).encode("utf-8")
        except InvalidRequest:
            pass
        return
    if endpoint == "count_tokens":  # what the server runs when no upstream counts exactly
        estimate_input_tokens(without_unloaded_tools(body))
        return
    for chat_target in chat_targets:
        try:
            translated = anthropic_to_chat_request(body, chat_target).body
        except InvalidRequest:
            continue
        dumps(prepare_gemini_request(translated)).encode("utf-8")
    estimate_input_tokens(without_unloaded_tools(body))


SINGLE_CHANGE_BASES = {"messages": MESSAGES_BASE, "count_tokens": COUNT_TOKENS_BASE, "chat": CLAUDE_CHAT_BASE}


@pytest.mark.parametrize("endpoint, base", SINGLE_CHANGE_BASES.items(), ids=SINGLE_CHANGE_BASES.keys())
def test_no_single_change_the_validator_passes_crashes_a_translator(endpoint, base):
    """Each field the endpoint defines, and each value anywhere in a base body, set to each nasty value
    (or removed): whatever the validator passes, the translators take or refuse with a 400."""
    translate_or_refuse(endpoint, base)  # the base itself translates
    fields = FIELDS[endpoint]
    bodies = [{**base, name: value} for name in fields for value in NASTY_VALUES]
    bodies += [changed(base, path, value) for path in paths_in(base) for value in [*NASTY_VALUES, REMOVE]]
    for body in bodies:
        try:
            VALIDATORS[endpoint](body)
        except InvalidRequest:
            continue
        translate_or_refuse(endpoint, body)


@given(mutated(anthropic_requests(), validate.MESSAGES_FIELDS))
@settings(PROPERTY, max_examples=100)
def test_a_drawn_anthropic_request_the_validator_passes_never_crashes_a_translator(request_and_target):
    """Drawn requests with one thing broken: after validation, translation, Gemini preparation, tool
    search and token counting raise nothing but 400s."""
    body, target = request_and_target
    try:
        validate_messages_request(body)
    except InvalidRequest:
        return
    translate_or_refuse("messages", body, (target, *CHAT_TARGETS))


@given(mutated(openai_requests(), validate.CHAT_FIELDS))
@settings(PROPERTY, max_examples=100)
def test_a_drawn_chat_request_the_validator_passes_never_crashes_a_translator(request_and_target):
    """Drawn requests with one thing broken: after validation, the Anthropic translation raises nothing but 400s."""
    body, _target = request_and_target
    try:
        validate_chat_request(body)
    except InvalidRequest:
        return
    translate_or_refuse("chat", body)
