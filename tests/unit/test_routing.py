"""routing.classify_key and routing.account_from_key, on CloudTrail's real key layouts and edge cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from ta_aws_cloudtrail.routing import DIGEST, INSIGHT, LOG, OTHER, SUBSCRIPTION, account_from_key, classify_key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

LOG_KEY = (
    "AWSLogs/111122223333/CloudTrail/us-east-1/2021/07/28/111122223333_CloudTrail_us-east-1_20210728T0000Z_abc.json.gz"
)
ORGANIZATION_LOG_KEY = (
    "prefix/AWSLogs/o-aa111bb222/111122223333/CloudTrail/us-east-1/2021/07/28/"
    "111122223333_CloudTrail_us-east-1_20210728T0000Z_abc.json.gz"
)
DIGEST_KEY = (
    "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2021/07/28/"
    "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20210728T005945Z.json.gz"
)
INSIGHT_KEY = (
    "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2021/07/28/"
    "111122223333_CloudTrail-Insight_us-east-1_20210728T0005Z_xyz.json.gz"
)

KEYS: List[Tuple[str, str, Optional[str]]] = [
    # CloudTrail's own layouts
    (LOG_KEY, LOG, "111122223333"),
    (ORGANIZATION_LOG_KEY, LOG, "111122223333"),
    (DIGEST_KEY, DIGEST, "111122223333"),
    (INSIGHT_KEY, INSIGHT, "111122223333"),
    ("AWSLogs/o-aa111bb222/444455556666/CloudTrail-Digest/eu-west-1/d.json.gz", DIGEST, "444455556666"),
    ("a/b/c/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/i.json.gz", INSIGHT, "111122223333"),
    # bucket prefixes with spaces, '+', non-ASCII characters (keys arrive here URL-decoded)
    ("my logs/AWSLogs/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, "111122223333"),
    ("a+b/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/x.json.gz", DIGEST, "111122223333"),
    ("journaux/été/日志/AWSLogs/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, "111122223333"),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2021/07/28/file with space+plus é.json.gz", LOG, "111122223333"),
    # a folder must match exactly
    ("MyCloudTrailStuff/x.json.gz", OTHER, None),
    ("AWSLogs/111122223333/cloudtrail/us-east-1/x.json.gz", OTHER, "111122223333"),
    ("AWSLogs/111122223333/CloudTrail+/us-east-1/x.json.gz", OTHER, "111122223333"),
    ("AWSLogs/111122223333/CloudTrail /us-east-1/x.json.gz", OTHER, "111122223333"),
    ("AWSLogs/111122223333/CloudTrail-Digests/us-east-1/x.json.gz", OTHER, "111122223333"),
    ("AWSLogs/111122223333/CloudTrailInsight/us-east-1/x.json.gz", OTHER, "111122223333"),
    # the folder after the account decides, whatever a prefix says
    ("CloudTrail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/x.json.gz", DIGEST, "111122223333"),
    ("CloudTrail-Digest/AWSLogs/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, "111122223333"),
    ("CloudTrail/AWSLogs/111122223333/elasticloadbalancing/us-east-1/x.log.gz", OTHER, "111122223333"),
    ("CloudTrail/AWSLogs/111122223333/x.json.gz", OTHER, "111122223333"),
    ("AWSLogs/AWSLogs/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, "111122223333"),
    # other AWS logs in the same bucket
    ("AWSLogs/111122223333/vpcflowlogs/us-east-1/x.log.gz", OTHER, "111122223333"),
    ("AWSLogs/111122223333/Config/us-east-1/x.json.gz", OTHER, "111122223333"),
    # outside CloudTrail's layout: the deepest CloudTrail folder decides, and there is no account
    ("exports/CloudTrail/x.json.gz", LOG, None),
    ("exports/CloudTrail-Digest/x.json.gz", DIGEST, None),
    ("exports/CloudTrail-Insight/x.json.gz", INSIGHT, None),
    ("CloudTrail/archive/CloudTrail-Digest/x.json.gz", DIGEST, None),
    # the object's own name is not a folder
    ("exports/CloudTrail", OTHER, None),
    ("AWSLogs/111122223333", OTHER, None),
    ("CloudTrail", OTHER, None),
    ("", OTHER, None),
    # account ids are exactly 12 ASCII digits; organization ids are o- and 10 to 32 [a-z0-9]
    ("AWSLogs/11112222333/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("AWSLogs/1111222233334/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("AWSLogs/١١١١٢٢٢٢٣٣٣٣/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("AWSLogs/o-AA111BB222/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("AWSLogs/o-short/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("AWSLogs/o-aa111bb222/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("awslogs/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("AWSLogs//111122223333/CloudTrail/us-east-1/x.json.gz", LOG, None),
    ("logs/111122223333/CloudTrail/us-east-1/x.json.gz", LOG, None),
]


@pytest.mark.parametrize(("key", "kind", "account"), KEYS, ids=[key or "empty" for key, _, _ in KEYS])
def test_key_gives_kind_and_account(key: str, kind: str, account: Optional[str]) -> None:
    assert (classify_key(key), account_from_key(key)) == (kind, account)


def read_fixture(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


# Example 02 is the digest of an hour in which no log file was delivered.
@pytest.mark.parametrize(("example", "log_file_count"), [("01", 1), ("02", 0)])
def test_keys_named_in_real_digest_files_are_routed(example: str, log_file_count: int) -> None:
    digest = read_fixture(
        f"cloudtrail/aws-cloudtrail-user-guide/cloudtrail-log-file-validation-digest-file-structure.example-{example}.json"
    )
    digest_keys = [digest["digestS3Object"], digest["previousDigestS3Object"]]
    log_keys = [log_file["s3Object"] for log_file in digest["logFiles"]]
    assert [(classify_key(key), account_from_key(key)) for key in digest_keys] == [(DIGEST, "111122223333")] * 2
    assert [(classify_key(key), account_from_key(key)) for key in log_keys] == [(LOG, "111122223333")] * log_file_count


@pytest.mark.parametrize("example", ["01", "02"])
def test_keys_in_real_cloudtrail_sns_notifications_are_logs(example: str) -> None:
    notification = read_fixture(
        f"notifications/aws-cloudtrail-user-guide/configure-sns-notifications-for-cloudtrail.example-{example}.json"
    )
    keys = notification["s3ObjectKey"]
    assert [(classify_key(key), account_from_key(key)) for key in keys] == [(LOG, "123456789012")] * len(keys)


FIREHOSE_KEYS = [
    "2026/12/02/16/cloudtrail-to-s3-1-2026-12-02-16-05-33-0b1f7c9e-2d8a-4a8e-9e63-5b2f7f5d1a10",
    "cwl/2026/12/02/16/cloudtrail-to-s3-3-2026-12-02-16-05-33-0b1f7c9e-2d8a-4a8e-9e63-5b2f7f5d1a10.gz",
]


@pytest.mark.parametrize("key", FIREHOSE_KEYS)
def test_files_named_as_firehose_names_them_may_hold_subscription_documents(key: str) -> None:
    assert classify_key(key) == SUBSCRIPTION
    assert account_from_key(key) is None


@pytest.mark.parametrize(
    "key",
    [
        "2026/12/02/16/notes.txt",
        "2026/12/02/16/stream-2026-12-02-16-05-33",  # no version number
        "AWSLogs/111122223333/Config/us-east-1/2021/07/28/cloudtrail-to-s3-1-2026-12-02-16-05-33-0b1f7c9e",
    ],
)
def test_other_files_are_not_taken_for_firehose_files(key: str) -> None:
    assert classify_key(key) == OTHER
