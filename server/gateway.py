"""The gateway: routes, auth, and the one serve path every front dialect goes through.

A request flows one way: route (front dialect, provider, model) -> the hops between the front's
dialect and the provider's (translate/dialects.py; none for passthrough) -> the provider sends it
through the pooled client -> the answer comes back through the same hops, whole or streamed.
The endpoints that only describe the gateway (health, models, metrics, usage) are in
server/about_endpoints.py, the dashboard's in server/dashboard_endpoints.py.

Policies:
- Nothing here asks which dialect or provider it is handling: the front `Dialect`, the provider's
  `SPEC` and the pair table say everything that differs.
- Retries (`open_upstream`) and fallbacks (`answer`) happen only while nothing has reached the
  client; after that, a failure ends the stream with the front's own stream error.
- A stream's response head is committed by the first upstream event or the first heartbeat, so an
  upstream error that arrives quickly still reaches the client with its own HTTP status.
- Passthrough never rewrites the answer: status, body and every stream byte go back untouched, and
  usage is read on the side. The one exception is a secret: no byte an upstream sends reaches a
  client with a configured key or minted token in it, except a successful non-stream body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import replace

from server.about_endpoints import AboutEndpoints
from server.config import Config, InboundKey
from server.connection import JSON_HEADERS, SSE_HEADERS, Request, ResponseWriter
from server.logs import Redactor
from server.metrics import Metrics
from translate.dialects import DIALECTS, HUB, ResponseIds, StreamTranslator, hops_between, hub_target, open_exchange
from translate.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    ProxyError,
    UpstreamUnavailable,
    error_from_upstream,
)
from translate.reuse import ToolsMemo, dumps_request, loads_request
from translate.sse import SSEDecoder, dumps
from translate.tokens import estimate_input_tokens
from translate.tool_search import without_unloaded_tools
from translate.usage import UsageReader
from translate.validate import validate_count_tokens_request
from upstreams.http import ClientSettings, HTTPClient, MemoryResponse
from upstreams.keys import STATUSES_ABOUT_THE_KEY, AllKeysCooling, PoolKey, Verdict
from upstreams.provider import Provider
from upstreams.request_class import RULE_SETTINGS, choose_route_rule
from upstreams.registry import provider_specs, spec_named
from upstreams.resilience import ConcurrencyLimiter, RetryPolicy, send_with_retries
from upstreams.routing import Route, RoutingTable, resolve_route
from upstreams.settings import ConfigError

log = logging.getLogger("switchboard")
access_log = logging.getLogger("switchboard.access")

# Marks every request the proxy sends upstream; a request arriving with this proxy's own mark is a loop.
LOOP_HEADER = "x-switchboard-hop"
# Who a request is when no inbound key is configured (loopback, or ALLOW_ANONYMOUS): one client that sees all.
KEYLESS = InboundKey("default", "", admin=True)
# Upstream response headers worth passing back to the client (rate-limit state, retry hints).
FORWARDED_RESPONSE_HEADER_PREFIXES = ("retry-after", "anthropic-ratelimit-", "x-ratelimit-")
# After a translated stream finished, the upstream's last bytes are read this long, so its
# connection can go back to the pool.
AFTER_END_DRAIN_TIMEOUT = 1.0
KNOWN_ROUTES_LIMIT = 1024  # (model, front) routes and (provider, model) targets remembered


def provider_variables(name: str) -> str:
    """What to set to configure provider `name`, for error messages and the banner."""
    spec = spec_named(name)
    return spec.variables if spec else "its variables"


class Gateway:
    """Holds what lives as long as the server: config, providers, routing table, upstream client."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.providers: dict[str, Provider] = dict(config.providers)
        builtin = [spec.name for spec in provider_specs() if spec.builtin]
        self.echo_fallback = all(name in builtin for name in self.providers)
        preferred = builtin[0] if self.echo_fallback else config.preferred_provider
        self.routing = RoutingTable(
            preferred=preferred,
            big_model=config.big_model,
            middle_model=config.middle_model,
            small_model=config.small_model,
            configured=frozenset(self.providers),
            aliases=config.model_aliases,
        )
        self.client = HTTPClient(
            ClientSettings(
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                ca_file=config.ssl_cert_file,
                proxies=config.proxies,
                max_response_bytes=config.max_response_bytes,
            )
        )
        if any(provider.base_url.startswith("https://") for provider in self.providers.values()):
            self.client.load_tls()  # needed anyway: better at start-up than on the first request
        self.dropped_tools_logged: set[str] = set()
        # Tool lists clients send again and again, parsed, translated and encoded once (translate/reuse.py).
        self.tools_memo = ToolsMemo()
        # Routes and translation targets, by what the client asked for (bounded; see routes_for).
        self.known_routes: dict[tuple[str, str, str], tuple[Route, ...]] = {}
        self.known_targets: dict[tuple[str, str, str], object] = {}
        self.instance_id = config.instance_id
        self.upstream_marks = [(LOOP_HEADER, self.instance_id)]
        # Every secret, the tokens providers mint included, masked in whatever an upstream says to a client.
        self.redact = Redactor(config.secrets(), tuple(p.secrets for p in self.providers.values() if p.secrets_change))
        self.metrics = Metrics()
        self.retry_policy = RetryPolicy(max_retries=config.max_retries)
        self.limiter = ConcurrencyLimiter(config.max_concurrent_upstream, config.upstream_queue_timeout)
        self.ledger = None  # the usage ledger (server/ledger.py), opened by the server in each worker
        for rule, setting in RULE_SETTINGS:
            target = config.route_classes.model_for(rule)
            route = resolve_route(target, self.routing) if target else None
            if route is not None and not route.configured:
                raise ConfigError(
                    f"{setting}={target} routes to {route.provider}, which is not configured: "
                    f"set {provider_variables(route.provider)}"
                )
        for fallback in config.fallback_models:
            route = resolve_route(fallback, self.routing)
            if not route.configured:
                raise ConfigError(
                    f"FALLBACK_MODELS entry {fallback!r} routes to {route.provider}, which is not configured: "
                    f"set {provider_variables(route.provider)}"
                )
        self.routes = {
            ("POST", "/v1/messages"): self.handle_front,
            ("POST", "/v1/messages/count_tokens"): self.handle_count_tokens,
            ("POST", "/v1/chat/completions"): self.handle_front,
            ("POST", "/v1/responses"): self.handle_front,
        }
        self.routes.update(AboutEndpoints(self).routes())
        self.dashboard = None
        if config.dashboard:
            from server.dashboard_endpoints import DashboardEndpoints

            self.dashboard = DashboardEndpoints(self)
            self.routes.update(self.dashboard.routes())
        self.paths = frozenset(path for _, path in self.routes)

    # ---- routing and auth ------------------------------------------------------------------

    def identify(self, headers: Mapping[str, str]) -> InboundKey | None:
        """The inbound key a request offers (constant time), `KEYLESS` when none is configured, else None.

        Both headers count: Claude Code sends `x-api-key` and `Authorization: Bearer` when a user has
        ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN set, and only one of them may be the proxy's key.
        """
        if not self.config.inbound_keys:
            return KEYLESS
        offered = [headers.get("x-api-key", "")]
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            offered.append(authorization[7:].strip())
        return self.key_matching(offered)

    def key_matching(self, offered: list[str]) -> InboundKey | None:
        """The configured inbound key equal to one of `offered`, comparing every pair in constant time."""
        from hmac import compare_digest  # here: hashlib costs half a megabyte a keyless gateway never needs

        found = None
        for credential in offered:
            for key in self.config.inbound_keys:
                # Compare every pair so the time taken does not reveal which one matched.
                if compare_digest(credential.encode(), key.key.encode()) and found is None:
                    found = key
        return found

    def mask_error(self, error: ProxyError) -> None:
        """Mask every secret in what an error will show the client: its message and any upstream body."""
        error.message = self.redact(error.message)
        if error.upstream_body:
            error.upstream_body = self.redact.bytes(error.upstream_body)

    def route(self, model: str, front: str) -> Route:
        route = resolve_route(model, self.routing, front)
        if not route.configured:
            raise InvalidRequest(
                f"model {model!r} routes to provider {route.provider!r}, which is not configured: "
                f"set {provider_variables(route.provider)}"
            )
        return self.on_wire(route, front)

    def on_wire(self, route: Route, front: str) -> Route:
        """`route` with the dialect its provider takes the request in from a `front` client."""
        return replace(route, dialect=self.providers[route.provider].dialect_for(route.model, front))

    async def dispatch(self, request: Request, out: ResponseWriter) -> None:
        """Run the handler for the request's method and path; raises ProxyError for the caller to render."""
        path = request.path
        handler = self.routes.get((request.method, path))
        if handler is None:
            if path in self.paths:
                raise ProxyError(f"method {request.method} is not allowed on {path}", status=405, error_type="invalid_request_error")
            raise NotFound(f"no route for {request.method} {path}")
        needs_key = path.startswith("/v1/") or (path == "/metrics" and not self.config.metrics_public)
        if needs_key:
            identity = self.identify(request.headers)
            if identity is None:
                raise AuthenticationFailed("invalid or missing API key: send it as x-api-key or Authorization: Bearer")
            request.client, request.admin = identity.client, identity.admin
        if request.headers.get(LOOP_HEADER) == self.instance_id:
            raise ProxyError(
                "loop detected: this request was sent by this proxy to itself; an upstream base URL "
                "(OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ...) points back at the proxy",
                status=508,
                error_type="invalid_request_error",
            )
        coding = request.headers.get("content-encoding")
        if coding and request.body:
            # Anything that reads the body (the translators, passthrough) gets it decoded.
            from server.content_coding import decode_request_body  # compressed bodies are rare: load on first

            request.body = decode_request_body(request.body, coding, self.config.max_request_bytes)
        await handler(request, out)

    def finish(self, request: Request, first_content_at: float | None) -> None:
        """One access-log line and the request's metrics, once it was answered (or abandoned)."""
        route = request.route
        elapsed = time.monotonic() - request.started
        status = str(request.status or "-")
        provider = route.provider if route else "-"
        if request.path.startswith("/v1/"):
            metrics = self.metrics
            model = route.requested if route else "-"
            front = request.front.name
            client, rule = request.client, request.route_rule
            metrics.inc("switchboard_requests_total", front=front, provider=provider, model=model, status=status,
                        client=client, route_rule=rule)
            metrics.observe("switchboard_request_duration_seconds", elapsed, front=front, provider=provider)
            if first_content_at is not None and request.stream:
                metrics.observe("switchboard_time_to_first_token_seconds", first_content_at - request.started,
                                front=front, provider=provider)
            usage = request.usage
            for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens), ("cached", usage.cached_tokens)):
                if count:
                    metrics.inc("switchboard_tokens_total", count, provider=provider, kind=kind, client=client, model=model)
            front_request = request.path == request.front.endpoint
            if self.dashboard is not None and front_request:
                ttft = first_content_at - request.started if first_content_at is not None and request.stream else None
                self.dashboard.record(request, elapsed, ttft)
            if self.ledger is not None and front_request:
                self.ledger.record(
                    client=client, front=front, provider=provider, model=route.model if route else "-", route=rule,
                    error=(request.status or 500) >= 400, input_tokens=usage.uncached_input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_tokens=usage.cached_tokens, cache_write_tokens=usage.cache_write_tokens,
                )
        quiet = request.path in ("/health", "/", "/metrics") or request.status == 204
        level = logging.DEBUG if quiet else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        usage = request.usage
        fields = {
            "request_id": request.request_id,
            "method": request.method,
            "path": request.path,
            "model": route.requested if route else "-",
            "upstream": f"{route.provider}/{route.model}" if route else "-",
            "status": request.status or 0,
            "ms": round(elapsed * 1000),
            "in": usage.input_tokens,
            "out": usage.output_tokens,
            "cached": usage.cached_tokens,
            "stream": request.stream,
            "fallback": request.fallback,
        }
        fields["client"] = request.client
        fields["route_rule"] = request.route_rule
        access_log.log(
            level,
            "%s %s model=%s->%s status=%s ms=%d in=%d out=%d stream=%s%s client=%s%s request_id=%s",
            request.method, request.path, fields["model"], fields["upstream"], status, fields["ms"],
            usage.input_tokens, usage.output_tokens, "true" if request.stream else "false",
            f" fallback={request.fallback}" if request.fallback else "", request.client,
            f" route_rule={request.route_rule}" if request.route_rule != "default" else "", request.request_id,
            extra={"access": fields},
        )

    async def handle_count_tokens(self, request: Request, out: ResponseWriter) -> None:
        body = parse_json_object(request.body, self.tools_memo)  # the session's tool list: checked once
        validate_count_tokens_request(body)
        model = body.get("model") or self.config.default_model
        if isinstance(model, str) and model:
            route = request.route = self.choose_routes(request, body, model)[0]
            provider = self.providers[route.provider]
            # An upstream of the front's own dialect counts exactly; any other gets the local estimate.
            same_dialect = not hops_between(request.front.name, route.dialect)
            if same_dialect and await self.forward_count_tokens(request, out, provider, body, route):
                return
        # Counted as it would be sent: a backend without tool search gets only the loaded tools.
        tokens = estimate_input_tokens(without_unloaded_tools(body))
        request.usage.input_tokens = tokens
        await out.send(200, JSON_HEADERS, dumps({"input_tokens": tokens}).encode())

    async def forward_count_tokens(self, request: Request, out: ResponseWriter, provider: Provider, body: dict,
                                   route: Route) -> bool:
        """Exact counts from the upstream; False (use the local estimate) when it cannot answer."""
        same = route.model == route.requested and body.get("model") == route.requested
        payload = request.body if same else dumps(dict(body, model=route.model)).encode()
        try:
            response = await provider.send(
                self.client, payload, model=route.model, client_headers=request.headers, path=request.path,
                extra_headers=[("x-request-id", request.request_id), *self.upstream_marks],
            )
            async with response:
                raw = await response.read()
        except ProxyError as error:
            log.info("request_id=%s count_tokens upstream failed (%s); using the local estimate", request.request_id, error.message)
            return False
        if response.status != 200:
            log.info("request_id=%s count_tokens upstream answered %d; using the local estimate", request.request_id, response.status)
            return False
        try:
            counted = json.loads(raw).get("input_tokens")
        except (ValueError, AttributeError):
            counted = None
        request.usage.input_tokens = counted if isinstance(counted, int) else 0
        await out.send(200, JSON_HEADERS, raw)
        return True

    # ---- the one serve path ----------------------------------------------------------------

    async def handle_front(self, request: Request, out: ResponseWriter) -> None:
        """A front's main endpoint (Messages, Chat Completions): route, fall back, serve."""
        body = parse_json_object(request.body, self.tools_memo)
        if body.get("model") in (None, "") and self.config.default_model:
            body["model"] = self.config.default_model  # MODEL_NAME (seed 004): the model of a request naming none
            request.model_defaulted = True
        request.front.validate(body)  # every field, before any upstream is chosen or called
        model = body["model"]
        if self.config.token_budgets.any():
            self.check_budget(request)
        routes = self.choose_routes(request, body, model)
        request.stream = body.get("stream") is True
        if request.stream:
            # Heartbeats may flow from now on; the first one commits a 200 head.
            out.prepare_stream(200, SSE_HEADERS)
            out.start_heartbeat(request.front.heartbeat, self.config.ping_interval)
        await self.answer(request, out, body, routes)

    def choose_routes(self, request: Request, body: dict, model: str) -> tuple[Route, ...]:
        """The routes for `model`, or for the model a request-class rule (ROUTE_*) names for this request.

        The rules read the hub's view of the request (upstreams/request_class.py): a Chat or Responses
        request is translated to Anthropic Messages for them, only when a rule is set.
        """
        rules = self.config.route_classes
        if rules.any():
            hub = body if request.front.name == HUB else self.hub_view(request, body)
            chosen = choose_route_rule(hub, request.headers, rules) if hub is not None else None
            if chosen is not None:
                request.route_rule, target = chosen
                return self.routes_for(target, request.front.name, requested=model)
        return self.routes_for(model, request.front.name)

    def hub_view(self, request: Request, body: dict) -> dict | None:
        """`body` (a non-hub front's request) as the hub would see it, for the routing rules; None when
        the hub cannot hold it (a stored-state Responses request an OpenAI upstream may still serve)."""
        ids = ResponseIds(requested_model=body.get("model") or "", token="route", created=0)
        hop = hops_between(request.front.name, HUB)[0]
        try:
            return hop(body, hub_target(body.get("model") or ""), ids).body
        except ProxyError:
            return None

    def check_budget(self, request: Request) -> None:
        """429 in the client's dialect when its CLIENT_DAILY_TOKEN_LIMIT for today (UTC) is spent."""
        limit = self.config.token_budgets.limit_for(request.client)
        if limit is None or self.ledger is None:
            return
        now = time.time()
        used = self.ledger.tokens_today(request.client, now)
        if used < limit:
            return
        resets_in = int(86400 - now % 86400) + 1
        hours, minutes = divmod(resets_in // 60, 60)
        raise ProxyError(
            f"the daily token budget of client {request.client!r} is spent: {used:,} of {limit:,} tokens used "
            f"today (UTC); it resets at 00:00 UTC, in {hours} h {minutes} min (CLIENT_DAILY_TOKEN_LIMIT)",
            status=429, error_type="rate_limit_error", code="daily_token_budget_exceeded", retry_after=str(resets_in),
        )

    def routes_for(self, model: str, front: str, requested: str | None = None) -> tuple[Route, ...]:
        """The primary route for `model`, then each FALLBACK_MODELS route that differs from it; each
        answers as `requested` (default `model`): a rule's model serves the name the client asked for.

        Worked out once per (model, front, requested): the table does not change while the server runs.
        """
        requested = requested or model
        key = (model, front, requested)
        routes = self.known_routes.get(key)
        if routes is not None:
            return routes
        found = [replace(self.route(model, front), requested=requested)]
        for fallback in self.config.fallback_models:
            route = resolve_route(fallback, self.routing, front)
            route = Route(route.provider, route.model, requested, route.configured)
            if route.configured:
                route = self.on_wire(route, front)
            if route.configured and (route.provider, route.model) not in {(r.provider, r.model) for r in found}:
                found.append(route)
        if len(self.known_routes) >= KNOWN_ROUTES_LIMIT:
            self.known_routes.clear()  # model names are the client's to choose: keep the memo bounded
        routes = self.known_routes[key] = tuple(found)
        return routes

    def target_for(self, provider: Provider, route: Route) -> object:
        """The provider's target for the route's model and dialect, worked out once (targets are frozen)."""
        key = (provider.name, route.model, route.dialect)
        target = self.known_targets.get(key)
        if target is None:
            if len(self.known_targets) >= KNOWN_ROUTES_LIMIT:
                self.known_targets.clear()
            target = self.known_targets[key] = provider.target_for(route.model, route.dialect)
        return target

    async def answer(self, request: Request, out: ResponseWriter, body: dict, routes: tuple[Route, ...]) -> None:
        """Serve from the primary route; on a retryable failure before any content, try each fallback.

        A provider whose every key rests (AllKeysCooling) is skipped for the later fallbacks too: its
        other models are behind the same keys.
        """
        resting: set[str] = set()
        for position, route in enumerate(routes):
            if route.provider in resting:
                continue
            request.route, request.fallback = route, position
            try:
                # acquire/release rather than `async with slot()`: no context-manager object per request.
                await self.limiter.acquire(route.provider)
                try:
                    await self.serve_route(request, out, body, route)
                finally:
                    self.limiter.release(route.provider)
            except ProxyError as error:
                self.metrics.inc("switchboard_upstream_errors_total", provider=route.provider, kind=error.error_type)
                if isinstance(error, AllKeysCooling):
                    resting.add(route.provider)
                following = next((later for later in routes[position + 1 :] if later.provider not in resting), None)
                if following is None or not error.retryable or out.content_started:
                    raise
                log.warning(
                    "request_id=%s %s/%s failed (%s); falling back to %s/%s",
                    request.request_id, route.provider, route.model, error.message, following.provider, following.model,
                )
                continue
            if position:
                self.metrics.inc("switchboard_fallbacks_total", provider=route.provider)
            return

    async def serve_route(self, request: Request, out: ResponseWriter, body: dict, route: Route) -> None:
        """Serve the request from one route: passed through, or translated through the pair's hops."""
        provider = self.providers[route.provider]
        hops = hops_between(request.front.name, route.dialect)
        if not hops:
            await self.passthrough(request, out, provider, body, route)
            return
        # The answer's id shares the request id's random part: unique, and easy to find in the log.
        ids = ResponseIds(requested_model=route.requested, token=request.request_id[4:], created=int(time.time()))
        exchange = open_exchange(hops, body, self.target_for(provider, route), ids)
        for name in exchange.dropped_tools:
            if name not in self.dropped_tools_logged:
                self.dropped_tools_logged.add(name)
                log.warning("dropping server tool %s: provider %s cannot run it", name, route.provider)
        payload = self.upstream_payload(request, provider.prepare(exchange.body))
        response = request.upstream = await self.open_upstream(request, provider, route, payload)
        if not request.stream:
            upstream_answer = await self.read_upstream_json(response, route)
            # Counted from what the upstream said: a translated answer may have no room for a count
            # (Chat Completions has no cache writes).
            DIALECTS[route.dialect].read_usage(request.usage, upstream_answer)
            answer = exchange.response(upstream_answer)
            await out.send(200, JSON_HEADERS, dumps(answer).encode())
            return
        translator = exchange.stream()
        keepalive = getattr(translator, "keepalive", None)
        if keepalive is not None:
            encode = request.front.encode
            out.heartbeat_source = lambda: b"".join(encode(event) for event in keepalive())
        try:
            await self.relay_stream(request, out, response, translator, route)
        finally:
            usage = request.usage
            usage.input_tokens = translator.input_tokens + translator.cache_read_tokens + translator.cache_creation_tokens
            usage.cached_tokens = translator.cache_read_tokens
            usage.cache_write_tokens = translator.cache_creation_tokens
            usage.output_tokens = translator.output_tokens

    async def open_upstream(self, request: Request, provider: Provider, route: Route, payload: bytes, **send_options):
        """Send the request upstream with retries; returns the response (its status may be a final error)."""
        headers = [("x-request-id", request.request_id), *self.upstream_marks]
        keys = provider.keys
        tried: list[PoolKey] = []

        def send_plain() -> Awaitable:
            return provider.send(self.client, payload, model=route.model, extra_headers=headers, dialect=route.dialect,
                                 **send_options)

        async def send_with_a_key():
            # A key the provider refused rests (upstreams/keys.py), and the request goes at once to a
            # key it has not tried; backoff (send_with_retries) only once every key had its turn.
            while True:
                key = keys.pick(tried)  # AllKeysCooling: a 429 with the earliest retry-after
                if key not in tried:
                    tried.append(key)
                response = await provider.send(self.client, payload, model=route.model, extra_headers=headers,
                                               dialect=route.dialect, api_key=key.secret, **send_options)
                if response.status not in STATUSES_ABOUT_THE_KEY:
                    keys.report(key, response.status)
                    return response
                async with response:
                    raw = await response.read()
                verdict = keys.report(key, response.status, raw, response.header("retry-after"))
                response = MemoryResponse(response.status, response.headers, [raw])
                if verdict in (Verdict.ACCEPTED, Verdict.NOT_THE_KEY) or len(tried) >= len(keys):
                    return response
                self.metrics.inc("switchboard_key_rotations_total", provider=route.provider, reason=verdict.name.lower())
                log.info("request_id=%s %s refused %s (%s); trying another key", request.request_id, route.provider,
                         key.fingerprint, verdict.name.lower())

        send = send_plain if keys is None else send_with_a_key

        def on_retry(reason: str, delay: float) -> None:
            self.metrics.inc("switchboard_upstream_retries_total", provider=route.provider, reason=reason)
            log.info("request_id=%s retrying %s/%s after %s in %.2fs", request.request_id, route.provider, route.model, reason, delay)

        return await send_with_retries(send, self.retry_policy, provider=route.provider, jitter=retry_jitter, on_retry=on_retry)

    def upstream_payload(self, request: Request, body: dict) -> bytes:
        payload = dumps_request(body).encode()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request_id=%s upstream body %s", request.request_id, payload[:20000].decode("utf-8", "replace"))
        return payload

    async def read_upstream_json(self, response, route: Route) -> dict:
        """A non-stream upstream answer's JSON body, or the ProxyError its status means."""
        async with response:
            raw = await response.read()
        if response.status >= 400:
            raise error_from_upstream(response.status, raw, provider=route.provider, retry_after=response.header("retry-after"))
        try:
            data = json.loads(raw)
        except ValueError:
            raise UpstreamUnavailable(f"{route.provider} upstream returned a body that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamUnavailable(f"{route.provider} upstream returned JSON that is not an object")
        return data

    # ---- passthrough -----------------------------------------------------------------------

    async def passthrough(self, request: Request, out: ResponseWriter, provider: Provider, body: dict, route: Route) -> None:
        """Same dialect on both sides: the request goes up unchanged but for the model name, and the
        answer (status, body, every stream byte) comes back untouched. Usage is read on the side."""
        model = provider.upstream_model(route.model)
        if provider.rewrites_requests:
            # Same dialect, but the provider rejects what the dialect allows (Gemini, Ollama).
            payload = dumps_request(provider.prepare(dict(body, model=model))).encode()
        elif model == route.requested and not request.model_defaulted:
            payload = request.body
        else:
            payload = dumps_request(dict(body, model=model)).encode()
        reader = UsageReader(request.front.read_usage)
        try:
            response = request.upstream = await self.open_upstream(request, provider, route, payload, client_headers=request.headers)
        except ProxyError as error:
            error.passthrough = True  # render the upstream's own error body if it is the last word
            raise
        async with response:
            headers = passed_response_headers(response)
            streaming = request.stream and response.status < 400 and "event-stream" in (response.header("content-type") or "")
            if not streaming:
                raw = await response.read()
                reader.read_body(raw)
                request.usage = reader.usage
                if response.status >= 400:
                    raw = self.redact.bytes(raw)  # some upstreams quote the key they were sent
                if not out.started:
                    await out.send(response.status, headers, raw)
                    return
                # Heartbeats already committed a 200 stream: report the failure inside it.
                raise error_from_upstream(response.status, raw, provider=route.provider)
            out.prepare_stream(response.status, headers)
            chunks = response.iter_bytes().__aiter__()
            at_event_boundary = True
            try:
                while True:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    chunk = self.redact.bytes(chunk)  # an error event may quote a key; the same bytes otherwise
                    reader.feed(chunk)
                    # A heartbeat may only go between events, never inside one.
                    at_event_boundary = out.at_event_boundary = chunk.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))
                    await out.write(chunk)
            except ProxyError as error:
                if not out.started:
                    raise
                log.warning("request_id=%s passthrough stream failed: %s", request.request_id, error.message)
                if not at_event_boundary:
                    await out.write(b"\n\n")
                await out.write(request.front.stream_error(error))
            finally:
                request.usage = reader.usage
            await out.end()

    # ---- streaming relay -------------------------------------------------------------------

    async def relay_stream(self, request: Request, out: ResponseWriter, response, translator: StreamTranslator,
                           route: Route) -> None:
        """Relay an upstream SSE stream through a stream translator to the client, with heartbeats.

        Raises ProxyError only while no content has been written, so the caller can still fall
        back or render it with its HTTP status; after that, failures end the stream with the
        translator's error event.
        """
        encode = request.front.encode
        async with response:
            if response.status >= 400:
                raw = await response.read()
                raise error_from_upstream(response.status, raw, provider=route.provider, retry_after=response.header("retry-after"))
            decoder = SSEDecoder()
            chunks = response.iter_bytes().__aiter__()
            self.metrics.add("switchboard_active_streams", 1)
            try:
                while not translator.finished:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        events = [e for sse in decoder.close() for e in translator.feed(sse)] + translator.close()
                        if events:
                            await out.write(b"".join(encode(e) for e in events))
                        break
                    events = [e for sse in decoder.feed(self.redact.bytes(chunk)) for e in translator.feed(sse)]
                    if events:
                        await out.write(b"".join(encode(e) for e in events))
                else:
                    # Finished: read the upstream's last bytes briefly, so its connection can be pooled.
                    with contextlib.suppress(Exception, asyncio.TimeoutError):
                        while True:
                            await asyncio.wait_for(chunks.__anext__(), AFTER_END_DRAIN_TIMEOUT)
            except ProxyError as error:
                if not out.content_started:
                    raise
                log.warning("request_id=%s upstream stream failed: %s", request.request_id, error.message)
                await out.write(b"".join(encode(e) for e in translator.fail(error)))
            finally:
                self.metrics.add("switchboard_active_streams", -1)
            await out.end()


def retry_jitter() -> float:
    """A random fraction for retry backoff; `random` loads on the first retry, not at start."""
    import random

    return random.random()


def parse_json_object(body: bytes, tools_memo: ToolsMemo | None = None) -> dict:
    """The request body as a JSON object; InvalidRequest when it is not one."""
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        value = loads_request(body, tools_memo)
    except ValueError as error:
        raise InvalidRequest(f"request body is not valid JSON: {error}") from None
    except RecursionError:  # a last line: loads_request bounds nesting itself
        raise InvalidRequest("request body is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidRequest("request body must be a JSON object")
    return value


def passed_response_headers(response) -> list[tuple[str, str]]:
    """The upstream response headers a client may see: content type, retry hints, rate-limit state."""
    headers = [("content-type", response.header("content-type") or "application/json")]
    headers += [(k, v) for k, v in response.headers if k.startswith(FORWARDED_RESPONSE_HEADER_PREFIXES)]
    return headers
