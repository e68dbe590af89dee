"""Tools for the fault-injection suite (tests/test_faults.py): the upstream side of the faults.

- `RawUpstream` is an upstream that answers each connection with scripted raw bytes (garbage, a
  truncated body, a well-formed answer), for faults an h11 server such as FakeUpstream cannot make.
- `assert_recovered` is the after-check every fault ends with: /health answers, no upstream
  connection is lent out, and a normal request is served end to end.

The client side (http.client requests, the raw `RawClient`, request and response bytes) is
tests/loopback.py, shared with the other loopback suites. Every socket is on 127.0.0.1 and every
read has a deadline, so a fault that hangs fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import socket
import threading

from fake_upstream import FakeUpstream, Reply, RunningProxy, completion
from loopback import READ_DEADLINE_SECONDS, request

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]}


# ---------------------------------------------------------------------------------------------
# Raw HTTP bytes from the upstream side
# ---------------------------------------------------------------------------------------------


def http_response_bytes(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes its connection."""
    fields = [("content-type", "application/json"), ("content-length", str(len(body))), ("connection", "close")]
    fields += headers or []
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode("latin-1") + body


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
    health = request(proxy, "GET", "/health", timeout=READ_DEADLINE_SECONDS)
    assert health.status == 200 and health.body["status"] == "ok"
    assert proxy.wait_for(lambda: proxy.pool_stats()["active"] == 0), proxy.pool_stats()
    if isinstance(upstream, FakeUpstream) and isinstance(upstream.script, list):
        upstream.script.append(Reply.json(completion("still here")))
    elif isinstance(upstream, RawUpstream):
        upstream.script.append(http_response_bytes(200, json.dumps(completion("still here")).encode()))
    else:
        upstream, model = None, "echo/recovery-check"
    answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model=model), timeout=READ_DEADLINE_SECONDS)
    assert answer.status == 200, answer.body
    if upstream is not None:
        assert answer.body["content"][0]["text"] == "still here"
    assert proxy.wait_for(lambda: proxy.pool_stats()["active"] == 0), proxy.pool_stats()


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/status (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")
