"""Entity value rules every repository shares: Int64 counters both ways, and keys Storage accepts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Table storage refuses these in PartitionKey/RowKey: / \ # ? and the control characters U+0000-U+001F
# and U+007F-U+009F (and the service caps keys at 1 KiB).
_UNSAFE_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def as_int(value: Any) -> int:
    """An integer property; Int64 values may come back wrapped as ``EntityProperty``."""
    if value is None or value == "":
        return 0
    return int(getattr(value, "value", value))


def with_int64(entity: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``entity`` with the named counters stored as Int64 (the SDK writes plain ints as Int32)."""
    from azure.data.tables import EdmType, EntityProperty

    wanted = set(names)
    return {
        key: EntityProperty(as_int(value), EdmType.INT64) if key in wanted else value for key, value in entity.items()
    }


def is_safe_key(text: str, max_length: int) -> bool:
    """True when ``text`` can be a key: 1 to ``max_length`` characters, none Storage refuses."""
    return 0 < len(text) <= max_length and not _UNSAFE_KEY.search(text)


def safe_key(text: str) -> str:
    """``text`` with the characters Storage refuses in keys replaced by ``_``."""
    return _UNSAFE_KEY.sub("_", text)
