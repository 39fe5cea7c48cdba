"""kill -9 fault injection from the command line: SIGKILL the built input again and again while it ingests
100,000 CloudTrail records, let a last process finish, and count what was lost and duplicated.

    python scripts/crash_test.py [--kills 50] [--seed N]

Starts its own moto (AWS) and splunkd emulator, like scripts/demo.py, and runs the scenario of
tests/integration/crash_scenario.py. Exits 1 when a record is lost, duplicates exceed the records in flight
at the kills, or any other guarantee is broken (listed); 2 when the add-on is not built. The built add-on is
$TA_TEST_BUILT_ADDON, or output/TA_aws_cloudtrail (make package).
"""

import argparse
import os
import sys
import tempfile
from typing import List

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO_ROOT, "tests"), os.path.join(REPO_ROOT, "tests", "integration")]

from crash_scenario import run_crash_scenario  # noqa: E402
from environment import seed  # noqa: E402

from harness.aws import AwsTestEnv, MotoServer  # noqa: E402
from harness.modinput import ModularInputRunner, RunningInput  # noqa: E402
from harness.splunkd import SplunkdEmulator  # noqa: E402

ADDON = os.environ.get("TA_TEST_BUILT_ADDON") or os.path.join(REPO_ROOT, "output", "TA_aws_cloudtrail")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="SIGKILL the built input repeatedly and count lost/duplicated records."
    )
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs before the last, clean run (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the data layout and of the kill points")
    parser.add_argument("--objects", type=int, default=100, help="log files (default 100)")
    parser.add_argument("--records-per-object", type=int, default=1000, help="records per log file (default 1000)")
    parser.add_argument(
        "--seconds-per-object", type=float, default=3.0, help="how long the S3 proxy takes to serve one object"
    )
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(ADDON, "bin", "aws_cloudtrail_sqs.py")):
        print(f"Build the add-on first (make package), or set TA_TEST_BUILT_ADDON: {ADDON}", file=sys.stderr)
        return 2

    workdir = tempfile.mkdtemp(prefix="ta-aws-cloudtrail-crash-")
    started: List[RunningInput] = []
    with MotoServer() as moto, SplunkdEmulator(seed()) as splunkd:
        runner = ModularInputRunner(ADDON, workdir)

        def start(name: str, params: dict) -> RunningInput:
            running = runner.start(name, params, splunkd)
            started.append(running)
            return running

        try:
            result = run_crash_scenario(
                moto,
                AwsTestEnv(moto),
                splunkd,
                start,
                kills=args.kills,
                seed=args.seed,
                objects=args.objects,
                records_per_object=args.records_per_object,
                seconds_per_object=args.seconds_per_object,
            )
        finally:
            for running in started:
                if running.returncode is None:
                    running.kill()

    print("\n" + result.kill_table() + "\n\n" + result.summary())
    print(f"logs: {runner.log_dir}")
    failures = result.failures()
    for failure in failures:
        print(f"FAILED: {failure}")
    print("CRASH TEST OK" if not failures else "CRASH TEST FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
