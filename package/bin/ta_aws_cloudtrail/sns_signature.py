"""Amazon SNS message signature validation, in pure Python.

SNS signs every message it delivers with RSA PKCS#1 v1.5 (SignatureVersion "1": SHA1, "2": SHA256) and
publishes the signing certificate at SigningCertURL on its own HTTPS host. This module checks that URL,
fetches the certificate over verified TLS (through the proxy if there is one), caches it, and verifies
the signature with a minimal DER reader and integer arithmetic: the add-on's lib/ must stay pure Python,
so `cryptography` is not available.

Two outcomes for the caller:
- SnsSignatureError: the message is unsigned, forged, malformed or points at an untrusted certificate
  URL. Reject it.
- SnsCertificateFetchError (a subclass): the certificate could not be fetched (network, TLS, HTTP
  status). Transient: leave the message for a later attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import urllib3

DEFAULT_CERT_HOST_PATTERN = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"
CERTIFICATE_CACHE_SIZE = 32
# A cached certificate is fetched again after this long, or as soon as it expires.
CERTIFICATE_CACHE_SECONDS = 24 * 3600
# SNS certificates are about 2 KB; anything much larger is not one.
MAX_CERTIFICATE_BYTES = 64 * 1024
MIN_RSA_KEY_BITS = 2048

_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SIGNED_FIELDS: Dict[str, Tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}
# Signed only when the message has it (SNS omits Subject when the publisher set none).
_OPTIONAL_SIGNED_FIELDS = frozenset({"Subject"})


class _SignatureScheme(NamedTuple):
    hash_name: str
    # DER of DigestInfo { AlgorithmIdentifier { oid, NULL }, OCTET STRING header }, the hash follows.
    digest_info_prefix: bytes


_SIGNATURE_SCHEMES: Dict[str, _SignatureScheme] = {
    "1": _SignatureScheme("sha1", bytes.fromhex("3021300906052b0e03021a05000414")),
    "2": _SignatureScheme("sha256", bytes.fromhex("3031300d060960864801650304020105000420")),
}

_URL_CHARACTERS = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces or control characters
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*)-----END CERTIFICATE-----")
_UTC_TIME = re.compile(rb"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z")
_GENERALIZED_TIME = re.compile(rb"(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z")

_TAG_INTEGER = 0x02
_TAG_BIT_STRING = 0x03
_TAG_OBJECT_IDENTIFIER = 0x06
_TAG_UTC_TIME = 0x17
_TAG_GENERALIZED_TIME = 0x18
_TAG_SEQUENCE = 0x30
_TAG_EXPLICIT_VERSION = 0xA0
_OID_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1


class SnsSignatureError(Exception):
    """The SNS message is invalid, unsigned or forged, or its certificate URL is not trusted: reject it."""


class SnsCertificateFetchError(SnsSignatureError):
    """The signing certificate could not be fetched (network, TLS, HTTP status): retry later."""


class SigningCertificate(NamedTuple):
    """What signature checks need from an X.509 certificate with an RSA key."""

    modulus: int
    public_exponent: int
    not_before: float  # seconds since the epoch, UTC
    not_after: float


class _CachedCertificate(NamedTuple):
    certificate: SigningCertificate
    refresh_at: float


def _current_time() -> float:
    """Now, in seconds since the epoch (one place, so tests can move the clock)."""
    return time.time()


class SnsSignatureValidator:
    """Validates SNS envelopes; safe to share between threads (certificates are cached per URL)."""

    def __init__(
        self,
        *,
        cert_host_pattern: str = DEFAULT_CERT_HOST_PATTERN,
        proxy_url: Optional[str] = None,
        ca_bundle: Optional[str] = None,
        timeout: float = 10.0,
    ) -> None:
        """`proxy_url` is http(s)://[user:password@]host:port (user and password percent-encoded).

        Raises ValueError for an unusable proxy URL or a missing CA bundle file.
        """
        self._cert_host = re.compile(cert_host_pattern)
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ValueError(f"The CA bundle {ca_bundle!r} does not exist or is not a file.")
        self._secrets: List[str] = []
        pool_options = {
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca_bundle,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": urllib3.Retry(total=1),  # one retry for a network hiccup
            "maxsize": 4,
        }
        if proxy_url:
            self._http: urllib3.PoolManager = self._proxy_manager(proxy_url, pool_options)
        else:
            self._http = urllib3.PoolManager(**pool_options)
        self._cache: OrderedDict[str, _CachedCertificate] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._fetch_locks: Dict[str, threading.Lock] = {}

    def validate(self, envelope: dict) -> None:
        """Returns if `envelope` (the parsed SNS JSON) carries a valid SNS signature, raises otherwise.

        Raises SnsCertificateFetchError when the certificate could not be fetched (retry later), and
        SnsSignatureError for everything else (reject).
        """
        if not isinstance(envelope, dict):
            raise SnsSignatureError("The SNS message is not a JSON object.")
        version = envelope.get("SignatureVersion")
        scheme = _SIGNATURE_SCHEMES.get(version) if isinstance(version, str) else None
        if scheme is None:
            raise SnsSignatureError(
                f"The SNS message has SignatureVersion {_shorten(version)}; only '1' and '2' are accepted."
            )
        signature = _decode_signature(envelope.get("Signature"))
        digest = hashlib.new(scheme.hash_name, _string_to_sign(envelope)).digest()
        certificate = self._certificate(self._checked_cert_url(envelope.get("SigningCertURL")))
        now = _current_time()
        if not certificate.not_before <= now <= certificate.not_after:
            raise SnsSignatureError("The SNS signing certificate is expired or not yet valid.")
        _verify_pkcs1_v1_5(certificate, scheme.digest_info_prefix + digest, signature)

    def _proxy_manager(self, proxy_url: str, pool_options: dict) -> urllib3.ProxyManager:
        # The credentials go in a header and the URL handed to urllib3 has none, so they cannot end up
        # in urllib3's error messages; our own messages are scrubbed as well.
        try:
            proxy = urllib3.util.parse_url(proxy_url)
        except ValueError:
            raise ValueError("The proxy URL is not a valid URL.") from None
        if proxy.scheme not in ("http", "https") or not proxy.host:
            raise ValueError("The proxy URL must be http://host:port or https://host:port.")
        proxy_headers = {}
        if proxy.auth:
            username, _, password = proxy.auth.partition(":")
            username, password = unquote(username), unquote(password)
            credentials = f"{username}:{password}"
            proxy_headers = urllib3.util.make_headers(proxy_basic_auth=credentials)
            if password:
                self._secrets = [
                    password,
                    quote(password, safe=""),
                    base64.b64encode(credentials.encode("utf-8")).decode("ascii"),
                ]
        proxy_without_credentials = urllib3.util.Url(scheme=proxy.scheme, host=proxy.host, port=proxy.port).url
        return urllib3.ProxyManager(proxy_without_credentials, proxy_headers=proxy_headers, **pool_options)

    def _checked_cert_url(self, url: object) -> str:
        """The certificate URL rebuilt from its checked parts, so what is fetched is what was checked."""
        if not isinstance(url, str) or not url:
            raise SnsSignatureError("The SNS message has no SigningCertURL.")
        if not _URL_CHARACTERS.fullmatch(url):
            raise SnsSignatureError("The SNS SigningCertURL contains spaces, control or non-ASCII characters.")
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise SnsSignatureError(f"The SNS SigningCertURL {_shorten(url)} is not https.")
        if "@" in parts.netloc:
            raise SnsSignatureError("The SNS SigningCertURL contains user information.")
        try:
            port = parts.port
        except ValueError:
            raise SnsSignatureError(f"The SNS SigningCertURL {_shorten(url)} has an invalid port.") from None
        host = parts.hostname or ""
        if not self._cert_host.fullmatch(host):
            raise SnsSignatureError(f"The SNS SigningCertURL {_shorten(url)} is not on an SNS host.")
        if not parts.path.endswith(".pem") or parts.query or parts.fragment:
            raise SnsSignatureError(f"The SNS SigningCertURL {_shorten(url)} is not a .pem file.")
        netloc = host if port is None else f"{host}:{port}"
        return urlunsplit(("https", netloc, parts.path, "", ""))

    def _certificate(self, url: str) -> SigningCertificate:
        with self._cache_lock:
            cached = self._cached(url)
            if cached is not None:
                return cached
            fetch_lock = self._fetch_locks.setdefault(url, threading.Lock())
        # One fetch per URL: the workers validating messages of the same topic at once wait for it.
        with fetch_lock:
            try:
                with self._cache_lock:
                    cached = self._cached(url)
                if cached is not None:
                    return cached
                return self._fetch_and_cache(url)
            finally:
                with self._cache_lock:  # waiters keep their reference; the map stays small
                    self._fetch_locks.pop(url, None)

    def _cached(self, url: str) -> Optional[SigningCertificate]:
        """The cached certificate if still fresh (call with the cache lock held)."""
        cached = self._cache.get(url)
        if cached is not None and _current_time() < cached.refresh_at:
            self._cache.move_to_end(url)
            return cached.certificate
        return None

    def _fetch_and_cache(self, url: str) -> SigningCertificate:
        certificate = load_pem_certificate(self._fetch(url))
        refresh_at = min(_current_time() + CERTIFICATE_CACHE_SECONDS, certificate.not_after)
        with self._cache_lock:
            self._cache[url] = _CachedCertificate(certificate, refresh_at)
            self._cache.move_to_end(url)
            while len(self._cache) > CERTIFICATE_CACHE_SIZE:
                self._cache.popitem(last=False)
        return certificate

    def _fetch(self, url: str) -> bytes:
        try:
            # redirect=False: a redirect could lead away from the host that was checked.
            response = self._http.request("GET", url, preload_content=False, redirect=False)
            try:
                body = response.read(MAX_CERTIFICATE_BYTES + 1)
            finally:
                # Closed, not reused: fetches are rare, and an oversized body must not stay on the connection.
                response.close()
                response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            detail = self._scrub(f"{type(reason).__name__}: {reason}")
            # `from None`: the chained urllib3 exception would add nothing the message lacks.
            raise SnsCertificateFetchError(f"Could not fetch the SNS signing certificate {url}: {detail}") from None
        if response.status != 200:
            raise SnsCertificateFetchError(
                f"Could not fetch the SNS signing certificate {url}: HTTP status {response.status}."
            )
        if len(body) > MAX_CERTIFICATE_BYTES:
            raise SnsSignatureError(f"The SNS signing certificate {url} is larger than a certificate can be.")
        return body

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text


def load_pem_certificate(pem: bytes) -> SigningCertificate:
    """The first certificate of a PEM document; raises SnsSignatureError if there is none usable."""
    match = _PEM_CERTIFICATE.search(pem)
    if match is None:
        raise SnsSignatureError("The SNS signing certificate is not a PEM certificate.")
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except ValueError:
        raise SnsSignatureError("The SNS signing certificate's PEM body is not valid base64.") from None
    return parse_der_certificate(der)


def parse_der_certificate(der: bytes) -> SigningCertificate:
    """Validity period and RSA public key of a DER X.509 certificate; raises only SnsSignatureError.

    Reads just the parts it needs (Certificate -> TBSCertificate -> validity, SubjectPublicKeyInfo) and
    checks the structure around them.
    """
    outer = _DerReader(der)
    certificate = outer.enter(_TAG_SEQUENCE, "Certificate")
    outer.expect_end("Certificate")
    tbs = certificate.enter(_TAG_SEQUENCE, "TBSCertificate")
    certificate.skip(_TAG_SEQUENCE, "signatureAlgorithm")
    certificate.skip(_TAG_BIT_STRING, "signatureValue")
    certificate.expect_end("Certificate")

    if tbs.peek_tag() == _TAG_EXPLICIT_VERSION:
        tbs.skip(_TAG_EXPLICIT_VERSION, "version")
    tbs.skip(_TAG_INTEGER, "serialNumber")
    tbs.skip(_TAG_SEQUENCE, "signature")
    tbs.skip(_TAG_SEQUENCE, "issuer")
    validity = tbs.enter(_TAG_SEQUENCE, "validity")
    not_before = _parse_time(*validity.read((_TAG_UTC_TIME, _TAG_GENERALIZED_TIME), "notBefore"))
    not_after = _parse_time(*validity.read((_TAG_UTC_TIME, _TAG_GENERALIZED_TIME), "notAfter"))
    validity.expect_end("validity")
    tbs.skip(_TAG_SEQUENCE, "subject")
    key_info = tbs.enter(_TAG_SEQUENCE, "subjectPublicKeyInfo")

    algorithm = key_info.enter(_TAG_SEQUENCE, "algorithm")
    _, algorithm_oid = algorithm.read((_TAG_OBJECT_IDENTIFIER,), "algorithm")
    if algorithm_oid != _OID_RSA_ENCRYPTION:
        raise SnsSignatureError("The SNS signing certificate's key is not an RSA key.")
    _, key_bits = key_info.read((_TAG_BIT_STRING,), "subjectPublicKey")
    key_info.expect_end("subjectPublicKeyInfo")
    if not key_bits or key_bits[0] != 0:
        raise _malformed("subjectPublicKey is not a whole number of bytes")

    rsa_key_outer = _DerReader(key_bits[1:])
    rsa_key = rsa_key_outer.enter(_TAG_SEQUENCE, "RSAPublicKey")
    rsa_key_outer.expect_end("RSAPublicKey")
    modulus = _parse_positive_integer(rsa_key.read((_TAG_INTEGER,), "modulus")[1], "modulus")
    public_exponent = _parse_positive_integer(rsa_key.read((_TAG_INTEGER,), "publicExponent")[1], "exponent")
    rsa_key.expect_end("RSAPublicKey")
    if modulus.bit_length() < MIN_RSA_KEY_BITS:
        raise SnsSignatureError(f"The SNS signing certificate's RSA key is shorter than {MIN_RSA_KEY_BITS} bits.")
    if public_exponent < 3 or public_exponent % 2 == 0 or public_exponent >= modulus:
        raise SnsSignatureError("The SNS signing certificate's RSA public exponent is invalid.")
    return SigningCertificate(modulus, public_exponent, not_before, not_after)


class _DerReader:
    """Reads consecutive DER elements (single-byte tags, definite minimal lengths) of data[start:end]."""

    def __init__(self, data: bytes, start: int = 0, end: Optional[int] = None) -> None:
        self._data = data
        self._position = start
        self._end = len(data) if end is None else end

    def peek_tag(self) -> Optional[int]:
        return self._data[self._position] if self._position < self._end else None

    def read(self, tags: Tuple[int, ...], what: str) -> Tuple[int, bytes]:
        """(tag, content) of the next element, which must have one of `tags`."""
        tag, start, end = self._next(tags, what)
        return tag, self._data[start:end]

    def enter(self, tag: int, what: str) -> _DerReader:
        _, start, end = self._next((tag,), what)
        return _DerReader(self._data, start, end)

    def skip(self, tag: int, what: str) -> None:
        self._next((tag,), what)

    def expect_end(self, what: str) -> None:
        if self._position != self._end:
            raise _malformed(f"unexpected data after {what}")

    def _next(self, tags: Tuple[int, ...], what: str) -> Tuple[int, int, int]:
        data, position = self._data, self._position
        if self._end - position < 2:
            raise _malformed(f"{what} is missing or truncated")
        tag = data[position]
        if tag not in tags:
            raise _malformed(f"{what} has an unexpected type")
        length = data[position + 1]
        position += 2
        if length & 0x80:
            length_size = length & 0x7F
            # 0 would be BER's indefinite length; more than 4 bytes of length is no certificate.
            if not 1 <= length_size <= 4 or self._end - position < length_size:
                raise _malformed(f"{what} has an invalid length")
            length = int.from_bytes(data[position : position + length_size], "big")
            if length < 0x80 or data[position] == 0:
                raise _malformed(f"{what} has a non-minimal length")
            position += length_size
        if length > self._end - position:
            raise _malformed(f"{what} is truncated")
        self._position = position + length
        return tag, position, position + length


def _parse_time(tag: int, content: bytes) -> float:
    if tag == _TAG_UTC_TIME:
        match = _UTC_TIME.fullmatch(content)
        if match is None:
            raise _malformed("a validity time is not a UTCTime")
        two_digit_year = int(match.group(1))
        # RFC 5280 4.1.2.5.1: UTCTime years 50-99 are 19xx, 00-49 are 20xx.
        year = 1900 + two_digit_year if two_digit_year >= 50 else 2000 + two_digit_year
    else:
        match = _GENERALIZED_TIME.fullmatch(content)
        if match is None:
            raise _malformed("a validity time is not a GeneralizedTime")
        year = int(match.group(1))
    month, day, hour, minute, second = (int(match.group(index)) for index in range(2, 7))
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()
    except (ValueError, OverflowError):
        raise _malformed("a validity time is not a valid date") from None


def _parse_positive_integer(content: bytes, what: str) -> int:
    if not content or content[0] & 0x80:
        raise _malformed(f"the RSA {what} is not a positive integer")
    if len(content) > 1 and content[0] == 0 and not content[1] & 0x80:
        raise _malformed(f"the RSA {what} is not minimally encoded")
    return int.from_bytes(content, "big")


def _malformed(detail: str) -> SnsSignatureError:
    return SnsSignatureError(f"The SNS signing certificate is malformed: {detail}.")


def _decode_signature(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise SnsSignatureError("The SNS message has no Signature.")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise SnsSignatureError("The SNS message's Signature is not valid base64.") from None


def _string_to_sign(envelope: dict) -> bytes:
    """The canonical "Name\\nvalue\\n" string SNS signs, per message Type."""
    message_type = envelope.get("Type")
    fields = _SIGNED_FIELDS.get(message_type) if isinstance(message_type, str) else None
    if fields is None:
        raise SnsSignatureError(f"The SNS message Type {_shorten(message_type)} is not a signed message type.")
    lines = []
    for name in fields:
        value = envelope.get(name)
        if value is None and name in _OPTIONAL_SIGNED_FIELDS:
            continue
        if not isinstance(value, str):
            raise SnsSignatureError(f"The SNS message field {name} is missing or not a string.")
        lines.append(f"{name}\n{value}\n")
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates survive json.loads but cannot be what SNS signed.
        raise SnsSignatureError("The SNS message contains text that is not valid Unicode.") from None


def _verify_pkcs1_v1_5(certificate: SigningCertificate, digest_info: bytes, signature: bytes) -> None:
    """RSASSA-PKCS1-v1_5 verification (RFC 8017 8.2.2): the recovered block is compared whole with the
    expected encoding, never parsed, so padding tricks (Bleichenbacher 2006) cannot pass."""
    key_length = (certificate.modulus.bit_length() + 7) // 8
    if len(signature) != key_length:
        raise SnsSignatureError("The SNS message's Signature does not match the certificate's key length.")
    signature_number = int.from_bytes(signature, "big")
    if signature_number >= certificate.modulus:
        raise SnsSignatureError("The SNS message's Signature is out of range for the certificate's key.")
    recovered = pow(signature_number, certificate.public_exponent, certificate.modulus).to_bytes(key_length, "big")
    # MIN_RSA_KEY_BITS leaves far more than the 8 bytes of padding RFC 8017 requires.
    expected = b"\x00\x01" + b"\xff" * (key_length - len(digest_info) - 3) + b"\x00" + digest_info
    if not hmac.compare_digest(recovered, expected):
        raise SnsSignatureError("The SNS message's signature does not match its content.")


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
