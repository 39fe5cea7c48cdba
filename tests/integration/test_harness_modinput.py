"""The modular-input runner: against the built add-on, against a stand-in add-on that reports what it was
given, and the stream parser on hand-written byte streams from real subprocesses."""

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

from harness.modinput import ModularInputRunner, RunningInput


@dataclass
class FakeSplunkd:
    """Stand-in for the splunkd emulator: the runner only needs these two attributes."""

    server_uri: str = "https://127.0.0.1:8089"
    session_key: str = "session-key-<&>"


# A stand-in add-on (standard library only, since the runner hides site-packages) that answers like a
# splunklib Script and reports its environment and input definition as one event.
FAKE_INPUT_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import xml.etree.ElementTree as ET
    from xml.sax.saxutils import escape

    if sys.argv[1:] == ["--scheme"]:
        print("<scheme><title>fake</title><endpoint><args><arg name='account'/></args></endpoint></scheme>")
        sys.exit(0)
    if sys.argv[1:] == ["--validate-arguments"]:
        item = ET.parse(sys.stdin).getroot().find("item")
        params = {p.get("name"): p.text for p in item.findall("param")}
        if params.get("account") != "good":
            print("<error><message>account %s &amp; more is not usable</message></error>" % params.get("account"))
            sys.exit(1)
        sys.exit(0)
    root = ET.parse(sys.stdin).getroot()
    stanza = root.find("configuration/stanza")
    report = {
        "metadata": {child.tag: child.text for child in root if child.tag != "configuration"},
        "stanza": stanza.get("name"),
        "app": stanza.get("app"),
        "params": {p.get("name"): p.text for p in stanza.findall("param")},
        "lists": {p.get("name"): [v.text for v in p] for p in stanza.findall("param_list")},
        "cwd": os.getcwd(),
        "splunk_home": os.environ.get("SPLUNK_HOME"),
        "aws_vars": sorted(name for name in os.environ if name.startswith("AWS_")),
        "site_packages_on_path": any("site-packages" in entry for entry in sys.path),
    }
    log_dir = os.path.join(os.environ["SPLUNK_HOME"], "var", "log", "splunk")
    with open(os.path.join(log_dir, "fake_input.log"), "a") as log:
        log.write("fake input started\\n")
    # Signal handling is in place before the event is written: the test signals as soon as it sees it.
    mode = report["params"].get("mode")
    if mode == "linger":
        signal.signal(signal.SIGTERM, lambda *_: (sys.stdout.write("</stream>"), sys.stdout.flush(), os._exit(0)))
    elif mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdout.write("<stream><event stanza=%s unbroken='1'><data>%s</data><done/></event>"
                     % (json.dumps(stanza.get("name")), escape(json.dumps(report))))
    sys.stdout.flush()
    while mode in ("linger", "stubborn"):
        time.sleep(0.1)
    sys.stdout.write("</stream>")
    """
)


@pytest.fixture()
def fake_addon(tmp_path: Path) -> Path:
    addon = tmp_path / "TA_fake"
    (addon / "bin").mkdir(parents=True)
    (addon / "default").mkdir()
    (addon / "bin" / "aws_cloudtrail_sqs.py").write_text(FAKE_INPUT_SCRIPT)
    (addon / "default" / "inputs.conf").write_text(
        "[aws_cloudtrail_sqs]\nindex = default\ninterval = 60\nsourcetype = aws:cloudtrail\nMixedCase = kept\n"
    )
    return addon


def _python_stream(code: str, *, stdin: bool = False, keep_events: bool = True) -> RunningInput:
    """A real subprocess running ``code``; its stdout goes through RunningInput's parser."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return RunningInput(process, keep_events=keep_events)


# -- the built add-on (currently a stub) ----------------------------------------------------------------------


def test_scheme_of_built_addon_lists_input_arguments(built_addon: str, tmp_path: Path) -> None:
    scheme = ModularInputRunner(built_addon, str(tmp_path)).scheme()
    assert scheme.tag == "scheme"
    assert scheme.findtext("streaming_mode") == "xml"
    assert scheme.findtext("use_external_validation") == "true"
    assert scheme.findtext("use_single_instance") == "false"
    arguments = {arg.get("name"): arg for arg in scheme.iter("arg")}
    assert {"account", "sqs_queue_url", "aws_iam_role", "visibility_timeout", "max_receive_count"} <= set(arguments)
    assert arguments["account"].findtext("required_on_create") == "true"
    assert arguments["sqs_queue_url"].findtext("required_on_create") == "true"


