"""Outbound HTTP proxies (PROTOCOLS.md 9): which proxy carries which origin, and how to talk to it.

upstreams/transport.py opens the sockets (through `connect_tunnel` for https) and upstreams/http.py
pools them; this module decides and speaks the proxy's part.

Policies:
- Configured by `ProxySettings`, usually `from_env`: https_proxy/HTTPS_PROXY serves https origins,
  http_proxy/HTTP_PROXY plain-http ones, all_proxy/ALL_PROXY both; lower-case names first (as curl
  does), and an empty variable counts as unset. NO_PROXY alone configures nothing.
- Proxy URLs are checked when the settings are built, so a malformed or unsupported one is a
  start-up error naming the variable or field it came from.
- NO_PROXY entries: `*`, a domain (with or without a leading dot or `*.`; it covers its
  subdomains), `host:port`, an IP or a CIDR block, case-insensitive. An entry we do not understand
  matches nothing rather than failing, since the same variable is read by every other tool.
- Loopback, localhost and the cloud metadata server never go through a proxy, whatever NO_PROXY
  says (ALWAYS_BYPASS).
- An https origin goes through a CONNECT tunnel (`connect_tunnel`); the caller then starts TLS
  inside it for the ORIGIN name. A plain-http origin's request goes to the proxy with an
  absolute-form target (`prepare_forwarded_request`).
- Proxy credentials become a Basic Proxy-Authorization header, sent only to the proxy. They appear
  in no message, log line or repr: the proxy is named by host:port only (`ProxyEndpoint.address`).
  A 407 is never passed on to our client, which has no way to answer it.

Known shortcuts:
- http:// proxy URLs only (no TLS to the proxy itself, no SOCKS), Basic auth only.
- Bytes a proxy sends after its 2xx and before our TLS ClientHello are refused (the TLS server
  never speaks first, and asyncio's start_tls cannot be handed bytes already read).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping
from urllib.parse import unquote, urlsplit

import h11

from translate.errors import UpstreamUnavailable

if TYPE_CHECKING:
    # For annotations only: upstreams.transport imports this module, never the other way round at
    # run time.
    from upstreams.transport import Origin, UpstreamProtocol

# Per origin scheme, the variables that name its proxy, in lookup order: lower-case before upper-case
# (as curl does), ALL_PROXY as the fallback for both. An empty variable counts as unset (as in
# Python's urllib.request.getproxies).
PROXY_VARIABLES = {
    "https": ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
    "http": ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
}
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")
# Always reached directly, whatever NO_PROXY says (PROTOCOLS.md 9): a proxy cannot reach our
# loopback, and must never see the cloud metadata server, which hands out the workload's tokens.
ALWAYS_BYPASS = ("localhost", "127.0.0.0/8", "::1", "metadata.google.internal", "169.254.169.254")
PROXY_DEFAULT_PORT = 80  # an http:// proxy URL without a port, as Python's requests/urllib3 read it


# ---------------------------------------------------------------------------------------------
# Proxy URLs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyEndpoint:
    """A parsed proxy URL: where to connect, and the Proxy-Authorization value (None without
    userinfo). The credentials stay out of repr; messages and logs show `address` only."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """host:port, with an IPv6 host in brackets. Safe to show: it holds no credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_proxy_url(url: str, source: str) -> ProxyEndpoint:
    """Parse `http://[user:password@]host[:port][/]` (a bare `host:port` counts as http, as in curl).

    The user name and password are percent-decoded into a Basic Proxy-Authorization value.
    Raises ValueError with a sentence naming `source` (the variable or field the URL came from);
    the message never repeats the URL, which may hold a password.
    """
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise ValueError(
            f"{source} is an https:// proxy URL: TLS to the proxy itself is not supported; use an http:// proxy URL."
        )
    if scheme != "http":
        raise ValueError(f"{source} must be an http:// proxy URL; {scheme}:// proxies are not supported.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"{source} must look like http://[user:password@]host:port, with no path "
            "(percent-encode special characters in the user name and password)."
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            f"{source} has an invalid port (percent-encode special characters in the user name and password)."
        ) from None  # the parser's own message may quote part of the URL
    if not parts.hostname:
        raise ValueError(f"{source} has no proxy host.")
    authorization = None
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return ProxyEndpoint(parts.hostname, port or PROXY_DEFAULT_PORT, authorization)


