"""SSRF-safe fetching without a network: address rules, URL rules, and the fetch loop over a mock transport.

The resolver and the transport are fakes (no DNS, no sockets), so a refusal is shown by the transport
never being asked, and a pinned connection by the address it is asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from shared.knowledge.fetching import (
    MAX_REDIRECTS,
    Fetcher,
    FetchFailed,
    UrlRefused,
    address_refusal,
    check_public_url,
    join_url,
    normalize_url,
    same_site,
    url_problem,
)


@pytest.mark.parametrize(
    ("address", "reason", "allowed_in_development"),
    [
        ("93.184.215.14", None, True),
        ("2606:4700:4700::1111", None, True),
        ("127.0.0.1", "a loopback address", True),
        ("127.255.0.9", "a loopback address", True),
        ("::1", "a loopback address", True),
        ("10.0.0.5", "a private address", True),
        ("172.16.3.4", "a private address", True),
        ("172.31.255.255", "a private address", True),
        ("192.168.1.1", "a private address", True),
        ("fd12:3456::1", "a private address", True),
        ("100.64.0.1", "a carrier-grade NAT address", True),
        ("169.254.169.254", "the cloud metadata address", False),
        ("fd00:ec2::254", "the cloud metadata address", False),
        ("100.100.100.200", "a cloud metadata address", False),
        ("169.254.1.1", "a link-local address", False),
        ("fe80::1", "a link-local address", False),
        ("fe80::1%eth0", "a link-local address", False),
        ("0.0.0.0", "an unspecified address", False),
        ("0.1.2.3", "an unspecified address", False),
        ("::", "an unspecified address", False),
        ("224.0.0.251", "a multicast address", False),
        ("ff02::1", "a multicast address", False),
        ("255.255.255.255", "the broadcast address", False),
        ("240.0.0.1", "a reserved address", False),
        ("192.0.2.10", "a reserved address", False),
        ("198.18.0.1", "a reserved address", False),
        ("2001:db8::1", "a reserved address", False),
        ("::7f00:1", "a reserved address", False),  # IPv4-compatible ::127.0.0.1
        # IPv6 forms that carry an IPv4 address are judged by it.
        ("::ffff:127.0.0.1", "a loopback address", True),
        ("::ffff:169.254.169.254", "the cloud metadata address", False),
        ("::ffff:93.184.215.14", None, True),
        ("2002:0a00:0001::1", "a private address", True),  # 6to4 of 10.0.0.1
        ("2002:a9fe:a9fe::1", "the cloud metadata address", False),  # 6to4 of 169.254.169.254
        ("64:ff9b::a9fe:a9fe", "the cloud metadata address", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::7f00:1", "a loopback address", True),
    ],
)
def test_addresses_are_judged_by_what_they_reach(
    address: str, reason: str | None, allowed_in_development: bool
) -> None:
    assert address_refusal(address) == reason
    assert (address_refusal(address, allow_private=True) is None) == allowed_in_development


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("example.com/page", "only http and https"),
        ("http://user:pass@example.com/", "user name or password"),
        ("http://user@example.com/", "user name or password"),
        ("http:///path", "no host name"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://exa mple.com/", "spaces or control characters"),
        ("http://example.com/" + "a" * 2100, "longer than 2048"),
    ],
)
def test_urls_are_refused_before_any_lookup(url: str, fragment: str) -> None:
    problem = url_problem(url)
    assert problem is not None and fragment in problem


def test_good_urls_pass_and_are_normalized_for_comparison() -> None:
    assert url_problem("https://Example.com:443/a?b=1#c") is None
    assert normalize_url("HTTPS://Example.COM:443/a?b=1#c") == "https://example.com/a?b=1"
    assert normalize_url("http://example.com") == "http://example.com/"
    assert normalize_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert join_url("https://a.example/docs/page", "../faq#top") == "https://a.example/faq"
    assert join_url("https://a.example/", "mailto:x@a.example") is None
    assert join_url("https://a.example/", "javascript:alert(1)") is None
    assert same_site("https://a.example/x", "https://A.example:443/y")
    assert not same_site("https://a.example/x", "http://a.example/x")
    assert not same_site("https://a.example/x", "https://a.example:8443/x")
    assert not same_site("https://b.a.example/x", "https://a.example/x")


# --- the fetch loop ------------------------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class Net:
    """A fake DNS and a mock transport that records what would have been sent where."""

    def __init__(self, dns: dict[str, list[str]], handler: Handler) -> None:
        self.dns = dns
        self.handler = handler
        self.lookups: list[str] = []
        self.sent: list[httpx.Request] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.dns:
            raise OSError("Name or service not known")
        answer = self.dns[host]
        if len(answer) > 1 and answer[0] == "rebind":  # a different answer each time: public, then private
            return [answer.pop(1)]
        return list(answer)

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.sent.append(request)
            return self.handler(request)

        return httpx.MockTransport(handle)

    def fetcher(self, **options: object) -> Fetcher:
        return Fetcher(resolver=self.resolve, transport=self.transport(), **options)  # type: ignore[arg-type]


def fetch(fetcher: Fetcher, url: str, **options: object) -> object:
    async def run() -> object:
        try:
            return await fetcher.fetch(url, max_bytes=int(options.pop("max_bytes", 10_000)), **options)  # type: ignore[arg-type]
        finally:
            await fetcher.aclose()

    return asyncio.run(run())


def html(body: str = "<p>hi</p>", status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "text/html; charset=utf-8", **headers}, content=body)


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host_and_tls_server_name() -> None:
    net = Net({"shop.example": ["93.184.215.14"]}, lambda _request: html())
    fetched = fetch(net.fetcher(), "https://shop.example/help?q=1#part")
    assert fetched.status == 200 and fetched.body == b"<p>hi</p>" and fetched.url == "https://shop.example/help?q=1"  # type: ignore[attr-defined]
    [request] = net.sent
    assert request.url.host == "93.184.215.14" and request.url.path == "/help" and request.url.query == b"q=1"
    assert request.headers["host"] == "shop.example"
    assert request.extensions["sni_hostname"] == "shop.example"
    assert request.headers["user-agent"].startswith("SupportDeskBot")


def test_every_checked_address_is_tried_in_turn() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "2606:4700::1111":
            raise httpx.ConnectError("network unreachable", request=request)
        return html()

    net = Net({"dual.example": ["2606:4700::1111", "93.184.215.14"]}, handler)
    assert fetch(net.fetcher(), "http://dual.example/").status == 200  # type: ignore[attr-defined]
    assert [request.url.host for request in net.sent] == ["2606:4700::1111", "93.184.215.14"]
    assert all(request.headers["host"] == "dual.example" for request in net.sent)


def test_a_name_that_resolves_to_any_private_address_is_refused_without_a_request() -> None:
    net = Net(
        {"inside.example": ["10.0.0.7"], "both.example": ["93.184.215.14", "127.0.0.1"], "v6.example": ["::1"]},
        lambda _request: html(),
    )
    for host, reason in [("inside", "a private address"), ("both", "a loopback address"), ("v6", "loopback")]:
        with pytest.raises(UrlRefused) as refused:
            fetch(net.fetcher(), f"http://{host}.example/")
        assert reason in str(refused.value) and "only public addresses" in str(refused.value)
    with pytest.raises(UrlRefused, match="does not resolve"):
        fetch(net.fetcher(), "http://nowhere.example/")
    assert net.sent == []


def test_a_redirect_to_a_private_or_metadata_address_is_refused_before_it_is_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        targets = {
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-name": "http://intranet.example/admin",
            "/to-v6": "http://[::ffff:10.0.0.1]/",
            "/to-file": "file:///etc/passwd",
        }
        return httpx.Response(302, headers={"location": targets[request.url.path]})

    net = Net({"shop.example": ["93.184.215.14"], "intranet.example": ["192.168.0.10"]}, handler)
    for path, reason in [
        ("/to-metadata", "the cloud metadata address"),
        ("/to-name", "a private address"),
        ("/to-v6", "a private address"),
        ("/to-file", "only http and https"),
    ]:
        with pytest.raises(UrlRefused) as refused:
            fetch(net.fetcher(), f"http://shop.example{path}")
        message = str(refused.value)
        assert f"http://shop.example{path} redirects to" in message and reason in message, message
    assert {request.url.host for request in net.sent} == {"93.184.215.14"}  # never anywhere else


def test_dns_rebinding_between_hops_is_caught() -> None:
    # The name answers a public address first, then a private one: each hop is resolved and checked again.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start":
            return httpx.Response(301, headers={"location": "/next"})
        return html()

    net = Net({"flip.example": ["rebind", "93.184.215.14", "127.0.0.1"]}, handler)
    with pytest.raises(UrlRefused, match="loopback"):
        fetch(net.fetcher(), "http://flip.example/start")
    assert [request.url.path for request in net.sent] == ["/start"]


def test_private_addresses_are_reached_only_when_allowed_and_metadata_never() -> None:
    net = Net({"localhost": ["127.0.0.1"], "meta.example": ["169.254.169.254"]}, lambda _request: html())
    assert fetch(net.fetcher(allow_private=True), "http://localhost:8080/").status == 200  # type: ignore[attr-defined]
    assert net.sent[0].url.host == "127.0.0.1" and net.sent[0].url.port == 8080
    assert net.sent[0].headers["host"] == "localhost:8080"
    with pytest.raises(UrlRefused, match="metadata"):
        fetch(net.fetcher(allow_private=True), "http://meta.example/")


def test_redirects_are_followed_at_most_five_times() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        hop = int(request.url.path.strip("/") or 0)
        return httpx.Response(302, headers={"location": f"/{hop + 1}"}) if hop < 9 else html()

    net = Net({"loop.example": ["93.184.215.14"]}, handler)
    with pytest.raises(FetchFailed, match=f"more than {MAX_REDIRECTS} times"):
        fetch(net.fetcher(), "http://loop.example/0")
    assert len(net.sent) == MAX_REDIRECTS + 1
    fetched = fetch(net.fetcher(), "http://loop.example/4")
    assert fetched.url == "http://loop.example/9" and len(fetched.redirects) == 5  # type: ignore[attr-defined]


def test_bodies_are_capped_while_streaming_and_other_types_are_not_read() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 600

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/declared":
            return html("x" * 50, **{"content-length": "5000000"})
        if request.url.path == "/image":
            return httpx.Response(200, headers={"content-type": "image/png"}, content=b"\x89PNG")
        return httpx.Response(200, headers={"content-type": "text/html"}, content=chunks())

    net = Net({"big.example": ["93.184.215.14"]}, handler)
    with pytest.raises(FetchFailed, match="larger than the limit of 1000 bytes"):
        fetch(net.fetcher(), "http://big.example/stream", max_bytes=1000)
    with pytest.raises(FetchFailed, match="5000000 bytes; the limit is 1000"):
        fetch(net.fetcher(), "http://big.example/declared", max_bytes=1000)
    image = fetch(net.fetcher(), "http://big.example/image", accept=("text/html",))
    assert image.content_type == "image/png" and image.body == b""  # type: ignore[attr-defined]


def test_a_slow_server_times_out() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    net = Net({"slow.example": ["93.184.215.14"]}, handler)
    with pytest.raises(FetchFailed, match="did not answer within 2 seconds"):
        fetch(net.fetcher(timeout=2.0), "http://slow.example/")


def test_a_source_url_is_checked_by_its_resolved_addresses() -> None:
    dns = {"public.example": ["93.184.215.14"], "private.example": ["10.1.1.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return dns.get(host) or [host]

    def check(url: str, **options: bool) -> str | None:
        return asyncio.run(check_public_url(url, resolver=resolver, allow_private=options.get("allow_private", False)))

    assert check("https://public.example/help") is None
    assert "private.example (10.1.1.1) is a private address" in (check("https://private.example/") or "")
    assert check("https://private.example/", allow_private=True) is None
    assert "metadata" in (check("http://169.254.169.254/", allow_private=True) or "")
