"""The input's loop: SQS message -> objects -> records -> events on stdout -> progress saved -> delete.

Threads: a receiver long-polls SQS while there is room (`max_in_flight` messages in the workers' hands plus one
batch waiting for them), parses each message and looks up the progress of its objects in one KV call; a worker
reads a message's objects one after the other, writing events in flushed batches and reporting progress after
each; a deleter removes finished messages in batches once their progress is saved; a heartbeat renews the
visibility of every message not yet deleted. A slow object occupies one worker only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from botocore.exceptions import BotoCoreError, ClientError

from . import routing
from .aws import AwsClients, aws_error_code, describe_aws_error, is_transient
from .batches import EventBatch, event_batches
from .checkpoints import ObjectProgress, ProgressLedger, progress_key
from .events import EventFormatter, EventSink, event_time
from .filters import RecordFilter
from .logs import OutageLog, redact
from .metrics import InputMetrics
from .notifications import Notification, NotificationError, ObjectRef, parse_message_body
from .objects import ObjectFormatError, ObjectTooLargeError, iter_records, read_document
from .settings import ConfigError, InputSettings
from .sns_signature import SnsCertificateFetchError, SnsSignatureError, SnsSignatureValidator

DIGEST_SOURCETYPE = "aws:cloudtrail:digest"
READ_CHUNK = 1 << 20
# A long poll returns as soon as a message arrives, so this only bounds how long a stop waits for the last
# poll: a poll abandoned by an exiting process could still be handed a message, hiding it for a visibility
# timeout. 5 s costs ~17k empty receives a day (cents) and keeps shutdown short.
WAIT_TIME_SECONDS = 5
# What str.splitlines() (and log viewers) treat as line breaks, escaped so that an excerpt stays one line.
_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
_LINE_BREAKS.update({ord("\n"): "\\n", ord("\r"): "\\r"})
# Failures that retrying cannot fix still wait this long, so a poison message reaches the limit quickly.
HOPELESS_RETRY_DELAY = 2
SHUTDOWN_GRACE_SECONDS = 8.0
PURGE_EVERY_SECONDS = 6 * 3600


class Interrupted(Exception):
    """Shutdown was requested while the message was being processed; `seq` is its last progress report."""

    def __init__(self, seq: int = 0) -> None:
        super().__init__("shutdown requested")
        self.seq = seq


class MessageFailed(Exception):
    """Processing a message failed; `kind` names the failure for metrics, `retryable` whether waiting helps."""

    def __init__(self, reason: str, kind: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.retryable = retryable


@dataclass(eq=False)
class InFlightMessage:
    message_id: str
    receipt_handle: str = field(repr=False)
    body: str = field(repr=False)
    receive_count: int
    sent_epoch: Optional[float]
    visible_until: float
    notification: Optional[Notification] = None
    parse_error: Optional[str] = None

    def excerpt(self, length: int = 200) -> str:
        """The body's first characters on one line (every line break escaped), secrets redacted."""
        text = self.body[:length].translate(_LINE_BREAKS)
        return redact(text) + ("…" if len(self.body) > length else "")


@dataclass
class QueueFacts:
    """What GetQueueAttributes says about the queue at startup."""

    arn: str
    dead_letter_target: Optional[str]
    redrive_max_receive_count: Optional[int]


def read_queue_facts(clients: AwsClients, queue_url: str) -> QueueFacts:
    """Queue ARN and redrive policy.

    Raises ConfigError when the queue cannot be used (no permission, no such queue, bad credentials), and the
    botocore error itself when the failure is transient (network, throttling) so the caller can wait and retry.
    """
    try:
        attributes = clients.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])[
            "Attributes"
        ]
    except (ClientError, BotoCoreError) as exc:
        if is_transient(exc):
            raise
        message, _ = describe_aws_error(exc, "reading the attributes of queue", queue_url)
        raise ConfigError(message) from None
    policy: Dict[str, Any] = {}
    if attributes.get("RedrivePolicy"):
        try:
            policy = json.loads(attributes["RedrivePolicy"])
        except ValueError:
            policy = {}
    max_receive = policy.get("maxReceiveCount")
    return QueueFacts(
        arn=attributes.get("QueueArn", ""),
        dead_letter_target=policy.get("deadLetterTargetArn"),
        redrive_max_receive_count=int(max_receive) if str(max_receive or "").isdigit() else None,
    )


