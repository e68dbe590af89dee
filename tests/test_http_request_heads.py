"""The client's own request heads, its bounded caches, its one idle sweep and its re-arming read timer.

Heads are compared byte for byte with what h11 writes for the same request, in memory; the rest
runs against the scripted loopback servers of test_http_client.py.
"""

from __future__ import annotations

import asyncio

import h11
import pytest
from test_http_client import (
    FAST,
    FakeUpstream,
    Peer,
    answering,
    chunk,
    chunked_head,
    eventually,
    response,
)

from upstreams.anthropic import AnthropicProvider
from upstreams.http import ClientSettings, HTTPClient
from upstreams.outbound_proxy import ProxySettings
from upstreams.request_heads import (
    HEADER_LINE_CACHE_ENTRIES,
    ROUTE_CACHE_ENTRIES,
    RequestHeads,
    with_default_headers,
)

KEY = "sk-ant-api03-secret"


def h11_head(method: str, url: str, headers: list[tuple[str, str]], body: bytes, proxies=None) -> bytes:
    """What h11 itself writes for the request, the way the client built it before it built heads."""
    route, _, _ = RequestHeads(proxies).prepare(method, url, [], b"")
    request_headers = with_default_headers(route.origin, headers, method, body) + list(route.added_last)
    connection = h11.Connection(h11.CLIENT)
    return connection.send(h11.Request(method=method, target=route.target, headers=request_headers))


# ---------------------------------------------------------------------------------------------
# Heads we build
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url, headers, body",
    [
        ("POST", "https://api.anthropic.com/v1/messages", [("content-type", "application/json"), ("x-api-key", KEY)], b"{}"),
        ("POST", "https://api.example.com/v1/chat?x=1&y=2", [("Authorization", "Bearer k"), ("X-Two", "a b")], b""),
        ("GET", "http://127.0.0.1:8080/", [], b""),
        ("GET", "http://localhost/models", [("Accept-Encoding", "gzip")], b""),
        ("HEAD", "https://[::1]:8443/x", [("x-empty", "")], b""),
        ("PUT", "https://example.com:443/y", [("x-tab", "a\tb")], b"data"),
        ("DELETE", "https://example.com/z", [], b"gone"),
    ],
)
def test_a_built_head_is_byte_for_byte_what_h11_writes(method, url, headers, body):
    """Host, Content-Length and Accept-Encoding added, caller headers in order: the same bytes as h11's."""
    _, stand_in, head = RequestHeads(None).prepare(method, url, headers, body)
    assert head == h11_head(method, url, headers, body)
    assert stand_in.method == method.encode()


def test_a_built_head_through_a_plain_http_proxy_matches_h11_with_proxy_authorization():
    """Absolute-form target and Proxy-Authorization last, exactly as h11 wrote them."""
    proxies = ProxySettings(http_proxy="http://user:pa%3Ass@proxy.internal:3128")
    url, headers = "http://api.internal:8000/v1/chat", [("content-type", "application/json")]
    route, _, head = RequestHeads(proxies).prepare("POST", url, headers, b"{}")
    assert head == h11_head("POST", url, headers, b"{}", proxies)
    assert head.startswith(b"POST http://api.internal:8000/v1/chat HTTP/1.1\r\nhost: api.internal:8000\r\n")
    assert head.endswith(b"proxy-authorization: Basic dXNlcjpwYTpzcw==\r\n\r\n")
    assert route.proxy.address == "proxy.internal:3128"


@pytest.mark.parametrize(
    "headers",
    [
        [("Host", "elsewhere.example")],
        [("content-length", "2")],
        [("Transfer-Encoding", "chunked")],
        [("connection", "close")],
        [("x-bytes", b"value")],
        [["x-list", "value"]],
    ],
)
def test_headers_h11_acts_on_leave_the_head_to_h11(headers):
    """Framing, keep-alive, Host, bytes or list headers: no head of ours, the full h11.Request instead."""
    _, request, head = RequestHeads(None).prepare("POST", "https://example.com/", headers, b"{}")
    assert head is None
    assert isinstance(request, h11.Request) and request.target == b"/"


