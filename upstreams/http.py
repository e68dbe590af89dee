"""The outbound side: an asyncio HTTP/1.1 client on h11 with a per-origin keep-alive pool and TLS.

Policies:
- One `h11.Connection(h11.CLIENT)` per socket. Idle connections wait in a LIFO list per origin
  (scheme, host, port). The pool decides first (reuse, create, close) in plain synchronous code,
  then does the I/O, so no lock is needed on one event loop.
- A connection returns to the pool only when its response body was read to the end and both sides
  allow keep-alive (h11 reaches DONE/DONE). Anything else (body unread, error, cancellation) closes
  the socket at once: cleanup runs on BaseException and re-raises.
- Stale keep-alive: a pooled connection on which anything arrived while idle (EOF, reset, or stray
  bytes such as a server's "408 Request Timeout") is discarded before use. If a reused connection
  still fails before a single response byte arrives, the request is retried ONCE on a fresh
  connection (the server closed it before it could have read the request).
- Idle connections are closed `idle_expiry` seconds after they were pooled (one sweep timer per
  client, due when the oldest expires) and beyond `max_idle_per_origin` (least recently used first).
- Request heads are built here, not by h11, from checked pieces remembered per client (bounded; a
  full cache starts over): per (method, URL) the origin, proxy, request line and Host line; per
  header its line. Names must be tokens and values ASCII without CR, LF, NUL or whitespace at
  either end (h11's own rules; RFC 9110 5.5); anything else raises h11.LocalProtocolError naming
  the header, never its value, and nothing is sent. h11 still tracks every cycle: it is told of
  the request with a stand-in carrying the method, which decides how the response is framed.
  Caller headers h11 acts on (Host, Content-Length, Transfer-Encoding, Connection, Upgrade,
  Expect), a CONNECT, bytes instead of str, or a target or host it must check send the request
  the old way: h11 builds, checks and writes it.
- The socket itself (TCP, TLS, proxy tunnel, connect errors) comes from upstreams/transport.py.
- Timeouts: `connect_timeout` covers opening the socket (see upstreams/transport.py);
  `read_timeout` bounds every wait for upstream bytes (before the response head and between body
  reads) and every drain.
- Errors are mapped at this boundary, one type per phase: UpstreamTimeout (504) for any timeout,
  UpstreamUnavailable (502) for everything else the upstream does wrong. Messages are sentences
  naming the origin, never request headers (they hold keys) or the query string.
- We ask for `accept-encoding: identity`. A gzip or deflate body is decoded anyway (and
  `content-encoding`/`content-length` dropped from the headers); any other encoding is an error,
  since no client may receive a body whose encoding no longer matches its headers.
- Logging: DEBUG lines for connect, reuse and close with the origin (plus "via proxy host:port");
  never headers, bodies or proxy credentials.
- Outbound proxies (PROTOCOLS.md 9): `settings.proxies` chooses the proxy per origin;
  upstreams/outbound_proxy.py holds its rules and upstreams/transport.py opens the tunnel. A
  plain-http origin's requests go to the proxy in absolute form. The proxy is a pure function of the
  origin within one client, so the pool key stays the origin (in effect per proxy and origin) and
  tunnelled connections are reused like direct ones.

Known shortcuts:
- Proxies: see upstreams/outbound_proxy.py. Plain-http origins do not share a proxy connection
  with each other.
- No request pipelining, no `Expect: 100-continue`, no HTTP/2.
- Raw-deflate bodies (no zlib wrapper) are recognised only when the first body read fails as zlib.
- A response head larger than h11's default 16 KiB is rejected as invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import ssl
import zlib
from dataclasses import dataclass
from typing import AsyncIterator

import h11

from translate.errors import ProxyError, UpstreamTimeout, UpstreamUnavailable
from upstreams.outbound_proxy import ProxyEndpoint, ProxySettings, proxy_auth_message
from upstreams.request_heads import RequestHeads
from upstreams.transport import (
    Origin,
    UpstreamProtocol,
    connect_error,
    describe_transport_error,
    open_transport,
    tls_context,
)

logger = logging.getLogger("switchboard.http")

IDLE_SWEEP_SLACK_SECONDS = 0.001  # a connection due this soon goes in the current sweep, not another


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    """Limits for the upstream client. Times are in seconds."""

    connect_timeout: float = 10.0  # TCP connect + TLS handshake
    read_timeout: float = 300.0  # longest upstream silence: before the head or between body reads
    max_idle_per_origin: int = 16  # idle keep-alive connections kept per origin
    idle_expiry: float = 60.0  # how long an idle connection may sit in the pool
    ca_file: str | None = None  # CA bundle; None -> certifi (the caller passes SSL_CERT_FILE here)
    proxies: ProxySettings | None = None  # outbound proxies; None -> always connect directly
    # Cap on a body read whole (`read()`), decoded size: a runaway or hostile upstream cannot take
    # the process's memory. Streams are relayed chunk by chunk and need no cap.
    max_response_bytes: int = 64 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------------------

_END_OF_MESSAGE = h11.EndOfMessage()  # events are immutable: one serves every request


class _Connection:
    """One upstream socket and the h11 state of its current request/response cycle."""

    def __init__(
        self,
        origin: Origin,
        transport: asyncio.Transport,
        protocol: UpstreamProtocol,
        proxy: ProxyEndpoint | None = None,
    ) -> None:
        self.origin = origin
        self.proxy = proxy  # the proxy this socket goes through, if any; fixed per origin in a client
        self.via = f" via proxy {proxy.address}" if proxy is not None else ""  # for log lines
        self.transport = transport
        self.protocol = protocol
        self.h11 = h11.Connection(h11.CLIENT)
        # Per cycle: how many response bytes arrived (zero means the request may be retried).
        self.bytes_received = 0
        # While idle in the pool: since when (loop time), for the pool's expiry sweep.
        self.idle_since = 0.0

    def can_be_reused(self) -> bool:
        """True when the last cycle ended cleanly and nothing unexpected is waiting on the socket."""
        h = self.h11
        if h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            return False
        if h.trailing_data[0] or self.protocol.has_unread_input or self.transport.is_closing():
            return False
        h.start_next_cycle()
        self.bytes_received = 0
        return True

    def is_stale(self) -> bool:
        """True when the connection cannot carry a request after sitting idle."""
        return self.protocol.has_unread_input or self.transport.is_closing()

    async def send_request(self, request: h11.Request, head: bytes | None, body: bytes, timeout: float) -> None:
        """Write the request head and body, then wait for the transport to take them.

        With `head` (from `RequestHeads.prepare`), `request` is its stand-in: h11 learns the method
        and moves to the end of our message, and what it would write for the stand-in is dropped.
        Without it, h11 writes `request` itself.
        """
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        if head is not None:
            self.h11.send(request)
            self.h11.send(_END_OF_MESSAGE)
            self.transport.writelines((head, body) if body else (head,))
        else:
            events: list[h11.Event] = [request]
            if body:
                events.append(h11.Data(data=body))
            events.append(_END_OF_MESSAGE)
            pieces: list[bytes] = []
            for event in events:
                pieces.extend(self.h11.send_with_data_passthrough(event) or ())  # the body is not copied here
            self.transport.writelines(pieces)  # one write for the head (h11 returns a piece per header line)
        await self.protocol.drain(timeout)

    async def receive_event(self, timeout: float, *, read_first: bool = False) -> h11.Event:
        """The next h11 event, reading from the socket as needed. `read_first` skips asking h11
        first, for when the caller knows h11 holds no complete event.

        Raises asyncio.TimeoutError, OSError or h11.RemoteProtocolError; callers map them by phase.
        """
        h = self.h11
        if not read_first:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
        while True:
            chunk = await self.protocol.read(timeout)
            self.bytes_received += len(chunk)
            h.receive_data(chunk)
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]

    def close(self, reason: str) -> None:
        """Close the socket at once (no await, so it is safe in cancellation cleanup)."""
        logger.debug("close origin=%s%s reason=%s", self.origin, self.via, reason)
        # abort(): a failed or abandoned connection has nothing worth flushing, and close() on a
        # TLS transport would wait for the peer's close_notify.
        self.transport.abort()


class _NothingReceived(Exception):
    """A connection broke before any response byte arrived; `error` is what to raise if not retried."""

    def __init__(self, error: ProxyError) -> None:
        super().__init__(error.message)
        self.error = error


# ---------------------------------------------------------------------------------------------
# Response bodies
# ---------------------------------------------------------------------------------------------


class _BodyDecoder:
    """Undo a gzip or deflate content-encoding incrementally."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        # 16 + MAX_WBITS expects a gzip header; MAX_WBITS a zlib wrapper (what "deflate" means).
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(wbits)
        self._started = False

    def decode(self, data: bytes) -> bytes:
        """Decompress one piece of the body. Raises zlib.error on corrupt data."""
        first, self._started = not self._started, True
        try:
            return self._inflater.decompress(data)
        except zlib.error:
            if not (first and self.encoding == "deflate"):
                raise
            # Some servers send raw deflate without the zlib wrapper: retry once as raw.
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflater.decompress(data)

    def flush(self) -> bytes:
        return self._inflater.flush()


