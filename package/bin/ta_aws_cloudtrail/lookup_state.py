"""Durable state of the Event history input in the KV store (``ta_aws_cloudtrail_lookup``).

For each stream (input, account, region, category): a cursor document, the end of the last window read completely
(epoch seconds); and "seen" documents, one per page written, with the eventIDs of that page and the newest eventTime
among them. A window starts ``delay`` before the cursor to catch late events, so the eventIDs of that overlap are
what keeps an event from being written twice; they are deleted once the cursor has moved ``delay`` past them.
"""

from __future__ import annotations

import time
import uuid
from typing import ClassVar, Dict, Iterable, Optional, Set, Tuple

from .cursors import cursor_key
from .kvstore import KvCollection
from .settings import SplunkdConnection

COLLECTION = "ta_aws_cloudtrail_lookup"


class LookupState(KvCollection):
    FIELDS: ClassVar[Dict[str, str]] = {
        "input": "string",
        "stream": "string",
        "kind": "string",
        "cursor": "number",
        "newest": "number",
        "updated": "number",
    }
    ACCELERATED_FIELDS: ClassVar[Dict[str, Dict[str, int]]] = {"input_stream": {"input": 1, "stream": 1}}

    def __init__(self, conn: SplunkdConnection, collection: str = COLLECTION) -> None:
        super().__init__(conn, collection)

    def load(self, input_name: str, stream: str) -> Tuple[Optional[float], Set[str]]:
        """(the cursor or None, the eventIDs seen in the overlap)."""
        cursor: Optional[float] = None
        seen: Set[str] = set()
        for doc in self.query({"input": input_name, "stream": stream}):
            if doc.get("kind") == "cursor":
                cursor = float(doc["cursor"])
            elif doc.get("kind") == "seen":
                seen.update(str(i) for i in doc.get("ids") or [])
        return cursor, seen

    def save_seen(self, input_name: str, stream: str, ids: Iterable[str], newest: float) -> None:
        ids = list(ids)
        if ids:
            key = f"{cursor_key(input_name, stream)}-{uuid.uuid4().hex[:16]}"
            document = {"_key": key, "input": input_name, "stream": stream, "kind": "seen", "ids": ids}
            self.put({**document, "newest": newest, "updated": time.time()})

    def advance(self, input_name: str, stream: str, cursor: float, forget_before: float) -> None:
        """Move the cursor, then drop the eventIDs no later window can meet again."""
        self.put(
            {
                "_key": cursor_key(input_name, stream),
                "input": input_name,
                "stream": stream,
                "kind": "cursor",
                "cursor": cursor,
                "updated": time.time(),
            }
        )
        self.delete(
            {"$and": [{"input": input_name}, {"stream": stream}, {"kind": "seen"}, {"newest": {"$lt": forget_before}}]}
        )

    def delete_input(self, input_name: str) -> None:
        self.delete({"input": input_name})
