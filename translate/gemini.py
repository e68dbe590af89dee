"""Gemini quirks for its OpenAI-compatible endpoint (AI Studio and Vertex AI), as pure functions.

The Gemini provider applies `prepare_gemini_request` to an already-translated OpenAI request body
(from the Anthropic front, or an OpenAI client's own body). The response side needs no function
here: `ChatToAnthropicStream(thought_signatures=True, thought_tags=True)` and
`chat_to_anthropic_response(...)` read Gemini's answers.

Policies (PROTOCOLS.md 5.3, 5.5, 5.6; FIELD-NOTES "Translation traps"):
- Request fields: only the allowlist Gemini is known to accept goes up (`GEMINI_REQUEST_FIELDS`);
  Gemini answers 400 "Unknown name ..." for anything else (frequency_penalty, seed, user, metadata,
  logprobs, parallel_tool_calls...). Messages keep only the keys of their role (an assistant's
  `reasoning_content` would be an unknown name too); `developer` becomes `system`; `stop` is cut to
  five strings; `stream_options` keeps `include_usage` only.
- `tool` messages get the `name` of the call they answer (Gemini builds a functionResponse from it).
- `reasoning_effort` is left out when `extra_body.google.thinking_config` is present: Gemini rejects
  a request carrying both, and the exact config is the more precise of the two.
- Tool schemas are rebuilt from an allowlist of keywords (`clean_tool_schema`), never patched by
  removing known-bad keys: each Gemini snapshot has rejected a different keyword, and an allowlist
  also drops the ones nobody has reported yet. See the schema section for each rule.
- Thought signatures: the Anthropic request translation already put each real signature back on
  its tool call (`ChatTarget.thought_signatures`). Here, every assistant step of the current turn
  whose calls carry no signature at all (history from another model, a signature lost in a
  non-buffered stream, calls a client made up) gets Google's documented dummy
  `skip_thought_signature_validator` on every call: Gemini 3 rejects an unsigned call of the current
  turn, PROTOCOLS 5.6 observed the check on every call, and Google documents the dummy as harmless.
  A step holding any real signature is left exactly as Gemini sent it (Gemini signs only the first
  of parallel calls). The current turn is taken generously: everything after the last user message
  that does not follow tool results (a user message right after tool messages, such as attached
  images or a system note, continues the turn). Dummies on an older turn would be ignored anyway.
- A signature Gemini calls invalid or corrupted (another key, model or route made it) can be
  replaced with the dummy for one retry: `is_thought_signature_error` + `with_dummy_thought_signatures`.
"""

from __future__ import annotations

import math

from translate.sse import dumps

__all__ = [
    "DUMMY_THOUGHT_SIGNATURE",
    "GEMINI_REQUEST_FIELDS",
    "clean_tool_schema",
    "is_thought_signature_error",
    "prepare_gemini_request",
    "with_dummy_thought_signatures",
]

# PROTOCOLS 5.3: the request fields Gemini's OpenAI-compatible endpoint accepts.
GEMINI_REQUEST_FIELDS = (
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "reasoning_effort",
    "extra_body",
)
GEMINI_MAX_STOP_SEQUENCES = 5

# Google's documented value that makes Gemini skip the thought signature check of one call.
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

# Keys each message role may carry upstream; anything else is an unknown name to Gemini.
_MESSAGE_KEYS_BY_ROLE = {
    "system": ("role", "content"),
    "user": ("role", "content"),
    "assistant": ("role", "content", "tool_calls"),
    "tool": ("role", "content", "tool_call_id", "name"),
}
_TOOL_CALL_KEYS = ("id", "type", "function", "extra_content")


