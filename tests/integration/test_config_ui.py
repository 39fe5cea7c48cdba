"""The configuration and input pages in a real browser: Debian's Chromium (headless, through chromedriver) on the
built add-on's UCC pages served by the Splunk Web stand-in, whose REST calls reach the splunkd emulator and run
the add-on's generated REST handlers as splunkd does (harness/rest_handlers.py); AWS is moto with IAM enforced,
so keys STS does not know are refused as by AWS. Screenshots of each step: .tmp/ui/."""

import json
import re
import time
from datetime import datetime, timezone

import pytest
from environment import ARTIFACTS, EXTERNAL_ID, PROXY_PASSWORD
from ucc_ui import UccPage

from harness.aws import ObjectInfo, cloudtrail_key, s3_event_body
from harness.cloudtrail_data import gzip_log_file, make_records
from harness.cloudtrail_lookup import CloudTrailLookupEmulator
from harness.modinput import ModularInputRunner
from harness.moto_iam import EnforcingMotoServer
from harness.proxies import ForwardProxy
from harness.rest_handlers import InstalledApp
from harness.splunkd import SplunkdEmulator
from harness.splunkweb import SplunkWeb
from harness.webdriver import Browser, find_browser

BAD_SECRET = "rejected/secret+key/0123456789abcdefNOTREAL"
PROGRESS = "ta_aws_cloudtrail_progress"


@pytest.fixture(scope="module")
def aws():
    with EnforcingMotoServer() as server:
        ARTIFACTS.secrets.append(server.secret_access_key)
        yield server


@pytest.fixture(scope="module")
def stack(built_addon, aws, tmp_path_factory):
    """splunkd (emulator) with the built add-on installed, Splunk Web in front, one browser."""
    chromium, chromedriver, missing = find_browser()
    if missing:
        pytest.fail(
            f"the browser tests need Debian's {missing}: apt-get install chromium chromium-driver "
            "(make test installs them when run as root)",
            pytrace=False,
        )
    with SplunkdEmulator({"settings": {"logging": {"loglevel": "DEBUG"}}}) as splunkd:
        ARTIFACTS.secrets.append(splunkd.session_key)
        app = InstalledApp(splunkd, built_addon, str(tmp_path_factory.mktemp("ui-splunk")))
        ARTIFACTS.log_dirs.append(app.log_dir)
        web = SplunkWeb(splunkd, built_addon, app_label="AWS CloudTrail Add-on").start()
        browser = Browser(chromium, chromedriver)
        try:
            browser.get(web.login_url("configuration"))
            yield splunkd, app, web, browser
        finally:
            failed = [request for request in web.requests if request[2] >= 400 or "account" in request[1]]
            print(f"\nSplunk Web answers >= 400: {failed}\nhandler stderr: {app.handler_stderr()[-3000:]}")
            browser.quit()
            web.stop()
            app.stop()
    assert web.refused == [], f"the pages asked splunkd for paths web.conf does not expose: {web.refused}"
    assert splunkd.internal_errors == []


@pytest.fixture
def page(stack, request) -> UccPage:
    _, _, web, browser = stack
    return UccPage(browser, web, request.node.name)


def test_an_account_whose_keys_sts_rejects_shows_the_check_and_is_not_saved(stack, page, aws):
    splunkd = stack[0]
    page.open("configuration", "AWS Accounts")
    page.click_button("Add")
    page.fill("name", "rejected")
    page.fill("aws_access_key_id", "AKIAZZREJECTED000001")
    page.fill("aws_secret_access_key", BAD_SECRET)
    page.fill("sts_endpoint_url", aws.endpoint_url)
    page.shot("filled")
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    text = page.wait_for_modal_message("do not work")
    page.shot("refused")
    assert "The credentials of AWS account 'rejected' do not work" in text
    assert "InvalidClientTokenId" in text or "security token" in text
    assert BAD_SECRET not in text
    assert splunkd.conf_stanza("ta_aws_cloudtrail_account", "rejected") is None
    assert splunkd.clear_password(splunkd.ucc_realm("ta_aws_cloudtrail_account"), "rejected") is None
    page.click_button("Cancel", "[data-test=modal] [data-test=footer]")


