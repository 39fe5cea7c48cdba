"""The Makefile's choice of Python for building and testing (3.11 to 3.13), whatever `python3` is."""

import os
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAKE = shutil.which("make")
OLD_PYTHON = """#!/bin/sh
# stands in for a Python 3.9 interpreter: it fails the Makefile's version test
case "$1" in
  --version) echo "Python 3.9.18" ;;
  *) exit 1 ;;
esac
"""

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def make(tmp_path, path_dirs, *args):
    # a copy of what the Makefile reads, without the repo's .venv
    work = tmp_path / "work"
    if not work.exists():
        work.mkdir()
        for name in ("Makefile", "requirements-dev.txt", "globalConfig.json"):
            shutil.copy(os.path.join(REPO_ROOT, name), work / name)
    env = {"PATH": os.pathsep.join(str(d) for d in path_dirs), "HOME": str(tmp_path)}
    return subprocess.run(
        [MAKE, "-s", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def bin_dir(tmp_path, name, **links):
    directory = tmp_path / name
    directory.mkdir()
    for link, target in links.items():
        path = directory / link
        if target is None:
            path.write_text(OLD_PYTHON)
            path.chmod(0o755)
        else:
            path.symlink_to(target)
    return directory


def test_an_unsupported_python3_alone_stops_at_once_with_one_line_naming_the_range(tmp_path):
    old = bin_dir(tmp_path, "old", python3=None)
    result = make(tmp_path, [old], "venv")
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert "Python 3.11 to 3.13" in line and "Python 3.9.18" in line and "PYTHON=" in line
    assert not (tmp_path / "work" / ".venv").exists()


def test_a_supported_python_beside_an_old_python3_is_chosen(tmp_path):
    supported = f"python3.{sys.version_info[1]}"
    assert (3, 11) <= sys.version_info[:2] <= (3, 13), "the tests themselves run on a supported Python"
    old = bin_dir(tmp_path, "old", python3=None)
    new = bin_dir(tmp_path, "new", **{supported: sys.executable})
    assert make(tmp_path, [old, new], "check-python").returncode == 0
    planned = make(tmp_path, [old, new], "-n", "venv").stdout
    assert f"{supported} -m venv .venv" in planned, planned


def test_python_given_explicitly_is_checked(tmp_path):
    old = bin_dir(tmp_path, "old", python3=None)
    result = make(tmp_path, [old], "check-python", f"PYTHON={old / 'python3'}")
    assert result.returncode != 0 and "Python 3.11 to 3.13" in result.stderr
