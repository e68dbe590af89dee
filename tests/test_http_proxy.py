"""The upstream HTTP client through an outbound proxy, over loopback only, and NO_PROXY rules.

`FakeProxy` is a small asyncio forward proxy: it tunnels CONNECT, forwards absolute-form plain HTTP,
can demand Basic auth, and records every request head it sees. Like a real proxy it resolves the
names it is asked for itself, here from a routing table to ports on 127.0.0.1. So the origins carry
reserved `.test` names (RFC 2606) that the client itself could never resolve and that no bypass
rule covers, yet every socket stays on loopback, and the https origin's certificate (made with the
openssl CLI) is for that name, which lets the tests tell origin-name checks from proxy-name checks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from translate.errors import UpstreamTimeout, UpstreamUnavailable
from upstreams.http import ClientSettings, HTTPClient
from upstreams.transport import parse_url
from upstreams.outbound_proxy import ProxySettings

HTTPS_NAME = "api.example.test"
HTTPS_URL = f"https://{HTTPS_NAME}/v1/messages?beta=true"  # port 443: never dialled, the proxy maps it
HTTPS_ORIGIN = f"https://{HTTPS_NAME}:443"
PLAIN_URL = "http://plain.example.test:8080/v1/chat/completions?x=1"
PLAIN_ORIGIN = "http://plain.example.test:8080"
PASSWORD = "hunter2-secret"


# ---------------------------------------------------------------------------------------------
# Loopback servers: origins and the proxy
# ---------------------------------------------------------------------------------------------


@dataclass
class Head:
    """A request head as a server read it: the request line and lower-cased headers."""

    method: str
    target: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """The next request head, or None when the peer closed the connection."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ")
    fields = (line.split(":", 1) for line in lines[1:] if line)
    headers = [(name.strip().lower(), value.strip()) for name, value in fields]
    return Head(method, target, headers)


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


