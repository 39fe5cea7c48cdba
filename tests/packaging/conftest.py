import glob
import json
import os
import tarfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def version() -> str:
    with open(os.path.join(REPO_ROOT, "globalConfig.json"), encoding="utf-8") as f:
        return json.load(f)["meta"]["version"]


@pytest.fixture(scope="session")
def package_path(version) -> str:
    path = os.path.join(REPO_ROOT, "dist", f"TA_aws_cloudtrail-{version}.tar.gz")
    if not os.path.isfile(path):
        found = glob.glob(os.path.join(REPO_ROOT, "dist", "*.tar.gz"))
        pytest.fail(f"{path} is missing (found {found}): run `make package` first", pytrace=False)
    return path


@pytest.fixture(scope="session")
def package(package_path):
    with tarfile.open(package_path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        texts = {}
        for name, member in members.items():
            if member.isfile() and name.endswith((".conf", ".spec", ".json", ".py", ".txt", ".manifest", ".meta")):
                texts[name] = tar.extractfile(member).read().decode("utf-8", "replace")
    return members, texts
