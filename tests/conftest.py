"""Test-wide setup: import paths for the add-on's package and the harness, and the built add-on."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_BIN = os.path.join(REPO_ROOT, "package", "bin")
TESTS_DIR = os.path.join(REPO_ROOT, "tests")
# $TA_TEST_BUILT_ADDON points the tests at another copy of the build (e.g. while output/ is being rebuilt)
BUILT_ADDON = os.environ.get("TA_TEST_BUILT_ADDON") or os.path.join(REPO_ROOT, "output", "TA_aws_cloudtrail")

for path in (PACKAGE_BIN, TESTS_DIR):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="session")
def built_addon() -> str:
    """Path of the add-on built by `make build`; integration tests run this, not the source tree."""
    script = os.path.join(BUILT_ADDON, "bin", "aws_cloudtrail_sqs.py")
    if not os.path.isfile(script):
        pytest.fail(f"{script} is missing: run `make package` (or `make test`) first", pytrace=False)
    return BUILT_ADDON


def pytest_collection_modifyitems(session, config, items):
    """Tests marked `last` (the suite-wide secret scan) run after every other test of the session."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
