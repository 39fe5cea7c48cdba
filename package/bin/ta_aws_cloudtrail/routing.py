"""S3 object key -> what CloudTrail wrote there (log, digest, insight, or other) and for which account.

CloudTrail's layout is `[prefix/]AWSLogs/[o-<organization id>/]<account id>/<folder>/<region>/...`, where
<folder> is CloudTrail, CloudTrail-Digest or CloudTrail-Insight. Pure.
"""

from __future__ import annotations

import re
from typing import List, Optional

LOG, DIGEST, INSIGHT, OTHER = "log", "digest", "insight", "other"

_KIND_BY_FOLDER = {"CloudTrail": LOG, "CloudTrail-Digest": DIGEST, "CloudTrail-Insight": INSIGHT}
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ORGANIZATION_ID = re.compile(r"o-[a-z0-9]{10,32}")


def classify_key(key: str) -> str:
    """LOG, DIGEST, INSIGHT or OTHER, from a folder of the key named exactly like CloudTrail's.

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
    return OTHER


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