def test_an_account_with_good_keys_is_saved_with_its_secret_only_in_the_password_store(stack, page, aws):
    splunkd = stack[0]
    page.open("configuration", "AWS Accounts")
    page.click_button("Add")
    page.fill("name", "prod")
    page.fill("aws_access_key_id", aws.access_key_id)
    page.fill("aws_secret_access_key", aws.secret_access_key)
    page.fill("sts_endpoint_url", aws.endpoint_url)
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_until_modal_closed()
    page.wait_for_row("prod")
    page.shot("listed")
    stanza = splunkd.conf_stanza("ta_aws_cloudtrail_account", "prod")
    assert stanza["aws_secret_access_key"] == "******"
    assert stanza["aws_access_key_id"] == aws.access_key_id
    stored = json.loads(splunkd.clear_password(splunkd.ucc_realm("ta_aws_cloudtrail_account"), "prod"))
    assert stored == {"aws_secret_access_key": aws.secret_access_key}
    assert aws.secret_access_key not in page.browser.page_text()

    page.edit_row("prod")
    assert page.field_value("aws_secret_access_key") in ("", "******")  # masked, never the secret
    assert aws.secret_access_key not in page.modal_text()
    page.shot("edit-masked")
    page.click_button("Update", "[data-test=modal] [data-test=footer]")  # unchanged secret: the stored one is checked
    page.wait_until_modal_closed()
    assert json.loads(splunkd.clear_password(splunkd.ucc_realm("ta_aws_cloudtrail_account"), "prod")) == stored


def test_an_iam_role_with_a_bad_arn_is_refused_by_its_validator_and_a_good_one_saved(stack, page):
    splunkd = stack[0]
    page.open("configuration", "IAM Roles")
    page.click_button("Add")
    page.fill("name", "reader")
    page.fill("role_arn", "arn:aws:iam::12345:user/not-a-role")
    page.fill("external_id", EXTERNAL_ID)
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_for_modal_message("A role ARN looks like arn:aws:iam::123456789012:role/RoleName.")
    page.shot("bad-arn")
    assert splunkd.conf_stanza("ta_aws_cloudtrail_iam_role", "reader") is None
    page.fill("role_arn", "arn:aws:iam::123456789012:role/SplunkCloudTrailReader")
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_until_modal_closed()
    page.wait_for_row("reader")
    page.shot("saved")
    assert splunkd.conf_stanza("ta_aws_cloudtrail_iam_role", "reader")["external_id"] == "******"
    stored = splunkd.clear_password(splunkd.ucc_realm("ta_aws_cloudtrail_iam_role"), "reader")
    assert json.loads(stored) == {"external_id": EXTERNAL_ID}


def test_the_proxy_and_logging_tabs_save(stack, page):
    splunkd = stack[0]
    page.open("configuration", "Logging")
    page.select("loglevel", "WARNING")
    page.click_button("Save")
    page.browser.wait_for(
        lambda: splunkd.conf_stanza("ta_aws_cloudtrail_settings", "logging")["loglevel"] == "WARNING",
        "the log level to be saved",
    )
    page.shot("logging")
    with ForwardProxy("proxy-user", PROXY_PASSWORD) as proxy:
        page.open("configuration", "Proxy")
        page.set_checkbox("proxy_enabled", False)
        page.fill("proxy_url", "127.0.0.1")
        page.fill("proxy_port", str(proxy.port))
        page.fill("proxy_username", "proxy-user")
        page.fill("proxy_password", PROXY_PASSWORD)
        page.click_button("Save")
        page.browser.wait_for(
            lambda: splunkd.conf_stanza("ta_aws_cloudtrail_settings", "proxy").get("proxy_url") == "127.0.0.1",
            "the proxy settings to be saved",
        )
        page.shot("proxy")
    saved = splunkd.conf_stanza("ta_aws_cloudtrail_settings", "proxy")
    assert saved["proxy_port"] == str(proxy.port) and saved["proxy_password"] == "******"
    stored = json.loads(splunkd.clear_password(splunkd.ucc_realm("ta_aws_cloudtrail_settings"), "proxy"))
    assert stored == {"proxy_password": PROXY_PASSWORD}


