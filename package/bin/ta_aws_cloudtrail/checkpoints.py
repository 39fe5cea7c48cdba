"""Per-object progress in the KV store, so that a redelivered message produces no duplicates.

One document per S3 object: {bucket, object_key, version, records_done, done, updated, input} and the claim of the
reader that holds it (claim_token, claim_holder, claim_expires; see claims.py); `version` is the object's VersionId
or ETag, and progress recorded for another version does not apply (the object was replaced).
Progress is reported by workers only after the events it covers are flushed to stdout; the ledger saves
it in batches (one batch_save for everything pending) and makes writers wait when too much is unsaved, which
bounds what a crash can duplicate. When the KV store is unavailable, ingestion goes on (at-least-once): one
warning per outage, progress is kept in memory and saved when the KV store is back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Tuple

from .kvstore import KvCollection, KvStoreError
from .settings import SplunkdConnection

COLLECTION = "ta_aws_cloudtrail_progress"
FIELDS = {
    "input": "string",
    "bucket": "string",
    "object_key": "string",
    "version": "string",
    "records_done": "number",
    "done": "bool",
    "updated": "number",
    "claim_token": "string",
    "claim_holder": "string",
    "claim_expires": "number",
}
ACCELERATED_FIELDS = {"input_updated": {"input": 1, "updated": 1}}
# objects whose saved progress the ledger remembers (another message for one of them needs no KV call)
RECENT_OBJECTS = 4096


def progress_key(bucket: str, key: str) -> str:
    """KV _key of one object (bucket and key can be long and use any character)."""
    digest = hashlib.sha256(f"{bucket}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:40]


@dataclass
class ObjectProgress:
    key_id: str
    bucket: str
    object_key: str
    version: str
    records_done: int
    done: bool
    input: str
    updated: float = 0.0
    # the reader holding the object (claims.py); saved with the progress, so the holder's saves renew it
    claim_token: str = ""
    claim_holder: str = ""
    claim_expires: float = 0.0

    def document(self) -> dict:
        doc = asdict(self)
        doc["_key"] = doc.pop("key_id")
        return doc

    @classmethod
    def from_document(cls, doc: dict) -> ObjectProgress:
        return cls(
            key_id=str(doc["_key"]),
            bucket=str(doc.get("bucket", "")),
            object_key=str(doc.get("object_key", "")),
            version=str(doc.get("version", "")),
            records_done=int(doc.get("records_done") or 0),
            done=doc.get("done") in (True, "true", "1", 1),
            input=str(doc.get("input", "")),
            updated=float(doc.get("updated") or 0),
            claim_token=str(doc.get("claim_token") or ""),
            claim_holder=str(doc.get("claim_holder") or ""),
            claim_expires=float(doc.get("claim_expires") or 0),
        )


class ProgressStore(KvCollection):
    """The progress documents (solnlib's checkpointer stores one opaque string per key: no queries, no retention
    purge, no deletion by input, no insert-if-absent)."""

    FIELDS = FIELDS
    ACCELERATED_FIELDS = ACCELERATED_FIELDS

    def __init__(self, conn: SplunkdConnection, collection: str = COLLECTION) -> None:
        super().__init__(conn, collection)

    def fetch(self, key_ids: List[str]) -> Dict[str, ObjectProgress]:
        """Saved progress of these objects (absent keys: none saved), in one query."""
        if not key_ids:
            return {}
        query = {"_key": key_ids[0]} if len(key_ids) == 1 else {"$or": [{"_key": k} for k in key_ids]}
        return {str(doc["_key"]): ObjectProgress.from_document(doc) for doc in self.query(query)}

    def get(self, key_id: str) -> Optional[ObjectProgress]:
        """The saved progress of one object, read now (None: no document)."""
        return self.fetch([key_id]).get(key_id)

    def save(self, progress: List[ObjectProgress]) -> None:
        self.batch_save([p.document() for p in progress])

    def purge(self, input_name: str, older_than: float) -> None:
        self.delete({"$and": [{"input": input_name}, {"updated": {"$lt": older_than}}]})

    def delete_input(self, input_name: str) -> None:
        self.delete({"input": input_name})


class ProgressLedger:
    """Saves flushed progress in batches on its own thread; bounds what is written but not yet saved."""

    def __init__(
        self,
        store: ProgressStore,
        logger: logging.Logger,
        *,
        max_unsaved_records: int = 10000,
        retry_interval: float = 5.0,
        coalesce_seconds: float = 0.05,
    ) -> None:
        self._store = store
        self._logger = logger
        self._max_unsaved = max_unsaved_records
        self._retry_interval = retry_interval
        self._coalesce = coalesce_seconds
        self._cond = threading.Condition()
        # key_id -> (latest progress, records written since the last save)
        self._pending: Dict[str, Tuple[ObjectProgress, int]] = {}
        self._unsaved_records = 0
        self._reported_seq = 0
        self._saved_seq = 0
        self._outage: Optional[str] = None
        self._stopping = False
        # progress looked up for a batch of messages before their workers need it: key_id -> saved or None
        self._prefetched: Dict[str, Optional[ObjectProgress]] = {}
        # what this process saved last or is saving, so that another message for a finished object needs no KV call
        self._recent: Dict[str, ObjectProgress] = {}
        self._thread = threading.Thread(target=self._run, name="progress-ledger", daemon=True)
        self.saves = 0

    # --- used by the workers ---

    @property
    def outage(self) -> bool:
        return self._outage is not None

    def prefetch(self, key_ids: List[str]) -> None:
        """Look up the progress of objects about to be read, in one call (see lookup())."""
        if not key_ids or self._outage is not None:
            return
        try:
            found = self._store.fetch(key_ids)
        except KvStoreError as exc:
            self._enter_outage(str(exc))
            return
        with self._cond:
            if len(self._prefetched) > 10000:  # entries of messages that failed before their lookup
                self._prefetched.clear()
            for key_id in key_ids:
                self._prefetched[key_id] = found.get(key_id)

    def local(self, key_id: str) -> Optional[ObjectProgress]:
        """This process's latest progress of an object (reported, or saved recently), without a KV call."""
        with self._cond:
            pending = self._pending.get(key_id)
            return pending[0] if pending is not None else self._recent.get(key_id)

    def lookup(self, key_id: str, *, cached_only: bool = False) -> Optional[ObjectProgress]:
        """Saved progress of an object; None when unknown or while the KV store is unavailable.

        With `cached_only`, only this process's own progress and the prefetched lookups are consulted.
        """
        with self._cond:
            pending = self._pending.get(key_id)
            if pending is not None:
                return pending[0]
            if key_id in self._recent:
                return self._recent[key_id]
            if key_id in self._prefetched:
                return self._prefetched.pop(key_id)
        if cached_only or self._outage is not None:
            # the saver thread retries and ends the outage; don't pay a failing call per object meanwhile
            return None
        try:
            return self._store.fetch([key_id]).get(key_id)
        except KvStoreError as exc:
            self._enter_outage(str(exc))
            return None

    def store_failed(self, reason: str) -> None:
        """A call to the KV store made outside the ledger failed: enter the outage state (one warning)."""
        self._enter_outage(reason)

    def report(self, progress: ObjectProgress, newly_written: int, *, wait: bool = True) -> int:
        """Record progress whose events are already flushed; returns a sequence number for wait_saved().

        Blocks while more than max_unsaved_records are written but not saved (unless the KV store is out, or
        `wait` is False: a claim renewal writes nothing).
        """
        with self._cond:
            # a snapshot, taken under the lock so that a later report never carries older values (the claim
            # renewer reports the reader's instance too): the reporter goes on changing its own instance
            progress = replace(progress, updated=time.time())
            previous = self._pending.get(progress.key_id)
            carried = previous[1] if previous else 0
            self._pending[progress.key_id] = (progress, carried + newly_written)
            self._unsaved_records += newly_written
            self._reported_seq += 1
            seq = self._reported_seq
            self._cond.notify_all()
            while wait and self._unsaved_records > self._max_unsaved and self._outage is None and not self._stopping:
                self._cond.wait(1.0)
            return seq

    def wait_saved(self, seq: int, timeout: Optional[float] = None) -> bool:
        """Wait until progress up to `seq` is saved. False if the KV store is out or the wait timed out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._saved_seq < seq:
                if self._outage is not None or self._stopping:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 1.0)
            return True

    def purge(self, input_name: str, older_than: float) -> None:
        """Delete this input's progress older than `older_than` (retention); raises KvStoreError."""
        self._store.purge(input_name, older_than)

    @property
    def unsaved_records(self) -> int:
        with self._cond:
            return self._unsaved_records

    # --- lifecycle ---

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Save what is pending (one last try) and stop; True if nothing is left unsaved."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            snapshot = self._take_snapshot()
        if snapshot:
            try:
                self._store.save([p for p, _ in snapshot[0]])
                self.saves += 1
                return True
            except KvStoreError as exc:
                self._logger.warning(
                    "At shutdown the progress of %d objects could not be saved (%s): their records written "
                    "since the last save may be indexed again when their messages are redelivered",
                    len(snapshot[0]),
                    exc,
                )
                return False
        return True

    # --- saver thread ---

    def _take_snapshot(self) -> Optional[Tuple[List[Tuple[ObjectProgress, int]], int]]:
        if not self._pending:
            return None
        items = list(self._pending.values())
        self._pending.clear()
        # remembered now, not when the save answers: in between, another message for a finished object would
        # find no progress here and the KV store still showing this process's live claim, and read it again
        # (a failed save puts the items back in _pending, which local() and lookup() consult first)
        self._remember(progress for progress, _ in items)
        return items, self._reported_seq

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
            # let reports of other workers join this batch
            time.sleep(self._coalesce)
            with self._cond:
                snapshot = self._take_snapshot()
            if snapshot is None:
                continue
            items, seq = snapshot
            try:
                self._store.save([p for p, _ in items])
            except KvStoreError as exc:
                self._restore(items)
                self._enter_outage(str(exc))
                with self._cond:
                    self._cond.wait(self._retry_interval)
                continue
            self.saves += 1
            with self._cond:
                self._unsaved_records -= sum(written for _, written in items)
                self._saved_seq = max(self._saved_seq, seq)
                recovered = self._outage is not None
                self._outage = None
                self._cond.notify_all()
            if recovered:
                self._logger.info("KV store is available again: progress is being saved (%d objects)", len(items))

    def _remember(self, saved) -> None:
        for progress in saved:
            self._recent.pop(progress.key_id, None)
            self._recent[progress.key_id] = progress
        while len(self._recent) > RECENT_OBJECTS:
            del self._recent[next(iter(self._recent))]  # the oldest (dicts keep insertion order)

    def _restore(self, items: List[Tuple[ObjectProgress, int]]) -> None:
        """Put a failed batch back, keeping newer reports that arrived meanwhile."""
        with self._cond:
            for progress, written in items:
                newer = self._pending.get(progress.key_id)
                if newer is None:
                    self._pending[progress.key_id] = (progress, written)
                else:
                    self._pending[progress.key_id] = (newer[0], newer[1] + written)

    def _enter_outage(self, reason: str) -> None:
        with self._cond:
            first = self._outage is None
            self._outage = reason
            self._cond.notify_all()
        if first:
            self._logger.warning(
                "KV store unavailable (%s): ingestion continues and messages are still deleted after their "
                "events are written; progress is kept in memory and saved when the KV store is back. Until then "
                "a redelivered message may be indexed twice.",
                reason,
            )