def test_validate_and_normal_run_of_the_build_without_a_splunkd(built_addon: str, tmp_path: Path) -> None:
    # FakeSplunkd points at a port where nothing listens: both modes must say so clearly and exit non-zero
    runner = ModularInputRunner(built_addon, str(tmp_path))
    params = {"account": "acct", "sqs_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/q"}
    result = runner.validate("main", params, FakeSplunkd())
    assert result.returncode == 1 and "Cannot read ta_aws_cloudtrail_account.conf from splunkd" in result.message

    with runner.start("main", params, FakeSplunkd()) as running:
        assert running.wait(60) == 2, running.describe()
        assert running.events == [] and running.protocol_errors == []
        assert "cannot start: Cannot read" in running.stderr_text()
    assert os.path.isdir(runner.checkpoint_dir) and os.path.isdir(runner.log_dir)


# -- what the runner hands to the input -----------------------------------------------------------------------


def test_input_gets_splunkd_environment_and_definition(
    fake_addon: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "leaked-from-test-process")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    runner = ModularInputRunner(str(fake_addon), str(tmp_path / "work"))
    params = {"account": "acct & co", "sourcetype": "custom:st", "buckets": ["b1", "b2"]}
    with runner.start("in1", params, FakeSplunkd(), extra_env={"AWS_EC2_METADATA_DISABLED": "true"}) as running:
        (event,) = running.wait_for_events(1, timeout=30)
        assert running.wait(30) == 0
        assert running.stream_complete and running.protocol_errors == []
        assert "fake input started" in running.log_text()
    report = json.loads(event.data)
    assert event.stanza == report["stanza"] == "aws_cloudtrail_sqs://in1"
    assert event.unbroken and event.done
    assert report["app"] == "TA_fake"
    assert report["metadata"] == {
        "server_host": "harness-splunk",
        "server_uri": "https://127.0.0.1:8089",
        "session_key": "session-key-<&>",
        "checkpoint_dir": runner.checkpoint_dir,
    }
    assert report["params"] == {
        "disabled": "0",
        "host": "harness-splunk",
        "index": "default",
        "interval": "60",
        "sourcetype": "custom:st",
        "MixedCase": "kept",
        "account": "acct & co",
    }
    assert report["lists"] == {"buckets": ["b1", "b2"]}
    assert report["cwd"] == str(fake_addon / "bin")
    assert report["splunk_home"] == str(tmp_path / "work" / "splunk")
    assert report["aws_vars"] == ["AWS_EC2_METADATA_DISABLED"]
    assert report["site_packages_on_path"] is False


def test_validate_reports_the_inputs_error_message(fake_addon: Path, tmp_path: Path) -> None:
    runner = ModularInputRunner(str(fake_addon), str(tmp_path))
    assert runner.validate("x", {"account": "good"}, FakeSplunkd()).returncode == 0
    rejected = runner.validate("x", {"account": "bad"}, FakeSplunkd())
    assert rejected.returncode == 1
    assert rejected.message == "account bad & more is not usable"


def test_terminate_sends_sigterm_and_kill_handles_stubborn_inputs(fake_addon: Path, tmp_path: Path) -> None:
    runner = ModularInputRunner(str(fake_addon), str(tmp_path))
    with runner.start("a", {"mode": "linger"}, FakeSplunkd()) as running:
        running.wait_for_events(1, timeout=30)
        assert running.returncode is None
        assert running.terminate(timeout=10) == 0
        assert running.stream_complete, "the SIGTERM handler closed the stream"

    with runner.start("b", {"mode": "stubborn"}, FakeSplunkd()) as running:
        running.wait_for_events(1, timeout=30)
        with pytest.raises(TimeoutError, match="ignored SIGTERM"):
            running.terminate(timeout=1)
        assert running.returncode == -9
        assert not running.stream_complete and running.protocol_errors == []


# -- the stream parser on hand-written streams ----------------------------------------------------------------

SPLIT_STREAM = """
    import sys
    out = sys.stdout.buffer
    first = '<stream><event stanza="s://a" unbroken="1"><time>1714564800.000</time><source>s3://b/k</source>' \\
            '<sourcetype>aws:cloudtrail</sourcetype><index>main</index><host>h1</host>' \\
            '<data>{"userAgent":"Ünïcødé 日本語"}</data><done/></event>'
    second = '<event unbroken="0"><data>a &lt;tag attr=&quot;1&quot;&gt; &amp; \\'q\\' ]]&gt; 🚀</data></event>'
    third = '<event><data><![CDATA[<raw> & "cdata"]]></data></event></stream>'
    second_bytes = second.encode()
    cut = second_bytes.index("🚀".encode()) + 2  # inside the 4-byte UTF-8 sequence
    out.write(first.encode() + b"\\n  " + second_bytes[:cut]); out.flush()
    sys.stdin.readline()  # hold until the test has seen the first event
    out.write(second_bytes[cut:]); out.flush()
    out.write(third.encode()[:7]); out.flush()
    out.write(third.encode()[7:] + b"\\n"); out.flush()
"""


