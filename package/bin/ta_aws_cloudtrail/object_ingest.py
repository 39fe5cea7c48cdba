"""The S3 object path shared by the inputs: one object -> records -> events on stdout -> progress saved.

For each object: allowlists and key routing, GetObject, the claim (one reader per object, see claims.py), resume
after the records an earlier reader handled, records streamed in flushed batches with progress reported after
each, digest files as one document. The caller (an input loop) decides what a failure means for its message or
listing; this module raises ObjectFailed with a reason that names the object, or Interrupted at shutdown.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from typing import FrozenSet, Iterator, Optional, Protocol, Tuple

from botocore.exceptions import BotoCoreError, ClientError

from . import routing
from .aws import aws_error_code, describe_aws_error
from .batches import EventBatch, event_batches
from .checkpoints import ObjectProgress, ProgressLedger, progress_key
from .claims import CLAIMED, DONE, ObjectClaims
from .events import EventFormatter, EventSink, event_time
from .filters import RecordFilter
from .logs import OutageLog, redact
from .metrics import InputMetrics
from .notifications import ObjectRef
from .objects import ObjectFormatError, ObjectTooLargeError, iter_records, read_document

DIGEST_SOURCETYPE = "aws:cloudtrail:digest"
READ_CHUNK = 1 << 20


class ObjectSettings(Protocol):
    """What the object path needs of an input's settings."""

    name: str
    stanza: str
    index: Optional[str]
    host: Optional[str]
    sourcetype: str
    exclude_event_names: Optional[str]
    exclude_read_only: bool
    include_event_sources: FrozenSet[str]
    exclude_event_sources: FrozenSet[str]
    allowed_buckets: FrozenSet[str]
    allowed_accounts: FrozenSet[str]
    ingest_digest_files: bool
    max_decompressed_bytes: int


class Interrupted(Exception):
    """Shutdown was requested while an object was being read; `seq` is its last progress report."""

    def __init__(self, seq: int = 0) -> None:
        super().__init__("shutdown requested")
        self.seq = seq


