"""REST handler of the aws_cloudtrail_sqs inputs: deleting an input also deletes its progress in the KV store."""

import import_declare_test  # noqa: F401  (puts the add-on's lib/ first on sys.path)
from solnlib.splunkenv import get_splunkd_access_info
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from ta_aws_cloudtrail.checkpoints import ProgressStore, ProgressStoreError
from ta_aws_cloudtrail.logs import SECRETS, addon_logger
from ta_aws_cloudtrail.settings import SplunkdConnection


class AwsCloudTrailSqsInputHandler(AdminExternalHandler):
    def handleRemove(self, confInfo):
        input_name = self.callerArgs.id
        session_key = self.getSessionKey()
        SECRETS.add(session_key)
        logger = addon_logger("rest_handlers")
        try:
            scheme, host, port = get_splunkd_access_info(session_key)
            ProgressStore(SplunkdConnection(scheme, host, port, session_key)).delete_input(input_name)
            logger.info("Deleted the KV store progress of input %s", input_name)
        except ProgressStoreError as exc:
            # the input is still deleted; its progress documents stay until someone deletes them
            logger.warning(
                "Input %s deleted, but its progress in the KV store collection could not be removed: %s",
                input_name,
                exc,
            )
        return super().handleRemove(confInfo)
