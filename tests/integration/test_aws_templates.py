"""The CloudFormation templates of aws/: cfn-lint clean, deployed into moto's CloudFormation with IAM enforced, then
the built input reads a trail file through the stacks' queue with the stacks' role (assumed with its external ID),
and each statement of the role's policy is shown to be needed: without it the input logs the clear error naming
the permission.

Where moto differs from AWS, the test says so: an existing bucket's notification is set with the command the
queue stack outputs (as the README says; CloudFormation cannot change an existing bucket in AWS either); moto does
not drop `AWS::NoValue` from lists, so the templates use one conditional policy per input instead."""

import gzip
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import boto3
import pytest
from environment import ARTIFACTS, seed

from harness.aws import ACCOUNT_ID, cloudtrail_key
from harness.cloudtrail_data import log_file_json, make_records
from harness.modinput import ModularInputRunner
from harness.moto_iam import EnforcingMotoServer
from harness.splunkd import SplunkdEmulator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = os.path.join(REPO_ROOT, "aws")
BUCKET = "org-trail-bucket"
LOG_GROUP = "aws-controltower/CloudTrailLogs"
EXTERNAL_ID = "splunk-ext-4f1c9e2a-template-test"
HOST_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}


def template(name: str) -> str:
    with open(os.path.join(TEMPLATES, name), encoding="utf-8") as handle:
        return handle.read()


