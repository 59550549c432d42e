"""Finding and fetching the pages of a url or sitemap source, as a well-behaved crawler does.

A ``url`` source is crawled breadth first from its page, following links within the same site
(scheme, host and port), each URL once (fragments dropped), up to ``maxPages`` HTML pages. A
``sitemap`` source fetches the pages its sitemap lists (a sitemap index is followed to its sitemaps),
also on the sitemap's own site only. Both honour the site's robots.txt for :data:`ROBOTS_AGENT`
(RFC 9309: a missing file allows everything, an unreachable one allows nothing) including its
Crawl-delay, fetch a few pages at a time, and stop at a time budget, keeping what they have.

Pages come out one by one as they are fetched and read (:class:`PageOutcome`), so the caller can
store each before the next arrives; what was skipped and why is counted in :class:`CrawlReport`.
https://www.rfc-editor.org/rfc/rfc9309
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from shared.knowledge.extraction import Document, ExtractionError, decode_text, extract, parse_sitemap
from shared.knowledge.fetching import Fetcher, FetchFailed, UrlRefused, join_url, normalize_url, same_site
from shared.knowledge.settings import ROBOTS_AGENT

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_SITEMAPS = 20  # sitemap files read for one source (an index and its children)
MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
MAX_LINKS = 2000  # links read from one page
MAX_CRAWL_DELAY = 5.0  # seconds; a larger Crawl-delay would make any crawl outlast its job
# Links to these are not pages: not fetched at all.
_NOT_PAGES = {
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".bmp", ".tif", ".tiff", ".avif", ".mp3", ".mp4",
    ".m4a", ".wav", ".ogg", ".webm", ".mov", ".avi", ".zip", ".gz", ".tgz", ".rar", ".7z", ".tar", ".exe", ".dmg",
    ".msi", ".apk", ".iso", ".css", ".js", ".json", ".xml", ".rss", ".atom", ".woff", ".woff2", ".ttf", ".eot",
    ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".csv",
}  # fmt: skip


class CrawlStopped(Exception):
    """Nothing can be crawled (robots.txt unreachable, sitemap unusable, first URL refused): the reason."""


@dataclass
class PageOutcome:
    """One page: its text (``document``), or why it has none (``error``); ``gone`` when it no longer exists."""

    url: str
    document: Document | None = None
    error: str = ""
    gone: bool = False


@dataclass
class CrawlReport:
    """What a crawl skipped, and whether it saw the whole site (only then may vanished pages be removed)."""

    robots_disallowed: int = 0
    not_html: int = 0
    noindex: int = 0
    offsite: int = 0
    limited: bool = False  # stopped at maxPages with links left over
    timed_out: bool = False  # stopped at the job's time budget
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every page the source reaches was visited (or left out on purpose)."""
        return not self.timed_out


