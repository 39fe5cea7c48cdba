"""REST handler of the AWS accounts: saving an account checks its credentials with STS GetCallerIdentity."""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from solnlib.splunkenv import get_splunkd_access_info
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler
from splunktaucclib.rest_handler.error import RestError

from ta_aws_cloudtrail.accounts import verify_account
from ta_aws_cloudtrail.logs import SECRETS
from ta_aws_cloudtrail.settings import ConfigError, SplunkdConnection


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
