"""The SQS input's loop: receive, heartbeat, delete, poison; the objects themselves go through object_ingest.

Threads: a receiver long-polls SQS while there is room (`max_in_flight` messages in the workers' hands plus one
batch waiting for them), parses each message and looks up the progress of its objects in one KV call; a worker
hands a message's objects to the object path one after the other, every one of them even when one fails; a
deleter removes finished messages in batches once their progress is saved; a heartbeat renews the visibility of
every message not yet deleted. A slow object occupies one worker only.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from botocore.exceptions import BotoCoreError, ClientError

from .aws import AwsClients, aws_error_code, describe_aws_error, is_transient
from .checkpoints import ProgressLedger, progress_key
from .claims import ObjectClaims
from .events import EventSink
from .logs import OutageLog, redact
from .metrics import InputMetrics
from .notifications import Notification, NotificationError, ObjectRef, parse_message_body
from .object_ingest import Interrupted, ObjectFailed, ObjectIngester
from .settings import ConfigError, InputSettings
from .sns_signature import SnsCertificateFetchError, SnsSignatureError, SnsSignatureValidator

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


class MessageFailed(Exception):
    """Processing a message failed; `kind` names the failure for metrics, `retryable` whether waiting helps.

    `seq` is the ledger sequence of the progress of its objects that were done (saved before a retry).
    """

    def __init__(self, reason: str, kind: str, retryable: bool = True, seq: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.retryable = retryable
        self.seq = seq


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
        claims: ObjectClaims,
        sink: EventSink,
        metrics: InputMetrics,
        logger: logging.Logger,
        queue_facts: QueueFacts,
        sns_validator: Optional[SnsSignatureValidator] = None,
    ) -> None:
        self.settings = settings
        self._sqs = clients.sqs
        self._ledger = ledger
        self._metrics = metrics
        self._log = logger
        self._queue = queue_facts
        self._sns_validator = sns_validator
        self._outages = OutageLog(logger)
        self._give_up_after = settings.max_receive_count
        self._stop = threading.Event()
        self._objects = ObjectIngester(
            settings, clients.s3, ledger, claims, sink, metrics, logger, self._outages, self._stop
        )
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
            if failure.seq:  # the objects that were done are not read again on the next receive
                self._ledger.wait_saved(failure.seq, timeout=3.0)
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
        # every object is attempted: one that fails does not keep the others from being read
        last_seq = 0
        failures: List[Tuple[ObjectRef, ObjectFailed]] = []
        for ref in notification.objects:
            if self._stop.is_set():
                raise Interrupted(last_seq)
            try:
                last_seq = max(last_seq, self._objects.ingest(ref, f"message {message.message_id}"))
            except Interrupted as interrupted:
                raise Interrupted(max(last_seq, interrupted.seq)) from None
            except ObjectFailed as failure:
                last_seq = max(last_seq, failure.seq)
                failures.append((ref, failure))
        if failures:
            raise _objects_failed(failures, len(notification.objects), last_seq)
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


MAX_FAILURES_NAMED = 10


def _objects_failed(failures: List[Tuple[ObjectRef, ObjectFailed]], total: int, seq: int) -> MessageFailed:
    """One MessageFailed naming each object that failed and why (the objects done are not read again)."""
    reasons = [failure.reason.rstrip(".") for _, failure in failures[:MAX_FAILURES_NAMED]]
    if len(failures) > MAX_FAILURES_NAMED:
        reasons.append(f"and {len(failures) - MAX_FAILURES_NAMED} more")
    text = "; ".join(reasons)
    if total > 1:
        text = f"{len(failures)} of its {total} objects failed ({total - len(failures)} done): {text}"
    first = failures[0][1]
    return MessageFailed(text, first.kind, any(f.retryable for _, f in failures), seq)
