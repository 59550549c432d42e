"""Table and container names, in one place so bootstrap creates exactly what the code uses."""

META = "meta"  # the deployment record, seat-metering state, timer bookkeeping
CHATS = "chats"  # PartitionKey = session id: the session header (RK "session") and its messages
SESSIONS_INDEX = "sessionindex"  # queue/activity/cost orderings of sessions
ROLLUPS = "rollups"  # hourly and daily token/cost totals
SEATS = "seats"  # PartitionKey = billing month, RowKey = agent oid
IDEMPOTENCY = "idempotency"  # replayable responses keyed by Idempotency-Key
RATELIMITS = "ratelimits"  # fixed-window counters per client
SEARCH = "searchindex"  # inverted index for transcript search
AUDIT = "audit"  # every session transition

ALL_TABLES = (META, CHATS, SESSIONS_INDEX, ROLLUPS, SEATS, IDEMPOTENCY, RATELIMITS, SEARCH, AUDIT)

KNOWLEDGE_CONTAINER = "knowledge"
ALL_CONTAINERS = (KNOWLEDGE_CONTAINER,)
