import import_declare_test  # noqa: F401
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler


class AwsAccountHandler(AdminExternalHandler):
    pass
