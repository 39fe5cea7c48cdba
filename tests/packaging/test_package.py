"""What an admin installs: the packaged .tar.gz from `make package`."""

import json
import os
import re
import stat
import subprocess

import pytest

from harness.pythons import python_binary

APP = "TA_aws_cloudtrail"
INPUT_PARAMETERS = [
    "account",
    "aws_iam_role",
    "sqs_queue_url",
    "region",
    "index",
    "interval",
    "sourcetype",
    "sqs_batch_size",
    "max_objects_in_flight",
    "visibility_timeout",
    "max_receive_count",
    "require_dlq",
    "exclude_event_names",
    "exclude_read_only",
    "include_event_sources",
    "exclude_event_sources",
    "allowed_buckets",
    "allowed_accounts",
    "sns_signature_validation",
    "ingest_digest_files",
    "sqs_endpoint_url",
    "s3_endpoint_url",
    "sts_endpoint_url",
    "ca_bundle",
    "max_decompressed_mb",
    "checkpoint_retention_days",
]


def spec_keys(text: str, stanza: str) -> set:
    body = text.split(stanza, 1)[1]
    return {line.split("=", 1)[0].strip() for line in body.splitlines() if "=" in line}


def test_inputs_spec_declares_every_parameter(package):
    _, texts = package
    spec = texts[f"{APP}/README/inputs.conf.spec"]
    assert "[aws_cloudtrail_sqs://<name>]" in spec
    missing = set(INPUT_PARAMETERS) - spec_keys(spec, "[aws_cloudtrail_sqs://<name>]")
    assert not missing, f"inputs.conf.spec lacks {sorted(missing)}"


def test_defaults_and_python_versions(package):
    _, texts = package
    inputs_conf = texts[f"{APP}/default/inputs.conf"]
    assert "python.required = 3.9, 3.13" in inputs_conf
    for line in (
        "sourcetype = aws:cloudtrail",
        "require_dlq = 1",
        "checkpoint_retention_days = 14",
        "visibility_timeout = 300",
    ):
        assert line in inputs_conf
    restmap = texts[f"{APP}/default/restmap.conf"]
    assert restmap.count("python.required = 3.9, 3.13") >= 4  # every admin_external handler


def test_configuration_tabs_and_openapi(package):
    members, texts = package
    config = json.loads(texts[f"{APP}/appserver/static/js/build/globalConfig.json"])
    tabs = config["pages"]["configuration"]["tabs"]
    assert [t["name"] for t in tabs] == ["account", "iam_role", "proxy", "logging"]
    account = {e["field"]: e for e in tabs[0]["entity"]}
    assert account["aws_secret_access_key"]["encrypted"] is True
    role = {e["field"]: e for e in tabs[1]["entity"]}
    assert role["external_id"]["encrypted"] is True
    assert tabs[0]["restHandlerClass"] == "AwsAccountHandler"
    service = config["pages"]["inputs"]["services"][0]
    assert service["name"] == "aws_cloudtrail_sqs" and service["restHandlerClass"] == "AwsCloudTrailSqsInputHandler"
    assert f"{APP}/appserver/static/openapi.json" in members
    assert config["meta"]["restRoot"] == "ta_aws_cloudtrail"


def test_kv_collection_and_props(package):
    _, texts = package
    collections = texts[f"{APP}/default/collections.conf"]
    assert "[ta_aws_cloudtrail_progress]" in collections
    for field in ("input", "bucket", "object_key", "version", "records_done", "done", "updated"):
        assert re.search(rf"^field\.{field} = \w+$", collections, re.M)
    props = texts[f"{APP}/default/props.conf"]
    assert "[aws:cloudtrail]" in props and "KV_MODE = json" in props


def test_version_is_the_one_in_global_config(package, version):
    _, texts = package
    assert re.search(rf"^version = {re.escape(version)}$", texts[f"{APP}/default/app.conf"], re.M)
    assert json.loads(texts[f"{APP}/app.manifest"])["info"]["id"]["version"] == version


def test_package_is_clean_pure_python_and_not_writable_by_others(package):
    members, texts = package
    names = list(members)
    assert not [n for n in names if n.startswith(f"{APP}/local/") or n == f"{APP}/local"]
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".dylib", ".dll", ".exe"))]
    assert not compiled, compiled
    writable = [n for n, m in members.items() if m.mode & (stat.S_IWGRP | stat.S_IWOTH)]
    assert not writable, writable[:5]
    session_py = texts[f"{APP}/lib/botocore/session.py"]
    assert "SOCK_DGRAM" not in session_py and "client-side monitoring (UDP) is disabled" in session_py
    models = {n.split("/")[4] for n in names if n.startswith(f"{APP}/lib/botocore/data/") and n.count("/") > 4}
    assert models == {"s3", "sqs", "sts", "cloudtrail", "logs"}


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_bundled_libraries_and_the_package_import_on_splunks_pythons(built_addon, version):
    """Splunk 9.x runs Python 3.9 and Splunk 10.x 3.13: the bundled lib/ and the add-on must import on both."""
    python = python_binary(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    code = (
        "import sys; sys.path[:0] = [sys.argv[1] + '/lib', sys.argv[1] + '/bin'];"
        "import boto3, botocore, solnlib, splunklib;"
        "import ta_aws_cloudtrail.sqs_input, ta_aws_cloudtrail.accounts, aws_cloudtrail_sqs_helper;"
        "print('%d.%d' % sys.version_info[:2], boto3.__version__)"
    )
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    command = [python, "-S", "-c", code, built_addon]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[0] == version


def test_every_field_of_every_tab_and_input_has_help_text(package):
    """The page definition the UI reads (UCC expands the proxy and logging tabs): no field left to guess at."""
    _, texts = package
    config = json.loads(texts["TA_aws_cloudtrail/appserver/static/js/build/globalConfig.json"])
    forms = [(f"Configuration > {tab['title']}", tab["entity"]) for tab in config["pages"]["configuration"]["tabs"]]
    forms += [(f"Input {service['title']}", service["entity"]) for service in config["pages"]["inputs"]["services"]]
    fields = [(form, entity) for form, entities in forms for entity in entities]
    assert len(fields) > 40
    missing = [f"{form}: {entity['field']}" for form, entity in fields if len((entity.get("help") or "").strip()) < 15]
    assert not missing, missing
