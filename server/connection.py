"""The inbound HTTP/1.1 connection: h11 per client socket, limits, deadlines, disconnects, the writer.

`ClientConnection` is an asyncio Protocol: bytes arrive in `data_received`, h11 parses them, and
once a request is complete one task serves it (the gateway's handler) while the connection keeps
watching the socket. `ResponseWriter` frames the answer itself, whole or chunked.

Policies:
- Limits: the request head (request line and headers) may hold at most MAX_HEADER_BYTES and
  MAX_HEADERS fields, the request line at most MAX_REQUEST_LINE_BYTES; once its first byte arrived
  the head must be complete within HEADER_TIMEOUT and the body within BODY_TIMEOUT; a new
  connection must send its first byte within IDLE_FIRST_BYTE_TIMEOUT, and an idle keep-alive
  connection is closed after KEEPALIVE_IDLE_TIMEOUT. Deadlines are timers on the loop, armed only
  while they can fire. A chunk whose declared size the body limit cannot hold is refused when its
  size line arrives, not after waiting for its bytes.
- Strict heads: only HTTP/1.0 and HTTP/1.1 are served (others get 505); a header value with a control
  character other than HTAB is a 400 naming the header, and the values forwarded upstream
  (`anthropic-version`, `anthropic-beta`) must be visible ASCII.
- h11 parses every request; responses are framed here (status line, our own headers, Content-Length
  or chunked), because every header we write is either ours or an upstream's that h11 already
  parsed and checked. h11 only sees the next request: each request/response cycle gets a fresh
  h11 connection fed the bytes the previous one had not used (pipelining keeps working).
- Errors are rendered in exactly one place (`error_response`), in the envelope of the front dialect
  the request's path belongs to; inside a started stream they become the front's stream error.
  Errors before a head is complete take the path from the request line received so far.
  Clients never see stack traces; no exception escapes.
- Every request whose head was read gets one access line (`gateway.finish`), refused or abandoned
  ones included; bytes that never became a request get an info line instead.
- When the client goes away (EOF or reset) while its request is served, the handler is cancelled at
  once, and with it the upstream request: its connection is closed, not pooled, so the user stops
  paying for tokens nobody reads.
- Backpressure: every write waits while the transport's buffer is above its high-water mark, so a
  slow client slows the upstream read.

Known shortcuts: HTTP/1.1 only (no h2); pipelined requests are served one after another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from collections.abc import Callable
from typing import TYPE_CHECKING

import h11

from translate.dialects import ANTHROPIC, Dialect, front_for_path
from translate.errors import InvalidRequest, ProxyError, RequestTooLarge, UpstreamTimeout
from translate.usage import Usage
from upstreams.anthropic import FORWARDED_CLIENT_HEADERS
from upstreams.routing import Route

if TYPE_CHECKING:
    from server.listener import Server

log = logging.getLogger("switchboard")
access_log = logging.getLogger("switchboard.access")

SECONDS = 1.0
KEEPALIVE_IDLE_TIMEOUT = 120 * SECONDS
MAX_REQUEST_LINE_BYTES = 8 * 1024
# h11 parses any `HTTP/d.d`. RFC 9110 15.6.6: "The 505 (HTTP Version Not Supported) status code
# indicates that the server does not support, or refuses to support, the major version of HTTP that
# was used in the request message." We also refuse minor versions nobody defined (HTTP/1.2), where
# RFC 9112 2.3 would have us serve them as 1.1: no real client sends one.
SERVED_HTTP_VERSIONS = (b"1.1", b"1.0")
# RFC 9110 5.5: a field value is visible characters, SP, HTAB and obs-text (0x80-0xff). h11 refuses
# NUL, CR, LF, VT and FF; the other controls (DEL included) pass it, and are refused here.
FORBIDDEN_FIELD_VALUE_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# A chunk size needing more than 16 hex digits is malformed; h11 reads up to 20 and waits for the bytes.
MAX_CHUNK_SIZE = 16**16 - 1
# Client headers whose values reach an upstream as sent (Anthropic passthrough), so they must be visible
# ASCII. The provider's own list; importing it costs nothing, as reading the settings at start imports
# every provider module.
ASCII_ONLY_HEADERS = FORWARDED_CLIENT_HEADERS
# Bytes a client may send ahead (pipelining) while its request is served, before reading pauses.
MAX_PIPELINED_BYTES = 256 * 1024
JSON_HEADERS = [("content-type", "application/json")]
SSE_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    request_id: str
    started: float
    # The dialect the client speaks, from the path: the envelope its errors are rendered in.
    front: Dialect = ANTHROPIC
    # Filled in while handling, for the access line and metrics.
    route: Route | None = None
    fallback: int = 0  # position of the answering route in [primary, *FALLBACK_MODELS]
    stream: bool = False
    status: int = 0
    usage: Usage = field(default_factory=Usage)
    query: str = ""  # after the `?` of the target, raw (routing ignores it)
    model_defaulted: bool = False  # the body named no model: MODEL_NAME was put in (the raw body lacks it)
    upstream: object | None = None  # the upstream response being read (an UpstreamResponse), to abort at once
    client: str = "-"  # who sent it: the name of its inbound key ("default" unnamed or without keys)
    admin: bool = False  # its key is an ADMIN_API_KEY (or no key is configured): sees every client's usage
    route_rule: str = "default"  # what chose the route: a request-class rule (ROUTE_*), else "default"
    error: str | None = None  # the message of the error it was answered with (masked), for the dashboard


def error_response(front: Dialect, error: ProxyError) -> tuple[int, list[tuple[str, str]], bytes]:
    """The one place a ProxyError becomes an HTTP response, in the front dialect's envelope.

    An error that carries the upstream's own response and comes from a same-dialect (passthrough)
    upstream is returned as the upstream sent it.
    """
    headers = [("content-type", "application/json")]
    if error.upstream_body is not None and getattr(error, "passthrough", False):
        headers = [("content-type", error.upstream_content_type or "application/json")]
        status, body = error.upstream_status or error.status, error.upstream_body
    else:
        status, body = front.render_error(error)
    if error.retry_after:
        headers.append(("retry-after", error.retry_after))
    return status, headers, body


def status_line(status: int) -> str:
    """`HTTP/1.1 404 Not Found` and so on, with the standard reason phrase (some clients show or need it)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            # Statuses outside the standard (529: Anthropic's overloaded); any phrase beats none for some parsers.
            reason = NONSTANDARD_REASONS.get(status, "Unknown")
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n"
    return line


