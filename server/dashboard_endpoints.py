"""The dashboard's HTTP side: the page, its data, and the session that lets a browser read it.

`GET /dashboard` is one self-contained page (server/dashboard_page.py); it polls `GET /dashboard/data`,
which gathers what the gateway already knows: the routing table, key states, the live counts and
latency of server/dashboard.py, and the usage ledger's sums. `DASHBOARD=off` removes all four routes.

Policies:
- Who may look: with no inbound key configured, anyone who can reach the port (loopback by default)
  sees everything. With keys, the page asks for one once: `POST /dashboard/login` with the key in a
  JSON body sets a session cookie (HttpOnly, SameSite=Strict, Path=/dashboard), so the key is never in
  a URL and the page never holds it. A request with `x-api-key` / `Authorization: Bearer` is let in
  too (curl). Named clients see their own rows; admin keys (ADMIN_API_KEY) see everything.
- Sessions are stateless, so every worker and a restarted gateway accept them: the cookie is
  `client.admin.expiry.mac`, where the MAC is an HMAC-SHA256 keyed by the client's own inbound key.
  Removing a key from the settings ends its sessions; they expire after SESSION_SECONDS anyway.
- The cookie is `Secure` when a TLS terminator in front says `X-Forwarded-Proto: https`; the
  gateway itself speaks plain HTTP, where a Secure cookie would never come back.
- Login and logout need `content-type: application/json`, which a cross-site form cannot send
  without a CORS preflight this server never grants.
- Nothing the page shows costs the request path anything: the ledger is read in a thread, at most
  once per LEDGER_CACHE_SECONDS, and only when the page asks.
- The page is served with a strict Content-Security-Policy: everything inline, nothing external.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time

from server.config import VERSION, InboundKey
from server.connection import Request, ResponseWriter
from translate.errors import AuthenticationFailed, InvalidRequest
from translate.sse import dumps

SESSION_COOKIE = "switchboard_session"
SESSION_SECONDS = 12 * 3600
LEDGER_CACHE_SECONDS = 2.0
PAGE_HEADERS = [
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                                "connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
]
JSON_NO_STORE = [("content-type", "application/json"), ("cache-control", "no-store")]


class DashboardEndpoints:
    """The four routes of the dashboard, bound to one gateway."""

    def __init__(self, gateway) -> None:
        from server.dashboard import Dashboard

        self.gateway = gateway
        self.state = Dashboard()
        self._ledger_cache: tuple[float, str | None, dict] | None = None  # (when, viewer, tokens)

    def routes(self) -> dict:
        return {
            ("GET", "/dashboard"): self.handle_page,
            ("HEAD", "/dashboard"): self.handle_page,
            ("GET", "/dashboard/data"): self.handle_data,
            ("POST", "/dashboard/login"): self.handle_login,
            ("POST", "/dashboard/logout"): self.handle_logout,
        }

    # ---- recording -------------------------------------------------------------------------

    def record(self, request: Request, elapsed: float, ttft: float | None) -> None:
        """One finished front request, as the page lists it: numbers and names, never prompt text."""
        route, usage = request.route, request.usage
        self.state.record({
            "time": time.time(), "client": request.client, "front": request.front.name, "route_rule": request.route_rule,
            "provider": route.provider if route else "-", "model": route.requested if route else "-",
            "upstream": f"{route.provider}/{route.model}" if route else "-", "status": request.status or 0,
            "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
            "output_tokens": usage.output_tokens, "cache_read_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens, "ms": round(elapsed * 1000, 1),
            "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None, "stream": request.stream,
            "request_id": request.request_id, "error": request.error,
        })

    # ---- who is looking --------------------------------------------------------------------

    def viewer(self, request: Request) -> InboundKey | None:
        """The key behind the session cookie or the request's own key header; KEYLESS without keys."""
        gateway = self.gateway
        identity = gateway.identify(request.headers)
        if identity is not None:
            return identity
        token = cookie_value(request.headers.get("cookie", ""), SESSION_COOKIE)
        return self.session_key(token) if token else None

    def session_key(self, token: str, now: float | None = None) -> InboundKey | None:
        try:
            client, admin, expiry, mac = token.rsplit(".", 3)
            expires = int(expiry)
        except ValueError:
            return None
        if expires < (time.time() if now is None else now):
            return None
        found = None
        for key in self.gateway.config.inbound_keys:
            if key.client == client and str(int(key.admin)) == admin:
                expected = session_mac(key, client, admin, expiry)
                if hmac.compare_digest(expected, mac) and found is None:
                    found = key
        return found

    # ---- handlers --------------------------------------------------------------------------

    async def handle_page(self, request: Request, out: ResponseWriter) -> None:
        from server.dashboard_page import PAGE

        await out.send(200, PAGE_HEADERS, PAGE if request.method == "GET" else b"")

    async def handle_login(self, request: Request, out: ResponseWriter) -> None:
        """`{"key": "..."}` -> 204 with the session cookie, or 401."""
        key = self.gateway.key_matching([_posted_key(request)])
        if key is None:
            raise AuthenticationFailed("invalid key")
        expiry = str(int(time.time()) + SESSION_SECONDS)
        admin = str(int(key.admin))
        token = f"{key.client}.{admin}.{expiry}.{session_mac(key, key.client, admin, expiry)}"
        cookie = f"{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={SESSION_SECONDS}"
        if request.headers.get("x-forwarded-proto", "").lower() == "https":
            cookie += "; Secure"  # behind a TLS terminator: the browser will send it back over HTTPS only
        await out.send(204, [("set-cookie", cookie), ("cache-control", "no-store")], b"")

    async def handle_logout(self, request: Request, out: ResponseWriter) -> None:
        _require_json(request)
        cookie = f"{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=0"
        await out.send(204, [("set-cookie", cookie), ("cache-control", "no-store")], b"")

    async def handle_data(self, request: Request, out: ResponseWriter) -> None:
        viewer = self.viewer(request)
        if viewer is None:
            raise AuthenticationFailed("log in with a key of this gateway to see its dashboard")
        request.client, request.admin = viewer.client, viewer.admin
        only = None if viewer.admin else viewer.client
        gateway = self.gateway
        config = gateway.config
        limiter = gateway.limiter
        live = self.state.snapshot(client=only)
        pool = gateway.client.pool_stats()
        live["now"].update(
            open_streams=int(gateway.metrics.value("switchboard_active_streams")),
            queue_waits=sum(limiter.waiting.values()),
            pool={"idle": pool["idle"], "active": pool["active"]},
        )
        builtin = gateway.echo_fallback
        providers = [
            {"name": name, "describe": provider.describe(), "in_flight": limiter.in_flight.get(name, 0),
             "waiting": limiter.waiting.get(name, 0),
             "keys": provider.keys.snapshot() if provider.keys is not None else []}
            for name, provider in gateway.providers.items() if builtin or name != "echo"
        ]
        body = {
            "generated_at": time.time(),
            "version": VERSION,
            "viewer": {"client": viewer.client, "admin": viewer.admin},
            "sessions": bool(config.inbound_keys),  # False: no keys, the page has nothing to log out of
            # Each worker keeps its own live numbers (the ledger's tokens are every worker's): the page says whose.
            "worker": {"pid": os.getpid(), "of": config.workers},
            "routes": gateway.routing.describe(),
            "route_rules": config.route_classes.describe(),
            "aliases": dict(config.model_aliases),
            "fallbacks": list(config.fallback_models),
            "providers": providers,
            **live,
            "tokens": await self.tokens(only),
        }
        await out.send(200, JSON_NO_STORE, dumps(body).encode())

    async def tokens(self, client: str | None) -> dict:
        """Today's and the last seven days' sums from the ledger, cached briefly (read in a thread)."""
        ledger = self.gateway.ledger
        if ledger is None:
            return {"ledger": False, "today": [], "week": []}
        now = time.monotonic()
        cached = self._ledger_cache
        if cached is not None and cached[1] == client and now - cached[0] < LEDGER_CACHE_SECONDS:
            return cached[2]
        from server.ledger import LedgerError, query

        today = time.strftime("%Y-%m-%d", time.gmtime())
        week = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 6 * 86400))
        try:
            today_rows = await asyncio.to_thread(query, [ledger.path], since=today, group_by=("client", "model"), client=client)
            week_rows = await asyncio.to_thread(query, [ledger.path], since=week, group_by=("day", "client", "model"),
                                                client=client)
        except LedgerError as error:
            return {"ledger": True, "error": str(error), "today": [], "week": []}
        tokens = {"ledger": True, "today": today_rows, "week": week_rows}
        self._ledger_cache = (now, client, tokens)
        return tokens


def session_mac(key: InboundKey, client: str, admin: str, expiry: str) -> str:
    secret = hashlib.sha256(b"switchboard dashboard session\0" + key.key.encode()).digest()
    return hmac.new(secret, f"{client}.{admin}.{expiry}".encode(), hashlib.sha256).hexdigest()


def cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _require_json(request: Request) -> None:
    if not request.headers.get("content-type", "").lower().startswith("application/json"):
        raise InvalidRequest("send application/json")


def _posted_key(request: Request) -> str:
    _require_json(request)
    try:
        posted = json.loads(request.body or b"{}")
    except ValueError:
        raise InvalidRequest("the body must be JSON: {\"key\": \"...\"}") from None
    key = posted.get("key") if isinstance(posted, dict) else None
    if not isinstance(key, str) or not key:
        raise InvalidRequest("the body must be JSON: {\"key\": \"...\"}")
    return key
