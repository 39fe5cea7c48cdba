"""What the add-on's REST handlers do, run from the built package in a separate Python, against moto's STS and the
splunkd emulator. (The handler classes themselves, which import Splunk's own `splunk.admin`, run through its
stand-in in test_config_ui.py, driven from the pages.)"""

import json
import os
import subprocess
import sys
import time

from environment import ACCESS_KEY_ID, PROXY_PASSWORD, SECRET_ACCESS_KEY, proxy_settings, seed

from harness.proxies import ForwardProxy
from harness.splunkd import SplunkdEmulator

ACCOUNT_RH = "verify_account"
SCRIPT = """
import json, sys
bin_dir, action, call = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, bin_dir)
import import_declare_test
from ta_aws_cloudtrail.accounts import verify_account
from ta_aws_cloudtrail.checkpoints import ProgressStore
from ta_aws_cloudtrail.settings import ConfigError, SplunkdConnection
conn = SplunkdConnection.from_server_uri(call["server_uri"], call["session_key"])
try:
    if action == "verify_account":
        print(json.dumps({"ok": verify_account(conn, call["name"], call["payload"], call["editing"])}))
    else:
        ProgressStore(conn).delete_input(call["name"])
        print(json.dumps({"ok": True}))
except ConfigError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def run_handler(built_addon, action, splunkd, **call):
    call.update(server_uri=splunkd.server_uri, session_key=splunkd.session_key)
    result = subprocess.run(
        [sys.executable, "-S", "-c", SCRIPT, os.path.join(built_addon, "bin"), action, json.dumps(call)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert SECRET_ACCESS_KEY not in result.stdout + result.stderr and splunkd.session_key not in result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def account_payload(moto, **fields):
    payload = {
        "credential_type": "access_key",
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
        "partition": "aws",
        "sts_endpoint_url": moto.endpoint_url,
    }
    payload.update(fields)
    return payload


def test_saving_an_account_checks_its_credentials_with_sts_through_the_proxy(built_addon, moto):
    with ForwardProxy("proxy-user", PROXY_PASSWORD) as proxy:
        settings = {
            "proxy": proxy_settings(proxy.port),
        }
        with SplunkdEmulator(seed(settings=settings)) as splunkd:
            result = run_handler(
                built_addon, ACCOUNT_RH, splunkd, name="new", payload=account_payload(moto), editing=False
            )
        assert result["ok"].startswith("arn:aws:")
        assert [t for t in proxy.targets() if "Action=" in t[1] or t[1].startswith(moto.endpoint_url)]
        assert all(authorized for _, _, authorized in proxy.targets())


def test_editing_an_account_with_an_unchanged_secret_uses_the_stored_one(built_addon, moto):
    with SplunkdEmulator(seed()) as splunkd:
        payload = account_payload(moto, aws_secret_access_key="******")
        result = run_handler(built_addon, ACCOUNT_RH, splunkd, name="acct", payload=payload, editing=True)
        assert result["ok"].startswith("arn:aws:")


def test_an_account_that_cannot_reach_sts_is_refused_with_a_clear_message(built_addon):
    with SplunkdEmulator(seed()) as splunkd:
        payload = {
            "credential_type": "access_key",
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
            "sts_endpoint_url": "http://127.0.0.1:9",  # discard port: nothing listens
        }
        started = time.monotonic()
        result = run_handler(built_addon, ACCOUNT_RH, splunkd, name="bad", payload=payload, editing=False)
    assert result["error"].startswith("The credentials of AWS account 'bad' do not work:")
    assert "GetCallerIdentity" in result["error"] and SECRET_ACCESS_KEY not in result["error"]
    assert time.monotonic() - started < 60

    with SplunkdEmulator(seed()) as splunkd:
        payload = {"credential_type": "access_key", "aws_access_key_id": ACCESS_KEY_ID}
        result = run_handler(built_addon, ACCOUNT_RH, splunkd, name="half", payload=payload, editing=False)
    assert "access key ID or secret access key is empty" in result["error"]


def test_deleting_an_input_deletes_only_its_progress(built_addon):
    documents = [
        {"_key": key, "input": name, "bucket": "b", "object_key": key, "records_done": 1, "done": True, "updated": 1}
        for key, name in (("a", "gone"), ("b", "gone"), ("c", "kept"))
    ]
    with SplunkdEmulator(seed(kvstore={"ta_aws_cloudtrail_progress": documents})) as splunkd:
        assert run_handler(built_addon, "delete_input", splunkd, name="gone") == {"ok": True}
        assert [d["_key"] for d in splunkd.kv_documents("ta_aws_cloudtrail_progress")] == ["c"]
