"""REST handler of the aws_cloudtrail_cloudwatch_logs inputs: deleting one also deletes its log group positions."""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from ta_aws_cloudtrail.cloudwatch_logs_settings import SCHEME
from ta_aws_cloudtrail.cursors import CursorStore
from ta_aws_cloudtrail.runtime import forget_input


class AwsCloudTrailCloudWatchLogsInputHandler(AdminExternalHandler):
    def handleRemove(self, confInfo):
        name = self.callerArgs.id
        stanza = f"{SCHEME}://{name}"  # the key of its positions (cloudwatch_logs_input.py)
        forget_input(
            self.getSessionKey(), name, "log group positions", lambda conn: CursorStore(conn).delete_input(stanza)
        )
        return super().handleRemove(confInfo)
