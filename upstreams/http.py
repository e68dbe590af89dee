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
- Idle connections are closed `idle_expiry` seconds after they were pooled (a timer per connection)
  and beyond `max_idle_per_origin` (the least recently used goes first).
- TLS: one cached SSLContext per CA bundle (certifi unless `ca_file`), CERT_REQUIRED, hostname
  checking, SNI = origin host, ALPN "http/1.1". Verification is never turned off.
- Timeouts: `connect_timeout` covers TCP connect plus the TLS handshake; `read_timeout` bounds every
  wait for upstream bytes (before the response head and between body reads) and every drain.
- Errors are mapped at this boundary, one type per phase: UpstreamTimeout (504) for any timeout,
  UpstreamUnavailable (502) for everything else the upstream does wrong. Messages are sentences
  naming the origin, never request headers (they hold keys) or the query string.
- We ask for `accept-encoding: identity`. A gzip or deflate body is decoded anyway (and
  `content-encoding`/`content-length` dropped from the headers); any other encoding is an error,
  since no client may receive a body whose encoding no longer matches its headers.
- Logging: DEBUG lines for connect, reuse and close with the origin (plus "via proxy host:port");
  never headers, bodies or proxy credentials.
- Outbound proxies (PROTOCOLS.md 9): `settings.proxies` chooses the proxy per origin, and
  upstreams/outbound_proxy.py holds its rules (environment, NO_PROXY, CONNECT, Proxy-Authorization).
  Here: an https origin's socket is TCP to the proxy, a CONNECT tunnel, then TLS inside it with SNI
  and certificate checks for the ORIGIN name; a plain-http origin's requests go to the proxy. The
  proxy is a pure function of the origin within one client, so the pool key stays the origin (in
  effect per proxy and origin) and tunnelled connections are reused like direct ones.
  `connect_timeout` covers TCP to the proxy, CONNECT and the TLS handshake together. The proxy is
  named by host:port only, never with its credentials.

Known shortcuts:
- Proxies: see upstreams/outbound_proxy.py. Plain-http origins do not share a proxy connection
  with each other.
- No request pipelining, no `Expect: 100-continue`, no HTTP/2.
- Raw-deflate bodies (no zlib wrapper) are recognised only when the first body read fails as zlib.
- A response head larger than h11's default 16 KiB is rejected as invalid.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import logging
import socket
import ssl
import zlib
from dataclasses import dataclass
from typing import AsyncIterator
from urllib.parse import urlsplit

import certifi
import h11

from translate.errors import ProxyError, UpstreamTimeout, UpstreamUnavailable
from upstreams.outbound_proxy import (
    ProxyEndpoint,
    ProxySettings,
    connect_tunnel,
    prepare_forwarded_request,
    proxy_auth_message,
)

logger = logging.getLogger("switchboard.http")

READ_CHUNK_BYTES = 64 * 1024
# Stop reading from the socket when this much is buffered and unread; resume below the low mark.
READ_HIGH_WATER_BYTES = 4 * READ_CHUNK_BYTES
READ_LOW_WATER_BYTES = READ_CHUNK_BYTES
DEFAULT_PORTS = {"http": 80, "https": 443}


# ---------------------------------------------------------------------------------------------
# Settings and URLs
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


@dataclass(frozen=True)
class Origin:
    """Where a connection goes: the pool key. `host` is lower-case, IPv6 without brackets."""

    scheme: str
    host: str
    port: int

    @property
    def host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def host_header(self) -> str:
        """The Host header value: the port is left out when it is the scheme's default."""
        if self.port == DEFAULT_PORTS[self.scheme]:
            return self.host_for_url
        return f"{self.host_for_url}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_for_url}:{self.port}"


def parse_url(url: str) -> tuple[Origin, str]:
    """Split an absolute http(s) URL into its origin and request target (path + query).

    Raises ValueError for another scheme, a missing host, a bad port or credentials in the URL.
    The message never repeats the URL, whose query may hold a key.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"Upstream URLs must start with http:// or https://, not {scheme or 'nothing'}.")
    if parts.username is not None or parts.password is not None:
        raise ValueError("Upstream URLs must not carry credentials; send them in headers.")
    host = parts.hostname
    if not host:
        raise ValueError("The upstream URL has no host.")
    port = parts.port or DEFAULT_PORTS[scheme]  # .port raises ValueError when it is not a number
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return Origin(scheme, host, port), target


def _request_headers(
    origin: Origin, headers: list[tuple[str, str]], method: str, body: bytes
) -> list[tuple[str, str]]:
    """The caller's headers as given, plus Host, Content-Length and Accept-Encoding when absent."""
    present = {name.lower() for name, _ in headers}
    added = []
    if "host" not in present:
        added.append(("host", origin.host_header))
    if "content-length" not in present and "transfer-encoding" not in present:
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            added.append(("content-length", str(len(body))))
    if "accept-encoding" not in present:
        # Identity keeps SSE flowing chunk by chunk; we can only undo gzip and deflate anyway.
        added.append(("accept-encoding", "identity"))
    return added + list(headers)


