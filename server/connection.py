"""The inbound HTTP/1.1 connection: h11 per client socket, limits, deadlines, disconnects, the writer.

Serves one client socket: parse requests with h11, hand each to the gateway, write the answer whole
or as a stream, repeat while keep-alive, and write one access line per request.

Policies:
- Limits: the request head (request line and headers) may hold at most MAX_HEADER_BYTES and
  MAX_HEADERS fields, the request line at most MAX_REQUEST_LINE_BYTES; once its first byte arrived
  the head must be complete within HEADER_TIMEOUT and the body within BODY_TIMEOUT; an idle
  keep-alive connection is closed after KEEPALIVE_IDLE_TIMEOUT.
- Errors are rendered in exactly one place (`error_response`), in the envelope of the front
  dialect the request's path belongs to; inside a started stream they become the front's stream
  error. Clients never see stack traces; no exception escapes a connection's task.
- When the client goes away, the handler is cancelled at once, and with it the upstream request:
  its connection is closed, not pooled, so the user stops paying for tokens nobody reads.
- Send an error response only when h11's state still allows one; otherwise close.

Known shortcuts: HTTP/1.1 only (no h2); pipelined requests are served one after another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11

from translate.dialects import ANTHROPIC, Dialect, front_for_path
from translate.errors import InvalidRequest, ProxyError, RequestTooLarge, UpstreamTimeout
from translate.usage import Usage
from upstreams.routing import Route

if TYPE_CHECKING:
    from server.listener import Server

log = logging.getLogger("switchboard")
access_log = logging.getLogger("switchboard.access")

SECONDS = 1.0
READ_CHUNK_BYTES = 64 * 1024
KEEPALIVE_IDLE_TIMEOUT = 120 * SECONDS
MAX_REQUEST_LINE_BYTES = 8 * 1024
JSON_HEADERS = [("content-type", "application/json")]
SSE_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    request_id: str
    started: float
    # Set before handling: when the request must be done (REQUEST_TIMEOUT), None for no limit.
    deadline: float | None = None
    # The dialect the client speaks, from the path: the envelope its errors are rendered in.
    front: Dialect = ANTHROPIC
    # Filled in while handling, for the access line and metrics.
    route: Route | None = None
    fallback: int = 0  # position of the answering route in [primary, *FALLBACK_MODELS]
    stream: bool = False
    status: int = 0
    usage: Usage = field(default_factory=Usage)



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


class ResponseWriter:
    """Writes one response on an h11 server connection, whole or as a stream of chunks.

    A stream's head is sent lazily by the first `write`, so until then an error can still be sent
    as a plain HTTP response.
    """

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter, request: Request, extra_headers: list) -> None:
        self.conn = conn
        self.writer = writer
        self.request = request
        self.extra_headers = extra_headers
        self.started = False  # the response head was sent
        self.content_started = False  # a body byte other than a heartbeat was sent
        self.first_content_at: float | None = None
        self.pending_head: tuple[int, list[tuple[str, str]]] | None = None
        # Heartbeats: one timer task per stream, not one per chunk.
        self.last_write = time.monotonic()
        self.at_event_boundary = True  # passthrough relays bytes that may stop inside an event
        self._writing = False
        self._heartbeat: asyncio.Task | None = None

    def start_heartbeat(self, data: bytes, interval: float) -> None:
        """Write `data` after every `interval` seconds without a write, between events, until the end.

        The first heartbeat commits the response head (200, the prepared stream head).
        """
        self.last_write = time.monotonic()
        self._heartbeat = asyncio.ensure_future(self._beat(data, interval))

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    async def _beat(self, data: bytes, interval: float) -> None:
        with contextlib.suppress(ConnectionError, h11.LocalProtocolError):
            while not self.complete:
                await asyncio.sleep(max(0.0, self.last_write + interval - time.monotonic()))
                idle = time.monotonic() - self.last_write >= interval
                if idle and self.at_event_boundary and not self._writing and not self.complete:
                    await self.write(data, heartbeat=True)

    @property
    def complete(self) -> bool:
        return self.conn.our_state is not h11.SEND_BODY and self.started

    async def _send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Send a complete response with Content-Length."""
        self.request.status = status
        self.started = True
        all_headers = headers + self.extra_headers + [("content-length", str(len(body)))]
        data = self.conn.send(h11.Response(status_code=status, headers=all_headers))
        if body and self.request.method != "HEAD":
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        self.writer.write(data)
        await self.writer.drain()

    def prepare_stream(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Remember the head of a streamed response; the first `write` sends it."""
        self.pending_head = (status, headers)

    async def write(self, chunk: bytes, *, heartbeat: bool = False) -> None:
        """Send one chunk of a streamed body (the head first if not yet sent), then drain."""
        self.last_write = time.monotonic()
        if not heartbeat and not self.content_started:
            self.content_started = True
            self.first_content_at = self.last_write
        if not self.started:
            status, headers = self.pending_head or (200, SSE_HEADERS)
            self.request.status = status
            self.started = True
            head = self.conn.send(h11.Response(status_code=status, headers=headers + self.extra_headers))
            self.writer.write(head + self.conn.send(h11.Data(data=chunk)))
        else:
            self.writer.write(self.conn.send(h11.Data(data=chunk)))
        self._writing = True
        try:
            await self.writer.drain()
        finally:
            self._writing = False

    async def end(self) -> None:
        if self.conn.our_state is h11.SEND_BODY:
            await self._send(h11.EndOfMessage())


class SlowClient(ProxyError):
    """The client did not send its request head or body within the deadline (slowloris protection)."""

    status = 408
    error_type = "invalid_request_error"


class ClientConnection:
    """Serves one client socket: parse requests with h11, dispatch, write, repeat while keep-alive.

    Limits: the request head (request line and headers) may hold at most MAX_HEADER_BYTES and
    MAX_HEADERS fields, the request line at most MAX_REQUEST_LINE_BYTES; once its first byte
    arrived the head must be complete within HEADER_TIMEOUT and the body within BODY_TIMEOUT;
    an idle keep-alive connection is closed after KEEPALIVE_IDLE_TIMEOUT.
    """

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Connection lifetime.
        self.server = server
        self.config = server.config
        self.gateway = server.gateway
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes)
        self.idle = True
        # Read deadlines are timers that cancel this connection's task (no asyncio.wait_for, which
        # costs a task per read): `deadline` names the one running, `expired` the one that fired.
        self.task: asyncio.Task | None = None
        self.deadline: str | None = None
        self.expired: str | None = None

    def _arm(self, seconds: float, name: str) -> asyncio.TimerHandle:
        self.deadline, self.expired = name, None
        return asyncio.get_running_loop().call_later(seconds, self._expire, name)

    def _expire(self, name: str) -> None:
        if self.deadline == name and self.task is not None:
            self.expired = name
            self.task.cancel()

    def _disarm(self, timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        self.deadline = None

    def _expired_deadline(self) -> str | None:
        """After a CancelledError: the deadline that caused it (and the cancellation is undone), else None."""
        name, self.expired = self.expired, None
        if name is not None:
            uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
        return name

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            while not self.server.closing:
                self.idle = True
                event = await self._read_head()
                self.idle = False
                if isinstance(event, h11.Request):
                    await self._serve(event)
                if event is None or isinstance(event, h11.ConnectionClosed):
                    break
                if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                    break
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                elif self.conn.our_state is not h11.IDLE:
                    break
        except h11.RemoteProtocolError as error:
            await self._send_early_error(error.error_status_hint or 400, f"malformed HTTP request: {error}")
        except SlowClient as error:
            await self._send_early_error(error.status, error.message)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("unexpected error on a client connection")
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 1)

    async def _read_head(self) -> h11.Event | None:
        """The next request head: wait (idle) for its first byte, then give the rest HEADER_TIMEOUT."""
        event = self.conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        if self.conn.their_state is not h11.IDLE:
            return await self._next_event()
        timer = self._arm(KEEPALIVE_IDLE_TIMEOUT, "idle")
        try:
            self.conn.receive_data(await self.reader.read(READ_CHUNK_BYTES))
            self._disarm(timer)
            timer = self._arm(self.config.header_timeout, "head")
            return await self._next_event()
        except asyncio.CancelledError:
            expired = self._expired_deadline()
            if expired == "idle":
                raise asyncio.TimeoutError from None  # closed quietly
            if expired == "head":
                raise SlowClient(
                    f"the request head did not arrive within HEADER_TIMEOUT ({self.config.header_timeout:g} seconds)"
                ) from None
            raise
        finally:
            self._disarm(timer)

    async def _next_event(self) -> h11.Event:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.reader.read(READ_CHUNK_BYTES))

    async def _send_early_error(self, status: int, message: str) -> None:
        """Answer a request that could not be read (malformed, too large, too slow), then close."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        # No request head was read: the path, and with it the client's dialect, is unknown.
        _, body = ANTHROPIC.render_error(ProxyError(message, status=status, error_type="invalid_request_error"))
        headers = JSON_HEADERS + [("content-length", str(len(body))), ("connection", "close")]
        with contextlib.suppress(Exception):
            self.writer.write(
                self.conn.send(h11.Response(status_code=status, headers=headers))
                + self.conn.send(h11.Data(data=body))
                + self.conn.send(h11.EndOfMessage())
            )
            await self.writer.drain()

    async def _read_body(self, head: h11.Request) -> bytes:
        limit = self.config.max_request_bytes
        declared = dict(head.headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"request body of {int(declared)} bytes exceeds MAX_REQUEST_BYTES ({limit})")
        if self.conn.they_are_waiting_for_100_continue:
            self.writer.write(self.conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        parts: list[bytes] = []
        size = 0
        timer = self._arm(self.config.body_timeout, "body")
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > limit:
                        raise RequestTooLarge(f"request body exceeds MAX_REQUEST_BYTES ({limit})")
                    parts.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return b"".join(parts)
                else:
                    raise InvalidRequest("connection closed before the request body was complete")
        except asyncio.CancelledError:
            if self._expired_deadline() == "body":
                raise SlowClient(
                    f"the request body did not arrive within BODY_TIMEOUT ({self.config.body_timeout:g} seconds)"
                ) from None
            raise
        finally:
            self._disarm(timer)

    def _check_head(self, head: h11.Request) -> None:
        if len(head.target) > MAX_REQUEST_LINE_BYTES:
            raise ProxyError(f"request target longer than {MAX_REQUEST_LINE_BYTES} bytes", status=414)
        if len(head.headers) > self.config.max_headers:
            raise ProxyError(f"more than MAX_HEADERS ({self.config.max_headers}) header fields", status=431)
        # h11 bounds a head only while it is incomplete; one that arrived whole in a read is measured here.
        size = len(head.method) + len(head.target) + sum(len(name) + len(value) + 4 for name, value in head.headers)
        if size > self.config.max_header_bytes:
            raise ProxyError(f"request head larger than MAX_HEADER_BYTES ({self.config.max_header_bytes})", status=431)
        names = {name for name, _ in head.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            # RFC 9112 6.1: a request with both is a smuggling pattern; refuse it and close.
            raise InvalidRequest("a request must not carry both Content-Length and Transfer-Encoding")

    async def _serve(self, head: h11.Request) -> None:
        path = head.target.decode("latin-1").split("?", 1)[0]
        request = Request(
            method=head.method.decode("ascii", "replace"),
            path=path,
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers},
            body=b"",
            request_id="req_" + secrets.token_hex(12),
            started=time.monotonic(),
            front=front_for_path(path),
        )
        if self.config.request_timeout:
            request.deadline = request.started + self.config.request_timeout
        extra = [("request-id", request.request_id)]
        if self.server.closing:
            extra.append(("connection", "close"))
        out = ResponseWriter(self.conn, self.writer, request, extra)
        try:
            try:
                self._check_head(head)
                request.body = await self._read_body(head)
                await self._run_handler(request, out)
            except h11.RemoteProtocolError as error:
                # Malformed framing of the body (e.g. a chunk size that is not hex).
                extra.append(("connection", "close"))
                await self._report(request, out, InvalidRequest(f"malformed HTTP request body: {error}"))
            except ProxyError as error:
                if self.conn.their_state is not h11.DONE:
                    extra.append(("connection", "close"))  # the rest of the request is left unread
                await self._report(request, out, error)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("request_id=%s unhandled error", request.request_id)
                await self._report(request, out, ProxyError("internal error in the proxy; see its log"))
        finally:
            out.stop_heartbeat()
            self._finish(request, out)

    async def _report(self, request: Request, out: ResponseWriter, error: ProxyError) -> None:
        """Send an error as a response, or, inside a started stream, as the front's stream error event."""
        error.message = self.gateway.redact(error.message)
        if not out.started:
            await out.send(*error_response(request.front, error))
        elif not out.complete:
            log.warning("request_id=%s stream ended with an error: %s", request.request_id, error.message)
            await out.write(request.front.stream_error(error))
            await out.end()

    async def _run_handler(self, request: Request, out: ResponseWriter) -> None:
        """Run the handler while watching the client socket and the REQUEST_TIMEOUT deadline.

        If the client leaves, the handler is cancelled (and with it the upstream request); if the
        deadline passes, it is cancelled and the request ends with a timeout error.
        """
        handler = asyncio.ensure_future(self.gateway.dispatch(request, out))
        watcher: asyncio.Future | None = asyncio.ensure_future(self.reader.read(READ_CHUNK_BYTES))
        try:
            while True:
                timeout = None if request.deadline is None else max(0.0, request.deadline - time.monotonic())
                waiting = {handler, watcher} if watcher is not None else {handler}
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if watcher is not None and watcher in done:
                    data = b""
                    with contextlib.suppress(Exception):
                        data = watcher.result()
                    watcher = None
                    if handler in done or data:
                        # A pipelined next request, or EOF after the answer: keep it for h11.
                        self.conn.receive_data(data)
                    else:
                        request.status = request.status or 499
                        handler.cancel()
                        with contextlib.suppress(BaseException):
                            await handler
                        raise ConnectionResetError("client disconnected")
                if handler in done:
                    break
                if not done:
                    handler.cancel()
                    with contextlib.suppress(BaseException):
                        await handler
                    raise UpstreamTimeout(
                        f"the request did not finish within REQUEST_TIMEOUT ({self.config.request_timeout:g} seconds)"
                    )
            await handler
        finally:
            for task in (handler, watcher):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task

    def _finish(self, request: Request, out: ResponseWriter) -> None:
        """One access-log line and the request's metrics."""
        route = request.route
        elapsed = time.monotonic() - request.started
        status = str(request.status or "-")
        metrics = self.gateway.metrics
        provider = route.provider if route else "-"
        if request.path.startswith("/v1/"):
            model = route.requested if route else "-"
            front = request.front.name
            metrics.inc("switchboard_requests_total", front=front, provider=provider, model=model, status=status)
            metrics.observe("switchboard_request_duration_seconds", elapsed, front=front, provider=provider)
            if out.first_content_at is not None and request.stream:
                metrics.observe("switchboard_time_to_first_token_seconds", out.first_content_at - request.started,
                                front=front, provider=provider)
            usage = request.usage
            for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens), ("cached", usage.cached_tokens)):
                if count:
                    metrics.inc("switchboard_tokens_total", count, provider=provider, kind=kind)
        quiet = request.path in ("/health", "/", "/metrics") or request.status == 204
        level = logging.DEBUG if quiet else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        fields = {
            "request_id": request.request_id,
            "method": request.method,
            "path": request.path,
            "model": route.requested if route else "-",
            "upstream": f"{route.provider}/{route.model}" if route else "-",
            "status": request.status or 0,
            "ms": round(elapsed * 1000),
            "in": request.usage.input_tokens,
            "out": request.usage.output_tokens,
            "cached": request.usage.cached_tokens,
            "stream": request.stream,
            "fallback": request.fallback,
        }
        access_log.log(
            level,
            "%s %s model=%s->%s status=%s ms=%d in=%d out=%d stream=%s%s request_id=%s",
            request.method, request.path, fields["model"], fields["upstream"], status, fields["ms"],
            request.usage.input_tokens, request.usage.output_tokens, "true" if request.stream else "false",
            f" fallback={request.fallback}" if request.fallback else "", request.request_id,
            extra={"access": fields},
        )


