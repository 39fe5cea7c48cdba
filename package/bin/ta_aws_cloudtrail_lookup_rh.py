"""REST handler of the aws_cloudtrail_lookup inputs: deleting one also deletes its cursors and seen eventIDs."""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from ta_aws_cloudtrail.lookup_state import LookupState
from ta_aws_cloudtrail.runtime import forget_input


class AwsCloudTrailLookupInputHandler(AdminExternalHandler):
    def handleRemove(self, confInfo):
        name = self.callerArgs.id
        forget_input(
            self.getSessionKey(), name, "Event history state", lambda conn: LookupState(conn).delete_input(name)
        )
        return super().handleRemove(confInfo)
