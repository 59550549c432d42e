"""Full-text search over every message, from an index kept as messages are written.

New messages go to a small pending partition (``index_messages``, called after every chat
commit); a timer's ``compact()`` folds them into immutable SQLite FTS5 segment blobs listed by a
manifest; ``search()`` queries the cached segments and the pending rows. Nothing scans transcripts.
"""

from shared.search.engine import search
from shared.search.index import bulk_index, compact, index_messages

__all__ = ["bulk_index", "compact", "index_messages", "search"]