class LoopbackServer:
    """A server on 127.0.0.1 running `handle(reader, writer)` per connection; handlers are
    cancelled on exit."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.accepted = 0
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.append(asyncio.current_task())
        self.accepted += 1
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ssl.SSLError):
            pass  # a cancelled handler ends quietly: asyncio logs cancelled connection callbacks
        finally:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class FakeOrigin(LoopbackServer):
    """A keep-alive origin answering every request with `body`; records heads and TLS SNI names."""

    def __init__(self, body: bytes = b"hello", tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls)
        self.body = body
        self.heads: list[Head] = []
        self.hung_up = 0  # connections the client (or the tunnel before it) closed
        self.sni_names: list[str | None] = []
        if tls is not None:
            tls.sni_callback = lambda _ssl_object, name, _context: self.sni_names.append(name)

    async def handle(self, reader, writer) -> None:
        while (head := await read_head(reader)) is not None:
            self.heads.append(head)
            await reader.readexactly(int(head.header("content-length") or 0))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(self.body), self.body))
            await writer.drain()
        self.hung_up += 1


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy bytes one way until EOF, then close the far side."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


class FakeProxy(LoopbackServer):
    """A forward proxy: CONNECT tunnels and absolute-form plain HTTP to `routes` ("host:port" ->
    a port on 127.0.0.1). With `credentials` ("user:password") it answers 407 to requests without
    the matching Proxy-Authorization; `refuse_with` answers every CONNECT with that status; `silent`
    reads the head and never answers; `after_200` is sent right after the tunnel's 200 head."""

    def __init__(
        self,
        routes: dict[str, int],
        *,
        credentials: str | None = None,
        refuse_with: int | None = None,
        silent: bool = False,
        after_200: bytes = b"",
    ) -> None:
        super().__init__()
        self.routes = routes
        self.credentials = credentials
        self.refuse_with = refuse_with
        self.silent = silent
        self.after_200 = after_200
        self.seen: list[Head] = []
        self.hung_up = 0  # silent mode: connections the client closed while waiting

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def handle(self, reader, writer) -> None:
        forwarded: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            while (head := await read_head(reader)) is not None:
                self.seen.append(head)
                if self.silent:
                    while await reader.read(65536):
                        pass
                    self.hung_up += 1
                    return
                if self.credentials is not None and head.header("proxy-authorization") != basic(self.credentials):
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n"
                        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    await writer.drain()
                    return
                if head.method == "CONNECT":
                    await self._tunnel(head, reader, writer)
                    return
                await self._forward(head, reader, writer, forwarded)
        finally:
            for _, upstream_writer in forwarded.values():
                upstream_writer.close()

    async def _tunnel(self, head: Head, reader, writer) -> None:
        port = self.routes.get(head.target)
        if self.refuse_with is not None or port is None:
            status = self.refuse_with or 502
            writer.write(f"HTTP/1.1 {status} Not Today\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n" + self.after_200)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def _forward(self, head: Head, reader, writer, forwarded) -> None:
        """Send an absolute-form request on to its origin in origin-form and relay the answer."""
        body = await reader.readexactly(int(head.header("content-length") or 0))
        target = urlsplit(head.target)
        assert target.scheme == "http", f"not absolute-form: {head.target}"
        authority = f"{target.hostname}:{target.port or 80}"
        if authority not in forwarded:
            forwarded[authority] = await asyncio.open_connection("127.0.0.1", self.routes[authority])
        upstream_reader, upstream_writer = forwarded[authority]
        path = target.path + (f"?{target.query}" if target.query else "")
        lines = [f"{head.method} {path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in head.headers if name != "proxy-authorization"]
        upstream_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        response_head = await upstream_reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length:\s*(\d+)", response_head, re.IGNORECASE).group(1))
        writer.write(response_head + await upstream_reader.readexactly(length))
        await writer.drain()


async def eventually(condition, timeout: float = 1.0) -> None:
    """Wait until condition() is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def via(proxy_url: str, *, ca_file: str | None = None, connect_timeout: float = 1.0) -> ClientSettings:
    """Client settings sending both http and https origins through `proxy_url`."""
    return ClientSettings(
        connect_timeout=connect_timeout,
        read_timeout=1.0,
        ca_file=ca_file,
        proxies=ProxySettings(https_proxy=proxy_url, http_proxy=proxy_url),
    )


# ---------------------------------------------------------------------------------------------
# Certificates (openssl CLI, as in test_http_client.py)
# ---------------------------------------------------------------------------------------------


def make_certificate(directory, stem: str, subject_alt_name: str) -> tuple[str, str]:
    """A throwaway self-signed certificate for `subject_alt_name` and its key."""
    cert, key = str(directory / f"{stem}.pem"), str(directory / f"{stem}-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", f"/CN={stem}", "-addext", f"subjectAltName={subject_alt_name}",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """One certificate for the origin's name, one for the proxy's address 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    directory = tmp_path_factory.mktemp("certificates")
    return {
        "origin": make_certificate(directory, "origin", f"DNS:{HTTPS_NAME}"),
        "proxy address": make_certificate(directory, "loopback", "IP:127.0.0.1"),
    }


def server_tls(cert_and_key: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert_and_key)
    context.set_alpn_protocols(["http/1.1"])
    return context


# ---------------------------------------------------------------------------------------------
# HTTPS origins through a CONNECT tunnel
# ---------------------------------------------------------------------------------------------


def test_https_origin_goes_through_a_connect_tunnel_with_tls_for_the_origin_name(certificates):
    """The proxy sees CONNECT host:443 with a matching Host; TLS inside carries the origin's SNI and name."""
    cert, _key = certificates["origin"]

    async def main():
        async with FakeOrigin(b"secure", tls=server_tls(certificates["origin"])) as origin:
            async with FakeProxy({f"{HTTPS_NAME}:443": origin.port}) as proxy:
                client = HTTPClient(via(proxy.url(), ca_file=cert))
                resp = await client.request("POST", HTTPS_URL, [("x-api-key", "k")], b"{}")
                assert (resp.status, await resp.read()) == (200, b"secure")
                [connect] = proxy.seen
                assert (connect.method, connect.target) == ("CONNECT", f"{HTTPS_NAME}:443")
                assert connect.header("host") == f"{HTTPS_NAME}:443"
                assert connect.header("proxy-authorization") is None
                assert connect.header("x-api-key") is None  # the request's headers stay inside TLS
                [request] = origin.heads
                assert (request.method, request.target) == ("POST", "/v1/messages?beta=true")
                assert request.header("host") == HTTPS_NAME
                assert origin.sni_names == [HTTPS_NAME]
                await client.aclose()

    asyncio.run(main())


def test_two_requests_through_the_tunnel_reuse_one_connect_and_log_the_proxy(certificates, caplog):
    """The tunnelled connection is pooled under the origin; DEBUG lines say "via proxy host:port"."""
    cert, _key = certificates["origin"]
    caplog.set_level(logging.DEBUG, logger="switchboard.http")

    async def main():
        async with FakeOrigin(tls=server_tls(certificates["origin"])) as origin:
            async with FakeProxy({f"{HTTPS_NAME}:443": origin.port}, credentials=f"user:{PASSWORD}") as proxy:
                client = HTTPClient(via(proxy.url(f"user:{PASSWORD}"), ca_file=cert))
                for _ in range(2):
                    async with await client.request("GET", HTTPS_URL, []) as resp:
                        assert await resp.read() == b"hello"
                assert [head.method for head in proxy.seen] == ["CONNECT"]
                assert (proxy.accepted, origin.accepted, len(origin.heads)) == (1, 1, 2)
                assert client.pool_stats() == {"idle": 1, "active": 0, "by_origin": {HTTPS_ORIGIN: 1}}
                await client.aclose()
                return proxy.address

    address = asyncio.run(main())
    assert f"connect origin={HTTPS_ORIGIN} via proxy {address}" in caplog.text
    assert f"reuse origin={HTTPS_ORIGIN} via proxy {address}" in caplog.text
    assert f"close origin={HTTPS_ORIGIN} via proxy {address}" in caplog.text
    assert PASSWORD not in caplog.text


def test_origin_certificate_from_an_untrusted_ca_fails_inside_the_tunnel(certificates):
    """With the default CA bundle the self-signed origin is refused: a 502 about the certificate."""

    async def main():
        async with FakeOrigin(tls=server_tls(certificates["origin"])) as origin:
            async with FakeProxy({f"{HTTPS_NAME}:443": origin.port}) as proxy:
                client = HTTPClient(via(proxy.url()))
                with pytest.raises(UpstreamUnavailable) as caught:
                    await client.request("GET", HTTPS_URL, [])
                assert "certificate" in caught.value.message
                assert HTTPS_ORIGIN in caught.value.message
                assert [head.method for head in proxy.seen] == ["CONNECT"]  # the tunnel itself was fine
                assert client.pool_stats()["active"] == 0

    asyncio.run(main())


def test_certificate_valid_for_the_proxy_address_but_not_the_origin_name_is_refused(certificates):
    """A trusted certificate for 127.0.0.1 (where the socket goes) fails: the name checked is the origin's."""
    cert, _key = certificates["proxy address"]

    async def main():
        async with FakeOrigin(tls=server_tls(certificates["proxy address"])) as origin:
            async with FakeProxy({f"{HTTPS_NAME}:443": origin.port}) as proxy:
                client = HTTPClient(via(proxy.url(), ca_file=cert))
                with pytest.raises(UpstreamUnavailable) as caught:
                    await client.request("GET", HTTPS_URL, [])
                assert "certificate" in caught.value.message
                assert HTTPS_NAME in caught.value.message
                assert origin.sni_names == [HTTPS_NAME]

    asyncio.run(main())


def test_proxy_credentials_in_the_url_are_percent_decoded_into_basic_proxy_authorization(certificates):
    """user%40corp:p%3Ass%20w in the URL becomes Basic b64("user@corp:p:ss w") on the CONNECT."""
    cert, _key = certificates["origin"]

    async def main():
        async with FakeOrigin(tls=server_tls(certificates["origin"])) as origin:
            async with FakeProxy({f"{HTTPS_NAME}:443": origin.port}, credentials="user@corp:p:ss w") as proxy:
                client = HTTPClient(via(proxy.url("user%40corp:p%3Ass%20w"), ca_file=cert))
                resp = await client.request("GET", HTTPS_URL, [])
                assert resp.status == 200
                await resp.read()
                assert proxy.seen[0].header("proxy-authorization") == basic("user@corp:p:ss w")
                assert origin.heads[0].header("proxy-authorization") is None  # never sent inside the tunnel
                await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("userinfo", ["", f"alice:{PASSWORD}"], ids=["no credentials", "wrong credentials"])
def test_407_from_the_proxy_is_upstream_unavailable_without_the_password(userinfo):
    """A 407 answer to CONNECT is a 502 naming the proxy by host:port and never the credentials."""

    async def main():
        async with FakeProxy({f"{HTTPS_NAME}:443": unused_port()}, credentials="user:other") as proxy:
            client = HTTPClient(via(proxy.url(userinfo)))
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request("GET", HTTPS_URL, [])
            message = caught.value.message
            assert caught.value.status == 502
            assert "requires authentication (407)" in message
            assert proxy.address in message and HTTPS_ORIGIN in message
            assert PASSWORD not in message and "alice" not in message
            assert client.pool_stats()["active"] == 0

    asyncio.run(main())


def test_proxy_refusing_the_tunnel_names_proxy_and_status_but_not_the_credentials():
    """A 403 answer to CONNECT is a 502 with the status, the proxy's host:port and no password."""

    async def main():
        async with FakeProxy({}, refuse_with=403) as proxy:
            client = HTTPClient(via(proxy.url(f"user:{PASSWORD}")))
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request("GET", HTTPS_URL, [])
            message = caught.value.message
            assert "403" in message and proxy.address in message and HTTPS_ORIGIN in message
            assert PASSWORD not in message

    asyncio.run(main())


def test_unreachable_proxy_is_upstream_unavailable_naming_the_proxy():
    """A refused TCP connection to the proxy says so, naming the proxy and not its credentials."""
    port = unused_port()

    async def main():
        client = HTTPClient(via(f"http://user:{PASSWORD}@127.0.0.1:{port}"))
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.request("GET", HTTPS_URL, [])
        message = caught.value.message
        assert f"proxy 127.0.0.1:{port}" in message and "refused" in message
        assert PASSWORD not in message

    asyncio.run(main())


def test_proxy_that_never_answers_connect_is_a_connect_timeout():
    """connect_timeout covers the CONNECT exchange: a silent proxy is a 504 naming origin and proxy."""

    async def main():
        async with FakeProxy({}, silent=True) as proxy:
            client = HTTPClient(via(proxy.url(), connect_timeout=0.2))
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout) as caught:
                await client.request("GET", HTTPS_URL, [])
            assert time.monotonic() - started < 1.0
            assert f"{HTTPS_ORIGIN} via proxy {proxy.address}" in caught.value.message
            assert client.pool_stats()["active"] == 0
            await eventually(lambda: proxy.hung_up == 1)  # the half-open socket was closed

    asyncio.run(main())


