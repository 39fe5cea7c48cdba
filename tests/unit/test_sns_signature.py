"""SNS signature validation against real parts: a local HTTPS server serving the signing certificate, a
local HTTP CONNECT proxy with Basic auth, and certificates and signatures made by tests/harness/local_ca.py
(with `cryptography`, independently of the code under test)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import logging
import socket
import socketserver
import ssl
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, NamedTuple, Tuple
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.local_ca import LocalCA, SigningCert, new_rsa_key, sign_sns_message, sns_string_to_sign
from harness.proxies import relay
from ta_aws_cloudtrail import sns_signature
from ta_aws_cloudtrail.sns_signature import (
    CERTIFICATE_CACHE_SIZE,
    MAX_CERTIFICATE_BYTES,
    SnsCertificateFetchError,
    SnsSignatureError,
    SnsSignatureValidator,
    load_pem_certificate,
    parse_der_certificate,
)

LOCAL_HOST_PATTERN = r"^127\.0\.0\.1$"
AWS_CERT_HOST = "sns.us-east-1.amazonaws.com"
AWS_CERT_PATH = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
CERT_PATH = "/SimpleNotificationService-local.pem"
PROXY_USER = "ta-proxy"
PROXY_PASSWORD = "pr0xy:p@ss/w%rd-Zq81"
# DigestInfo prefixes from RFC 8017 section 9.2, note 1.
SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


# ---------------------------------------------------------------------------------------------------------
# Real servers


class _Route(NamedTuple):
    status: int
    body: bytes
    headers: Tuple[Tuple[str, str], ...]
    delay: float


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls_context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _CertificateRequestHandler)
        self.tls_context = tls_context
        self.routes: Dict[str, _Route] = {}
        self.connections = 0
        self.requests: List[str] = []
        self.lock = threading.Lock()

    def finish_request(self, request, client_address) -> None:
        with self.lock:
            self.connections += 1
        try:
            tls_socket = self.tls_context.wrap_socket(request, server_side=True)
        except OSError:
            return  # the client refused our certificate, or did not speak TLS
        with tls_socket:
            super().finish_request(tls_socket, client_address)

    def handle_error(self, request, client_address) -> None:
        """Clients that give up mid-response (timeout tests) are expected."""


class _CertificateRequestHandler(BaseHTTPRequestHandler):
    server: _TlsHttpServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(self.path)
        route = self.server.routes.get(self.path, _Route(404, b"not found", (), 0.0))
        time.sleep(route.delay)
        self.send_response(route.status)
        for name, value in route.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format, *args) -> None:
        """Quiet: the tests read `requests` instead."""


class CertificateServer:
    """HTTPS on 127.0.0.1 with a LocalCA certificate; counts TCP connections and logs request paths."""

    def __init__(self, cert_path: str, key_path: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self._server = _TlsHttpServer(context)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def connections(self) -> int:
        return self._server.connections

    @property
    def requests(self) -> List[str]:
        return list(self._server.requests)

    def serve(self, path: str, body: bytes, status: int = 200, headers=(), delay: float = 0.0) -> str:
        self._server.routes[path] = _Route(status, body, tuple(headers), delay)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ProxyRequest(NamedTuple):
    method: str
    target: str
    authorized: bool


class ConnectProxy:
    """An HTTP CONNECT proxy requiring Basic auth. `routes` maps CONNECT targets ("host:port") to local
    addresses, so a client can ask for sns.us-east-1.amazonaws.com:443 and reach a local server."""

    def __init__(self, username: str, password: str, routes: Dict[str, Tuple[str, int]]) -> None:
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self.expected_authorization = f"Basic {credentials}"
        self.routes = routes
        self.requests: List[ProxyRequest] = []
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        proxy: ConnectProxy = self.server.proxy
        client: socket.socket = self.request
        client.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        head, _, early_data = head.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        authorized = headers.get("proxy-authorization") == proxy.expected_authorization
        proxy.requests.append(ProxyRequest(method, target, authorized))
        if method != "CONNECT":
            self._reply(client, "405 Method Not Allowed")
            return
        if not authorized:
            self._reply(client, "407 Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="test"\r\n')
            return
        address = proxy.routes.get(target)
        if address is None:
            self._reply(client, "502 Bad Gateway")
            return
        with socket.create_connection(address, timeout=5) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early_data:
                upstream.sendall(early_data)
            relay(client, upstream, idle_seconds=5)

    @staticmethod
    def _reply(client: socket.socket, status: str, extra_headers: str = "") -> None:
        client.sendall(f"HTTP/1.1 {status}\r\n{extra_headers}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())


# ---------------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def server_cert(ca) -> Tuple[str, str]:
    return ca.issue_server_cert(AWS_CERT_HOST, "127.0.0.1")


@pytest.fixture(scope="module")
def signing(ca) -> SigningCert:
    return ca.issue_signing_cert()


@pytest.fixture
def server(server_cert):
    certificate_server = CertificateServer(*server_cert)
    yield certificate_server
    certificate_server.close()


@pytest.fixture
def validator(ca) -> SnsSignatureValidator:
    return SnsSignatureValidator(cert_host_pattern=LOCAL_HOST_PATTERN, ca_bundle=ca.ca_bundle_path)


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A local port nothing listens on: connecting there is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def notification(cert_url: str, subject: object = None) -> dict:
    envelope = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:cloudtrail-logs",
        "Message": json.dumps(
            {"s3Bucket": "trail-bucket", "s3ObjectKey": ["AWSLogs/123456789012/CloudTrail/us-east-1/é.json.gz"]},
            ensure_ascii=False,
        )
        + "\nsecond line",
        "Timestamp": "2024-05-01T12:00:00.000Z",
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:x",
    }
    if subject is not None:
        envelope["Subject"] = subject
    return envelope


def confirmation(cert_url: str, message_type: str = "SubscriptionConfirmation") -> dict:
    return {
        "Type": message_type,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:x&Token=2336",
        "Timestamp": "2012-04-26T20:45:04.751Z",
        "SigningCertURL": cert_url,
    }


def raw_rsa_signature(private_key, encoded_message: bytes) -> str:
    """Applies the RSA private operation to any block, well-formed or not (to build forgeries)."""
    numbers = private_key.private_numbers()
    modulus = numbers.public_numbers.n
    key_length = (modulus.bit_length() + 7) // 8
    assert len(encoded_message) == key_length
    signature = pow(int.from_bytes(encoded_message, "big"), numbers.d, modulus)
    return base64.b64encode(signature.to_bytes(key_length, "big")).decode("ascii")


def formatted(error: BaseException) -> str:
    """Everything a log line with the exception and its traceback would show, chained causes included."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__)) + repr(error)


