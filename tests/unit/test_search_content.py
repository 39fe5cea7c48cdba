"""The search-time content for [aws:cloudtrail] (package/default: props, transforms, eventtypes, tags, savedsearches,
the lookup and the two Dashboard Studio dashboards), checked as far as a test can without Splunk's search engine:
every .conf parses with the Splunk .conf parser UCC uses; event types and the base of each alert and dashboard search
are in the subset of SPL that harness/search_subset.py evaluates, and a table of real CloudTrail records (the
fixtures) says which event types each must and must not match; every field they use exists in those records or is
defined by the add-on's props; the dashboards are well-formed Dashboard Studio definitions. EVAL results and data
model acceleration can only be confirmed in a real Splunk."""

from __future__ import annotations

import copy
import csv
import fnmatch
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Set

import pytest
from addonfactory_splunk_conf_parser_lib import TABConfigParser

from harness.search_subset import Search, base_search, field_names, matching, parse
from ta_aws_cloudtrail.metrics import COUNTERS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "package" / "default"
FIXTURES = ROOT / "tests" / "fixtures" / "cloudtrail"
BUILT_IN = {"_time", "_raw", "source", "sourcetype", "index", "host", "count", "eventtype", "tag"}


def conf(name: str) -> TABConfigParser:
    parser = TABConfigParser()
    parser.read(str(DEFAULT / name))
    return parser


def records() -> List[dict]:
    found = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        items = document.get("Records", [document]) if isinstance(document, dict) else document
        for record in items:
            if isinstance(record, dict) and "eventName" in record:
                record = dict(record, _fixture=path.name)
                found.append(record)
    return found


RECORDS = records()
EVENTTYPES: Dict[str, Search] = {
    name: parse(conf("eventtypes.conf").get(name, "search")) for name in conf("eventtypes.conf").sections()
}


def record(fixture: str, event_name: str, **changes) -> dict:
    """The first record of a fixture with that eventName; ``changes`` (dotted paths) make a derived record."""
    found = next(r for r in RECORDS if r["_fixture"] == fixture and r["eventName"] == event_name)
    derived = copy.deepcopy(found)
    for path, value in changes.items():
        target = derived
        *parents, last = path.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return derived


def props_fields() -> Set[str]:
    """Fields the add-on's props.conf defines for [aws:cloudtrail]: aliases, evals, lookup outputs."""
    props = conf("props.conf")
    defined: Set[str] = set()
    for key in props.options("aws:cloudtrail"):
        value = props.get("aws:cloudtrail", key)
        if key.upper().startswith("FIELDALIAS-"):
            defined.update(re.findall(r"\bAS\s+(\S+)", value))
        elif key.upper().startswith("EVAL-"):
            defined.add(key.split("-", 1)[1])
        elif key.upper().startswith("LOOKUP-"):
            defined.update(value.split("OUTPUTNEW", 1)[1].split())
    return defined


# Fields of request and response forms AWS documents that no fixture record has (the ipPermissions form of
# AuthorizeSecurityGroupIngress, IPv6 rules, a network ACL entry's port range); each is named here on purpose.
DOCUMENTED_ONLY = {
    "requestParameters.ipPermissions.items{}.ipRanges.items{}.cidrIp",
    "requestParameters.ipPermissions.items{}.ipv6Ranges.items{}.cidrIpv6",
    "requestParameters.ipPermissions.items{}.fromPort",
    "requestParameters.ipPermissions.items{}.toPort",
    "responseElements.securityGroupRuleSet.items{}.cidrIpv6",
    "requestParameters.portRange.from",
    "requestParameters.networkAclId",
    "requestParameters.publicIp",
    "requestParameters.allocationId",
    "responseElements.allocationId",
    "requestParameters.instanceId",
}
RECORD_FIELDS = field_names(RECORDS) | DOCUMENTED_ONLY
PROPS_FIELDS = props_fields()