def test_tls_handshake_stalled_inside_the_tunnel_counts_against_connect_timeout():
    """TCP, CONNECT and the TLS handshake share one connect_timeout: an origin that never answers
    the ClientHello is a 504 once it runs out."""

    async def main():
        async with FakeOrigin() as silent_origin:  # plain TCP: it waits for a request head forever
            async with FakeProxy({f"{HTTPS_NAME}:443": silent_origin.port}) as proxy:
                client = HTTPClient(via(proxy.url(), connect_timeout=0.3))
                started = time.monotonic()
                with pytest.raises(UpstreamTimeout) as caught:
                    await client.request("GET", HTTPS_URL, [])
                assert time.monotonic() - started < 1.0
                assert "timed out after 0.3 seconds" in caught.value.message
                assert client.pool_stats()["active"] == 0
                await eventually(lambda: silent_origin.hung_up == 1)  # tunnel torn down

    asyncio.run(main())


def test_bytes_from_the_proxy_before_tls_starts_are_refused():
    """Data after the 2xx head cannot be the TLS server's (it never speaks first): a 502, not a handshake."""

    async def main():
        async with FakeOrigin() as origin:
            async with FakeProxy({f"{HTTPS_NAME}:443": origin.port}, after_200=b"hello from the proxy") as proxy:
                client = HTTPClient(via(proxy.url()))
                with pytest.raises(UpstreamUnavailable) as caught:
                    await client.request("GET", HTTPS_URL, [])
                assert "before TLS started" in caught.value.message
                assert client.pool_stats()["active"] == 0
                await eventually(lambda: origin.hung_up == 1)  # the tunnel was closed, not leaked

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# Plain-http origins through the proxy, and bypassed origins
# ---------------------------------------------------------------------------------------------


