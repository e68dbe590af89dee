"""upstreams.request_class: the route rule chosen from what a request is.

The requests are built from the Claude Code fixtures in tests/fixtures/anthropic_to_chat (a 2.1.332
first turn at medium effort, an earlier 2.1 first turn at high effort), plus the turns Claude Code
adds to them: tool calls and results, images, a compaction prompt, subagent and hint headers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from translate.tokens import estimate_input_tokens
from upstreams.request_class import (
    RULE_SETTINGS,
    RULES,
    RequestClassRoutes,
    choose_route_rule,
)
from upstreams.settings import ConfigError

# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic_to_chat"


def fixture_request(case: str) -> dict:
    return json.loads((FIXTURES / case / "input.json").read_text(encoding="utf-8"))


def without(body: dict, *fields: str) -> dict:
    return {key: value for key, value in body.items() if key not in fields}


def with_turns(body: dict, *turns: dict, **fields: object) -> dict:
    return {**body, "messages": [*body["messages"], *turns], **fields}


def user_text(text: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def tool_call(call_id: str, name: str, tool_input: dict) -> dict:
    return {"role": "assistant", "content": [{"type": "tool_use", "id": call_id, "name": name, "input": tool_input}]}


def tool_result(call_id: str, content: object) -> dict:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": content}]}


PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE_BLOCK = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1}}

# Claude Code 2.1.332's first request: adaptive thinking at medium effort, deferred tools.
MAIN_TURN = fixture_request("request_claude_code_2_1_332_first_request_tool_search")
# An earlier 2.1 first turn, at the default effort on Opus: high.
HIGH_EFFORT_TURN = fixture_request("request_claude_code_first_turn_plain_target")
# Adaptive thinking with no effort: Claude Code's default, not a request to think harder.
ADAPTIVE_ONLY_TURN = without(MAIN_TURN, "output_config")
# Thinking switched on with a budget (older versions, "ultrathink"; the chat front's reasoning_effort).
THINK_BUDGET_TURN = {**ADAPTIVE_ONLY_TURN, "thinking": {"type": "enabled", "budget_tokens": 31999}}

# A turn that follows tool work: Read, Bash, then the user again.
SECOND_TURN = with_turns(
    MAIN_TURN,
    {"role": "assistant", "content": [{"type": "text", "text": "Let me look at the test first."}]},
    tool_call("toolu_01", "Read", {"file_path": "tests/test_io.py"}),
    tool_result("toolu_01", "     1\timport io\n     2\tdef test_read():\n     3\t    assert io.read() == b''\n"),
    tool_call("toolu_02", "Bash", {"command": "python -m pytest -q tests/test_io.py"}),
    tool_result("toolu_02", [{"type": "text", "text": "1 failed in 0.02s"}]),
    user_text("now fix it"),
)

# Images: pasted into a user turn, returned by Read in a tool result, or left earlier in history.
IMAGE_IN_USER_TURN = with_turns(
    MAIN_TURN, {"role": "user", "content": [{"type": "text", "text": "What is wrong here?"}, IMAGE_BLOCK]}
)
IMAGE_IN_TOOL_RESULT = with_turns(
    MAIN_TURN,
    tool_call("toolu_03", "Read", {"file_path": "docs/screenshot.png"}),
    tool_result("toolu_03", [IMAGE_BLOCK]),
)
IMAGE_EARLIER_IN_HISTORY = with_turns(
    IMAGE_IN_USER_TURN,
    {"role": "assistant", "content": [{"type": "text", "text": "The button is cut off."}]},
    user_text("fix the CSS then"),
)

# A subagent (the Agent tool): its own prompt and tools, the session's effort (high).
SUBAGENT_TURN = {
    **HIGH_EFFORT_TURN,
    "model": "claude-sonnet-5",
    "system": [
        HIGH_EFFORT_TURN["system"][0],
        {"type": "text", "text": "You are an agent for Claude Code. [agent prompt, shortened]"},
    ],
    "messages": [user_text("Find every caller of read_chunk and report file:line for each.")],
}
# Claude Code's Explore subagent runs on haiku.
EXPLORE_SUBAGENT_TURN = {
    **without(SUBAGENT_TURN, "thinking", "output_config"),
    "model": "claude-haiku-4-5-20251001",
}
# An auxiliary request (session title, bash prefix check): haiku, no tools, no thinking.
AUXILIARY_HAIKU = {
    "model": "claude-haiku-4-5-20251001",
    "max_tokens": 512,
    "stream": True,
    "system": [
        MAIN_TURN["system"][0],
        {"type": "text", "text": "Summarize this coding conversation in under 50 characters."},
    ],
    "messages": [user_text("fix the failing test in tests/test_io.py")],
    "metadata": MAIN_TURN["metadata"],
}

# Compaction: the history, then a user turn holding Claude Code's compaction prompt (shortened).
COMPACTION_PROMPT = (
    "Your task is to create a detailed summary of the conversation so far, paying close attention to "
    "the user's explicit requests and your previous actions.\n[instructions, shortened]\n"
    "<example>\n<summary>\n1. Primary Request and Intent:\n   [Detailed description]\n</summary>\n</example>"
)
PARTIAL_COMPACTION_PROMPT = (
    "Your task is to create a detailed summary of the RECENT portion of the conversation.\n"
    "[instructions, shortened]\n<summary>\n[...]\n</summary>"
)
COMPACTION = with_turns(SECOND_TURN, user_text(COMPACTION_PROMPT))
PARTIAL_COMPACTION = with_turns(SECOND_TURN, user_text(PARTIAL_COMPACTION_PROMPT))
COMPACTION_AFTER_PREAMBLE = with_turns(
    SECOND_TURN, user_text("[a preamble forbidding tool calls]\n\n" + COMPACTION_PROMPT + "\nAdditional Instructions:\nfocus on tests")
)
COMPACTION_STRING_CONTENT = with_turns(SECOND_TURN, {"role": "user", "content": COMPACTION_PROMPT})
# A main turn whose Read result quotes the prompt (say, reading a proxy's source) is no compaction.
PROMPT_QUOTED_IN_TOOL_RESULT = with_turns(
    MAIN_TURN,
    tool_call("toolu_04", "Read", {"file_path": "notes/compaction.md"}),
    tool_result("toolu_04", [{"type": "text", "text": COMPACTION_PROMPT}]),
)
# The prompt text in an assistant turn is not a request to compact either.
PROMPT_IN_ASSISTANT_TURN = with_turns(
    MAIN_TURN, {"role": "assistant", "content": [{"type": "text", "text": COMPACTION_PROMPT}]}
)


def long_session(base: dict, over_tokens: int) -> dict:
    """`base` with Read calls on source files appended until the estimate passes `over_tokens`."""
    source = "\n".join(
        f"    def handle_{n}(self, request):\n        return self.route(request, retries={n % 7})" for n in range(120)
    )
    body, n = base, 0
    while estimate_input_tokens(body) <= over_tokens:
        body = with_turns(
            body,
            tool_call(f"toolu_long_{n}", "Read", {"file_path": f"server/handler_{n}.py"}),
            tool_result(f"toolu_long_{n}", [{"type": "text", "text": source}]),
        )
        n += 1
    return body


LONG_SESSION = with_turns(long_session(MAIN_TURN, 100_000), user_text("now refactor all of them"))
LONG_SUBAGENT_SESSION = long_session(SUBAGENT_TURN, 100_000)
LONG_COMPACTION = with_turns(LONG_SESSION, user_text(COMPACTION_PROMPT))

# --------------------------------------------------------------------------------------------
# Headers (lower-case names, as the server hands them over)
# --------------------------------------------------------------------------------------------

PLAIN = {
    "user-agent": "claude-cli/2.1.332 (external, cli)",
    "anthropic-version": "2023-06-01",
    "x-app": "cli",
    "x-claude-code-session-id": "00000000-0000-4000-8000-000000000000",
}
# A subagent's request as Claude Code 2.1.332 sends it (seen against a fake server): its own agent id,
# no parent id; with CLAUDE_CODE_GATEWAY_HINT_HEADERS=1 also the class and the agent type.
SUBAGENT = {**PLAIN, "x-claude-code-agent-id": "a969b1e4447a280dd"}
NESTED_SUBAGENT = {**SUBAGENT, "x-claude-code-parent-agent-id": "f0e1d2"}


def hinted(headers: dict, request_class: str, agent_type: str | None = None) -> dict:
    """`headers` as sent with CLAUDE_CODE_GATEWAY_HINT_HEADERS=1."""
    out = {**headers, "x-claude-code-request-class": request_class}
    if agent_type:
        out["x-claude-code-agent-type"] = agent_type
    return out


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------

ALL = RequestClassRoutes(
    background="openai/gpt-4.1-mini",
    subagent="openai/gpt-4.1",
    think="openai/o3",
    long_context="gemini/gemini-2.5-pro",
    image="openai/gpt-4o",
    compaction="gemini/gemini-2.5-flash",
)


def only(*rules: str) -> RequestClassRoutes:
    return RequestClassRoutes(**{rule: ALL.model_for(rule) for rule in rules})


def all_but(*rules: str) -> RequestClassRoutes:
    return only(*(rule for rule in RULES if rule not in rules))


def must_not_estimate(body: dict) -> int:
    raise AssertionError("the token estimate ran although no rule needed it")


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

TABLE = [
    # id, settings, body, headers, expected
    ("main turn", ALL, MAIN_TURN, PLAIN, None),
    ("main turn, hinted main", ALL, MAIN_TURN, hinted(PLAIN, "main"), None),
    ("main turn after tool work", ALL, SECOND_TURN, PLAIN, None),
    ("adaptive thinking alone is the default", ALL, ADAPTIVE_ONLY_TURN, PLAIN, None),
    ("high effort", ALL, HIGH_EFFORT_TURN, PLAIN, ("think", "openai/o3")),
    ("thinking budget", ALL, THINK_BUDGET_TURN, PLAIN, ("think", "openai/o3")),
    ("adaptive thinking with a budget", ALL, {**ADAPTIVE_ONLY_TURN, "thinking": {"type": "adaptive", "budget_tokens": 4000}},
     PLAIN, ("think", "openai/o3")),
    ("a zero budget", ALL, {**ADAPTIVE_ONLY_TURN, "thinking": {"type": "enabled", "budget_tokens": 0}}, PLAIN, None),
    ("thinking disabled", ALL, {**ADAPTIVE_ONLY_TURN, "thinking": {"type": "disabled"}}, PLAIN, None),
    ("low effort", ALL, {**MAIN_TURN, "output_config": {"effort": "low"}}, PLAIN, None),
    ("max effort", ALL, {**MAIN_TURN, "output_config": {"effort": "max"}}, PLAIN, ("think", "openai/o3")),
    ("xhigh effort", ALL, {**MAIN_TURN, "output_config": {"effort": "xhigh"}}, PLAIN, ("think", "openai/o3")),
    ("subagent by its agent id", ALL, SUBAGENT_TURN, SUBAGENT, ("subagent", "openai/gpt-4.1")),
    ("nested subagent by parent id", ALL, SUBAGENT_TURN, NESTED_SUBAGENT, ("subagent", "openai/gpt-4.1")),
    ("parent id alone", ALL, SUBAGENT_TURN, {**PLAIN, "x-claude-code-parent-agent-id": "f0e1d2"},
     ("subagent", "openai/gpt-4.1")),
    ("subagent, hinted", ALL, SUBAGENT_TURN, hinted(SUBAGENT, "subagent", "general-purpose"),
     ("subagent", "openai/gpt-4.1")),
    ("workflow is a subagent", ALL, SUBAGENT_TURN, hinted(PLAIN, "workflow"), ("subagent", "openai/gpt-4.1")),
    ("an empty agent id is no subagent", only("subagent"), SUBAGENT_TURN,
     {**PLAIN, "x-claude-code-agent-id": " "}, None),
    ("hinted main beats parent id", only("subagent"), SUBAGENT_TURN, hinted(SUBAGENT, "main"), None),
    ("subagent without ROUTE_SUBAGENT thinks", all_but("subagent"), SUBAGENT_TURN, SUBAGENT,
     ("think", "openai/o3")),
    ("explore subagent on haiku", ALL, EXPLORE_SUBAGENT_TURN, SUBAGENT, ("subagent", "openai/gpt-4.1")),
    ("explore subagent is not background", only("background"), EXPLORE_SUBAGENT_TURN, SUBAGENT, None),
    ("explore subagent hinted is not background", only("background"), EXPLORE_SUBAGENT_TURN,
     hinted(SUBAGENT, "subagent", "Explore"), None),
    ("haiku without headers", ALL, AUXILIARY_HAIKU, PLAIN, ("background", "openai/gpt-4.1-mini")),
    ("haiku, hinted auxiliary", ALL, AUXILIARY_HAIKU, hinted(PLAIN, "auxiliary"),
     ("background", "openai/gpt-4.1-mini")),
    ("haiku as the main model, hinted main", ALL, AUXILIARY_HAIKU, hinted(PLAIN, "main"), None),
    ("haiku, unknown class counts as none", ALL, AUXILIARY_HAIKU, hinted(PLAIN, "teammate"),
     ("background", "openai/gpt-4.1-mini")),
    ("haiku, empty class counts as none", ALL, AUXILIARY_HAIKU, hinted(PLAIN, " "),
     ("background", "openai/gpt-4.1-mini")),
    ("sonnet, hinted auxiliary", ALL, {**AUXILIARY_HAIKU, "model": "claude-sonnet-5"},
     hinted(PLAIN, "AUXILIARY"), ("background", "openai/gpt-4.1-mini")),
    ("compaction, hinted", ALL, COMPACTION, hinted(PLAIN, "compaction"), ("compaction", "gemini/gemini-2.5-flash")),
    ("compaction, hinted, on any body", ALL, SECOND_TURN, hinted(PLAIN, "compaction"),
     ("compaction", "gemini/gemini-2.5-flash")),
    ("compaction recognised", ALL, COMPACTION, PLAIN, ("compaction", "gemini/gemini-2.5-flash")),
    ("partial compaction recognised", ALL, PARTIAL_COMPACTION, PLAIN, ("compaction", "gemini/gemini-2.5-flash")),
    ("compaction after a preamble", ALL, COMPACTION_AFTER_PREAMBLE, PLAIN,
     ("compaction", "gemini/gemini-2.5-flash")),
    ("compaction as string content", ALL, COMPACTION_STRING_CONTENT, PLAIN,
     ("compaction", "gemini/gemini-2.5-flash")),
    ("subagent compaction", ALL, COMPACTION, SUBAGENT, ("compaction", "gemini/gemini-2.5-flash")),
    ("prompt text under hinted main is no compaction", ALL, COMPACTION, hinted(PLAIN, "main"), None),
    ("prompt quoted in a tool result", ALL, PROMPT_QUOTED_IN_TOOL_RESULT, PLAIN, None),
    ("the opening sentence alone", ALL,
     with_turns(MAIN_TURN, user_text("Your task is to create a detailed summary of the meeting notes in notes.md")),
     PLAIN, None),
    ("prompt in an assistant turn", ALL, PROMPT_IN_ASSISTANT_TURN, PLAIN, None),
    ("compaction without ROUTE_COMPACTION", all_but("compaction"), COMPACTION, PLAIN, None),
    ("long compaction without ROUTE_COMPACTION", all_but("compaction"), LONG_COMPACTION, PLAIN,
     ("long_context", "gemini/gemini-2.5-pro")),
    ("long compaction", ALL, LONG_COMPACTION, PLAIN, ("compaction", "gemini/gemini-2.5-flash")),
    ("100k-token session", ALL, LONG_SESSION, PLAIN, ("long_context", "gemini/gemini-2.5-pro")),
    ("100k-token session, hinted main", ALL, LONG_SESSION, hinted(PLAIN, "main"),
     ("long_context", "gemini/gemini-2.5-pro")),
    ("100k-token subagent", ALL, LONG_SUBAGENT_SESSION, hinted(SUBAGENT, "subagent"),
     ("long_context", "gemini/gemini-2.5-pro")),
    ("100k-token session under a higher threshold", RequestClassRoutes(long_context="gemini/gemini-2.5-pro",
     long_context_threshold=200_000), LONG_SESSION, PLAIN, None),
    ("100k-token subagent without ROUTE_LONG_CONTEXT", all_but("long_context"), LONG_SUBAGENT_SESSION,
     SUBAGENT, ("subagent", "openai/gpt-4.1")),
    ("image in a user turn", ALL, IMAGE_IN_USER_TURN, PLAIN, ("image", "openai/gpt-4o")),
    ("image in a tool result", ALL, IMAGE_IN_TOOL_RESULT, PLAIN, ("image", "openai/gpt-4o")),
    ("image earlier in history", ALL, IMAGE_EARLIER_IN_HISTORY, PLAIN, ("image", "openai/gpt-4o")),
    ("image in a subagent", ALL, with_turns(SUBAGENT_TURN, *IMAGE_IN_TOOL_RESULT["messages"][-2:]), SUBAGENT,
     ("image", "openai/gpt-4o")),
    ("image without ROUTE_IMAGE", all_but("image"), IMAGE_IN_USER_TURN, PLAIN, None),
    ("pdf is not an image", ALL, with_turns(MAIN_TURN, tool_call("toolu_05", "Read", {"file_path": "a.pdf"}),
     tool_result("toolu_05", [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                                "data": "JVBERi0xLjQK"}}])), PLAIN, None),
    # What the chat front hands over for a `reasoning_effort: "high"` request (no Claude Code headers).
    ("chat front with reasoning effort", ALL,
     {"model": "gpt-4o", "max_tokens": 25600, "thinking": {"type": "enabled", "budget_tokens": 24576},
      "messages": [user_text("prove it")]}, {"user-agent": "OpenAI/Python 1.99.0"}, ("think", "openai/o3")),
]


@pytest.mark.parametrize("routes, body, headers, expected", [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_the_route_rule_follows_from_what_the_request_is(routes, body, headers, expected):
    """Each real request shape, with its headers and settings, gets the expected rule and model."""
    assert choose_route_rule(body, headers, routes) == expected


@pytest.mark.parametrize("body, headers", [row[2:4] for row in TABLE], ids=[row[0] for row in TABLE])
def test_no_route_settings_means_normal_routing_and_no_estimate(body, headers):
    """With every ROUTE_* unset, no request matches a rule and nothing is estimated."""
    assert choose_route_rule(body, headers, RequestClassRoutes(), estimate_tokens=must_not_estimate) is None


def test_the_fixtures_have_the_shapes_the_table_assumes():
    """The fixture requests are Claude Code turns at medium and at high effort, and the long ones are long."""
    assert MAIN_TURN["thinking"]["type"] == "adaptive" and MAIN_TURN["output_config"] == {"effort": "medium"}
    assert HIGH_EFFORT_TURN["output_config"] == {"effort": "high"}
    assert "haiku" not in MAIN_TURN["model"] and "haiku" not in SUBAGENT_TURN["model"]
    for short in (SECOND_TURN, COMPACTION, IMAGE_EARLIER_IN_HISTORY):
        assert estimate_input_tokens(short) < 60_000
    for long in (LONG_SESSION, LONG_SUBAGENT_SESSION, LONG_COMPACTION):
        assert estimate_input_tokens(long) > 100_000


# --------------------------------------------------------------------------------------------
# Precedence
# --------------------------------------------------------------------------------------------


def request_with_signals(*rules: str) -> tuple[dict, dict]:
    """A Claude Code request (body, headers) showing exactly the signals of `rules`, none hinted."""
    body = without(MAIN_TURN, "output_config")  # adaptive thinking only: no think signal
    headers = dict(PLAIN)
    if "long_context" in rules:
        body = long_session(body, 100_000)
    if "image" in rules:
        body = with_turns(body, *IMAGE_IN_TOOL_RESULT["messages"][-2:])
    if "compaction" in rules:
        body = with_turns(body, user_text(COMPACTION_PROMPT))
    if "subagent" in rules:
        headers = dict(SUBAGENT)
    if "think" in rules:
        body = {**body, "output_config": {"effort": "high"}}
    if "background" in rules:
        body = {**body, "model": "claude-haiku-4-5-20251001"}
    return body, headers


def test_the_precedence_is_the_documented_one():
    """Rules are tried as the module docstring lists them: compaction first, background last."""
    assert RULES == ("compaction", "long_context", "image", "subagent", "think", "background")
    assert [name for _, name in RULE_SETTINGS] == [
        "ROUTE_COMPACTION", "ROUTE_LONG_CONTEXT", "ROUTE_IMAGE", "ROUTE_SUBAGENT", "ROUTE_THINK", "ROUTE_BACKGROUND",
    ]


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_matches_its_own_signal_only_when_its_setting_is_set(rule):
    """A request showing one signal gets that rule with every route set, and normal routing without its own."""
    body, headers = request_with_signals(rule)
    assert choose_route_rule(body, headers, ALL) == (rule, ALL.model_for(rule))
    assert choose_route_rule(body, headers, only(rule)) == (rule, ALL.model_for(rule))
    assert choose_route_rule(body, headers, all_but(rule)) is None


PAIRS = [
    (earlier, later)
    for i, earlier in enumerate(RULES)
    for later in RULES[i + 1:]
    # A subagent is never background: the parent agent id stops the haiku guess (tested above).
    if (earlier, later) != ("subagent", "background")
]


@pytest.mark.parametrize("earlier, later", PAIRS, ids=[f"{a}>{b}" for a, b in PAIRS])
def test_the_earlier_rule_wins_when_two_match(earlier, later):
    """With both signals and both settings, the rule earlier in the order wins; without it, the later one."""
    body, headers = request_with_signals(earlier, later)
    assert choose_route_rule(body, headers, only(earlier, later)) == (earlier, ALL.model_for(earlier))
    assert choose_route_rule(body, headers, only(later)) == (later, ALL.model_for(later))


def test_a_request_showing_every_signal_goes_down_the_order_as_settings_are_removed():
    """Every signal at once: each rule wins in turn as the ones before it are unset."""
    body, headers = request_with_signals(*RULES)
    for index, rule in enumerate(RULES[:-1]):  # background: see the subagent pair above
        assert choose_route_rule(body, headers, only(*RULES[index:])) == (rule, ALL.model_for(rule))


# --------------------------------------------------------------------------------------------
# The token estimate
# --------------------------------------------------------------------------------------------


class SpyEstimator:
    """Answers a fixed estimate and records the bodies it was asked about."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.calls: list[dict] = []

    def __call__(self, body: dict) -> int:
        self.calls.append(body)
        return self.tokens


