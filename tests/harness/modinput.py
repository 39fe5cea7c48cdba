"""Run the built modular input the way splunkd does, and parse what it writes.

splunkd starts ``bin/<scheme>.py`` with the bin directory as working directory and ``SPLUNK_HOME`` set,
writes the ``<input>`` XML to its stdin and closes it, reads the ``<stream><event>...</event></stream>``
protocol from stdout, forwards stderr lines to splunkd.log, and sends SIGTERM on disable or shutdown.
:class:`ModularInputRunner` does the same; :class:`RunningInput` parses stdout while the process runs.

Usage::

    runner = ModularInputRunner(built_addon, str(tmp_path))
    with runner.start("main", {"account": "acct", "sqs_queue_url": queue.aws_url}, splunkd) as running:
        events = running.wait_for_events(100, timeout=60)
        assert running.terminate() == 0
        assert running.protocol_errors == []

Fidelity choices:

- The child runs with ``python -S`` and without PYTHONPATH/PYTHONHOME, so only the standard library and the
  add-on's own ``lib/`` are importable (a dependency missing from ``lib/`` fails here as it would in
  Splunk, instead of being found in the test virtualenv). AWS_* variables of the test process are not
  passed on either; give what the input should see through ``extra_env``.
- ``start`` sends the stanza's effective parameters like splunkd: ``disabled``, ``host`` and ``index``
  defaults, then the ``[<scheme>]`` defaults from the add-on's ``default/inputs.conf``, then ``params``.
- splunklib writes ``<stream>`` only with the first event: an input that writes no event writes nothing
  at all, which is valid (``events == []``, ``stream_complete`` False, no protocol error).
"""

import configparser
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Union

SCHEME = "aws_cloudtrail_sqs"
DEFAULT_SERVER_HOST = "harness-splunk"
_EVENT_FIELDS = ("time", "source", "sourcetype", "index", "host", "data", "done")
_READ_CHUNK_BYTES = 65536
ParamValue = Union[str, Sequence[str]]


class SplunkdEndpoint(Protocol):
    """What the runner needs from splunkd (the emulator, or any object with these attributes)."""

    server_uri: str
    session_key: str


@dataclass(frozen=True)
class ParsedEvent:
    """One ``<event>`` of the stream; fields absent from the XML are None."""

    stanza: Optional[str]
    time: Optional[str]  # as written, e.g. "1714564800.000"
    source: Optional[str]
    sourcetype: Optional[str]
    index: Optional[str]
    host: Optional[str]
    data: str
    unbroken: bool
    done: bool


@dataclass(frozen=True)
class ValidationResult:
    returncode: int
    message: Optional[str]  # the text of <error><message> when the input rejected the arguments
    stderr: str


class _StreamParser:
    """Incremental parser of the modular-input stream; records protocol violations instead of raising."""

    def __init__(self, on_event: Callable[[ParsedEvent], None], on_error: Callable[[str], None]) -> None:
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._on_event = on_event
        self._on_error = on_error
        self._depth = 0
        self._root: Optional[ET.Element] = None
        self._previous_event: Optional[ET.Element] = None
        self._events_parsed = 0
        self.broken = False  # after malformed XML nothing more can be parsed
        self.stream_complete = False

    def feed(self, chunk: bytes) -> None:
        if self.broken:
            return
        try:
            self._parser.feed(chunk)
            for kind, element in self._parser.read_events():
                if kind == "start":
                    self._start(element)
                else:
                    self._end(element)
        except ET.ParseError as error:
            self.broken = True
            self._on_error(f"malformed XML after {self._events_parsed} event(s): {error}")

    def _start(self, element: ET.Element) -> None:
        self._depth += 1
        if self._depth == 1:
            self._root = element
            if element.tag != "stream":
                self._on_error(f"root element is <{element.tag}>, expected <stream>")
        elif self._depth == 2:
            self._check_text_between_events()
            if element.tag != "event":
                self._on_error(f"<{element.tag}> inside <stream>, expected <event>")
        elif self._depth == 3:
            if element.tag not in _EVENT_FIELDS:
                self._on_error(f"unexpected <{element.tag}> inside <event>")
        else:
            self._on_error(f"unexpected nested <{element.tag}> inside <event>")

    def _end(self, element: ET.Element) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._check_text_between_events()
            self.stream_complete = element.tag == "stream"
        elif self._depth == 1 and element.tag == "event":
            self._emit(element)
            self._previous_event = element
            if self._root is not None:
                # Bounded memory however long the stream; the element's tail is still filled in later.
                self._root.remove(element)

    def _check_text_between_events(self) -> None:
        stray = (self._previous_event.tail if self._previous_event is not None else self._root_text()) or ""
        if stray.strip():
            self._on_error(f"text outside <event>: {stray.strip()[:80]!r}")
        if self._previous_event is not None:
            self._previous_event.tail = None  # reported once

    def _root_text(self) -> Optional[str]:
        if self._root is None:
            return None
        text, self._root.text = self._root.text, None
        return text

    def _emit(self, element: ET.Element) -> None:
        fields = {child.tag: child for child in element}
        if "data" not in fields:
            self._on_error(f"<event> #{self._events_parsed + 1} has no <data>")
            return
        if element.text and element.text.strip():
            self._on_error(f"text directly inside <event> #{self._events_parsed + 1}")
        self._events_parsed += 1

        def text_of(tag: str) -> Optional[str]:
            child = fields.get(tag)
            return None if child is None else (child.text or "")

        self._on_event(
            ParsedEvent(
                stanza=element.get("stanza"),
                time=text_of("time"),
                source=text_of("source"),
                sourcetype=text_of("sourcetype"),
                index=text_of("index"),
                host=text_of("host"),
                data=text_of("data") or "",
                unbroken=element.get("unbroken") == "1",
                done="done" in fields,
            )
        )