def test_plain_http_origin_goes_to_the_proxy_in_absolute_form_with_proxy_authorization():
    """The request line carries the full URL, plus Host and Proxy-Authorization; the proxy connection is reused."""

    async def main():
        async with FakeOrigin(b"plain") as origin:
            async with FakeProxy({"plain.example.test:8080": origin.port}, credentials=f"u:{PASSWORD}") as proxy:
                client = HTTPClient(via(proxy.url(f"u:{PASSWORD}")))
                for _ in range(2):
                    resp = await client.request("POST", PLAIN_URL, [("authorization", "Bearer k")], b"{}")
                    assert (resp.status, await resp.read()) == (200, b"plain")
                first, second = proxy.seen
                assert (first.method, first.target) == ("POST", PLAIN_URL)
                assert first.header("host") == "plain.example.test:8080"
                assert first.header("proxy-authorization") == basic(f"u:{PASSWORD}")
                assert first.header("authorization") == "Bearer k"
                assert second.target == PLAIN_URL
                assert proxy.accepted == 1
                assert origin.heads[0].target == "/v1/chat/completions?x=1"
                assert client.pool_stats()["by_origin"] == {PLAIN_ORIGIN: 1}
                await client.aclose()

    asyncio.run(main())


def test_407_for_a_plain_http_request_is_upstream_unavailable_not_a_response():
    """A proxy's 407 never reaches our caller as an upstream answer; the connection is dropped."""

    async def main():
        async with FakeProxy({"plain.example.test:8080": unused_port()}, credentials="u:p") as proxy:
            client = HTTPClient(via(proxy.url(f"u:{PASSWORD}")))
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request("GET", PLAIN_URL, [])
            assert "requires authentication (407)" in caught.value.message
            assert PASSWORD not in caught.value.message
            assert client.pool_stats() == {"idle": 0, "active": 0, "by_origin": {}}

    asyncio.run(main())


