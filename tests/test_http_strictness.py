"""Hostile and odd HTTP from clients: each gets a clear 4xx or 505 in the client's dialect, at once.

In memory (the harness of tests/test_connection.py, no socket): HTTP versions other than 1.0 and 1.1,
control characters in header values, non-ASCII in the headers forwarded upstream, chunk sizes no body
can hold, errors before a head is complete answered in the envelope of the path on the request line,
one access line for every request whose head was read, and log arguments that cannot forge a log line.
On loopback: the same through real sockets, the first-byte deadline, and a LOG_FILE read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import pytest
from fake_upstream import RunningProxy
from loopback import RawClient, http_request_bytes, request
from test_connection import (
    SHORT_SECONDS,
    MemoryClient,
    MemoryServer,
    is_anthropic_envelope,
    is_chat_envelope,
    turns,
    until,
    wire,
)

from server.config import Config
from server.gateway import Gateway
from server.listener import banner
from server.logs import RedactingFilter, Redactor, Verbatim, printable, setup_logging

CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@contextlib.contextmanager
def access_lines():
    """Collect the records of the access logger (whatever handlers or levels earlier tests left)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("switchboard.access")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def refused(data: list[bytes] | bytes, settings: dict[str, str] | None = None, *, method: str = "POST"):
    """Send `data` (one read, or one read per item); wait for the close; return the one answer and the client."""
    client = MemoryClient(MemoryServer(settings))
    for piece in [data] if isinstance(data, bytes) else data:
        client.send(piece)
    await until(lambda: client.transport.lost)
    (answer,) = client.answers(method)
    return answer, client


# =============================================================================================
# Request lines: HTTP/1.0 and HTTP/1.1 only
# =============================================================================================


@pytest.mark.parametrize("version", ["2.0", "0.9", "1.2", "3.0"])
def test_a_request_line_with_another_http_version_is_505_and_closed(version):
    """h11 parses any HTTP/d.d; only 1.0 and 1.1 are served: the others get 505, in the path's envelope, and a close."""

    async def main() -> None:
        with access_lines() as lines:
            answer, _ = await refused(wire("POST", "/v1/chat/completions", body=CHAT, version=version))
        assert answer.status == 505 and answer.headers["connection"] == "close"
        assert is_chat_envelope(answer.json()) and f"HTTP/{version}" in answer.json()["error"]["message"]
        assert [line.access["status"] for line in lines] == [505]

    asyncio.run(main())