class BodyState(enum.Enum):
    """Where a response body is. Transitions: STREAMING -> COMPLETE (read to the end; the
    connection went back to the pool or was closed) or STREAMING -> ABORTED (closed early,
    failed or cancelled; the socket was closed)."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    ABORTED = "aborted"


def _too_large(limit: int) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"the upstream's answer is larger than MAX_RESPONSE_BYTES ({limit} bytes)")


class UpstreamResponse:
    """A response whose head has arrived; the body is read with `read()` or `iter_bytes()`.

    Always finish with `aclose()` (or use `async with`): an unread body closes the socket.
    """

    def __init__(
        self,
        client: HTTPClient,
        connection: _Connection,
        status: int,
        headers: list[tuple[str, str]],
        decoder: _BodyDecoder | None,
    ) -> None:
        self.status = status
        self.headers = headers
        self._client = client
        self._connection = connection
        self._decoder = decoder
        self._state = BodyState.STREAMING

    def header(self, name: str) -> str | None:
        """The first value of the header `name` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    async def read(self) -> bytes:
        """The whole (decoded) body. Raises like `iter_bytes()`, and UpstreamUnavailable (502) when it
        grows past `max_response_bytes` (the connection is then closed)."""
        limit = self._client.settings.max_response_bytes
        if self._decoder is not None or self._state is not BodyState.STREAMING:
            chunks, size = [], 0
            async for chunk in self.iter_bytes():
                size += len(chunk)
                if size > limit:
                    self._abort("body over max_response_bytes")
                    raise _too_large(limit)
                chunks.append(chunk)
            return b"".join(chunks)
        # The common case, without the async generator, and with each body byte copied out of h11's
        # bytearrays once (by the join), not once per chunk and again by the join.
        parts = []
        size = 0
        try:
            while isinstance(event := await self._next_body_event(), h11.Data):
                size += len(event.data)
                if size > limit:
                    raise _too_large(limit)
                parts.append(event.data)
        except BaseException:
            self._abort("body failed, too large or abandoned")
            raise
        self._state = BodyState.COMPLETE
        self._client._release(self._connection)
        return b"".join(parts)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield body chunks as they arrive (decoded when gzip/deflate), never empty ones.

        Raises UpstreamTimeout after `read_timeout` seconds of silence and UpstreamUnavailable when
        the upstream breaks the body; either way (and on cancellation) the socket is closed. At the
        end of the body the connection is released, so `aclose()` afterwards is a no-op.
        """
        if self._state is BodyState.COMPLETE:
            return
        if self._state is BodyState.ABORTED:
            raise RuntimeError("This upstream response was closed before its body was read.")
        connection = self._connection
        read_first = False
        try:
            while True:
                event = await self._next_body_event(read_first)
                if isinstance(event, h11.Data):
                    # Join every body event this read already delivered: one chunk per socket read,
                    # not per HTTP chunk, so the consumer translates and writes once.
                    data, parts = event.data, None
                    while isinstance(event := self._buffered_body_event(), h11.Data):
                        parts = parts or [data]
                        parts.append(event.data)
                    chunk = self._decode(data if parts is None else b"".join(parts))
                    if chunk:
                        yield chunk
                    # h11 said it needs more bytes: read them before asking it again.
                    read_first = event is None
                    if read_first:
                        continue
                if isinstance(event, h11.EndOfMessage):
                    tail = self._decode_tail()
                    # Release before the last yield: a consumer that stops once it has every
                    # byte must not cost us the keep-alive connection.
                    self._state = BodyState.COMPLETE
                    self._client._release(connection)
                    if tail:
                        yield tail
                    return
        except BaseException:
            self._abort("body failed or was abandoned")
            raise

    def _buffered_body_event(self) -> h11.Data | h11.EndOfMessage | None:
        """The next body event already in h11's buffer, or None when more bytes must be read."""
        try:
            event = self._connection.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise UpstreamUnavailable(
                f"The upstream {self._connection.origin} sent an invalid HTTP response body ({exc})."
            ) from exc
        if event is h11.NEED_DATA:
            return None
        if not isinstance(event, (h11.Data, h11.EndOfMessage)):
            raise UpstreamUnavailable(
                f"The upstream {self._connection.origin} sent an unexpected {type(event).__name__} in the response body."
            )
        return event

    async def _next_body_event(self, read_first: bool = False) -> h11.Data | h11.EndOfMessage:
        """The next body event, with transport failures mapped to ProxyErrors."""
        connection = self._connection
        origin = connection.origin
        read_timeout = self._client.settings.read_timeout
        try:
            event = await connection.receive_event(read_timeout, read_first=read_first)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise UpstreamTimeout(
                f"The upstream {origin} sent nothing for {read_timeout:g} seconds "
                "in the middle of the response body."
            ) from exc
        except h11.RemoteProtocolError as exc:
            if connection.h11.trailing_data[1]:  # the upstream closed the connection
                raise UpstreamUnavailable(
                    f"The upstream {origin} closed the connection before the response body was complete."
                ) from exc
            raise UpstreamUnavailable(
                f"The upstream {origin} sent an invalid HTTP response body ({exc})."
            ) from exc
        except OSError as exc:
            raise UpstreamUnavailable(
                f"The connection to {origin} broke in the middle of the response body: {describe_transport_error(exc)}."
            ) from exc
        if not isinstance(event, (h11.Data, h11.EndOfMessage)):
            raise UpstreamUnavailable(
                f"The upstream {origin} sent an unexpected {type(event).__name__} in the response body."
            )
        return event

    def _decode(self, data: bytes) -> bytes:
        if self._decoder is None:
            return bytes(data)  # h11 hands out bytearrays
        try:
            return self._decoder.decode(data)
        except zlib.error as exc:
            raise UpstreamUnavailable(
                f"The upstream {self._connection.origin} sent a corrupt {self._decoder.encoding} response body."
            ) from exc

    def _decode_tail(self) -> bytes:
        if self._decoder is None:
            return b""
        try:
            return self._decoder.flush()
        except zlib.error as exc:
            raise UpstreamUnavailable(
                f"The upstream {self._connection.origin} sent a corrupt {self._decoder.encoding} response body."
            ) from exc

    async def aclose(self) -> None:
        """Release the connection: to the pool if the body was read to the end, else close it."""
        self._abort("response closed before its body was read")

    def abort_now(self) -> None:
        """The client left: close the upstream connection at once, from a transport callback.

        A task's cancellation reaches `aclose()` a loop turn or two later, and closing a transport
        takes one more; on a saturated loop each turn is long (every ready socket is served first).
        Shutting the socket down here sends the FIN now. Nothing happens once the body is complete:
        the connection may then be serving another request from the pool.
        """
        if self._state is not BodyState.STREAMING:
            return
        sock = self._connection.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._abort("the client went away")

    def _abort(self, reason: str) -> None:
        if self._state is not BodyState.STREAMING:
            return
        self._state = BodyState.ABORTED
        self._client._discard(self._connection, reason)

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# ---------------------------------------------------------------------------------------------
# Client and pool
# ---------------------------------------------------------------------------------------------