# ---------------------------------------------------------------------------------------------
# Tool schemas
# ---------------------------------------------------------------------------------------------
#
# Gemini function declarations take an OpenAPI-3.0-like subset of JSON Schema, parsed as a protobuf
# message: an unknown keyword is a 400 for the whole request. Rules, each from a reported 400:
# - Kept: type, nullable, description, title, enum (strings only), format ("date-time", and "enum"
#   with an enum), minLength/maxLength/pattern, minimum/maximum, items/minItems/maxItems,
#   properties/required/minProperties/maxProperties, anyOf. Everything else is dropped: $schema,
#   $id, $comment, additionalProperties, patternProperties, propertyNames, uniqueItems, const,
#   if/then/else, not, examples, default (documentation only, and rejected next to anyOf),
#   contentEncoding, readOnly, ...
# - Every schema has a `type` ("must be specified when not using any_of"): a missing one is inferred
#   from the keywords present (properties -> object, items -> array, string enum -> string,
#   bounds -> number); a schema with no clue means "any value" and becomes a string [LOSSY]; the
#   root becomes an object. Type arrays ["T", "null"] become type T + nullable ("Proto field is not
#   repeating"); several non-null types become an anyOf.
# - Keywords must fit the type ("items: field predicate failed: $type == Type.ARRAY"): each type keeps
#   only its own keywords. An array without items gets string items ("items: missing field").
# - `required` lists only names present in `properties` ("property is not defined"); an empty
#   `properties` map is left out.
# - enum values are strings ("Invalid value (TYPE_STRING), 1") and only on strings ("enum only
#   allowed for STRING type"); empty strings are dropped ("cannot be empty"). An enum or const on a
#   number, integer or boolean is dropped and its values are written into the description, so the
#   model still sees them [LOSSY]. `const: v` is `enum: [v]`; a null in an enum means nullable.
# - Exclusive bounds become inclusive ones: integer exclusiveMinimum n -> minimum n+1 (floor for
#   fractions), number exclusiveMinimum n -> minimum n [LOSSY: the bound itself is allowed];
#   draft-04 boolean exclusiveMinimum likewise. The stricter of two bounds wins.
# - Bounds at or beyond +-(2**53 - 1) are dropped: that is JavaScript's Number.MAX_SAFE_INTEGER,
#   which zod writes for `.int()` (Claude Code's Read tool says `maximum: 9007199254740991`). It
#   means "no bound", and numeric bounds add to Gemini's "too many states for serving" budget.
# - oneOf is read as anyOf [LOSSY: exclusivity]; allOf members are merged into their parent; an
#   anyOf branch {"type": "null"} becomes nullable; an anyOf left with one branch is that branch.
#   Keywords next to an anyOf are pushed into each branch (where they fit the branch's type), so
#   the anyOf node keeps only anyOf, description, title and nullable.
# - Local $refs ("#/$defs/X", "#/definitions/X", any "#/..." pointer) are inlined. A cycle, a ref
#   that does not resolve, or more than MAX_REF_CHAIN refs on one path becomes {"type": "object"}.
# - Nesting deeper than MAX_SCHEMA_DEPTH (containers below the root: properties, items, anyOf
#   branches) is cut: an object there keeps no properties, an array gets string items, an anyOf
#   keeps its first branch's type. Gemini's limit is undocumented; 12 is far above Claude Code's
#   deepest tool (4) and keeps very deep generated MCP schemas inside the serving budget.
# - Inlining refs can multiply a schema (a def used twice by a def used twice...): past
#   MAX_SCHEMA_NODES schema objects in one tool, containers are cut the same way, so a hostile or
#   careless schema costs bounded time and Gemini gets something it can serve.

MAX_SCHEMA_DEPTH = 12
MAX_SCHEMA_NODES = 2000
MAX_REF_CHAIN = 16
JS_MAX_SAFE_INTEGER = 2**53 - 1
_TYPES = ("string", "number", "integer", "boolean", "array", "object")
_STRING_FORMATS = ("date-time",)
_ANNOTATION_KEYS = ("description", "title")
# Keywords that only mean something for one type: pushed into anyOf branches of that type.
_KEYS_BY_TYPE = {
    "string": ("enum", "const", "format", "minLength", "maxLength", "pattern"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "const"),
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "const"),
    "boolean": ("enum", "const"),
    "array": ("items", "prefixItems", "minItems", "maxItems"),
    "object": ("properties", "required", "minProperties", "maxProperties"),
}
_TYPED_KEYS = frozenset(key for keys in _KEYS_BY_TYPE.values() for key in keys)


