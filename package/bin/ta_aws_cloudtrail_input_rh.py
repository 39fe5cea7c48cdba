"""REST handler of the aws_cloudtrail_sqs inputs: deleting an input also deletes its progress in the KV store."""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from ta_aws_cloudtrail.checkpoints import ProgressStore
from ta_aws_cloudtrail.runtime import forget_input


class AwsCloudTrailSqsInputHandler(AdminExternalHandler):
    def handleRemove(self, confInfo):
        name = self.callerArgs.id
        forget_input(self.getSessionKey(), name, "progress", lambda conn: ProgressStore(conn).delete_input(name))
        return super().handleRemove(confInfo)
