"""A trail's files in its bucket, found by listing prefixes, never the whole bucket.

CloudTrail writes `<prefix>AWSLogs/[o-<org id>/]<account>/<folder>/<region>/YYYY/MM/DD/<file>`, folder being
CloudTrail, CloudTrail-Insight or CloudTrail-Digest. Delimiter listings find the partitions (account, folder,
region); then one day prefix of one partition is listed at a time, a page (up to 1,000 keys) at a time, so memory
does not grow with the bucket. ListObjectsV2 calls: 1 for AWSLogs/, 1 per organization folder, 1 per account, 1 per
account folder, then 1 per partition and day (more only for days with over 1,000 files in one partition).

Where the prefix holds no `AWSLogs/` partition, files that Kinesis Data Firehose wrote from a CloudWatch Logs
subscription (`<prefix>YYYY/MM/DD/HH/<stream>-…`) make one partition, "firehose", if the prefix holds year folders
(1 more call to find out), listed a day prefix at a time like the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable, FrozenSet, Iterable, Iterator, List, Optional

from .notifications import ObjectRef
from .routing import is_firehose_file

LOGS, INSIGHTS, DIGESTS = "CloudTrail", "CloudTrail-Insight", "CloudTrail-Digest"
FIREHOSE = "firehose"
_YEAR = re.compile(r"^\d{4}$")
CLOUDTRAIL_SUFFIXES = (".json.gz", ".json")
_ACCOUNT = re.compile(r"^\d{12}$")
_ORGANIZATION = re.compile(r"^o-[a-z0-9]{10,32}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


@dataclass(frozen=True)
class Partition:
    prefix: str  # <prefix>AWSLogs/[o-…/]<account>/<folder>/<region>/, or <prefix> for Firehose's files
    account: str
    folder: str  # CloudTrail, CloudTrail-Insight, CloudTrail-Digest, or FIREHOSE
    region: str

    @property
    def name(self) -> str:
        """Stable and unique within a bucket prefix (an organization trail adds its o-… folder)."""
        if self.folder == FIREHOSE:
            return FIREHOSE
        return self.prefix.split("AWSLogs/", 1)[-1].rstrip("/")

    def day_prefix(self, day: date) -> str:
        return f"{self.prefix}{day:%Y/%m/%d}/"


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


class TrailLister:
    """ListObjectsV2 on one bucket. `list_page` makes each call (the caller's retries and error sentences live
    there; by default a plain call)."""

    def __init__(self, s3, bucket: str, key_prefix: str, list_page: Optional[Callable[[dict], dict]] = None) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._key_prefix = key_prefix
        self._root = f"{key_prefix}AWSLogs/"
        self._list_page = list_page or (lambda params: s3.list_objects_v2(**params))

    def partitions(
        self, account_ids: FrozenSet[str], regions: FrozenSet[str], folders: Iterable[str]
    ) -> List[Partition]:
        """Every (account, folder, region) of the trail, filtered, sorted by name."""
        wanted_folders = set(folders)
        account_prefixes = []
        for name in self._folders(self._root):
            if _ORGANIZATION.match(name):
                account_prefixes += [f"{self._root}{name}/{a}/" for a in self._folders(f"{self._root}{name}/")]
            else:
                account_prefixes.append(f"{self._root}{name}/")
        found = []
        for account_prefix in account_prefixes:
            account = account_prefix.rstrip("/").rsplit("/", 1)[-1]
            if not _ACCOUNT.match(account) or (account_ids and account not in account_ids):
                continue
            for folder in self._folders(account_prefix):
                if folder not in wanted_folders:
                    continue
                for region in self._folders(f"{account_prefix}{folder}/"):
                    if _REGION.match(region) and (not regions or region in regions):
                        found.append(Partition(f"{account_prefix}{folder}/{region}/", account, folder, region))
        found.sort(key=lambda p: p.name)
        # no trail here: Firehose's files, if the prefix holds year folders (a prefix is one or the other)
        wants_firehose = not found and FIREHOSE in wanted_folders
        if wants_firehose and any(_YEAR.match(name) for name in self._folders(self._key_prefix)):
            found.append(Partition(self._key_prefix, "", FIREHOSE, ""))
        return found

    def day_pages(self, partition: Partition, day: date, on_other: Callable[[str], None]) -> Iterator[List[ObjectRef]]:
        """The files of one partition and day, a page at a time; `on_other` is told of keys that are not
        CloudTrail files (CloudTrail names its files *.json.gz, Firehose as routing.is_firehose_file says)."""
        firehose = partition.folder == FIREHOSE
        for page in self._pages(Prefix=partition.day_prefix(day)):
            refs = []
            for item in page.get("Contents", []):
                key = item["Key"]
                if not (is_firehose_file(key) if firehose else key.endswith(CLOUDTRAIL_SUFFIXES)):
                    on_other(key)
                    continue
                refs.append(
                    ObjectRef(
                        bucket=self._bucket,
                        key=key,
                        key_as_sent=key,
                        etag=str(item.get("ETag") or "").strip('"') or None,
                        size=item.get("Size"),
                    )
                )
            if refs:
                yield refs

    def probe(self) -> None:
        """One cheap call (MaxKeys=1) that fails as listing the trail would: for the check on save."""
        self._list_page({"Bucket": self._bucket, "Prefix": self._root, "MaxKeys": 1})

    def _folders(self, prefix: str) -> List[str]:
        names = []
        for page in self._pages(Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return names

    def _pages(self, **params) -> Iterator[dict]:
        params["Bucket"] = self._bucket
        token = None
        while True:
            if token:
                params["ContinuationToken"] = token
            page = self._list_page(dict(params))
            yield page
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return