def secret_forms(password: str) -> List[str]:
    return [
        password,
        quote(password, safe=""),
        base64.b64encode(f"{PROXY_USER}:{password}".encode()).decode("ascii"),
    ]


# ---------------------------------------------------------------------------------------------------------
# Valid messages


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "CloudTrail log delivered", ""])
def test_valid_notification_is_accepted(server, validator, signing, version, subject):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url, subject), signing.private_key, version)

    validator.validate(envelope)

    assert server.requests == [CERT_PATH]


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("message_type", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_valid_confirmation_is_accepted(server, validator, signing, version, message_type):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(confirmation(cert_url, message_type), signing.private_key, version)

    validator.validate(envelope)


def test_subject_null_is_treated_as_absent(server, validator, signing):
    # Some producers serialise a missing Subject as null; SNS then signed the message without it.
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
    envelope["Subject"] = None

    validator.validate(envelope)


# ---------------------------------------------------------------------------------------------------------
# Invalid messages


@pytest.mark.parametrize(
    "field, value",
    [
        ("Message", '{"s3Bucket": "attacker-bucket"}'),
        ("TopicArn", "arn:aws:sns:us-east-1:999999999999:other-topic"),
        ("Timestamp", "2024-05-01T12:00:01.000Z"),
        ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf325"),
        ("Subject", "added after signing"),
        ("Type", "SubscriptionConfirmation"),
    ],
)
def test_tampered_message_is_rejected(server, validator, signing, field, value):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
    envelope[field] = value

    with pytest.raises(SnsSignatureError) as raised:
        validator.validate(envelope)
    assert type(raised.value) is SnsSignatureError


def test_removed_subject_is_rejected(server, validator, signing):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url, "a subject"), signing.private_key, "1")
    del envelope["Subject"]

    with pytest.raises(SnsSignatureError, match="does not match"):
        validator.validate(envelope)


def test_signature_by_another_key_is_rejected(server, validator, signing):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), new_rsa_key(), "2")

    # Depending on the two moduli, the foreign signature is out of range or recovers the wrong block.
    with pytest.raises(SnsSignatureError, match=r"does not match|out of range"):
        validator.validate(envelope)


@pytest.mark.parametrize("signed_as, claimed", [("1", "2"), ("2", "1")])
def test_swapped_signature_version_is_rejected(server, validator, signing, signed_as, claimed):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, signed_as)
    envelope["SignatureVersion"] = claimed

    with pytest.raises(SnsSignatureError, match="does not match"):
        validator.validate(envelope)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda envelope: envelope.pop("Signature"), id="missing Signature"),
        pytest.param(lambda envelope: envelope.update(Signature=""), id="empty Signature"),
        pytest.param(lambda envelope: envelope.update(Signature=None), id="null Signature"),
        pytest.param(lambda envelope: envelope.update(Signature="bm90*YmFzZTY0"), id="bad base64 character"),
        pytest.param(lambda envelope: envelope.update(Signature=envelope["Signature"][:-3]), id="bad padding"),
        pytest.param(lambda envelope: envelope.update(Signature="é" + envelope["Signature"]), id="non-ASCII"),
        pytest.param(lambda envelope: envelope.pop("SignatureVersion"), id="unsigned: no SignatureVersion"),
        pytest.param(lambda envelope: envelope.update(SignatureVersion="3"), id="SignatureVersion 3"),
        pytest.param(lambda envelope: envelope.update(SignatureVersion=2), id="SignatureVersion not a string"),
        pytest.param(lambda envelope: envelope.update(SignatureVersion=["2"]), id="SignatureVersion a list"),
        pytest.param(lambda envelope: envelope.update(Type="Other"), id="unknown Type"),
        pytest.param(lambda envelope: envelope.pop("Timestamp"), id="signed field missing"),
        pytest.param(lambda envelope: envelope.update(Message={"a": 1}), id="signed field not a string"),
        pytest.param(lambda envelope: envelope.update(Message="\ud800"), id="lone surrogate"),
    ],
)
def test_unsigned_or_malformed_message_is_rejected_without_fetching(server, validator, signing, change):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
    change(envelope)

    with pytest.raises(SnsSignatureError) as raised:
        validator.validate(envelope)
    assert type(raised.value) is SnsSignatureError
    assert server.connections == 0