def clean_tool_schema(schema: object) -> dict:
    """A Gemini-acceptable copy of a JSON Schema for tool parameters (the rules above).

    Never raises and never mutates `schema`; anything that is not a schema object gives
    {"type": "object"}. The result is stable (cleaning it again changes nothing) unless the node
    budget cut it.
    """
    root = schema if isinstance(schema, dict) else {}
    return _SchemaCleaner(root).clean(root, depth=0, refs=(), root=True)


class _SchemaCleaner:
    """One cleaning pass over one tool schema."""

    def __init__(self, root: dict) -> None:
        self.root = root  # the schema local $refs point into
        self.nodes_left = MAX_SCHEMA_NODES

    def clean(self, node: object, *, depth: int, refs: tuple[str, ...], root: bool = False) -> dict:
        self.nodes_left -= 1
        if self.nodes_left <= 0:
            depth = max(depth, MAX_SCHEMA_DEPTH)  # out of budget: no more children
        resolved, refs = self._dereferenced(node, refs)
        if resolved is None:  # a cycle or a dead ref: an object is the usual target [LOSSY]
            return {"type": "object", **_annotations(node if isinstance(node, dict) else {})}
        node = self._merged_all_of(resolved, refs)
        nullable = node.get("nullable") is True
        node, type_nullable = _without_null_type(node)
        nullable = nullable or type_nullable
        branches = _branches_of(node)
        if branches is not None:
            return self._any_of(node, branches, nullable, depth, refs)
        kind = _type_of(node, root)
        if depth >= MAX_SCHEMA_DEPTH and kind in ("object", "array"):
            node = {key: value for key, value in node.items() if key not in ("properties", "items", "prefixItems")}
        out: dict = {"type": kind}
        if nullable:
            out["nullable"] = True
        out.update(_annotations(node))
        if kind == "string":
            _string_keywords(node, out)
        elif kind in ("number", "integer"):
            _number_keywords(node, kind, out)
        elif kind == "boolean":
            _describe_dropped_enum(node, out)
        elif kind == "array":
            self._array_keywords(node, out, depth, refs)
        else:
            self._object_keywords(node, out, depth, refs)
        return out

    # -- references and combinators ---------------------------------------------------------

    def _dereferenced(self, node: object, refs: tuple[str, ...]) -> tuple[dict | None, tuple[str, ...]]:
        """`node` with its $ref chain inlined (siblings of a $ref win); None for a cycle or dead ref."""
        node = node if isinstance(node, dict) else {}  # `true`, or junk: any value
        while "$ref" in node:
            ref = node["$ref"]
            target = self._resolve(ref) if isinstance(ref, str) else None
            if target is None or ref in refs or len(refs) >= MAX_REF_CHAIN:
                return None, refs
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            node = {**target, **siblings}
            refs = refs + (ref,)
        return node, refs

    def _resolve(self, ref: str) -> dict | None:
        if not ref.startswith("#"):
            return None  # remote refs cannot be fetched here
        target: object = self.root
        for token in ref[1:].split("/")[1:] if ref != "#" else []:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                return None
        return target if isinstance(target, dict) else None

    def _merged_all_of(self, node: dict, refs: tuple[str, ...]) -> dict:
        members = node.get("allOf")
        if not isinstance(members, list):
            return node
        merged = {key: value for key, value in node.items() if key != "allOf"}
        for member in members:
            member, member_refs = self._dereferenced(member, refs)
            if member is not None:
                merged = _conjunction(merged, self._merged_all_of(member, member_refs))
        return merged

    def _any_of(self, node: dict, branches: list, nullable: bool, depth: int, refs: tuple[str, ...]) -> dict:
        shared = {key: value for key, value in node.items() if key == "type" or key in _TYPED_KEYS}
        cleaned: list[dict] = []
        for branch in branches:
            branch, branch_refs = self._dereferenced(branch, refs)
            if branch is None:
                cleaned.append({"type": "object"})
                continue
            if _is_null_schema(branch):
                nullable = True
                continue
            combined = _conjunction(shared, branch, branch_wins=True)
            if depth >= MAX_SCHEMA_DEPTH:
                combined = {"type": _type_of(self._merged_all_of(combined, branch_refs), False)}
            cleaned.append(self.clean(combined, depth=depth + 1, refs=branch_refs))
        unique: list[dict] = []
        for branch in cleaned:
            if branch not in unique:
                unique.append(branch)
        if depth >= MAX_SCHEMA_DEPTH:
            unique = unique[:1]
        rest = {key: value for key, value in node.items() if key not in ("anyOf", "oneOf")}
        if not unique:  # only null branches: whatever the rest says, nullable
            return self.clean(dict(rest, nullable=True), depth=depth, refs=refs)
        if len(unique) == 1:
            only = dict(unique[0])
            annotations = _annotations(node)
            if nullable:
                only["nullable"] = True
            only.update(annotations)  # the parent describes the property; its words win
            return _ordered(only)
        out: dict = {"anyOf": unique}
        if nullable:
            out["nullable"] = True
        out.update(_annotations(node))
        return out

    # -- containers -------------------------------------------------------------------------

    def _array_keywords(self, node: dict, out: dict, depth: int, refs: tuple[str, ...]) -> None:
        items = node.get("items")
        if isinstance(items, list) or isinstance(node.get("prefixItems"), list):
            # Tuple forms (draft-04 `items: [...]`, 2020-12 `prefixItems`): any of the positions.
            positions = items if isinstance(items, list) else node["prefixItems"]
            items = {"anyOf": positions} if positions else None
        if isinstance(items, dict) or items is True:
            out["items"] = self.clean(items if isinstance(items, dict) else {}, depth=depth + 1, refs=refs)
        else:
            out["items"] = {"type": "string"}  # Gemini requires items; "any" is a string [LOSSY]
        for key in ("minItems", "maxItems"):
            if _is_count(node.get(key)):
                out[key] = node[key]

    def _object_keywords(self, node: dict, out: dict, depth: int, refs: tuple[str, ...]) -> None:
        properties = node.get("properties")
        cleaned: dict = {}
        if isinstance(properties, dict):
            for name, schema in properties.items():
                if isinstance(name, str) and schema is not False:
                    cleaned[name] = self.clean(schema, depth=depth + 1, refs=refs)
        if cleaned:
            out["properties"] = cleaned
            required = node.get("required")
            # Only names: a client's schema may hold anything here (a list in `required` is unhashable).
            names = [name for name in required if isinstance(name, str) and name in cleaned] if isinstance(required, list) else []
            names = list(dict.fromkeys(names))
            if names:
                out["required"] = names
        for key in ("minProperties", "maxProperties"):
            if _is_count(node.get(key)):
                out[key] = node[key]