def test_the_estimate_is_skipped_when_long_context_is_unset():
    """Without ROUTE_LONG_CONTEXT no request is estimated, however long."""
    for body, headers in ((LONG_SESSION, PLAIN), (SECOND_TURN, PLAIN), (IMAGE_IN_USER_TURN, SUBAGENT)):
        choose_route_rule(body, headers, all_but("long_context"), estimate_tokens=must_not_estimate)


def test_the_estimate_is_skipped_when_compaction_matched_first():
    """A compaction goes to ROUTE_COMPACTION without being estimated."""
    assert choose_route_rule(COMPACTION, PLAIN, ALL, estimate_tokens=must_not_estimate)[0] == "compaction"
    hint = hinted(PLAIN, "compaction")
    assert choose_route_rule(LONG_SESSION, hint, ALL, estimate_tokens=must_not_estimate)[0] == "compaction"


def test_the_estimate_runs_once_on_the_hub_body_and_must_exceed_the_threshold():
    """The estimator sees the body once; the rule needs strictly more tokens than the threshold."""
    routes = RequestClassRoutes(long_context="gemini/gemini-2.5-pro", long_context_threshold=1000)
    at_threshold, above = SpyEstimator(1000), SpyEstimator(1001)
    assert choose_route_rule(MAIN_TURN, PLAIN, routes, estimate_tokens=at_threshold) is None
    assert choose_route_rule(MAIN_TURN, PLAIN, routes, estimate_tokens=above) == (
        "long_context", "gemini/gemini-2.5-pro")
    assert at_threshold.calls == [MAIN_TURN] and above.calls == [MAIN_TURN]


