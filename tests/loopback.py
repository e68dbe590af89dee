"""How tests talk to a server on 127.0.0.1: requests, event streams, raw bytes, ports, polling.

- `request` sends one request on a fresh connection through the standard library's http.client (an
  HTTP implementation independent of the server's) and returns a `Response`: status, lower-cased
  headers, the body parsed as JSON or raw, and the seconds it took. `Response.events()` reads an
  event-stream body (`sse_events`).
- `RawClient` is a client socket that sends exactly the bytes a test gives it, slowly if asked, and
  reads until the server closes, for requests http.client refuses to make (a garbage head, a
  slowloris, conflicting framing). `http_request_bytes` builds such bytes and `parse_response`
  reads what came back; both work on plain bytes, so in-memory tests use them too.
- `free_port`, `eventually` and `wait_until_healthy` are for tests that start a server process.

The target of a request is a port number or anything with a `port` (fake_upstream.RunningProxy).
Every socket is on 127.0.0.1 and every read has a deadline, so a server that hangs fails the test
instead of hanging it.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

READ_DEADLINE_SECONDS = 5.0


class HasPort(Protocol):
    port: int


def _port(target: int | HasPort) -> int:
    return target if isinstance(target, int) else target.port


# ---------------------------------------------------------------------------------------------
# Requests through http.client
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One answer as http.client read it."""

    status: int
    headers: dict[str, str]  # names lower-cased
    raw: bytes  # the body as received, chunked framing removed
    elapsed: float  # seconds from connecting to closing, the whole exchange

    @property
    def body(self) -> object:
        """The body as parsed JSON; the raw bytes when it is not JSON; None when it is empty."""
        if not self.raw:
            return None
        try:
            return json.loads(self.raw)
        except ValueError:
            return self.raw

    def json(self) -> object:
        """The body as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.raw)

    def events(self) -> list[tuple[str, object]]:
        """The body read as an event stream (see `sse_events`); fails unless the answer is a 200."""
        assert self.status == 200, f"expected a 200 event stream, got {self.status}: {self.raw[:500]!r}"
        return sse_events(self.raw)


def request(target: int | HasPort, method: str, path: str, body: object = None, headers: dict[str, str] | None = None,
            *, timeout: float = 10) -> Response:
    """One request on a fresh connection, closed afterwards; returns the whole answer.

    A dict or list body is sent as JSON, bytes or str as they are; a request with a body carries
    `content-type: application/json` unless `headers` say otherwise. Socket errors propagate
    (OSError), so a caller polling a server that is still starting can catch them.
    """
    payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    fields = {"content-type": "application/json"} if payload is not None else {}
    fields.update(headers or {})
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", _port(target), timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=fields)
        answer = conn.getresponse()
        raw = answer.read()
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, raw, elapsed)


# ---------------------------------------------------------------------------------------------
# Event streams
# ---------------------------------------------------------------------------------------------

SSE_FIELDS = ("event", "data", "id", "retry")


def sse_events(raw: bytes) -> list[tuple[str, object]]:
    """Split an event-stream body into (event name, data) pairs, checking it has one of the two shapes
    the fronts write; data is parsed JSON, or the text `[DONE]`.

    The Anthropic shape: every block is an `event: name` line and a `data: json` line. The chat
    shape: blocks of `data:` lines (JSON or `[DONE]`) with no names, which are called "message" as
    the SSE spec says, and comment blocks (`: keep-alive`), which are skipped. Blocks end at a
    blank line ("\\n\\n"). Anything else fails with AssertionError: a line that is not `field: value`
    or a comment, a CR, a named block without data, a named event whose data is not JSON, named
    and unnamed blocks in one stream.
    """
    text = raw.decode()
    assert "\r" not in text, f"CR in an event stream: {text[:500]!r}"
    blocks: list[tuple[str | None, object]] = []
    comment_blocks = 0
    for block in text.split("\n\n"):
        if not block:
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            key, separator, value = line.partition(": ")
            assert separator and key in SSE_FIELDS, f"not an SSE line: {line!r}"
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if not data:
            assert name is None, f"event {name!r} has no data line"
            comment_blocks += 1
            continue
        joined = "\n".join(data)
        if joined == "[DONE]" and name is None:
            blocks.append((None, joined))
            continue
        try:
            blocks.append((name, json.loads(joined)))
        except ValueError:
            raise AssertionError(f"event data is not JSON: {joined[:500]!r}") from None
    named = {name is not None for name, _ in blocks}
    assert len(named) <= 1, f"named and unnamed events in one stream: {[name for name, _ in blocks]}"
    assert not (named == {True} and comment_blocks), "a comment block in a stream of named events"
    return [(name or "message", data) for name, data in blocks]


# ---------------------------------------------------------------------------------------------
# Raw HTTP bytes
# ---------------------------------------------------------------------------------------------


def http_request_bytes(method: str, path: str, body: object = b"", headers: list[tuple[str, str]] | None = None,
                       *, version: str = "1.1") -> bytes:
    """A request head (host and content-length added unless given) followed by the body."""
    payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    fields = list(headers or [])
    names = {name.lower() for name, _ in fields}
    if "host" not in names:
        fields.insert(0, ("host", "127.0.0.1"))
    if "content-length" not in names and "transfer-encoding" not in names and (payload or method == "POST"):
        fields.append(("content-length", str(len(payload))))
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode("latin-1") + payload


@dataclass
class RawResponse:
    """What a raw client read: the parsed status, headers and body, and whether the server closed."""

    raw: bytes
    closed: bool
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> dict:
        return json.loads(self.body)


def parse_response(raw: bytes, closed: bool) -> RawResponse:
    """Parse the first response in `raw` (Content-Length or chunked body; what arrived of it)."""
    result = RawResponse(raw=raw, closed=closed)
    head, separator, rest = raw.partition(b"\r\n\r\n")
    if not separator:
        return result
    lines = head.decode("latin-1").split("\r\n")
    result.status = int(lines[0].split(" ")[1])
    result.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if result.headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2 :]
        result.body = body
    else:
        result.body = rest[: int(result.headers.get("content-length", len(rest)))]
    return result


class RawClient:
    """A client socket to a server on 127.0.0.1 that sends exactly the bytes given, and reads with deadlines."""

    def __init__(self, target: int | HasPort) -> None:
        self.sock = socket.create_connection(("127.0.0.1", _port(target)), timeout=READ_DEADLINE_SECONDS)
        self.received = b""
        self.closed_by_peer = False
        self.first_byte_at: float | None = None

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send bytes; False when the server had already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _receive(self, timeout: float) -> bool:
        """Read once within `timeout`; False when nothing arrived. Notes a close by the server."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionError:
            data = b""
        if not data:
            self.closed_by_peer = True
            return True
        if self.first_byte_at is None:
            self.first_byte_at = time.monotonic()
        self.received += data
        return True

    def send_slowly(self, data: bytes, interval: float, budget: float) -> None:
        """Send `data` a byte at a time, `interval` seconds apart, until the server answers or closes
        or `budget` seconds passed; keeps whatever the server sent meanwhile."""
        deadline = time.monotonic() + budget
        for byte in data:
            if self.received or self.closed_by_peer or time.monotonic() > deadline:
                return
            if not self.send(bytes([byte])):
                return
            self._receive(interval)

    def read_until_closed(self, timeout: float = READ_DEADLINE_SECONDS) -> RawResponse:
        """Everything the server sends until it closes the connection or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not self.closed_by_peer and time.monotonic() < deadline:
            self._receive(deadline - time.monotonic())
        return parse_response(self.received, self.closed_by_peer)

    def read_response(self, timeout: float = READ_DEADLINE_SECONDS) -> RawResponse:
        """One complete Content-Length response (the connection may stay open), or what arrived by `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.closed_by_peer and time.monotonic() < deadline:
            parsed = parse_response(self.received, False)
            if parsed.status and len(parsed.body) >= int(parsed.headers.get("content-length", 1 << 62)):
                return parsed
            self._receive(deadline - time.monotonic())
        return parse_response(self.received, self.closed_by_peer)


# ---------------------------------------------------------------------------------------------
# Ports and polling
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on right now (bound and released)."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        return placeholder.getsockname()[1]


def eventually(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `predicate` every `interval` seconds; True as soon as it holds, False once `timeout` passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def wait_until_healthy(port: int, timeout: float = 10, process: subprocess.Popen | None = None) -> None:
    """Poll GET /health until it answers 200; AssertionError after `timeout`, or as soon as `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with status {process.returncode} before answering /health")
        try:
            if request(port, "GET", "/health", timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server on port {port} did not answer /health within {timeout:g} s")