def test_an_http_2_preface_on_the_plain_port_is_505():
    """The h2 connection preface (`PRI * HTTP/2.0`) gets a 505 saying which versions are served, not a 200 or a hang."""

    async def main() -> None:
        answer, _ = await refused(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", method="GET")
        assert answer.status == 505 and is_anthropic_envelope(answer.json())
        assert "HTTP/1.1" in answer.json()["error"]["message"]

    asyncio.run(main())


# =============================================================================================
# Header values
# =============================================================================================


@pytest.mark.parametrize("byte", [0x7F, 0x01, 0x08, 0x1B, 0x1F])
def test_a_control_character_in_a_header_value_is_400_naming_the_header(byte):
    """h11 lets DEL and most C0 controls through in field values; they get a 400 naming the header, at once."""
    head = wire("POST", "/v1/messages", body=MESSAGE).replace(b"\r\n\r\n", b"\r\nx-note: a" + bytes([byte]) + b"b\r\n\r\n", 1)

    async def main() -> None:
        answer, _ = await refused(head)
        assert answer.status == 400 and answer.headers["connection"] == "close"
        message = answer.json()["error"]["message"]
        assert is_anthropic_envelope(answer.json()) and message.startswith("x-note: ") and f"0x{byte:02x}" in message

    asyncio.run(main())


def test_a_control_character_in_an_earlier_duplicate_header_is_also_400():
    """Every field is checked, not only the last of a repeated name (the one the request's dict keeps)."""
    head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-note: a\x7f\r\nx-note: fine\r\n\r\n"

    async def main() -> None:
        answer, _ = await refused(head, method="GET")
        assert answer.status == 400 and answer.json()["error"]["message"].startswith("x-note: ")

    asyncio.run(main())


def test_tabs_and_utf_8_in_ordinary_header_values_are_still_served():
    """HTAB inside a value and UTF-8 bytes (obs-text) in a header nobody forwards are fine."""
    extra = b"x-note: a\tb\r\nx-title: caf\xc3\xa9 \xe2\x82\xac\r\n"
    data = wire("GET", "/health").replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n", 1)

    async def main() -> None:
        client = MemoryClient(MemoryServer())
        client.send(data)
        await until(lambda: client.connection.idle and client.written)
        (answer,) = client.answers("GET")
        assert answer.status == 200 and not client.transport.closing

    asyncio.run(main())


@pytest.mark.parametrize("name", ["anthropic-beta", "anthropic-version"])
def test_non_ascii_in_a_header_forwarded_upstream_is_400_naming_it(name):
    """anthropic-version and anthropic-beta reach the upstream as sent: a byte outside visible ASCII is a 400."""
    data = wire("POST", "/v1/messages", [(name, "x")], body=MESSAGE).replace(
        f"{name}: x".encode(), f"{name}: tools-2024\xe9".encode("latin-1"), 1)

    async def main() -> None:
        answer, _ = await refused(data)
        assert answer.status == 400 and answer.headers["connection"] == "close"
        assert answer.json()["error"]["message"] == f"{name}: header value must be visible ASCII"

    asyncio.run(main())


# =============================================================================================
# Chunk sizes
# =============================================================================================


def test_a_chunk_size_of_twenty_hex_digits_is_400_at_once_not_a_wait_for_body_timeout():
    """`99999999999999999999` fits h11's 20 digits but no 64 bits: 400 as soon as the size line arrives."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        head = wire("POST", "/v1/chat/completions", [("transfer-encoding", "chunked")])
        answer, _ = await refused([head, b"99999999999999999999\r\n", b"abc"])
        assert loop.time() - started < 1.0  # BODY_TIMEOUT is 120 s
        assert answer.status == 400 and answer.headers["connection"] == "close"
        assert is_chat_envelope(answer.json()) and "chunk size" in answer.json()["error"]["message"]

    asyncio.run(main())


def test_a_chunk_larger_than_max_request_bytes_is_413_before_its_data_arrives():
    """MAX_REQUEST_BYTES=2048: a chunk declaring 64 KiB, or one taking the body past the limit, is 413 at once."""

    async def main() -> None:
        head = wire("POST", "/v1/messages", [("transfer-encoding", "chunked")])
        for body_start in ([b"10000\r\n"], [b"400\r\n" + b"x" * 1024 + b"\r\n", b"401\r\nxx"]):
            answer, client = await refused([head, *body_start], {"MAX_REQUEST_BYTES": "2048"})
            assert answer.status == 413 and answer.json()["error"]["type"] == "request_too_large", body_start
            assert "MAX_REQUEST_BYTES" in answer.json()["error"]["message"]

    asyncio.run(main())


def test_a_chunked_body_within_the_limit_is_served_whole_line_by_line_or_byte_by_byte():
    """The chunk-size check does not refuse a body that fits, however it is split into reads."""
    body = json.dumps(MESSAGE).encode()
    data = wire("POST", "/v1/messages/count_tokens", [("transfer-encoding", "chunked"), ("content-type", "application/json")])
    data += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])

    async def served(pieces: list[bytes]) -> int:
        client = MemoryClient(MemoryServer({"MAX_REQUEST_BYTES": "1024"}))
        for piece in pieces:
            client.send(piece)
        await until(lambda: client.written and client.connection.idle)
        (answer,) = client.answers("POST")
        return answer.status

    async def main() -> None:
        whole = await served([data])
        lines = await served(data.splitlines(keepends=True))
        single = await served([data[i:i + 1] for i in range(len(data))])
        assert whole == lines == single == 200

    asyncio.run(main())


# =============================================================================================
# Errors before a complete head: in the dialect of the path on the request line
# =============================================================================================


def test_a_head_too_large_in_pieces_on_the_chat_path_is_431_in_the_chat_envelope():
    """MAX_HEADER_BYTES=2048: h11 refuses the growing head before it is a request; the request line names the path."""
    big = wire("POST", "/v1/chat/completions", [("x-big", "a" * 3000)], body=CHAT)

    async def main() -> None:
        answer, _ = await refused([big[:1500], big[1500:2500], big[2500:]], {"MAX_HEADER_BYTES": "2048"})
        assert answer.status == 431 and is_chat_envelope(answer.json())

    asyncio.run(main())


def test_a_slow_head_on_the_chat_path_is_408_in_the_chat_envelope_even_after_an_anthropic_request():
    """HEADER_TIMEOUT=0.05: the path of the head being read counts, not that of the request before it."""

    async def main() -> None:
        client = MemoryClient(MemoryServer({"HEADER_TIMEOUT": str(SHORT_SECONDS)}))
        client.send(wire("POST", "/v1/messages/count_tokens", body=MESSAGE))
        await until(lambda: client.written and client.connection.idle)
        client.send(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        await until(lambda: client.transport.lost)
        first, second = client.answers("POST", "POST")
        assert first.status == 200
        assert second.status == 408 and is_chat_envelope(second.json()) and "HEADER_TIMEOUT" in second.json()["error"]["message"]

    asyncio.run(main())


def test_a_malformed_head_on_the_chat_path_is_400_in_the_chat_envelope_and_logged_without_an_access_line(caplog):
    """A header line h11 cannot parse: 400 in the chat envelope; no request, so no access line, but an info line."""
    data = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nthis is not a header\r\n\r\n"

    async def main() -> None:
        with access_lines() as lines, caplog.at_level(logging.INFO, logger="switchboard"):
            logging.getLogger("switchboard").addHandler(caplog.handler)
            try:
                answer, _ = await refused(data)
            finally:
                logging.getLogger("switchboard").removeHandler(caplog.handler)
        assert answer.status == 400 and is_chat_envelope(answer.json())
        assert lines == []
        assert any("before a request head" in r.getMessage() and "status=400" in r.getMessage() for r in caplog.records)

    asyncio.run(main())


def test_garbage_without_a_request_line_still_gets_the_anthropic_envelope():
    """No path to go by (a TLS hello on the plain port): Anthropic's envelope, as before."""

    async def main() -> None:
        answer, _ = await refused(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", method="GET")
        assert answer.status == 400 and is_anthropic_envelope(answer.json())

    asyncio.run(main())


# =============================================================================================
# One access line for every request whose head was read
# =============================================================================================


@pytest.mark.parametrize(
    ("settings", "pieces", "status", "reset"),
    [
        ({"MAX_REQUEST_BYTES": "2048"}, [wire("POST", "/v1/messages", [("content-length", "5000")])], 413, False),
        ({"MAX_REQUEST_BYTES": "2048"},
         [wire("POST", "/v1/messages", [("transfer-encoding", "chunked")]), b"7d0\r\n" + b"x" * 2000 + b"\r\n", b"7d0\r\nx"],
         413, False),
        ({"MAX_HEADERS": "8"}, [wire("POST", "/v1/messages", [(f"x-h{i}", "v") for i in range(10)])], 431, False),
        ({}, [wire("POST", "/v1/messages", [("transfer-encoding", "chunked")]) + b"zz\r\n"], 400, False),
        ({}, [wire("POST", "/v1/messages", [("transfer-encoding", "chunked"), ("content-length", "3")]) + b"abc"], 400, False),
        ({"BODY_TIMEOUT": str(SHORT_SECONDS)}, [wire("POST", "/v1/messages", body=MESSAGE)[:-5]], 408, False),
        ({}, [wire("POST", "/v1/messages", body=MESSAGE, version="2.0")], 505, False),
        ({}, [wire("POST", "/v1/messages", [("x-note", "a\x7f")], body=MESSAGE)], 400, False),
        ({}, [wire("POST", "/v1/messages", body=MESSAGE)[:-5]], 499, True),
    ],
    ids=["413-declared", "413-chunked", "431-fields", "400-chunk-size", "400-cl-and-te", "408-slow-body", "505",
         "400-control-byte", "499-left-mid-body"],
)
def test_every_refused_request_whose_head_was_read_gets_exactly_one_access_line(settings, pieces, status, reset):
    """413, 431, 400 framing, 408 slow body, 505, a forbidden byte, a client leaving mid-body: one access line each."""

    async def main() -> None:
        with access_lines() as lines:
            client = MemoryClient(MemoryServer(settings))
            for piece in pieces:
                client.send(piece)
            if reset:
                await turns()
                client.reset()
            await until(lambda: client.transport.lost)
            await turns()
        assert [(line.access["path"], line.access["status"]) for line in lines] == [("/v1/messages", status)]

    asyncio.run(main())


# =============================================================================================
# Logging hostile input
# =============================================================================================


def format_through_the_filter(message: str, *args: object, logger: str = "switchboard.access") -> str:
    """One record through the redacting filter and the text formatter, as setup_logging installs them."""
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, message, args, None)
    assert RedactingFilter(Redactor(["secret-key-123"])).filter(record)
    return logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)


