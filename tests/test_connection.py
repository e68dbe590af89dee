"""The inbound connection (server/connection.py) in memory: bytes in through the asyncio Protocol
methods, bytes out of a transport that is a byte buffer. No socket anywhere.

The harness:
- `MemoryTransport` stands where asyncio's socket transport stands: it keeps what the connection
  writes, records paused reading, and on `close` calls `connection_lost` on the next loop turn,
  as the selector transport does.
- `MemoryServer` is what a `ClientConnection` asks of server.listener.Server (config, gateway,
  closing, admit, forget) without a listening socket.
- The gateway is either the real `Gateway`, whose built-in echo provider answers without any
  network when nothing is configured, or a `ScriptedGateway` whose handler is the test's own
  coroutine (one that waits, to test disconnects, deadlines and backpressure).
- `MemoryClient` joins one connection to one transport: `send` is `data_received`, `send_eof` is
  `eof_received`, `reset` is `connection_lost`. `answers()` parses what the server wrote with h11
  as the client, an HTTP parser independent of the server's own response framing, and fails on
  any byte left over.

Deadlines are the loop's own timers, set to a few hundredths of a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11
import pytest
from loopback import http_request_bytes, sse_events

from server import connection as connection_module
from server.config import Config
from server.connection import ClientConnection, Request, ResponseWriter
from server.gateway import Gateway
from server.logs import Redactor
from server.metrics import Metrics
from translate.errors import ProxyError

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
COUNT = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hello there, how are you?"}]}
SHORT_SECONDS = 0.05  # a deadline short enough to wait out
PATIENCE_SECONDS = 2.0  # how long `until` lets the loop run before the test fails


# =============================================================================================
# The harness
# =============================================================================================


class MemoryTransport(asyncio.Transport):
    """A transport whose socket is a byte buffer."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.closing = False  # close() was called: nothing more is read
        self.lost = False  # connection_lost was called
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.lost, f"write after connection_lost: {bytes(data)[:200]!r}"
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.lose, None)

    def abort(self) -> None:
        self.close()

    def lose(self, exc: Exception | None) -> None:
        """The socket is gone: tell the protocol once."""
        self.closing = True
        if not self.lost:
            self.lost = True
            self.protocol.connection_lost(exc)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8082)}.get(name, default)


class MemoryServer:
    """What a ClientConnection asks of its server, without a listening socket."""

    def __init__(self, settings: dict[str, str] | None = None, gateway: object = None) -> None:
        self.config = Config.from_env(settings or {})
        self.gateway = gateway if gateway is not None else Gateway(self.config)
        self.closing = False
        self.connections: set[ClientConnection] = set()

    def admit(self, connection: ClientConnection) -> bool:
        self.connections.add(connection)
        return True

    def forget(self, connection: ClientConnection) -> None:
        self.connections.discard(connection)


Handler = Callable[[Request, ResponseWriter], Awaitable[None]]


