"""What the gateway says about itself: its root, health, the models it routes, its metrics, the usage
ledger's sums, and the probes and telemetry Claude Code sends.

Policies:
- None of these calls an upstream; `/v1/models` is worked out from the routing table alone.
- `/v1/usage` reads the ledger in a thread (sqlite3 blocks) and shows a named client only its own rows.
- `/metrics` mirrors the key pools' counts at scrape time, so the request path records nothing for them.
"""

from __future__ import annotations

import asyncio
import os
import time

from server.config import VERSION
from server.connection import JSON_HEADERS, Request, ResponseWriter
from translate.errors import InvalidRequest, NotFound, UpstreamUnavailable
from translate.sse import dumps
from upstreams.routing import resolve_route

# Names Claude Code's model picker keeps (ids starting with "claude"): the current families and the
# 4.x names still in use. They route through the tiers (or unchanged, to Anthropic).
CLAUDE_MODEL_NAMES = (
    "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5",
    "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5",
)
MODELS_CREATED = 1735689600
MODELS_CREATED_AT = "2025-01-01T00:00:00Z"


class AboutEndpoints:
    """The routes that describe the gateway, bound to one gateway."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway

    def routes(self) -> dict:
        return {
            ("GET", "/v1/models"): self.handle_models,
            ("GET", "/health"): self.handle_health,
            ("GET", "/"): self.handle_root,
            ("HEAD", "/"): self.handle_root,
            ("HEAD", "/health"): self.handle_health,
            # Claude Code probes this before a session (a connectivity check, no key sent).
            ("GET", "/api/hello"): self.handle_hello,
            ("HEAD", "/api/hello"): self.handle_hello,
            ("POST", "/api/event_logging/batch"): self.handle_event_logging,
            ("GET", "/metrics"): self.handle_metrics,
            ("GET", "/v1/usage"): self.handle_usage,
        }

    async def handle_root(self, request: Request, out: ResponseWriter) -> None:
        body = {"name": "switchboard", "version": VERSION, "endpoints": sorted(self.gateway.paths)}
        await out.send(200, JSON_HEADERS, dumps(body).encode())

    async def handle_health(self, request: Request, out: ResponseWriter) -> None:
        body = {"status": "ok", "version": VERSION, "providers": sorted(self.gateway.providers), "pid": os.getpid()}
        await out.send(200, JSON_HEADERS, dumps(body).encode())

    async def handle_hello(self, request: Request, out: ResponseWriter) -> None:
        await out.send(200, JSON_HEADERS, b'{"message":"hello"}')

    async def handle_metrics(self, request: Request, out: ResponseWriter) -> None:
        metrics, stats = self.gateway.metrics, self.gateway.client.pool_stats()
        metrics.set("switchboard_upstream_pool_connections", stats["idle"], state="idle")
        metrics.set("switchboard_upstream_pool_connections", stats["active"], state="active")
        for name, provider in self.gateway.providers.items():
            for key in provider.keys.snapshot() if provider.keys is not None else ():
                fingerprint = key["fingerprint"]
                for state in ("healthy", "cooling", "disabled"):
                    metrics.mirror("switchboard_upstream_key_state", int(key["state"] == state), provider=name,
                                   key=fingerprint, state=state)
                metrics.mirror("switchboard_upstream_key_requests_total", key["requests"], provider=name, key=fingerprint)
                for reason in ("rate_limited", "quota_exhausted"):
                    metrics.mirror("switchboard_upstream_key_refusals_total", key[reason], provider=name,
                                   key=fingerprint, reason=reason)
        await out.send(200, [("content-type", "text/plain; version=0.0.4; charset=utf-8")], metrics.render().encode())

    async def handle_usage(self, request: Request, out: ResponseWriter) -> None:
        """`GET /v1/usage?since=7d&until=...&group_by=client,model[&client=NAME]`: sums from the usage ledger.

        A named client sees only its own rows; an admin key (or a gateway without keys) sees all, and
        may filter by `client`. Read in a thread (sqlite3 blocks), after writing this worker's pending sums.
        """
        from datetime import date
        from urllib.parse import parse_qs

        from server import ledger as ledgers

        if self.gateway.ledger is None:
            raise NotFound("the usage ledger is off (USAGE_DB=off, or its default file could not be opened at start)")
        asked = {name: values[-1] for name, values in parse_qs(request.query).items()}
        today = time.strftime("%Y-%m-%d", time.gmtime())
        try:
            since = ledgers.parse_since(asked.get("since", "7d"), date.fromisoformat(today))
            until = ledgers.parse_since(asked["until"], date.fromisoformat(today)) if "until" in asked else None
            group_by = tuple(name.strip() for name in asked.get("group_by", "day,client,model").split(",") if name.strip())
            client = asked.get("client") if request.admin else request.client
            await asyncio.to_thread(self.gateway.ledger.flush)
            rows = await asyncio.to_thread(ledgers.query, [self.gateway.ledger.path], since=since, until=until,
                                           group_by=group_by, client=client)
        except ValueError as error:
            raise InvalidRequest(str(error)) from None
        except ledgers.LedgerError as error:
            raise UpstreamUnavailable(f"the usage ledger cannot be read: {error}") from None
        body = {"object": "list", "since": since, "until": until or today, "group_by": list(group_by),
                "client": client, "data": rows}
        await out.send(200, JSON_HEADERS, dumps(body).encode())

    async def handle_event_logging(self, request: Request, out: ResponseWriter) -> None:
        # Claude Code's telemetry; nothing to forward. Answer quietly.
        await out.send(204, [], b"")

    async def handle_models(self, request: Request, out: ResponseWriter) -> None:
        """One list in both shapes: OpenAI's (object, owned_by, created) and Anthropic's (type, display_name, ...).

        Codex CLI asks with `?client_version=...` and reads only its own catalog shape, `{"models": [...]}`;
        an empty catalog makes it keep its bundled one (any other shape is an error it logs).
        """
        if "client_version=" in request.query:
            await out.send(200, JSON_HEADERS, b'{"models":[]}')
            return
        data = [
            {
                "id": model_id,
                "object": "model",
                "type": "model",
                "created": MODELS_CREATED,
                "created_at": MODELS_CREATED_AT,
                "owned_by": owner,
                "display_name": model_id,
            }
            for model_id, owner in self.model_ids()
        ]
        body = {
            "object": "list",
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        await out.send(200, JSON_HEADERS, dumps(body).encode())

    def model_ids(self) -> list[tuple[str, str]]:
        """(id, provider) for every model name this proxy can route, without duplicates, in a stable order."""
        table = self.gateway.routing
        listed: dict[str, str] = {}
        # Claude names route everywhere (through the tiers); Claude Code's picker keeps only these.
        for name in CLAUDE_MODEL_NAMES:
            listed.setdefault(name, resolve_route(name, table).provider)
        for model in (table.big_model, table.middle_model, table.small_model):
            if model:
                listed.setdefault(model, table.preferred)
        for alias in table.aliases:
            listed.setdefault(alias, resolve_route(alias, table).provider)
        for name, provider in self.gateway.providers.items():
            for model in provider.well_known_models:
                model_id = model if name == table.preferred else f"{name}/{model}"
                listed.setdefault(model_id, name)
        return list(listed.items())