@pytest.mark.parametrize("not_a_dict", [None, [], "{}", 42])
def test_envelope_that_is_not_an_object_is_rejected(validator, not_a_dict):
    with pytest.raises(SnsSignatureError, match="not a JSON object"):
        validator.validate(not_a_dict)


# ---------------------------------------------------------------------------------------------------------
# Certificate URL checks


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda port: f"http://127.0.0.1:{port}{CERT_PATH}", id="http"),
        pytest.param(lambda port: f"https://localhost:{port}{CERT_PATH}", id="host not matching"),
        pytest.param(lambda port: f"https://user@127.0.0.1:{port}{CERT_PATH}", id="userinfo"),
        pytest.param(lambda port: f"https://user:pw@127.0.0.1:{port}{CERT_PATH}", id="userinfo with password"),
        pytest.param(lambda port: f"https://@127.0.0.1:{port}{CERT_PATH}", id="empty userinfo"),
        pytest.param(lambda port: f"https://:@127.0.0.1:{port}{CERT_PATH}", id="empty user and password"),
        pytest.param(lambda port: f"https://127.0.0.1:{port}{CERT_PATH}.txt", id="not .pem"),
        pytest.param(lambda port: f"https://127.0.0.1:{port}/pem", id="no extension"),
        pytest.param(lambda port: f"https://127.0.0.1:{port}{CERT_PATH}?x=1", id="query"),
        pytest.param(lambda port: f"https://127.0.0.1:{port}/a b.pem", id="space"),
        pytest.param(lambda port: f"https://127.0.0.1:{port}x{CERT_PATH}", id="bad port"),
        pytest.param(lambda port: "", id="empty"),
        pytest.param(lambda port: None, id="missing"),
    ],
)
def test_untrusted_cert_url_is_rejected_without_any_request(server, validator, signing, make_url):
    # Every one of these paths is served, so a fetch would succeed: only the URL check stops it.
    for path in (CERT_PATH, CERT_PATH + ".txt", "/pem", "/a%20b.pem"):
        server.serve(path, signing.pem)
    envelope = sign_sns_message(notification(make_url(server.port)), signing.private_key, "2")

    with pytest.raises(SnsSignatureError) as raised:
        validator.validate(envelope)

    assert type(raised.value) is SnsSignatureError
    assert server.connections == 0
    assert server.requests == []


@pytest.fixture
def routing_nowhere_proxy():
    """A proxy that records every CONNECT and routes none: shows whether a URL was fetched."""
    proxy = ConnectProxy(PROXY_USER, PROXY_PASSWORD, routes={})
    yield proxy
    proxy.close()


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
        "https://sns.us-east-1.amazonaws.com\\@evil.example/x.pem",
        "https://sns.us-east-1.amazonaws.com%2eevil.example/x.pem",
        "https://snsXus-east-1.amazonaws.com/x.pem",
        "https://sns.us_east_1.amazonaws.com/x.pem",
        "https://sns.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com./x.pem",
        "https://sns.us-east-1.amazonaws.com\n/x.pem",
        "https://sns.us-east-1.amazonaws.com/x.pem\n",
        "https://sns.us-east-1.amazonaws.com/x.pem#frag",
        "https://sns.us-east-1.amazonaws.com/x.pem/",
        "ftp://sns.us-east-1.amazonaws.com/x.pem",
        "//sns.us-east-1.amazonaws.com/x.pem",
    ],
)
def test_default_host_pattern_rejects_lookalike_urls(routing_nowhere_proxy, signing, cert_url):
    validator = SnsSignatureValidator(proxy_url=f"http://127.0.0.1:{routing_nowhere_proxy.port}")
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")

    with pytest.raises(SnsSignatureError) as raised:
        validator.validate(envelope)

    assert type(raised.value) is SnsSignatureError
    assert routing_nowhere_proxy.requests == []


@pytest.mark.parametrize(
    "cert_url, connect_target",
    [
        (f"https://{AWS_CERT_HOST}{AWS_CERT_PATH}", f"{AWS_CERT_HOST}:443"),
        ("https://SNS.EU-WEST-1.AMAZONAWS.COM/cert.pem", "sns.eu-west-1.amazonaws.com:443"),
        ("https://sns.cn-north-1.amazonaws.com.cn/cert.pem", "sns.cn-north-1.amazonaws.com.cn:443"),
    ],
)
def test_default_host_pattern_accepts_sns_hosts(routing_nowhere_proxy, signing, cert_url, connect_target):
    # The counterpart of the test above: these pass the URL check and are fetched (the proxy has no
    # route, so the fetch fails, as a transient error).
    validator = SnsSignatureValidator(proxy_url=f"http://127.0.0.1:{routing_nowhere_proxy.port}")
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")

    with pytest.raises(SnsCertificateFetchError):
        validator.validate(envelope)

    assert routing_nowhere_proxy.requests[0].target == connect_target


# ---------------------------------------------------------------------------------------------------------
# Certificate validity, key type and caching


def _utc(offset: datetime.timedelta) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + offset