def test_the_default_estimate_is_the_count_tokens_one():
    """Without an estimator the count_tokens estimate decides, against the default 60000."""
    routes = only("long_context")
    assert routes.long_context_threshold == 60_000
    assert choose_route_rule(LONG_SESSION, PLAIN, routes) == ("long_context", "gemini/gemini-2.5-pro")
    assert choose_route_rule(SECOND_TURN, PLAIN, routes) is None


IMAGE_RULE = ("image", "openai/gpt-4o")
ODD_BODIES = [
    ("empty", {}, None),
    ("messages a string", {"messages": "hello"}, None),
    ("odd items and a single-block content", {"messages": [None, "x", {"role": "user", "content": IMAGE_BLOCK}]},
     IMAGE_RULE),
    ("tool result of plain text", {"messages": [tool_result("toolu_1", "text")]}, None),
    ("wrong types", {"model": 7, "thinking": "on", "output_config": ["high"],
                     "messages": [{"role": "user", "content": 3}]}, None),
    ("a bool budget and no effort", {"thinking": {"type": "enabled", "budget_tokens": True},
                                     "output_config": {"effort": None}}, None),
    ("not a dict", ["messages"], None),
]


@pytest.mark.parametrize("body, expected", [row[1:] for row in ODD_BODIES], ids=[row[0] for row in ODD_BODIES])
def test_odd_bodies_never_raise(body, expected):
    """Fields of the wrong type are absent signals, never an exception."""
    assert choose_route_rule(body, {}, ALL, estimate_tokens=SpyEstimator(0)) == expected


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------

