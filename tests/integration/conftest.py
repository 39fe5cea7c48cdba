"""Fixtures for running the built input against moto (AWS) and the splunkd emulator, as splunkd would."""

from typing import List

import pytest
from environment import ARTIFACTS, Artifacts, seed

from harness.aws import AwsTestEnv, MotoServer
from harness.modinput import ModularInputRunner, RunningInput
from harness.splunkd import SplunkdEmulator


@pytest.fixture(scope="session")
def artifacts() -> Artifacts:
    return ARTIFACTS


@pytest.fixture(scope="session")
def moto():
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto) -> AwsTestEnv:
    return AwsTestEnv(moto)


@pytest.fixture
def splunkd():
    with SplunkdEmulator(seed()) as emulator:
        ARTIFACTS.secrets.append(emulator.session_key)
        yield emulator


@pytest.fixture
def runner(built_addon, tmp_path) -> ModularInputRunner:
    modinput_runner = ModularInputRunner(built_addon, str(tmp_path / "splunk-home"))
    ARTIFACTS.log_dirs.append(modinput_runner.log_dir)
    return modinput_runner


@pytest.fixture
def backfill_runner(built_addon, tmp_path) -> ModularInputRunner:
    """The backfill input's script, with the same SPLUNK_HOME (and log folder) as `runner`."""
    return ModularInputRunner(built_addon, str(tmp_path / "splunk-home"), scheme="aws_cloudtrail_s3_backfill")


def _starter(runner: ModularInputRunner, splunkd: SplunkdEmulator):
    """Start the built input; every run is recorded for the secret scan and stopped at the end of the test."""
    started: List[RunningInput] = []

    def start(name: str, params: dict, *, splunkd_endpoint=None, extra_env=None) -> RunningInput:
        running = runner.start(name, params, splunkd_endpoint or splunkd, extra_env=extra_env)
        started.append(running)
        ARTIFACTS.runs.append(running)
        return running

    yield start
    for running in started:
        if running.returncode is None:
            running.kill()


@pytest.fixture
def start_input(runner, splunkd):
    yield from _starter(runner, splunkd)


@pytest.fixture
def start_backfill(backfill_runner, splunkd):
    yield from _starter(backfill_runner, splunkd)
