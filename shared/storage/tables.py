"""Table and container names, in one place so bootstrap creates exactly what the code uses."""

META = "meta"  # the deployment record, seat-metering state, timer bookkeeping
CHATS = "chats"  # PartitionKey = session id: the header (RK "session"), messages, Idempotency-Key replays
SESSIONS_INDEX = "sessionindex"  # queue/activity/cost orderings of sessions
ROLLUPS = "rollups"  # hourly and daily token/cost totals
SEATS = "seats"  # PartitionKey = billing month, RowKey = agent oid
RATELIMITS = "ratelimits"  # fixed-window counters per client
SEARCH = "searchindex"  # messages written since the last compaction into search segments
AUDIT = "audit"  # every session transition
ANALYTICS = "analytics"  # PartitionKey = start month: conversations' facts and per-day counters
OUTBOX_PENDING = "outboxpending"  # sessions whose commits may have outbox rows left (the repair timer's list)
KNOWLEDGE_SOURCES = "knowledgesources"  # PartitionKey "source", RowKey = source id: the knowledge base's sources
KNOWLEDGE_CHUNKS = "knowledgechunks"  # PartitionKey = source id, RowKey = chunk id: a source's chunks
KNOWLEDGE_VECTORS = "knowledgevectors"  # PartitionKey = vector space, RowKey = text hash: cached embeddings
KNOWLEDGE_GAPS = "knowledgegaps"  # PartitionKey = day (newest first), RowKey = session + question: content gaps
KNOWLEDGE_PAGES = "knowledgepages"  # PartitionKey = source id, RowKey = page key: crawled pages' content hashes
APPROVALS = "approvals"  # PartitionKey "pending", RowKey = created time + card id: cards waiting for an agent
WEBHOOKS = "webhooks"  # PartitionKey "endpoint" (RowKey = id) or "d.<endpoint id>" (its deliveries, newest first)
KNOWLEDGE_DRAFTS = "knowledgedrafts"  # PartitionKey "draft", RowKey = id: learning notes waiting for an admin

ALL_TABLES = (
    META,
    CHATS,
    SESSIONS_INDEX,
    ROLLUPS,
    SEATS,
    RATELIMITS,
    SEARCH,
    AUDIT,
    ANALYTICS,
    OUTBOX_PENDING,
    KNOWLEDGE_SOURCES,
    KNOWLEDGE_CHUNKS,
    KNOWLEDGE_VECTORS,
    KNOWLEDGE_PAGES,
    KNOWLEDGE_GAPS,
    APPROVALS,
    WEBHOOKS,
    KNOWLEDGE_DRAFTS,
)

KNOWLEDGE_CONTAINER = "knowledge"  # uploaded files of file sources (sources/<id>/file)
ALL_CONTAINERS = (KNOWLEDGE_CONTAINER,)

OUTBOX_QUEUE = "outbox"  # one message per commit: "apply this session's outbox rows"
KNOWLEDGE_QUEUE = "knowledge"  # one message per indexing job of a url, sitemap or file source
WEBHOOKS_QUEUE = "webhooks"  # one message per webhook delivery attempt, visible when it is due
APPROVALS_QUEUE = "approvals"  # one message per ``auto-after`` card, visible when its delay runs out
ALL_QUEUES = (OUTBOX_QUEUE, KNOWLEDGE_QUEUE, WEBHOOKS_QUEUE, APPROVALS_QUEUE)
