"""A small website on loopback for the knowledge crawler: pages, robots.txt, sitemaps, redirects, files.

Each test builds its own with made-up words, so searches of one test never see another's pages.
A page can be held back (``hold``) until the test releases it, to watch a source while it indexes.
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass, field

from tests.fakes.http_server import FakeServer, Recorded, Reply
from tests.knowledge_files import make_docx, make_pdf


def page(title: str, body: str, links: list[str] | None = None) -> str:
    """An HTML page with navigation (which the index must leave out), ``body`` and ``links``."""
    anchors = "".join(f'<li><a href="{html.escape(link)}">{html.escape(link)}</a></li>' for link in links or [])
    return (
        f"<!doctype html><html><head><title>{html.escape(title)}</title>"
        "<style>body { color: red }</style><script>var tracking = 'zzscriptword';</script></head>"
        f"<body><nav><a href='/'>Home</a> zznavword</nav><main>{body}<ul>{anchors}</ul></main>"
        "<footer>zzfooterword</footer></body></html>"
    )


@dataclass
class Site:
    """The site's routes (path -> reply) and what it was asked for."""

    routes: dict[str, Reply] = field(default_factory=dict)
    held: dict[str, threading.Event] = field(default_factory=dict)
    server: FakeServer | None = None

    def start(self) -> Site:
        """Serve on a free loopback port."""
        self.server = FakeServer(self._handle).start()
        return self

    def stop(self) -> None:
        """Release anything held and stop serving."""
        for gate in self.held.values():
            gate.set()
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        """The site's base URL, without a trailing slash."""
        assert self.server is not None
        return self.server.url

    def _handle(self, request: Recorded) -> Reply:
        path = request.path
        if (gate := self.held.get(path)) is not None:
            gate.wait(timeout=60)
        return self.routes.get(path, (404, {"content-type": "text/html"}, b"<html><body>Not here</body></html>"))

    def html(self, path: str, title: str, body: str, links: list[str] | None = None) -> None:
        """Serve an HTML page at ``path``."""
        self.routes[path] = (200, {"content-type": "text/html; charset=utf-8"}, page(title, body, links).encode())

    def raw(self, path: str, body: bytes, content_type: str, status: int = 200) -> None:
        """Serve bytes at ``path``."""
        self.routes[path] = (status, {"content-type": content_type}, body)

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        """Redirect ``path`` to ``location``."""
        self.routes[path] = (status, {"location": location}, b"")

    def remove(self, path: str) -> None:
        """Make ``path`` a 404."""
        self.routes.pop(path, None)

    def hold(self, path: str) -> threading.Event:
        """Keep requests for ``path`` waiting until the returned event is set."""
        self.held[path] = threading.Event()
        return self.held[path]

    def requested(self, path_prefix: str) -> list[str]:
        """Paths requested that start with ``path_prefix``."""
        assert self.server is not None
        return [r.path for r in self.server.requests if r.path.startswith(path_prefix)]


def shop(site: Site, word: str) -> None:
    """An outdoor shop's help site: home, returns, shipping, a moved page, a private area, files, sitemaps."""
    site.raw(
        "/robots.txt",
        f"User-agent: *\nDisallow: /private/\n\nSitemap: {site.url}/sitemap.xml\n".encode(),
        "text/plain",
    )
    site.html(
        "/",
        f"{word} Outdoor Shop",
        f"<h1>Welcome to {word}</h1><p>We sell tents and stoves for the {word} trail.</p>",
        [
            "/returns",
            "/returns#policy",
            "/shipping?utm=1",
            "/old-care",
            "/private/staff",
            "/manual.pdf",
            "/logo.png",
            "https://elsewhere.example/other",
            "mailto:help@example.com",
            "#top",
        ],
    )
    site.html(
        "/returns",
        "Returns",
        f"<h1>Returns</h1><h2 id='policy'>Policy</h2><p>Unused {word} gear comes back within 30 days "
        "for a full refund.</p><h2>Exchanges</h2><p>Exchanges are free of charge.</p>",
        ["/"],
    )
    site.html(
        "/shipping?utm=1",
        "Shipping",
        f"<h1>Shipping</h1><p>Every {word} parcel ships within two working days.</p>",
        ["/", "/returns"],
    )
    site.redirect("/old-care", "/care")
    site.html("/care", "Care", f"<h1>Care</h1><p>Dry your {word} tent before you pack it away.</p>")
    site.html("/private/staff", "Staff", f"<p>{word} zzprivateword staff rota.</p>")
    site.raw("/manual.pdf", make_pdf([f"{word} manual"]), "application/pdf")
    site.raw("/logo.png", b"\x89PNG\r\n\x1a\n", "image/png")
    site.raw(
        "/sitemap.xml",
        (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{site.url}/sitemap-pages.xml</loc></sitemap></sitemapindex>"
        ).encode(),
        "application/xml",
    )
    site.raw(
        "/sitemap-pages.xml",
        (
            '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{site.url}/returns</loc></url><url><loc>{site.url}/care</loc></url>"
            f"<url><loc>{site.url}/private/staff</loc></url><url><loc>https://elsewhere.example/x</loc></url>"
            "</urlset>"
        ).encode(),
        "application/xml",
    )


def docx_guide(word: str) -> bytes:
    """A DOCX care guide with headings, a list and a table."""
    return make_docx(
        [
            ("h1", "Care guide"),
            ("p", f"Look after your {word} jacket and it lasts for years."),
            ("h2", "Washing"),
            ("p", f"Wash the {word} jacket at 30 degrees with a technical detergent."),
            ("li", "Close every zip first"),
            ("table", "Fabric|Temperature\nShell|30 degrees"),
        ],
        title=f"{word} care guide",
    )