@pytest.mark.parametrize(
    "not_before, not_after",
    [
        pytest.param(_utc(datetime.timedelta(days=-30)), _utc(datetime.timedelta(days=-1)), id="expired"),
        pytest.param(_utc(datetime.timedelta(days=1)), _utc(datetime.timedelta(days=30)), id="not yet valid"),
    ],
)
def test_certificate_outside_its_validity_period_is_rejected(server, validator, ca, not_before, not_after):
    outdated = ca.issue_signing_cert(not_before=not_before, not_after=not_after)
    cert_url = server.serve(CERT_PATH, outdated.pem)
    envelope = sign_sns_message(notification(cert_url), outdated.private_key, "2")

    with pytest.raises(SnsSignatureError, match="expired or not yet valid") as raised:
        validator.validate(envelope)
    assert type(raised.value) is SnsSignatureError


def test_non_rsa_certificate_is_rejected(server, validator, ca, signing):
    ec_certificate = ca.issue_signing_cert(ec.generate_private_key(ec.SECP256R1()))
    cert_url = server.serve(CERT_PATH, ec_certificate.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")

    with pytest.raises(SnsSignatureError, match="not an RSA key"):
        validator.validate(envelope)


def test_short_rsa_key_is_rejected(server, validator, ca):
    weak = ca.issue_signing_cert(new_rsa_key(1024))
    cert_url = server.serve(CERT_PATH, weak.pem)
    envelope = sign_sns_message(notification(cert_url), weak.private_key, "2")

    with pytest.raises(SnsSignatureError, match="shorter than 2048 bits"):
        validator.validate(envelope)


def test_certificate_is_fetched_once_and_cached_per_url(server, validator, signing):
    first_url = server.serve(CERT_PATH, signing.pem)
    second_url = server.serve("/other.pem", signing.pem)

    for _ in range(3):
        validator.validate(sign_sns_message(notification(first_url), signing.private_key, "2"))
    assert server.requests == [CERT_PATH]

    validator.validate(sign_sns_message(notification(second_url), signing.private_key, "1"))
    validator.validate(sign_sns_message(notification(first_url), signing.private_key, "1"))
    assert server.requests == [CERT_PATH, "/other.pem"]


@pytest.mark.parametrize(
    "clock_advance, expected_fetches",
    [
        (datetime.timedelta(hours=23, minutes=59), 1),
        (datetime.timedelta(hours=24, seconds=1), 2),
    ],
)
def test_cached_certificate_is_refetched_after_24_hours(
    server, validator, signing, monkeypatch, clock_advance, expected_fetches
):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
    validator.validate(envelope)

    later = time.time() + clock_advance.total_seconds()
    monkeypatch.setattr(sns_signature, "_current_time", lambda: later)
    validator.validate(envelope)

    assert len(server.requests) == expected_fetches


def test_cached_certificate_is_refetched_once_expired(server, validator, ca, monkeypatch):
    short_lived = ca.issue_signing_cert(not_after=_utc(datetime.timedelta(hours=1)))
    cert_url = server.serve(CERT_PATH, short_lived.pem)
    envelope = sign_sns_message(notification(cert_url), short_lived.private_key, "2")
    validator.validate(envelope)

    two_hours_later = time.time() + 7200
    monkeypatch.setattr(sns_signature, "_current_time", lambda: two_hours_later)
    with pytest.raises(SnsSignatureError, match="expired"):
        validator.validate(envelope)

    assert server.requests == [CERT_PATH, CERT_PATH]


def test_cache_is_bounded_least_recently_used_first(server, validator, signing):
    urls = [server.serve(f"/cert-{index}.pem", signing.pem) for index in range(CERTIFICATE_CACHE_SIZE + 1)]
    for url in urls:
        validator.validate(sign_sns_message(notification(url), signing.private_key, "2"))
    assert len(server.requests) == CERTIFICATE_CACHE_SIZE + 1

    validator.validate(sign_sns_message(notification(urls[-1]), signing.private_key, "2"))
    assert len(server.requests) == CERTIFICATE_CACHE_SIZE + 1  # still cached
    validator.validate(sign_sns_message(notification(urls[0]), signing.private_key, "2"))
    assert server.requests[-1] == "/cert-0.pem"  # evicted by the 33rd, fetched again
    assert len(server.requests) == CERTIFICATE_CACHE_SIZE + 2


# ---------------------------------------------------------------------------------------------------------
# Fetching: TLS, proxy, HTTP errors


def test_server_certificate_from_another_ca_fails_as_fetch_error(tmp_path, ca, signing):
    other_ca = LocalCA(tmp_path)
    impostor = CertificateServer(*other_ca.issue_server_cert("127.0.0.1"))
    try:
        cert_url = impostor.serve(CERT_PATH, signing.pem)
        envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
        trusting_our_ca = SnsSignatureValidator(cert_host_pattern=LOCAL_HOST_PATTERN, ca_bundle=ca.ca_bundle_path)
        trusting_the_system = SnsSignatureValidator(cert_host_pattern=LOCAL_HOST_PATTERN)
        trusting_other_ca = SnsSignatureValidator(
            cert_host_pattern=LOCAL_HOST_PATTERN, ca_bundle=other_ca.ca_bundle_path
        )

        with pytest.raises(SnsCertificateFetchError, match="CERTIFICATE_VERIFY_FAILED"):
            trusting_our_ca.validate(envelope)
        with pytest.raises(SnsCertificateFetchError, match="CERTIFICATE_VERIFY_FAILED"):
            trusting_the_system.validate(envelope)
        assert impostor.requests == []
        trusting_other_ca.validate(envelope)  # the same server is fine once its CA is trusted
        assert impostor.requests == [CERT_PATH]
    finally:
        impostor.close()


def test_server_certificate_for_another_host_fails_as_fetch_error(ca, signing):
    wrong_name = CertificateServer(*ca.issue_server_cert(AWS_CERT_HOST))  # no 127.0.0.1 in it
    try:
        cert_url = wrong_name.serve(CERT_PATH, signing.pem)
        envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
        validator = SnsSignatureValidator(cert_host_pattern=LOCAL_HOST_PATTERN, ca_bundle=ca.ca_bundle_path)

        with pytest.raises(SnsCertificateFetchError, match=r"127\.0\.0\.1"):
            validator.validate(envelope)
        assert wrong_name.requests == []
    finally:
        wrong_name.close()


@pytest.fixture
def aws_proxy(server):
    """A proxy that takes CONNECTs for the real SNS host to the local server."""
    proxy = ConnectProxy(PROXY_USER, PROXY_PASSWORD, routes={f"{AWS_CERT_HOST}:443": ("127.0.0.1", server.port)})
    yield proxy
    proxy.close()


def test_certificate_is_fetched_through_connect_proxy_with_basic_auth(server, aws_proxy, ca, signing):
    server.serve(AWS_CERT_PATH, signing.pem)
    validator = SnsSignatureValidator(  # the default (AWS) host pattern
        proxy_url=f"http://{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}@127.0.0.1:{aws_proxy.port}",
        ca_bundle=ca.ca_bundle_path,
    )
    envelope = sign_sns_message(notification(f"https://{AWS_CERT_HOST}{AWS_CERT_PATH}"), signing.private_key, "2")

    validator.validate(envelope)
    # The URL is normalised before use: the same certificate in other letter case is the same cache entry.
    envelope["SigningCertURL"] = f"https://{AWS_CERT_HOST.upper()}{AWS_CERT_PATH}"
    validator.validate(envelope)

    assert aws_proxy.requests == [ProxyRequest("CONNECT", f"{AWS_CERT_HOST}:443", authorized=True)]
    assert server.requests == [AWS_CERT_PATH]


def test_proxy_password_never_appears_in_errors_or_logs(server, aws_proxy, ca, signing, closed_port, caplog):
    caplog.set_level(logging.DEBUG)
    server.serve(AWS_CERT_PATH, signing.pem)
    wrong_password = "n0t-the:pr0xy@password"
    envelope = sign_sns_message(notification(f"https://{AWS_CERT_HOST}{AWS_CERT_PATH}"), signing.private_key, "2")
    errors = []
    for proxy_port, password in ((aws_proxy.port, wrong_password), (closed_port, PROXY_PASSWORD)):
        validator = SnsSignatureValidator(
            proxy_url=f"http://{PROXY_USER}:{quote(password, safe='')}@127.0.0.1:{proxy_port}",
            ca_bundle=ca.ca_bundle_path,
        )
        with pytest.raises(SnsCertificateFetchError) as raised:
            validator.validate(envelope)
        errors.append((formatted(raised.value), password))

    # Two CONNECTs: the validator retries once.
    assert set(aws_proxy.requests) == {ProxyRequest("CONNECT", f"{AWS_CERT_HOST}:443", authorized=False)}
    assert "407" in errors[0][0]
    assert "refused" in errors[1][0]
    for text, password in errors:
        for secret in secret_forms(password):
            assert secret not in text
            assert secret not in caplog.text
    assert server.requests == []


@pytest.mark.parametrize(
    "proxy_url",
    ["socks5://ta-proxy:hunter2-secret@127.0.0.1:1080", "http://ta-proxy:hunter2-secret@[::1/"],
)
def test_unusable_proxy_url_is_a_value_error_without_the_password(proxy_url):
    with pytest.raises(ValueError) as raised:
        SnsSignatureValidator(proxy_url=proxy_url)
    assert "hunter2" not in formatted(raised.value)


def test_missing_ca_bundle_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        SnsSignatureValidator(ca_bundle=str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("status", [404, 403, 500, 503])
def test_http_error_status_is_a_fetch_error(server, validator, signing, status):
    cert_url = server.serve(CERT_PATH, b"<Error/>", status=status)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")

    with pytest.raises(SnsCertificateFetchError, match=f"HTTP status {status}"):
        validator.validate(envelope)


def test_redirect_is_not_followed(server, validator, signing):
    server.serve("/elsewhere.pem", signing.pem)
    cert_url = server.serve(CERT_PATH, b"", status=302, headers=[("Location", server.url("/elsewhere.pem"))])
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")

    with pytest.raises(SnsCertificateFetchError, match="HTTP status 302"):
        validator.validate(envelope)
    assert server.requests == [CERT_PATH]


def test_slow_server_times_out_as_fetch_error(server, ca, signing):
    cert_url = server.serve(CERT_PATH, signing.pem, delay=3.0)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
    validator = SnsSignatureValidator(cert_host_pattern=LOCAL_HOST_PATTERN, ca_bundle=ca.ca_bundle_path, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(SnsCertificateFetchError, match="timed out"):
        validator.validate(envelope)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>captive portal</html>", id="not PEM"),
        pytest.param(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", id="PEM, not DER"),
    ],
)
def test_served_document_that_is_not_a_certificate_is_rejected(server, validator, signing, body):
    cert_url = server.serve(CERT_PATH, body)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")

    with pytest.raises(SnsSignatureError, match=r"not a PEM certificate|malformed") as raised:
        validator.validate(envelope)
    assert type(raised.value) is SnsSignatureError


def test_oversized_certificate_document_is_rejected(server, validator, signing):
    # A valid certificate behind padding: only the size cap rejects it.
    cert_url = server.serve(CERT_PATH, b"\n" * MAX_CERTIFICATE_BYTES + signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")

    with pytest.raises(SnsSignatureError, match="larger than a certificate can be") as raised:
        validator.validate(envelope)
    assert type(raised.value) is SnsSignatureError


# ---------------------------------------------------------------------------------------------------------
# RSA PKCS#1 v1.5: exact comparison, no padding tricks


def _encoded_message(key_length: int, digest_info: bytes) -> bytes:
    return b"\x00\x01" + b"\xff" * (key_length - len(digest_info) - 3) + b"\x00" + digest_info


def _cube_root_ceiling(value: int) -> int:
    root = 1 << ((value.bit_length() + 2) // 3)  # at least the real root
    while True:
        smaller = (2 * root + value // (root * root)) // 3
        if smaller >= root:
            break
        root = smaller
    while root**3 < value:
        root += 1
    return root


def _loosely_parsed_digest_info(block: bytes, length: int) -> bytes:
    """What a flawed verifier extracts: skip 00 01 FF..FF 00, take DigestInfo, ignore what follows."""
    assert block[:2] == b"\x00\x01"
    separator = block.index(b"\x00", 2)
    assert set(block[2:separator]) == {0xFF}
    return block[separator + 1 : separator + 1 + length]


def test_e3_signature_forgery_with_garbage_after_digest_info_is_rejected(server, validator, ca):
    # Bleichenbacher 2006: with e=3 and a verifier that ignores bytes after the hash, a cube root of
    # "00 01 FF.. 00 DigestInfo hash <garbage>" is a valid-looking signature, made without the private key.
    key = new_rsa_key(3072, public_exponent=3)
    e3_certificate = ca.issue_signing_cert(key)
    cert_url = server.serve(CERT_PATH, e3_certificate.pem)
    envelope = sign_sns_message(notification(cert_url), key, "2")
    validator.validate(envelope)  # control: e=3 keys themselves are fine

    modulus = key.public_key().public_numbers().n
    key_length = (modulus.bit_length() + 7) // 8
    digest_info = SHA256_DIGEST_INFO + hashlib.sha256(sns_string_to_sign(envelope)).digest()
    prefix = b"\x00\x01" + b"\xff" * 8 + b"\x00" + digest_info
    garbage_bits = (key_length - len(prefix)) * 8
    forged = _cube_root_ceiling(int.from_bytes(prefix, "big") << garbage_bits)
    block = (forged**3).to_bytes(key_length, "big")
    assert forged**3 < modulus  # so the verifier's pow(s, 3, n) recovers exactly this block
    assert _loosely_parsed_digest_info(block, len(digest_info)) == digest_info  # fools a loose parser

    envelope["Signature"] = base64.b64encode(forged.to_bytes(key_length, "big")).decode("ascii")
    with pytest.raises(SnsSignatureError, match="does not match"):
        validator.validate(envelope)


def _malformed_encodings(key_length: int, digest: bytes) -> Dict[str, bytes]:
    """Blocks a loose verifier might accept for `digest`; only the exact encoding is valid."""
    correct = _encoded_message(key_length, SHA256_DIGEST_INFO + digest)
    minimal_padding = b"\x00\x01" + b"\xff" * 8 + b"\x00" + SHA256_DIGEST_INFO + digest
    digest_info_without_null = bytes.fromhex("302f300b0609608648016503040201") + b"\x04\x20" + digest
    return {
        "garbage after the hash": minimal_padding + b"\x5a" * (key_length - len(minimal_padding)),
        "a non-FF padding byte": correct[:20] + b"\xfe" + correct[21:],
        "block type 2": b"\x00\x02" + correct[2:],
        "DigestInfo without NULL parameters": _encoded_message(key_length, digest_info_without_null),
        "SHA1 algorithm around a SHA256 hash": _encoded_message(key_length, SHA1_DIGEST_INFO[:-1] + b"\x20" + digest),
        "last hash byte changed": correct[:-1] + bytes([correct[-1] ^ 1]),
    }


@pytest.mark.parametrize("variant", list(_malformed_encodings(256, bytes(32))))
def test_malformed_encoded_message_is_rejected_even_with_the_real_key(server, validator, signing, variant):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
    key_length = signing.private_key.key_size // 8
    digest = hashlib.sha256(sns_string_to_sign(envelope)).digest()
    envelope["Signature"] = raw_rsa_signature(
        signing.private_key, _encoded_message(key_length, SHA256_DIGEST_INFO + digest)
    )
    validator.validate(envelope)  # control: the raw private operation on the right block is accepted

    envelope["Signature"] = raw_rsa_signature(signing.private_key, _malformed_encodings(key_length, digest)[variant])
    with pytest.raises(SnsSignatureError, match="does not match"):
        validator.validate(envelope)


def test_signature_of_wrong_length_or_out_of_range_is_rejected(server, validator, signing):
    cert_url = server.serve(CERT_PATH, signing.pem)
    envelope = sign_sns_message(notification(cert_url), signing.private_key, "2")
    signature = base64.b64decode(envelope["Signature"])
    modulus = signing.private_key.public_key().public_numbers().n

    for bad in (b"\x00" + signature, signature[1:], modulus.to_bytes(len(signature), "big")):
        envelope["Signature"] = base64.b64encode(bad).decode("ascii")
        with pytest.raises(SnsSignatureError, match=r"key length|out of range"):
            validator.validate(envelope)


# ---------------------------------------------------------------------------------------------------------
# DER parser


def test_der_parser_reads_key_and_both_time_encodings(ca):
    key = new_rsa_key()
    issued = ca.issue_signing_cert(
        key,
        not_before=datetime.datetime(1990, 1, 1, tzinfo=datetime.timezone.utc),
        not_after=datetime.datetime(2060, 1, 1, 12, 30, 45, tzinfo=datetime.timezone.utc),
    )
    der = base64.b64decode(b"".join(issued.pem.splitlines()[1:-1]))
    assert b"\x17\x0d900101000000Z" in der  # RFC 5280: UTCTime before 2050 ...
    assert b"\x18\x0f20600101123045Z" in der  # ... GeneralizedTime from 2050

    parsed = parse_der_certificate(der)

    assert parsed.modulus == key.public_key().public_numbers().n
    assert parsed.public_exponent == 65537
    assert parsed.not_before == datetime.datetime(1990, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
    assert parsed.not_after == datetime.datetime(2060, 1, 1, 12, 30, 45, tzinfo=datetime.timezone.utc).timestamp()
    assert load_pem_certificate(b"leading text\n" + issued.pem + b"trailing") == parsed


def _der(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        length = bytes([len(content)])
    else:
        size = (len(content).bit_length() + 7) // 8
        length = bytes([0x80 | size]) + len(content).to_bytes(size, "big")
    return bytes([tag]) + length + content


RSA_OID = bytes.fromhex("2a864886f70d010101")
MODULUS_2048 = b"\x00" + b"\xd3" * 256


def _synthetic_certificate(
    modulus: bytes = MODULUS_2048,
    exponent: bytes = b"\x01\x00\x01",
    not_before: Tuple[int, bytes] = (0x17, b"240101000000Z"),
    not_after: Tuple[int, bytes] = (0x18, b"20600101000000Z"),
    algorithm: bytes = RSA_OID,
    unused_bits: bytes = b"\x00",
) -> bytes:
    """A certificate built field by field, to break one field at a time (its signature is not real)."""
    rsa_key = _der(0x30, _der(0x02, modulus) + _der(0x02, exponent))
    key_info = _der(0x30, _der(0x30, _der(0x06, algorithm) + b"\x05\x00") + _der(0x03, unused_bits + rsa_key))
    validity = _der(0x30, _der(*not_before) + _der(*not_after))
    name = _der(0x30, _der(0x31, _der(0x30, _der(0x06, b"\x55\x04\x03") + _der(0x0C, b"sns.amazonaws.com"))))
    signature_algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d01010b")) + b"\x05\x00")
    tbs = _der(
        0x30,
        _der(0xA0, _der(0x02, b"\x02")) + _der(0x02, b"\x01") + signature_algorithm + name + validity + name + key_info,
    )
    return _der(0x30, tbs + signature_algorithm + _der(0x03, b"\x00" + b"\x11" * 256))


def _timestamp(*fields: int) -> float:
    return datetime.datetime(*fields, tzinfo=datetime.timezone.utc).timestamp()


@pytest.mark.parametrize(
    "fields, not_before, not_after",
    [
        ({}, _timestamp(2024, 1, 1), _timestamp(2060, 1, 1)),
        ({"not_before": (0x17, b"500101000000Z")}, _timestamp(1950, 1, 1), _timestamp(2060, 1, 1)),
        ({"not_after": (0x17, b"491231235959Z")}, _timestamp(2024, 1, 1), _timestamp(2049, 12, 31, 23, 59, 59)),
        ({"not_after": (0x18, b"99991231235959Z")}, _timestamp(2024, 1, 1), _timestamp(9999, 12, 31, 23, 59, 59)),
    ],
)
def test_der_parser_reads_synthetic_certificate(fields, not_before, not_after):
    parsed = parse_der_certificate(_synthetic_certificate(**fields))

    assert parsed == (int.from_bytes(MODULUS_2048, "big"), 65537, not_before, not_after)


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"modulus": MODULUS_2048[1:]}, "modulus is not a positive integer"),
        ({"modulus": b""}, "modulus is not a positive integer"),
        ({"modulus": b"\x00\x53" + MODULUS_2048[2:]}, "modulus is not minimally encoded"),
        ({"modulus": b"\x00" + b"\xd3" * 128}, "shorter than 2048 bits"),
        ({"exponent": b"\x01\x00\x00"}, "exponent is invalid"),
        ({"exponent": b"\x01"}, "exponent is invalid"),
        ({"exponent": MODULUS_2048}, "exponent is invalid"),
        ({"exponent": b"\xff"}, "exponent is not a positive integer"),
        ({"algorithm": bytes.fromhex("2a8648ce3d0201")}, "not an RSA key"),
        ({"unused_bits": b"\x01"}, "not a whole number of bytes"),
        ({"unused_bits": b""}, "not a whole number of bytes"),
        ({"not_before": (0x17, b"2401010000Z")}, "not a UTCTime"),
        ({"not_before": (0x17, b"240101000000+0100")}, "not a UTCTime"),
        ({"not_after": (0x18, b"20600101000000.5Z")}, "not a GeneralizedTime"),
        ({"not_after": (0x18, "２０６００１０１000000Z".encode())}, "not a GeneralizedTime"),
        ({"not_before": (0x17, b"241301000000Z")}, "not a valid date"),
        ({"not_after": (0x18, b"00000101000000Z")}, "not a valid date"),
        ({"not_before": (0x04, b"240101000000Z")}, "unexpected type"),
    ],
)
def test_der_parser_rejects_invalid_fields(fields, error):
    with pytest.raises(SnsSignatureError, match=error):
        parse_der_certificate(_synthetic_certificate(**fields))


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda der: der + b"\x00", "unexpected data after Certificate"),
        (lambda der: b"\x30\x83\x00" + der[2:], "non-minimal length"),  # 30 82 LL LL -> 30 83 00 LL LL
        (lambda der: b"\x30\x80" + der[4:] + b"\x00\x00", "invalid length"),  # BER indefinite length
        (lambda der: b"\x30\x85\x00\x00\x00" + der[2:], "invalid length"),
        (lambda der: b"\x30\x81\x05" + der[4:], "non-minimal length"),
        (lambda der: der[:-1], "truncated"),
        (lambda der: b"\x3f" + der[1:], "unexpected type"),
        (lambda der: b"", "missing or truncated"),
    ],
)
def test_der_parser_rejects_non_der_encodings(change, error):
    der = _synthetic_certificate()
    assert der[:2] == b"\x30\x82"  # what the changes above assume

    with pytest.raises(SnsSignatureError, match=error):
        parse_der_certificate(change(der))