def _new_sqs_input(page: UccPage, aws, name: str, queue_url: str) -> None:
    page.open("inputs")
    page.click_button("Create New Input")
    page.browser.click(page.browser.find_text("[role=menuitem], [data-test=item]", "CloudTrail (SQS-based S3)"))
    page.fill("name", name)
    page.select("account", "prod")
    page.fill("sqs_queue_url", queue_url)
    page.fill("region", aws.region)
    page.expand_group("Private and FIPS endpoints")
    page.fill("sqs_endpoint_url", aws.endpoint_url)
    page.fill("s3_endpoint_url", aws.endpoint_url)
    page.fill("sts_endpoint_url", aws.endpoint_url)


@pytest.fixture(scope="module")
def queues(aws):
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="ui-trail-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    good = sqs.create_queue(QueueName="ui-trail", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "300"})
    bare = sqs.create_queue(QueueName="ui-trail-without-dlq")
    return good["QueueUrl"], bare["QueueUrl"]


def test_a_new_input_on_a_queue_without_a_dead_letter_queue_shows_why_in_the_form(stack, page, aws, queues):
    splunkd = stack[0]
    _new_sqs_input(page, aws, "no_dlq", queues[1])
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    text = page.wait_for_modal_message("dead-letter queue")
    page.shot("refused")
    assert f"The queue {queues[1]} has no dead-letter queue" in text
    assert "aws_cloudtrail_sqs://no_dlq" not in splunkd.conf_stanzas("inputs")
    page.click_button("Cancel", "[data-test=modal] [data-test=footer]")


def test_an_input_on_a_good_queue_is_listed_edited_disabled_and_enabled(stack, page, aws, queues):
    splunkd = stack[0]
    _new_sqs_input(page, aws, "prod_trail", queues[0])
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_until_modal_closed()
    page.wait_for_row("prod_trail")
    page.shot("listed")
    stanza = splunkd.conf_stanzas("inputs")["aws_cloudtrail_sqs://prod_trail"]
    assert stanza["account"] == "prod" and stanza["sqs_queue_url"] == queues[0]

    page.edit_row("prod_trail")
    page.expand_group("Filters")
    page.fill("exclude_event_names", "^(Describe|List|Get)")
    page.click_button("Update", "[data-test=modal] [data-test=footer]")
    page.wait_until_modal_closed()
    page.browser.wait_for(
        lambda: (
            splunkd.conf_stanzas("inputs")["aws_cloudtrail_sqs://prod_trail"].get("exclude_event_names")
            == "^(Describe|List|Get)"
        ),
        "the edit to be saved",
    )

    page.toggle_row_status("prod_trail")
    page.browser.wait_for(
        lambda: splunkd.conf_stanzas("inputs")["aws_cloudtrail_sqs://prod_trail"].get("disabled") in ("1", "true"),
        "the input to be disabled",
    )
    page.browser.wait_for(lambda: "Inactive" in page.row_cell_texts("prod_trail"), "the row to say Inactive")
    page.shot("disabled")
    page.toggle_row_status("prod_trail")
    page.browser.wait_for(
        lambda: splunkd.conf_stanzas("inputs")["aws_cloudtrail_sqs://prod_trail"].get("disabled") in ("0", "false"),
        "the input to be enabled",
    )
    page.browser.wait_for(lambda: "Active" in page.row_cell_texts("prod_trail"), "the row to say Active")