def test_a_connect_or_a_method_h11_refuses_leaves_the_head_to_h11():
    """CONNECT switches h11's protocol, and h11 has its own word for an invalid method."""
    heads = RequestHeads(None)
    assert heads.prepare("CONNECT", "http://example.com/", [], b"")[2] is None
    with pytest.raises(h11.LocalProtocolError):
        heads.prepare("PO ST", "http://example.com/", [], b"")


# ---------------------------------------------------------------------------------------------
# Header injection
# ---------------------------------------------------------------------------------------------


BAD_VALUES = ["beta\r\nx-injected: 1", "beta\nx", "beta\rx", "beta\x00", " beta", "beta ", "b\u00e9ta", "beta\x0b"]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_a_header_value_http_forbids_is_refused_before_anything_is_sent(value):
    """CR, LF, NUL, edge whitespace or non-ASCII in a value raise LocalProtocolError naming the header, not the value."""
    headers = [("x-api-key", KEY), ("anthropic-beta", value)]

    async def main():
        async with FakeUpstream(answering()) as upstream:
            client = HTTPClient(FAST)
            for _ in range(2):  # the second time the good header comes from the cache
                with pytest.raises(h11.LocalProtocolError) as caught:
                    await client.request("POST", upstream.url(), headers, b"{}")
                message = str(caught.value)
                assert "anthropic-beta" in message and "not sent" in message
                assert value not in message and KEY not in message
            assert upstream.peers == []
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await client.aclose()

    asyncio.run(main())


def test_a_forwarded_anthropic_beta_header_with_a_newline_never_reaches_the_upstream():
    """A client's anthropic-beta passed through the Anthropic provider is refused, not sent."""

    async def main():
        async with FakeUpstream(answering()) as upstream:
            client = HTTPClient(FAST)
            provider = AnthropicProvider(upstream.url().rstrip("/"), KEY, default_max_tokens=1024, max_tokens_limit=None,
                                         system_prompt=None, auto_cache=False)
            with pytest.raises(h11.LocalProtocolError, match="anthropic-beta"):
                await provider.send(client, b"{}", model="claude", client_headers={"anthropic-beta": "a\r\nx-evil: 1"})
            response_ = await provider.send(client, b"{}", model="claude", client_headers={"anthropic-beta": "tools-1"})
            await response_.read()
            [request] = upstream.peers[0].requests
            assert request.header("anthropic-beta") == "tools-1"
            assert request.header("x-evil") is None
            await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("name", ["x bad", "x:y", "x\r\ny", ""], ids=repr)
def test_a_header_name_that_is_not_a_token_is_refused(name):
    """A name with a space, colon, newline or nothing at all raises LocalProtocolError."""
    with pytest.raises(h11.LocalProtocolError, match="not sent"):
        RequestHeads(None).prepare("GET", "http://example.com/", [(name, "v")], b"")


def test_framing_headers_still_get_h11_checks_and_keep_alive_rules():
    """A wrong Content-Length is refused unsent; Connection: close keeps the socket out of the pool; Host is the caller's."""

    async def main():
        async with FakeUpstream(answering(b"ok")) as upstream:
            client = HTTPClient(FAST)
            with pytest.raises(h11.LocalProtocolError):
                await client.request("POST", upstream.url(), [("content-length", "5")], b"{}")
            await eventually(lambda: upstream.peers and upstream.peers[0].client_closed.is_set())
            assert upstream.peers[0].requests == []  # h11 finds the mismatch at the body, before any write
            resp = await client.request("POST", upstream.url(), [("Connection", "close")], b"{}")
            assert await resp.read() == b"ok"
            assert client.pool_stats()["idle"] == 0
            resp = await client.request("GET", upstream.url(), [("Host", "override.example")])
            assert await resp.read() == b"ok"
            assert upstream.peers[2].requests[0].header("host") == "override.example"
            await client.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# Cache bounds
# ---------------------------------------------------------------------------------------------


