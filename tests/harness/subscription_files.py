"""CloudWatch Logs subscription documents as Kinesis Data Firehose writes them to S3 (built per the CloudWatch Logs
subscription documentation: each document is gzipped by CloudWatch Logs, Firehose concatenates its records with no
separator, and may gzip the whole object once more)."""

from __future__ import annotations

import gzip
import json
from typing import Iterable, List, Sequence

CONTROL_MESSAGE_TEXT = "CWL CONTROL MESSAGE: Checking health of destination Firehose."


def data_document(
    messages: Sequence[str], log_group: str, log_stream: str, first_id: int = 0, timestamp: int = 0
) -> dict:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["to-firehose"],
        "logEvents": [
            {"id": f"{first_id + index:056d}", "timestamp": timestamp + index, "message": message}
            for index, message in enumerate(messages)
        ],
    }


def control_document(timestamp: int = 0) -> dict:
    return {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": timestamp, "message": CONTROL_MESSAGE_TEXT}],
    }


def firehose_object(documents: Iterable[dict], gzip_twice: Iterable[int] = (), gzip_object: bool = False) -> bytes:
    """The S3 object: each document gzipped (the ones at the indexes in ``gzip_twice`` twice), concatenated; with
    ``gzip_object``, the whole gzipped once more (Firehose's own compression)."""
    twice = set(gzip_twice)
    parts: List[bytes] = []
    for index, document in enumerate(documents):
        member = gzip.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"))
        parts.append(gzip.compress(member) if index in twice else member)
    body = b"".join(parts)
    return gzip.compress(body) if gzip_object else body