@dataclass
class Crawler:
    """One crawl of one source."""

    fetcher: Fetcher
    max_pages: int
    max_page_bytes: int
    deadline: float  # time.monotonic() after which nothing new is fetched
    concurrency: int = 4
    report: CrawlReport = field(default_factory=CrawlReport)
    _robots: Any = None
    _delay: float = 0.0

    # --- robots.txt --------------------------------------------------------------------------------------

    async def load_robots(self, site: str) -> None:
        """Read the site's robots.txt; :class:`CrawlStopped` when it can't be read (nothing may be crawled)."""
        from protego import Protego

        parts = urlsplit(site)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        try:
            fetched = await self.fetcher.fetch(robots_url, max_bytes=MAX_ROBOTS_BYTES)
        except (FetchFailed, UrlRefused) as exc:
            raise CrawlStopped(
                f"{robots_url} could not be read ({exc}); by the robots.txt standard nothing is crawled until it can be"
            ) from exc
        if fetched.status >= 500:
            raise CrawlStopped(
                f"{robots_url} answered {fetched.status}; by the robots.txt standard nothing is crawled "
                "until it answers"
            )
        if fetched.status == 200:
            text = decode_text(fetched.body[:MAX_ROBOTS_BYTES], fetched.charset)
            self._robots = Protego.parse(text)
            delay = self._robots.crawl_delay(ROBOTS_AGENT)
            if delay:
                self._delay = min(float(delay), MAX_CRAWL_DELAY)
                self.concurrency = 1

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets this crawler fetch ``url``."""
        return self._robots is None or bool(self._robots.can_fetch(url, ROBOTS_AGENT))

    # --- fetching one page -------------------------------------------------------------------------------

    async def fetch_page(self, url: str, site: str | None) -> PageOutcome | None:
        """Fetch and read one page; None when it turned out not to be a page to index (not HTML, off ``site``)."""
        try:
            fetched = await self.fetcher.fetch(url, max_bytes=self.max_page_bytes, accept=HTML_TYPES)
        except (FetchFailed, UrlRefused) as exc:
            return PageOutcome(url, error=str(exc))
        final = normalize_url(fetched.url)
        if site is not None and not same_site(final, site):
            self.report.offsite += 1
            return None
        if fetched.status in (404, 410):
            return PageOutcome(final, error=f"{final} answered {fetched.status}", gone=True)
        if fetched.status != 200:
            return PageOutcome(final, error=f"{final} answered {fetched.status}")
        if fetched.content_type not in HTML_TYPES:
            self.report.not_html += 1
            return None
        try:
            document = await asyncio.to_thread(extract, fetched.body, "html", charset=fetched.charset)
        except ExtractionError as exc:
            return PageOutcome(final, error=f"{final}: {exc}")
        return PageOutcome(final, document)

    def links(self, outcome: PageOutcome, site: str) -> list[str]:
        """The same-site page links of a fetched page, normalized, in document order."""
        document = outcome.document
        if document is None:
            return []
        base = join_url(outcome.url, document.base) if document.base else outcome.url
        found: list[str] = []
        for href in document.links[:MAX_LINKS]:
            url = join_url(base or outcome.url, href)
            if url is None:
                continue
            if not same_site(url, site):
                self.report.offsite += 1
                continue
            if PurePosixPath(urlsplit(url).path.lower()).suffix in _NOT_PAGES:
                continue
            found.append(url)
        return found

    # --- the two kinds of crawl --------------------------------------------------------------------------

    async def crawl_site(self, start: str) -> AsyncIterator[PageOutcome]:
        """Pages of the site from ``start``, breadth first."""
        start = normalize_url(start)
        await self.load_robots(start)
        if not self.allowed(start):
            raise CrawlStopped(f"the site's robots.txt does not allow crawling {start}")
        first = await self.fetch_page(start, None)
        if first is None:
            raise CrawlStopped(f"{start} is not an HTML page; add a file as a file source")
        site = start
        if not same_site(first.url, start):
            # The start redirects to another origin (http to https, shop.example to www.shop.example):
            # the site to crawl is where it landed, under that site's own robots.txt.
            site = first.url
            await self.load_robots(site)
            if not self.allowed(site):
                raise CrawlStopped(f"the site's robots.txt does not allow crawling {site}")
        async for outcome in self._run(deque(), site, follow=True, seen={start, site}, first=first):
            yield outcome

    async def crawl_sitemap(self, sitemap_url: str) -> AsyncIterator[PageOutcome]:
        """The pages a sitemap (or sitemap index) lists."""
        sitemap_url = normalize_url(sitemap_url)
        await self.load_robots(sitemap_url)
        site, pages = await self._sitemap_pages(sitemap_url)
        frontier = deque(pages[: self.max_pages])
        self.report.limited = len(pages) > self.max_pages
        async for outcome in self._run(frontier, site, follow=False, seen=set(pages)):
            yield outcome

    async def _sitemap_pages(self, sitemap_url: str) -> tuple[str, list[str]]:
        """The site the sitemap is on (where it landed after redirects) and the pages it lists there."""
        site = sitemap_url
        pending = deque([sitemap_url])
        visited: set[str] = set()
        pages: dict[str, None] = {}
        while pending and len(visited) < MAX_SITEMAPS and len(pages) <= self.max_pages:
            url = pending.popleft()
            visited.add(url)
            try:
                fetched = await self.fetcher.fetch(url, max_bytes=self.max_page_bytes * 4)
                if fetched.status != 200:
                    raise FetchFailed(f"{url} answered {fetched.status}")
                listed = await asyncio.to_thread(parse_sitemap, fetched.body)
                if url == sitemap_url and not same_site(fetched.url, sitemap_url):
                    site = normalize_url(fetched.url)  # moved to another origin: its pages are there
                    await self.load_robots(site)
            except (FetchFailed, UrlRefused, CrawlStopped, ValueError, OSError, EOFError) as exc:
                reason = str(exc) if not isinstance(exc, ValueError) else f"{url} {exc}"
                if url == sitemap_url:
                    raise CrawlStopped(reason) from exc
                self.report.warnings.append(f"a sitemap was skipped: {reason}")
                continue
            for child in listed.sitemaps:
                child_url = join_url(url, child)
                if child_url and same_site(child_url, site) and child_url not in visited:
                    pending.append(child_url)
            for page in listed.pages:
                page_url = join_url(url, page)
                if page_url is None or not same_site(page_url, site):
                    self.report.offsite += 1
                elif not self.allowed(page_url):
                    self.report.robots_disallowed += 1
                else:
                    pages.setdefault(page_url, None)
        if pending:
            self.report.warnings.append(f"only the first {MAX_SITEMAPS} sitemap files were read")
        if not pages and not self.report.robots_disallowed:
            raise CrawlStopped(f"the sitemap {sitemap_url} lists no pages of its own site")
        return site, list(pages)

    async def _run(
        self, frontier: deque[str], site: str, *, follow: bool, seen: set[str], first: PageOutcome | None = None
    ) -> AsyncIterator[PageOutcome]:
        """Fetch the frontier a few at a time (following links when ``follow``), yielding each page.

        ``first`` is a page already fetched (the start page), handled as if it had just arrived.
        """
        running: set[asyncio.Task[PageOutcome | None]] = set()
        arrived: deque[PageOutcome | None] = deque([first] if first is not None else [])
        emitted: set[str] = set()
        started = len(arrived)
        budget = self.max_pages * 2 + 10  # fetches, counting what turns out not to be a page
        pages = 0
        try:
            while frontier or running or arrived:
                while frontier and len(running) < self.concurrency and pages + len(running) < self.max_pages:
                    if time.monotonic() > self.deadline:
                        self.report.timed_out = True
                        frontier.clear()
                        break
                    if started >= budget:
                        self.report.limited = True
                        frontier.clear()
                        break
                    url = frontier.popleft()
                    if self._delay and started:
                        await asyncio.sleep(self._delay)
                    started += 1
                    running.add(asyncio.create_task(self.fetch_page(url, site)))
                if arrived:
                    outcomes = [arrived.popleft()]
                elif running:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    outcomes = [task.result() for task in done]
                else:
                    break
                for outcome in outcomes:
                    if outcome is None or outcome.url in emitted:
                        continue  # not a page, or a redirect to a page already read
                    emitted.add(outcome.url)
                    seen.add(outcome.url)
                    if outcome.document is not None and outcome.document.noindex:
                        self.report.noindex += 1
                    elif not outcome.gone:  # a broken link costs a fetch from the budget, not a page
                        pages += 1
                    if follow:
                        for link in self.links(outcome, site):
                            if link in seen:
                                continue
                            seen.add(link)
                            if self.allowed(link):
                                frontier.append(link)
                            else:
                                self.report.robots_disallowed += 1
                    yield outcome
            if frontier:
                self.report.limited = True
        finally:
            for task in running:
                task.cancel()