def test_events_are_parsed_incrementally_across_split_reads() -> None:
    with _python_stream(SPLIT_STREAM, stdin=True) as running:
        (first,) = running.wait_for_events(1, timeout=30)
        assert running.returncode is None, "the first event was parsed while the writer was still blocked"
        assert running.event_count == 1
        assert running.process.stdin is not None
        running.process.stdin.write(b"go\n")
        running.process.stdin.flush()
        events = running.wait_for_events(3, timeout=30)
        assert running.wait(30) == 0
        assert running.protocol_errors == []
        assert running.stream_complete
    assert first.stanza == "s://a" and first.time == "1714564800.000"
    assert (first.source, first.sourcetype, first.index, first.host) == ("s3://b/k", "aws:cloudtrail", "main", "h1")
    assert first.data == '{"userAgent":"Ünïcødé 日本語"}'
    assert first.unbroken and first.done
    second, third = events[1:]
    assert second.data == "a <tag attr=\"1\"> & 'q' ]]> 🚀"
    assert second.stanza is None and second.time is None and second.host is None
    assert not second.unbroken and not second.done
    assert third.data == '<raw> & "cdata"'


@pytest.mark.parametrize(
    ("stream", "expected_error"),
    [
        ("<stream><event><data>a & b</data></event></stream>", "malformed XML after 0 event"),
        ("<stream><event><data>ok</data></event><event><data>x</dat></event></stream>", "malformed XML after 1 event"),
        ("<stream><event><data>ok</data></event></stream><stream></stream>", "malformed XML"),
        ("print-debugging<stream></stream>", "malformed XML"),
        ("<stream><event><time>1</time></event></stream>", "has no <data>"),
        ("<stream><event><data>x</data><extra/></event></stream>", "unexpected <extra>"),
        ("<stream><event><data>x</data></event>stray text<event><data>y</data></event></stream>", "text outside"),
        ("<stream>before<event><data>x</data></event></stream>", "text outside"),
        ("<stream><event><data>x</data></event>after</stream>", "text outside"),
        ("<events><event><data>x</data></event></events>", "expected <stream>"),
        ("<stream><log>x</log></stream>", "expected <event>"),
    ],
)
def test_protocol_violations_are_recorded(stream: str, expected_error: str) -> None:
    code = f"import sys; sys.stdout.write({stream!r})"
    with _python_stream(code) as running:
        assert running.wait(30) == 0
        errors = running.protocol_errors
    assert errors, f"no protocol error recorded for {stream!r}"
    assert any(expected_error in error for error in errors), errors


def test_truncated_stream_is_not_a_protocol_error_but_is_incomplete() -> None:
    code = "import sys; sys.stdout.write('<stream><event><data>one</data></event><event><data>tw')"
    with _python_stream(code) as running:
        assert [event.data for event in running.wait_for_events(1, timeout=30)] == ["one"]
        assert running.wait(30) == 0
        assert running.protocol_errors == []
        assert not running.stream_complete
        assert running.event_count == 1


def test_wait_for_events_fails_fast_when_output_ends_short() -> None:
    code = "import sys; sys.stderr.write('boom\\n'); sys.stdout.write('<stream><event><data>1</data></event></stream>')"
    with _python_stream(code) as running:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="stdout closed") as raised:
            running.wait_for_events(5, timeout=30)
        assert time.monotonic() - started < 10
        assert "boom" in str(raised.value)


def test_many_events_without_keeping_them() -> None:
    code = """
        import sys
        sys.stdout.write('<stream>')
        for i in range(20000):
            sys.stdout.write('<event><data>%d</data></event>' % i)
        sys.stdout.write('</stream>')
    """
    with _python_stream(code, keep_events=False) as running:
        assert running.wait(60) == 0
        assert running.event_count == 20000
        assert running.events == []
        assert running.stream_complete and running.protocol_errors == []


def test_wait_until_times_out_with_state() -> None:
    calls: List[int] = []
    with _python_stream("import time; time.sleep(30)") as running:
        with pytest.raises(TimeoutError, match="condition not met"):
            running.wait_until(lambda: bool(calls.append(1)), timeout=0.3)
        assert len(calls) > 1
        assert running.kill() == -9
