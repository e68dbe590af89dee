"""Request validation for each front: a wrong field is a 400 naming it, before any routing or translation.

`validate_messages_request` (Anthropic `POST /v1/messages`), `validate_count_tokens_request`
(`POST /v1/messages/count_tokens`) and `validate_chat_request` (`POST /v1/chat/completions`) take
the parsed body (translate/reuse.py `loads_request`, which has already refused NaN, Infinity, lone
surrogates and deep nesting) and return None, or raise InvalidRequest. They hold for every upstream,
passthrough included, so they come before routing.

Policies (PROTOCOLS.md 1.2-1.4, 1.6, 2.1):
- A wrong field raises InvalidRequest (400) whose `param` is the field's path and whose message
  starts with it: `messages[2].content[0].text: a string is required.` The first wrong field is the
  one reported: required fields first, then the body's fields in order.
- The front's own API decides, not what one upstream can do: `n: 3` or an `input_audio` part is a
  valid chat request (an OpenAI upstream takes it). Refusing what Claude cannot do stays in
  translate/chat_to_anthropic_request.py; the translators' own checks are a second line.
- Checked: every top-level field the endpoint defines, for JSON type and range; nested shapes as
  far as a translator reads them: messages (role, content), content blocks and parts of known types
  and the fields translation reads from them, tools, tool_choice, system, thinking, output_config,
  metadata, response_format, stream_options, stop...
- Allowed: unknown top-level fields (clients send newer fields; passthrough forwards them), unknown
  fields inside objects, unknown block and part types (translators degrade them, upstreams judge
  them), and null for any optional field (taken as absent: many OpenAI clients send null for unset
  fields). A field a translator does without when it is missing (an image's `source`, a tool's
  `input_schema`) may be missing; when present it must have the right type.
- `model` is a non-empty string without control characters or lone surrogates (it goes into URLs,
  headers and logs). The server fills in MODEL_NAME before validating; count_tokens may name no
  model (the server counts with its default).
- Ranges: Anthropic `temperature` and `top_p` 0-1, `max_tokens` >= 0 (0 pre-warms a cache),
  `top_k` >= 0; chat `temperature` 0-2, `top_p` 0-1, penalties -2..2, `max_tokens`,
  `max_completion_tokens` and `n` >= 1, `top_logprobs` 0-20, `logit_bias` values -100..100.
- Tool call arguments (chat) are JSON inside a string. Arguments that json.loads would take but are
  not strict JSON (NaN, Infinity, a lone surrogate escape, nesting past MAX_JSON_DEPTH) are refused:
  the Anthropic translation parses them with json.loads, and would crash or forward them broken.
  Only arguments that hold one of those words, a `\\ud`/`\\uD` escape or many brackets are parsed
  here. Arguments that are not JSON at all are left to the translator and the upstream (the OpenAI
  API keeps such history).
- Fast: one pass over messages and blocks, dict lookups and type tests only, an index and a path
  worked out only for the error; the input is never changed or copied. The one exception: a tools
  list remembered between requests (translate/reuse.py) records in its `derived` dict that it
  passed, per front (`"valid:anthropic"`, `"valid:chat"`), so Claude Code's tool list is checked
  once per session.
- Pure: no I/O.

Known shortcuts: relations between fields (budget_tokens < max_tokens, tool_choice naming a sent
tool, tool_result answering a tool_use) are left to the translators and the upstream; tool names
are not held to a pattern (translators shorten long MCP names); strings are not searched for lone
surrogates here (loads_request did that for the whole body), except `model`; a number too large for
a double inside tool call arguments (`1e999`) is not looked for (it would cost a parse of every
call's arguments; translate/reuse.py `loads_strict` in the translator would catch it for free).
"""

from __future__ import annotations

from translate.validate_anthropic import (
    COUNT_TOKENS_FIELDS,
    MESSAGES_FIELDS,
    validate_count_tokens_request,
    validate_messages_request,
)
from translate.validate_chat import CHAT_FIELDS, validate_chat_request
from translate.validate_responses import RESPONSES_FIELDS, validate_responses_request

__all__ = [
    "CHAT_FIELDS",
    "COUNT_TOKENS_FIELDS",
    "MESSAGES_FIELDS",
    "RESPONSES_FIELDS",
    "validate_chat_request",
    "validate_count_tokens_request",
    "validate_messages_request",
    "validate_responses_request",
]
