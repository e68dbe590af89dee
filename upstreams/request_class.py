"""Route rules: which ROUTE_* setting a request falls under, decided from what the request is.

`choose_route_rule` reads the hub (Anthropic Messages) request and the client's headers and returns
the rule that applies with the model its setting names, or None for the normal tier routing. It is
pure: no I/O, no clock, no logging (the caller logs `route_rule=...`). It runs on the hub request,
so it serves every front alike; only Claude Code sends the headers it reads.

Order of precedence: only rules whose setting is set can match, and the first that matches wins.
1. compaction   - asked for by name (or recognised, below); it reads the whole session by nature,
                  and whoever sets ROUTE_COMPACTION has picked a model for exactly that.
2. long_context - a request over LONG_CONTEXT_THRESHOLD fails outright on a model with a smaller
                  window, whatever else it is (a 100k-token subagent must still fit).
3. image        - a model that cannot see fails or drops the images: correctness before preference.
4. subagent     - told by a header, so a fact; it comes before think because Claude Code sends its
                  session's effort on subagent requests too, and think would take them all.
5. think        - a quality request from the body (thinking budget or high effort).
6. background   - last: without the hint headers it is a guess from the model name, and a user may
                  run Claude Code on haiku as the main model.

Policies and known shortcuts:
- Request class: `x-claude-code-request-class` (sent with CLAUDE_CODE_GATEWAY_HINT_HEADERS=1) is
  authoritative when it holds a known value (`main`, `subagent`, `workflow`, `compaction`,
  `auxiliary`): no guess overrides it, in either direction. An unknown or empty value counts as no
  header, so the guesses below still work with a newer Claude Code. `x-claude-code-agent-type` is not
  read.
- subagent: class `subagent` or `workflow`; without a class header, a non-empty
  `x-claude-code-agent-id` or `x-claude-code-parent-agent-id`. Seen from Claude Code 2.1.332: a
  subagent's requests carry `x-claude-code-agent-id` with or without the hint headers (and, hinted,
  `x-claude-code-request-class: subagent` and `x-claude-code-agent-type`); the main loop's carry
  neither id. `x-claude-code-parent-agent-id` is the issue's name for a nested agent's parent.
- background: class `auxiliary`; without any header saying what the request is (neither class nor
  agent id), a requested model whose name contains "haiku". Claude Code's Explore subagent runs on
  haiku: its agent id keeps it out of background.
- compaction: class `compaction`; without a class header, a body heuristic (the only guess from
  prompt text here, documented because it can go stale): the last message is a user turn and one
  of its own text parts (not a tool result, so reading a file that quotes the prompt does not count)
  holds both `COMPACTION_PROMPT_OPENING` and `<summary>`. Claude Code's full and partial compaction
  prompts both start with that sentence and ask for a <summary> block; a preamble before it or
  custom instructions after it do not matter. If Claude Code rewords its prompt the guess stops
  matching and the request is routed as a long or normal one; the hint header makes it exact.
- think: `thinking.type` enabled or adaptive with a positive `budget_tokens`, or
  `output_config.effort` high, xhigh or max. Adaptive thinking alone is Claude Code's default on
  every turn, so it is not a request to think harder. The chat and Responses fronts turn any
  `reasoning_effort` low and up into a thinking budget, so those all count.
- image: an `image` block anywhere in the messages, tool results included, in any turn: the history
  goes to the model on every turn, so one image makes every later request need a vision model.
  PDFs (`document` blocks) do not count.
- long_context: `estimate_tokens(body) > long_context_threshold`, with translate/tokens.py's
  estimate by default (linear in the body: about 5 ms for a 400 KB, 100k-token request). It runs
  only when ROUTE_LONG_CONTEXT is set and compaction did not match first. There is no shortcut from
  the raw body size: no bound on tokens per byte holds (an image by URL counts 1,600 tokens in 50
  bytes, a PDF its pages), and bodies small enough to skip cost under a millisecond anyway.
- Setting values are kept as written (`provider/model`, or a bare model for the preferred provider);
  `resolve_route` reads them later, so MODEL_ALIASES and the haiku/sonnet/opus tiers apply to them
  as to a requested name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from translate.tokens import estimate_input_tokens
from upstreams import settings
from upstreams.settings import ConfigError

# --------------------------------------------------------------------------------------------
# Rules, settings and signals
# --------------------------------------------------------------------------------------------

RuleName = Literal["compaction", "long_context", "image", "subagent", "think", "background"]

# Precedence order (the module docstring says why), each rule with its setting.
RULE_SETTINGS: tuple[tuple[RuleName, str], ...] = (
    ("compaction", "ROUTE_COMPACTION"),
    ("long_context", "ROUTE_LONG_CONTEXT"),
    ("image", "ROUTE_IMAGE"),
    ("subagent", "ROUTE_SUBAGENT"),
    ("think", "ROUTE_THINK"),
    ("background", "ROUTE_BACKGROUND"),
)
RULES: tuple[RuleName, ...] = tuple(rule for rule, _ in RULE_SETTINGS)

DEFAULT_LONG_CONTEXT_THRESHOLD_TOKENS = 60_000

REQUEST_CLASS_HEADER = "x-claude-code-request-class"
AGENT_ID_HEADER = "x-claude-code-agent-id"
PARENT_AGENT_ID_HEADER = "x-claude-code-parent-agent-id"
REQUEST_CLASSES = frozenset({"main", "subagent", "workflow", "compaction", "auxiliary"})
SUBAGENT_CLASSES = frozenset({"subagent", "workflow"})

BACKGROUND_MODEL_WORD = "haiku"
THINK_EFFORTS = frozenset({"high", "xhigh", "max"})
THINKING_TYPES = frozenset({"enabled", "adaptive"})

# The sentence both of Claude Code's compaction prompts open with (full: "... of the conversation
# so far", partial: "... of the RECENT portion of the conversation"), and the block they ask for.
COMPACTION_PROMPT_OPENING = "Your task is to create a detailed summary of the "
COMPACTION_SUMMARY_TAG = "<summary>"

# Content nested deeper than this is not searched for images (as in translate/tokens.py).
MAX_NESTING = 12

TokenEstimator = Callable[[dict], int]


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestClassRoutes:
    """The ROUTE_* settings, parsed. All None (the default) means the feature is off."""

    background: str | None = None
    subagent: str | None = None
    think: str | None = None
    long_context: str | None = None
    long_context_threshold: int = DEFAULT_LONG_CONTEXT_THRESHOLD_TOKENS
    image: str | None = None
    compaction: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RequestClassRoutes:
        """Parse ROUTE_* and LONG_CONTEXT_THRESHOLD from a settings mapping.

        A blank value is unset, as for every other setting. Raises ConfigError naming the variable
        for a threshold that is not a positive integer, or a route that is not a model name or
        `provider/model` (whitespace, an empty part such as "openai/").
        """
        # One call per name, spelled out, so tests/test_docs.py finds each setting.
        return cls(
            compaction=_route_value(env, "ROUTE_COMPACTION"),
            long_context=_route_value(env, "ROUTE_LONG_CONTEXT"),
            long_context_threshold=settings.integer(env, "LONG_CONTEXT_THRESHOLD",
                                                    DEFAULT_LONG_CONTEXT_THRESHOLD_TOKENS, minimum=1),
            image=_route_value(env, "ROUTE_IMAGE"),
            subagent=_route_value(env, "ROUTE_SUBAGENT"),
            think=_route_value(env, "ROUTE_THINK"),
            background=_route_value(env, "ROUTE_BACKGROUND"),
        )

    def model_for(self, rule: RuleName) -> str | None:
        """The model the setting of `rule` names, None when it is unset."""
        return getattr(self, rule)

    def any(self) -> bool:
        """True when at least one route is set."""
        return any(self.model_for(rule) for rule in RULES)

    def describe(self) -> list[str]:
        """Banner lines for the set routes, in precedence order; [] when none is set."""
        lines = []
        for rule in RULES:
            model = self.model_for(rule)
            if not model:
                continue
            label = f"{rule} (> {self.long_context_threshold} tokens)" if rule == "long_context" else rule
            lines.append(f"{label} -> {model}")
        return lines


def _route_value(env: Mapping[str, str], name: str) -> str | None:
    value = settings.text(env, name)
    if value is None:
        return None
    if not value.isprintable() or any(char.isspace() for char in value) or "" in value.split("/"):
        raise ConfigError(
            f"{name}={value!r} is not a model name or provider/model (for example openai/gpt-4.1)"
        )
    return value


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def request_class(headers: Mapping[str, str]) -> str | None:
    """The request class Claude Code's hint header names, lower-cased; None when the header is
    absent, empty or holds a value this module does not know."""
    value = (headers.get(REQUEST_CLASS_HEADER) or "").strip().lower()
    return value if value in REQUEST_CLASSES else None


def choose_route_rule(
    body: dict,
    headers: Mapping[str, str],
    routes: RequestClassRoutes,
    *,
    estimate_tokens: TokenEstimator | None = None,
) -> tuple[RuleName, str] | None:
    """The route rule for one request: (rule name, the model its setting names), or None.

    `body` is the hub (Anthropic Messages) request, `headers` the client's headers with lower-case
    names. Rules are tried in the precedence order of the module docstring, skipping unset ones;
    `estimate_tokens` (default: translate.tokens.estimate_input_tokens) is called at most once, and
    only when the long_context rule is reached. Never raises on an odd body. On None the caller
    routes the requested model as usual; otherwise it resolves the returned model instead.
    """
    if not routes.any():
        return None
    if not isinstance(body, dict):
        body = {}
    klass = request_class(headers)
    if routes.compaction and _is_compaction(body, klass):
        return "compaction", routes.compaction
    if routes.long_context:
        estimate = estimate_tokens or estimate_input_tokens
        if estimate(body) > routes.long_context_threshold:
            return "long_context", routes.long_context
    if routes.image and _has_image(body.get("messages"), 0):
        return "image", routes.image
    if routes.subagent and _is_subagent(headers, klass):
        return "subagent", routes.subagent
    if routes.think and _asks_to_think(body):
        return "think", routes.think
    if routes.background and _is_background(body, headers, klass):
        return "background", routes.background
    return None


# --------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------


def _agent_id(headers: Mapping[str, str]) -> str:
    """The subagent's own id, or its parent's: either says the request is not the main loop's."""
    return (headers.get(AGENT_ID_HEADER) or headers.get(PARENT_AGENT_ID_HEADER) or "").strip()