# --- every file parses, every stanza is consistent ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["props.conf", "transforms.conf", "eventtypes.conf", "tags.conf", "savedsearches.conf", "collections.conf"]
)
def test_each_conf_parses_with_no_stanza_or_key_twice(name: str) -> None:
    assert conf(name).sections()
    seen_stanzas: Set[str] = set()
    keys: Set[str] = set()
    for line in (DEFAULT / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            assert line not in seen_stanzas, f"{name}: {line} twice"
            seen_stanzas.add(line)
            keys = set()
        elif "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0].strip()
            assert key not in keys, f"{name}: {key} twice in a stanza"
            keys.add(key)


def test_every_event_type_has_tags_and_every_tag_stanza_an_event_type() -> None:
    tags = conf("tags.conf")
    tagged = {section.split("=", 1)[1] for section in tags.sections()}
    assert tagged == set(EVENTTYPES)
    for section in tags.sections():
        assert all(tags.get(section, key) == "enabled" for key in tags.options(section) if key != "__name__")


def test_the_lookup_table_and_its_transform_agree() -> None:
    transforms = conf("transforms.conf")
    stanza = "ta_aws_cloudtrail_object_category"
    path = ROOT / "package" / "lookups" / transforms.get(stanza, "filename")
    with path.open(newline="") as table:
        rows = list(csv.DictReader(table))
    assert rows and set(rows[0]) == {"eventSource", "eventName", "object_category"}
    assert transforms.get(stanza, "match_type") == "WILDCARD(eventName)"
    lookup = conf("props.conf").get("aws:cloudtrail", "LOOKUP-ta_aws_cloudtrail_object_category")
    assert lookup.split()[:3] == [stanza, "eventSource", "eventName"]


def object_category(event_source: str, event_name: str) -> str:
    """What the WILDCARD lookup answers (first matching row, max_matches = 1)."""
    with (ROOT / "package" / "lookups" / "ta_aws_cloudtrail_object_category.csv").open(newline="") as table:
        for row in csv.DictReader(table):
            if row["eventSource"] == event_source and fnmatch.fnmatchcase(event_name, row["eventName"]):
                return row["object_category"]
    return ""


@pytest.mark.parametrize(
    "source, name, category",
    [
        ("iam.amazonaws.com", "CreateLoginProfile", "user"),
        ("iam.amazonaws.com", "AttachUserPolicy", "policy"),
        ("iam.amazonaws.com", "UpdateAssumeRolePolicy", "role"),
        ("iam.amazonaws.com", "CreateAccessKey", "access_key"),
        ("iam.amazonaws.com", "AddUserToGroup", "group"),
        ("iam.amazonaws.com", "CreateRole", "role"),
        ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", "security_group"),
        ("ec2.amazonaws.com", "AllocateAddress", "elastic_ip"),
        ("ec2.amazonaws.com", "RunInstances", "instance"),
        ("cloudtrail.amazonaws.com", "StopLogging", "trail"),
        ("ssm.amazonaws.com", "SendCommand", ""),
    ],
)
def test_object_category_rows_are_ordered_so_the_specific_ones_win(source: str, name: str, category: str) -> None:
    assert object_category(source, name) == category


# --- event types against real records ----------------------------------------------------------------------------

SIGNIN = "cloudtrail-event-reference-aws-console-sign-in-events.example-{:02d}.json"
NO_MFA = "aws.initial-access.console-login-without-mfa.json"
GET_PASSWORD = "aws.credential-access.ec2-get-password-data.json"
TRAIL_STOP, TRAIL_DELETE = "aws.defense-evasion.cloudtrail-stop.json", "aws.defense-evasion.cloudtrail-delete.json"
SG_OPEN = "aws.exfiltration.ec2-security-group-open-port-22-ingress.json"
ADMIN_USER = "aws.persistence.iam-create-admin-user.json"
UPDATE_TRAIL = "cloudtrail-log-file-examples.example-06.json"

CASES = [
    # (fixture, eventName, changes for a derived record, event types it must match exactly)
    (NO_MFA, "ConsoleLogin", {}, {"console_signin"}),
    (SIGNIN.format(2), "ConsoleLogin", {}, {"console_signin", "console_signin_mfa"}),
    (SIGNIN.format(3), "ConsoleLogin", {}, {"console_signin", "console_signin_mfa"}),  # failed, with MFA
    (SIGNIN.format(6), "ConsoleLogin", {}, {"console_signin", "console_signin_privileged"}),  # root
    (SIGNIN.format(7), "ConsoleLogin", {}, {"console_signin", "console_signin_privileged", "console_signin_mfa"}),
    (SIGNIN.format(8), "ConsoleLogin", {}, {"console_signin", "console_signin_privileged"}),  # root, failed
    (SIGNIN.format(4), "CheckMfa", {}, set()),
    ("aws.credential-access.ec2-get-password-data.json", "AssumeRole", {}, {"assume_role"}),
    ("aws.credential-access.ec2-get-password-data.json", "GetPasswordData", {}, {"error", "access_denied"}),
    ("aws.defense-evasion.cloudtrail-stop.json", "StopLogging", {}, {"change", "trail_tampering"}),
    ("aws.defense-evasion.cloudtrail-delete.json", "DeleteTrail", {}, {"change", "trail_tampering"}),
    ("aws.defense-evasion.cloudtrail-event-selectors.json", "PutEventSelectors", {}, {"change", "trail_tampering"}),
    ("cloudtrail-log-file-examples.example-06.json", "UpdateTrail", {}, {"change", "trail_tampering", "error"}),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress.json",
        "AuthorizeSecurityGroupIngress",
        {},
        {"change", "network_change"},
    ),
    ("aws.defense-evasion.vpc-remove-flow-logs.json", "DeleteFlowLogs", {}, {"change", "network_change"}),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress.json",
        "AuthorizeSecurityGroupIngress",
        {"eventName": "AllocateAddress"},
        {"change", "network_change", "elastic_ip"},
    ),
    ("aws.persistence.iam-create-admin-user.json", "CreateUser", {}, {"change", "account_management"}),
    ("aws.persistence.iam-create-admin-user.json", "CreateAccessKey", {}, {"change", "account_management"}),
    ("aws.persistence.iam-create-user-login-profile.json", "CreateLoginProfile", {}, {"change", "account_management"}),
    ("cloudtrail-log-file-examples.example-04.json", "CreateUser", {}, {"change", "account_management"}),  # no readOnly
    ("aws.execution.ec2-user-data.json", "StartInstances", {}, {"change", "instance_change"}),
    (
        "aws.execution.ec2-user-data.json",
        "ModifyInstanceAttribute",
        {},
        {"change", "instance_change", "endpoint_change"},
    ),
    ("cloudtrail-log-file-examples.example-02.json", "StopInstances", {}, {"change", "instance_change"}),
    (
        "aws.execution.ec2-launch-unusual-instances.json",
        "RunInstances",
        {},
        {"change", "instance_change", "error", "access_denied"},
    ),
    (
        "aws.execution.ec2-user-data.json",
        "StopInstances",
        {"eventName": "TerminateInstances"},
        {"change", "instance_change"},
    ),
    ("aws.execution.ssm-send-command.json", "SendCommand", {}, {"change", "endpoint_change"}),
    ("aws.lateral-movement.ec2-instance-connect.json", "SendSSHPublicKey", {}, {"change", "endpoint_change"}),
    # must match nothing: read-only calls, a read call of an old record without readOnly, STS credentials
    ("aws.execution.ec2-user-data.json", "DescribeInstances", {}, set()),
    ("aws.credential-access.secretsmanager-retrieve-secrets.json", "GetSecretValue", {}, set()),
    ("cloudtrail-log-file-examples.example-01.json", "StartInstances", {"eventName": "DescribeInstances"}, set()),
    ("aws.persistence.sts-federation-token.json", "GetFederationToken", {}, set()),
]


