"""The providers switchboard knows: one line each.

The order matters once: with PREFERRED_PROVIDER unset, the first configured provider in this list is
preferred. A provider module is imported when the settings are read (its `SPEC` says whether it is
configured); its heavy dependencies wait until it is built.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from upstreams.provider import ProviderSpec

PROVIDER_MODULES = [
    "upstreams.openai",
    "upstreams.azure",
    "upstreams.gemini",
    "upstreams.ollama",
    "upstreams.anthropic",
    "upstreams.echo",
]


@lru_cache(maxsize=None)
def _specs(modules: tuple[str, ...]) -> tuple[ProviderSpec, ...]:
    return tuple(importlib.import_module(module).SPEC for module in modules)


def provider_specs() -> tuple[ProviderSpec, ...]:
    """The SPEC of every registered provider module, in registry order."""
    return _specs(tuple(PROVIDER_MODULES))


def spec_named(name: str) -> ProviderSpec | None:
    """The spec whose name or alias is `name` (PREFERRED_PROVIDER values), else None."""
    for spec in provider_specs():
        if name == spec.name or name in spec.aliases:
            return spec
    return None


def provider_prefixes() -> dict[str, str]:
    """`prefix` (as in `prefix/model`) -> the provider it selects, for every registered provider."""
    return {prefix: spec.name for spec in provider_specs() for prefix in spec.model_prefixes}
