"""What every input does at start-up, once: AWS clients from its account, role and proxy; the KV progress, claims
and ledger; metrics. The helpers (package/bin/<input>_helper.py) stay thin adapters around it."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NoReturn, Optional, Tuple

from .aws import AwsClients, AwsConnectionSettings, build_session
from .checkpoints import ProgressLedger, ProgressStore
from .claims import ObjectClaims
from .kvstore import KvStoreError
from .logs import SECRETS, addon_logger
from .settings import SplunkdConnection, load_account, load_iam_role, load_proxy

GC_THRESHOLD = 10_000


def connection_settings(
    conn: SplunkdConnection, settings, *, sqs_endpoint_url: Optional[str] = None
) -> AwsConnectionSettings:
    """The input's account, role and proxy from splunkd, with its endpoints. Raises ConfigError when the account,
    role or proxy is missing or invalid."""
    account = load_account(conn, settings.account)  # first: a missing account is the likeliest mistake
    role = load_iam_role(conn, settings.iam_role) if settings.iam_role else None
    proxy = load_proxy(conn)
    if proxy is not None:
        SECRETS.add(proxy.password)
    return AwsConnectionSettings(
        account=account,
        role=role,
        region=settings.region,
        role_session_name=f"splunk-ta-aws-cloudtrail-{settings.name}",
        sqs_endpoint_url=sqs_endpoint_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        sts_endpoint_url=settings.sts_endpoint_url,
        proxy_url=proxy.url if proxy is not None else None,
        ca_bundle=settings.ca_bundle,
        max_pool_connections=settings.max_in_flight + 4,
    )


def connect_aws(
    conn: SplunkdConnection, settings, *, sqs_endpoint_url: Optional[str] = None
) -> Tuple[AwsClients, Optional[str]]:
    """The S3 inputs' clients (SQS, S3), and the proxy URL (for other HTTPS fetches)."""
    connection = connection_settings(conn, settings, sqs_endpoint_url=sqs_endpoint_url)
    return AwsClients(connection), connection.proxy_url


def aws_session(conn: SplunkdConnection, settings) -> Tuple[Any, AwsConnectionSettings]:
    """A boto3 session with the input's account, role and proxy (for inputs that make their own clients)."""
    connection = connection_settings(conn, settings)
    return build_session(connection), connection


@dataclass
class ProgressStack:
    store: ProgressStore
    ledger: ProgressLedger
    claims: ObjectClaims

    def start(self) -> None:
        self.ledger.start()
        self.claims.start()

    def stop(self) -> None:
        self.claims.stop()
        self.ledger.stop()


def progress_stack(conn: SplunkdConnection, logger: logging.Logger) -> ProgressStack:
    """The KV progress collection (created if missing), its ledger and the object claims."""
    store = ProgressStore(conn)
    try:
        store.ensure_collection()
    except KvStoreError as exc:
        logger.warning("%s; continuing without duplicate suppression until the KV store answers", exc)
    ledger = ProgressLedger(store, logger)
    return ProgressStack(store, ledger, ObjectClaims(store, ledger, logger))


@dataclass
class InputContext:
    """One input stanza as splunkd started it."""

    stanza: str
    conn: SplunkdConnection
    logger: logging.Logger
    stop: threading.Event  # set by SIGTERM (splunkd stopping or restarting the input)


def run_stanzas(inputs: Any, run_one: Callable[[InputContext, Mapping[str, Any]], None]) -> None:
    """The body of a helper's stream_events(): each stanza (one per process) with its logger and stop event."""
    from solnlib import utils

    # Parsed records are acyclic and freed by reference counting, but each one allocates dozens of containers: at
    # the default threshold (700) the cyclic collector ran every ~20 records and took ~2.7 ms per 1,000 events of
    # the SQS input's CPU (measured with gc.callbacks), ~1.1 ms at 10,000. Cyclic garbage waits a little longer.
    gc.set_threshold(GC_THRESHOLD, 10, 10)
    # splunkd reads events as UTF-8 XML, whatever the locale it started us with
    if (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "") != "utf8":
        sys.stdout.reconfigure(encoding="utf-8")
    for stanza, params in inputs.inputs.items():  # use_single_instance = false: one stanza per process
        conn = SplunkdConnection.from_server_uri(inputs.metadata["server_uri"], inputs.metadata["session_key"])
        SECRETS.add(conn.session_key)
        stop = threading.Event()
        utils.handle_teardown_signals(lambda signum, frame, stop=stop: stop.set())
        run_one(InputContext(stanza, conn, addon_logger(stanza.split("://", 1)[-1]), stop), params)


def cannot_start(context: InputContext, event_writer: Any, problem: Exception) -> NoReturn:
    """End an input whose configuration is unusable: one ERROR in its log and in splunkd's, exit status 2."""
    from splunklib.modularinput import EventWriter

    context.logger.error("Input %s cannot start: %s", context.stanza, problem)
    event_writer.log(EventWriter.ERROR, f"{context.stanza} cannot start: {problem}")
    raise SystemExit(2) from None


def forget_input(session_key: str, input_name: str, what: str, delete: Callable[[SplunkdConnection], None]) -> None:
    """For a REST handler deleting an input: delete its KV state too; a failure is logged, never blocks it."""
    from solnlib.splunkenv import get_splunkd_access_info

    SECRETS.add(session_key)
    logger = addon_logger("rest_handlers")
    try:
        scheme, host, port = get_splunkd_access_info(session_key)
        delete(SplunkdConnection(scheme, host, port, session_key))
        logger.info("Deleted the KV store %s of input %s", what, input_name)
    except KvStoreError as exc:
        # the input is still deleted; its documents stay until someone deletes them
        logger.warning("Input %s deleted, but its %s in the KV store could not be removed: %s", input_name, what, exc)