class ScriptedGateway:
    """Stands in for server.gateway.Gateway: `dispatch` runs `handler`; `finish` keeps each request it is given."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.finished: list[Request] = []
        self.metrics = Metrics()
        self.redact = Redactor([])

    def mask_error(self, error) -> None:
        error.message = self.redact(error.message)

    async def dispatch(self, request: Request, out: ResponseWriter) -> None:
        await self.handler(request, out)

    def finish(self, request: Request, first_content_at: float | None) -> None:
        self.finished.append(request)


@dataclass
class Answer:
    """One response as the h11 client read it."""

    status: int
    fields: list[tuple[str, str]]  # header fields in order, names lower-cased
    body: bytes
    interim: list[int]  # statuses of the 1xx responses before it

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.fields)

    def json(self) -> dict:
        return json.loads(self.body)


def read_answers(data: bytes, methods: tuple[str, ...], *, closed: bool) -> list[Answer]:
    """Parse `data` as the answers to requests made with `methods`, in order, with h11 as the client.

    `closed` feeds the end of the connection after the bytes (a body delimited by the close).
    Raises AssertionError when an answer is incomplete or bytes are left over after the last one.
    """
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    if closed:
        client.receive_data(b"")
    answers = []
    for number, method in enumerate(methods, 1):
        if number > 1:
            client.start_next_cycle()
        client.send(h11.Request(method=method, target="/", headers=[("host", "memory")]))
        client.send(h11.EndOfMessage())
        interim, head, body = [], None, b""
        while True:
            event = client.next_event()
            assert event is not h11.NEED_DATA, f"answer {number} of {len(methods)} is incomplete in {data!r}"
            if isinstance(event, h11.InformationalResponse):
                interim.append(event.status_code)
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"answer {number}: unexpected {event!r}")
        fields = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers.raw_items()]
        answers.append(Answer(head.status_code, [(name.lower(), value) for name, value in fields], body, interim))
    leftover, _ = client.trailing_data
    assert not leftover, f"bytes after the last answer: {bytes(leftover)!r}"
    return answers


class MemoryClient:
    """One client joined to one ClientConnection through a MemoryTransport. Build it inside the loop."""

    def __init__(self, server: MemoryServer) -> None:
        self.server = server
        self.connection = ClientConnection(server)
        self.transport = MemoryTransport(self.connection)
        self.connection.connection_made(self.transport)

    @property
    def written(self) -> bytes:
        return bytes(self.transport.written)

    def send(self, data: bytes) -> None:
        """Bytes arrive, as the loop delivers them: in one read, and not once the transport is closing."""
        if not self.transport.closing:
            self.connection.data_received(data)

    def send_eof(self) -> None:
        """The client shut down its sending side; the transport closes unless the protocol keeps it open."""
        if not self.connection.eof_received():
            self.transport.close()

    def reset(self) -> None:
        """The socket broke (a reset): connection_lost at once."""
        self.transport.lose(ConnectionResetError("connection reset by peer"))

    def answers(self, *methods: str) -> list[Answer]:
        return read_answers(self.written, methods, closed=self.transport.closing)


async def until(predicate: Callable[[], object], timeout: float = PATIENCE_SECONDS) -> None:
    """Let the loop run until `predicate()` holds; AssertionError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


async def turns(count: int = 20) -> None:
    """Let the loop run `count` turns (for checking that something does not happen)."""
    for _ in range(count):
        await asyncio.sleep(0)


def wire(method: str, path: str, headers: list[tuple[str, str]] | None = None, *, body: object = b"",
         version: str = "1.1") -> bytes:
    """The bytes of a request: a head (host and content-length added unless given), then the body.

    A dict body is sent as JSON with `content-type: application/json`.
    """
    if isinstance(body, dict):
        headers = [("content-type", "application/json"), *(headers or [])]
    return http_request_bytes(method, path, body, headers, version=version)


def head_of(request: bytes) -> bytes:
    """The request head, without its body."""
    return request[: request.index(b"\r\n\r\n") + 4]


def is_chat_envelope(body: dict) -> bool:
    """OpenAI's error envelope: {"error": {message, type, param, code}} and no Anthropic "type": "error"."""
    return set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])


def is_anthropic_envelope(body: dict) -> bool:
    return body["type"] == "error" and {"type", "message"} <= set(body["error"])


async def never() -> None:
    await asyncio.Event().wait()


# =============================================================================================
# Requests and answers
# =============================================================================================


def test_a_get_for_health_is_answered_with_content_length_and_a_request_id():
    """GET /health gets a 200 JSON body framed by Content-Length, a request-id, and the connection stays open."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("GET", "/health"))
        await until(lambda: client.connection.idle)
        (answer,) = client.answers("GET")
        assert answer.status == 200 and answer.json()["status"] == "ok"
        assert answer.headers["content-length"] == str(len(answer.body))
        assert answer.headers["request-id"].startswith("req_") and "transfer-encoding" not in answer.headers
        assert not client.transport.closing

    asyncio.run(main())


def test_two_pipelined_requests_in_one_read_are_answered_in_order():
    """Three requests arriving in one read are answered one after another, in the order sent."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("GET", "/") + wire("GET", "/health") + wire("GET", "/nope"))
        await until(lambda: client.connection.idle)
        root, health, missing = client.answers("GET", "GET", "GET")
        assert root.status == 200 and root.json()["name"] == "switchboard"
        assert health.status == 200 and health.json()["status"] == "ok"
        assert missing.status == 404 and missing.json()["error"]["type"] == "not_found_error"
        assert len({root.headers["request-id"], health.headers["request-id"], missing.headers["request-id"]}) == 3
        assert not client.transport.closing

    asyncio.run(main())


