"""REST handler of the aws_cloudtrail_s3_backfill inputs: deleting one also deletes its cursors in the KV store.

The per-file progress it wrote stays (until its retention passes): the SQS input relies on it to skip the files
the backfill already indexed.
"""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from ta_aws_cloudtrail.cursors import CursorStore
from ta_aws_cloudtrail.runtime import forget_input


class AwsCloudTrailBackfillInputHandler(AdminExternalHandler):
    def handleRemove(self, confInfo):
        name = self.callerArgs.id
        forget_input(self.getSessionKey(), name, "cursors", lambda conn: CursorStore(conn).delete_input(name))
        return super().handleRemove(confInfo)
