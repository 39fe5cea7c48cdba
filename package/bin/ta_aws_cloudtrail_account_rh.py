"""REST handler of the AWS accounts: saving an account checks its credentials with STS GetCallerIdentity."""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from solnlib.splunkenv import get_splunkd_access_info
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler
from splunktaucclib.rest_handler.error import RestError

from ta_aws_cloudtrail.aws import AwsError, check_account_credentials
from ta_aws_cloudtrail.logs import SECRETS
from ta_aws_cloudtrail.settings import (
    ACCESS_KEY,
    ConfigError,
    SplunkdConnection,
    load_account,
    load_proxy,
    parse_account,
)

ENCRYPTED_PLACEHOLDER = "******"


def verify_account(conn: SplunkdConnection, name: str, payload: dict, editing: bool) -> str:
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


class AwsAccountHandler(AdminExternalHandler):
    def handleCreate(self, confInfo):
        self._verify(editing=False)
        return super().handleCreate(confInfo)

    def handleEdit(self, confInfo):
        if "disabled" not in self.payload:  # enabling/disabling is not an edit of the credentials
            self._verify(editing=True)
        return super().handleEdit(confInfo)

    def _verify(self, editing: bool) -> None:
        session_key = self.getSessionKey()
        SECRETS.add(session_key)
        scheme, host, port = get_splunkd_access_info(session_key)
        conn = SplunkdConnection(scheme, host, port, session_key)
        try:
            verify_account(conn, self.callerArgs.id, self.payload, editing)
        except ConfigError as exc:
            raise RestError(400, str(exc)) from None
