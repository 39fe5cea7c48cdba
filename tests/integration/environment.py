"""Settings shared by the integration tests: distinctive secrets, the splunkd seed, an input stanza pointing at
moto, and the record of everything the built input wrote (for the suite-wide secret scan)."""

import os
from typing import Dict, List

from harness.aws import MotoServer, QueueInfo
from harness.modinput import RunningInput

# Distinctive values so that a leak is unmistakable in the suite-wide scan (test_secret_hygiene.py).
ACCESS_KEY_ID = "AKIAZZTESTKEY0000001"
SECRET_ACCESS_KEY = "tEsT/SeCrEt+AcCeSs/KeY/9f3b2c1d0e/NOTREAL"
EXTERNAL_ID = "ext-id-7c4f1e9a-unique-test-value"
PROXY_PASSWORD = "pr0xy-pa55w0rd-test-value"
KNOWN_SECRETS = [SECRET_ACCESS_KEY, EXTERNAL_ID, PROXY_PASSWORD]


class Artifacts:
    """Everything the built input wrote during the suite: events, stderr, log files; and the secrets in play."""

    def __init__(self) -> None:
        self.runs: List[RunningInput] = []
        self.log_dirs: List[str] = []
        self.secrets: List[str] = list(KNOWN_SECRETS)

    def texts(self) -> Dict[str, str]:
        found = {}
        for i, run in enumerate(self.runs):
            found[f"run{i}.stderr"] = run.stderr_text()
            found[f"run{i}.events"] = "\n".join(e.data or "" for e in run.events)
        for directory in self.log_dirs:
            for root, _, files in os.walk(directory):
                for name in files:
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8", errors="replace") as f:
                        found[path] = f.read()
        return found


ARTIFACTS = Artifacts()


def seed(**overrides) -> dict:
    base = {
        "accounts": {
            "acct": {
                "credential_type": "access_key",
                "aws_access_key_id": ACCESS_KEY_ID,
                "aws_secret_access_key": SECRET_ACCESS_KEY,
                "partition": "aws",
            }
        },
        "settings": {"logging": {"loglevel": "DEBUG"}},
    }
    base.update(overrides)
    return base


def proxy_settings(port: int) -> dict:
    """The proxy tab of the add-on, as UCC stores it, for the authenticating ForwardProxy on `port`."""
    return {
        "proxy_enabled": "1",
        "proxy_type": "http",
        "proxy_url": "127.0.0.1",
        "proxy_port": str(port),
        "proxy_username": "proxy-user",
        "proxy_password": PROXY_PASSWORD,
    }


def input_params(moto: MotoServer, queue: QueueInfo, **overrides) -> dict:
    """A stanza pointing at moto for every AWS service."""
    params = {
        "account": "acct",
        "sqs_queue_url": queue.url,
        "region": moto.region,
        "sqs_endpoint_url": moto.endpoint_url,
        "s3_endpoint_url": moto.endpoint_url,
        "sts_endpoint_url": moto.endpoint_url,
        "index": "main",
        "visibility_timeout": "30",
        # moto signs SNS envelopes with certificates served only by itself; signature tests use a local CA
        "sns_signature_validation": "0",
    }
    params.update({k: str(v) for k, v in overrides.items()})
    return params


def backfill_params(moto: MotoServer, bucket: str, start_date: str, end_date: str = "", **overrides) -> dict:
    """A backfill stanza reading `bucket` from moto."""
    params = {
        "account": "acct",
        "bucket_name": bucket,
        "start_date": start_date,
        "end_date": end_date,
        "region": moto.region,
        "s3_endpoint_url": moto.endpoint_url,
        "sts_endpoint_url": moto.endpoint_url,
        "index": "main",
    }
    params.update({k: str(v) for k, v in overrides.items()})
    return params