FULL_ENV = {
    "ROUTE_BACKGROUND": "openai/gpt-4.1-mini",
    "ROUTE_SUBAGENT": "gpt-4.1",
    "ROUTE_THINK": " openai/o3 ",
    "ROUTE_LONG_CONTEXT": "gemini/gemini-2.5-pro",
    "LONG_CONTEXT_THRESHOLD": "150000",
    "ROUTE_IMAGE": "openrouter/meta-llama/llama-4-maverick",
    "ROUTE_COMPACTION": "gemini/gemini-2.5-flash",
}


def test_from_env_reads_every_route_as_written():
    """Each ROUTE_* keeps its provider/model or bare model string (stripped); the threshold is an int."""
    assert RequestClassRoutes.from_env(FULL_ENV) == RequestClassRoutes(
        background="openai/gpt-4.1-mini",
        subagent="gpt-4.1",
        think="openai/o3",
        long_context="gemini/gemini-2.5-pro",
        long_context_threshold=150_000,
        image="openrouter/meta-llama/llama-4-maverick",
        compaction="gemini/gemini-2.5-flash",
    )


def test_from_env_with_nothing_set_is_the_feature_off():
    """No ROUTE_* (or only blank ones) parses to all None, any() False and no banner lines."""
    for env in ({}, {name: "" for _, name in RULE_SETTINGS}, {name: "  " for _, name in RULE_SETTINGS}):
        routes = RequestClassRoutes.from_env(env)
        assert routes == RequestClassRoutes()
        assert routes.any() is False and routes.describe() == []