@pytest.fixture(scope="module")
def valid_der(signing) -> bytes:
    return base64.b64decode(b"".join(signing.pem.splitlines()[1:-1]))


def _parses_or_rejects(der: bytes) -> None:
    # SnsSignatureError is the only exception allowed; anything else fails the test.
    with contextlib.suppress(SnsSignatureError):
        parse_der_certificate(der)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=3000))
def test_der_parser_raises_only_its_own_error_on_random_bytes(data):
    _parses_or_rejects(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_der_parser_raises_only_its_own_error_on_mutated_certificates(valid_der, data):
    mutated = bytearray(valid_der)
    for _ in range(data.draw(st.integers(1, 4))):
        operation = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        index = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if operation == "flip" and mutated:
            mutated[index] = data.draw(st.integers(0, 255))
        elif operation == "truncate":
            del mutated[index:]
        elif operation == "insert":
            mutated[index:index] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del mutated[index : index + data.draw(st.integers(1, 16))]
    _parses_or_rejects(bytes(mutated))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([b"", b"\n", b"=", b"\x00", b"-----END CERTIFICATE-----"]))
def test_pem_loader_raises_only_its_own_error(body, tail):
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(body) + tail + b"-----END CERTIFICATE-----\n"
    with pytest.raises(SnsSignatureError):
        load_pem_certificate(pem)  # random bytes are never a certificate with a 2048-bit RSA key