class ObjectFailed(Exception):
    """One object could not be read; `reason` names it, `kind` is for metrics, `retryable` whether waiting helps.

    `seq` is the ledger sequence of its last progress report (the records before the failure are kept).
    """

    def __init__(self, reason: str, kind: str, retryable: bool = True, seq: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.retryable = retryable
        self.seq = seq


def record_filter(settings: ObjectSettings) -> Optional[RecordFilter]:
    """The input's record filters, or None when it has none (the common case costs nothing per record)."""
    pattern = settings.exclude_event_names
    built = RecordFilter(
        exclude_event_names=re.compile(pattern) if pattern else None,
        exclude_read_only=settings.exclude_read_only,
        include_event_sources=settings.include_event_sources,
        exclude_event_sources=settings.exclude_event_sources,
        allowed_accounts=settings.allowed_accounts,
    )
    return None if built.is_empty else built


class ObjectIngester:
    def __init__(
        self,
        settings: ObjectSettings,
        s3,
        ledger: ProgressLedger,
        claims: ObjectClaims,
        sink: EventSink,
        metrics: InputMetrics,
        logger: logging.Logger,
        outages: OutageLog,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self._s3 = s3
        self._ledger = ledger
        self._claims = claims
        self._sink = sink
        self._metrics = metrics
        self._log = logger
        self._outages = outages
        self._stop = stop
        self._formatter = EventFormatter(settings.stanza, settings.index, settings.host)
        self._filter = record_filter(settings)

    def ingest(self, ref: ObjectRef, context: str) -> int:
        """Ingest one object once; returns the ledger sequence to wait for before its announcement goes (0: none).

        `context` says where the object came from in log lines ("message <id>"). Raises ObjectFailed, Interrupted.
        """
        kind = self._admitted_kind(ref, context)
        if kind is None:
            return 0
        key_id = progress_key(ref.bucket, ref.key)
        known = self._ledger.lookup(key_id, cached_only=True)
        if known is not None and known.done and known.version in (ref.version_id, ref.etag):
            return self._skip_done(ref, context)  # done is final: not even a GetObject
        if not self._claims.enter(key_id, self._stop):
            raise Interrupted()
        try:
            return self._ingest_claimed(ref, kind, context)
        finally:
            self._claims.leave(key_id)

    def _admitted_kind(self, ref: ObjectRef, context: str) -> Optional[str]:
        """The object's kind if the input reads it; None (counted, logged) if not."""
        settings = self.settings
        if settings.allowed_buckets and ref.bucket not in settings.allowed_buckets:
            self._metrics.add(objects_rejected=1)
            self._log.warning("Rejected %s (%s): bucket not in the allowed buckets", ref.source, context)
            return None
        kind = routing.classify_key(ref.key)
        if kind == routing.OTHER:
            self._metrics.add(objects_skipped_other=1)
            self._log.debug("Skipped %s: not a CloudTrail log file or a Firehose file", ref.source)
            return None
        if kind == routing.DIGEST and not settings.ingest_digest_files:
            self._metrics.add(objects_skipped_digest=1)
            return None
        account = routing.account_from_key(ref.key)
        if settings.allowed_accounts and account is not None and account not in settings.allowed_accounts:
            self._metrics.add(objects_rejected=1)
            self._log.warning(
                "Rejected %s (%s): account %s not in the allowed account IDs", ref.source, context, account
            )
            return None
        return kind

    def _skip_done(self, ref: ObjectRef, context: str) -> int:
        self._metrics.add(objects_skipped_done=1)
        self._log.info("Skipped %s (%s): already ingested", ref.source, context)
        return 0

    def _ingest_claimed(self, ref: ObjectRef, kind: str, context: str) -> int:
        response, key = self._get_object(ref)
        if key != ref.key:  # found under the key as sent: that is the object's real name
            ref = dataclasses.replace(ref, key=key)
        body = response["Body"]
        try:
            version = response.get("VersionId") or ref.version_id or (response.get("ETag") or ref.etag or "").strip('"')
            wanted = ObjectProgress(
                key_id=progress_key(ref.bucket, key),
                bucket=ref.bucket,
                object_key=key,
                version=version,
                records_done=0,
                done=False,
                input=self.settings.name,
            )
            claim = self._claims.claim(wanted, self._stop)
            if claim.waited_for:
                self._metrics.add(objects_waited=1)
            if claim.status == DONE:
                return self._skip_done(ref, context)
            if claim.status != CLAIMED:
                raise Interrupted()
            progress = claim.progress
            assert progress is not None
            chunks = self._counted_chunks(body)
            try:
                if kind == routing.DIGEST:
                    return self._ingest_digest(ref, chunks, progress)
                return self._ingest_records(ref, context, chunks, progress, claim.resume_from)
            except BaseException as exc:
                # interrupted or failed: save the release with the progress so that the next reader resumes at once
                self._claims.release(progress)
                seq = self._ledger.report(progress, 0, wait=False)
                if isinstance(exc, (Interrupted, ObjectFailed)):
                    exc.seq = seq
                raise
        finally:
            body.close()

    def _get_object(self, ref: ObjectRef) -> Tuple[dict, str]:
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
            raise ObjectFailed(message, f"s3_{aws_error_code(exc)}", retryable) from None

    def _counted_chunks(self, body) -> Iterator[bytes]:
        for chunk in body.iter_chunks(READ_CHUNK):
            self._metrics.add(bytes_read=len(chunk))
            yield chunk

    def _ingest_records(
        self, ref: ObjectRef, context: str, chunks: Iterator[bytes], progress: ObjectProgress, resume_from: int
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
                "%s (%s): %s; %s before the damage kept, the object is marked done",
                ref.source,
                context,
                redact(exc).rstrip("."),
                records_text(progress.records_done),
            )
        except (ClientError, BotoCoreError) as exc:
            reason, retryable = describe_aws_error(exc, "reading", ref.source)
            raise ObjectFailed(
                f"{reason}; resumes after record {progress.records_done}", "s3_read", retryable, last_seq
            ) from None
        else:
            self._metrics.add(objects_ingested=1)
            if progress.records_done == 0:
                self._log.warning(
                    "%s has no CloudTrail records (no Records array, an empty one, or only CloudWatch Logs control "
                    "messages)",
                    ref.source,
                )
            self._log.debug(
                "Ingested %s: %d records (resumed after %d)", ref.source, progress.records_done, resume_from
            )
        return self._finish(progress)

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
                records_text(batch.counts["records_invalid"]),
            )
        progress.records_done = batch.records_done
        return self._ledger.report(progress, written)

    def _ingest_digest(self, ref: ObjectRef, chunks: Iterator[bytes], progress: ObjectProgress) -> int:
        try:
            text, document = read_document(chunks, self.settings.max_decompressed_bytes)
        except ObjectFormatError as exc:
            self._metrics.add(objects_failed=1)
            self._log.error("Digest file %s cannot be read: %s; skipped", ref.source, redact(exc))
            return self._finish(progress)
        time_text = event_time(document.get("digestEndTime")) if isinstance(document, dict) else None
        self._sink.write([self._formatter.for_object(ref.source, DIGEST_SOURCETYPE).format_document(text, time_text)])
        self._metrics.events_written(DIGEST_SOURCETYPE, 1, None)
        self._metrics.add(objects_ingested=1)
        progress.records_done = 1
        return self._finish(progress)

    def _finish(self, progress: ObjectProgress) -> int:
        progress.done = True
        self._claims.release(progress)
        return self._ledger.report(progress, 0)


def records_text(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"
