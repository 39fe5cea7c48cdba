"""A throwaway certificate authority for tests that need real TLS or real SNS signatures.

    ca = LocalCA(tmp_path)
    cert_path, key_path = ca.issue_server_cert("sns.us-east-1.amazonaws.com", "127.0.0.1")
    ca.ca_bundle_path                      # the CA certificate (PEM) for clients to trust
    signing = ca.issue_signing_cert()      # an SNS-style signing certificate and its private key
    signed = sign_sns_message(envelope, signing.private_key, "2")

Uses `cryptography`, which tests may use and the add-on may not. The SNS signing follows the AWS
documentation and shares no code with the add-on, so each checks the other.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
from typing import NamedTuple, Optional, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

# Fields SNS signs, in order, per message Type (AWS: "Verifying the signatures of Amazon SNS messages").
_SNS_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SNS_CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _SNS_CONFIRMATION_FIELDS,
}
_SNS_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class SigningCert(NamedTuple):
    """An SNS-style signing certificate: where its PEM is, the PEM itself, and the key that signs."""

    cert_path: str
    pem: bytes
    private_key: PrivateKey


def new_rsa_key(key_size: int = 2048, public_exponent: int = 65537) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=public_exponent, key_size=key_size)


class LocalCA:
    """A CA whose key and certificates live only in `directory` (a test's temporary directory)."""

    def __init__(self, directory: Union[str, os.PathLike], common_name: str = "TA_aws_cloudtrail test CA"):
        self.directory = os.fspath(directory)
        self._key = new_rsa_key()
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self._server_key: Optional[rsa.RSAPrivateKey] = None
        self._issued = 0
        now = _utc_now()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_bundle_path = self._write("ca.pem", self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue_server_cert(
        self,
        *names: str,
        not_before: Optional[datetime.datetime] = None,
        not_after: Optional[datetime.datetime] = None,
    ) -> Tuple[str, str]:
        """(cert_path, key_path) of a TLS server certificate for `names` (DNS names or IP addresses)."""
        if not names:
            raise ValueError("a server certificate needs at least one name")
        if self._server_key is None:
            self._server_key = new_rsa_key()  # shared by this CA's server certificates: keys are slow
        alternative_names = [_general_name(name) for name in names]
        certificate = self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]),
            self._server_key,
            not_before,
            not_after,
            [
                x509.SubjectAlternativeName(alternative_names),
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            ],
        )
        serial = self._next_serial()
        cert_path = self._write(f"server-{serial}.pem", certificate.public_bytes(serialization.Encoding.PEM))
        key_path = self._write(
            f"server-{serial}-key.pem",
            self._server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        return cert_path, key_path

    def issue_signing_cert(
        self,
        private_key: Optional[PrivateKey] = None,
        *,
        common_name: str = "sns.amazonaws.com",
        not_before: Optional[datetime.datetime] = None,
        not_after: Optional[datetime.datetime] = None,
    ) -> SigningCert:
        """A certificate like the one at an SNS SigningCertURL (subject sns.amazonaws.com, RSA 2048 unless
        `private_key` says otherwise)."""
        key = private_key if private_key is not None else new_rsa_key()
        certificate = self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            key,
            not_before,
            not_after,
            [x509.SubjectAlternativeName([x509.DNSName(common_name)])],
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        cert_path = self._write(f"signing-{self._next_serial()}.pem", pem)
        return SigningCert(cert_path, pem, key)

    def _issue(
        self,
        subject: x509.Name,
        key: PrivateKey,
        not_before: Optional[datetime.datetime],
        not_after: Optional[datetime.datetime],
        extensions: list,
    ) -> x509.Certificate:
        now = _utc_now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(days=1))
            .not_valid_after(not_after or now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def _next_serial(self) -> int:
        self._issued += 1
        return self._issued

    def _write(self, file_name: str, data: bytes) -> str:
        path = os.path.join(self.directory, file_name)
        with open(path, "wb") as file:
            file.write(data)
        return path


def sns_string_to_sign(envelope: dict) -> bytes:
    """The canonical text SNS signs: "Name\\nvalue\\n" for each signed field the message has."""
    fields = SNS_SIGNED_FIELDS[envelope["Type"]]
    return "".join(f"{name}\n{envelope[name]}\n" for name in fields if name in envelope).encode("utf-8")


def sign_sns_message(envelope: dict, private_key: rsa.RSAPrivateKey, version: str) -> dict:
    """A copy of `envelope` signed as SNS signs it (SignatureVersion "1": SHA1, "2": SHA256).

    SigningCertURL is not signed; set it in `envelope` before or after."""
    signed = dict(envelope, SignatureVersion=version)
    signature = private_key.sign(sns_string_to_sign(signed), padding.PKCS1v15(), _SNS_HASHES[version]())
    signed["Signature"] = base64.b64encode(signature).decode("ascii")
    return signed


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
