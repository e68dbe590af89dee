"""The upstream HTTP client over real loopback sockets, against small scripted servers.

The fake servers parse requests by hand (not with h11), so they check what the client really
writes. Timeouts are a fraction of a second to keep the file fast.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import zlib
from dataclasses import dataclass, field

import pytest

from translate.errors import UpstreamTimeout, UpstreamUnavailable
from upstreams.http import ClientSettings, HTTPClient
from upstreams.transport import Origin, parse_url

FAST = ClientSettings(connect_timeout=0.5, read_timeout=0.5, idle_expiry=5.0)


# ---------------------------------------------------------------------------------------------
# Fake upstream servers
# ---------------------------------------------------------------------------------------------


@dataclass
class RawRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


@dataclass
class Peer:
    """The server's side of one accepted connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    requests: list[RawRequest] = field(default_factory=list)
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_request(self) -> RawRequest | None:
        """The next request, or None when the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.client_closed.set()
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ")
        headers = []
        for line in lines[1:]:
            if line:
                name, value = line.split(":", 1)
                headers.append((name.strip().lower(), value.strip()))
        request = RawRequest(method, target, headers, b"")
        request.body = await self.reader.readexactly(int(request.header("content-length") or 0))
        self.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_for_client_close(self) -> None:
        """Read and drop everything until the client closes its side."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.client_closed.set()


