"""Checks run when an admin saves an AWS account (called by bin/ta_aws_cloudtrail_account_rh.py)."""

from __future__ import annotations

from typing import Mapping

from .aws import AwsError, check_account_credentials
from .logs import SECRETS
from .settings import ACCESS_KEY, ConfigError, SplunkdConnection, load_account, load_proxy, parse_account

ENCRYPTED_PLACEHOLDER = "******"


def verify_account(conn: SplunkdConnection, name: str, payload: Mapping[str, str], editing: bool) -> str:
    """Check that the account's credentials work (through the configured proxy); return the caller ARN.

    On edit, an unchanged secret arrives as the placeholder and is read back from the password store.
    Raises ConfigError with a message for the admin.
    """
    fields = dict(payload)
    uses_keys = fields.get("credential_type", ACCESS_KEY) == ACCESS_KEY
    if editing and uses_keys and fields.get("aws_secret_access_key") in (None, "", ENCRYPTED_PLACEHOLDER):
        fields["aws_secret_access_key"] = load_account(conn, name).secret_access_key
    account = parse_account(name, fields)
    SECRETS.add(account.secret_access_key)
    proxy = load_proxy(conn)
    if proxy is not None:
        SECRETS.add(proxy.password)
    try:
        return check_account_credentials(account, proxy.url if proxy is not None else None)
    except AwsError as exc:
        raise ConfigError(f"The credentials of AWS account {name!r} do not work: {exc}") from None
