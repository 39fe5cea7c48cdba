"""Per-input log files (solnlib) and the redaction of secrets from everything the add-on writes.

Every secret the add-on learns (secret access keys, session tokens, external ids, proxy passwords, the
splunkd session key) is registered in SECRETS; a filter on each log handler and redact() on error
texts replace them, so no log line, stderr line or exception message can carry one.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Optional, Set

REDACTED = "********"
# user:password@ in URLs (proxy URLs end up in botocore's connection errors)
_URL_CREDENTIALS = re.compile(r"(?<=//)[^/@\s:]+:[^/@\s]+@")
# botocore/urllib3 texts that quote credentials or signatures by name
_NAMED_CREDENTIALS = re.compile(
    r"(?i)((?:aws_)?(?:secret_access_key|session_token|security[-_]token|password|external_?id|signature)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+"
)


class SecretRegistry:
    """The secret values this process knows; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Set[str] = set()
        self._ordered: list = []

    def add(self, value: Optional[str]) -> None:
        # Very short values would redact ordinary words; credentials are never that short.
        if not value or len(value) < 4:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                self._ordered = sorted(self._values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, REDACTED)
        text = _URL_CREDENTIALS.sub(REDACTED + "@", text)
        return _NAMED_CREDENTIALS.sub(r"\1" + REDACTED, text)


SECRETS = SecretRegistry()


def redact(text: object) -> str:
    """The text with every known secret replaced; use it on any foreign error message before logging."""
    return SECRETS.redact(str(text))


class RedactingFilter(logging.Filter):
    """Applies SECRETS to the fully formatted message (arguments included) and the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            formatter = logging.Formatter()
            message = message + "\n" + formatter.formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = SECRETS.redact(message)
        record.args = None
        return True


def log_directory() -> str:
    """$SPLUNK_HOME/var/log/splunk: where splunkd indexes add-on logs into _internal."""
    splunk_home = os.environ.get("SPLUNK_HOME")
    if not splunk_home:
        raise RuntimeError("SPLUNK_HOME is not set: the input must be started by splunkd")
    return os.path.join(splunk_home, "var", "log", "splunk")


def addon_logger(name: str, level: str = "INFO") -> logging.Logger:
    """A log file of the add-on: $SPLUNK_HOME/var/log/splunk/ta_aws_cloudtrail_<name>.log."""
    from solnlib import log

    log.Logs.set_context(directory=log_directory(), namespace="ta_aws_cloudtrail")
    logger = log.Logs().get_logger(name)
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    logger.setLevel(level)
    # Libraries (solnlib's retries, botocore, urllib3) log on the root logger; without a handler Python
    # prints their warnings on stderr. Send them to this file, redacted, from WARNING up.
    root = logging.getLogger()
    if not root.handlers:
        root.setLevel(logging.WARNING)
        for handler in logger.handlers:
            root.addHandler(handler)
    return logger


class OutageLog:
    """One WARNING when a kind of failure starts, DEBUG while it lasts, one INFO when it ends.

    During an outage (S3 answering 503, a proxy down) every message fails the same way; the admin needs to
    know it started, what to do, and that it ended, not one line per message or per retry.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self._active: dict = {}  # kind -> [failures, first failure time]

    def failure(self, kind: str, message: str) -> None:
        with self._lock:
            state = self._active.get(kind)
            if state is None:
                self._active[kind] = [1, time.monotonic()]
            else:
                state[0] += 1
        if state is None:
            self._logger.warning("%s (further failures of this kind are logged at DEBUG until it recovers)", message)
        else:
            self._logger.debug("%s (failure %d of this kind)", message, state[0] + 1)

    def recovered(self, kind_prefix: str) -> None:
        if not self._active:
            return
        with self._lock:
            ended = {k: v for k, v in self._active.items() if k.startswith(kind_prefix)}
            for kind in ended:
                del self._active[kind]
        for kind, (count, started) in ended.items():
            self._logger.info(
                "Recovered from %s after %d failures over %.0f s", kind, count, time.monotonic() - started
            )