def test_control_characters_in_log_arguments_are_escaped_so_no_line_can_be_forged():
    """A newline, CR, ESC, DEL, C1 NEL and U+2028 in an argument are shown escaped; the template's own text is kept."""
    model = "m\n2026-01-01 00:00:00 INFO switchboard.access GET /admin status=200\r\x1b[2J\x7f\x85\u2028\tend"
    line = format_through_the_filter("POST %s model=%s status=%d", "/v1/messages", model, 200)
    assert len(line.splitlines()) == 1
    assert line == ("INFO switchboard.access POST /v1/messages model=m\\n2026-01-01 00:00:00 INFO switchboard.access "
                    "GET /admin status=200\\r\\x1b[2J\\x7f\\x85\\u2028\\tend status=200")


def test_escaping_keeps_redaction_and_leaves_verbatim_text_and_ordinary_text_alone():
    """Secrets are still masked after escaping; the banner (Verbatim) keeps its line breaks; plain text is unchanged."""
    assert format_through_the_filter("key=%s", "secret-key-123\n") == "INFO switchboard.access key=***\\n"
    assert format_through_the_filter("%s", Verbatim("line one\n  line two"), logger="switchboard") == \
        "INFO switchboard line one\n  line two"
    plain = "caf\u00e9 \u20ac /v1/messages"
    assert printable(plain) is plain
    assert format_through_the_filter("%(a)s|%(b)d", {"a": "x\ny", "b": 3}) == "INFO switchboard.access x\\ny|3"