@pytest.fixture(scope="module")
def fuzz_validator(closed_port) -> SnsSignatureValidator:
    """Default host pattern; any fetch goes to a proxy port that refuses connections."""
    return SnsSignatureValidator(proxy_url=f"http://127.0.0.1:{closed_port}", timeout=1.0)


_FIELD_VALUES = st.one_of(
    st.none(), st.text(max_size=30), st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    envelope=st.fixed_dictionaries(
        {},
        optional={
            "Type": st.one_of(st.sampled_from(["Notification", "SubscriptionConfirmation"]), _FIELD_VALUES),
            "SignatureVersion": st.one_of(st.sampled_from(["1", "2"]), _FIELD_VALUES),
            "Signature": st.one_of(
                st.binary(max_size=300).map(lambda raw: base64.b64encode(raw).decode()), _FIELD_VALUES
            ),
            "SigningCertURL": st.one_of(
                st.sampled_from([f"https://{AWS_CERT_HOST}/x.pem", "https://sns.x.amazonaws.com.cn/a/b.pem"]),
                st.text(max_size=40).map(lambda path: f"https://{AWS_CERT_HOST}/{path}"),
                _FIELD_VALUES,
            ),
            "Message": _FIELD_VALUES,
            "MessageId": _FIELD_VALUES,
            "Subject": _FIELD_VALUES,
            "Timestamp": _FIELD_VALUES,
            "TopicArn": _FIELD_VALUES,
            "Token": _FIELD_VALUES,
            "SubscribeURL": _FIELD_VALUES,
        },
    )
)
def test_validate_raises_only_its_own_errors_on_arbitrary_envelopes(fuzz_validator, envelope):
    with pytest.raises(SnsSignatureError):
        fuzz_validator.validate(envelope)  # nothing here is validly signed


def test_signatures_made_by_cryptography_match_the_harness_canonical_string(signing):
    # Guards the harness itself: its canonical string is what `cryptography` verifies against.
    envelope = sign_sns_message(notification("https://x/y.pem", "s"), signing.private_key, "2")
    signing.private_key.public_key().verify(
        base64.b64decode(envelope["Signature"]), sns_string_to_sign(envelope), padding.PKCS1v15(), SHA256()
    )
    assert sns_string_to_sign(envelope).startswith(b"Message\n")
    assert b"Subject\ns\nTimestamp\n" in sns_string_to_sign(envelope)


def test_concurrent_first_uses_of_a_certificate_fetch_it_once(server, signing, validator):
    """Workers validating messages of one topic at the same moment wait for a single fetch."""
    import concurrent.futures

    url = server.serve("/concurrent.pem", signing.pem, delay=0.3)
    messages = [sign_sns_message(notification(url, subject=str(i)), signing.private_key, "2") for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(validator.validate, messages))
    assert server.requests.count("/concurrent.pem") == 1