class FakeUpstream:
    """A loopback server that runs `handler(peer)` for every accepted connection."""

    def __init__(self, handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.peers: list[Peer] = []
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> FakeUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    @property
    def origin(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.append(asyncio.current_task())
        peer = Peer(reader, writer)
        self.peers.append(peer)
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cancelled handler ends quietly: asyncio logs cancelled connection callbacks
        finally:
            writer.close()


def response(status: int = 200, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """An HTTP/1.1 response with a Content-Length."""
    lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked_head(status: int = 200) -> bytes:
    return f"HTTP/1.1 {status} OK\r\nTransfer-Encoding: chunked\r\n\r\n".encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def answering(body: bytes = b"hello", headers: tuple[tuple[str, str], ...] = ()):
    """A keep-alive handler that answers every request with `body`."""

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(response(200, body, headers))

    return handler


async def eventually(condition, timeout: float = 1.0) -> None:
    """Wait until condition() is true, failing after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Requests and bodies
# ---------------------------------------------------------------------------------------------


def test_two_sequential_requests_share_one_keep_alive_connection():
    """Two requests in a row travel over a single TCP connection."""

    async def main():
        async with FakeUpstream(answering(b"hi")) as upstream:
            client = HTTPClient(FAST)
            for _ in range(2):
                async with await client.request("GET", upstream.url(), []) as resp:
                    assert await resp.read() == b"hi"
            assert len(upstream.peers) == 1
            assert len(upstream.peers[0].requests) == 2
            assert client.pool_stats() == {"idle": 1, "active": 0, "by_origin": {upstream.origin: 1}}
            await client.aclose()
            assert client.pool_stats()["idle"] == 0

    asyncio.run(main())


def test_request_adds_host_content_length_and_identity_encoding_but_keeps_caller_headers():
    """Host, Content-Length and accept-encoding: identity are added; the caller's headers go as given."""

    async def main():
        async with FakeUpstream(answering()) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request(
                "POST", upstream.url("/v1/chat?x=1&y=2"), [("Authorization", "Bearer k"), ("X-Two", "a")], b"{}"
            )
            await resp.read()
            resp = await client.request("GET", upstream.url(), [("Accept-Encoding", "gzip")])
            await resp.read()
            first, second = upstream.peers[0].requests
            assert (first.method, first.target, first.body) == ("POST", "/v1/chat?x=1&y=2", b"{}")
            assert first.header("host") == f"127.0.0.1:{upstream.port}"
            assert first.header("content-length") == "2"
            assert first.header("accept-encoding") == "identity"
            assert first.header("authorization") == "Bearer k"
            assert first.header("x-two") == "a"
            assert second.header("accept-encoding") == "gzip"
            assert second.header("content-length") is None
            await client.aclose()

    asyncio.run(main())


def test_content_length_body_is_read_whole_with_lower_cased_headers():
    """A Content-Length body arrives whole and header names are lower-cased."""
    body = bytes(range(256)) * 1000

    async def main():
        async with FakeUpstream(answering(body, (("X-Request-Id", "abc"),))) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert resp.status == 200
            assert ("x-request-id", "abc") in resp.headers
            assert resp.header("X-Request-ID") == "abc"
            assert resp.header("missing") is None
            assert await resp.read() == body
            await client.aclose()

    asyncio.run(main())


def test_chunked_body_is_decoded():
    """A chunked body is reassembled without the chunk framing."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(chunked_head() + chunk(b"one ") + chunk(b"two") + b"0\r\n\r\n")
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == b"one two"
            assert client.pool_stats()["idle"] == 1
            await client.aclose()

    asyncio.run(main())


def test_body_read_until_close_is_complete_and_the_connection_is_not_pooled():
    """An HTTP/1.0-style body without length ends at EOF, and that connection cannot be reused."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
        await peer.send(b"part two")
        peer.writer.close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == b"part one, part two"
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await client.aclose()

    asyncio.run(main())


def test_connection_close_response_is_not_pooled():
    """A response carrying Connection: close leaves nothing in the pool."""

    async def main():
        async with FakeUpstream(answering(b"x", (("Connection", "close"),))) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == b"x"
            assert client.pool_stats()["idle"] == 0
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)
            await client.aclose()

    asyncio.run(main())


def test_streamed_chunks_reach_the_caller_before_the_next_one_is_sent():
    """iter_bytes yields the first chunk while the server still holds back the second."""

    second_allowed = None

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(chunked_head() + chunk(b"data: 1\n\n"))
        await second_allowed.wait()
        await peer.send(chunk(b"data: 2\n\n") + b"0\r\n\r\n")
        await peer.wait_for_client_close()

    async def main():
        nonlocal second_allowed
        second_allowed = asyncio.Event()
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            seen = []
            async with await client.request("GET", upstream.url(), []) as resp:
                async for piece in resp.iter_bytes():
                    seen.append((piece, second_allowed.is_set()))
                    second_allowed.set()
            assert seen == [(b"data: 1\n\n", False), (b"data: 2\n\n", True)]
            await client.aclose()

    asyncio.run(main())


def test_head_request_and_204_have_empty_bodies_and_keep_the_connection():
    """Responses without a body (HEAD, 204) finish at once and the connection stays pooled."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")  # HEAD: length but no body
        await peer.read_request()
        await peer.send(b"HTTP/1.1 204 No Content\r\n\r\n")
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            for method in ("HEAD", "DELETE"):
                resp = await client.request(method, upstream.url(), [])
                assert await resp.read() == b""
            assert len(upstream.peers) == 1
            assert client.pool_stats()["idle"] == 1
            await client.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# Failures and timeouts
# ---------------------------------------------------------------------------------------------


def test_connection_refused_is_upstream_unavailable_naming_the_origin_but_no_header():
    """A refused connection is a 502 whose message names the origin and leaks no header value."""

    async def main():
        port = unused_port()
        client = HTTPClient(FAST)
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.request("GET", f"http://127.0.0.1:{port}/v1?key=sk-query", [("x-api-key", "sk-secret")])
        assert caught.value.status == 502
        assert f"http://127.0.0.1:{port}" in caught.value.message
        assert "sk-secret" not in caught.value.message and "sk-query" not in caught.value.message
        assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}

    asyncio.run(main())


def test_server_that_never_completes_the_tls_handshake_is_a_connect_timeout():
    """Accepting TCP but never answering the TLS hello ends in UpstreamTimeout (504)."""

    async def main():
        async with FakeUpstream(Peer.wait_for_client_close) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=0.3, read_timeout=5.0))
            with pytest.raises(UpstreamTimeout) as caught:
                await asyncio.wait_for(client.request("GET", f"https://127.0.0.1:{upstream.port}/", []), 3.0)
            assert caught.value.status == 504
            assert f"https://127.0.0.1:{upstream.port}" in caught.value.message
            assert client.pool_stats()["active"] == 0
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)

    asyncio.run(main())


def test_no_response_head_within_read_timeout_is_upstream_timeout():
    """A server that reads the request and stays silent produces UpstreamTimeout, not a hang."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=0.2))
            with pytest.raises(UpstreamTimeout) as caught:
                await asyncio.wait_for(client.request("POST", upstream.url(), [], b"{}"), 3.0)
            assert "no response" in caught.value.message
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)

    asyncio.run(main())


def test_silence_in_the_middle_of_the_body_is_upstream_timeout_and_closes_the_socket():
    """A body that stalls longer than read_timeout raises UpstreamTimeout and is never pooled."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=0.2))
            resp = await client.request("GET", upstream.url(), [])
            with pytest.raises(UpstreamTimeout) as caught:
                await asyncio.wait_for(resp.read(), 3.0)
            assert "middle of the response body" in caught.value.message
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)

    asyncio.run(main())


def test_body_cut_short_by_the_server_is_upstream_unavailable():
    """EOF before Content-Length bytes arrived is a 502 saying the body was incomplete."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            with pytest.raises(UpstreamUnavailable) as caught:
                await resp.read()
            assert "before the response body was complete" in caught.value.message
            assert client.pool_stats()["active"] == 0

    asyncio.run(main())


def test_garbage_instead_of_http_is_upstream_unavailable():
    """A server speaking something other than HTTP is a 502, not an h11 exception."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request("GET", upstream.url(), [])
            assert upstream.origin in caught.value.message
            assert client.pool_stats()["active"] == 0

    asyncio.run(main())


def test_new_connection_closed_without_a_response_is_not_retried():
    """A fresh connection that closes before answering fails at once, with one attempt only."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request("POST", upstream.url(), [], b"{}")
            assert "without sending a response" in caught.value.message
            assert len(upstream.peers) == 1

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# Stale keep-alive connections
# ---------------------------------------------------------------------------------------------


def test_pooled_connection_closed_by_the_server_while_idle_is_replaced():
    """After the server drops an idle keep-alive connection, the next request still succeeds."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response(200, b"first"))
        # The server's idle timeout: close without a word, as nginx and uvicorn do.

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == b"first"
            await asyncio.sleep(0.05)  # let the FIN arrive
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == b"first"
            assert len(upstream.peers) == 2
            await client.aclose()

    asyncio.run(main())


def test_pooled_connection_that_received_a_stray_408_while_idle_is_not_used():
    """Bytes that arrive on an idle connection (a 408 from the server's idle timer) never become the next response."""
    idle_timer_fired = None

    async def handler(peer: Peer) -> None:
        if len(upstream.peers) > 1:
            return await answering(b"fresh")(peer)
        await peer.read_request()
        await peer.send(response(200, b"ok"))
        await asyncio.sleep(0.02)  # the 408 comes later, on its own, while the connection is idle
        await peer.send(response(408, b"idle timeout", (("Connection", "close"),)))
        idle_timer_fired.set()
        await peer.wait_for_client_close()

    async def main():
        nonlocal upstream, idle_timer_fired
        idle_timer_fired = asyncio.Event()
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == b"ok"
            await asyncio.wait_for(idle_timer_fired.wait(), 1.0)
            await asyncio.sleep(0.05)  # let the 408 arrive
            resp = await client.request("GET", upstream.url(), [])
            assert resp.status == 200
            assert await resp.read() == b"fresh"
            assert len(upstream.peers) == 2
            await client.aclose()

    upstream = None
    asyncio.run(main())


def test_reused_connection_that_breaks_before_any_response_byte_is_retried_once():
    """A pooled connection that dies when the request arrives is replaced by a fresh one, once."""

    async def handler(peer: Peer) -> None:
        first_connection = len(upstream.peers) == 1
        await peer.read_request()
        await peer.send(response(200, b"one"))
        await peer.read_request()
        if first_connection:
            return  # the race: the server gave up on the connection just as the request came in
        await peer.send(response(200, b"two"))
        await peer.wait_for_client_close()

    async def main():
        nonlocal upstream
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("POST", upstream.url(), [], b"a")
            assert await resp.read() == b"one"
            resp = await client.request("POST", upstream.url(), [], b"b")
            assert await resp.read() == b"one"  # the fresh connection's first answer
            assert len(upstream.peers) == 2
            assert upstream.peers[1].requests[0].body == b"b"
            await client.aclose()

    upstream = None
    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# Cancellation and release
# ---------------------------------------------------------------------------------------------


def test_cancelling_a_body_read_closes_the_socket_and_leaves_the_pool_empty():
    """Cancelling the reader mid-body closes the upstream socket within a second and pools nothing."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(chunked_head() + chunk(b"first token"))
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=30.0))
            got_first = asyncio.Event()

            async def consume():
                resp = await client.request("GET", upstream.url(), [])
                async for _ in resp.iter_bytes():  # no aclose(): cancellation alone must clean up
                    got_first.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(got_first.wait(), 1.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)

    asyncio.run(main())


def test_cancelling_while_waiting_for_the_head_closes_the_socket():
    """Cancelling request() before the first response byte closes the upstream socket at once."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=30.0))
            task = asyncio.create_task(client.request("POST", upstream.url(), [], b"{}"))
            await eventually(lambda: upstream.peers and upstream.peers[0].requests)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)

    asyncio.run(main())


def test_response_closed_with_its_body_unread_is_not_pooled():
    """aclose() before the body was read closes the socket instead of pooling it."""

    async def main():
        async with FakeUpstream(answering(b"never read")) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert client.pool_stats()["active"] == 1
            await resp.aclose()
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)
            with pytest.raises(RuntimeError):
                await resp.read()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# Content encodings
