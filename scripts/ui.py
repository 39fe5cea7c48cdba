"""The add-on's configuration and input pages in your browser, on embedded stand-ins for Splunk and AWS.

Starts moto, the splunkd emulator with the built add-on installed (its REST handlers run as splunkd runs them) and
the Splunk Web stand-in; seeds a demo AWS account (moto's keys), a queue with a dead-letter queue and one SQS input;
prints the URL that signs you in, and serves until Ctrl-C. Nothing leaves 127.0.0.1. `--screenshots DIR` instead
takes a screenshot of the configuration and inputs pages with headless Chromium and exits.

Run with `make ui` (builds the add-on first).
"""

import argparse
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO_ROOT, "tests"), os.path.join(REPO_ROOT, "tests", "integration")]

from environment import input_params, seed  # noqa: E402

from harness.aws import AwsTestEnv, MotoServer  # noqa: E402
from harness.rest_handlers import InstalledApp  # noqa: E402
from harness.splunkd import SplunkdEmulator  # noqa: E402
from harness.splunkweb import SplunkWeb  # noqa: E402
from harness.webdriver import Browser, find_browser  # noqa: E402

ADDON = os.path.join(REPO_ROOT, "output", "TA_aws_cloudtrail")


def _screenshots(web: SplunkWeb, folder: str) -> None:
    chromium, chromedriver, missing = find_browser()
    if missing:
        raise SystemExit(f"screenshots need {missing}: apt-get install chromium chromium-driver")
    browser = Browser(chromium, chromedriver)
    try:
        for view, ready in (("configuration", "demo"), ("inputs", "demo_trail")):
            browser.get(web.login_url(view))
            browser.wait_for_text(ready, timeout=60)
            time.sleep(1)
            path = os.path.join(folder, f"{view}.png")
            browser.screenshot(path)
            print(f"screenshot: {path}")
    finally:
        browser.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", metavar="DIR", help="take screenshots of two pages into DIR and exit")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(ADDON, "bin", "aws_cloudtrail_sqs.py")):
        print("Build the add-on first: make package", file=sys.stderr)
        return 2
    with MotoServer() as moto:
        aws = AwsTestEnv(moto)
        queue = aws.create_queue("cloudtrail-notifications", visibility_timeout=300)
        account = dict(seed()["accounts"]["acct"], sts_endpoint_url=moto.endpoint_url)
        stanza = dict(input_params(moto, queue, visibility_timeout=300), account="demo", interval="60")
        demo = seed(accounts={"demo": account}, inputs={"aws_cloudtrail_sqs://demo_trail": stanza})
        with SplunkdEmulator(demo) as splunkd:
            app = InstalledApp(splunkd, ADDON, tempfile.mkdtemp(prefix="ta-aws-cloudtrail-ui-"))
            try:
                return _serve(splunkd, moto, queue, args)
            finally:
                app.stop()


def _serve(splunkd: SplunkdEmulator, moto: MotoServer, queue, args: argparse.Namespace) -> int:
    with SplunkWeb(splunkd, ADDON, app_label="AWS CloudTrail Add-on") as web:
        if args.screenshots:
            _screenshots(web, args.screenshots)
            return 0
        print(f"Open {web.login_url('inputs')}")
        print(f"moto (AWS) at {moto.endpoint_url}; queue {queue.aws_url}. Ctrl-C stops everything.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