def test_a_request_fed_whole_line_by_line_or_byte_by_byte_gets_the_same_answer():
    """A POST with a body, fed in one read, a line per read and a byte per read, gets three identical answers."""
    request = wire("POST", "/v1/messages/count_tokens", body=COUNT)
    ways = {
        "whole": [request],
        "lines": request.splitlines(keepends=True),
        "bytes": [request[i : i + 1] for i in range(len(request))],
    }

    async def served(pieces: list[bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
        client = MemoryClient(MemoryServer())
        for piece in pieces:
            client.send(piece)
        await until(lambda: client.connection.idle)
        (answer,) = client.answers("POST")
        return answer.status, [f for f in answer.fields if f[0] != "request-id"], answer.body

    async def main() -> dict[str, tuple]:
        return {name: await served(pieces) for name, pieces in ways.items()}

    results = asyncio.run(main())
    assert results["whole"][0] == 200 and json.loads(results["whole"][2])["input_tokens"] > 0
    assert results["lines"] == results["whole"] and results["bytes"] == results["whole"]


def test_keep_alive_serves_a_second_request_and_connection_close_ends_the_connection():
    """A second request on a kept-alive connection is served; one with `connection: close` is answered, then closed."""

    async def main() -> None:
        server = MemoryServer()
        client = MemoryClient(server)
        client.send(wire("GET", "/health"))
        await until(lambda: client.connection.idle)
        assert not client.transport.closing and "connection" not in client.answers("GET")[0].headers
        client.send(wire("GET", "/health", [("connection", "close")]))
        await until(lambda: client.transport.lost)
        first, second = client.answers("GET", "GET")
        assert first.status == second.status == 200
        assert second.headers["connection"] == "close"
        assert server.connections == set()  # forgotten by the server once lost

    asyncio.run(main())


def test_an_http_1_0_request_without_keep_alive_is_answered_then_closed():
    """HTTP/1.0 closes after each response unless asked otherwise: the answer says `connection: close`."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("GET", "/health", version="1.0"))
        await until(lambda: client.transport.closing)
        (answer,) = client.answers("GET")
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert answer.headers["content-length"] == str(len(answer.body))

    asyncio.run(main())


def test_an_http_1_0_request_asking_for_keep_alive_keeps_the_connection_open():
    """HTTP/1.0 with `connection: keep-alive` is answered and the next request on the connection is served too."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("GET", "/health", [("connection", "keep-alive")], version="1.0"))
        await until(lambda: client.connection.idle)
        assert not client.transport.closing
        client.send(wire("GET", "/", version="1.0"))
        await until(lambda: client.transport.closing)
        health, root = client.answers("GET", "GET")
        assert health.status == root.status == 200 and root.headers["connection"] == "close"

    asyncio.run(main())


def test_an_http_1_0_stream_is_delimited_by_closing_the_connection():
    """HTTP/1.0 knows no chunked encoding: a streamed answer is the raw event stream, ended by the close."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("POST", "/v1/messages", body=dict(MESSAGE, stream=True), version="1.0"))
        await until(lambda: client.transport.closing)
        (answer,) = client.answers("POST")
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert "transfer-encoding" not in answer.headers and "content-length" not in answer.headers
        names = [name for name, _ in sse_events(answer.body)]
        assert names[0] == "message_start" and names[-1] == "message_stop"

    asyncio.run(main())


def test_head_is_answered_with_the_get_content_length_and_no_body():
    """HEAD /health has the Content-Length a GET would have and no body; a HEAD error has no body either."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("GET", "/health") + wire("HEAD", "/health") + wire("HEAD", "/nope"))
        await until(lambda: client.connection.idle)
        # h11 reads a HEAD answer without a body: a body byte sent anyway is left over and fails the parse.
        full, bare, missing = client.answers("GET", "HEAD", "HEAD")
        assert bare.status == 200 and bare.body == b"" and bare.headers["content-length"] == str(len(full.body))
        assert missing.status == 404 and missing.body == b"" and int(missing.headers["content-length"]) > 0
        assert client.written.endswith(b"\r\n\r\n")

    asyncio.run(main())


def test_expect_100_continue_gets_the_interim_response_before_the_body():
    """A head with `expect: 100-continue` gets `100 Continue` at once; the body then gets the real answer."""
    request = wire("POST", "/v1/messages/count_tokens", [("expect", "100-continue")], body=COUNT)
    head = head_of(request)

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(head)
        assert client.written == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.send(request[len(head) :])
        await until(lambda: client.connection.idle)
        (answer,) = client.answers("POST")
        assert answer.interim == [100] and answer.status == 200 and answer.json()["input_tokens"] > 0

    asyncio.run(main())


def test_expect_100_continue_over_max_request_bytes_gets_413_and_no_100():
    """A client waiting for 100-continue with a Content-Length over MAX_REQUEST_BYTES is told 413 instead."""

    async def main() -> None:
        client = MemoryClient(MemoryServer({"MAX_REQUEST_BYTES": "2048"}))
        client.send(wire("POST", "/v1/messages", [("expect", "100-continue"), ("content-length", "5000")]))
        await until(lambda: client.transport.closing)
        (answer,) = client.answers("POST")
        assert answer.interim == [] and answer.status == 413
        assert answer.json()["error"]["type"] == "request_too_large"

    asyncio.run(main())


def test_a_streamed_answer_is_chunked_and_ends_with_the_last_chunk():
    """stream=true on /v1/messages (echo provider) is a chunked event stream ending with 0\\r\\n\\r\\n; keep-alive goes on."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("POST", "/v1/messages", body=dict(MESSAGE, stream=True)))
        await until(lambda: client.connection.idle)
        assert client.written.endswith(b"\r\n0\r\n\r\n")
        (answer,) = client.answers("POST")
        assert answer.status == 200 and answer.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in answer.headers and answer.headers["content-type"].startswith("text/event-stream")
        events = sse_events(answer.body)
        assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
        assert "echo provider" in "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
        assert not client.transport.closing

    asyncio.run(main())


# =============================================================================================
# Errors before a request head: no path, so the Anthropic envelope
# =============================================================================================


def test_garbage_instead_of_a_request_is_400_and_closed():
    """Bytes that are not HTTP get a 400 invalid_request_error in the Anthropic envelope, then the connection closes."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello to a plain port\r\n\r\n")
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("GET")
        assert answer.status == 400 and answer.headers["connection"] == "close"
        assert is_anthropic_envelope(answer.json()) and answer.json()["error"]["type"] == "invalid_request_error"

    asyncio.run(main())


def test_a_head_over_max_header_bytes_is_431_in_pieces_or_at_once():
    """MAX_HEADER_BYTES=2048: a 3 KB head is 431 and a close, whether h11 sees it grow or receives it whole."""
    big = wire("GET", "/health", [("x-big", "a" * 3000)])

    async def refused(pieces: list[bytes]) -> Answer:
        client = MemoryClient(MemoryServer({"MAX_HEADER_BYTES": "2048"}))
        for piece in pieces:
            client.send(piece)
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("GET")
        return answer

    async def main() -> None:
        for pieces in ([big[:2500], big[2500:]], [big]):
            answer = await refused(pieces)
            assert answer.status == 431 and answer.headers["connection"] == "close", pieces
            assert is_anthropic_envelope(answer.json())

    asyncio.run(main())


def test_a_head_not_complete_within_header_timeout_is_408_and_closed():
    """HEADER_TIMEOUT=0.05: half a head gets 408 naming HEADER_TIMEOUT from the loop's timer, no sooner."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        client = MemoryClient(MemoryServer({"HEADER_TIMEOUT": str(SHORT_SECONDS)}))
        started = loop.time()
        client.send(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        await until(lambda: client.transport.closing)
        assert loop.time() - started >= SHORT_SECONDS
        (answer,) = client.answers("GET")
        assert answer.status == 408 and answer.headers["connection"] == "close"
        assert is_anthropic_envelope(answer.json()) and "HEADER_TIMEOUT" in answer.json()["error"]["message"]

    asyncio.run(main())


# =============================================================================================
# Errors after a request head: in the envelope of the path's front dialect
# =============================================================================================


@pytest.mark.parametrize(
    ("path", "front", "envelope"),
    [("/v1/chat/completions", "chat", is_chat_envelope), ("/v1/messages", "anthropic", is_anthropic_envelope)],
    ids=["chat", "anthropic"],
)
def test_content_length_over_max_request_bytes_is_413_before_the_body_in_the_front_envelope(path, front, envelope):
    """MAX_REQUEST_BYTES=2048, Content-Length 5000, no body sent: 413 at once in the path's envelope, recorded as such."""

    async def main() -> None:
        server = MemoryServer({"MAX_REQUEST_BYTES": "2048"})
        client = MemoryClient(server)
        client.send(wire("POST", path, [("content-type", "application/json"), ("content-length", "5000")]))
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("POST")
        assert answer.status == 413 and answer.headers["connection"] == "close"
        assert answer.headers["request-id"].startswith("req_")
        assert envelope(answer.json()) and "MAX_REQUEST_BYTES" in answer.json()["error"]["message"], answer.json()
        metrics = server.gateway.metrics
        assert metrics.value("switchboard_requests_total", front=front, provider="-", model="-", status="413",
                             client="-", route_rule="default") == 1

    asyncio.run(main())


def test_content_length_with_transfer_encoding_is_400_and_closed():
    """Content-Length with Transfer-Encoding is refused 400 in the chat envelope, even with the whole body in the same read."""
    body = json.dumps({"model": "x", "messages": [{"role": "user", "content": "hi"}]}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    headers = [("transfer-encoding", "chunked"), ("content-length", str(len(body)))]

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("POST", "/v1/chat/completions", headers) + chunked)
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("POST")
        assert answer.status == 400 and answer.headers["connection"] == "close"
        assert is_chat_envelope(answer.json()) and "Transfer-Encoding" in answer.json()["error"]["message"]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("settings", "data", "status"),
    [
        ({"MAX_HEADERS": "8"}, wire("GET", "/health", [(f"x-h{i}", "v") for i in range(10)]), 431),
        ({"MAX_REQUEST_BYTES": "2048"}, wire("POST", "/v1/messages", body={"x": "y" * 3000}), 413),
        ({"MAX_REQUEST_BYTES": "2048"}, wire("POST", "/v1/messages", body=b"{" * 5000) + wire("GET", "/health"), 413),
        ({}, wire("GET", "/health?q=" + "a" * 8200) + wire("GET", "/health"), 414),
    ],
    ids=["431-no-body", "413-with-body", "413-with-body-and-next-request", "414-and-next-request"],
)
def test_a_refused_head_is_answered_once_whatever_follows_it_in_the_same_read(settings, data, status):
    """A head refused by a limit is answered once and closed, with no error, even with its body or more in the same read."""

    async def main() -> None:
        client = MemoryClient(MemoryServer(settings))
        client.send(data)
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("GET")
        assert answer.status == status and answer.headers["connection"] == "close"

    asyncio.run(main())


