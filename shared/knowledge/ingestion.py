"""Indexing url, sitemap and file sources off the request path: the queue job, syncs, refreshes, repair.

A source to index is ``queued`` with a job id and a notice on the ``knowledge`` queue; the queue
trigger runs :func:`run_job`, which marks it ``indexing`` (with a heartbeat while it works), reads
the pages or the file, and ends ``ready`` or ``failed`` with an ``error`` a person can act on.

A sync compares a content hash per page (or per file): an unchanged page is not chunked or written
again at all, a changed one has only its changed chunks rewritten, a page that vanished (404/410,
or no longer linked) loses its chunks. A page that fails for a passing reason (timeout, 5xx) keeps
the chunks it had. A source with nothing indexable fails; one whose sync failed keeps the content of
its last good sync, and says so.

:func:`refresh_sources` (a timer) starts the due ``daily``/``weekly`` refreshes and repairs jobs a
crash left behind: a notice lost while ``queued`` is sent again; a job ``indexing`` without a
heartbeat for ``KNOWLEDGE_STALE_SECONDS`` is queued again, and failed after :data:`JOB_ATTEMPTS` runs;
and sends again the sources a remote index missed (:meth:`shared.knowledge.backend.KnowledgeBackend.repair`).
A job's end sends its source to the knowledge backend (Azure AI Search gets it then, not page by page).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.clock import iso, parse_iso, utcnow
from shared.config import get_settings
from shared.knowledge.backend import get_backend
from shared.knowledge.chunking import Chunk, chunk_id, chunk_markdown
from shared.knowledge.crawling import Crawler, CrawlReport, CrawlStopped, PageOutcome
from shared.knowledge.extraction import Document, ExtractionError, extract
from shared.knowledge.fetching import Fetcher
from shared.knowledge.searching import changed
from shared.storage.errors import ConcurrentUpdate
from shared.storage.knowledge import (
    FILE_PAGE,
    IngestNotice,
    IngestQueue,
    KnowledgeFiles,
    KnowledgeRepository,
    PageRecord,
    SourceRecord,
    page_key,
)

log = logging.getLogger(__name__)

INDEXED_TYPES = ("url", "sitemap", "file")  # the types a job indexes (text and Q&A are stored at once)
CRAWLED_TYPES = ("url", "sitemap")
REFRESH_PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
REFRESH_SLACK = timedelta(minutes=10)  # a refresh a little early beats one a whole timer period late
JOB_ATTEMPTS = 3
HEARTBEAT_SECONDS = 10.0
POSITION_STRIDE = 10_000  # chunk positions: page order x stride + order within the page
_UPDATE_ATTEMPTS = 5


class SourceDeleted(Exception):
    """The source was deleted while its job ran."""


def new_job_id() -> str:
    """A fresh job id."""
    return secrets.token_hex(8)


def page_hash(document: Document) -> str:
    """The content hash of a page or file's extracted text (and title): equal means nothing to re-index."""
    canonical = json.dumps([document.title, [[part.page, part.text] for part in document.parts]], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def page_chunks(source_id: str, document: Document, *, url: str, position: int) -> list[Chunk]:
    """A page's (or file's) chunks: ids unique within the source, the page URL, positions in page order."""
    chunks: list[Chunk] = []
    for part in document.parts:
        text = part.text
        if url and document.title and not any(line.startswith("# ") for line in text.split("\n")):
            text = f"# {document.title}\n\n{text}"  # the page's title heads its chunks, as its <h1> would
        for chunk in chunk_markdown(text, source_id=source_id, page=part.page):
            chunks.append(chunk)
    result: list[Chunk] = []
    for index, chunk in enumerate(chunks):
        # Two pages may say the same thing under the same heading (a shared notice): the URL keeps ids apart.
        ident = chunk_id(source_id, f"{url}#{chunk.anchor}", chunk.text) if url else chunk.id
        result.append(replace(chunk, id=ident, url=url, position=position * POSITION_STRIDE + index))
    return result


def _stale(stamp: str, now: datetime, seconds: float) -> bool:
    at = parse_iso(stamp)
    return at is None or (now - at).total_seconds() > seconds


# --- starting jobs ------------------------------------------------------------------------------------------


async def enqueue(source: SourceRecord) -> None:
    """Send the notice of a source's job; a failure is logged and left to the repair timer."""
    from shared.storage.errors import StorageUnavailable

    try:
        await IngestQueue().enqueue(IngestNotice(source.id, source.job))
    except StorageUnavailable:
        log.warning("knowledge source %s: the job notice could not be sent; the repair timer will", source.id)


async def start_sync(source: SourceRecord, repo: KnowledgeRepository | None = None) -> SourceRecord:
    """Queue a new job for ``source`` (already read; ConcurrentUpdate when it changed meanwhile)."""
    repo = repo or KnowledgeRepository()
    queued = replace(source, status="queued", job=new_job_id(), attempts=0, queued_at=iso(utcnow()), heartbeat_at="")
    stored = await repo.update(queued)
    await enqueue(stored)
    return stored


def is_running(source: SourceRecord, now: datetime | None = None) -> bool:
    """Whether a job of ``source`` is queued or indexing and alive (not left behind by a crash)."""
    stale = get_settings().knowledge.stale_seconds
    now = now or utcnow()
    if source.status == "queued":
        return not _stale(source.queued_at, now, stale)
    if source.status == "indexing":
        return not _stale(source.heartbeat_at, now, stale)
    return False


# --- the job ------------------------------------------------------------------------------------------------


@dataclass
class SyncCounts:
    """What one sync did, shown as the source's ``lastSync``."""

    started_at: str = ""
    finished_at: str = ""
    pages: int = 0  # pages (or files) read
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    chunks_written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def json(self) -> str:
        """As stored on the source."""
        return json.dumps(
            {
                "startedAt": self.started_at,
                "finishedAt": self.finished_at,
                "pages": self.pages,
                "added": self.added,
                "changed": self.changed,
                "unchanged": self.unchanged,
                "removed": self.removed,
                "failed": self.failed,
                "chunksWritten": self.chunks_written,
                "skipped": self.skipped,
            },
            separators=(",", ":"),
        )


@dataclass
class _Result:
    """How a job ended."""

    error: str = ""  # set: the source failed
    title: str = ""  # what the content calls itself (for a source still titled by its URL or file name)
    warnings: list[str] = field(default_factory=list)
    content_hash: str = ""


@dataclass
class _Job:
    """One run of one source's job."""

    source: SourceRecord
    repo: KnowledgeRepository
    counts: SyncCounts
    pages: dict[str, PageRecord] = field(default_factory=dict)  # by key, as stored before this run
    seen: set[str] = field(default_factory=set)
    _beat: float = field(default_factory=time.monotonic)
    _unannounced: int = 0

    async def heartbeat(self, *, force: bool = False) -> None:
        """Tell the repair timer the job is alive (at most every few seconds); SourceDeleted when it is gone."""
        if not force and time.monotonic() - self._beat < HEARTBEAT_SECONDS:
            return
        self._beat = time.monotonic()
        if not await self.repo.merge(self.source.id, {"heartbeatAt": iso(utcnow())}):
            raise SourceDeleted()
        if self._unannounced:
            self._unannounced = 0
            await changed()  # a long crawl's pages become searchable as it goes

    async def store(self, key: str, url: str, document: Document, *, position_hint: int) -> None:
        """Index one page or file unless its content hash is unchanged."""
        self.seen.add(key)
        self.counts.pages += 1
        digest = page_hash(document)
        before = self.pages.get(key)
        if before is not None and before.content_hash == digest and before.status != "noindex":
            self.counts.unchanged += 1
            if before.status != "indexed":  # it failed last time and reads the same as before that
                await self.repo.save_page(replace(before, status="indexed", error="", synced_at=iso(utcnow())))
            return
        position = before.position if before is not None else position_hint
        chunks = await asyncio.to_thread(page_chunks, self.source.id, document, url=url, position=position)
        written = await self.repo.replace_page_chunks(self.source.id, key, chunks)
        self.counts.chunks_written += written
        unique = len({chunk.id for chunk in chunks})
        page = PageRecord(self.source.id, key, url, document.title, digest, unique, position, "indexed", "",
                          iso(utcnow()))  # fmt: skip
        await self.repo.save_page(page)
        self.pages[key] = page
        if before is None:
            self.counts.added += 1
        else:
            self.counts.changed += 1
        self._unannounced += 1

    async def fail_page(self, key: str, url: str, error: str, *, gone: bool, position_hint: int) -> None:
        """Record a page that could not be read: gone pages lose their chunks, others keep them."""
        self.seen.add(key)
        before = self.pages.get(key)
        if gone:
            if before is not None:
                await self.repo.delete_page(before)
                self.pages.pop(key, None)
                self.counts.removed += 1
                self._unannounced += 1
            return
        self.counts.failed += 1
        kept = before or PageRecord(self.source.id, key, url, position=position_hint)
        page = replace(kept, status="failed", error=error[:1000], synced_at=iso(utcnow()))
        await self.repo.save_page(page)
        self.pages[key] = page

    async def remove_unseen(self) -> None:
        """Delete the pages this run did not reach (no longer linked or listed, or past maxPages)."""
        for key, page in list(self.pages.items()):
            if key not in self.seen:
                await self.repo.delete_page(page)
                self.pages.pop(key, None)
                self.counts.removed += 1
                self._unannounced += 1

    @property
    def indexed(self) -> list[PageRecord]:
        """The pages whose chunks are in the index now."""
        return [page for page in self.pages.values() if page.chunks > 0]


async def run_job(notice: IngestNotice) -> str:
    """Run the job a queue notice names, if it is still wanted; what happened, for the log."""
    repo = KnowledgeRepository()
    settings = get_settings().knowledge
    for _ in range(_UPDATE_ATTEMPTS):
        source = await repo.get(notice.source_id)
        if source is None:
            return "source deleted"
        if source.job != notice.job or source.status not in ("queued", "indexing"):
            return "stale notice"
        now = utcnow()
        if source.status == "indexing" and not _stale(source.heartbeat_at, now, settings.stale_seconds):
            return "already running"  # a repeated notice while the job runs
        if source.attempts >= JOB_ATTEMPTS:
            await _finish(repo, source, _Result(error=_gave_up(source)), SyncCounts(started_at=iso(now)))
            return "given up"
        claimed = replace(source, status="indexing", attempts=source.attempts + 1, heartbeat_at=iso(now))
        try:
            claimed = await repo.update(claimed)
        except ConcurrentUpdate:
            continue  # a PATCH or another worker: read again
        break
    else:
        return "kept changing"
    return await _run_claimed(repo, claimed)


async def _run_claimed(repo: KnowledgeRepository, source: SourceRecord) -> str:
    from shared.storage.errors import StorageUnavailable

    counts = SyncCounts(started_at=iso(utcnow()))
    job = _Job(source, repo, counts, {page.key: page for page in await repo.pages_of(source.id)})
    try:
        if source.type == "file":
            result = await _index_file(job)
        else:
            result = await _index_site(job)
    except SourceDeleted:
        await repo.delete_contents(source.id)
        await changed()
        return "source deleted while indexing"
    except StorageUnavailable:
        raise  # the host retries the notice; the repair timer takes over if it never succeeds
    except Exception as exc:  # noqa: BLE001 - any bug must end as a failed source, not one stuck indexing
        log.exception("knowledge source %s: indexing failed", source.id)
        result = _Result(error=f"indexing failed unexpectedly ({exc.__class__.__name__}); try Sync again")
    return await _finish(repo, source, result, counts, job)


async def _finish(
    repo: KnowledgeRepository, source: SourceRecord, result: _Result, counts: SyncCounts, job: _Job | None = None
) -> str:
    """Write how the job ended onto the source (merging with changes made meanwhile), then announce it."""
    counts.finished_at = iso(utcnow())
    for _ in range(_UPDATE_ATTEMPTS):
        current = await repo.get(source.id)
        if current is None:
            await repo.delete_contents(source.id)  # deleted at the last moment: leave nothing behind
            await changed()
            return "source deleted while indexing"
        if current.job != source.job:
            await changed()
            return "superseded by another job"
        indexed = job.indexed if job is not None else []
        if job is None:
            indexed = [page for page in await repo.pages_of(source.id) if page.chunks > 0]
        failed = bool(result.error)
        error = result.error
        if failed and indexed:
            since = f" of {current.last_synced_at}" if current.last_synced_at else ""
            error = f"{result.error} (the content{since} is still used)"
        done = replace(
            current,
            status="failed" if failed else "ready",
            error=error[:2000],
            chunks=sum(page.chunks for page in indexed),
            pages=len(indexed),
            warnings=tuple(w[:500] for w in result.warnings),
            last_sync=counts.json(),
            last_synced_at=current.last_synced_at if failed else counts.finished_at,
            content_hash=result.content_hash or current.content_hash,
            title=result.title if current.auto_title and result.title else current.title,
            heartbeat_at=counts.finished_at,
            index_error=get_backend().mark or current.index_error,  # marked with the write: sent next
        )
        try:
            await repo.update(done)
        except ConcurrentUpdate:
            continue
        await get_backend().publish(source.id)
        return done.status
    await get_backend().publish(source.id)
    return "kept changing"


# --- files ----------------------------------------------------------------------------------------------------


async def _index_file(job: _Job) -> _Result:
    source = job.source
    data = await KnowledgeFiles().load(source.id)
    if data is None:
        return _Result(error="the uploaded file is missing from storage; delete this source and upload the file again")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    before = job.pages.get(FILE_PAGE)
    if before is not None and before.content_hash == digest and before.chunks:
        job.counts.pages, job.counts.unchanged = 1, 1
        job.seen.add(FILE_PAGE)
        return _Result(warnings=list(source.warnings), content_hash=digest)
    try:
        document = await asyncio.to_thread(extract, data, source.file_kind, filename=source.file_name)
    except ExtractionError as exc:
        return _Result(error=str(exc), content_hash=digest)
    await job.store(FILE_PAGE, "", document, position_hint=0)
    # The page row is keyed by the file's bytes, so an identical upload is recognised without parsing it.
    await job.repo.save_page(replace(job.pages[FILE_PAGE], content_hash=digest))
    job.pages[FILE_PAGE] = replace(job.pages[FILE_PAGE], content_hash=digest)
    return _Result(title=document.title, warnings=document.warnings, content_hash=digest)


# --- sites ----------------------------------------------------------------------------------------------------


def _crawler(source: SourceRecord) -> tuple[Crawler, Fetcher]:
    settings = get_settings()
    knowledge = settings.knowledge
    fetcher = Fetcher(
        allow_private=settings.allow_private_urls,
        timeout=knowledge.fetch_timeout_seconds,
        user_agent=knowledge.user_agent,
    )
    crawler = Crawler(
        fetcher,
        max_pages=max(1, min(source.max_pages or knowledge.default_pages, knowledge.max_pages)),
        max_page_bytes=knowledge.max_page_bytes,
        deadline=time.monotonic() + knowledge.job_seconds,
        concurrency=knowledge.crawl_concurrency,
    )
    return crawler, fetcher


async def _index_site(job: _Job) -> _Result:
    source = job.source
    crawler, fetcher = _crawler(source)
    first_error = ""
    title = ""
    try:
        pages: AsyncIterator[PageOutcome] = (
            crawler.crawl_sitemap(source.url) if source.type == "sitemap" else crawler.crawl_site(source.url)
        )
        next_position = max((page.position for page in job.pages.values()), default=-1) + 1
        async for outcome in pages:
            key = page_key(outcome.url)
            if key in job.pages:
                hint = job.pages[key].position
            else:
                hint, next_position = next_position, next_position + 1
            document = outcome.document
            if document is None:
                first_error = first_error or outcome.error
                await job.fail_page(key, outcome.url, outcome.error, gone=outcome.gone, position_hint=hint)
            elif document.noindex or not document.parts:
                # Not marked seen: a page that asks not to be indexed, or has no text now, goes like a vanished one.
                if not document.noindex:
                    first_error = first_error or f"{outcome.url} has no text to index"
            else:
                title = title or (document.title if source.type == "url" else "")
                await job.store(key, outcome.url, document, position_hint=hint)
            await job.heartbeat()
    except CrawlStopped as stopped:
        return _Result(error=str(stopped), warnings=crawler.report.warnings)
    finally:
        await fetcher.aclose()
    report = crawler.report
    if report.complete:
        await job.remove_unseen()
    job.counts.skipped = {
        name: count
        for name, count in (
            ("robots", report.robots_disallowed),
            ("notHtml", report.not_html),
            ("noindex", report.noindex),
            ("offsite", report.offsite),
        )
        if count
    }
    warnings = _site_warnings(job, report, crawler.max_pages)
    digest = "sha256:" + hashlib.sha256("".join(sorted(p.content_hash for p in job.indexed)).encode()).hexdigest()
    if not job.indexed:
        reason = first_error or "no page had text to index"
        if report.robots_disallowed and not job.counts.pages:
            reason = "robots.txt disallows every page this source reaches"
        return _Result(error=reason, warnings=warnings)
    return _Result(title=title, warnings=warnings, content_hash=digest)


def _site_warnings(job: _Job, report: CrawlReport, max_pages: int) -> list[str]:
    warnings = list(report.warnings)
    failed = [page for page in job.pages.values() if page.status == "failed"]
    if failed:
        many = len(failed) > 1
        warnings.append(
            f"{len(failed)} page{'s' if many else ''} could not be read "
            f"(e.g. {failed[0].error}); {'they keep' if many else 'it keeps'} the content of the last good sync, if any"
        )
    if report.limited:
        warnings.append(f"stopped at maxPages ({max_pages}) with more pages left; raise maxPages to include them")
    if report.timed_out:
        warnings.append(
            f"stopped after {get_settings().knowledge.job_seconds:g} seconds with {job.counts.pages} pages read; "
            "pages not reached keep their earlier content"
        )
    return warnings


# --- the timer --------------------------------------------------------------------------------------------------


@dataclass
class RefreshRun:
    """What one run of the refresh timer did."""

    refreshed: int = 0
    requeued: int = 0
    failed: int = 0
    resent: int = 0  # sources sent again to a remote index (Azure AI Search) a change left behind


async def refresh_sources(now: datetime | None = None) -> RefreshRun:
    """Start due scheduled refreshes; send lost notices again; retry or fail jobs a crash left behind."""
    now = now or utcnow()
    stale = get_settings().knowledge.stale_seconds
    repo = KnowledgeRepository()
    run = RefreshRun()
    sources = await repo.all()
    for source in sources:
        if source.type not in INDEXED_TYPES:
            continue
        try:
            if source.status == "queued" and _stale(source.queued_at, now, stale):
                # Lost, or still waiting in a long queue: a second notice for the same job is harmless.
                await repo.update(replace(source, queued_at=iso(now)))
                await enqueue(source)
                run.requeued += 1
            elif source.status == "indexing" and _stale(source.heartbeat_at, now, stale):
                if source.attempts >= JOB_ATTEMPTS:
                    await _finish(
                        repo, source, _Result(error=_gave_up(source)), SyncCounts(started_at=source.queued_at)
                    )
                    run.failed += 1
                else:
                    await repo.update(replace(source, status="queued", queued_at=iso(now)))
                    await enqueue(source)
                    run.requeued += 1
            elif source.status in ("ready", "failed") and source.enabled and _due(source, now):
                await start_sync(source, repo)
                run.refreshed += 1
        except ConcurrentUpdate:
            continue  # changed meanwhile (a PATCH, a sync): looked at again next run
    run.resent = await get_backend().repair(sources)
    return run


def _gave_up(source: SourceRecord) -> str:
    return (
        f"indexing stopped {source.attempts} times before finishing; try Sync again, and if it keeps "
        "stopping, make the source smaller (fewer pages, or a smaller file)"
    )


def _due(source: SourceRecord, now: datetime) -> bool:
    period = REFRESH_PERIODS.get(source.refresh)
    if period is None or source.type not in CRAWLED_TYPES:
        return False
    stamps = [at for at in (parse_iso(source.last_synced_at), parse_iso(source.queued_at)) if at is not None]
    last = max(stamps, default=None)
    return last is None or now - last >= period - REFRESH_SLACK
