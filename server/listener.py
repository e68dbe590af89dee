"""The listener: the listening socket, the set of live client connections, graceful shutdown, the banner.

Policies:
- Over MAX_CONNECTIONS a connection gets a short 503 and is closed before anything is read.
- Shutdown (SIGTERM/SIGINT): stop listening, close idle connections, let busy ones finish for
  SHUTDOWN_GRACE without keep-alive, then cancel them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

from server.config import VERSION, Config
from server.connection import ClientConnection
from server.gateway import Gateway, provider_variables
from server.logs import Verbatim
from translate.dialects import ANTHROPIC
from translate.errors import ProxyError
from upstreams.registry import provider_specs

log = logging.getLogger("switchboard")


# Written before any byte is read, so the client's dialect is unknown: Anthropic's envelope.
_BUSY_STATUS, _BUSY_BODY = ANTHROPIC.render_error(ProxyError("too many connections (MAX_CONNECTIONS); try again", status=503))
TOO_MANY_CONNECTIONS_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class Server:
    """The listening socket and the set of live client connections; handles graceful shutdown."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.gateway = Gateway(config)
        self.closing = False
        self.connections: set[ClientConnection] = set()
        self.listener: asyncio.base_events.Server | None = None

    async def start(self, sock: socket.socket | None = None) -> int:
        """Start listening (on `sock` when given); returns the bound port (useful with PORT=0).

        Opens the usage ledger here, in the process that serves (each worker its own connection and
        flusher thread: neither survives fork()).
        """
        if self.config.usage_db is None or self.config.usage_db.lower() != "off":
            from server.ledger import open_ledger  # sqlite3 only when the ledger is on

            self.gateway.ledger = open_ledger(self.config.usage_db, explicit=self.config.usage_db is not None)
            if self.gateway.ledger is None and self.config.token_budgets.any():
                log.error("CLIENT_DAILY_TOKEN_LIMIT is set but the usage ledger could not be opened (see above): "
                          "budgets are not enforced; set USAGE_DB to a writable file")
        loop = asyncio.get_running_loop()
        if sock is not None:
            self.listener = await loop.create_server(lambda: ClientConnection(self), sock=sock)
        else:
            self.listener = await loop.create_server(lambda: ClientConnection(self), self.config.host, self.config.port,
                                                     backlog=1024)
        if self.gateway.dashboard is not None:
            self.gateway.dashboard.start()  # with --workers: shares its live numbers with the other workers
        return self.listener.sockets[0].getsockname()[1]

    def admit(self, connection: ClientConnection) -> bool:
        """Count a new connection in, or (over MAX_CONNECTIONS) answer it 503 and close it before reading anything."""
        if len(self.connections) >= self.config.max_connections:
            connection.transport.write(TOO_MANY_CONNECTIONS_RESPONSE)
            connection.transport.close()
            return False
        self.connections.add(connection)
        self.gateway.metrics.add("switchboard_open_connections", 1)
        return True

    def forget(self, connection: ClientConnection) -> None:
        """A connection closed."""
        self.connections.discard(connection)
        self.gateway.metrics.add("switchboard_open_connections", -1)

    async def shutdown(self) -> None:
        """Stop accepting, close idle connections, let busy ones finish for the grace period, then cancel."""
        self.closing = True
        if self.listener is not None:
            self.listener.close()
        for connection in list(self.connections):
            if connection.idle:
                connection.close()
        busy = [connection.handler for connection in self.connections if connection.handler is not None]
        if busy:
            log.info("waiting up to %.0fs for %d in-flight request(s)", self.config.shutdown_grace, len(busy))
            _, pending = await asyncio.wait(busy, timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        for connection in list(self.connections):
            connection.close()  # those still reading a request
        await asyncio.sleep(0)  # let the transports close
        if self.gateway.dashboard is not None:
            await self.gateway.dashboard.stop()  # the other workers stop counting this one's numbers
        await self.gateway.client.aclose()
        if self.gateway.ledger is not None:
            self.gateway.ledger.close()  # writes what is pending: a clean shutdown loses no usage


def banner(config: Config, gateway: Gateway, port: int) -> Verbatim:
    """What the server says at start, one setting a line: logged with its line breaks (`Verbatim`)."""
    lines = [f"switchboard {VERSION} listening on http://{config.host}:{port}"]
    builtin = {spec.name for spec in provider_specs() if spec.builtin}
    for name, provider in gateway.providers.items():
        if name not in builtin:
            lines.append(f"  provider {name}: {provider.describe()}")
            if provider.keys is not None:
                lines.append(f"    {provider.keys.describe()}")
    if gateway.echo_fallback:
        lines.append("  !! NO UPSTREAM CONFIGURED: answering with the built-in echo provider.")
        real = [spec.variables for spec in provider_specs() if not spec.builtin]
        lines.append("  !! To use a model set one of: " + "; ".join(real))
    preferred = gateway.routing.preferred
    lines.append(f"  preferred provider: {preferred}")
    if preferred not in gateway.providers:
        lines.append(f"  !! PREFERRED_PROVIDER names {preferred}, which is not configured: set {provider_variables(preferred)}")
    if config.proxies is not None:
        lines.append(f"  outbound proxy: {config.proxies!r}")
    lines += [f"  {line}" for line in gateway.routing.describe()]
    lines += [f"  request class {line}" for line in config.route_classes.describe()]
    if gateway.ledger is not None:
        lines.append(f"  usage ledger: {os.path.abspath(gateway.ledger.path)}")
    elif (config.usage_db or "").lower() == "off":
        lines.append("  usage ledger: off (USAGE_DB=off)")
    if config.ignored_tier_settings:
        lines.append(f"  note: {', '.join(config.ignored_tier_settings)} not used: {preferred} takes Claude model names "
                     "as requested (remap one with MODEL_ALIASES, e.g. MODEL_ALIASES=claude-opus-4-1=claude-sonnet-4-5)")
    if config.default_model:
        lines.append(f"  a request without a model -> {config.default_model} (MODEL_NAME)")
    if config.dashboard:
        lines.append(f"  dashboard: http://{config.host}:{port}/dashboard")
    lines.append(f"  inbound auth: {'a key required (PROXY_API_KEY / ANTHROPIC_AUTH_TOKEN)' if config.proxy_api_keys else 'none (loopback only)' if config.is_loopback() else 'none (ALLOW_ANONYMOUS=true)'}")
    return Verbatim("\n".join(lines))


async def serve(server: Server, *, stop: asyncio.Event | None = None, sock: socket.socket | None = None,
                quiet: bool = False) -> None:
    """Run the server until SIGTERM/SIGINT (or `stop` is set), then shut down gracefully."""
    config = server.config
    port = await server.start(sock)
    if not quiet:
        log.info("%s", banner(config, server.gateway, port))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await server.shutdown()