def test_a_bad_chunk_size_is_400_in_the_front_envelope_and_closed():
    """A chunk size that is not hex is a 400 invalid_request_error in the path's envelope, then a close."""

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(wire("POST", "/v1/chat/completions", [("transfer-encoding", "chunked")]) + b"zz\r\nabc\r\n0\r\n\r\n")
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("POST")
        assert answer.status == 400 and answer.headers["connection"] == "close"
        assert is_chat_envelope(answer.json()) and answer.json()["error"]["type"] == "invalid_request_error"

    asyncio.run(main())


def test_a_chunked_body_over_max_request_bytes_is_413_once_it_passes_the_limit():
    """MAX_REQUEST_BYTES=2048: an undeclared (chunked) body is cut off with 413 when it passes the limit, not before."""

    async def main() -> None:
        client = MemoryClient(MemoryServer({"MAX_REQUEST_BYTES": "2048"}))
        client.send(wire("POST", "/v1/messages", [("transfer-encoding", "chunked")]))
        client.send(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        client.send(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        assert client.written == b""
        client.send(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("POST")
        assert answer.status == 413 and is_anthropic_envelope(answer.json())

    asyncio.run(main())


def test_a_body_not_complete_within_body_timeout_is_408_in_the_front_envelope():
    """BODY_TIMEOUT=0.05: a body that stops arriving gets 408 naming BODY_TIMEOUT, in the chat envelope on the chat path."""
    request = wire("POST", "/v1/chat/completions", body={"model": "x", "messages": []})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        client = MemoryClient(MemoryServer({"BODY_TIMEOUT": str(SHORT_SECONDS)}))
        started = loop.time()
        client.send(request[:-5])
        await until(lambda: client.transport.closing)
        assert loop.time() - started >= SHORT_SECONDS
        (answer,) = client.answers("POST")
        assert answer.status == 408 and answer.headers["connection"] == "close"
        assert is_chat_envelope(answer.json()) and "BODY_TIMEOUT" in answer.json()["error"]["message"]

    asyncio.run(main())


def test_eof_in_the_middle_of_a_body_is_400_in_the_front_envelope():
    """A client that shuts its side before the body its Content-Length promised gets a 400 saying so, then a close."""
    request = wire("POST", "/v1/chat/completions", body={"model": "x", "messages": []})

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(request[:-5])
        client.send_eof()
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("POST")
        assert answer.status == 400 and answer.headers["connection"] == "close"
        assert is_chat_envelope(answer.json()) and "body" in answer.json()["error"]["message"]

    asyncio.run(main())


# =============================================================================================
# The handler: disconnects, the total deadline, errors
# =============================================================================================


class Waiting:
    """A handler that starts, then waits for ever; it notes being cancelled."""

    def __init__(self) -> None:
        self.started = False
        self.cancelled = False

    async def __call__(self, request: Request, out: ResponseWriter) -> None:
        self.started = True
        try:
            await never()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def test_eof_while_the_handler_runs_cancels_it_and_records_499():
    """A client that shuts its side while its request is served: the handler is cancelled, 499 recorded, nothing sent."""

    async def main() -> None:
        handler = Waiting()
        gateway = ScriptedGateway(handler)
        client = MemoryClient(MemoryServer(gateway=gateway))
        client.send(wire("POST", "/v1/messages", body=MESSAGE))
        await until(lambda: handler.started)
        client.send_eof()
        await until(lambda: client.transport.lost)
        assert handler.cancelled and [r.status for r in gateway.finished] == [499]
        assert client.written == b""

    asyncio.run(main())


def test_connection_lost_while_the_handler_runs_cancels_it_and_records_499():
    """A reset while a request is served cancels its handler, records 499, and the server forgets the connection."""

    async def main() -> None:
        handler = Waiting()
        gateway = ScriptedGateway(handler)
        server = MemoryServer(gateway=gateway)
        client = MemoryClient(server)
        client.send(wire("POST", "/v1/messages", body=MESSAGE))
        await until(lambda: handler.started)
        assert server.connections == {client.connection}
        client.reset()
        await until(lambda: gateway.finished)
        assert handler.cancelled and [r.status for r in gateway.finished] == [499]
        assert server.connections == set() and client.written == b""

    asyncio.run(main())


def test_eof_right_after_a_request_before_its_handler_ran_still_records_499():
    """A request and the client's EOF in the same loop turn: the handler never runs, but the request is recorded as 499."""

    async def main() -> None:
        handler = Waiting()
        gateway = ScriptedGateway(handler)
        client = MemoryClient(MemoryServer(gateway=gateway))
        client.send(wire("POST", "/v1/messages", body=MESSAGE))
        client.send_eof()
        await until(lambda: client.transport.lost)
        await turns()
        assert not handler.started
        assert [r.status for r in gateway.finished] == [499]
        assert client.connection.handler is None and client.connection.request is None

    asyncio.run(main())


def test_request_timeout_before_content_is_504_and_the_connection_stays_usable():
    """REQUEST_TIMEOUT=0.05: a silent handler is cancelled and answered 504 in the front's envelope; the connection serves on."""

    async def handler(request: Request, out: ResponseWriter) -> None:
        if request.path == "/v1/chat/completions":
            await never()
        await out.send(200, [("content-type", "text/plain")], b"next")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gateway = ScriptedGateway(handler)
        client = MemoryClient(MemoryServer({"REQUEST_TIMEOUT": str(SHORT_SECONDS)}, gateway))
        started = loop.time()
        client.send(wire("POST", "/v1/chat/completions", body={"model": "x"}))
        await until(lambda: client.connection.idle)
        assert loop.time() - started >= SHORT_SECONDS
        client.send(wire("GET", "/health"))
        await until(lambda: client.connection.idle)
        timed_out, served = client.answers("POST", "GET")
        assert timed_out.status == 504 and is_chat_envelope(timed_out.json())
        assert timed_out.json()["error"]["type"] == "timeout_error" and "REQUEST_TIMEOUT" in timed_out.json()["error"]["message"]
        assert served.status == 200 and served.body == b"next"
        assert [r.status for r in gateway.finished] == [504, 200] and not client.transport.closing

    asyncio.run(main())


def test_request_timeout_after_content_ends_the_stream_with_the_front_error_event():
    """REQUEST_TIMEOUT=0.05 on a stream that started: the stream ends with the front's error event and the last chunk."""

    async def handler(request: Request, out: ResponseWriter) -> None:
        await out.write(request.front.encode({"type": "message_start", "message": {}}))
        await never()

    async def main() -> None:
        client = MemoryClient(MemoryServer({"REQUEST_TIMEOUT": str(SHORT_SECONDS)}, ScriptedGateway(handler)))
        client.send(wire("POST", "/v1/messages", body=dict(MESSAGE, stream=True)))
        await until(lambda: client.connection.idle)
        assert client.written.endswith(b"\r\n0\r\n\r\n")
        (answer,) = client.answers("POST")
        events = sse_events(answer.body)
        assert answer.status == 200 and [name for name, _ in events] == ["message_start", "error"]
        assert events[-1][1]["error"]["type"] == "timeout_error"

    asyncio.run(main())


def test_an_unexpected_exception_in_the_handler_is_a_500_that_keeps_its_details_to_itself():
    """A handler bug is answered 500 with a plain sentence; the exception's text never reaches the client."""

    async def handler(request: Request, out: ResponseWriter) -> None:
        raise RuntimeError("secret internals at 0xdeadbeef")

    async def main() -> None:
        client = MemoryClient(MemoryServer(gateway=ScriptedGateway(handler)))
        client.send(wire("POST", "/v1/messages", body=MESSAGE))
        await until(lambda: client.connection.idle)
        (answer,) = client.answers("POST")
        assert answer.status == 500 and is_anthropic_envelope(answer.json())
        assert "internal error" in answer.json()["error"]["message"] and b"secret" not in answer.body

    asyncio.run(main())


def test_a_proxy_error_from_the_handler_is_rendered_in_the_front_envelope():
    """A ProxyError raised by the handler becomes its status in the path's envelope, with the request-id."""

    async def handler(request: Request, out: ResponseWriter) -> None:
        raise ProxyError("no such model", status=404, error_type="not_found_error")

    async def main() -> None:
        client = MemoryClient(MemoryServer(gateway=ScriptedGateway(handler)))
        client.send(wire("POST", "/v1/chat/completions", body={"model": "x"}) + wire("POST", "/v1/messages", body=MESSAGE))
        await until(lambda: client.connection.idle)
        chat, anthropic = client.answers("POST", "POST")
        assert chat.status == anthropic.status == 404
        assert is_chat_envelope(chat.json()) and chat.json()["error"]["message"] == "no such model"
        assert is_anthropic_envelope(anthropic.json()) and anthropic.json()["error"]["type"] == "not_found_error"
        assert chat.headers["request-id"] != anthropic.headers["request-id"]

    asyncio.run(main())


# =============================================================================================
# Flow control and the idle timer
# =============================================================================================


def test_pause_writing_holds_the_writer_until_resume_writing():
    """While the transport asks to pause, the handler's next write waits; resume_writing lets it go on."""
    progress: list[str] = []

    async def handler(request: Request, out: ResponseWriter) -> None:
        out.prepare_stream(200, [("content-type", "text/plain")])
        await out.write(b"first")
        progress.append("first written")
        await out.write(b"second")
        progress.append("second written")
        await out.end()

    async def main() -> None:
        client = MemoryClient(MemoryServer(gateway=ScriptedGateway(handler)))
        client.connection.pause_writing()
        client.send(wire("POST", "/v1/messages", body=MESSAGE))
        await until(lambda: b"first" in client.written)
        await turns()
        assert progress == [] and b"second" not in client.written
        client.connection.resume_writing()
        await until(lambda: client.connection.idle)
        assert progress == ["first written", "second written"]
        (answer,) = client.answers("POST")
        assert answer.body == b"firstsecond"

    asyncio.run(main())


def test_a_client_that_leaves_while_writes_are_paused_releases_the_writer():
    """A reset while the writer waits for resume_writing ends the wait: the handler is cancelled, nothing hangs."""
    outcome: list[str] = []

    async def handler(request: Request, out: ResponseWriter) -> None:
        try:
            await out.write(b"first")
        except BaseException as error:
            outcome.append(type(error).__name__)
            raise

    async def main() -> None:
        gateway = ScriptedGateway(handler)
        server = MemoryServer(gateway=gateway)
        client = MemoryClient(server)
        client.connection.pause_writing()
        client.send(wire("POST", "/v1/messages", body=MESSAGE))
        await until(lambda: b"first" in client.written)
        client.reset()
        await until(lambda: gateway.finished)
        assert outcome == ["CancelledError"] and client.connection.write_resumed.done()
        # The head went out before the client left: the access line keeps the status it sent.
        assert [r.status for r in gateway.finished] == [200] and server.connections == set()

    asyncio.run(main())


def test_pipelined_bytes_over_the_limit_pause_reading_until_the_answer(monkeypatch):
    """Bytes sent ahead while a request is served pause reading past MAX_PIPELINED_BYTES; the answer resumes it."""
    monkeypatch.setattr(connection_module, "MAX_PIPELINED_BYTES", 1500)

    async def main() -> None:
        release = asyncio.Event()

        async def handler(request: Request, out: ResponseWriter) -> None:
            if request.path == "/slow":
                await release.wait()
            await out.send(200, [("content-type", "text/plain")], request.path.encode())

        client = MemoryClient(MemoryServer(gateway=ScriptedGateway(handler)))
        client.send(wire("GET", "/slow"))
        client.send(wire("GET", "/next", [("x-pad", "p" * 1000)]))
        assert client.transport.reading
        client.send(wire("GET", "/after", [("x-pad", "p" * 1000)]))
        assert not client.transport.reading
        release.set()
        await until(lambda: client.connection.idle)
        assert client.transport.reading
        assert [a.body for a in client.answers("GET", "GET", "GET")] == [b"/slow", b"/next", b"/after"]

    asyncio.run(main())


def test_an_idle_keep_alive_connection_is_closed_quietly_by_the_idle_timer(monkeypatch):
    """A connection silent for KEEPALIVE_IDLE_TIMEOUT after an answer is closed without a word; a slow handler is not cut short."""
    monkeypatch.setattr(connection_module, "KEEPALIVE_IDLE_TIMEOUT", SHORT_SECONDS)

    async def handler(request: Request, out: ResponseWriter) -> None:
        await asyncio.sleep(3 * SHORT_SECONDS)
        await out.send(200, [("content-type", "text/plain")], b"slow but served")

    async def main() -> None:
        client = MemoryClient(MemoryServer(gateway=ScriptedGateway(handler)))
        client.send(wire("GET", "/health"))
        await until(lambda: client.connection.idle)
        written = client.written
        await asyncio.sleep(SHORT_SECONDS / 2)
        assert not client.transport.closing
        await until(lambda: client.transport.lost)
        assert client.written == written
        (answer,) = client.answers("GET")
        assert answer.status == 200 and answer.body == b"slow but served"
        # A connection that never sends a byte is closed the same way, after IDLE_FIRST_BYTE_TIMEOUT.
        silent = MemoryClient(MemoryServer({"IDLE_FIRST_BYTE_TIMEOUT": str(SHORT_SECONDS)}))
        await until(lambda: silent.transport.lost)
        assert silent.written == b""

    asyncio.run(main())


def test_while_the_server_is_closing_an_answer_says_connection_close_and_the_connection_closes():
    """During a graceful shutdown no connection is kept alive: the answer carries `connection: close`."""

    async def main() -> None:
        server = MemoryServer()
        client = MemoryClient(server)
        server.closing = True
        client.send(wire("GET", "/health"))
        await until(lambda: client.transport.lost)
        (answer,) = client.answers("GET")
        assert answer.status == 200 and answer.headers["connection"] == "close"

    asyncio.run(main())
