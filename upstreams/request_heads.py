"""Request heads for the upstream client, built and checked here: h11 only tracks the cycle.

Checking and writing a head was most of what h11 cost us per request, nearly all of it on headers
that are the same every time.

Policies:
- Heads are built from checked pieces remembered per client in two bounded caches (a full cache
  starts over): per (method, URL) the origin, proxy, request line and Host line; per header its line.
- Names must be tokens and values ASCII without CR, LF, NUL or whitespace at either end (h11's own
  rules; RFC 9110 5.5); anything else raises h11.LocalProtocolError naming the header, never its
  value (it may be a key), and nothing is sent.
- h11 still tracks every cycle: it is told of the request with a stand-in carrying the method, which
  decides how the response is framed. Caller headers h11 acts on (Host, Content-Length,
  Transfer-Encoding, Connection, Upgrade, Expect), a CONNECT, bytes instead of str, or a target or
  host it must check send the request the old way: h11 builds, checks and writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import h11

from upstreams.outbound_proxy import (
    ProxyEndpoint,
    ProxySettings,
    prepare_forwarded_request,
)
from upstreams.transport import Origin, parse_url

# Checking and writing a head was most of what h11 cost us per request, nearly all of it on headers
# that are the same every time; see the module docstring for how heads are built instead.
ROUTE_CACHE_ENTRIES = 256  # (method, URL) pairs remembered per client; the cache starts over when full
HEADER_LINE_CACHE_ENTRIES = 512  # checked header lines remembered per client; likewise
_METHODS_WITH_BODY = ("POST", "PUT", "PATCH")  # these say content-length: 0 even for an empty body
_H11_MANAGED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "expect"})
# The rules h11 applies to what it sends (RFC 9110 5.1, 5.5 and 9.1; RFC 9112 3.2). RFC 9110 5.5:
# "Field values containing CR, LF, or NUL characters are invalid and dangerous".
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(r"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?", re.ASCII)  # and ASCII only
_REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")
_IDENTITY_LINE = b"accept-encoding: identity\r\n"


@dataclass(frozen=True)
class HeadRoute:
    """What one (method, URL) pair means for a client, worked out once: where it goes, through
    which proxy, and the parts of its request head that never change."""

    origin: Origin
    proxy: ProxyEndpoint | None
    target: str  # as sent: in absolute form when a plain-http request goes through a proxy
    added_last: tuple[tuple[str, str], ...]  # what goes after the caller's headers (Proxy-Authorization)
    sends_empty_length: bool
    # For heads we build: the request line and Host line, the lines after the caller's headers up to
    # the blank line, and the stand-in for h11. None when h11 must check the method, target or host.
    head_start: bytes | None
    head_end: bytes
    stand_in: h11.Request | None


def head_route(method: str, url: str, proxies: ProxySettings | None) -> HeadRoute:
    """Raises ValueError for a URL that is not http(s) (see `parse_url`)."""
    origin, target = parse_url(url)
    proxy = proxies.endpoint_for(origin) if proxies is not None else None
    added_last: list[tuple[str, str]] = []
    if proxy is not None and origin.scheme == "http":
        target = prepare_forwarded_request(origin, target, added_last, proxy)
    sends_empty_length = isinstance(method, str) and method.upper() in _METHODS_WITH_BODY
    host = origin.host_header
    if not (
        isinstance(method, str)
        and _TOKEN.fullmatch(method)
        and method != "CONNECT"  # h11 treats exactly this spelling as a protocol switch
        and _REQUEST_TARGET.fullmatch(target)
        and host.isascii()
        and _FIELD_VALUE.fullmatch(host)
    ):
        return HeadRoute(origin, proxy, target, tuple(added_last), sends_empty_length, None, b"", None)
    head_start = f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n".encode("ascii")
    head_end = "".join(f"{name}: {value}\r\n" for name, value in added_last).encode("ascii") + b"\r\n"
    stand_in = h11.Request(method=method, target="/", headers=[("host", "stand-in")])
    return HeadRoute(origin, proxy, target, tuple(added_last), sends_empty_length, head_start, head_end, stand_in)


def checked_header_line(header: tuple[str, str]) -> tuple[bytes, bool] | None:
    """The header as a line for the head, and whether it is Accept-Encoding; None when h11 must
    handle it (a header h11 acts on, or names or values given as bytes).

    Raises h11.LocalProtocolError, naming the header but never repeating its value (it may be a
    key), for a name that is not a token or a value HTTP does not allow.
    """
    name, value = header
    if not isinstance(name, str) or not isinstance(value, str):
        return None
    lowered = name.lower()
    if lowered in _H11_MANAGED_HEADERS:
        return None
    if _TOKEN.fullmatch(name) is None:
        raise h11.LocalProtocolError(f"The header name {name!r} is not an HTTP token; the request was not sent.")
    if not value.isascii() or _FIELD_VALUE.fullmatch(value) is None:
        raise h11.LocalProtocolError(
            f"The value of the header {name!r} holds CR, LF, NUL, another character HTTP does not allow "
            "in a header value, or whitespace at either end; the request was not sent."
        )
    return f"{name}: {value}\r\n".encode("ascii"), lowered == "accept-encoding"


class RequestHeads:
    """Request heads for one client, from two bounded caches: routes per (method, URL) and checked
    header lines (a full cache starts over)."""

    def __init__(self, proxies: ProxySettings | None) -> None:
        self._proxies = proxies
        self._routes: dict[tuple[str, str], HeadRoute] = {}
        self._lines: dict[tuple[str, str], tuple[bytes, bool]] = {}

    def prepare(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[HeadRoute, h11.Request, bytes | None]:
        """The request's route, the event that tells h11 about it, and its head when we built it
        (then the event is the route's stand-in; else h11 checks and writes the event itself).

        Raises ValueError for a URL that is not http(s) (see `parse_url`), and h11.LocalProtocolError
        for a header or method HTTP does not allow (see `checked_header_line`).
        """
        route = self._routes.get((method, url))
        if route is None:
            route = head_route(method, url, self._proxies)
            if len(self._routes) >= ROUTE_CACHE_ENTRIES:
                self._routes.clear()
            self._routes[(method, url)] = route
        head = self._head(route, headers, body)
        if head is not None:
            return route, route.stand_in, head
        request_headers = with_default_headers(route.origin, headers, method, body) + list(route.added_last)
        return route, h11.Request(method=method, target=route.target, headers=request_headers), None

    def _head(self, route: HeadRoute, headers: list[tuple[str, str]], body: bytes) -> bytes | None:
        """The head with `headers` in the order h11 would write them (Host, Content-Length,
        Accept-Encoding unless the caller sets it, the caller's, Proxy-Authorization); None when
        h11 must build it."""
        if route.head_start is None:
            return None
        known = self._lines
        lines = [route.head_start, b"", _IDENTITY_LINE]
        if body or route.sends_empty_length:
            lines[1] = b"content-length: %d\r\n" % len(body)
        for header in headers:
            try:
                entry = known.get(header)
            except TypeError:  # a header given as a list: unhashable, and h11 takes it
                return None
            if entry is None:
                entry = checked_header_line(header)
                if entry is None:
                    return None
                if len(known) >= HEADER_LINE_CACHE_ENTRIES:
                    known.clear()
                known[header] = entry
            line, sets_encoding = entry
            if sets_encoding:
                lines[2] = b""
            lines.append(line)
        lines.append(route.head_end)
        return b"".join(lines)


def with_default_headers(
    origin: Origin, headers: list[tuple[str, str]], method: str, body: bytes
) -> list[tuple[str, str]]:
    """The caller's headers as given, plus Host, Content-Length and Accept-Encoding when absent."""
    present = {name.lower() for name, _ in headers}
    added = []
    if "host" not in present:
        added.append(("host", origin.host_header))
    if "content-length" not in present and "transfer-encoding" not in present:
        if body or method.upper() in _METHODS_WITH_BODY:
            added.append(("content-length", str(len(body))))
    if "accept-encoding" not in present:
        # Identity keeps SSE flowing chunk by chunk; we can only undo gzip and deflate anyway.
        added.append(("accept-encoding", "identity"))
    return added + list(headers)
