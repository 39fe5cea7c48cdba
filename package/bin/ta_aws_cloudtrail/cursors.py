"""Durable cursors of the inputs that walk a range (the S3 backfill today): one KV document per input and name.

A cursor belongs to a `range_id` (what the input was configured to walk); a cursor of another range is ignored,
so changing an input's range starts it over (objects already ingested are still skipped through their progress).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import ClassVar, Dict, List

from .kvstore import KvCollection
from .settings import SplunkdConnection

COLLECTION = "ta_aws_cloudtrail_cursors"


@dataclass
class Cursor:
    input: str
    name: str
    range_id: str
    value: str
    updated: float = 0.0

    @property
    def key_id(self) -> str:
        return cursor_key(self.input, self.name)

    def document(self) -> dict:
        return {
            "_key": self.key_id,
            "input": self.input,
            "name": self.name,
            "range_id": self.range_id,
            "value": self.value,
            "updated": self.updated or time.time(),
        }


def cursor_key(input_name: str, name: str) -> str:
    return hashlib.sha256(f"{input_name}\0{name}".encode("utf-8", "surrogatepass")).hexdigest()[:40]


class CursorStore(KvCollection):
    FIELDS: ClassVar[Dict[str, str]] = {
        "input": "string",
        "name": "string",
        "range_id": "string",
        "value": "string",
        "updated": "number",
    }
    ACCELERATED_FIELDS: ClassVar[Dict[str, Dict[str, int]]] = {"input": {"input": 1}}

    def __init__(self, conn: SplunkdConnection, collection: str = COLLECTION) -> None:
        super().__init__(conn, collection)

    def load(self, input_name: str, range_id: str) -> Dict[str, str]:
        """name -> value of this input's cursors that belong to `range_id`."""
        docs = self.query({"input": input_name})
        return {str(d.get("name")): str(d.get("value")) for d in docs if d.get("range_id") == range_id}

    def save(self, cursors: List[Cursor]) -> None:
        if cursors:
            self.batch_save([c.document() for c in cursors])

    def delete_input(self, input_name: str) -> None:
        self.delete({"input": input_name})