def test_route_and_header_line_caches_stay_within_their_bounds():
    """Many URLs and header values never grow the caches past their limits, and heads stay right."""
    heads = RequestHeads(None)
    for n in range(2 * max(ROUTE_CACHE_ENTRIES, HEADER_LINE_CACHE_ENTRIES) + 3):
        url = f"https://example.com/v1/models/m{n}:generate"
        headers = [("x-request-id", f"req-{n}"), ("x-api-key", KEY)]
        _, _, head = heads.prepare("POST", url, headers, b"{}")
        assert len(heads._routes) <= ROUTE_CACHE_ENTRIES
        assert len(heads._lines) <= HEADER_LINE_CACHE_ENTRIES
    assert head == h11_head("POST", url, headers, b"{}")


def test_a_bad_url_is_a_value_error_every_time_and_is_not_cached():
    """parse_url's ValueError comes through the route cache unchanged."""
    heads = RequestHeads(None)
    for _ in range(2):
        with pytest.raises(ValueError):
            heads.prepare("GET", "ftp://example.com/", [], b"")
    assert heads._routes == {}


# ---------------------------------------------------------------------------------------------
# Idle sweep and read timer
# ---------------------------------------------------------------------------------------------


def test_each_idle_connection_expires_idle_expiry_after_its_own_checkin():
    """Two origins pooled 0.3 s apart are closed 0.3 s apart by the one sweep timer."""

    async def main():
        async with FakeUpstream(answering()) as first, FakeUpstream(answering()) as second:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=1.0, idle_expiry=0.5))
            await (await client.request("GET", first.url(), [])).read()
            await asyncio.sleep(0.3)
            await (await client.request("GET", second.url(), [])).read()
            await asyncio.wait_for(first.peers[0].client_closed.wait(), 1.0)
            assert client.pool_stats() == {"idle": 1, "active": 0, "by_origin": {second.origin: 1}}
            assert not second.peers[0].client_closed.is_set()
            await asyncio.wait_for(second.peers[0].client_closed.wait(), 1.0)
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await client.aclose()

    asyncio.run(main())


def test_a_connection_reused_before_its_expiry_starts_a_new_idle_period():
    """A reuse 0.3 s into a 0.5 s expiry keeps the socket open past the first deadline."""

    async def main():
        async with FakeUpstream(answering()) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=1.0, idle_expiry=0.5))
            await (await client.request("GET", upstream.url(), [])).read()
            await asyncio.sleep(0.3)
            await (await client.request("GET", upstream.url(), [])).read()
            await asyncio.sleep(0.35)  # past the first deadline, before the second
            assert client.pool_stats()["idle"] == 1 and len(upstream.peers) == 1
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)
            await client.aclose()

    asyncio.run(main())


def test_read_timeout_counts_from_each_read_not_from_the_first():
    """Chunks 0.2 s apart never trip a 0.35 s read_timeout, although the body takes 0.8 s."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(chunked_head())
        for n in range(4):
            await asyncio.sleep(0.2)
            await peer.send(chunk(b"piece %d;" % n))
        await peer.send(b"0\r\n\r\n")
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=0.35))
            resp = await client.request("GET", upstream.url(), [])
            assert await resp.read() == b"piece 0;piece 1;piece 2;piece 3;"
            await client.aclose()

    asyncio.run(main())


def test_cancelling_a_whole_body_read_closes_the_socket_and_leaves_the_pool_empty():
    """read() cancelled mid-body closes the upstream socket and pools nothing."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(chunked_head() + chunk(b"first"))
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(ClientSettings(connect_timeout=1.0, read_timeout=30.0))
            resp = await client.request("GET", upstream.url(), [])
            task = asyncio.create_task(resp.read())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}
            await asyncio.wait_for(upstream.peers[0].client_closed.wait(), 1.0)
            with pytest.raises(RuntimeError):
                await resp.read()

    asyncio.run(main())


def test_bytes_after_the_response_in_the_same_read_keep_the_connection_out_of_the_pool():
    """An unasked second answer behind the first is left unread by read(), and the socket is closed."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response(200, b"one") + response(200, b"two"))
        await peer.wait_for_client_close()

    async def main():
        async with FakeUpstream(handler) as upstream:
            client = HTTPClient(FAST)
            first = await client.request("GET", upstream.url(), [])
            assert await first.read() == b"one"
            assert client.pool_stats()["idle"] == 0
            await eventually(lambda: upstream.peers[0].client_closed.is_set())
            await client.aclose()

    asyncio.run(main())