# ---------------------------------------------------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    "encoding, compress",
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_compressed_body_is_decoded_and_its_encoding_headers_dropped(encoding, compress):
    """A gzip or deflate body comes out plain, without content-encoding or a stale content-length."""
    plain = b'{"id": "msg_1", "content": "' + b"x" * 5000 + b'"}'

    async def main():
        headers = (("Content-Encoding", encoding), ("Content-Type", "application/json"))
        async with FakeUpstream(answering(compress(plain), headers)) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == plain
            assert resp.header("content-encoding") is None
            assert resp.header("content-length") is None
            assert resp.header("content-type") == "application/json"
            assert client.pool_stats()["idle"] == 1
            await client.aclose()

    asyncio.run(main())


def test_unsupported_content_encoding_is_upstream_unavailable():
    """A brotli body cannot be decoded, so it is a 502 naming the encoding."""

    async def main():
        async with FakeUpstream(answering(b"\x0b\x02\x80", (("Content-Encoding", "br"),))) as upstream:
            client = HTTPClient(FAST)
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request("GET", upstream.url(), [])
            assert "br" in caught.value.message
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}

    asyncio.run(main())


def test_corrupt_gzip_body_is_upstream_unavailable():
    """A body that claims gzip but is not raises a 502 instead of a zlib error."""

    async def main():
        async with FakeUpstream(answering(b"not gzip at all", (("Content-Encoding", "gzip"),))) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            with pytest.raises(UpstreamUnavailable) as caught:
                await resp.read()
            assert "corrupt gzip" in caught.value.message
            assert client.pool_stats()["active"] == 0

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------