def missing_dlq_message(queue_url: str, facts: QueueFacts) -> str:
    dlq_arn = (facts.arn + "-dlq") if facts.arn else "arn:aws:sqs:<region>:<account>:<queue>-dlq"
    policy = '{\\"deadLetterTargetArn\\":\\"' + dlq_arn + '\\",\\"maxReceiveCount\\":\\"5\\"}'
    return (
        f"The queue {queue_url} has no dead-letter queue, and 'Require a dead-letter queue' is on: a message that "
        "cannot be processed would otherwise be lost. Create a queue for failed messages and attach it, for "
        f"example: aws sqs set-queue-attributes --queue-url {queue_url} --attributes "
        f"'{{\"RedrivePolicy\":\"{policy}\"}}' ; or turn off 'Require a dead-letter queue' on the input."
    )


class CloudTrailSqsInput:
    def __init__(
        self,
        settings: InputSettings,
        clients: AwsClients,
        ledger: ProgressLedger,
        sink: EventSink,
        metrics: InputMetrics,
        logger: logging.Logger,
        queue_facts: QueueFacts,
        sns_validator: Optional[SnsSignatureValidator] = None,
    ) -> None:
        self.settings = settings
        self._sqs = clients.sqs
        self._s3 = clients.s3
        self._ledger = ledger
        self._sink = sink
        self._metrics = metrics
        self._log = logger
        self._queue = queue_facts
        self._sns_validator = sns_validator
        self._outages = OutageLog(logger)
        self._formatter = EventFormatter(settings.stanza, settings.index, settings.host)
        record_filter = RecordFilter(
            exclude_event_names=_compile(settings.exclude_event_names),
            exclude_read_only=settings.exclude_read_only,
            include_event_sources=settings.include_event_sources,
            exclude_event_sources=settings.exclude_event_sources,
            allowed_accounts=settings.allowed_accounts,
        )
        self._filter: Optional[RecordFilter] = None if record_filter.is_empty else record_filter
        self._give_up_after = settings.max_receive_count
        self._stop = threading.Event()
        self._in_flight: Dict[str, InFlightMessage] = {}
        self._in_flight_lock = threading.Lock()
        # max_in_flight messages being processed, and up to one more batch received and waiting for a worker
        self._slots = threading.BoundedSemaphore(settings.max_in_flight + settings.batch_size)
        # finished messages and the ledger sequence their deletion must wait for (progress saved first)
        self._deletions: queue.Queue[Tuple[InFlightMessage, int]] = queue.Queue()
        self._workers_done = threading.Event()

    # --- lifecycle ---

    def run(self, stop: threading.Event) -> None:
        """Ingest until `stop` is set, then finish cleanly: no partial event, progress saved, nothing lost."""
        if self._queue.redrive_max_receive_count and self._queue.redrive_max_receive_count > self._give_up_after:
            self._log.warning(
                "The queue's redrive policy moves a message to the dead-letter queue after %d receives, the input "
                "gives up after %d: a given-up message may come back %d more times before SQS moves it",
                self._queue.redrive_max_receive_count,
                self._give_up_after,
                self._queue.redrive_max_receive_count - self._give_up_after,
            )
        executor = ThreadPoolExecutor(max_workers=self.settings.max_in_flight, thread_name_prefix="object")
        helpers = [
            threading.Thread(target=self._receive_loop, args=(executor,), name="receiver", daemon=True),
            threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True),
            threading.Thread(target=self._delete_loop, name="deleter", daemon=True),
        ]
        for thread in helpers:
            thread.start()
        next_purge = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_purge:
                self._purge_expired_progress()
                next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            stop.wait(5.0)
        self._shutdown(executor, helpers)

    def _shutdown(self, executor: ThreadPoolExecutor, helpers: List[threading.Thread]) -> None:
        self._log.info("Stopping: finishing the current batches, saving progress, releasing unfinished messages")
        self._stop.set()
        # the receiver's last long poll returns within WAIT_TIME_SECONDS; what it got is released at once
        helpers[0].join(WAIT_TIME_SECONDS + 5)
        # workers notice the stop between batches; don't hang on a stuck S3 read forever
        waiter = threading.Thread(target=executor.shutdown, kwargs={"wait": True}, daemon=True)
        waiter.start()
        waiter.join(SHUTDOWN_GRACE_SECONDS)
        if waiter.is_alive():
            self._log.warning("Some objects were still being read at shutdown; their messages will be redelivered")
        self._workers_done.set()
        helpers[2].join(SHUTDOWN_GRACE_SECONDS)  # deleter drains what finished
        self._ledger.stop()

    def _purge_expired_progress(self) -> None:
        cutoff = time.time() - self.settings.checkpoint_retention_days * 86400
        try:
            self._ledger.purge(self.settings.name, cutoff)
        except Exception as exc:  # purge is housekeeping: never stop ingestion for it
            self._log.warning(
                "Could not purge progress older than %d days: %s", self.settings.checkpoint_retention_days, redact(exc)
            )

    # --- receiving ---

    def _receive_loop(self, executor: ThreadPoolExecutor) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=1.0):
                continue
            wanted = 1
            while wanted < self.settings.batch_size and self._slots.acquire(blocking=False):
                wanted += 1
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=WAIT_TIME_SECONDS,
                    VisibilityTimeout=self.settings.visibility_timeout,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                )
            except (ClientError, BotoCoreError) as exc:
                for _ in range(wanted):
                    self._slots.release()
                message, _ = describe_aws_error(exc, "receiving from the queue", self.settings.queue_url)
                self._metrics.error("sqs_receive")
                self._outages.failure(f"sqs_receive ({aws_error_code(exc)})", f"{message}; retrying with backoff")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self._outages.recovered("sqs_receive")
            backoff = 1.0
            messages = response.get("Messages", [])
            for _ in range(wanted - len(messages)):
                self._slots.release()
            batch = [self._track(raw) for raw in messages]
            if self._stop.is_set():
                for message in batch:
                    self._release(message)
                    self._slots.release()
                continue
            # one KV lookup for the whole batch instead of one per object
            self._ledger.prefetch(
                [progress_key(ref.bucket, ref.key) for m in batch if m.notification for ref in m.notification.objects]
            )
            for message in batch:
                executor.submit(self._handle, message)

    def _track(self, raw: Dict[str, Any]) -> InFlightMessage:
        attributes = raw.get("Attributes", {})
        sent = attributes.get("SentTimestamp")
        message = InFlightMessage(
            message_id=raw.get("MessageId", "?"),
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            sent_epoch=int(sent) / 1000.0 if str(sent or "").isdigit() else None,
            visible_until=time.monotonic() + self.settings.visibility_timeout,
        )
        try:
            message.notification = parse_message_body(message.body)
        except NotificationError as exc:
            message.parse_error = str(exc)
        with self._in_flight_lock:
            self._in_flight[message.receipt_handle] = message
        self._metrics.add(messages_received=1)
        if message.sent_epoch:
            self._metrics.message_sent_at(message.sent_epoch)
        return message

    def _untrack(self, message: InFlightMessage) -> None:
        with self._in_flight_lock:
            self._in_flight.pop(message.receipt_handle, None)

    # --- one message ---

    def _handle(self, message: InFlightMessage) -> None:
        try:
            self._deletions.put((message, self._process_message(message)))
        except Interrupted as interrupted:
            # make sure the progress of the last batch is saved before another reader can resume the message
            if interrupted.seq:
                self._ledger.wait_saved(interrupted.seq, timeout=3.0)
            self._release(message)
        except MessageFailed as failure:
            self._fail(message, failure)
        except Exception as exc:  # a bug must not kill the worker nor lose the message
            self._log.exception("Unexpected error on message %s; it will be retried", message.message_id)
            self._fail(message, MessageFailed(f"unexpected {type(exc).__name__}: {redact(exc)}", "internal"))
        finally:
            self._slots.release()

    def _process_message(self, message: InFlightMessage) -> int:
        """Ingest the message's objects; returns the ledger sequence to wait for before deleting it (0: none)."""
        if message.receive_count > self._give_up_after:
            raise MessageFailed(
                f"it was already received {message.receive_count - 1} times without success", "poison", False
            )
        notification = message.notification
        if notification is None:
            raise MessageFailed(
                f"not a notification this input understands ({message.parse_error.rstrip('.')})",
                "bad_notification",
                retryable=False,
            )
        if notification.sns_envelope is not None and self._sns_validator is not None:
            self._check_sns_signature(notification.sns_envelope)
        if notification.skipped_records:
            self._log.debug(
                "Message %s: %d records are not ObjectCreated events, skipped",
                message.message_id,
                notification.skipped_records,
            )
        if not notification.objects:
            self._metrics.add(messages_skipped=1)
            if notification.shape == "s3_test_event":
                self._log.info(
                    "Message %s is the s3:TestEvent S3 sends when notifications are set up; deleted", message.message_id
                )
            else:
                self._log.info("Message %s (%s) names no new object; deleted", message.message_id, notification.shape)
            return 0
        last_seq = 0
        for ref in notification.objects:
            if self._stop.is_set():
                raise Interrupted(last_seq)
            last_seq = max(last_seq, self._process_object(message, ref))
        return last_seq

    def _check_sns_signature(self, envelope: Dict[str, Any]) -> None:
        assert self._sns_validator is not None
        try:
            self._sns_validator.validate(envelope)
            self._outages.recovered("sns_certificate")
        except SnsCertificateFetchError as exc:
            raise MessageFailed(f"cannot check its SNS signature: {redact(exc)}", "sns_certificate") from None
        except SnsSignatureError as exc:
            self._metrics.add(sns_rejected=1)
            raise MessageFailed(f"SNS signature rejected: {redact(exc)}", "sns_signature", retryable=False) from None

    # --- one object ---

    def _process_object(self, message: InFlightMessage, ref: ObjectRef) -> int:
        """Ingest one object; returns the ledger sequence of its last progress report (0 if none)."""
        settings = self.settings
        if settings.allowed_buckets and ref.bucket not in settings.allowed_buckets:
            self._metrics.add(objects_rejected=1)
            self._log.warning(
                "Rejected %s (message %s): bucket not in the allowed buckets", ref.source, message.message_id
            )
            return 0
        kind = routing.classify_key(ref.key)
        if kind == routing.OTHER:
            self._metrics.add(objects_skipped_other=1)
            self._log.debug("Skipped %s: not a CloudTrail log file", ref.source)
            return 0
        if kind == routing.DIGEST and not settings.ingest_digest_files:
            self._metrics.add(objects_skipped_digest=1)
            return 0
        account = routing.account_from_key(ref.key)
        if settings.allowed_accounts and account is not None and account not in settings.allowed_accounts:
            self._metrics.add(objects_rejected=1)
            self._log.warning(
                "Rejected %s (message %s): account %s not in the allowed account IDs",
                ref.source,
                message.message_id,
                account,
            )
            return 0

        response, key = self._get_object(ref)
        if key != ref.key:  # found under the key as sent: that is the object's real name
            ref = dataclasses.replace(ref, key=key)
        body = response["Body"]
        try:
            version = response.get("VersionId") or ref.version_id or (response.get("ETag") or ref.etag or "").strip('"')
            progress = ObjectProgress(
                key_id=progress_key(ref.bucket, key),
                bucket=ref.bucket,
                object_key=key,
                version=version,
                records_done=0,
                done=False,
                input=settings.name,
            )
            saved = self._ledger.lookup(progress.key_id)
            if saved is not None and saved.version != version:
                saved = None  # progress of an earlier version of the object: this one is new
            if saved is not None and saved.done:
                self._metrics.add(objects_skipped_done=1)
                self._log.info("Skipped %s (message %s): already ingested", ref.source, message.message_id)
                return 0
            resume_from = saved.records_done if saved is not None else 0
            chunks = self._counted_chunks(body)
            if kind == routing.DIGEST:
                return self._ingest_digest(ref, chunks, progress)
            return self._ingest_records(message, ref, chunks, progress, resume_from)
        finally:
            body.close()

    def _get_object(self, ref: ObjectRef):
        params = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            params["VersionId"] = ref.version_id
        try:
            response = self._s3.get_object(**params)
            self._outages.recovered("s3_")
            return response, ref.key
        except (ClientError, BotoCoreError) as exc:
            if aws_error_code(exc) == "NoSuchKey" and ref.key_as_sent != ref.key:
                # the notification's key may not have been URL-encoded after all
                try:
                    return self._s3.get_object(**dict(params, Key=ref.key_as_sent)), ref.key_as_sent
                except (ClientError, BotoCoreError):
                    pass
            message, retryable = describe_aws_error(exc, "reading", ref.source)
            raise MessageFailed(message, f"s3_{aws_error_code(exc)}", retryable) from None

    def _counted_chunks(self, body) -> Iterator[bytes]:
        for chunk in body.iter_chunks(READ_CHUNK):
            self._metrics.add(bytes_read=len(chunk))
            yield chunk

    def _ingest_records(
        self,
        message: InFlightMessage,
        ref: ObjectRef,
        chunks: Iterator[bytes],
        progress: ObjectProgress,
        resume_from: int,
    ) -> int:
        events = self._formatter.for_object(ref.source, self.settings.sourcetype)
        records = iter_records(chunks, self.settings.max_decompressed_bytes)
        last_seq = 0
        try:
            for batch in event_batches(records, events, self._filter, resume_from):
                last_seq = self._write(batch, progress)
                if self._stop.is_set():
                    raise Interrupted(last_seq)
        except ObjectFormatError as exc:
            # every good record before the damage is written; retrying cannot repair the object
            self._metrics.add(objects_failed=1)
            self._metrics.error("object_too_large" if isinstance(exc, ObjectTooLargeError) else "object_format")
            self._log.error(
                "%s (message %s): %s; %s before the damage kept, the object is marked done",
                ref.source,
                message.message_id,
                redact(exc).rstrip("."),
                _records(progress.records_done),
            )
        except (ClientError, BotoCoreError) as exc:
            reason, retryable = describe_aws_error(exc, "reading", ref.source)
            raise MessageFailed(
                f"{reason}; resumes after record {progress.records_done}", "s3_read", retryable
            ) from None
        else:
            self._metrics.add(objects_ingested=1)
            if progress.records_done == 0:
                self._log.warning("%s has no CloudTrail records (no Records array or an empty one)", ref.source)
            self._log.debug(
                "Ingested %s: %d records (resumed after %d)", ref.source, progress.records_done, resume_from
            )
        progress.done = True
        return self._ledger.report(progress, 0)

    def _write(self, batch: EventBatch, progress: ObjectProgress) -> int:
        """Write and flush a batch of events, then report the progress it covers; returns the ledger seq."""
        written = len(batch.events)
        if written:
            self._sink.write(batch.events)
            newest = event_time(batch.newest_record.get("eventTime")) if batch.newest_record else None
            self._metrics.events_written(self.settings.sourcetype, written, float(newest) if newest else None)
        self._metrics.add(**batch.counts)
        if batch.counts["records_invalid"]:
            self._log.warning(
                "s3://%s/%s: %s not JSON objects, skipped",
                progress.bucket,
                progress.object_key,
                _records(batch.counts["records_invalid"]),
            )
        progress.records_done = batch.records_done
        return self._ledger.report(progress, written)

    def _ingest_digest(self, ref: ObjectRef, chunks: Iterator[bytes], progress: ObjectProgress) -> int:
        try:
            text, document = read_document(chunks, self.settings.max_decompressed_bytes)
        except ObjectFormatError as exc:
            self._metrics.add(objects_failed=1)
            self._log.error("Digest file %s cannot be read: %s; skipped", ref.source, redact(exc))
            progress.done = True
            return self._ledger.report(progress, 0)
        time_text = event_time(document.get("digestEndTime")) if isinstance(document, dict) else None
        self._sink.write([self._formatter.for_object(ref.source, DIGEST_SOURCETYPE).format_document(text, time_text)])
        self._metrics.events_written(DIGEST_SOURCETYPE, 1, None)
        self._metrics.add(objects_ingested=1)
        progress.records_done = 1
        progress.done = True
        return self._ledger.report(progress, 1)

    # --- outcomes ---

    def _fail(self, message: InFlightMessage, failure: MessageFailed) -> None:
        self._metrics.add(messages_failed=1)
        self._metrics.error(failure.kind)
        if message.receive_count >= self._give_up_after:
            self._give_up(message, failure)
            return
        delay = (
            min(self.settings.visibility_timeout, 15 * 2 ** (message.receive_count - 1))
            if failure.retryable
            else HOPELESS_RETRY_DELAY
        )
        text = (
            f"Message {message.message_id} (receive {message.receive_count} of {self._give_up_after}) failed: "
            f"{failure.reason}; it will be retried in {delay} s"
        )
        if failure.kind == "bad_notification":
            text += f". Body starts with: {message.excerpt()}"
        if failure.retryable and failure.kind.startswith(("s3_", "sns_certificate")):
            # the same cause fails every message during an outage: one line when it starts, one when it ends
            self._outages.failure(failure.kind, text)
        else:
            self._log.warning("%s", text)
        self._change_visibility(message, delay)
        self._untrack(message)

    def _give_up(self, message: InFlightMessage, failure: MessageFailed) -> None:
        self._metrics.add(messages_given_up=1)
        if self._queue.dead_letter_target:
            self._log.error(
                "Message %s given up after %d receives: %s; left for the dead-letter queue %s. Body starts with: %s",
                message.message_id,
                message.receive_count,
                failure.reason,
                self._queue.dead_letter_target,
                message.excerpt(),
            )
            # SQS moves it to the dead-letter queue on its next receive once the redrive limit is reached; before
            # that (a redrive limit above ours) it would come straight back: keep it away for a while
            reaches_dlq_next = (self._queue.redrive_max_receive_count or 0) <= message.receive_count
            self._change_visibility(message, HOPELESS_RETRY_DELAY if reaches_dlq_next else 30)
            self._untrack(message)
        else:
            self._log.error(
                "Message %s given up after %d receives: %s; DELETED because the queue has no dead-letter queue. "
                "Body starts with: %s",
                message.message_id,
                message.receive_count,
                failure.reason,
                message.excerpt(),
            )
            self._deletions.put((message, 0))

    def _release(self, message: InFlightMessage) -> None:
        """Make an unfinished message visible again at once (its progress is saved): another run resumes it."""
        self._metrics.add(messages_released=1)
        self._change_visibility(message, 0)
        self._untrack(message)

    def _change_visibility(self, message: InFlightMessage, seconds: int) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.settings.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError) as exc:
            reason, _ = describe_aws_error(exc, "changing the visibility of message", message.message_id)
            self._outages.failure("sqs_visibility", f"{reason}; it becomes visible again after its visibility timeout")

    # --- heartbeat and deletions ---

    def _heartbeat_loop(self) -> None:
        timeout = self.settings.visibility_timeout
        interval = max(1.0, timeout / 6.0)
        while not self._workers_done.wait(interval):
            now = time.monotonic()
            with self._in_flight_lock:
                due = [m for m in self._in_flight.values() if m.visible_until - now < timeout / 2.0]
            for start in range(0, len(due), 10):
                self._extend(due[start : start + 10], timeout)

    def _extend(self, messages: List[InFlightMessage], timeout: int) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": timeout}
            for i, m in enumerate(messages)
        ]
        try:
            response = self._sqs.change_message_visibility_batch(QueueUrl=self.settings.queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            reason, _ = describe_aws_error(exc, "extending the visibility of messages in flight")
            self._outages.failure("sqs_visibility", f"{reason}; will try again")
            return
        self._outages.recovered("sqs_visibility")
        now = time.monotonic()
        for ok in response.get("Successful", []):
            messages[int(ok["Id"])].visible_until = now + timeout
        for failed in response.get("Failed", []):
            message = messages[int(failed["Id"])]
            self._log.warning(
                "Could not extend the visibility of message %s (%s); it may be delivered again while being processed",
                message.message_id,
                failed.get("Code"),
            )

    def _delete_loop(self) -> None:
        while True:
            try:
                first = self._deletions.get(timeout=0.2)
            except queue.Empty:
                if self._workers_done.is_set():
                    return
                continue
            batch = [first]
            while len(batch) < 10:
                try:
                    batch.append(self._deletions.get_nowait())
                except queue.Empty:
                    break
            # a message goes only once the progress of its objects is saved (or the KV store is out)
            self._ledger.wait_saved(max(seq for _, seq in batch))
            self._delete([message for message, _ in batch])

    def _delete(self, messages: List[InFlightMessage]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(messages)]
        try:
            response = self._sqs.delete_message_batch(QueueUrl=self.settings.queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            # botocore already retried; the messages come back after their visibility timeout and their
            # objects are marked done, so nothing is indexed twice (unless the KV store is out too)
            reason, _ = describe_aws_error(exc, "deleting finished messages")
            self._outages.failure("sqs_delete", f"{reason}; they will be delivered again and skipped as done")
        else:
            self._outages.recovered("sqs_delete")
            self._metrics.add(messages_deleted=len(response.get("Successful", [])))
            for entry in response.get("Failed", []):
                self._log.error(
                    "Could not delete message %s (%s); it will be delivered again and skipped as done",
                    messages[int(entry["Id"])].message_id,
                    entry.get("Code"),
                )
        for message in messages:
            self._untrack(message)


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def _compile(pattern: Optional[str]) -> Optional[re.Pattern[str]]:
    return re.compile(pattern) if pattern else None