def _is_subagent(headers: Mapping[str, str], klass: str | None) -> bool:
    if klass is not None:
        return klass in SUBAGENT_CLASSES
    return bool(_agent_id(headers))


def _is_background(body: dict, headers: Mapping[str, str], klass: str | None) -> bool:
    if klass is not None:
        return klass == "auxiliary"
    if _agent_id(headers):
        return False  # a subagent on haiku (Explore), not an auxiliary request
    model = body.get("model")
    return isinstance(model, str) and BACKGROUND_MODEL_WORD in model.lower()


def _asks_to_think(body: dict) -> bool:
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in THINKING_TYPES:
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
            return True
    output_config = body.get("output_config")
    if isinstance(output_config, dict):
        effort = output_config.get("effort")
        if isinstance(effort, str) and effort.strip().lower() in THINK_EFFORTS:
            return True
    return False


def _has_image(content: object, depth: int) -> bool:
    """Whether `content` (a message list, a block list or one block) holds an image block."""
    if depth > MAX_NESTING:
        return False
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return False
    for item in content:
        if isinstance(item, dict):
            if item.get("type") == "image":
                return True
            # A message's or a tool result's (or search result's) blocks.
            if _has_image(item.get("content"), depth + 1):
                return True
    return False


def _is_compaction(body: dict, klass: str | None) -> bool:
    if klass is not None:
        return klass == "compaction"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return False
    return any(
        COMPACTION_PROMPT_OPENING in text and COMPACTION_SUMMARY_TAG in text
        for text in _own_texts(last.get("content"))
    )


def _own_texts(content: object) -> list[str]:
    """The text a turn says itself: a string content, or its top-level text blocks."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        block["text"]
        for block in content
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
    ]
