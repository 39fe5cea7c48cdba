import import_declare_test  # noqa: F401
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler


class AwsCloudTrailSqsInputHandler(AdminExternalHandler):
    pass