def _ordered(schema: dict) -> dict:
    """type, nullable and annotations first, as every other cleaned schema reads."""
    head = ("anyOf", "type", "nullable", "description", "title")
    out = {key: schema[key] for key in head if key in schema}
    out.update((key, value) for key, value in schema.items() if key not in head)
    return out


def _conjunction(base: dict, extra: dict, *, branch_wins: bool = False) -> dict:
    """One schema meaning both: properties merged, required joined, other keys from the winner."""
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value} if branch_wins else {**value, **merged[key]}
        elif key == "required" and isinstance(value, list) and isinstance(merged.get(key), list):
            # Only names are joined: a client's schema may hold anything here (a list is unhashable).
            merged[key] = list(dict.fromkeys(name for name in merged[key] + value if isinstance(name, str)))
        elif key == "type" and branch_wins and isinstance(value, str):
            merged[key] = value
            # A branch of another type keeps only its own keywords from the parent.
            for other in _TYPED_KEYS - set(_KEYS_BY_TYPE.get(value, ())):
                if other not in extra:
                    merged.pop(other, None)
        elif branch_wins or key not in merged:
            merged[key] = value
    return merged


def _branches_of(node: dict) -> list | None:
    """The anyOf (and oneOf, read as anyOf) branches of a node, or None when it has none."""
    branches: list = []
    for key in ("anyOf", "oneOf"):
        value = node.get(key)
        if isinstance(value, list):
            branches += value
    kind = node.get("type")
    if not branches and isinstance(kind, list):
        types = [item for item in kind if item in _TYPES]
        if len(types) > 1:  # ["string", "number"]: one branch per type
            return [{"type": item} for item in types]
    return branches or None