@pytest.mark.parametrize("rule, name", RULE_SETTINGS)
def test_one_route_set_turns_the_feature_on(rule, name):
    """Any single ROUTE_* makes any() true and sets exactly its rule."""
    routes = RequestClassRoutes.from_env({name: "openai/gpt-4.1"})
    assert routes.any() is True
    assert {r: routes.model_for(r) for r in RULES} == {r: "openai/gpt-4.1" if r == rule else None for r in RULES}


@pytest.mark.parametrize("value", ["150000", " 1 "])
def test_the_threshold_is_a_positive_integer(value):
    """LONG_CONTEXT_THRESHOLD parses as an integer of tokens."""
    assert RequestClassRoutes.from_env({"LONG_CONTEXT_THRESHOLD": value}).long_context_threshold == int(value)


@pytest.mark.parametrize("value", ["abc", "60k", "6e4", "0", "-5", "60000.5"])
def test_a_bad_threshold_is_a_config_error_naming_it(value):
    """A threshold that is not a positive integer fails start-up with the variable's name."""
    with pytest.raises(ConfigError, match="LONG_CONTEXT_THRESHOLD"):
        RequestClassRoutes.from_env({"ROUTE_LONG_CONTEXT": "gemini/gemini-2.5-pro", "LONG_CONTEXT_THRESHOLD": value})


