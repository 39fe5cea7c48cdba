"""REST handler of the aws_cloudtrail_cloudwatch_logs inputs: deleting one also deletes its log group positions."""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from ta_aws_cloudtrail.cursors import CursorStore
from ta_aws_cloudtrail.runtime import forget_input


class AwsCloudTrailCloudWatchLogsInputHandler(AdminExternalHandler):
    def handleRemove(self, confInfo):
        name = self.callerArgs.id
        forget_input(
            self.getSessionKey(), name, "log group positions", lambda conn: CursorStore(conn).delete_input(name)
        )
        return super().handleRemove(confInfo)
