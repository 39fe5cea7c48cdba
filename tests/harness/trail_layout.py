"""A bucket laid out like a real trail: accounts (one of them through an organization trail), regions, days, log
files, Insights files and digest files, with the records each file holds (for exact expectations)."""

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Dict, List, Optional, Sequence

from harness.aws import AwsTestEnv, ObjectInfo, cloudtrail_key
from harness.cloudtrail_data import make_records


@dataclass
class TrailFile:
    info: ObjectInfo
    kind: str  # log | insight | digest
    day: date
    account: str
    region: str
    records: List[dict]  # empty for digests


@dataclass
class TrailLayout:
    bucket: str
    prefix: str
    files: List[TrailFile]

    def expected(self, first: date, last: date, *, digests: bool = False) -> Dict[str, List[dict]]:
        """source -> records of the files a backfill of [first, last] indexes."""
        chosen = [f for f in self.files if first <= f.day <= last and (digests or f.kind != "digest")]
        return {f.info.source: f.records for f in chosen if f.kind != "digest"}

    def days_with_files(self) -> List[date]:
        return sorted({f.day for f in self.files})


def lay_out_trail(
    aws: AwsTestEnv,
    *,
    first_day: date,
    days: int,
    accounts: Sequence[str] = ("111111111111",),
    organization_accounts: Sequence[str] = (),
    organization_id: str = "o-a1b2c3d4e5",
    regions: Sequence[str] = ("us-east-1",),
    logs_per_day: int = 2,
    records_per_log: int = 5,
    insight_every: int = 0,
    prefix: str = "",
    seed: int = 1,
    bucket: Optional[str] = None,
) -> TrailLayout:
    """Upload the files; every `insight_every`-th day of each partition also gets an Insights file (0: none)."""
    rng = random.Random(seed)
    bucket = bucket or aws.create_bucket()
    files: List[TrailFile] = []
    index = 0
    owners = [(a, None) for a in accounts] + [(a, organization_id) for a in organization_accounts]
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for account, org in owners:
            for region in regions:
                kinds = ["log"] * logs_per_day + (["insight"] if insight_every and offset % insight_every == 0 else [])
                for number, kind in enumerate(kinds):
                    # CloudTrail delivers a file about every 5 minutes per region
                    when = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(minutes=5 * number)
                    records = make_records(
                        records_per_log,
                        seed=rng.randrange(1 << 30),
                        first_index=index,
                        account=account,
                        start_time=when,
                    )
                    index += records_per_log
                    key = cloudtrail_key(
                        kind, when=when, account=account, region=region, organization_id=org, prefix=prefix, rng=rng
                    )
                    files.append(
                        TrailFile(aws.put_cloudtrail_object(bucket, key, records), kind, day, account, region, records)
                    )
                digest_time = datetime(day.year, day.month, day.day, 23, 0, tzinfo=timezone.utc)
                digest = json.dumps({"digestEndTime": digest_time.strftime("%Y-%m-%dT%H:%M:%SZ"), "logFiles": []})
                key = cloudtrail_key(
                    "digest", when=digest_time, account=account, region=region, organization_id=org, prefix=prefix
                )
                files.append(
                    TrailFile(
                        aws.put_cloudtrail_object(bucket, key, digest.encode()), "digest", day, account, region, []
                    )
                )
    return TrailLayout(bucket, prefix, files)
