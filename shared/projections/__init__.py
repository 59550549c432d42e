"""Everything derived from a commit, applied from the transactional outbox off the request path.

A commit writes one outbox row per consequence (``consequences``): the session's orderings, the
hourly rollup, search rows, the audit entry, the agent's seat, a real-time push and a content gap.
The outbox queue trigger applies them (``apply.apply_outbox``), each applier idempotent and ordered by the
session's commit version (``appliers``); a timer re-enqueues rows left behind (``repair``).
"""