def test_the_built_input_runs_with_what_the_pages_saved_and_deleting_it_deletes_its_progress(
    stack, page, aws, queues, built_addon, tmp_path
):
    """Runs after the tests above, which saved the account 'prod' and the input 'prod_trail' through the pages."""
    splunkd, app = stack[0], stack[1]
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="ui-trail-bucket")
    records = make_records(40, 13)
    key = cloudtrail_key(when=datetime.now(timezone.utc))
    body = gzip_log_file(records)
    put = s3.put_object(Bucket="ui-trail-bucket", Key=key, Body=body)
    obj = ObjectInfo("ui-trail-bucket", key, put["ETag"].strip('"'), None, len(body))
    aws.client("sqs").send_message(QueueUrl=queues[0], MessageBody=s3_event_body([obj]))

    params = {k: v for k, v in splunkd.conf_stanzas("inputs")["aws_cloudtrail_sqs://prod_trail"].items()}
    runner = ModularInputRunner(app.app_dir, str(tmp_path))
    ARTIFACTS.log_dirs.append(runner.log_dir)
    # The edit above set the filter ^(Describe|List|Get): those records must not come.
    expected = sorted(r["eventID"] for r in records if not re.match(r"^(Describe|List|Get)", r["eventName"]))
    assert 0 < len(expected) < len(records)
    with runner.start("prod_trail", params, splunkd) as running:
        ARTIFACTS.runs.append(running)
        events = running.wait_for_events(len(expected), timeout=90)
        time.sleep(2)  # nothing more comes
        assert running.terminate() == 0
    assert sorted(json.loads(e.data)["eventID"] for e in running.events) == expected
    assert {e.source for e in events} == {f"s3://ui-trail-bucket/{key}"}
    progress = [doc for doc in splunkd.kv_documents(PROGRESS) if doc.get("input") == "prod_trail"]
    assert progress, "the input saved no progress"

    page.open("inputs")
    page.wait_for_row("prod_trail")
    page.delete_row("prod_trail")
    page.shot("deleted")
    assert "aws_cloudtrail_sqs://prod_trail" not in splunkd.conf_stanzas("inputs")
    assert [doc for doc in splunkd.kv_documents(PROGRESS) if doc.get("input") == "prod_trail"] == []


def test_the_backfill_form_refuses_a_reversed_date_range_and_saves_a_good_one(stack, page, aws):
    splunkd = stack[0]
    aws.client("s3").create_bucket(Bucket="ui-history-bucket")
    page.open("inputs")
    page.click_button("Create New Input")
    page.browser.click(
        page.browser.find_text("[role=menuitem], [data-test=item]", "CloudTrail history from S3 (backfill)")
    )
    page.fill("name", "history")
    page.select("account", "prod")
    page.fill("bucket_name", "ui-history-bucket")
    page.fill("start_date", "2026-11-20")
    page.fill("end_date", "2026-11-01")
    page.expand_group("Scope")
    page.fill("region", aws.region)
    page.expand_group("Private and FIPS endpoints")
    page.fill("s3_endpoint_url", aws.endpoint_url)
    page.fill("sts_endpoint_url", aws.endpoint_url)
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_for_modal_message("End date (end_date) 2026-11-01 is before the start date 2026-11-20")
    page.shot("reversed-range")
    assert "aws_cloudtrail_s3_backfill://history" not in splunkd.conf_stanzas("inputs")
    page.fill("end_date", "2026-11-30")
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_until_modal_closed()
    page.wait_for_row("history")
    page.shot("saved")
    stanza = splunkd.conf_stanzas("inputs")["aws_cloudtrail_s3_backfill://history"]
    assert stanza["bucket_name"] == "ui-history-bucket" and stanza["start_date"] == "2026-11-20"


