"""Fetching URLs an admin gave us without letting them reach inside the network (SSRF).

Every hop is checked before anything is sent: http or https only, no user name or password in the
URL, and the host resolved here with *every* address it resolves to checked (a name that also
resolves to a private address is refused). The connection then goes to the checked address itself:
the URL's host travels as the ``Host`` header and the TLS server name (so certificates are still
verified against the name), and a DNS answer that changes between the check and the connection
(rebinding) can't redirect it. Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each
hop checked again. A body is streamed and cut at a byte cap, and the whole fetch has a deadline.

Refused always: unspecified, link-local (169.254.0.0/16 with the cloud metadata address
169.254.169.254, fe80::/10), the metadata addresses fd00:ec2::254 and 100.100.100.200, multicast,
broadcast and reserved ranges. Refused unless private addresses are allowed (``KNOWLEDGE_ALLOW_PRIVATE_URLS``,
honoured only in Development): loopback, RFC 1918 and unique-local networks, carrier-grade NAT.
IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that address.
https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import httpx

MAX_REDIRECTS = 5
MAX_URL_CHARS = 2048
REDIRECT_STATUSES = (301, 302, 303, 307, 308)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_net = ipaddress.ip_network
# (network, what it is): refused even when private addresses are allowed. Order matters: the first match names it.
_ALWAYS_REFUSED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_net("169.254.169.254/32"), "the cloud metadata address"),
    (_net("fd00:ec2::254/128"), "the cloud metadata address"),
    (_net("100.100.100.200/32"), "a cloud metadata address"),
    (_net("0.0.0.0/8"), "an unspecified address"),
    (_net("::/128"), "an unspecified address"),
    (_net("169.254.0.0/16"), "a link-local address"),
    (_net("fe80::/10"), "a link-local address"),
    (_net("224.0.0.0/4"), "a multicast address"),
    (_net("ff00::/8"), "a multicast address"),
    (_net("255.255.255.255/32"), "the broadcast address"),
)
# Reachable only from inside a network: allowed with the Development setting, refused otherwise.
_PRIVATE: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_net("127.0.0.0/8"), "a loopback address"),
    (_net("::1/128"), "a loopback address"),
    (_net("10.0.0.0/8"), "a private address"),
    (_net("172.16.0.0/12"), "a private address"),
    (_net("192.168.0.0/16"), "a private address"),
    (_net("fc00::/7"), "a private address"),
    (_net("100.64.0.0/10"), "a carrier-grade NAT address"),
)
_NAT64 = _net("64:ff9b::/96")
_IPV4_COMPATIBLE = _net("::/96")  # deprecated ::a.b.c.d; only :: and ::1 in it mean something today


class UrlRefused(Exception):
    """A URL (or a hop it redirects to) that may not be fetched; the message says why, for a person."""


class FetchFailed(Exception):
    """A fetch that went wrong on the way (network, timeout, too many redirects, too large)."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo client, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(address: str | IPAddress, *, allow_private: bool = False) -> str | None:
    """Why ``address`` may not be fetched from ("a loopback address"...), or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        return address_refusal(inner, allow_private=allow_private)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return "a reserved address"
    for network, reason in _ALWAYS_REFUSED:
        if ip in network:
            return reason
    for network, reason in _PRIVATE:
        if ip in network:
            return None if allow_private else reason
    if not ip.is_global:  # documentation, benchmarking, IETF and other special-purpose ranges
        return "a reserved address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (what a connection could use)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """A checked hop: the URL, and the addresses to connect to for it (tried in order)."""

    url: str
    host: str  # as in the URL (IDNA-encoded), for the Host header and the TLS server name
    netloc: str  # host[:port] as in the URL
    addresses: tuple[str, ...]


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` before any lookup (scheme, credentials, host), or None."""
    if len(url) > MAX_URL_CHARS:
        return f"is longer than {MAX_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        return f"uses the scheme {shown!r}; only http and https URLs can be fetched"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if not parts.hostname:
        return "has no host name"
    if port == 0:
        return "has port 0"
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "must not contain spaces or control characters"
    return None


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a URL answered: the final URL after redirects, status, content type and (for 200) the body."""

    url: str
    status: int
    content_type: str  # the media type only, lower case ("text/html")
    charset: str
    body: bytes
    redirects: tuple[str, ...] = ()  # the URLs that redirected, in order


@dataclass
class Fetcher:
    """Fetches URLs by the rules above; one per job (it keeps a client per host for keep-alive)."""

    allow_private: bool = False
    timeout: float = 15.0
    user_agent: str = "SupportDeskBot/1.0"
    resolver: Resolver = resolve
    transport: httpx.AsyncBaseTransport | None = None  # tests: httpx.MockTransport
    _clients: dict[str, Any] = field(default_factory=dict)

    async def check(self, url: str) -> Target:
        """The hop ``url`` checked and pinned to an address; :class:`UrlRefused` with the reason if not."""
        import httpx

        problem = url_problem(url)
        if problem:
            raise UrlRefused(f"{url} {problem}")
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = host.strip("[]")
        try:
            ipaddress.ip_address(literal)
            addresses = [literal]  # an address in the URL: nothing to resolve
        except ValueError:
            addresses = []
        try:
            addresses = addresses or await self.resolver(literal, port)
        except (OSError, UnicodeError) as exc:
            raise UrlRefused(f"the host name {parsed.host} does not resolve ({exc.__class__.__name__})") from exc
        if not addresses:
            raise UrlRefused(f"the host name {parsed.host} does not resolve")
        for address in addresses:
            reason = address_refusal(address, allow_private=self.allow_private)
            if reason:
                shown = parsed.host if parsed.host == address else f"{parsed.host} ({address})"
                raise UrlRefused(f"{shown} is {reason}; only public addresses can be fetched")
        return Target(str(parsed.copy_with(fragment=None)), host, parsed.netloc.decode("ascii"), tuple(addresses))

    def _client(self, host: str) -> httpx.AsyncClient:
        import httpx

        # One client per host name: a pooled TLS connection is only ever reused for the name it was verified for.
        client = self._clients.get(host)
        if client is None:
            client = httpx.AsyncClient(
                transport=self.transport,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would connect by name, past the address check
                headers={"User-Agent": self.user_agent},
            )
            self._clients[host] = client
        return client

    async def fetch(self, url: str, *, max_bytes: int, accept: Collection[str] | None = None) -> Fetched:
        """GET ``url`` following checked redirects; the body only when the answer is 200 and its type accepted.

        :class:`UrlRefused` when a hop is refused, :class:`FetchFailed` when the fetch goes wrong.
        """
        import httpx

        try:
            async with asyncio.timeout(self.timeout * 2):
                return await self._fetch(url, max_bytes=max_bytes, accept=accept)
        except TimeoutError as exc:
            raise FetchFailed(f"{url} took longer than {self.timeout * 2:g} seconds to answer") from exc
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"{url} did not answer within {self.timeout:g} seconds") from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{url} could not be fetched ({exc.__class__.__name__}: {exc})") from exc

    async def _fetch(self, url: str, *, max_bytes: int, accept: Collection[str] | None) -> Fetched:

        current = url
        redirects: list[str] = []
        for _ in range(MAX_REDIRECTS + 1):
            try:
                target = await self.check(current)
            except UrlRefused as refused:
                if redirects:
                    raise UrlRefused(f"{url} redirects to {current}, but {refused}") from None
                raise
            response = await self._send(target)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    redirects.append(target.url)
                    current = urljoin(target.url, location.strip())
                    continue
                media, charset = _content_type(response.headers.get("content-type", ""))
                wanted = response.status_code == 200 and (accept is None or media in accept)
                body = await _read(response, max_bytes, target.url) if wanted else b""
                return Fetched(target.url, response.status_code, media, charset, body, tuple(redirects))
            finally:
                await response.aclose()
        raise FetchFailed(f"{url} redirects more than {MAX_REDIRECTS} times")

    async def _send(self, target: Target) -> httpx.Response:
        """GET a checked hop from its first address that takes the connection (IPv6 may be unroutable)."""
        import httpx

        client = self._client(target.host)
        failure: httpx.ConnectError | None = None
        for address in target.addresses:
            pinned = httpx.URL(target.url).copy_with(host=address)
            extensions = {"sni_hostname": target.host} if pinned.scheme == "https" else {}
            request = client.build_request("GET", pinned, headers={"Host": target.netloc}, extensions=extensions)
            try:
                return await client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None  # check() never returns a target without addresses
        raise failure

    async def aclose(self) -> None:
        """Close every client."""
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)


def _content_type(header: str) -> tuple[str, str]:
    media, _, params = header.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


async def _read(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    """The body, decompressed, stopping as soon as it passes ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(f"{url} is {int(declared)} bytes; the limit is {max_bytes}")
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > max_bytes:
            raise FetchFailed(f"{url} is larger than the limit of {max_bytes} bytes")
        parts.append(part)
    return b"".join(parts)


async def check_public_url(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> str | None:
    """Why ``url`` can't be a source (as a field message), or None; resolves the host once."""
    try:
        await Fetcher(allow_private=allow_private, resolver=resolver).check(url)
    except UrlRefused as refused:
        return str(refused)
    return None


def same_site(url: str, site: str) -> bool:
    """Whether ``url`` has the same scheme, host and port as ``site``."""
    return _origin(url) == _origin(site)


def _origin(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return "", "", 0


def normalize_url(url: str) -> str:
    """``url`` for comparing: scheme and host lower case, default port and fragment dropped, "/" for no path."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == (443 if scheme == "https" else 80) else f"{host}:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{parts.path or '/'}{query}"


def join_url(base: str, link: str) -> str | None:
    """``link`` resolved against ``base`` and normalized; None when it isn't an http(s) URL."""
    try:
        absolute = urljoin(base, link.strip())
        if urlsplit(absolute).scheme.lower() not in ("http", "https"):
            return None
        return normalize_url(absolute)
    except ValueError:
        return None
