"""Tools for the fault-injection suite (tests/test_faults.py): raw sockets on both sides of the proxy.

- `RawUpstream` is an upstream that answers each connection with scripted raw bytes (garbage, a
  truncated body, a well-formed answer), for faults an h11 server such as FakeUpstream cannot make.
- `RawClient` is a client socket that sends exactly the bytes a test gives it, slowly if asked, and
  reads until the proxy closes, for faults http.client refuses to make.
- `assert_recovered` is the after-check every fault ends with: /health answers, no upstream
  connection is lent out, and a normal request is served end to end.

Every socket is on 127.0.0.1 and every read has a deadline, so a fault that hangs fails the test
instead of hanging it.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field

from fake_upstream import FakeUpstream, Reply, RunningProxy, completion

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]}
READ_DEADLINE_SECONDS = 5.0


# ---------------------------------------------------------------------------------------------
# Requests through http.client (an independent HTTP implementation)
# ---------------------------------------------------------------------------------------------


def request(proxy: RunningProxy, method: str, path: str, body: object = None, headers: dict | None = None,
            timeout: float = READ_DEADLINE_SECONDS) -> tuple[int, dict[str, str], object]:
    """One request on a fresh connection; returns (status, lower-cased headers, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        conn.request(method, path, body=payload, headers={"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        response_headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return response.status, response_headers, parsed


def sse_events(raw: bytes) -> list[tuple[str, object]]:
    """Split an SSE body into (event name, data) pairs; data is parsed JSON, or the text ([DONE])."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if not data:
            continue  # comments (keep-alives) and blank blocks
        text = "\n".join(data)
        try:
            events.append((name, json.loads(text)))
        except ValueError:
            events.append((name, text))
    return events


# ---------------------------------------------------------------------------------------------
# Raw HTTP bytes
# ---------------------------------------------------------------------------------------------


def http_request_bytes(method: str, path: str, body: object = b"", headers: list[tuple[str, str]] | None = None) -> bytes:
    """A request head (host and content-length added unless given) followed by the body."""
    payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    fields = list(headers or [])
    names = {name.lower() for name, _ in fields}
    if "host" not in names:
        fields.insert(0, ("host", "127.0.0.1"))
    if "content-length" not in names and "transfer-encoding" not in names and (payload or method == "POST"):
        fields.append(("content-length", str(len(payload))))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode("latin-1") + payload


def http_response_bytes(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes its connection."""
    fields = [("content-type", "application/json"), ("content-length", str(len(body))), ("connection", "close")]
    fields += headers or []
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode("latin-1") + body


@dataclass
class RawResponse:
    """What a raw client read: the parsed status, headers and body, and whether the proxy closed."""

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


# ---------------------------------------------------------------------------------------------
# A raw client
# ---------------------------------------------------------------------------------------------


class RawClient:
    """A client socket to the proxy that sends exactly the bytes given, and reads with deadlines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_DEADLINE_SECONDS)
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
        """Send bytes; False when the proxy had already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _receive(self, timeout: float) -> bool:
        """Read once within `timeout`; False when nothing arrived. Notes a close by the proxy."""
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
        """Send `data` a byte at a time, `interval` seconds apart, until the proxy answers or closes
        or `budget` seconds passed; keeps whatever the proxy sent meanwhile."""
        deadline = time.monotonic() + budget
        for byte in data:
            if self.received or self.closed_by_peer or time.monotonic() > deadline:
                return
            if not self.send(bytes([byte])):
                return
            self._receive(interval)

    def read_until_closed(self, timeout: float = READ_DEADLINE_SECONDS) -> RawResponse:
        """Everything the proxy sends until it closes the connection or `timeout` passes."""
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
# A raw upstream
# ---------------------------------------------------------------------------------------------


class RawUpstream:
    """A TCP server on 127.0.0.1 that reads one whole request per connection, answers it with the
    next scripted bytes and closes. Not HTTP-aware on the way out: it sends what it is given."""

    def __init__(self, script: list[bytes]) -> None:
        self.script = script
        self.connections = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)  # so the accept loop notices `_stopping` (close() does not wake accept())
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(2)
        self._listener.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(READ_DEADLINE_SECONDS)
                try:
                    self._read_request(conn)
                    conn.sendall(self.script.pop(0) if self.script else http_response_bytes(500, b"{}"))
                    conn.shutdown(socket.SHUT_WR)
                    conn.recv(1)  # let the proxy read everything, then close
                except OSError:
                    pass

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            piece = conn.recv(65536)
            if not piece:
                return
            body += piece


# ---------------------------------------------------------------------------------------------
# After-checks
# ---------------------------------------------------------------------------------------------


class CountingEvent(threading.Event):
    """A threading.Event that counts how often it was set (FakeUpstream sets `client_went_away`
    once per connection the proxy abandoned)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._count_lock = threading.Lock()

    def set(self) -> None:
        with self._count_lock:
            self.count += 1
        super().set()


def assert_recovered(proxy: RunningProxy, upstream: FakeUpstream | RawUpstream | None = None, *, model: str = "claude-sonnet-4-5") -> None:
    """After a fault: /health is 200, no upstream connection is lent out, and a normal request works
    (through the same upstream when one is given, else through the echo provider)."""
    status, _, body = request(proxy, "GET", "/health")
    assert status == 200 and body["status"] == "ok"
    assert proxy.wait_for(lambda: proxy.pool_stats()["active"] == 0), proxy.pool_stats()
    if isinstance(upstream, FakeUpstream) and isinstance(upstream.script, list):
        upstream.script.append(Reply.json(completion("still here")))
    elif isinstance(upstream, RawUpstream):
        upstream.script.append(http_response_bytes(200, json.dumps(completion("still here")).encode()))
    else:
        upstream, model = None, "echo/recovery-check"
    status, _, body = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model=model))
    assert status == 200, body
    if upstream is not None:
        assert body["content"][0]["text"] == "still here"
    assert proxy.wait_for(lambda: proxy.pool_stats()["active"] == 0), proxy.pool_stats()


def free_port() -> int:
    """A port nobody listens on right now (bound and released)."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        return placeholder.getsockname()[1]


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/status (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")
