"""The routing table: which provider serves a requested model, and under which name.

Policies:
- A route is computed once per request, by `resolve_route`, from the frozen `RoutingTable` built at
  start-up; everything downstream reads the route and nothing re-derives it.
- Order of rules: `MODEL_ALIASES` first (an alias may name a `provider/model`), then an explicit
  `provider/` prefix (sent to that provider with the prefix removed; each provider's SPEC declares
  its prefixes), then, on a front other than Anthropic's, a `claude-` name goes unchanged to
  Anthropic when Anthropic is configured; then Claude's
  family names (haiku -> SMALL_MODEL, sonnet -> MIDDLE_MODEL, opus -> BIG_MODEL on the preferred
  provider; a tier left unset keeps the requested name), and any other name passes through
  unchanged to the preferred provider.
- A preferred provider that takes Claude names (Anthropic) has no tiers at all (server/config.py
  leaves them unset whatever BIG_MODEL says): the model goes upstream exactly as the client asked.
- When no provider is configured at all the preferred provider is `echo`, so a new user can check
  their client's wiring without spending tokens.
- Routing to a provider that is not configured is the caller's 400, naming the variables to set;
  `resolve_route` only reports it with `Route.configured`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from upstreams.registry import provider_prefixes

# Claude family words and the tier each maps to.
FAMILY_TIERS = (("haiku", "small"), ("sonnet", "middle"), ("opus", "big"))


@dataclass(frozen=True)
class Route:
    """Where one request goes: provider name, the model name sent upstream, the name the client used."""

    provider: str
    model: str
    requested: str
    configured: bool = True
    # The dialect the request goes upstream in (the provider's `dialect_for`); "" until the gateway sets it.
    dialect: str = ""


@dataclass(frozen=True)
class RoutingTable:
    preferred: str
    big_model: str | None  # None: keep the requested name (e.g. Claude names on Anthropic)
    middle_model: str | None
    small_model: str | None
    configured: frozenset[str]
    aliases: dict[str, str] = field(default_factory=dict)
    # `prefix/` a client may write before a model name -> the provider it selects (from the SPECs).
    prefixes: dict[str, str] = field(default_factory=provider_prefixes)

    def tier_model(self, tier: str) -> str | None:
        return {"big": self.big_model, "middle": self.middle_model, "small": self.small_model}[tier]

    def describe(self) -> list[str]:
        """Human-readable lines for the start-up banner."""
        def shown(model: str | None) -> str:
            return f"{self.preferred}/{model or '<name as requested>'}"

        lines = [
            f"haiku  -> {shown(self.small_model)}",
            f"sonnet -> {shown(self.middle_model)}",
            f"opus   -> {shown(self.big_model)}",
            f"other  -> {shown(None)}",
        ]
        if "anthropic" in self.configured and self.preferred != "anthropic":
            lines.append("claude-* on the chat front -> anthropic/<name as requested>")
        lines += [f"{alias} -> {target}" for alias, target in sorted(self.aliases.items())]
        return lines


def resolve_route(requested: str, table: RoutingTable, front: str = "anthropic") -> Route:
    """The route for `requested` (the client's `model` field) on `front`. Never raises."""
    name = table.aliases.get(requested, requested)
    prefix, slash, rest = name.partition("/")
    if slash and prefix in table.prefixes and rest:
        provider = table.prefixes[prefix]
        return Route(provider, rest, requested, provider in table.configured)
    lowered = name.lower()
    if front != "anthropic" and lowered.startswith("claude-") and "anthropic" in table.configured:
        return Route("anthropic", name, requested)
    for word, tier in FAMILY_TIERS:
        if word in lowered:
            model = table.tier_model(tier) or name
            return Route(table.preferred, model, requested, table.preferred in table.configured)
    return Route(table.preferred, name, requested, table.preferred in table.configured)