def test_loopback_origin_is_reached_directly_even_with_a_proxy_configured():
    """127.0.0.1 is always bypassed: the request reaches the origin and the proxy sees nothing."""

    async def main():
        async with FakeOrigin(b"direct") as origin:
            async with FakeProxy({}) as proxy:
                client = HTTPClient(via(proxy.url()))
                resp = await client.request("GET", f"http://127.0.0.1:{origin.port}/", [])
                assert await resp.read() == b"direct"
                assert origin.heads[0].target == "/"
                assert (proxy.accepted, proxy.seen) == (0, [])
                await client.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# ProxySettings: NO_PROXY, the environment, proxy URLs
# ---------------------------------------------------------------------------------------------

PROXY = "http://proxy.test:3128"


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("", "https://example.com", False),
        ("*", "https://api.example.com", True),
        ("example.com", "https://example.com", True),
        ("example.com", "https://api.example.com", True),
        ("example.com", "https://notexample.com", False),
        ("example.com", "https://example.com.evil.test", False),
        (".example.com", "https://example.com", True),
        (".example.com", "https://a.b.example.com", True),
        ("*.example.com", "https://api.example.com", True),
        ("EXAMPLE.com", "https://Api.Example.COM", True),
        ("example.com.", "https://api.example.com./", True),
        ("example.com:8443", "https://example.com:8443", True),
        ("example.com:8443", "https://example.com", False),
        ("example.com:443", "https://example.com", True),
        ("10.1.2.3", "http://10.1.2.3:8080", True),
        ("10.1.2.3", "http://10.1.2.4", False),
        ("10.0.0.0/8", "http://10.200.3.4", True),
        ("10.0.0.0/8", "http://11.0.0.1", False),
        ("10.0.0.0/8", "https://ten.example.com", False),
        ("fd00::/8", "http://[fd12::1]", True),
        ("2001:db8::1", "http://[2001:db8::1]:80", True),
        ("2001:DB8:0:0::1", "http://[2001:db8::1]", True),
        ("[2001:db8::1]:8080", "http://[2001:db8::1]:8080", True),
        ("[2001:db8::1]:8080", "http://[2001:db8::1]:80", False),
        ("a.test, example.com ,b.test", "https://www.example.com", True),
        ("example.com:http", "https://example.com", False),
        ("*example", "https://example", False),
    ],
)
def test_no_proxy_entries_match_domains_subdomains_ports_ips_and_cidr_blocks(no_proxy, url, bypassed):
    """Each NO_PROXY entry bypasses exactly the origins it should; entries not understood match nothing."""
    settings = ProxySettings(https_proxy=PROXY, http_proxy=PROXY, no_proxy=(no_proxy,))
    origin, _target = parse_url(url)
    assert settings.proxy_for(origin) == (None if bypassed else PROXY)