def _without_null_type(node: dict) -> tuple[dict, bool]:
    """The node with "null" taken out of its type (and enum), and whether null was allowed."""
    kind = node.get("type")
    nullable = False
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        nullable = True
        rest = [item for item in kind if item != "null"] if isinstance(kind, list) else []
        node = {key: value for key, value in node.items() if key != "type"}
        if len(rest) == 1:
            node["type"] = rest[0]
        elif len(rest) > 1:
            node["type"] = rest
    elif isinstance(kind, list) and len(kind) == 1:
        node = dict(node, type=kind[0])
    enum = node.get("enum")
    if isinstance(enum, list) and None in enum:
        nullable = True
        node = dict(node, enum=[value for value in enum if value is not None])
    if "const" in node and node["const"] is None:
        nullable = True
        node = {key: value for key, value in node.items() if key != "const"}
    return node, nullable


def _is_null_schema(node: dict) -> bool:
    kind = node.get("type")
    return kind == "null" or kind == ["null"] or ("const" in node and node["const"] is None and len(node) == 1)


def _type_of(node: dict, root: bool) -> str:
    kind = node.get("type")
    if isinstance(kind, str) and kind in _TYPES:
        return kind
    if isinstance(kind, list):
        known = [item for item in kind if item in _TYPES]
        if known:
            return known[0]
    if root or any(key in node for key in ("properties", "required", "additionalProperties", "patternProperties")):
        return "object"
    if any(key in node for key in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    values = _enum_values(node)
    if values:
        if all(isinstance(value, bool) for value in values):
            return "boolean"
        if all(_is_number(value) for value in values):
            return "integer" if all(isinstance(value, int) for value in values) else "number"
        return "string"
    if any(key in node for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"  # no clue: "any value", which Gemini cannot say [LOSSY]


def _annotations(node: dict) -> dict:
    return {key: node[key] for key in _ANNOTATION_KEYS if isinstance(node.get(key), str) and node[key]}


def _enum_values(node: dict) -> list:
    if "const" in node and node["const"] is not None:
        return [node["const"]]
    enum = node.get("enum")
    return [value for value in enum if value is not None] if isinstance(enum, list) else []


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _string_keywords(node: dict, out: dict) -> None:
    values = [value if isinstance(value, str) else dumps(value) for value in _enum_values(node)]
    values = list(dict.fromkeys(value for value in values if value))
    if values:
        out["enum"] = values
    fmt = node.get("format")
    if fmt in _STRING_FORMATS or (fmt == "enum" and values):
        out["format"] = fmt
    for key in ("minLength", "maxLength"):
        if _is_count(node.get(key)):
            out[key] = node[key]
    if isinstance(node.get("pattern"), str) and node["pattern"]:
        out["pattern"] = node["pattern"]


def _number_keywords(node: dict, kind: str, out: dict) -> None:
    low = _inclusive_bound(node, "minimum", "exclusiveMinimum", kind, +1)
    high = _inclusive_bound(node, "maximum", "exclusiveMaximum", kind, -1)
    if low is not None and low > -JS_MAX_SAFE_INTEGER:
        out["minimum"] = low
    if high is not None and high < JS_MAX_SAFE_INTEGER:
        out["maximum"] = high
    _describe_dropped_enum(node, out)


def _inclusive_bound(node: dict, inclusive: str, exclusive: str, kind: str, direction: int) -> float | None:
    """The inclusive bound meaning the same as `inclusive` and `exclusive` together (or None)."""
    bounds: list[float] = []
    if _is_number(node.get(inclusive)):
        bound = node[inclusive]
        if node.get(exclusive) is True:  # draft-04: a boolean makes `inclusive` exclusive
            bound = _step_inside(bound, kind, direction)
        bounds.append(bound)
    if _is_number(node.get(exclusive)):
        bounds.append(_step_inside(node[exclusive], kind, direction))
    if not bounds:
        return None
    return max(bounds) if direction > 0 else min(bounds)


def _step_inside(bound: float, kind: str, direction: int) -> float:
    """The nearest allowed value inside an exclusive bound: the next integer, or the bound itself."""
    if kind != "integer":
        return bound  # no nearest float worth sending [LOSSY]
    if direction > 0:
        return math.floor(bound) + 1
    return math.ceil(bound) - 1


def _describe_dropped_enum(node: dict, out: dict) -> None:
    values = _enum_values(node)
    if not values:
        return
    listed = "Allowed values: " + ", ".join(dumps(value) for value in values) + "."
    description = out.get("description", "").rstrip()
    if description and not description.endswith((".", "!", "?", ":")):
        description += "."
    out["description"] = f"{description} {listed}" if description else listed


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def prepare_gemini_request(body: dict, *, dummy_thought_signatures: bool = True) -> dict:
    """The OpenAI chat.completions body Gemini accepts, made from an already-translated one.

    Returns a new dict (`body` is not changed): allowlisted fields, cleaned tool schemas, messages
    fitted to Gemini (see the module policies), and, unless `dummy_thought_signatures` is False,
    dummy thought signatures on the unsigned tool calls of the current turn. Never raises: values
    of unexpected shapes are forwarded as they are, for Gemini to judge.
    """
    out = {key: body[key] for key in GEMINI_REQUEST_FIELDS if key in body and body[key] is not None}
    messages = out.get("messages")
    if isinstance(messages, list):
        out["messages"] = _gemini_messages(messages, dummy_thought_signatures)
    stop = out.get("stop")
    if isinstance(stop, list):
        out["stop"] = stop[:GEMINI_MAX_STOP_SEQUENCES]
    options = out.get("stream_options")
    if isinstance(options, dict):
        if "include_usage" in options:
            out["stream_options"] = {"include_usage": options["include_usage"]}
        else:
            del out["stream_options"]
    tools = out.get("tools")
    if isinstance(tools, list):
        tools = [_gemini_tool(tool) for tool in tools if isinstance(tool, dict) and tool.get("type") == "function"]
        if tools:
            out["tools"] = tools
        else:
            out.pop("tools")
            out.pop("tool_choice", None)  # a choice among no tools is a 400
    elif "tools" not in out:
        out.pop("tool_choice", None)
    response_format = out.get("response_format")
    if isinstance(response_format, dict):
        out["response_format"] = _gemini_response_format(response_format)
    if "reasoning_effort" in out and _has_thinking_config(out.get("extra_body")):
        del out["reasoning_effort"]  # Gemini rejects both together ("found both")
    return out


def is_thought_signature_error(message: str) -> bool:
    """True for Gemini's 400s about thought signatures (missing, invalid, corrupted).

    On such an error for a request that carried real signatures, the provider may retry once with
    `with_dummy_thought_signatures(body)`: a signature made under another key, model or route.
    """
    lowered = message.lower()
    return "thought_signature" in lowered or "thought signature" in lowered


def with_dummy_thought_signatures(body: dict) -> dict:
    """A copy of a prepared body whose every tool call carries the dummy signature instead of its own.

    The model loses its earlier reasoning, but the conversation goes on (PROTOCOLS 5.6).
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return dict(body)
    replaced = []
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if isinstance(calls, list) and calls:
            message = dict(message, tool_calls=[_with_signature(call, DUMMY_THOUGHT_SIGNATURE) for call in calls])
        replaced.append(message)
    return dict(body, messages=replaced)


def _gemini_tool(tool: dict) -> dict:
    function = tool.get("function")
    if not isinstance(function, dict):
        return tool
    cleaned = {key: function[key] for key in ("name", "description") if key in function}
    parameters = clean_tool_schema(function.get("parameters"))
    if parameters.get("type") != "object" or parameters.get("properties"):
        cleaned["parameters"] = parameters
    # else: a function without parameters is declared without them, the form Gemini documents
    # (an object with an empty properties map has been rejected); `strict` is not Gemini's.
    return {"type": "function", "function": cleaned}


def _gemini_response_format(response_format: dict) -> dict:
    spec = response_format.get("json_schema")
    if response_format.get("type") != "json_schema" or not isinstance(spec, dict):
        return response_format
    if not isinstance(spec.get("schema"), dict):
        return response_format
    return dict(response_format, json_schema=dict(spec, schema=clean_tool_schema(spec["schema"])))


def _has_thinking_config(extra_body: object) -> bool:
    google = extra_body.get("google") if isinstance(extra_body, dict) else None
    return isinstance(google, dict) and google.get("thinking_config") is not None


# ---------------------------------------------------------------------------------------------
# Requests: messages and thought signatures
# ---------------------------------------------------------------------------------------------


def _gemini_messages(messages: list, dummy_thought_signatures: bool) -> list:
    names_by_call_id: dict[str, str] = {}
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(call.get("id"), str) and isinstance(function.get("name"), str):
                names_by_call_id[call["id"]] = function["name"]
    turn_start = _current_turn_start(messages) if dummy_thought_signatures else len(messages)
    out: list = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            out.append(message)
            continue
        role = "system" if message.get("role") == "developer" else message.get("role")
        keys = _MESSAGE_KEYS_BY_ROLE.get(role)
        if keys is None:  # an unknown role: Gemini's to judge
            out.append(message)
            continue
        fitted = {key: message[key] for key in keys if key in message}
        fitted["role"] = role
        if role == "tool" and not isinstance(fitted.get("name"), str):
            name = names_by_call_id.get(message.get("tool_call_id"))
            if name is not None:
                fitted["name"] = name
        calls = fitted.get("tool_calls")
        if isinstance(calls, list):
            calls = [_fitted_call(call) for call in calls]
            if position >= turn_start and calls and not any(_has_signature(call) for call in calls):
                calls = [_with_signature(call, DUMMY_THOUGHT_SIGNATURE) for call in calls]
            fitted["tool_calls"] = calls
        out.append(fitted)
    return out


def _current_turn_start(messages: list) -> int:
    """Index of the first message of the current turn (see the module policies)."""
    start = 0
    previous_role = None  # role of the latest message that is not a user or system message
    for position, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            if previous_role != "tool":
                start = position + 1
        elif role not in ("system", "developer"):
            previous_role = role
    return start


def _fitted_call(call: object) -> object:
    if not isinstance(call, dict):
        return call
    return {key: call[key] for key in _TOOL_CALL_KEYS if key in call}


def _has_signature(call: object) -> bool:
    extra = call.get("extra_content") if isinstance(call, dict) else None
    if not isinstance(extra, dict):
        return False
    return any(
        isinstance(holder, dict) and isinstance(holder.get("thought_signature"), str) and holder["thought_signature"]
        for holder in (extra.get("google"), extra.get("vertex"))
    )


def _with_signature(call: object, signature: str) -> object:
    if not isinstance(call, dict):
        return call
    return dict(call, extra_content={"google": {"thought_signature": signature}})