@pytest.mark.parametrize("fixture, event_name, changes, expected", CASES)
def test_event_types_match_exactly_the_expected_records(fixture, event_name, changes, expected) -> None:
    got = {name[len("aws_cloudtrail_") :] for name in matching(EVENTTYPES, record(fixture, event_name, **changes))}
    assert got == expected


def test_on_every_fixture_record_read_only_calls_are_never_changes_and_sign_ins_are_authentication() -> None:
    changes = {"aws_cloudtrail_change", "aws_cloudtrail_account_management", "aws_cloudtrail_network_change"}
    for item in RECORDS:
        got = matching(EVENTTYPES, item)
        if item.get("readOnly") is True:
            assert not got & changes, (item["_fixture"], item["eventName"])
        if item["eventName"] == "ConsoleLogin":
            assert "aws_cloudtrail_console_signin" in got
        if item.get("errorCode"):
            assert "aws_cloudtrail_error" in got


# --- alerts -----------------------------------------------------------------------------------------------------------

ALERTS = conf("savedsearches.conf")


@pytest.mark.parametrize("name", ALERTS.sections())
def test_each_alert_is_shipped_disabled_and_scheduled(name: str) -> None:
    assert ALERTS.get(name, "disabled") == "1"
    assert ALERTS.get(name, "enableSched") == "1"
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", ALERTS.get(name, "cron_schedule"))
    assert ALERTS.get(name, "alert.track") == "1" and ALERTS.get(name, "description")