@pytest.mark.parametrize(
    ("url", "bypassed"),
    [
        ("http://localhost:8080", True),
        ("http://ollama.localhost", True),
        ("http://127.0.0.1:11434", True),
        ("http://127.9.9.9", True),
        ("http://[::1]:8080", True),
        ("http://[::ffff:127.0.0.1]", True),
        ("http://metadata.google.internal/computeMetadata/v1/", True),
        ("http://169.254.169.254/", True),
        ("https://localhost.example.com", False),
        ("http://169.254.169.253", False),
        ("http://128.0.0.1", False),
    ],
)
def test_loopback_localhost_and_metadata_server_are_never_proxied(url, bypassed):
    """With an empty NO_PROXY, loopback, *.localhost and the metadata server still go direct."""
    settings = ProxySettings(https_proxy=PROXY, http_proxy=PROXY)
    origin, _target = parse_url(url)
    assert (settings.proxy_for(origin) is None) == bypassed


def test_each_origin_scheme_uses_its_own_proxy():
    """https origins use https_proxy, http origins http_proxy; a scheme without one goes direct."""
    settings = ProxySettings(https_proxy="http://tls-proxy.test:1", http_proxy="http://plain-proxy.test:2")
    assert settings.proxy_for(parse_url("https://example.com")[0]) == "http://tls-proxy.test:1"
    assert settings.proxy_for(parse_url("http://example.com")[0]) == "http://plain-proxy.test:2"
    only_https = ProxySettings(https_proxy="http://tls-proxy.test:1")
    assert only_https.proxy_for(parse_url("http://example.com")[0]) is None


