"""S3 object key -> what CloudTrail wrote there (log, digest, insight, subscription, or other) and for which account.

CloudTrail's layout is `[prefix/]AWSLogs/[o-<organization id>/]<account id>/<folder>/<region>/...`, where
<folder> is CloudTrail, CloudTrail-Digest or CloudTrail-Insight. Kinesis Data Firehose names the files it writes
`<delivery stream>-<version>-YYYY-MM-DD-HH-MM-SS-<random>` (under `[prefix]YYYY/MM/DD/HH/` unless its prefix says
otherwise): such a file may hold a CloudWatch Logs subscription's documents, which the reader recognises by content.
Pure.
"""

from __future__ import annotations

import re
from typing import List, Optional

LOG, DIGEST, INSIGHT, SUBSCRIPTION, OTHER = "log", "digest", "insight", "subscription", "other"

_KIND_BY_FOLDER = {"CloudTrail": LOG, "CloudTrail-Digest": DIGEST, "CloudTrail-Insight": INSIGHT}
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ORGANIZATION_ID = re.compile(r"o-[a-z0-9]{10,32}")
_FIREHOSE_FILE = re.compile(r"[A-Za-z0-9_.-]+-\d+-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9A-Za-z-]+(\.[a-z0-9]+)*")


def classify_key(key: str) -> str:
    """LOG, DIGEST, INSIGHT, SUBSCRIPTION or OTHER, from a folder of the key named exactly like CloudTrail's,
    or else from a file name like Firehose's.

    In CloudTrail's layout the folder after the account id decides, so a bucket prefix such as
    "CloudTrail/" cannot turn a digest into a log; other keys are classified by their deepest
    CloudTrail folder.
    """
    folders = _folders(key)
    account_index = _account_folder_index(folders)
    if account_index is not None:
        kind_index = account_index + 1
        return _KIND_BY_FOLDER.get(folders[kind_index], OTHER) if kind_index < len(folders) else OTHER
    for folder in reversed(folders):
        if folder in _KIND_BY_FOLDER:
            return _KIND_BY_FOLDER[folder]
    return SUBSCRIPTION if is_firehose_file(key) else OTHER


def is_firehose_file(key: str) -> bool:
    """Whether the key's last segment is named as Kinesis Data Firehose names the files it writes to S3."""
    return _FIREHOSE_FILE.fullmatch(key.rsplit("/", 1)[-1]) is not None


def account_from_key(key: str) -> Optional[str]:
    """The 12-digit account id after "AWSLogs/" (or "AWSLogs/o-<organization id>/"), else None."""
    folders = _folders(key)
    account_index = _account_folder_index(folders)
    return None if account_index is None else folders[account_index]


def _folders(key: str) -> List[str]:
    # The last segment is the object's own name, never a folder.
    return key.split("/")[:-1]


def _account_folder_index(folders: List[str]) -> Optional[int]:
    for index, folder in enumerate(folders):
        if folder != "AWSLogs":
            continue
        candidate = index + 1
        if candidate < len(folders) and _ORGANIZATION_ID.fullmatch(folders[candidate]):
            candidate += 1
        if candidate < len(folders) and _ACCOUNT_ID.fullmatch(folders[candidate]):
            return candidate
    return None
