"""The byte pipe to an origin: TCP, TLS, through a CONNECT tunnel when a proxy is set; phase-mapped
connect errors.

upstreams/http.py speaks HTTP over what this module opens, and pools it; this module knows nothing
of requests, responses or h11 state.

Policies:
- TLS: one cached SSLContext per CA bundle (certifi unless `ca_file`), CERT_REQUIRED, hostname
  checking, SNI = origin host, ALPN "http/1.1". Verification is never turned off.
- `connect_timeout` covers TCP connect plus the TLS handshake; through a proxy it covers TCP to the
  proxy, CONNECT and the TLS handshake together.
- Through a proxy (upstreams/outbound_proxy.py holds its rules): an https origin's socket is TCP to
  the proxy, a CONNECT tunnel, then TLS inside it with SNI and certificate checks for the ORIGIN
  name; a plain-http origin's socket is TCP to the proxy, which then gets absolute-form requests.
- Reading: bytes are buffered as they arrive, so a read can wait with a timeout and the pool can ask
  whether anything (bytes, EOF, reset) came while the connection sat idle. Above
  READ_HIGH_WATER_BYTES unread the socket stops being read until the reader catches up.
- A read timeout costs no timer per read: one timer per connection re-arms itself to the latest
  deadline when it fires early (deadlines only move later while a client's read_timeout is fixed).
- Connect errors are mapped here, one type per phase: UpstreamTimeout (504) for a timeout,
  UpstreamUnavailable (502) for anything else. Messages are sentences naming the origin and, when
  there is one, the proxy by host:port only (never its credentials).

Known shortcuts:
- No happy eyeballs: a host's addresses are tried one after another within the one
  `connect_timeout`, so an unreachable first address can use all of it.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from translate.errors import ProxyError, UpstreamTimeout, UpstreamUnavailable
from upstreams.outbound_proxy import ProxyEndpoint, connect_tunnel

READ_CHUNK_BYTES = 64 * 1024
# Stop reading from the socket when this much is buffered and unread; resume below the low mark.
READ_HIGH_WATER_BYTES = 4 * READ_CHUNK_BYTES
READ_LOW_WATER_BYTES = READ_CHUNK_BYTES
DEFAULT_PORTS = {"http": 80, "https": 443}
# asyncio's own TLS handshake timeout, beyond ours: ours must fire first, since asyncio's ends in a
# vaguer ConnectionAbortedError.
TLS_HANDSHAKE_MARGIN_SECONDS = 1.0
# A timer may fire this much before its deadline (asyncio runs timers due within its clock
# resolution); counting that as on time avoids re-arming for a sliver.
TIMER_SLACK_SECONDS = 0.001


# ---------------------------------------------------------------------------------------------
# Origins and URLs
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying TLS client context for the CA bundle (certifi's when None), built once per bundle.

    Raises OSError or ssl.SSLError when the bundle cannot be loaded.
    """
    if ca_file is None:
        import certifi  # here, not at the top: a gateway with only plain-http upstreams never loads it

        ca_file = certifi.where()
    context = ssl.create_default_context(cafile=ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.set_alpn_protocols(["http/1.1"])
    return context


# ---------------------------------------------------------------------------------------------
# The protocol: buffered reads with a timeout, flow control both ways
# ---------------------------------------------------------------------------------------------


class UpstreamProtocol(asyncio.BufferedProtocol):
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
        # The read waiting for bytes, if any; its deadline (loop time) and the timer that enforces it.
        self._read_waiter: asyncio.Future[None] | None = None
        self._read_deadline = 0.0
        self._read_timer: asyncio.TimerHandle | None = None
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
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
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

    def _check_read_deadline(self) -> None:
        """The read timer fired: time out the waiting read if its deadline passed, else re-arm."""
        self._read_timer = None
        waiter = self._read_waiter
        if waiter is None or waiter.done():
            return  # nobody is waiting: the next read arms a new timer
        loop = asyncio.get_running_loop()
        if loop.time() + TIMER_SLACK_SECONDS >= self._read_deadline:
            self._read_waiter = None
            waiter.set_exception(asyncio.TimeoutError())
        else:
            self._read_timer = loop.call_at(self._read_deadline, self._check_read_deadline)

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
            loop = asyncio.get_running_loop()
            waiter = self._read_waiter = loop.create_future()
            deadline = self._read_deadline = loop.time() + timeout
            # One timer per connection, not one per read (no asyncio.wait_for task, no call_later
            # per read): a timer due no later than this deadline re-arms itself when it fires early.
            timer = self._read_timer
            if timer is None or timer.when() > deadline:
                if timer is not None:
                    timer.cancel()
                self._read_timer = loop.call_at(deadline, self._check_read_deadline)
            await waiter
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


# ---------------------------------------------------------------------------------------------
# Opening: direct, or through a proxy (CONNECT tunnel for https)
# ---------------------------------------------------------------------------------------------


async def open_transport(
    origin: Origin, connect_timeout: float, context: ssl.SSLContext | None, proxy: ProxyEndpoint | None = None
) -> tuple[asyncio.Transport, UpstreamProtocol]:
    """Open a connection that carries requests for `origin`, within `connect_timeout` seconds in all.

    Without `proxy`: TCP to the origin, with TLS for https. With it: TCP to the proxy; for an https
    origin also a CONNECT tunnel with TLS inside for the origin name; a plain-http origin's
    requests then go to the proxy in absolute form (the caller builds them so).
    Raises the raw transport exceptions (OSError, ssl.SSLError, asyncio.TimeoutError), which the
    caller maps with `connect_error`, and UpstreamUnavailable when the proxy cannot be reached or
    refuses the tunnel.
    """
    if proxy is not None:
        return await asyncio.wait_for(_open_via_proxy(origin, proxy, connect_timeout, context), connect_timeout)
    loop = asyncio.get_running_loop()
    tls = origin.scheme == "https"
    transport, protocol = await asyncio.wait_for(
        loop.create_connection(
            UpstreamProtocol,
            origin.host,
            origin.port,
            ssl=context if tls else None,
            server_hostname=origin.host if tls else None,
            ssl_handshake_timeout=connect_timeout + TLS_HANDSHAKE_MARGIN_SECONDS if tls else None,
        ),
        connect_timeout,
    )
    return transport, protocol  # type: ignore[return-value]


async def _open_via_proxy(
    origin: Origin, proxy: ProxyEndpoint, connect_timeout: float, context: ssl.SSLContext
) -> tuple[asyncio.Transport, UpstreamProtocol]:
    """TCP to the proxy, then for https a tunnel with TLS to the origin inside. Raises like
    open_transport, without a timeout of its own (the caller's covers every step)."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_connection(UpstreamProtocol, proxy.host, proxy.port)
    except OSError as exc:
        raise _proxy_connect_error(proxy, origin, exc) from exc
    if origin.scheme == "http":
        return transport, protocol  # type: ignore[return-value]
    try:
        await connect_tunnel(origin, proxy, transport, protocol, connect_timeout)  # type: ignore[arg-type]
        # From here the proxy only relays bytes: TLS runs end to end with the origin, so SNI and
        # the certificate check are for the origin's name, never the proxy's. start_tls hands the
        # decrypted side to a fresh protocol; the raw one has done its job.
        tls_protocol = UpstreamProtocol()
        tls_transport = await loop.start_tls(
            transport,
            tls_protocol,
            context,
            server_hostname=origin.host,
            ssl_handshake_timeout=connect_timeout + TLS_HANDSHAKE_MARGIN_SECONDS,
        )
    except BaseException:
        transport.abort()
        raise
    # start_tls does not call connection_made on the new protocol; it returns the transport instead.
    tls_protocol.connection_made(tls_transport)
    return tls_transport, tls_protocol  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Connect errors, mapped by phase
# ---------------------------------------------------------------------------------------------


def connect_error(
    origin: Origin, exc: BaseException, connect_timeout: float, proxy: ProxyEndpoint | None = None
) -> ProxyError:
    """The ProxyError for a failure while opening a connection (through `proxy` when given).

    Connect failures are retryable (nothing was sent), except a certificate that does not verify:
    another attempt would fail the same way.
    """
    error = _connect_error_of(origin, exc, connect_timeout, proxy)
    error.retryable = not isinstance(exc, ssl.SSLCertVerificationError)
    return error


def _connect_error_of(
    origin: Origin, exc: BaseException, connect_timeout: float, proxy: ProxyEndpoint | None
) -> ProxyError:
    where = f"{origin} via proxy {proxy.address}" if proxy is not None else f"{origin}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return UpstreamTimeout(f"Connecting to {where} timed out after {connect_timeout:g} seconds.")
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
    return UpstreamUnavailable(f"Could not connect to {where}: {describe_transport_error(exc)}.")


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
    return UpstreamUnavailable(
        f"Could not connect to the proxy {proxy.address} (for {origin}): {describe_transport_error(exc)}."
    )


def describe_transport_error(exc: BaseException) -> str:
    """A short description of a transport exception, without a stack trace."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