@pytest.mark.parametrize(
    ("env", "https_proxy", "http_proxy"),
    [
        ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, "http://lower:1", None),
        ({"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2"}, None, "http://lower:1"),
        ({"HTTPS_PROXY": "http://upper:2", "ALL_PROXY": "http://all:3"}, "http://upper:2", "http://all:3"),
        ({"ALL_PROXY": "http://all:3"}, "http://all:3", "http://all:3"),
        ({"all_proxy": "http://lower:1", "ALL_PROXY": "http://upper:2"}, "http://lower:1", "http://lower:1"),
        ({"https_proxy": "", "HTTPS_PROXY": " http://upper:2 "}, "http://upper:2", None),
    ],
)
def test_environment_lower_case_wins_and_all_proxy_is_the_fallback(env, https_proxy, http_proxy):
    """https_proxy beats HTTPS_PROXY, either beats ALL_PROXY, and an empty variable counts as unset."""
    settings = ProxySettings.from_env(env)
    assert (settings.https_proxy, settings.http_proxy) == (https_proxy, http_proxy)


def test_environment_no_proxy_lower_case_wins_and_is_split_on_commas():
    """no_proxy beats NO_PROXY; its entries are stripped and empty ones dropped."""
    settings = ProxySettings.from_env(
        {"HTTPS_PROXY": PROXY, "no_proxy": " a.test, .b.test,,10.0.0.0/8 ", "NO_PROXY": "ignored.test"}
    )
    assert settings.no_proxy == ("a.test", ".b.test", "10.0.0.0/8")
    assert ProxySettings.from_env({"HTTPS_PROXY": PROXY, "NO_PROXY": "c.test"}).no_proxy == ("c.test",)


def test_environment_without_a_proxy_gives_none():
    """No proxy variable (NO_PROXY alone, or only empty values) means no ProxySettings at all."""
    assert ProxySettings.from_env({}) is None
    assert ProxySettings.from_env({"NO_PROXY": "example.com", "HTTPS_PROXY": "  ", "PATH": "/bin"}) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (f"https://user:{PASSWORD}@proxy.test:3128", "not supported"),
        (f"socks5://user:{PASSWORD}@proxy.test:1080", "not supported"),
        (f"http://user:{PASSWORD}@proxy.test:port", "invalid port"),
        (f"http://user:{PASSWORD}@:3128", "no proxy host"),
        (f"http://user:{PASSWORD}@proxy.test:3128/some/path", "no path"),
        (f"http://user:pa/ss{PASSWORD}@proxy.test:3128", "percent-encode"),
    ],
)
def test_malformed_proxy_url_is_a_value_error_naming_the_variable_but_not_the_password(value, words):
    """A bad proxy URL stops start-up with a sentence naming the variable; the URL is not repeated."""
    with pytest.raises(ValueError) as caught:
        ProxySettings.from_env({"HTTP_PROXY": "http://fine.test:1", "HTTPS_PROXY": value})
    message = str(caught.value)
    assert message.startswith("HTTPS_PROXY ") and words in message
    assert PASSWORD not in message


def test_constructing_settings_with_a_bad_proxy_url_names_the_field():
    """ProxySettings checks its URLs itself, naming the field."""
    with pytest.raises(ValueError, match="^http_proxy .*not supported"):
        ProxySettings(http_proxy="socks5://proxy.test:1080")


def test_proxy_url_without_scheme_or_port_reads_as_http_on_port_80():
    """A bare host:port is an http proxy (as curl reads it); http://host alone means port 80."""
    origin = parse_url("https://example.com")[0]
    assert ProxySettings.from_env({"HTTPS_PROXY": "proxy.test:3128"}).endpoint_for(origin).address == "proxy.test:3128"
    assert ProxySettings(https_proxy="http://proxy.test").endpoint_for(origin).address == "proxy.test:80"


def test_repr_of_the_settings_hides_proxy_credentials():
    """ProxySettings and ClientSettings can be logged: the password and user name are masked."""
    settings = ProxySettings(https_proxy=f"http://someone:{PASSWORD}@proxy.test:3128", http_proxy="http://p.test:1")
    endpoint = settings.endpoint_for(parse_url("https://example.com")[0])
    for text in (repr(settings), repr(ClientSettings(proxies=settings)), repr(endpoint)):
        assert PASSWORD not in text and "someone" not in text
    assert "http://***@proxy.test:3128" in repr(settings)
    assert "http://p.test:1" in repr(settings)