def test_the_banner_is_verbatim_so_its_lines_stay_lines():
    """The banner is the proxy's own multi-line text: logged with its line breaks."""
    config = Config.from_env({})
    text = banner(config, Gateway(config), 8082)
    assert isinstance(text, Verbatim) and "\n" in text


@contextlib.contextmanager
def logging_to(proxy: RunningProxy):
    """The proxy's real logging setup (LOG_FILE, the filter, the formatter) for the duration."""
    setup_logging(proxy.config)
    try:
        yield
    finally:
        for handler in logging.getLogger("switchboard").handlers:
            handler.close()
        logging.getLogger("switchboard").handlers.clear()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_model_name_with_a_newline_writes_exactly_one_access_line_to_log_file(tmp_path, log_format):
    """LOG_FILE: a model named `x\\n<forged access line>` leaves one access line, and no line starting with the forgery."""
    log_file = tmp_path / "switchboard.log"
    forged = "2026-01-01 00:00:00,000 INFO switchboard.access POST /v1/messages model=forged status=200"
    body = dict(MESSAGE, model="claude-sonnet-4-5\n" + forged)
    with RunningProxy({"LOG_FILE": str(log_file), "LOG_FORMAT": log_format}) as proxy, logging_to(proxy):
        answer = request(proxy, "POST", "/v1/messages", body)
        assert proxy.wait_for(lambda: "switchboard.access" in log_file.read_text())
    lines = log_file.read_text().splitlines()
    access = [line for line in lines if "switchboard.access" in line]
    assert len(access) == 1 and answer.headers["request-id"] in access[0], lines
    assert not any(line.startswith(forged[:10]) for line in lines), lines
    if log_format == "json":
        assert all(json.loads(line) for line in lines)


