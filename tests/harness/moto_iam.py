"""moto in server mode with IAM enforcement: a separate ``moto_server`` process started with
``INITIAL_NO_AUTH_ACTION_COUNT`` so that only its first requests go unauthenticated (they create an IAM user with
an access key and an allow-all policy); every later request must be signed with a key moto knows, and is checked
against that key's policies. Unknown keys get ``InvalidClientTokenId``, as from AWS.

moto reads the setting once per process, which is why this is a process of its own and not the in-process server
of ``harness.aws.MotoServer`` that the other tests share.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, Optional

import boto3

from harness.aws import REGION

ADMIN_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
_SETUP_ACTIONS = 3  # CreateUser, CreateAccessKey, PutUserPolicy


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EnforcingMotoServer:
    """``moto_server`` on 127.0.0.1 with IAM enforced; ``access_key_id``/``secret_access_key`` are an admin's."""

    region = REGION

    def __init__(self, user: str = "splunk-admin") -> None:
        self.user = user
        self.port = 0
        self.access_key_id = ""
        self.secret_access_key = ""
        self._process: Optional[subprocess.Popen] = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "EnforcingMotoServer":
        self.port = _free_port()
        executable = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(_SETUP_ACTIONS)
        self._process = subprocess.Popen(
            [executable, "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        iam = self._client("iam", "AKIDSETUPONLY0000000", "setup-only-secret-not-checked")
        iam.create_user(UserName=self.user)
        key = iam.create_access_key(UserName=self.user)["AccessKey"]
        iam.put_user_policy(UserName=self.user, PolicyName="admin", PolicyDocument=ADMIN_POLICY)
        self.access_key_id, self.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        return self

    def _client(self, service: str, key_id: str, secret: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )

    def client(self, service: str) -> Any:
        """A boto3 client signed with the admin's key."""
        return self._client(service, self.access_key_id, self.secret_access_key)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> "EnforcingMotoServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