ROOT_USED, NO_MFA_ALERT = "AWS CloudTrail - Root account used", "AWS CloudTrail - Console sign-in without MFA"
TRAIL_ALERT = "AWS CloudTrail - CloudTrail logging stopped or trail deleted"
SG_ALERT = "AWS CloudTrail - Security group opened to the world on SSH or RDP"
KEY_ALERT = "AWS CloudTrail - Access key created for another user"
DENIED_ALERT = "AWS CloudTrail - Burst of AccessDenied from one principal"
ALERT_CASES = [
    (ROOT_USED, SIGNIN.format(6), "ConsoleLogin", True),
    (ROOT_USED, SIGNIN.format(10), "PasswordUpdated", True),
    (ROOT_USED, NO_MFA, "ConsoleLogin", False),
    (NO_MFA_ALERT, NO_MFA, "ConsoleLogin", True),
    (NO_MFA_ALERT, SIGNIN.format(6), "ConsoleLogin", True),  # root without MFA
    (NO_MFA_ALERT, SIGNIN.format(2), "ConsoleLogin", False),  # with MFA
    (NO_MFA_ALERT, SIGNIN.format(8), "ConsoleLogin", False),  # failed
    (TRAIL_ALERT, TRAIL_STOP, "StopLogging", True),
    (TRAIL_ALERT, TRAIL_DELETE, "DeleteTrail", True),
    (TRAIL_ALERT, UPDATE_TRAIL, "UpdateTrail", False),
    (SG_ALERT, SG_OPEN, "AuthorizeSecurityGroupIngress", True),
    (KEY_ALERT, ADMIN_USER, "CreateAccessKey", True),
    (DENIED_ALERT, GET_PASSWORD, "GetPasswordData", True),
    (DENIED_ALERT, GET_PASSWORD, "AssumeRole", False),
]


@pytest.mark.parametrize("alert, fixture, event_name, expected", ALERT_CASES)
def test_the_base_search_of_each_alert_selects_its_records(alert, fixture, event_name, expected) -> None:
    """Only the part before the first | (the rest, stats/eval/where, needs Splunk)."""
    search = parse(base_search(ALERTS.get(alert, "search")))
    assert search.matches(record(fixture, event_name)) is expected


def test_every_alert_has_a_case_above() -> None:
    assert {case[0] for case in ALERT_CASES} == set(ALERTS.sections())


# --- dashboards ---------------------------------------------------------------------------------------------------

VIEWS = DEFAULT / "data" / "ui" / "views"
VISUALIZATIONS = {
    "splunk.table",
    "splunk.line",
    "splunk.column",
    "splunk.bar",
    "splunk.singlevalue",
    "splunk.pie",
    "splunk.events",
}
INPUTS = {"input.timerange", "input.text", "input.dropdown", "input.multiselect"}


def definition(name: str) -> dict:
    root = ET.parse(VIEWS / f"{name}.xml").getroot()
    assert root.tag == "dashboard" and root.get("version") == "2"
    assert root.findtext("label")
    return json.loads(root.findtext("definition"))


def test_the_navigation_lists_both_dashboards() -> None:
    nav = ET.parse(DEFAULT / "data" / "ui" / "nav" / "default.xml").getroot()
    assert {"cloudtrail_security", "ingestion_health"} <= {view.get("name") for view in nav.iter("view")}


@pytest.mark.parametrize("name", ["cloudtrail_security", "ingestion_health"])
def test_each_dashboard_is_a_well_formed_dashboard_studio_definition(name: str) -> None:
    board = definition(name)
    data_sources, visualizations, inputs = board["dataSources"], board["visualizations"], board["inputs"]
    assert all(ds["type"] == "ds.search" and ds["options"]["query"] for ds in data_sources.values())
    for viz in visualizations.values():
        assert viz["type"] in VISUALIZATIONS and viz["dataSources"]["primary"] in data_sources and viz["title"]
    assert all(item["type"] in INPUTS and item["options"]["token"] for item in inputs.values())
    layout = board["layout"]
    assert layout["type"] == "grid" and set(layout["globalInputs"]) == set(inputs)
    placed = [item["item"] for item in layout["structure"]]
    assert sorted(placed) == sorted(visualizations)
    for item in layout["structure"]:
        position = item["position"]
        assert position["x"] + position["w"] <= 1200 and position["h"] > 0
    tokens = {item["options"]["token"] for item in inputs.values()}
    used = set()
    for text in [ds["options"]["query"] for ds in data_sources.values()] + [json.dumps(board["defaults"])]:
        used.update(token.split(".")[0] for token in re.findall(r"\$([\w.]+)\$", text))
    assert used <= tokens, used - tokens
    assert board["defaults"]["dataSources"]["ds.search"]["options"]["queryParameters"]["earliest"] == "$time.earliest$"