def test_the_event_history_form_checks_its_selector_and_the_lookup_permission_then_saves(stack, page):
    splunkd = stack[0]
    with CloudTrailLookupEmulator() as lookup:
        page.open("inputs")
        page.click_button("Create New Input")
        menu = "[role=menuitem], [data-test=item]"
        page.browser.click(page.browser.find_text(menu, "CloudTrail Event history (LookupEvents)"))
        page.fill("name", "history_api")
        page.select("account", "prod")
        page.fill("regions", "us-east-1")
        page.expand_group("What to read")
        page.fill("event_selector", "s3-List")
        page.expand_group("Private and FIPS endpoints")
        page.fill("cloudtrail_endpoint_url", lookup.endpoint_url)
        page.click_button("Add", "[data-test=modal] [data-test=footer]")
        page.wait_for_modal_message("service:EventNamePattern items, for example s3:List*, iam:*")
        page.shot("bad-selector")
        page.fill("event_selector", "s3:List*, iam:*")
        lookup.fail_next("us-east-1", "AccessDeniedException", "not authorized to perform: cloudtrail:LookupEvents")
        page.click_button("Add", "[data-test=modal] [data-test=footer]")
        page.wait_for_modal_message("allow cloudtrail:LookupEvents")
        page.shot("denied")
        assert "aws_cloudtrail_lookup://history_api" not in splunkd.conf_stanzas("inputs")
        page.click_button("Add", "[data-test=modal] [data-test=footer]")
        page.wait_until_modal_closed()
        page.wait_for_row("history_api")
        page.shot("saved")
    stanza = splunkd.conf_stanzas("inputs")["aws_cloudtrail_lookup://history_api"]
    assert stanza["event_selector"] == "s3:List*, iam:*" and stanza["regions"] == "us-east-1"


def test_the_cloudwatch_logs_form_checks_the_log_group_saves_and_deleting_the_input_deletes_its_positions(
    stack, page, aws, tmp_path
):
    """Create the input in the form (a missing log group is refused by the server's check), run the built input
    with what was saved, then delete it in the page: its positions go with it."""
    splunkd, app = stack[0], stack[1]
    logs = aws.client("logs")
    group = "/ui/cloudtrail"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="123456789012_CloudTrail_us-east-1")
    records = make_records(25, 17)
    stamp = int(time.time() * 1000) - 600_000
    logs.put_log_events(
        logGroupName=group,
        logStreamName="123456789012_CloudTrail_us-east-1",
        logEvents=[{"timestamp": stamp + n, "message": json.dumps(r)} for n, r in enumerate(records)],
    )
    page.open("inputs")
    page.click_button("Create New Input")
    page.browser.click(page.browser.find_text("[role=menuitem], [data-test=item]", "CloudTrail in CloudWatch Logs"))
    page.fill("name", "trail_logs")
    page.select("account", "prod")
    page.fill("region", aws.region)
    page.fill("log_groups", "/ui/no-such-group")
    page.expand_group("What to read")
    page.fill("start_position", "beginning")
    page.expand_group("Private and FIPS endpoints")
    page.fill("logs_endpoint_url", aws.endpoint_url)
    page.fill("sts_endpoint_url", aws.endpoint_url)
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_for_modal_message("the log group does not exist")
    page.shot("missing-group")
    assert "aws_cloudtrail_cloudwatch_logs://trail_logs" not in splunkd.conf_stanzas("inputs")
    page.fill("log_groups", group)
    page.click_button("Add", "[data-test=modal] [data-test=footer]")
    page.wait_until_modal_closed()
    page.wait_for_row("trail_logs")
    page.shot("saved")

    params = dict(splunkd.conf_stanzas("inputs")["aws_cloudtrail_cloudwatch_logs://trail_logs"])
    assert params["log_groups"] == group and params["start_position"] == "beginning"
    runner = ModularInputRunner(app.app_dir, str(tmp_path), scheme="aws_cloudtrail_cloudwatch_logs")
    ARTIFACTS.log_dirs.append(runner.log_dir)
    with runner.start("trail_logs", params, splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_for_events(25, timeout=90)
        assert running.terminate() == 0
    assert sorted(json.loads(e.data)["eventID"] for e in running.events) == sorted(r["eventID"] for r in records)
    assert [
        d
        for d in splunkd.kv_documents("ta_aws_cloudtrail_cursors")
        if d.get("input") == "aws_cloudtrail_cloudwatch_logs://trail_logs"
    ]

    page.open("inputs")
    page.wait_for_row("trail_logs")
    page.delete_row("trail_logs")
    assert "aws_cloudtrail_cloudwatch_logs://trail_logs" not in splunkd.conf_stanzas("inputs")
    assert [
        d
        for d in splunkd.kv_documents("ta_aws_cloudtrail_cursors")
        if d.get("input") == "aws_cloudtrail_cloudwatch_logs://trail_logs"
    ] == []