# ---------------------------------------------------------------------------------------------
# NO_PROXY
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BypassRule:
    """One NO_PROXY entry: everything (`*`), a domain with its subdomains, or an IP network (an
    exact IP is a /32 or /128); with `port`, only origins on that port."""

    everything: bool = False
    domain: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def matches(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.everything:
            return True
        if self.network is not None:
            return ip is not None and ip.version == self.network.version and ip in self.network
        return host == self.domain or host.endswith(f".{self.domain}")


def _parse_bypass_rule(entry: str) -> _BypassRule | None:
    """The rule for one NO_PROXY entry, or None for one we do not understand (it matches nothing,
    as in the other tools that read the same variable: a shell's NO_PROXY must not stop us)."""
    text = entry.strip().lower()
    if not text:
        return None
    if text == "*":
        return _BypassRule(everything=True)
    port_text = None
    if text.startswith("["):  # [v6 address] or [v6 address]:port
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
    elif text.count(":") == 1:  # host:port; a bare IPv6 address has more colons
        host, _, port_text = text.partition(":")
    else:
        host = text
    if port_text is not None and not port_text.isdigit():
        return None
    port = int(port_text) if port_text is not None else None
    try:
        return _BypassRule(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass  # not an IP or CIDR block: a domain
    # "example.com", ".example.com" and "*.example.com" all mean the domain and its subdomains.
    if host.startswith("*."):
        host = host[2:]
    elif host.startswith("."):
        host = host[1:]
    host = host.rstrip(".")
    if not host or "*" in host or "/" in host:
        return None
    return _BypassRule(domain=host, port=port)


def _bypass_rules(entries: tuple[str, ...]) -> tuple[_BypassRule, ...]:
    """Rules for NO_PROXY entries; an entry may itself be a comma list."""
    rules = (_parse_bypass_rule(part) for entry in entries for part in entry.split(","))
    return tuple(rule for rule in rules if rule is not None)


_ALWAYS_BYPASS_RULES = _bypass_rules(ALWAYS_BYPASS)


def _origin_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The origin host as an IP address (an IPv4-mapped IPv6 address as its IPv4 one), or None."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


# ---------------------------------------------------------------------------------------------
# Settings: which proxy carries which origin
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ProxySettings:
    """Which proxy carries requests to which origin.

    `https_proxy` serves https origins (through CONNECT) and `http_proxy` plain-http origins; both
    are `http://[user:password@]host:port` URLs, checked at construction (ValueError naming the
    field). `no_proxy` entries follow NO_PROXY: `*`, a domain (with or without a leading dot; it
    covers its subdomains), `host:port`, an IP or a CIDR block, case-insensitive. ALWAYS_BYPASS
    origins are never proxied. The repr hides credentials.
    """

    https_proxy: str | None = None
    http_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()
    # Parsed once at construction.
    _https_endpoint: ProxyEndpoint | None = field(default=None, init=False, compare=False)
    _http_endpoint: ProxyEndpoint | None = field(default=None, init=False, compare=False)
    _rules: tuple[_BypassRule, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        # object.__setattr__: the documented way to fill derived fields of a frozen dataclass.
        if self.https_proxy is not None:
            object.__setattr__(self, "_https_endpoint", parse_proxy_url(self.https_proxy, "https_proxy"))
        if self.http_proxy is not None:
            object.__setattr__(self, "_http_endpoint", parse_proxy_url(self.http_proxy, "http_proxy"))
        object.__setattr__(self, "no_proxy", tuple(self.no_proxy))
        object.__setattr__(self, "_rules", _bypass_rules(self.no_proxy))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxySettings | None:
        """Read https_proxy/HTTPS_PROXY, http_proxy/HTTP_PROXY, all_proxy/ALL_PROXY and
        no_proxy/NO_PROXY from `env`, lower-case first (PROXY_VARIABLES).

        Returns None when no proxy is set (NO_PROXY alone changes nothing). Raises ValueError with
        a sentence naming the variable for a malformed or unsupported proxy URL.
        """
        chosen: dict[str, str] = {}
        for scheme, names in PROXY_VARIABLES.items():
            name = next((name for name in names if env.get(name, "").strip()), None)
            if name is not None:
                parse_proxy_url(env[name], name)  # fail here, naming the variable the user set
                chosen[scheme] = env[name].strip()
        if not chosen:
            return None
        no_proxy_name = next((name for name in NO_PROXY_VARIABLES if env.get(name, "").strip()), None)
        entries = env[no_proxy_name].split(",") if no_proxy_name is not None else []
        return cls(
            https_proxy=chosen.get("https"),
            http_proxy=chosen.get("http"),
            no_proxy=tuple(entry.strip() for entry in entries if entry.strip()),
        )

    def proxy_for(self, origin: Origin) -> str | None:
        """The proxy URL to reach `origin` through, or None to connect directly (no proxy for its
        scheme, or the origin is bypassed by NO_PROXY or ALWAYS_BYPASS)."""
        if self.endpoint_for(origin) is None:
            return None
        return self.https_proxy if origin.scheme == "https" else self.http_proxy

    def endpoint_for(self, origin: Origin) -> ProxyEndpoint | None:
        """Like `proxy_for`, but the parsed proxy the client connects to."""
        endpoint = self._https_endpoint if origin.scheme == "https" else self._http_endpoint
        if endpoint is None or self.bypasses(origin):
            return None
        return endpoint

    def bypasses(self, origin: Origin) -> bool:
        """True when `origin` must be reached directly (NO_PROXY or ALWAYS_BYPASS)."""
        host = origin.host.lower().rstrip(".")
        ip = _origin_ip(host)
        return any(rule.matches(host, ip, origin.port) for rule in _ALWAYS_BYPASS_RULES + self._rules)

    def __repr__(self) -> str:
        def shown(endpoint: ProxyEndpoint | None) -> str | None:
            if endpoint is None:
                return None
            return f"http://{'***@' if endpoint.authorization else ''}{endpoint.address}"

        return (
            f"ProxySettings(https_proxy={shown(self._https_endpoint)!r}, "
            f"http_proxy={shown(self._http_endpoint)!r}, no_proxy={self.no_proxy!r})"
        )


# ---------------------------------------------------------------------------------------------
# Speaking to the proxy: forwarded requests, CONNECT tunnels, 407
# ---------------------------------------------------------------------------------------------


def prepare_forwarded_request(origin: Origin, target: str, headers: list[tuple[str, str]], proxy: ProxyEndpoint) -> str:
    """Adapt a plain-http request to go to `proxy` rather than straight to `origin`: return its
    target in absolute form, and append Proxy-Authorization to `headers` (a list the caller owns)
    when the proxy URL carries credentials."""
    # RFC 9112 3.2.2: "When making a request to a proxy, other than a CONNECT or
    # server-wide OPTIONS request, a client MUST send the target URI in absolute-form".
    absolute_target = f"http://{origin.host_header}{target}"
    if proxy.authorization is not None:
        headers.append(("proxy-authorization", proxy.authorization))
    return absolute_target


async def connect_tunnel(
    origin: Origin, proxy: ProxyEndpoint, transport: asyncio.Transport, protocol: UpstreamProtocol, timeout: float
) -> None:
    """Ask the proxy for a tunnel to the origin and return once it answered 2xx.

    Raises UpstreamUnavailable for a 407, any other non-2xx, an invalid answer, or bytes of the
    proxy's own after the 2xx; OSError or asyncio.TimeoutError raw.
    """
    # RFC 9110 9.3.6: "CONNECT server.example.com:80 HTTP/1.1" with "Host: server.example.com:80".
    authority = f"{origin.host_for_url}:{origin.port}"
    headers = [("host", authority)]
    if proxy.authorization is not None:
        headers.append(("proxy-authorization", proxy.authorization))
    connection = h11.Connection(h11.CLIENT)
    transport.write(connection.send(h11.Request(method="CONNECT", target=authority, headers=headers)))
    connection.send(h11.EndOfMessage())  # no body: writes nothing, moves h11 to MIGHT_SWITCH_PROTOCOL
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await protocol.read(timeout))
            elif isinstance(event, h11.Response):
                break
            elif not isinstance(event, h11.InformationalResponse):
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")
    except h11.RemoteProtocolError as exc:
        if connection.trailing_data[1]:
            raise UpstreamUnavailable(
                f"The proxy {proxy.address} closed the connection instead of answering CONNECT for {origin}."
            ) from exc
        raise UpstreamUnavailable(
            f"The proxy {proxy.address} sent an invalid answer to CONNECT for {origin} ({exc})."
        ) from exc
    status = event.status_code
    if status == 407:
        raise UpstreamUnavailable(proxy_auth_message(proxy, origin))
    if not 200 <= status < 300:
        reason = event.reason.decode("latin-1")[:80]
        answer = f"{status} {reason}" if reason else f"{status}"
        raise UpstreamUnavailable(
            f"The proxy {proxy.address} refused to open a tunnel to {origin}: it answered {answer}."
        )
    # Any 2xx switches h11 to SWITCHED_PROTOCOL; what followed the head is tunnel data. The TLS
    # server never speaks before our ClientHello, so such bytes can only come from a broken proxy.
    if connection.trailing_data[0] or protocol.has_unread_input:
        raise UpstreamUnavailable(
            f"The proxy {proxy.address} sent data of its own or closed the tunnel to {origin} before TLS started."
        )


def proxy_auth_message(proxy: ProxyEndpoint, origin: Origin) -> str:
    """The sentence for a 407: it names the proxy by host:port, never the credentials."""
    if proxy.authorization is not None:
        hint = "it rejected the user name and password in the proxy URL"
    else:
        hint = "put user:password in the proxy URL"
    return f"The proxy {proxy.address} requires authentication (407) to reach {origin}: {hint}."