def test_every_template_is_cfn_lint_clean():
    names = sorted(n for n in os.listdir(TEMPLATES) if n.endswith(".yaml"))
    assert {"cloudtrail-queue.yaml", "addon-role.yaml"} <= set(names)
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    result = subprocess.run(
        [cfn_lint, *(os.path.join(TEMPLATES, n) for n in names)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _outputs(cloudformation, stack: str) -> dict:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


@pytest.fixture(scope="module")
def deployed():
    """moto with IAM enforced; the trail bucket; the Splunk host's user (allowed only sts:AssumeRole); both stacks."""
    with EnforcingMotoServer() as aws:
        ARTIFACTS.secrets.append(aws.secret_access_key)
        iam, cloudformation = aws.client("iam"), aws.client("cloudformation")
        aws.client("s3").create_bucket(Bucket=BUCKET)
        aws.client("logs").create_log_group(logGroupName=LOG_GROUP)
        aws.client("logs").create_log_stream(logGroupName=LOG_GROUP, logStreamName=f"{ACCOUNT_ID}_CloudTrail_us-east-1")
        host = iam.create_user(UserName="splunk-host")["User"]["Arn"]
        iam.put_user_policy(UserName="splunk-host", PolicyName="assume", PolicyDocument=json.dumps(HOST_POLICY))
        key = iam.create_access_key(UserName="splunk-host")["AccessKey"]
        ARTIFACTS.secrets.append(key["SecretAccessKey"])
        cloudformation.create_stack(
            StackName="cloudtrail-queue",
            TemplateBody=template("cloudtrail-queue.yaml"),
            Parameters=[{"ParameterKey": "BucketName", "ParameterValue": BUCKET}],
        )
        queue = _outputs(cloudformation, "cloudtrail-queue")
        # The bucket exists already: its notification is set the documented way, with the stack's output.
        aws.client("s3").put_bucket_notification_configuration(
            Bucket=BUCKET, NotificationConfiguration=json.loads(queue["BucketNotificationConfiguration"])
        )
        cloudformation.create_stack(
            StackName="splunk-addon-role",
            TemplateBody=template("addon-role.yaml"),
            Capabilities=["CAPABILITY_IAM"],
            Parameters=[
                {"ParameterKey": "TrustedPrincipalArn", "ParameterValue": host},
                {"ParameterKey": "ExternalId", "ParameterValue": EXTERNAL_ID},
                {"ParameterKey": "QueueArn", "ParameterValue": queue["QueueArn"]},
                {"ParameterKey": "BucketName", "ParameterValue": BUCKET},
                {"ParameterKey": "EnableBackfill", "ParameterValue": "true"},
                {
                    "ParameterKey": "LogGroupArn",
                    "ParameterValue": f"arn:aws:logs:{aws.region}:{ACCOUNT_ID}:log-group:{LOG_GROUP}",
                },
            ],
        )
        role = _outputs(cloudformation, "splunk-addon-role")
        yield aws, queue, role, key


@pytest.fixture
def splunkd(deployed):
    aws, _, role, key = deployed
    accounts = {
        "host": {
            "credential_type": "access_key",
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
            "partition": "aws",
            "sts_endpoint_url": aws.endpoint_url,
        }
    }
    roles = {"reader": {"role_arn": role["RoleArn"], "external_id": EXTERNAL_ID, "session_duration": "900"}}
    with SplunkdEmulator(seed(accounts=accounts, iam_roles=roles)) as emulator:
        ARTIFACTS.secrets.append(emulator.session_key)
        yield emulator


def _put_trail_file(aws, n: int) -> list:
    records = make_records(20, seed=8000 + n, first_index=n * 100)
    key = cloudtrail_key(when=datetime.now(timezone.utc))
    body = gzip.compress(log_file_json(records), mtime=0)
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return records


def _sqs_params(aws, queue: dict, role: str = "reader") -> dict:
    return {
        "account": "host",
        "aws_iam_role": role,
        "sqs_queue_url": queue["QueueUrl"],
        "region": aws.region,
        "sqs_endpoint_url": aws.endpoint_url,
        "s3_endpoint_url": aws.endpoint_url,
        "sts_endpoint_url": aws.endpoint_url,
        "index": "main",
        "visibility_timeout": "30",
        "sns_signature_validation": "0",
    }


def _drain(sqs, queue_url: str) -> None:
    """Delete what this test announced (PurgeQueue is allowed once a minute)."""
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages")
        if not messages:
            return
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _policy_of(aws, role_arn: str, sid: str) -> str:
    iam = aws.client("iam")
    role_name = role_arn.rsplit("/", 1)[1]
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        if any(s.get("Sid") == sid for s in document["PolicyVersion"]["Document"]["Statement"]):
            return attached["PolicyArn"]
    raise AssertionError(f"no policy with statement {sid}")


def test_a_trail_file_reaches_the_stacks_queue_and_the_built_input_reads_it_with_the_stacks_role(
    deployed, splunkd, built_addon, tmp_path
):
    aws, queue, _, _ = deployed
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["All"])
    assert json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 5
    assert attributes["Attributes"]["VisibilityTimeout"] == "300"
    records = _put_trail_file(aws, 1)
    runner = ModularInputRunner(built_addon, str(tmp_path))
    ARTIFACTS.log_dirs.append(runner.log_dir)
    with runner.start("from_stacks", _sqs_params(aws, queue), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_for_events(len(records), timeout=90)
        assert running.terminate() == 0
    assert sorted(json.loads(e.data)["eventID"] for e in running.events) == sorted(r["eventID"] for r in records)


def test_the_role_cannot_be_assumed_without_its_external_id(deployed, splunkd, built_addon, tmp_path):
    aws, _, role, key = deployed
    sts = boto3.session.Session().client(
        "sts",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    with pytest.raises(Exception, match="AccessDenied"):
        sts.assume_role(RoleArn=role["RoleArn"], RoleSessionName="splunk", ExternalId="someone-else")
    assert sts.assume_role(RoleArn=role["RoleArn"], RoleSessionName="splunk", ExternalId=EXTERNAL_ID)["Credentials"]


@pytest.mark.parametrize(
    ("sid", "needed"),
    [
        ("ReadTheQueue", "allow sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility and "
         "sqs:GetQueueAttributes"),
        ("ReadTheLogFiles", "allow s3:GetObject"),
    ],
)  # fmt: skip
def test_without_one_statement_of_the_role_the_input_names_the_missing_permission(
    deployed, splunkd, built_addon, tmp_path, sid, needed
):
    aws, queue, role, _ = deployed
    iam = aws.client("iam")
    role_name = role["RoleArn"].rsplit("/", 1)[1]
    policy = _policy_of(aws, role["RoleArn"], sid)
    iam.detach_role_policy(RoleName=role_name, PolicyArn=policy)
    try:
        _put_trail_file(aws, 2 if sid == "ReadTheQueue" else 3)
        runner = ModularInputRunner(built_addon, str(tmp_path))
        ARTIFACTS.log_dirs.append(runner.log_dir)
        with runner.start(f"without_{sid}", _sqs_params(aws, queue), splunkd) as running:
            ARTIFACTS.runs.append(running)
            running.wait_until(lambda: needed in running.log_text(), timeout=90)
            time.sleep(1)
            running.terminate()
        assert running.events == []
    finally:
        iam.attach_role_policy(RoleName=role_name, PolicyArn=policy)
        _drain(aws.client("sqs"), queue["QueueUrl"])


def test_the_backfill_needs_the_listing_statement(deployed, splunkd, built_addon, tmp_path):
    aws, _, role, _ = deployed
    iam = aws.client("iam")
    role_name = role["RoleArn"].rsplit("/", 1)[1]
    runner = ModularInputRunner(built_addon, str(tmp_path), scheme="aws_cloudtrail_s3_backfill")
    params = {
        "account": "host",
        "aws_iam_role": "reader",
        "bucket_name": BUCKET,
        "start_date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "region": aws.region,
        "s3_endpoint_url": aws.endpoint_url,
        "sts_endpoint_url": aws.endpoint_url,
        "index": "main",
    }
    assert runner.validate("history", params, splunkd).returncode == 0
    policy = _policy_of(aws, role["RoleArn"], "ListTheLogFiles")
    iam.detach_role_policy(RoleName=role_name, PolicyArn=policy)
    try:
        refused = runner.validate("history", params, splunkd)
    finally:
        iam.attach_role_policy(RoleName=role_name, PolicyArn=policy)
    assert refused.returncode != 0 and "allow s3:ListBucket on arn:aws:s3:::org-trail-bucket" in refused.message


def test_the_queue_policy_admits_only_the_chosen_sender():
    """moto's CloudFormation does not apply AWS::SQS::QueuePolicy (nor does its SQS enforce queue policies), so
    the policy is checked in the template: per notification source one Allow, bound to that sender's ARN (and the
    bucket's account for S3), and a Deny of plain HTTP."""
    from cfnlint.decode import decode_str

    body, _ = decode_str(template("cloudtrail-queue.yaml"))
    statements = body["Resources"]["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = {}
    for statement in statements:
        if "Fn::If" in statement:
            condition, allow, _ = statement["Fn::If"]
            allows[condition] = allow
    assert set(allows) == {"UseS3", "UseSns", "UseEventBridge"}
    for condition, allow in allows.items():
        assert allow["Effect"] == "Allow" and allow["Action"] == "sqs:SendMessage"
        assert "aws:SourceArn" in allow["Condition"]["ArnEquals"], condition
        assert allow["Principal"]["Service"] in ("s3.amazonaws.com", "sns.amazonaws.com", "events.amazonaws.com")
    assert "aws:SourceAccount" in allows["UseS3"]["Condition"]["StringEquals"]
    deny = next(s for s in statements if s.get("Sid") == "TlsOnly")
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_trail_template_makes_the_bucket_and_the_trail(deployed):
    """moto's CloudFormation has no AWS::CloudTrail::Trail (it fails the stack): the test deploys the bucket part
    of the template and creates the trail with the template's own properties through the CloudTrail API, as
    `aws cloudtrail create-trail` would."""
    aws = deployed[0]
    from cfnlint.decode import decode_str

    body, _ = decode_str(template("cloudtrail-trail.yaml"))
    trail = body["Resources"].pop("Trail")["Properties"]
    body["Outputs"].pop("TrailArn")
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(
        StackName="cloudtrail-trail",
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": "KeyPrefix", "ParameterValue": "org"}],
    )
    bucket = _outputs(cloudformation, "cloudtrail-trail")["BucketName"]
    s3 = aws.client("s3")
    # moto's CloudFormation does not apply a bucket's LifecycleConfiguration: the template's rule is applied with
    # PutBucketLifecycleConfiguration, as `aws s3api put-bucket-lifecycle-configuration` would.
    rule = body["Resources"]["TrailBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0]
    assert rule["ExpirationInDays"] == {"Ref": "RetentionDays"} and rule["Status"] == "Enabled"
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [{"ID": rule["Id"], "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 365}}]
        },
    )
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Expiration"]["Days"] == 365
    # moto's CloudFormation creates no AWS::S3::BucketPolicy either: its statements are checked in the template.
    policy = body["Resources"]["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    statements = {statement["Sid"]: statement for statement in policy}
    assert statements["AWSCloudTrailAclCheck"]["Action"] == "s3:GetBucketAcl"
    write = statements["AWSCloudTrailWrite"]
    assert write["Action"] == "s3:PutObject" and write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert set(write["Condition"]["StringEquals"]) == {"s3:x-amz-acl", "aws:SourceArn"}
    assert statements["TlsOnly"]["Effect"] == "Deny"
    assert statements["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    cloudtrail = aws.client("cloudtrail")
    cloudtrail.create_trail(
        Name="management-events",  # the template's default TrailName
        S3BucketName=bucket,
        S3KeyPrefix="org",
        IsMultiRegionTrail=trail["IsMultiRegionTrail"],
        IncludeGlobalServiceEvents=trail["IncludeGlobalServiceEvents"],
        EnableLogFileValidation=trail["EnableLogFileValidation"],
    )
    cloudtrail.start_logging(Name="management-events")
    described = cloudtrail.describe_trails(trailNameList=["management-events"])["trailList"][0]
    assert described["IsMultiRegionTrail"] and described["LogFileValidationEnabled"]
    assert cloudtrail.get_trail_status(Name="management-events")["IsLogging"]


@pytest.mark.parametrize("source", ["CloudTrailSNS", "EventBridge"])
def test_the_queue_template_takes_the_trails_topic_or_an_eventbridge_rule(deployed, source):
    aws = deployed[0]
    cloudformation, sqs = aws.client("cloudformation"), aws.client("sqs")
    parameters = [
        {"ParameterKey": "BucketName", "ParameterValue": BUCKET},
        {"ParameterKey": "NotificationSource", "ParameterValue": source},
    ]
    if source == "CloudTrailSNS":
        topic = aws.client("sns").create_topic(Name="cloudtrail-notifications")["TopicArn"]
        parameters.append({"ParameterKey": "CloudTrailTopicArn", "ParameterValue": topic})
    stack = f"queue-{source.lower()}"
    cloudformation.create_stack(StackName=stack, TemplateBody=template("cloudtrail-queue.yaml"), Parameters=parameters)
    outputs = _outputs(cloudformation, stack)
    assert "BucketNotificationConfiguration" not in outputs
    key = cloudtrail_key(when=datetime.now(timezone.utc))
    if source == "CloudTrailSNS":
        sns = aws.client("sns")
        if not sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
            # moto's CloudFormation creates no AWS::SNS::Subscription: the template's subscription (protocol sqs,
            # the stack's queue) is made with Subscribe, as `aws sns subscribe` would.
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=outputs["QueueArn"])
        message = json.dumps({"s3Bucket": BUCKET, "s3ObjectKey": [key]})
        aws.client("sns").publish(TopicArn=topic, Message=message)
    else:
        detail = {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 10}, "reason": "PutObject"}
        aws.client("events").put_events(
            Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)}]
        )
    received = sqs.receive_message(QueueUrl=outputs["QueueUrl"], WaitTimeSeconds=5).get("Messages", [])
    assert len(received) == 1 and key in received[0]["Body"]


def test_the_log_group_statement_is_the_cloudwatch_logs_inputs_one_call_and_its_absence_is_named(
    deployed, splunkd, built_addon, tmp_path
):
    """moto evaluates CloudWatch Logs permissions against the resource "*" (its logs responses name no resource),
    so a statement scoped to the log group's ARN, as the template's is, never allows a call there. The test checks
    the statement as written, that the input names it when it is missing, and that its action is the one the input
    needs (the same action on "*" lets the input read)."""
    aws, _, role, _ = deployed
    iam = aws.client("iam")
    policy_arn = _policy_of(aws, role["RoleArn"], "ReadTheLogGroup")
    version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"]
    [statement] = [s for s in document["Statement"] if s.get("Sid") == "ReadTheLogGroup"]
    assert statement["Action"] == "logs:FilterLogEvents"
    assert statement["Resource"] == f"arn:aws:logs:{aws.region}:{ACCOUNT_ID}:log-group:{LOG_GROUP}:*"

    logs = aws.client("logs")
    records = make_records(15, seed=8100)
    stamp = int(time.time() * 1000) - 600_000
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=f"{ACCOUNT_ID}_CloudTrail_us-east-1",
        logEvents=[{"timestamp": stamp + n, "message": json.dumps(r)} for n, r in enumerate(records)],
    )
    runner = ModularInputRunner(built_addon, str(tmp_path), scheme="aws_cloudtrail_cloudwatch_logs")
    ARTIFACTS.log_dirs.append(runner.log_dir)
    params = {
        "account": "host",
        "aws_iam_role": "reader",
        "region": aws.region,
        "log_groups": LOG_GROUP,
        "start_position": "beginning",
        "logs_endpoint_url": aws.endpoint_url,
        "sts_endpoint_url": aws.endpoint_url,
        "index": "main",
    }
    refused = runner.validate("trail_logs", params, splunkd)
    assert refused.returncode != 0 and "allow logs:FilterLogEvents on the log group" in refused.message

    role_name = role["RoleArn"].rsplit("/", 1)[1]
    anywhere = dict(statement, Resource="*")
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="log-group-in-moto",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [anywhere]}),
    )
    try:
        assert runner.validate("trail_logs", params, splunkd).returncode == 0
        with runner.start("trail_logs", params, splunkd) as running:
            ARTIFACTS.runs.append(running)
            running.wait_for_events(len(records), timeout=60)
            assert running.terminate() == 0
    finally:
        iam.delete_role_policy(RoleName=role_name, PolicyName="log-group-in-moto")
    assert sorted(json.loads(e.data)["eventID"] for e in running.events) == sorted(r["eventID"] for r in records)