_STATUS_LINES: dict[int, str] = {}
NONSTANDARD_REASONS = {499: "Client Closed Request", 529: "Overloaded"}


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """A status line and header block. Every value is ours or an upstream's that h11 parsed and checked."""
    lines = [status_line(status)]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class SlowClient(ProxyError):
    """The client did not send its request head or body within the deadline (slowloris protection)."""

    status = 408
    error_type = "invalid_request_error"


# =============================================================================================
# The writer
# =============================================================================================


class ResponseWriter:
    """Writes one response on a client connection, whole or as a stream of chunks.

    A stream's head is sent lazily by the first `write`, so until then an error can still be sent
    as a plain HTTP response.
    """

    def __init__(self, connection: ClientConnection, request: Request, extra_headers: list[tuple[str, str]],
                 chunked: bool = True) -> None:
        self.connection = connection
        self.request = request
        self.extra_headers = extra_headers
        self.chunked = chunked  # HTTP/1.0 clients get a stream delimited by the connection's close
        self.close_delimited = False  # such a stream was started: the connection must close after it
        self.started = False  # the response head was sent
        self.complete = False  # the whole response was sent
        self.content_started = False  # a body byte other than a heartbeat was sent
        self.first_content_at: float | None = None
        self.pending_head: tuple[int, list[tuple[str, str]]] | None = None
        # Heartbeats: one timer task per stream, not one per chunk.
        self.last_write = 0.0
        self.at_event_boundary = True  # passthrough relays bytes that may stop inside an event
        self._writing = False
        self._heartbeat: asyncio.Task | None = None

    def start_heartbeat(self, data: bytes, interval: float) -> None:
        """Write `data` after every `interval` seconds without a write, between events, until the end.

        The first heartbeat commits the response head (200, the prepared stream head).
        """
        self.last_write = time.monotonic()
        self._heartbeat = asyncio.ensure_future(self._beat(data, interval))

    # Once the stream's translator runs, it may give heartbeats of its own (Responses: a numbered
    # response.in_progress, since Codex's idle timer ignores SSE comments). Empty bytes: use `data`.
    heartbeat_source: Callable[[], bytes] | None = None

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    async def _beat(self, data: bytes, interval: float) -> None:
        with contextlib.suppress(ConnectionError):
            while not self.complete:
                await asyncio.sleep(max(0.0, self.last_write + interval - time.monotonic()))
                idle = time.monotonic() - self.last_write >= interval
                if idle and self.at_event_boundary and not self._writing and not self.complete:
                    await self.write((self.heartbeat_source and self.heartbeat_source()) or data, heartbeat=True)

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Send a complete response with Content-Length."""
        self.request.status = status
        self.started = self.complete = True
        head = response_head(status, [*headers, *self.extra_headers, ("content-length", str(len(body)))])
        await self.connection.write(head + body if self.request.method != "HEAD" else head)

    def prepare_stream(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Remember the head of a streamed response; the first `write` sends it."""
        self.pending_head = (status, headers)

    async def write(self, chunk: bytes, *, heartbeat: bool = False) -> None:
        """Send one chunk of a streamed body (the head first if not yet sent); waits while the client is slow."""
        self.last_write = time.monotonic()
        if not heartbeat and not self.content_started:
            self.content_started = True
            self.first_content_at = self.last_write
        data = b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.chunked else chunk
        if not self.started:
            status, headers = self.pending_head or (200, SSE_HEADERS)
            self.request.status = status
            self.started = True
            self.close_delimited = not self.chunked
            framing = [("transfer-encoding", "chunked")] if self.chunked else [("connection", "close")]
            data = response_head(status, [*headers, *self.extra_headers, *framing]) + data
        self._writing = True
        try:
            await self.connection.write(data)
        finally:
            self._writing = False

    async def end(self) -> None:
        """Finish a streamed response."""
        if self.started and not self.complete:
            self.complete = True
            if self.chunked:
                await self.connection.write(LAST_CHUNK)