class RunningInput:
    """A running modular-input process whose stdout is parsed as the event stream in a background thread.

    Wraps any already started process with ``stdout`` and ``stderr`` pipes (``ModularInputRunner.start``
    makes one; tests of the parser can pass their own). Use it as a context manager to make sure the
    process is gone afterwards.
    """

    def __init__(self, process: "subprocess.Popen[bytes]", log_dir: Optional[str] = None, *, keep_events: bool = True):
        if process.stdout is None or process.stderr is None:
            raise ValueError("the process needs stdout and stderr pipes")
        self.process = process
        self.log_dir = log_dir
        self._keep_events = keep_events
        self._events: List[ParsedEvent] = []
        self._event_count = 0
        self._protocol_errors: List[str] = []
        self._stderr = bytearray()
        self._changed = threading.Condition()
        self._parser = _StreamParser(self._add_event, self._add_error)
        self._stdout_reader = threading.Thread(target=self._read_stdout, name="modinput-stdout", daemon=True)
        self._stderr_reader = threading.Thread(target=self._read_stderr, name="modinput-stderr", daemon=True)
        self._stdout_reader.start()
        self._stderr_reader.start()

    # -- readers ------------------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while True:
            # os.read returns whatever is available, so events are parsed as soon as the input flushes them.
            chunk = os.read(fd, _READ_CHUNK_BYTES)
            if not chunk:
                break
            self._parser.feed(chunk)
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        while True:
            chunk = os.read(fd, _READ_CHUNK_BYTES)
            if not chunk:
                break
            with self._changed:
                self._stderr.extend(chunk)

    def _add_event(self, event: ParsedEvent) -> None:
        with self._changed:
            self._event_count += 1
            if self._keep_events:
                self._events.append(event)
            self._changed.notify_all()

    def _add_error(self, message: str) -> None:
        with self._changed:
            self._protocol_errors.append(message)
            self._changed.notify_all()

    # -- state --------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def events(self) -> List[ParsedEvent]:
        """The events parsed so far (a copy; empty when started with ``keep_events=False``)."""
        with self._changed:
            return list(self._events)

    @property
    def event_count(self) -> int:
        """How many events were parsed so far (counted even with ``keep_events=False``)."""
        with self._changed:
            return self._event_count

    @property
    def protocol_errors(self) -> List[str]:
        """Malformed XML and structural violations seen on stdout (a copy). Truncation is not an error."""
        with self._changed:
            return list(self._protocol_errors)

    @property
    def stream_complete(self) -> bool:
        """Whether ``</stream>`` was seen."""
        with self._changed:
            return self._parser.stream_complete

    @property
    def returncode(self) -> Optional[int]:
        return self.process.poll()

    def stderr_text(self) -> str:
        with self._changed:
            return self._stderr.decode("utf-8", errors="replace")

    def log_text(self) -> str:
        """All ``*.log`` files under ``$SPLUNK_HOME/var/log/splunk``, concatenated in name order."""
        if not self.log_dir or not os.path.isdir(self.log_dir):
            return ""
        parts = []
        for name in sorted(os.listdir(self.log_dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.log_dir, name), encoding="utf-8", errors="replace") as log_file:
                    parts.append(log_file.read())
        return "".join(parts)

    def describe(self) -> str:
        """A short state summary for assertion messages."""
        return (
            f"pid {self.pid}, returncode {self.returncode}, {self.event_count} event(s), "
            f"protocol errors {self.protocol_errors}, stderr tail {self.stderr_text()[-2000:]!r}"
        )

    # -- waiting ------------------------------------------------------------------------------------------

    def _output_finished(self) -> bool:
        return not self._stdout_reader.is_alive()

    def wait_for_events(self, count: int, timeout: float = 30.0) -> List[ParsedEvent]:
        """Wait until at least ``count`` events were parsed and return them. Raises TimeoutError (with the
        process state) on timeout, or as soon as stdout closed with fewer events."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._event_count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._output_finished():
                    break
                self._changed.wait(min(remaining, 0.2))
            if self._event_count >= count:
                return list(self._events)
        reason = "stdout closed" if self._output_finished() else f"timed out after {timeout}s"
        if self._output_finished():
            # the process is ending: let the stderr reader catch up, so the message shows why
            self._stderr_reader.join(5)
        raise TimeoutError(f"expected {count} event(s), {reason}: {self.describe()}")

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> None:
        """Poll ``predicate`` until it is true; TimeoutError (with the process state) otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s: {self.describe()}")
            time.sleep(interval)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process to exit on its own and for its output to be read; returns the exit code."""
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"process did not exit within {timeout}s: {self.describe()}") from None
        self._join_readers()
        return returncode

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as splunkd sends on disable or shutdown, then wait. If the process is still alive after
        ``timeout`` it is killed and TimeoutError is raised: a clean shutdown is part of the contract."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"process ignored SIGTERM for {timeout}s and was killed: {self.describe()}") from None
        self._join_readers()
        return returncode

    def kill(self) -> int:
        """SIGKILL (a crash, or splunkd giving up); returns the exit code (negative signal number)."""
        if self.process.poll() is None:
            self.process.kill()
        returncode = self.process.wait()
        self._join_readers()
        return returncode

    def _join_readers(self) -> None:
        self._stdout_reader.join(10)
        self._stderr_reader.join(10)

    def __enter__(self) -> "RunningInput":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


class ModularInputRunner:
    """Runs ``<addon_dir>/bin/<scheme>.py`` as splunkd does, with ``SPLUNK_HOME=<workdir>/splunk``."""

    def __init__(
        self,
        addon_dir: str,
        workdir: str,
        python: str = sys.executable,
        *,
        scheme: str = SCHEME,
        server_host: str = DEFAULT_SERVER_HOST,
    ) -> None:
        self.addon_dir = os.path.abspath(addon_dir)
        self.app = os.path.basename(self.addon_dir.rstrip(os.sep))
        self.scheme_name = scheme
        self.python = python
        self.server_host = server_host
        self.bin_dir = os.path.join(self.addon_dir, "bin")
        self.script = os.path.join(self.bin_dir, f"{scheme}.py")
        self.splunk_home = os.path.join(os.path.abspath(workdir), "splunk")
        self.log_dir = os.path.join(self.splunk_home, "var", "log", "splunk")
        self.checkpoint_dir = os.path.join(self.splunk_home, "var", "lib", "splunk", "modinputs", scheme)
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        if not os.path.isfile(self.script):
            raise FileNotFoundError(f"{self.script} does not exist: build the add-on first")

    def input_log(self, name: str) -> str:
        """The log file of input ``name`` alone ("" until it exists; the log folder holds every input's)."""
        path = os.path.join(self.log_dir, f"ta_aws_cloudtrail_{name}.log")
        if not os.path.isfile(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as log_file:
            return log_file.read()

    def environment(self, extra_env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        """The child's environment: this process's, minus Python and AWS settings, plus splunkd's."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("AWS_") and name not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
        }
        env.update(
            SPLUNK_HOME=self.splunk_home,
            SPLUNK_ETC=os.path.join(self.splunk_home, "etc"),
            SPLUNK_DB=os.path.join(self.splunk_home, "var", "lib", "splunk"),
            SPLUNK_SERVER_NAME=self.server_host,
        )
        env.update(extra_env or {})
        return env

    def _command(self, *args: str) -> List[str]:
        return [self.python, "-S", self.script, *args]

    def _run(self, args: Sequence[str], stdin: bytes, timeout: float) -> "subprocess.CompletedProcess[bytes]":
        return subprocess.run(
            self._command(*args),
            input=stdin,
            capture_output=True,
            cwd=self.bin_dir,
            env=self.environment(),
            timeout=timeout,
            check=False,
        )

    def scheme(self, timeout: float = 60.0) -> ET.Element:
        """``--scheme``: the parsed ``<scheme>`` document (asserts exit code 0)."""
        result = self._run(["--scheme"], b"", timeout)
        assert result.returncode == 0, f"--scheme exited {result.returncode}: {result.stderr.decode(errors='replace')}"
        return ET.fromstring(result.stdout)

    def validate(
        self, name: str, params: Mapping[str, ParamValue], splunkd: SplunkdEndpoint, timeout: float = 60.0
    ) -> ValidationResult:
        """``--validate-arguments`` with the ``<items>`` document splunkd sends for a create/edit of input
        ``name`` (only ``params``, no defaults merged)."""
        items = ET.Element("items")
        self._add_metadata(items, splunkd)
        item = ET.SubElement(items, "item", name=name)
        self._add_params(item, params)
        result = self._run(["--validate-arguments"], ET.tostring(items, encoding="utf-8"), timeout)
        message = None
        if result.stdout.strip():
            error = ET.fromstring(result.stdout)
            message = error.findtext("message")
        return ValidationResult(result.returncode, message, result.stderr.decode("utf-8", errors="replace"))

    def effective_params(self, params: Mapping[str, ParamValue]) -> Dict[str, ParamValue]:
        """The parameters splunkd would pass for a stanza configured with ``params``."""
        merged: Dict[str, ParamValue] = {"disabled": "0", "host": self.server_host, "index": "default"}
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # keep key case, as splunkd does
        parser.read(os.path.join(self.addon_dir, "default", "inputs.conf"), encoding="utf-8")
        if parser.has_section(self.scheme_name):
            merged.update(parser.items(self.scheme_name, raw=True))
        merged.update(params)
        return merged

    def input_definition(
        self, name: str, params: Mapping[str, ParamValue], splunkd: SplunkdEndpoint, *, with_defaults: bool = True
    ) -> bytes:
        """The ``<input>`` document splunkd writes to the input's stdin."""
        document = ET.Element("input")
        self._add_metadata(document, splunkd)
        configuration = ET.SubElement(document, "configuration")
        stanza = ET.SubElement(configuration, "stanza", name=f"{self.scheme_name}://{name}", app=self.app)
        self._add_params(stanza, self.effective_params(params) if with_defaults else params)
        return ET.tostring(document, encoding="utf-8")

    def start(
        self,
        name: str,
        params: Mapping[str, ParamValue],
        splunkd: SplunkdEndpoint,
        *,
        extra_env: Optional[Mapping[str, str]] = None,
        keep_events: bool = True,
        with_defaults: bool = True,
    ) -> RunningInput:
        """Start the input for stanza ``<scheme>://<name>``: write the definition to stdin and close it."""
        process = self.popen(name, params, splunkd, extra_env=extra_env, with_defaults=with_defaults)
        return RunningInput(process, self.log_dir, keep_events=keep_events)

    def popen(
        self,
        name: str,
        params: Mapping[str, ParamValue],
        splunkd: SplunkdEndpoint,
        *,
        extra_env: Optional[Mapping[str, str]] = None,
        with_defaults: bool = True,
    ) -> "subprocess.Popen[bytes]":
        """The bare process (stdout and stderr pipes) with its definition written, for callers that read the
        stream their own way (the benchmark counts events without parsing them)."""
        process = subprocess.Popen(
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.bin_dir,
            env=self.environment(extra_env),
        )
        assert process.stdin is not None
        try:
            process.stdin.write(self.input_definition(name, params, splunkd, with_defaults=with_defaults))
            process.stdin.close()
        except BrokenPipeError:
            pass  # the input exited before reading its definition; its exit code and stderr tell why
        return process

    def _add_metadata(self, parent: ET.Element, splunkd: SplunkdEndpoint) -> None:
        ET.SubElement(parent, "server_host").text = self.server_host
        ET.SubElement(parent, "server_uri").text = splunkd.server_uri
        ET.SubElement(parent, "session_key").text = splunkd.session_key
        ET.SubElement(parent, "checkpoint_dir").text = self.checkpoint_dir

    @staticmethod
    def _add_params(parent: ET.Element, params: Mapping[str, ParamValue]) -> None:
        for key, value in params.items():
            if isinstance(value, str):
                ET.SubElement(parent, "param", name=key).text = value
            else:
                values = ET.SubElement(parent, "param_list", name=key)
                for item in value:
                    ET.SubElement(values, "value").text = item