def test_a_request_line_with_controls_is_logged_on_one_line_by_the_connection_layer(tmp_path):
    """LOG_FILE: CR, VT and NEL in a malformed request line's path are escaped in the info line that refuses it."""
    log_file = tmp_path / "switchboard.log"
    with RunningProxy({"LOG_FILE": str(log_file)}) as proxy, logging_to(proxy), RawClient(proxy.port) as client:
        client.send(b"GET /v1/chat\rFORGED-one\x0bFORGED-two\x85FORGED-three HTTP/1.1\r\nhost: x\r\n\r\n")
        assert client.read_until_closed(2).status == 400
        assert proxy.wait_for(lambda: "before a request head" in log_file.read_text())
    lines = log_file.read_text().splitlines()  # universal newlines: a raw CR would end a line too
    refused = [line for line in lines if "before a request head" in line]
    assert len(refused) == 1 and not any(line.startswith("FORGED") for line in lines), lines
    assert "path=/v1/chat\\rFORGED" in refused[0] and "\\x0bFORGED" in refused[0] and "\\x85FORGED" in refused[0]


# =============================================================================================
# On loopback
# =============================================================================================


def test_over_a_socket_http_2_0_is_505_and_a_huge_chunk_size_is_400_within_a_second():
    """Real sockets: `GET / HTTP/2.0` gets 505 and a close; a 20-hex-digit chunk size gets 400 and a close at once."""
    with RunningProxy({}) as proxy:
        with RawClient(proxy.port) as client:
            client.send(http_request_bytes("GET", "/health", version="2.0"))
            response = client.read_until_closed(2)
        assert response.status == 505 and response.closed
        with RawClient(proxy.port) as client:
            started = time.monotonic()
            client.send(http_request_bytes("POST", "/v1/chat/completions", headers=[("transfer-encoding", "chunked")])
                        + b"99999999999999999999\r\n")
            response = client.read_until_closed(2)
        assert response.status == 400 and response.closed and time.monotonic() - started < 1.0
        assert set(response.json()) == {"error"} and "chunk size" in response.json()["error"]["message"]


def test_a_socket_that_sends_nothing_is_closed_after_idle_first_byte_timeout_but_a_served_one_is_not():
    """IDLE_FIRST_BYTE_TIMEOUT=0.2: a silent connection is closed quietly within a second; one that was served stays open."""
    with RunningProxy({"IDLE_FIRST_BYTE_TIMEOUT": "0.2"}) as proxy:
        with RawClient(proxy.port) as served, RawClient(proxy.port) as silent:
            started = time.monotonic()
            served.send(http_request_bytes("GET", "/health"))
            assert served.read_response().status == 200
            response = silent.read_until_closed(2)
            assert response.closed and response.raw == b"" and 0.15 <= time.monotonic() - started < 1.0
            time.sleep(0.4)  # twice the first-byte deadline, since the served connection's last answer
            served.received = b""
            assert served.send(http_request_bytes("GET", "/health"))
            again = served.read_response(2)
            assert again.status == 200 and not again.closed


# =============================================================================================
# The first-byte deadline
# =============================================================================================


def test_idle_first_byte_timeout_defaults_to_10_seconds_and_0_means_the_default():
    """IDLE_FIRST_BYTE_TIMEOUT: 10 s unless set; 0 means the default, as for the other timeouts."""
    assert Config.from_env({}).idle_first_byte_timeout == 10
    assert Config.from_env({"IDLE_FIRST_BYTE_TIMEOUT": "0"}).idle_first_byte_timeout == 10
    assert Config.from_env({"IDLE_FIRST_BYTE_TIMEOUT": "2.5"}).idle_first_byte_timeout == 2.5


def test_the_first_byte_deadline_closes_a_silent_connection_but_not_one_between_requests():
    """IDLE_FIRST_BYTE_TIMEOUT=0.05: silence before the first byte closes; after an answer the keep-alive timer applies."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        settings = {"IDLE_FIRST_BYTE_TIMEOUT": str(SHORT_SECONDS)}
        started = loop.time()  # before the connections: the deadline is armed when one is made
        silent, served = MemoryClient(MemoryServer(settings)), MemoryClient(MemoryServer(settings))
        served.send(wire("GET", "/health"))
        await until(lambda: silent.transport.lost)
        # asyncio may run a timer up to its clock resolution early: a millisecond of slack.
        assert loop.time() - started >= SHORT_SECONDS - 0.001 and silent.written == b""
        await asyncio.sleep(3 * SHORT_SECONDS)
        assert not served.transport.closing and served.connection.timer_kind == "idle"
        (answer,) = served.answers("GET")
        assert answer.status == 200

    asyncio.run(main())
