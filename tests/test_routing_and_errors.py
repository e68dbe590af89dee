"""The routing table, portable tool ids and names, and the mapping of upstream errors."""

from __future__ import annotations

import json

import pytest

from translate.errors import (
    InvalidRequest,
    anthropic_error_body,
    error_from_upstream,
    chat_error_body,
    chat_status,
)
from translate.tools import function_name_map, chat_function_name, portable_tool_id
from upstreams.routing import RoutingTable, resolve_route

TABLE = RoutingTable(
    preferred="openai",
    big_model="big",
    middle_model="middle",
    small_model="small",
    configured=frozenset({"openai", "echo"}),
    aliases={"my-opus": "claude-opus-4-1", "fast": "echo/x"},
)


@pytest.mark.parametrize(
    "requested, provider, model",
    [
        ("claude-haiku-4-5-20251001", "openai", "small"),
        ("claude-sonnet-5", "openai", "middle"),
        ("claude-opus-4-8", "openai", "big"),
        ("Claude-3-OPUS", "openai", "big"),
        ("openai/gpt-4o", "openai", "gpt-4o"),
        ("echo/anything", "echo", "anything"),
        ("gpt-4.1-nano", "openai", "gpt-4.1-nano"),
        ("my-opus", "openai", "big"),
        ("fast", "echo", "x"),
    ],
)
def test_models_route_by_prefix_alias_family_or_pass_through(requested, provider, model):
    """Aliases first, then provider/ prefixes, then haiku/sonnet/opus tiers, else unchanged."""
    route = resolve_route(requested, TABLE)
    assert (route.provider, route.model, route.requested) == (provider, model, requested)


def test_unconfigured_provider_is_reported_not_guessed():
    """A route to a provider missing from the table says so."""
    table = RoutingTable("echo", "b", "m", "s", frozenset({"echo"}))
    assert resolve_route("openai/gpt-4o", table).configured is False
    assert resolve_route("claude-sonnet-5", table).configured is True


def test_tool_ids_that_fit_both_sides_pass_unchanged_and_others_map_stably():
    """Ids matching ^[A-Za-z0-9_-]{1,40}$ pass; others map deterministically to a fitting id."""
    assert portable_tool_id("toolu_01AbC") == "toolu_01AbC"
    assert portable_tool_id("call_" + "x" * 35) == "call_" + "x" * 35
    for odd in ("functions.Bash:0", "toolu_" + "a" * 60, "id with spaces"):
        mapped = portable_tool_id(odd)
        assert mapped == portable_tool_id(odd) and mapped != odd
        assert portable_tool_id(mapped) == mapped and len(mapped) <= 40
    assert portable_tool_id("", "m:0") != portable_tool_id("", "m:1")
    assert portable_tool_id(None, "m:0") == portable_tool_id("", "m:0")


def test_long_tool_names_are_shortened_and_mapped_back():
    """MCP names over 64 chars get a stable short name and a reverse map entry."""
    long_name = "mcp__server__" + "very_long_tool_name_" * 5
    short = chat_function_name(long_name)
    assert len(short) <= 64 and short == chat_function_name(long_name)
    assert function_name_map([long_name, "Bash"]) == {short: long_name}


def test_upstream_error_bodies_of_every_shape_keep_their_message():
    """OpenAI, Google array-wrapped, plain-text and empty bodies all yield a readable message."""
    google = json.dumps([{"error": {"code": 400, "message": "Unknown name foo", "status": "INVALID_ARGUMENT"}}]).encode()
    assert "Unknown name foo" in error_from_upstream(400, google, provider="gemini").message
    assert "bad gateway page" in error_from_upstream(500, b"bad gateway page", provider="x").message
    assert error_from_upstream(500, b"", provider="x").message


@pytest.mark.parametrize(
    "status, expected",
    [(400, 400), (401, 401), (402, 402), (403, 403), (404, 404), (408, 504), (409, 409), (413, 413), (418, 400),
     (422, 400), (429, 429), (500, 500), (501, 500), (502, 502), (503, 503), (504, 504), (529, 529)],
)
def test_upstream_statuses_keep_their_meaning(status, expected):
    """Status mapping from the upstream to the client (422 -> 400, 408 -> 504, unknown 5xx -> 500)."""
    assert error_from_upstream(status, b'{"error":{"message":"m"}}', provider="p").status == expected


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "x", "code": "context_length_exceeded"}},
        {"error": {"message": "This model's maximum context length is 8192 tokens. However, you requested 9000"}},
        [{"error": {"message": "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}],
        {"error": {"message": "the input length exceeds the context length"}},
    ],
)
def test_context_length_errors_say_prompt_is_too_long(body):
    """OpenAI, vLLM, Gemini and Ollama context errors become 400 'prompt is too long'."""
    error = error_from_upstream(400, json.dumps(body).encode(), provider="p")
    assert error.status == 400 and "prompt is too long" in error.message


def test_only_429_passes_retry_after_on():
    """retry-after rides along on 429 only."""
    assert error_from_upstream(429, b"{}", provider="p", retry_after="5").retry_after == "5"
    assert error_from_upstream(500, b"{}", provider="p", retry_after="5").retry_after is None


def test_envelopes_for_both_fronts():
    """The same error renders as Anthropic and OpenAI envelopes; 529 becomes 503 for OpenAI clients."""
    error = InvalidRequest("bad thing", param="messages")
    assert anthropic_error_body(error) == {"type": "error", "error": {"type": "invalid_request_error", "message": "bad thing"}}
    assert chat_error_body(error) == {"error": {"message": "bad thing", "type": "invalid_request_error", "param": "messages", "code": None}}
    overloaded = error_from_upstream(529, b"{}", provider="p")
    assert overloaded.error_type == "overloaded_error" and chat_status(overloaded) == 503
