"""Run Splunk AppInspect (offline CLI) on the package and fail unless it reports no failure, error or
future_failure. The CLI exits 0 even when checks fail, so the JSON summary is what counts.

Usage: python scripts/appinspect_gate.py dist/TA_aws_cloudtrail-<version>.tar.gz [--report report.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

BLOCKING = ("failure", "error", "future_failure")


def run_appinspect(package: str, report_path: str) -> dict:
    cli = os.path.join(os.path.dirname(sys.executable), "splunk-appinspect")
    command = [
        cli,
        "inspect",
        package,
        "--mode",
        "precert",
        "--included-tags",
        "cloud",
        "--output-file",
        report_path,
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if not os.path.exists(report_path):
        raise SystemExit(f"AppInspect produced no report (exit {completed.returncode}):\n{completed.stderr[-2000:]}")
    with open(report_path, encoding="utf-8") as f:
        return json.load(f)


def findings(report: dict, results: tuple) -> list:
    found = []
    for app_report in report.get("reports", []):
        for group in app_report.get("groups", []):
            for check in group.get("checks", []):
                if check.get("result") in results:
                    messages = [m.get("message", "") for m in check.get("messages", [])]
                    found.append((check["result"], check["name"], messages))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package")
    parser.add_argument("--report", help="where to keep the JSON report (default: a temporary file)")
    args = parser.parse_args()
    report_path = args.report or os.path.join(tempfile.mkdtemp(prefix="appinspect-"), "report.json")
    report = run_appinspect(args.package, report_path)
    summary = report["summary"]
    print("AppInspect summary: " + ", ".join(f"{k}={summary.get(k, 0)}" for k in sorted(summary)))
    for result, name, messages in findings(report, (*BLOCKING, "warning")):
        print(f"  {result}: {name}: {messages[0][:160] if messages else ''}")
    blocking = {k: summary.get(k, 0) for k in BLOCKING}
    if any(blocking.values()):
        print(f"FAILED: {blocking}")
        return 1
    print(f"PASSED (report: {report_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