def self_signed_certificate(directory) -> tuple[str, str]:
    """A throwaway certificate for IP 127.0.0.1 and its key, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def server_tls(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def test_self_signed_certificate_is_refused_with_the_default_ca_bundle(tmp_path):
    """Without the certificate in the CA bundle the handshake fails with a 502 about the certificate."""
    cert, key = self_signed_certificate(tmp_path)

    async def main():
        async with FakeUpstream(answering(), tls=server_tls(cert, key)) as upstream:
            client = HTTPClient(FAST)
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request("GET", upstream.url(), [])
            assert "certificate" in caught.value.message
            assert upstream.origin in caught.value.message
            assert client.pool_stats()["active"] == 0

    asyncio.run(main())


def test_self_signed_certificate_is_accepted_from_ca_file_with_alpn_http11(tmp_path):
    """With ca_file pointing at the certificate, HTTPS works, negotiates http/1.1 and keeps the connection."""
    cert, key = self_signed_certificate(tmp_path)

    async def main():
        async with FakeUpstream(answering(b"secure"), tls=server_tls(cert, key)) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=1.0, ca_file=cert))
            for _ in range(2):
                resp = await client.request("GET", upstream.url(), [])
                assert await resp.read() == b"secure"
            assert len(upstream.peers) == 1
            alpn = upstream.peers[0].writer.get_extra_info("ssl_object").selected_alpn_protocol()
            assert alpn == "http/1.1"
            assert client.pool_stats()["by_origin"] == {upstream.origin: 1}
            await client.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# Pool limits
# ---------------------------------------------------------------------------------------------


def test_idle_connections_are_closed_after_idle_expiry():
    """A pooled connection is closed once it has been idle for idle_expiry seconds."""

    async def main():
        async with FakeUpstream(answering()) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=1.0, idle_expiry=0.2))
            resp = await client.request("GET", upstream.url(), [])
            await resp.read()
            assert client.pool_stats()["idle"] == 1
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            resp = await client.request("GET", upstream.url(), [])
            await resp.read()
            assert len(upstream.peers) == 2
            await client.aclose()

    asyncio.run(main())


def test_pool_keeps_at_most_max_idle_per_origin_connections():
    """Three concurrent requests open three connections; only max_idle_per_origin stay idle."""
    release = None

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await release.wait()
            await peer.send(response(200, b"ok"))

    async def main():
        nonlocal release
        release = asyncio.Event()
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=1.0, max_idle_per_origin=2))

            async def one():
                resp = await client.request("GET", upstream.url(), [])
                return await resp.read()

            tasks = [asyncio.create_task(one()) for _ in range(3)]
            await eventually(lambda: sum(len(peer.requests) for peer in upstream.peers) == 3)
            assert client.pool_stats()["active"] == 3
            release.set()
            assert await asyncio.gather(*tasks) == [b"ok"] * 3
            assert client.pool_stats() == {"idle": 2, "active": 0, "by_origin": {upstream.origin: 2}}
            await eventually(lambda: any(peer.client_closed.is_set() for peer in upstream.peers))
            await asyncio.sleep(0.05)  # room for a wrong second close to show up
            assert sum(peer.client_closed.is_set() for peer in upstream.peers) == 1
            await client.aclose()

    asyncio.run(main())


def test_aclose_closes_every_idle_connection():
    """HTTPClient.aclose() closes pooled sockets so the server sees them go."""

    async def main():
        async with FakeUpstream(answering()) as upstream:
            client = HTTPClient(FAST)
            resp = await client.request("GET", upstream.url(), [])
            await resp.read()
            await client.aclose()
            assert client.pool_stats()["idle"] == 0
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------------


def test_urls_keep_path_and_query_and_get_default_ports():
    """parse_url splits origin and target, filling in 80 and 443."""
    assert parse_url("https://api.example.com/v1/messages?beta=true") == (
        Origin("https", "api.example.com", 443), "/v1/messages?beta=true"
    )
    assert parse_url("HTTP://Example.COM") == (Origin("http", "example.com", 80), "/")
    assert parse_url("http://127.0.0.1:8080/x") == (Origin("http", "127.0.0.1", 8080), "/x")


def test_ipv6_literal_hosts_are_bracketed_in_host_header_and_origin():
    """An IPv6 literal connects without brackets but is written with them."""
    origin, target = parse_url("http://[::1]:11434/api/chat")
    assert (origin.host, origin.port, target) == ("::1", 11434, "/api/chat")
    assert origin.host_header == "[::1]:11434"
    assert str(origin) == "http://[::1]:11434"
    assert parse_url("https://[2001:db8::1]/")[0].host_header == "[2001:db8::1]"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com/v1", "https:///v1", "http://user:pw@example.com/", "http://h:notaport/"]
)
def test_urls_that_are_not_plain_http_or_https_are_value_errors(url):
    """Other schemes, missing hosts, credentials and bad ports are configuration errors."""
    with pytest.raises(ValueError):
        parse_url(url)


def test_abort_now_sends_the_fin_at_once_and_never_touches_a_finished_response():
    """The client left mid-stream: the upstream sees the close before any loop turn passes; a body
    already read leaves its pooled connection alone."""

    async def main():
        closed = asyncio.Event()

        async def holding(peer: Peer) -> None:
            await peer.read_request()
            await peer.send(chunked_head() + chunk(b"first"))
            await peer.wait_for_client_close()
            closed.set()

        async with FakeUpstream(answering(b"done")) as finished_upstream, FakeUpstream(holding) as upstream:
            client = HTTPClient(FAST)
            finished = await client.request("GET", finished_upstream.url(), [])
            assert await finished.read() == b"done"
            finished.abort_now()
            assert client.pool_stats()["idle"] == 1  # still pooled

            streaming = await client.request("GET", upstream.url(), [])
            chunks = streaming.iter_bytes().__aiter__()
            assert await chunks.__anext__() == b"first"
            streaming.abort_now()
            await asyncio.wait_for(closed.wait(), 1)
            await client.aclose()

    asyncio.run(main())