# ---------------------------------------------------------------------------------------------
# Transports: direct, or through a proxy (CONNECT tunnel for https)
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying TLS client context for the CA bundle (certifi's when None), built once per bundle.

    Raises OSError or ssl.SSLError when the bundle cannot be loaded.
    """
    context = ssl.create_default_context(cafile=ca_file or certifi.where())
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.set_alpn_protocols(["http/1.1"])
    return context


def _time_out(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class _UpstreamProtocol(asyncio.BufferedProtocol):
    """Buffers what the upstream sends so that reads can wait with a timeout, and tells the pool
    whether anything (bytes, EOF, reset) arrived while the connection sat idle, which
    asyncio.StreamReader cannot say without touching its internals."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # Receiving: one fixed buffer for the socket to read into, and unread chunks.
        self._receive_buffer = memoryview(bytearray(READ_CHUNK_BYTES))
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered_bytes = 0
        self._reading_paused = False
        self._eof = False
        self._error: BaseException | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        # Sending: flow control from the transport.
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._receive_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._chunks.append(bytes(self._receive_buffer[:nbytes]))
        self._buffered_bytes += nbytes
        if self._buffered_bytes > READ_HIGH_WATER_BYTES and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return False  # close our side too: HTTP/1.1 has no use for a half-open upstream socket

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if exc is not None:
            self._error = exc
        self._wake_reader()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc or ConnectionResetError("connection closed"))

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_reader(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- what the connection calls -------------------------------------------------------------

    @property
    def has_unread_input(self) -> bool:
        """True once anything arrived that nobody read: bytes, EOF or a reset."""
        return bool(self._chunks) or self._eof

    async def read(self, timeout: float) -> bytes:
        """The next chunk the socket delivered (at most READ_CHUNK_BYTES); b"" at EOF.

        Raises asyncio.TimeoutError after `timeout` seconds of silence, or the OSError that broke
        the connection.
        """
        if not self._chunks and not self._eof:
            # A timer on the waiter, not asyncio.wait_for: no extra task per read on the hot path.
            loop = asyncio.get_running_loop()
            waiter = self._read_waiter = loop.create_future()
            timer = loop.call_later(timeout, _time_out, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
        if self._chunks:
            chunk = self._chunks.popleft()
            self._buffered_bytes -= len(chunk)
            if self._reading_paused and self._buffered_bytes <= READ_LOW_WATER_BYTES:
                self._reading_paused = False
                self.transport.resume_reading()
            return chunk
        if self._error is not None:
            raise self._error
        return b""

    async def drain(self, timeout: float) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        if self._writing_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self._drain_waiter, timeout)


async def open_transport(
    origin: Origin, settings: ClientSettings, context: ssl.SSLContext, proxy: ProxyEndpoint | None = None
) -> tuple[asyncio.Transport, _UpstreamProtocol]:
    """Open a connection that carries requests for `origin`, within `connect_timeout` in all.

    Without `proxy`: TCP to the origin, with TLS for https. With it: TCP to the proxy; for an https
    origin also a CONNECT tunnel with TLS inside for the origin name; a plain-http origin's
    requests then go to the proxy in absolute form (the caller builds them so).
    Raises the raw transport exceptions (OSError, ssl.SSLError, asyncio.TimeoutError), which the
    caller maps, and UpstreamUnavailable when the proxy cannot be reached or refuses the tunnel.
    """
    if proxy is not None:
        return await asyncio.wait_for(_open_via_proxy(origin, proxy, settings, context), settings.connect_timeout)
    loop = asyncio.get_running_loop()
    tls = origin.scheme == "https"
    transport, protocol = await asyncio.wait_for(
        loop.create_connection(
            _UpstreamProtocol,
            origin.host,
            origin.port,
            ssl=context if tls else None,
            server_hostname=origin.host if tls else None,
            # Our own timeout must fire first: asyncio's ends in a vaguer ConnectionAbortedError.
            ssl_handshake_timeout=settings.connect_timeout + 1.0 if tls else None,
        ),
        settings.connect_timeout,
    )
    return transport, protocol  # type: ignore[return-value]


async def _open_via_proxy(
    origin: Origin, proxy: ProxyEndpoint, settings: ClientSettings, context: ssl.SSLContext
) -> tuple[asyncio.Transport, _UpstreamProtocol]:
    """TCP to the proxy, then for https a tunnel with TLS to the origin inside. Raises like
    open_transport, without a timeout of its own (the caller's covers every step)."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_connection(_UpstreamProtocol, proxy.host, proxy.port)
    except OSError as exc:
        raise _proxy_connect_error(proxy, origin, exc) from exc
    if origin.scheme == "http":
        return transport, protocol  # type: ignore[return-value]
    try:
        await connect_tunnel(origin, proxy, transport, protocol, settings.connect_timeout)  # type: ignore[arg-type]
        # From here the proxy only relays bytes: TLS runs end to end with the origin, so SNI and
        # the certificate check are for the origin's name, never the proxy's. start_tls hands the
        # decrypted side to a fresh protocol; the raw one has done its job.
        tls_protocol = _UpstreamProtocol()
        tls_transport = await loop.start_tls(
            transport,
            tls_protocol,
            context,
            server_hostname=origin.host,
            ssl_handshake_timeout=settings.connect_timeout + 1.0,  # ours fires first, as above
        )
    except BaseException:
        transport.abort()
        raise
    # start_tls does not call connection_made on the new protocol; it returns the transport instead.
    tls_protocol.connection_made(tls_transport)
    return tls_transport, tls_protocol  # type: ignore[return-value]


def _proxy_connect_error(proxy: ProxyEndpoint, origin: Origin, exc: OSError) -> ProxyError:
    """The ProxyError for a failed TCP connection to the proxy itself (retryable: nothing was sent)."""
    error = _proxy_connect_error_of(proxy, origin, exc)
    error.retryable = True
    return error


def _proxy_connect_error_of(proxy: ProxyEndpoint, origin: Origin, exc: OSError) -> ProxyError:
    if isinstance(exc, socket.gaierror):
        return UpstreamUnavailable(
            f"The proxy host of {proxy.address} (for {origin}) could not be resolved: {exc.strerror or exc}."
        )
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamUnavailable(f"The proxy {proxy.address} (for {origin}) refused the connection.")
    return UpstreamUnavailable(f"Could not connect to the proxy {proxy.address} (for {origin}): {_describe(exc)}.")


def _connect_error(
    origin: Origin, exc: BaseException, settings: ClientSettings, proxy: ProxyEndpoint | None = None
) -> ProxyError:
    """The ProxyError for a failure while opening a connection (through `proxy` when given).

    Connect failures are retryable (nothing was sent), except a certificate that does not verify:
    another attempt would fail the same way.
    """
    error = _connect_error_of(origin, exc, settings, proxy)
    error.retryable = not isinstance(exc, ssl.SSLCertVerificationError)
    return error


def _connect_error_of(
    origin: Origin, exc: BaseException, settings: ClientSettings, proxy: ProxyEndpoint | None = None
) -> ProxyError:
    where = f"{origin} via proxy {proxy.address}" if proxy is not None else f"{origin}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return UpstreamTimeout(f"Connecting to {where} timed out after {settings.connect_timeout:g} seconds.")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return UpstreamUnavailable(
            f"The TLS certificate of {where} could not be verified: {exc.verify_message or exc.reason}."
        )
    if isinstance(exc, ssl.SSLError):
        return UpstreamUnavailable(f"The TLS handshake with {where} failed: {exc.reason or exc}.")
    if isinstance(exc, socket.gaierror):
        return UpstreamUnavailable(f"The host of {origin} could not be resolved: {exc.strerror or exc}.")
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamUnavailable(f"The upstream {origin} refused the connection.")
    return UpstreamUnavailable(f"Could not connect to {where}: {_describe(exc)}.")


def _describe(exc: BaseException) -> str:
    """A short description of a transport exception, without a stack trace."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------------------


class _Connection:
    """One upstream socket and the h11 state of its current request/response cycle."""

    def __init__(
        self,
        origin: Origin,
        transport: asyncio.Transport,
        protocol: _UpstreamProtocol,
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
        # While idle in the pool: the timer that expires it.
        self.expiry_timer: asyncio.TimerHandle | None = None

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

    async def send_request(self, request: h11.Request, body: bytes, timeout: float) -> None:
        """Write the request head and body, then wait for the transport to take them."""
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        events: list[h11.Event] = [request]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        pieces: list[bytes] = []
        for event in events:
            pieces.extend(self.h11.send_with_data_passthrough(event) or ())  # the body is not copied here
        self.transport.writelines(pieces)  # one write for the head (h11 returns a piece per header line)
        await self.protocol.drain(timeout)

    async def receive_event(self, timeout: float) -> h11.Event:
        """The next h11 event, reading from the socket as needed.

        Raises asyncio.TimeoutError, OSError or h11.RemoteProtocolError; callers map them by phase.
        """
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            chunk = await self.protocol.read(timeout)
            self.bytes_received += len(chunk)
            self.h11.receive_data(chunk)

    def close(self, reason: str) -> None:
        """Close the socket at once (no await, so it is safe in cancellation cleanup)."""
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None
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
        """The whole (decoded) body. Raises like `iter_bytes()`."""
        return b"".join([chunk async for chunk in self.iter_bytes()])

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
        try:
            while True:
                event = await self._next_body_event()
                if isinstance(event, h11.Data):
                    # Join every body event this read already delivered: one chunk per socket read,
                    # not per HTTP chunk, so the consumer translates and writes once.
                    parts = [event.data]
                    while isinstance(event := self._buffered_body_event(), h11.Data):
                        parts.append(event.data)
                    chunk = self._decode(parts[0] if len(parts) == 1 else b"".join(parts))
                    if chunk:
                        yield chunk
                    if event is None:
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

    async def _next_body_event(self) -> h11.Data | h11.EndOfMessage:
        """The next body event, with transport failures mapped to ProxyErrors."""
        connection = self._connection
        origin = connection.origin
        read_timeout = self._client.settings.read_timeout
        try:
            event = await connection.receive_event(read_timeout)
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
                f"The connection to {origin} broke in the middle of the response body: {_describe(exc)}."
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
        self._tls_context = tls_context(settings.ca_file)
        # Pool state: idle connections per origin (most recently used last) and those lent out.
        self._idle: dict[Origin, list[_Connection]] = {}
        self._active: set[_Connection] = set()
        self._closed = False

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
        On any failure or cancellation the connection is closed, never pooled. Headers h11 refuses (a
        newline in a value, a Content-Length that does not match the body) raise
        h11.LocalProtocolError: that is a bug in the caller, not an upstream failure.
        """
        origin, target = parse_url(url)
        proxies = self.settings.proxies
        proxy = proxies.endpoint_for(origin) if proxies is not None else None
        request_headers = _request_headers(origin, headers, method, body)
        if proxy is not None and origin.scheme == "http":
            target = prepare_forwarded_request(origin, target, request_headers, proxy)
        # Built before any I/O, so invalid header names or values fail without touching the pool.
        h11_request = h11.Request(method=method, target=target, headers=request_headers)
        allow_reuse = True
        while True:  # at most twice: the retry uses a fresh connection, which is never retried
            connection, reused = await self._acquire(origin, proxy, allow_reuse=allow_reuse)
            try:
                return await self._exchange(connection, h11_request, body)
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
        if connection.expiry_timer is not None:
            connection.expiry_timer.cancel()
            connection.expiry_timer = None
        self._active.add(connection)

    def _checkin(self, connection: _Connection) -> list[_Connection]:
        """Put a finished connection back in the pool; return the connections to close."""
        self._active.discard(connection)
        if self._closed or self.settings.max_idle_per_origin <= 0 or not connection.can_be_reused():
            return [connection]
        idle = self._idle.setdefault(connection.origin, [])
        idle.append(connection)
        connection.expiry_timer = asyncio.get_running_loop().call_later(
            self.settings.idle_expiry, self._expire, connection
        )
        surplus = len(idle) - self.settings.max_idle_per_origin
        if surplus > 0:
            evicted = idle[:surplus]  # least recently used first
            del idle[:surplus]
            return evicted
        return []

    def _remove_idle(self, connection: _Connection) -> bool:
        idle = self._idle.get(connection.origin)
        if idle is None or connection not in idle:
            return False
        idle.remove(connection)
        if not idle:
            del self._idle[connection.origin]
        return True

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
            transport, protocol = await open_transport(origin, self.settings, self._tls_context, proxy)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, TimeoutError) as exc:
            logger.debug("connect failed origin=%s%s error=%s", origin, via, type(exc).__name__)
            raise _connect_error(origin, exc, self.settings, proxy) from exc
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

    def _expire(self, connection: _Connection) -> None:
        connection.expiry_timer = None
        if self._remove_idle(connection):
            connection.close("idle_expiry")

    # -- one exchange --------------------------------------------------------------------------

    async def _exchange(self, connection: _Connection, request: h11.Request, body: bytes) -> UpstreamResponse:
        """Send the request and read the response head on one connection.

        Raises _NothingReceived when the connection broke before any response byte (the caller
        may retry), UpstreamTimeout or UpstreamUnavailable otherwise.
        """
        origin = connection.origin
        timeout = self.settings.read_timeout
        try:
            await connection.send_request(request, body, timeout)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise UpstreamTimeout(
                f"The upstream {origin} did not accept the request body within {timeout:g} seconds."
            ) from exc
        except OSError as exc:
            raise _NothingReceived(
                UpstreamUnavailable(
                    f"The connection to {origin} broke while sending the request: {_describe(exc)}."
                )
            ) from exc
        try:
            while True:
                event = await connection.receive_event(timeout)
                if isinstance(event, h11.Response):
                    break
                if not isinstance(event, h11.InformationalResponse):
                    raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} before the response")
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
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers]
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
