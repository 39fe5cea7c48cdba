import pytest

from ta_aws_cloudtrail.settings import (
    ConfigError,
    ProxySettings,
    SplunkdConnection,
    parse_account,
    parse_iam_role,
    parse_input_settings,
    parse_proxy,
    region_from_queue_url,
)

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/cloudtrail-q"


def stanza(**params):
    base = {"account": "prod", "sqs_queue_url": QUEUE}
    base.update(params)
    return parse_input_settings("aws_cloudtrail_sqs://trail", base)


@pytest.mark.parametrize(
    "url, region",
    [
        ("https://sqs.us-east-1.amazonaws.com/123456789012/q", "us-east-1"),
        ("https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/q", "us-gov-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1"),
        ("https://eu-central-1.queue.amazonaws.com/123456789012/q", "eu-central-1"),
        ("https://queue.amazonaws.com/123456789012/q", "us-east-1"),
        ("https://vpce-0a1b2c3d-4e5f.sqs.ap-southeast-2.vpce.amazonaws.com/123456789012/q", "ap-southeast-2"),
        ("http://127.0.0.1:5000/123456789012/q", None),
    ],
)
def test_region_from_queue_url(url, region):
    assert region_from_queue_url(url) == region


def test_defaults_match_the_ui_defaults():
    s = stanza()
    assert (s.name, s.stanza, s.region) == ("trail", "aws_cloudtrail_sqs://trail", "eu-west-1")
    assert (s.batch_size, s.max_in_flight, s.visibility_timeout, s.max_receive_count) == (10, 8, 300, 5)
    assert s.require_dlq and s.sns_signature_validation and not s.ingest_digest_files
    assert s.sourcetype == "aws:cloudtrail"
    assert s.max_decompressed_bytes == 4096 * 1024 * 1024
    assert s.checkpoint_retention_days == 14
    assert s.queue_account_id == "123456789012"


def test_values_from_inputs_conf_are_parsed():
    s = stanza(
        region="us-west-2",
        index="cloudtrail",
        host="fwd01",
        sqs_batch_size="3",
        require_dlq="0",
        sns_signature_validation="false",
        ingest_digest_files="1",
        allowed_buckets="a-bucket, b.bucket",
        allowed_accounts="111122223333,444455556666",
        include_event_sources="iam.amazonaws.com",
        exclude_event_names="^(Describe|List|Get)",
        sqs_endpoint_url="https://vpce-1.sqs.us-west-2.vpce.amazonaws.com/",
    )
    assert s.region == "us-west-2" and s.index == "cloudtrail" and s.host == "fwd01"
    assert s.batch_size == 3 and not s.require_dlq and not s.sns_signature_validation and s.ingest_digest_files
    assert s.allowed_buckets == {"a-bucket", "b.bucket"}
    assert s.allowed_accounts == {"111122223333", "444455556666"}
    assert s.include_event_sources == {"iam.amazonaws.com"}
    assert s.sqs_endpoint_url == "https://vpce-1.sqs.us-west-2.vpce.amazonaws.com"


def test_default_index_and_unresolved_host_are_left_to_splunkd():
    s = stanza(index="default", host="$decideOnStartup")
    assert s.index is None and s.host is None


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_input_settings(
            "aws_cloudtrail_sqs://bad",
            {
                "sqs_queue_url": "sqs://nope",
                "sqs_batch_size": "11",
                "visibility_timeout": "ten",
                "exclude_event_names": "([",
                "allowed_accounts": "12345",
                "allowed_buckets": "UPPER_case",
            },
        )
    message = str(err.value)
    for expected in (
        "account",
        "sqs_queue_url",
        "sqs_batch_size",
        "between 1 and 10",
        "visibility_timeout",
        "whole number",
        "not a valid regular expression",
        "12-digit",
        "invalid bucket names",
        "Region",
    ):
        assert expected in message


def test_region_required_when_the_url_has_none():
    with pytest.raises(ConfigError, match="Region"):
        stanza(sqs_queue_url="http://127.0.0.1:5000/123456789012/q")
    assert stanza(sqs_queue_url="http://127.0.0.1:5000/123456789012/q", region="us-east-1").region == "us-east-1"


def test_missing_ca_bundle_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="ca_bundle"):
        stanza(ca_bundle=str(tmp_path / "missing.pem"))
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert stanza(ca_bundle=str(bundle)).ca_bundle == str(bundle)


def test_account_access_keys_required_unless_default_chain():
    with pytest.raises(ConfigError, match="access key ID or secret"):
        parse_account("a", {"credential_type": "access_key", "aws_access_key_id": "AKIAEXAMPLEEXAMPLE12"})
    chain = parse_account("b", {"credential_type": "default_chain", "aws_access_key_id": "ignored"})
    assert chain.access_key_id is None and chain.secret_access_key is None
    keys = parse_account("c", {"aws_access_key_id": "AKIAEXAMPLEEXAMPLE12", "aws_secret_access_key": "s3cr3t-value"})
    assert keys.credential_type == "access_key" and keys.partition == "aws"
    assert "s3cr3t-value" not in repr(keys)
    with pytest.raises(ConfigError, match="partition"):
        parse_account("d", {"credential_type": "default_chain", "partition": "mars"})


def test_iam_role_validation():
    arn = "arn:aws-us-gov:iam::123456789012:role/x"
    fields = {"role_arn": arn, "external_id": "ext-1234", "session_duration": "900"}
    role = parse_iam_role("r", fields)
    assert role.session_duration == 900 and "ext-1234" not in repr(role)
    with pytest.raises(ConfigError, match="role ARN"):
        parse_iam_role("r", {"role_arn": "arn:aws:iam::1:user/x"})
    with pytest.raises(ConfigError, match="between 900 and 43200"):
        parse_iam_role("r", {"role_arn": "arn:aws:iam::123456789012:role/x", "session_duration": "60"})


def test_proxy_url_encodes_credentials_and_is_off_unless_enabled():
    assert parse_proxy({"proxy_enabled": "0", "proxy_url": "p", "proxy_port": "3128"}) is None
    fields = {"proxy_enabled": "1", "proxy_url": "proxy.corp", "proxy_port": "3128"}
    proxy = parse_proxy(dict(fields, proxy_username="me@corp", proxy_password="p:w/d"))
    assert proxy.url == "http://me%40corp:p%3Aw%2Fd@proxy.corp:3128"
    assert "p:w/d" not in repr(proxy)
    assert ProxySettings("::1", 8080).url == "http://[::1]:8080"
    with pytest.raises(ConfigError, match="not supported"):
        parse_proxy({"proxy_enabled": "1", "proxy_type": "socks5", "proxy_url": "p", "proxy_port": "1080"})
    with pytest.raises(ConfigError, match="host or port"):
        parse_proxy({"proxy_enabled": "1", "proxy_url": "p", "proxy_port": "0"})


def test_splunkd_connection_from_server_uri_hides_the_key():
    conn = SplunkdConnection.from_server_uri("https://127.0.0.1:8089", "session-key-value")
    assert conn.rest_kwargs() == {"scheme": "https", "host": "127.0.0.1", "port": 8089}
    assert "session-key-value" not in repr(conn)
    with pytest.raises(ConfigError):
        SplunkdConnection.from_server_uri("127.0.0.1:8089", "k")


def test_a_relative_ca_bundle_path_is_refused_with_where_it_is_read():
    with pytest.raises(ConfigError, match="must be an absolute path on the host running the input"):
        stanza(ca_bundle="certs/ca.pem")
