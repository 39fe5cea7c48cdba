"""AppInspect gate: the package must have no failure, error or future_failure (cloud tags, precert mode)."""

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_appinspect_reports_no_failure_error_or_future_failure(package_path, tmp_path):
    report = tmp_path / "appinspect.json"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "scripts", "appinspect_gate.py"),
            package_path,
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout)
    assert report.exists(), result.stderr[-2000:]
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "failure=0" in result.stdout and "error=0" in result.stdout and "future_failure=0" in result.stdout