def dashboard_searches(name: str) -> Dict[str, str]:
    board = definition(name)
    defaults = {
        item["options"]["token"]: str(item["options"].get("defaultValue", "*")) for item in board["inputs"].values()
    }
    found = {}
    for key, ds in board["dataSources"].items():
        query = ds["options"]["query"]
        for token, value in defaults.items():
            query = query.replace(f"${token}$", value)
        found[key] = query
    return found


SECURITY_SIGNIN = "cloudtrail-event-reference-aws-console-sign-in-events.example-{:02d}.json"
SECURITY_CASES = [
    (
        "ds_security_groups",
        "aws.exfiltration.ec2-security-group-open-port-22-ingress.json",
        "AuthorizeSecurityGroupIngress",
    ),
    ("ds_ec2_lifecycle", "aws.execution.ec2-user-data.json", "StartInstances"),
    ("ds_iam_changes", "aws.persistence.iam-create-admin-user.json", "CreateAccessKey"),
    ("ds_console_signins", "aws.initial-access.console-login-without-mfa.json", "ConsoleLogin"),
    ("ds_rare_errors", "aws.credential-access.ec2-get-password-data.json", "GetPasswordData"),
    ("ds_tampering", "aws.defense-evasion.cloudtrail-stop.json", "StopLogging"),
]


@pytest.mark.parametrize("data_source, fixture, event_name", SECURITY_CASES)
def test_security_panels_select_their_records_and_not_a_read_only_call(data_source, fixture, event_name) -> None:
    search = parse(base_search(dashboard_searches("cloudtrail_security")[data_source]))
    assert search.matches(record(fixture, event_name))
    if data_source not in ("ds_rare_errors",):
        assert not search.matches(record("aws.execution.ec2-user-data.json", "DescribeInstances"))


# --- fields used exist -----------------------------------------------------------------------------------------------

_FUNCTION_ARGUMENT = re.compile(
    r"\b(?:count|dc|values|latest|earliest|max|min|sum|avg|isnotnull|isnull|mvfind|coalesce|tonumber|mvindex)"
    r"\(([\w.{}]+)(?=[,)\s])"
)
_CLAUSE_FIELDS = re.compile(r"\b(?:BY|table|rare)\s+([^|]+)")
_DEFINED = re.compile(r"(?:\beval\s+|,\s*)(\w+)=|\bAS\s+(\w+)|\(\?<(\w+)>|\bfield=(\w+)")


def fields_of(spl: str) -> Set[str]:
    """The fields a search reads (its base search, quoted names, function arguments, BY/table/rare lists),
    less those it defines itself (eval, AS, rex)."""
    spl = re.sub(r"\$[\w.]+\$", "*", spl)
    used = set(parse(base_search(spl)).fields)
    used.update(re.findall(r"'([^']+)'", spl))
    used.update(_FUNCTION_ARGUMENT.findall(spl))
    for clause in _CLAUSE_FIELDS.findall(spl):
        used.update(word for word in clause.split() if re.fullmatch(r"[A-Za-z_][\w.{}]*", word) and "=" not in word)
    defined = {name for groups in _DEFINED.findall(spl) for name in groups if name}
    return used - defined - BUILT_IN - {"limit", "AS", "BY"}


def test_every_field_of_the_event_types_alerts_and_security_dashboard_is_in_real_records_or_defined_by_props() -> None:
    searches = {f"eventtype {n}": s.text for n, s in EVENTTYPES.items()}
    searches.update({f"alert {n}": ALERTS.get(n, "search") for n in ALERTS.sections()})
    searches.update({f"dashboard {n}": q for n, q in dashboard_searches("cloudtrail_security").items()})
    for where, spl in searches.items():
        unknown = fields_of(spl) - RECORD_FIELDS - PROPS_FIELDS
        assert not unknown, f"{where}: {sorted(unknown)}"


def test_every_field_of_the_health_dashboard_is_written_by_the_inputs_metrics_lines() -> None:
    written = set(COUNTERS) | {"input", "interval_s", "uptime_s", "event_lag_s", "sqs_lag_s", "errors", "log_level"}
    for name, spl in dashboard_searches("ingestion_health").items():
        unknown = fields_of(spl) - written
        assert not unknown, f"{name}: {sorted(unknown)}"


def test_the_field_check_names_an_unknown_field() -> None:
    spl = "sourcetype=aws:cloudtrail eventNmae=X | eval n=1 | stats count max(userIdentity.arn) BY usr n"
    assert fields_of(spl) - RECORD_FIELDS - PROPS_FIELDS == {"eventNmae", "usr"}