# =============================================================================================
# The connection
# =============================================================================================


class ClientConnection(asyncio.Protocol):
    """Serves one client socket: parse with h11, serve each request with one task, repeat while keep-alive."""

    def __init__(self, server: Server) -> None:
        # Server lifetime.
        self.server = server
        self.config = server.config
        self.gateway = server.gateway
        self.loop = asyncio.get_running_loop()
        # Connection lifetime.
        self.transport: asyncio.Transport | None = None
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes)
        self.accepted = False  # counted in the server's connections (not turned away)
        self.closed = False
        self.write_paused = False
        self.write_resumed: asyncio.Future | None = None
        self.read_paused = False
        self.timer: asyncio.TimerHandle | None = None  # the one deadline armed (see _watch)
        self.timer_kind: str | None = None  # which: "first_byte", "idle", "head" or "body"
        self.reading_head = False  # a head's first byte arrived: HEADER_TIMEOUT runs
        self.fresh = True  # no byte arrived yet: IDLE_FIRST_BYTE_TIMEOUT runs, not KEEPALIVE_IDLE_TIMEOUT
        # Current request.
        self.head_start = b""  # the head's first bytes (its request line), for errors before it is complete
        self.request: Request | None = None
        self.body_parts: list[bytes] = []
        self.body_size = 0
        self.handler: asyncio.Task | None = None
        self.cancelled_for: str | None = None  # why the handler was cancelled: "disconnect" or "timeout"

    @property
    def idle(self) -> bool:
        """Between requests: nothing read of the next one yet."""
        return self.request is None and self.handler is None

    # ---- asyncio Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.server.admit(self):
            return
        self.accepted = True
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:
            # A pipelined next request, held for h11 until this one is answered.
            self.conn.receive_data(data)
            if len(self.conn.trailing_data[0]) > MAX_PIPELINED_BYTES:
                self.read_paused = True
                self.transport.pause_reading()
            return
        if self.request is None:
            self.reading_head = True  # HEADER_TIMEOUT runs from a head's first byte
            self.fresh = False
            # Keep the request line for `_early_error`: usually the one read that holds the whole head
            # (a reference, not a copy); a line arriving in pieces is joined, up to its line end.
            start = self.head_start
            if not start:
                self.head_start = data
            elif len(start) < MAX_REQUEST_LINE_BYTES and b"\n" not in start:
                self.head_start = start + data
        self.conn.receive_data(data)
        self._parse()
        self._watch()

    def eof_received(self) -> bool | None:
        if self.handler is not None:
            self._cancel_handler("disconnect")
        elif self.request is not None or self.conn.their_state is not h11.IDLE:
            self.conn.receive_data(b"")
            self._parse()
            self._watch()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        if self.handler is not None:
            self._cancel_handler("disconnect")
        elif self.request is not None:
            # The client left while sending its body: its head was read, so it gets its access line.
            request, self.request = self.request, None
            request.status = 499
            self.gateway.finish(request, None)
        if self.write_resumed is not None and not self.write_resumed.done():
            self.write_resumed.set_result(None)
        if self.accepted:
            self.server.forget(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.write_resumed is not None and not self.write_resumed.done():
            self.write_resumed.set_result(None)

    # ---- writing ---------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Write, then wait while the client reads slower than we write; ConnectionResetError once it left."""
        if self.closed or self.transport.is_closing():
            raise ConnectionResetError("client disconnected")
        self.transport.write(data)
        if self.write_paused:
            self.write_resumed = self.loop.create_future()
            await self.write_resumed
            if self.closed:
                raise ConnectionResetError("client disconnected")

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.close()

    # ---- deadlines -------------------------------------------------------------------------

    def _watch(self) -> None:
        """Arm the one deadline that applies now (none while a handler runs), unless it already runs.

        A request that arrives whole in one read costs one timer: the idle one, cancelled.
        """
        if self.handler is not None or self.closed or self.transport.is_closing():
            kind = None
        elif self.request is not None:
            kind = "body"
        elif self.reading_head:
            kind = "head"
        else:
            kind = "first_byte" if self.fresh else "idle"
        if kind == self.timer_kind:
            return
        self._disarm()
        if kind == "body":
            self.timer = self.loop.call_later(self.config.body_timeout, self._body_expired)
        elif kind == "head":
            self.timer = self.loop.call_later(self.config.header_timeout, self._head_expired)
        elif kind == "idle":
            self.timer = self.loop.call_later(KEEPALIVE_IDLE_TIMEOUT, self._idle_expired)
        elif kind == "first_byte":
            self.timer = self.loop.call_later(self.config.idle_first_byte_timeout, self._idle_expired)
        self.timer_kind = kind

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.timer_kind = None

    def _idle_expired(self) -> None:
        self.timer = self.timer_kind = None
        self.close()  # quietly: nothing was asked

    def _head_expired(self) -> None:
        self.timer = self.timer_kind = None
        message = f"the request head did not arrive within HEADER_TIMEOUT ({self.config.header_timeout:g} seconds)"
        self._early_error(SlowClient(message), "HEADER_TIMEOUT")

    def _body_expired(self) -> None:
        self.timer = self.timer_kind = None
        message = f"the request body did not arrive within BODY_TIMEOUT ({self.config.body_timeout:g} seconds)"
        self._refuse(SlowClient(message))

    # ---- parsing ---------------------------------------------------------------------------

    def _parse(self) -> None:
        """Take every event h11 can give now; start the handler when a request is complete."""
        # Once refused (closing), the bytes after the refused head are not read: they may hold its
        # body or its EndOfMessage, but no request to serve.
        while self.handler is None and not self.closed and not self.transport.is_closing():
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as error:
                if self.request is None:
                    # The log gets h11's reason without the bytes it quotes (a header line may hold a key).
                    self._early_error(ProxyError(f"malformed HTTP request: {error}", status=error.error_status_hint or 400,
                                                 error_type="invalid_request_error"), str(error).split(":", 1)[0])
                else:  # malformed framing of the body (e.g. a chunk size that is not hex)
                    self._refuse(InvalidRequest(f"malformed HTTP request body: {error}"))
                return
            if event is h11.NEED_DATA:
                if self.request is not None:
                    self._check_chunk_size()
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._begin(event)
            elif isinstance(event, h11.Data):
                self.body_size += len(event.data)
                if self.body_size > self.config.max_request_bytes:
                    self._refuse(RequestTooLarge(f"request body exceeds MAX_REQUEST_BYTES ({self.config.max_request_bytes})"))
                    return
                self.body_parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.request.body = b"".join(self.body_parts)
                self.body_parts = []
                self.handler = self.loop.create_task(self._serve(self.request))
                self.handler.add_done_callback(self._handler_done)
            elif isinstance(event, h11.ConnectionClosed):
                if self.request is not None:
                    self._refuse(InvalidRequest("connection closed before the request body was complete"))
                else:
                    self.close()
                return

    def _begin(self, head: h11.Request) -> None:
        """A request head arrived: check it, then wait for its body under BODY_TIMEOUT."""
        self.reading_head = False
        self.head_start = b""
        path, _, query = head.target.decode("latin-1").partition("?")
        # One pass over the fields: h11's Headers is a Sequence, and every pass costs a call per field.
        headers: dict[str, str] = {}
        size = len(head.method) + len(head.target)
        unusual = False  # a value with a character other than printable ones: HTAB, obs-text or a control
        for name, value in head.headers:
            size += len(name) + len(value) + 4
            text = value.decode("latin-1")
            if not text.isprintable():
                unusual = True
            headers[name.decode("latin-1")] = text
        request_id = "req_" + os.urandom(12).hex()  # as secrets.token_hex, without loading secrets
        self.request = Request(
            method=head.method.decode("ascii", "replace"),
            path=path,
            query=query,
            headers=headers,
            body=b"",
            request_id=request_id,
            started=time.monotonic(),
            front=front_for_path(path),
        )
        self.body_size = 0
        try:
            self._check_head(head, headers, size, unusual)
        except ProxyError as error:
            self._refuse(error)
            return
        if self.conn.they_are_waiting_for_100_continue:
            self.transport.write(CONTINUE_RESPONSE)

    def _check_head(self, head: h11.Request, headers: dict[str, str], size: int, unusual: bool) -> None:
        """Limits and rules on a head h11 accepted; raises the ProxyError to refuse it with.

        `size` is its line and fields in bytes; `unusual` says some field value holds more than
        printable characters, so the values are looked at byte by byte.
        """
        if head.http_version not in SERVED_HTTP_VERSIONS:
            version = head.http_version.decode("ascii")
            raise ProxyError(f"HTTP/{version} is not supported: send HTTP/1.1 (or HTTP/1.0)", status=505,
                             error_type="invalid_request_error")
        if len(head.target) > MAX_REQUEST_LINE_BYTES:
            raise ProxyError(f"request target longer than {MAX_REQUEST_LINE_BYTES} bytes", status=414)
        if len(head.headers) > self.config.max_headers:
            raise ProxyError(f"more than MAX_HEADERS ({self.config.max_headers}) header fields", status=431)
        # h11 bounds a head only while it is incomplete; one that arrived whole in a read is measured here.
        if size > self.config.max_header_bytes:
            raise ProxyError(f"request head larger than MAX_HEADER_BYTES ({self.config.max_header_bytes})", status=431)
        if unusual:
            for name, value in head.headers:  # every field: the dict keeps only the last of a repeated name
                found = FORBIDDEN_FIELD_VALUE_BYTES.search(value)
                if found:
                    raise InvalidRequest(f"{name.decode('ascii')}: header value must not contain control characters "
                                         f"(found 0x{found.group()[0]:02x})")
        for name in ASCII_ONLY_HEADERS:
            value = headers.get(name)
            if value is not None and not value.isascii():  # controls were refused above
                raise InvalidRequest(f"{name}: header value must be visible ASCII")
        declared = headers.get("content-length")
        if declared is not None and "transfer-encoding" in headers:
            # RFC 9112 6.1: a request with both is a smuggling pattern; refuse it and close.
            raise InvalidRequest("a request must not carry both Content-Length and Transfer-Encoding")
        limit = self.config.max_request_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"request body of {int(declared)} bytes exceeds MAX_REQUEST_BYTES ({limit})")

    def _early_error(self, error: ProxyError, reason: str) -> None:
        """Answer bytes that never became a request (malformed, too slow, too large a head), then close.

        No head was read, so there is no access line: an info line says what was refused, and why
        (`reason`, which quotes none of the client's bytes).
        """
        # The dialect is the one of the path on the request line received so far (Anthropic's if none).
        path = self._sniffed_path()
        status, body = front_for_path(path).render_error(error)
        headers = [*JSON_HEADERS, ("content-length", str(len(body))), ("connection", "close")]
        if not self.closed:
            self.transport.write(response_head(status, headers) + body)
            peer = self.transport.get_extra_info("peername")
            log.info("refused before a request head: status=%d client=%s path=%s reason=%s",
                     status, f"{peer[0]}:{peer[1]}" if peer else "-", path or "-", reason)
        self.close()

    def _sniffed_path(self) -> str:
        """The path on the request line received so far ('' when there is none), without the query."""
        line = self.head_start[:MAX_REQUEST_LINE_BYTES].lstrip(b"\r\n").split(b"\n", 1)[0]
        parts = line.split(b" ", 2)
        return parts[1].split(b"?", 1)[0].decode("latin-1") if len(parts) > 1 else ""

    def _check_chunk_size(self) -> None:
        """Refuse a chunk whose declared size the body cannot hold, before waiting for its bytes.

        h11 takes a chunk size of up to 20 hex digits and then waits for that many bytes, so
        `99999999999999999999` would hold the connection until BODY_TIMEOUT. It does not expose the
        size it read: its ChunkedReader keeps what is left of the chunk in `_bytes_in_chunk` (no such
        attribute on the other readers). Should a later h11 rename it, this check does nothing, the
        body limit still applies as the bytes arrive, and tests/test_http_strictness.py fails.
        """
        pending = getattr(getattr(self.conn, "_reader", None), "_bytes_in_chunk", 0)
        if not pending:
            return
        limit = self.config.max_request_bytes
        if pending > MAX_CHUNK_SIZE:
            self._refuse(InvalidRequest("malformed chunk size: more than 16 hex digits"))
        elif self.body_size + pending > limit:
            self._refuse(RequestTooLarge(f"a chunk of {pending} bytes takes the request body past MAX_REQUEST_BYTES ({limit})"))

    def _refuse(self, error: ProxyError) -> None:
        """Answer a request whose head arrived but that cannot be served (limits, framing, slowness), then close."""
        request = self.request
        self.gateway.mask_error(error)
        request.error = error.message
        status, headers, body = error_response(request.front, error)
        request.status = status
        headers = [*headers, ("request-id", request.request_id), ("content-length", str(len(body))), ("connection", "close")]
        if not self.closed:
            self.transport.write(response_head(status, headers) + (body if request.method != "HEAD" else b""))
        self._disarm()
        self.request = None
        self.gateway.finish(request, None)
        self.close()

    # ---- serving ---------------------------------------------------------------------------

    async def _serve(self, request: Request) -> None:
        """Run the gateway's handler for one complete request, report its errors, then go on or close."""
        keep_alive = self._keeps_alive(request)
        extra = [("request-id", request.request_id)]
        if not keep_alive:
            extra.append(("connection", "close"))
        out = ResponseWriter(self, request, extra, chunked=self.conn.their_http_version != b"1.0")
        try:
            try:
                await self._dispatch(request, out)
            except ProxyError as error:
                await self._report(request, out, error)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("request_id=%s unhandled error", request.request_id)
                await self._report(request, out, ProxyError("internal error in the proxy; see its log"))
        except (ConnectionError, asyncio.CancelledError):
            request.status = request.status or 499  # the client left
            keep_alive = False
        except Exception:
            log.exception("request_id=%s could not report an error", request.request_id)
            keep_alive = False
        finally:
            out.stop_heartbeat()
            self.gateway.finish(request, out.first_content_at)
        self._next_cycle(keep_alive and out.complete and not out.close_delimited)

    async def _dispatch(self, request: Request, out: ResponseWriter) -> None:
        """The gateway's handler under REQUEST_TIMEOUT; raises UpstreamTimeout when the deadline cancels it."""
        if not self.config.request_timeout:
            await self.gateway.dispatch(request, out)
            return
        deadline = self.loop.call_later(self.config.request_timeout, self._cancel_handler, "timeout")
        try:
            await self.gateway.dispatch(request, out)
        except asyncio.CancelledError:
            reason, self.cancelled_for = self.cancelled_for, None
            if reason != "timeout":
                raise
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            raise UpstreamTimeout(
                f"the request did not finish within REQUEST_TIMEOUT ({self.config.request_timeout:g} seconds)"
            ) from None
        finally:
            deadline.cancel()

    async def _report(self, request: Request, out: ResponseWriter, error: ProxyError) -> None:
        """Send an error as a response, or, inside a started stream, as the front's stream error event."""
        self.gateway.mask_error(error)
        request.error = error.message
        in_stream = request.stream and getattr(request.front, "upstream_errors_in_stream", False)
        if not out.started and not (in_stream and error.upstream_status is not None):
            await out.send(*error_response(request.front, error))
        elif not out.complete:
            log.warning("request_id=%s stream ended with an error: %s", request.request_id, error.message)
            await out.write(request.front.stream_error(error))
            await out.end()

    def _handler_done(self, handler: asyncio.Task) -> None:
        # A task cancelled before its first step never runs `_serve` at all: the client left (EOF or
        # reset) in the same loop turn its request was completed. Record it as abandoned and close here.
        if handler.cancelled() and handler is self.handler:
            request = self.request
            request.status = 499
            self.gateway.finish(request, None)
            self._next_cycle(False)

    def _keeps_alive(self, request: Request) -> bool:
        if self.server.closing:
            return False
        connection = request.headers.get("connection", "").lower()
        if self.conn.their_http_version == b"1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def _cancel_handler(self, reason: str) -> None:
        if self.handler is not None and not self.handler.done():
            self.cancelled_for = reason
            self.handler.cancel()
            upstream = self.request.upstream if self.request is not None else None
            if reason == "disconnect" and upstream is not None:
                upstream.abort_now()  # now, not turns later when the cancellation reaches it

    def _next_cycle(self, keep_alive: bool) -> None:
        """After a response: close, or start a fresh h11 cycle with the bytes already received."""
        self.handler = None
        self.request = None
        if not keep_alive or self.closed or self.server.closing:
            self.close()
            return
        leftover, closed = self.conn.trailing_data
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.reading_head = bool(leftover or closed)
        self.head_start = leftover
        if self.reading_head:
            self.conn.receive_data(leftover)
            if closed:
                self.conn.receive_data(b"")
            self._parse()
        self._watch()