@pytest.mark.parametrize("value", ["openai/", "/gpt-4.1", "/", "openai//gpt-4.1", "gpt 4.1", "openai/gpt-4.1\x00"])
@pytest.mark.parametrize("name", [name for _, name in RULE_SETTINGS])
def test_a_bad_route_is_a_config_error_naming_it(name, value):
    """A route with an empty part, whitespace or a control character fails start-up with its name."""
    with pytest.raises(ConfigError, match=name):
        RequestClassRoutes.from_env({name: value})


def test_describe_lists_the_set_routes_in_precedence_order():
    """Banner lines: one per set route, in the order rules are tried, the threshold beside long_context."""
    assert RequestClassRoutes.from_env(FULL_ENV).describe() == [
        "compaction -> gemini/gemini-2.5-flash",
        "long_context (> 150000 tokens) -> gemini/gemini-2.5-pro",
        "image -> openrouter/meta-llama/llama-4-maverick",
        "subagent -> gpt-4.1",
        "think -> openai/o3",
        "background -> openai/gpt-4.1-mini",
    ]
    assert only("long_context").describe() == ["long_context (> 60000 tokens) -> gemini/gemini-2.5-pro"]
    assert only("think", "background").describe() == ["think -> openai/o3", "background -> openai/gpt-4.1-mini"]