class HTTPClient:
    """An HTTP/1.1 client with a keep-alive pool per origin. Use from one event loop."""

    def __init__(self, settings: ClientSettings) -> None:
        """Raises OSError or ssl.SSLError when `settings.ca_file` cannot be loaded."""
        self.settings = settings
        # Built now so that a bad CA bundle is a start-up error, and cached across clients.
        # Loading a CA bundle costs milliseconds and megabytes: certifi's waits for the first TLS
        # upstream; a bundle named by SSL_CERT_FILE is loaded now, so a bad one fails at start-up.
        self._tls_context = tls_context(settings.ca_file) if settings.ca_file else None
        # Pool state: idle connections per origin (most recently used last) and those lent out.
        self._idle: dict[Origin, list[_Connection]] = {}
        self._active: set[_Connection] = set()
        self._closed = False
        # One timer for the whole pool, due when the oldest idle connection expires.
        self._sweep_timer: asyncio.TimerHandle | None = None
        # Routes and checked header lines, worked out once and reused by every request.
        self._heads = RequestHeads(settings.proxies)

    # -- public --------------------------------------------------------------------------------

    async def request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> UpstreamResponse:
        """Send a request and return once the response head has arrived.

        The caller reads the body from the returned UpstreamResponse and must `aclose()` it.
        Goes through the proxy `settings.proxies` chooses for the origin, if any.
        Raises ValueError for a URL that is not http(s); UpstreamUnavailable (502) when the origin
        or its proxy cannot be reached, the proxy refuses or wants authentication (407), TLS fails,
        the connection breaks or the response is not HTTP; UpstreamTimeout (504) when connecting
        (through a proxy: TCP, CONNECT and TLS together) or waiting for the head takes too long.
        On any failure or cancellation the connection is closed, never pooled. Headers HTTP does not
        allow (CR, LF or NUL in a value, a non-ASCII value, a Content-Length that does not match the
        body) raise h11.LocalProtocolError before anything is sent: that is a bug in the caller, not
        an upstream failure.
        """
        # Before any I/O, so invalid header names or values fail without touching the pool.
        route, h11_request, head = self._heads.prepare(method, url, headers, body)
        origin, proxy = route.origin, route.proxy
        allow_reuse = True
        while True:  # at most twice: the retry uses a fresh connection, which is never retried
            connection, reused = await self._acquire(origin, proxy, allow_reuse=allow_reuse)
            try:
                return await self._exchange(connection, h11_request, head, body)
            except _NothingReceived as failure:
                self._discard(connection, "broke before any response byte")
                if not reused:
                    raise failure.error from failure.__cause__
                # The server closed the idle connection just as we sent: it cannot have acted on
                # the request, so try once more on a new connection.
                logger.debug("retry origin=%s%s reason=stale keep-alive connection", origin, connection.via)
                allow_reuse = False
            except BaseException:
                self._discard(connection, "request failed or was cancelled")
                raise

    async def aclose(self) -> None:
        """Close every idle connection. From now on nothing is pooled: connections lent out, and
        any opened by later requests during shutdown, are closed when their response ends."""
        self._closed = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        idle = [connection for connections in self._idle.values() for connection in connections]
        self._idle.clear()
        for connection in idle:
            connection.close("client closed")

    def pool_stats(self) -> dict:
        """{"idle": idle connections, "active": connections lent out, "by_origin": {origin: idle}}."""
        by_origin = {str(origin): len(connections) for origin, connections in self._idle.items()}
        return {"idle": sum(by_origin.values()), "active": len(self._active), "by_origin": by_origin}

    # -- pool decisions (synchronous: no I/O, no await) ----------------------------------------

    def _checkout_idle(self, origin: Origin) -> tuple[_Connection | None, list[_Connection]]:
        """Take the most recently used healthy idle connection; also return the stale ones to close."""
        idle = self._idle.get(origin, [])
        stale = []
        chosen = None
        while idle:
            connection = idle.pop()
            if connection.is_stale():
                stale.append(connection)
                continue
            chosen = connection
            break
        if not idle:
            self._idle.pop(origin, None)
        if chosen is not None:
            self._lend(chosen)
        return chosen, stale

    def _lend(self, connection: _Connection) -> None:
        self._active.add(connection)

    def _checkin(self, connection: _Connection) -> list[_Connection]:
        """Put a finished connection back in the pool; return the connections to close."""
        self._active.discard(connection)
        if self._closed or self.settings.max_idle_per_origin <= 0 or not connection.can_be_reused():
            return [connection]
        idle = self._idle.setdefault(connection.origin, [])
        idle.append(connection)
        loop = asyncio.get_running_loop()
        connection.idle_since = loop.time()
        if self._sweep_timer is None:  # else it is due no later than this connection's expiry
            self._sweep_timer = loop.call_at(connection.idle_since + self.settings.idle_expiry, self._sweep)
        surplus = len(idle) - self.settings.max_idle_per_origin
        if surplus > 0:
            evicted = idle[:surplus]  # least recently used first
            del idle[:surplus]
            return evicted
        return []

    def _take_expired(self, now: float) -> tuple[list[_Connection], float | None]:
        """Remove the idle connections whose time is up; also return when the next one's is."""
        cutoff = now - self.settings.idle_expiry + IDLE_SWEEP_SLACK_SECONDS
        expired: list[_Connection] = []
        oldest = None
        for origin, idle in list(self._idle.items()):
            # Each list is in the order the connections were pooled, so the expired ones lead it.
            count = next((i for i, connection in enumerate(idle) if connection.idle_since > cutoff), len(idle))
            expired += idle[:count]
            del idle[:count]
            if not idle:
                del self._idle[origin]
            elif oldest is None or idle[0].idle_since < oldest:
                oldest = idle[0].idle_since
        return expired, None if oldest is None else oldest + self.settings.idle_expiry

    def load_tls(self) -> None:
        """Load certifi's CA bundle now rather than on the first TLS request (at start-up, when a TLS
        upstream is configured). Raises OSError or ssl.SSLError when it cannot be loaded."""
        if self._tls_context is None:
            self._tls_context = tls_context(None)

    # -- pool actions --------------------------------------------------------------------------

    async def _acquire(
        self, origin: Origin, proxy: ProxyEndpoint | None, *, allow_reuse: bool
    ) -> tuple[_Connection, bool]:
        """A connection lent out for one request, and whether it was reused from the pool.

        The pool key is the origin alone: within one client the proxy is a function of the origin.
        """
        if allow_reuse:
            connection, stale = self._checkout_idle(origin)
            for old in stale:
                old.close("stale: closed or spoke while idle")
            if connection is not None:
                logger.debug("reuse origin=%s%s", origin, connection.via)
                return connection, True
        via = f" via proxy {proxy.address}" if proxy is not None else ""
        logger.debug("connect origin=%s%s", origin, via)
        try:
            if self._tls_context is None and origin.scheme == "https":
                self._tls_context = tls_context(None)
            transport, protocol = await open_transport(origin, self.settings.connect_timeout, self._tls_context, proxy)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, TimeoutError) as exc:
            logger.debug("connect failed origin=%s%s error=%s", origin, via, type(exc).__name__)
            raise connect_error(origin, exc, self.settings.connect_timeout, proxy) from exc
        except ProxyError as exc:
            logger.debug("connect failed origin=%s%s error=%s", origin, via, type(exc).__name__)
            raise
        connection = _Connection(origin, transport, protocol, proxy)
        self._lend(connection)
        return connection, False

    def _release(self, connection: _Connection) -> None:
        """Called when a response body was read to the end."""
        for surplus in self._checkin(connection):
            surplus.close("not reusable or beyond max_idle_per_origin")

    def _discard(self, connection: _Connection, reason: str) -> None:
        """Close a lent-out connection that must not be pooled."""
        self._active.discard(connection)
        connection.close(reason)

    def _sweep(self) -> None:
        """Close the idle connections that expired, and set the timer for the next one to."""
        loop = asyncio.get_running_loop()
        expired, next_due = self._take_expired(loop.time())
        self._sweep_timer = None if next_due is None else loop.call_at(next_due, self._sweep)
        for connection in expired:
            connection.close("idle_expiry")

    # -- one exchange --------------------------------------------------------------------------

    async def _exchange(
        self, connection: _Connection, request: h11.Request, head: bytes | None, body: bytes
    ) -> UpstreamResponse:
        """Send the request (see `_Connection.send_request`) and read the response head on one connection.

        Raises _NothingReceived when the connection broke before any response byte (the caller
        may retry), UpstreamTimeout or UpstreamUnavailable otherwise.
        """
        origin = connection.origin
        timeout = self.settings.read_timeout
        try:
            await connection.send_request(request, head, body, timeout)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise UpstreamTimeout(
                f"The upstream {origin} did not accept the request body within {timeout:g} seconds."
            ) from exc
        except OSError as exc:
            raise _NothingReceived(
                UpstreamUnavailable(
                    f"The connection to {origin} broke while sending the request: {describe_transport_error(exc)}."
                )
            ) from exc
        try:
            # h11 holds nothing of this cycle yet: read before asking it for an event.
            event = await connection.receive_event(timeout, read_first=True)
            while not isinstance(event, h11.Response):
                if not isinstance(event, h11.InformationalResponse):
                    raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} before the response")
                event = await connection.receive_event(timeout)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise UpstreamTimeout(f"The upstream {origin} sent no response within {timeout:g} seconds.") from exc
        except (OSError, h11.RemoteProtocolError) as exc:
            if connection.bytes_received == 0:
                raise _NothingReceived(
                    UpstreamUnavailable(f"The upstream {origin} closed the connection without sending a response.")
                ) from exc
            raise UpstreamUnavailable(
                f"The upstream {origin} sent an invalid or incomplete HTTP response ({exc})."
            ) from exc
        if event.status_code == 407 and connection.proxy is not None and origin.scheme == "http":
            # Only a proxy sends 407; passed on, it would ask our client for credentials it has no
            # way to give. (Through a tunnel the proxy answers the CONNECT instead.)
            raise UpstreamUnavailable(proxy_auth_message(connection.proxy, origin))
        # raw_items() is a plain list, cheaper to walk than the Headers sequence; names are tokens
        # (ASCII), so lower() here matches h11's own lower-casing.
        headers = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in event.headers.raw_items()]
        headers, decoder = _decoded_headers(origin, headers)
        return UpstreamResponse(self, connection, event.status_code, headers, decoder)


def _decoded_headers(
    origin: Origin, headers: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], _BodyDecoder | None]:
    """Choose a decoder for the content-encoding and drop the headers it invalidates.

    Raises UpstreamUnavailable for an encoding other than gzip or deflate.
    """
    encodings = [value.strip().lower() for name, value in headers if name == "content-encoding"]
    encodings = [value for value in encodings if value not in ("", "identity")]
    if not encodings:
        return headers, None
    if len(encodings) > 1 or encodings[0] not in ("gzip", "x-gzip", "deflate"):
        raise UpstreamUnavailable(
            f"The upstream {origin} answered with content-encoding {', '.join(encodings)}, which cannot be decoded; "
            "only gzip and deflate are supported."
        )
    kept = [(name, value) for name, value in headers if name not in ("content-encoding", "content-length")]
    return kept, _BodyDecoder(encodings[0])


class MemoryResponse:
    """An upstream response held in memory, with the surface of `upstreams.http.UpstreamResponse`."""

    def __init__(self, status: int, headers: list[tuple[str, str]], chunks: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._chunks = chunks

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> MemoryResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
