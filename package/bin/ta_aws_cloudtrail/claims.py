"""One reader per S3 object at a time: in this process, and across the inputs of one Splunk instance.

In the process, a table of the objects being read makes a second worker wait for the first; it then finds the
object done in the ledger without a KV call. Across processes (several inputs on one queue, the SQS input and the
backfill) the claim lives in the object's progress document, because the KV store's only atomic operation is
"insert unless the _key exists" (HTTP 409):

- The first reader of an object inserts its progress document with its claim (token, holder, expiry). 201 means
  nobody ever had progress for it: reading from the start is right without reading anything back.
- 409: the document is read now. Done (same version): skip. Held by a live claim: wait, polling, until it is done,
  released or lapsed. A lapsed claim is taken over through an insert-if-absent of a marker named after the lapsed
  claim, which only one taker can win; no document is ever deleted, so there is no gap for a third reader. A taker
  killed between its marker and its claim leaves a marker that lapses after a lease too: the next marker is named
  after it. A claim written over a document goes through the ledger, behind this process's older reports of the
  object (a release saved after the claim would leave the object looking free).
- A claim lapses when its expiry passes (the holder's progress saves renew it; a renewer covers slow reads),
  when its holder released it (finished or interrupted: expiry 0), or at once when its holder ran on this host and its
  process is gone (a crashed input does not hold its objects for a whole lease).

While the KV store is unavailable objects are read unclaimed (at-least-once, as the ledger's outage warning says).
A holder that keeps reading after its claim lapsed (its renewals failing) may be joined by a second reader: then
records can come twice, never go missing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Dict, Optional

from .checkpoints import KvStoreError, ObjectProgress, ProgressLedger, ProgressStore

LEASE_SECONDS = 60.0
RENEW_EVERY_SECONDS = 5.0
POLL_SECONDS = 0.5

CLAIMED = "claimed"
DONE = "done"
STOPPED = "stopped"


@dataclass
class ClaimResult:
    status: str  # CLAIMED, DONE (already ingested: skip) or STOPPED (shutdown while waiting)
    progress: Optional[ObjectProgress] = None  # CLAIMED: the holder's progress, to report to the ledger
    resume_from: int = 0  # CLAIMED: records already handled by earlier readers of this version
    waited_for: str = ""  # the holder waited for, when the object was being read elsewhere


def process_holder() -> str:
    """host:pid of this process, as written in the claims it holds."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(holder: str, this_host: str) -> bool:
    """True when `holder` ran on this host and its process no longer exists (POSIX only)."""
    host, _, pid_text = holder.rpartition(":")
    if host != this_host or not pid_text.isdigit() or os.name != "posix":
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


class ObjectClaims:
    def __init__(
        self,
        store: ProgressStore,
        ledger: ProgressLedger,
        logger: logging.Logger,
        *,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        holder: Optional[str] = None,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._log = logger
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._holder = holder or process_holder()
        self._host = socket.gethostname()
        self._lock = threading.Condition()
        self._local: Dict[str, int] = {}  # key_id -> thread id of the worker reading it in this process
        self._held: Dict[str, ObjectProgress] = {}  # claims this process holds in the KV store, by token
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, name="claim-renewer", daemon=True)

    # --- in this process ---

    def enter(self, key_id: str, stop: threading.Event) -> bool:
        """Become this process's only reader of the object, waiting for another worker; False if stopped."""
        with self._lock:
            while key_id in self._local:
                if stop.is_set():
                    return False
                self._lock.wait(0.5)
            self._local[key_id] = threading.get_ident()
            return True

    def leave(self, key_id: str) -> None:
        with self._lock:
            self._local.pop(key_id, None)
            self._lock.notify_all()

    # --- across processes ---

    def claim(self, progress: ObjectProgress, stop: threading.Event) -> ClaimResult:
        """Claim the object of `progress` (records_done 0, its version set) in the KV store; see the module notes.

        Call between enter() and leave(). Progress this process reported is taken into account (it may be newer
        than what is saved).
        """
        mine = self._own_progress(progress)
        if mine is not None and mine.done:
            return ClaimResult(DONE)
        if self._ledger.outage:
            return ClaimResult(CLAIMED, progress, mine.records_done if mine else 0)
        # progress this process reported but could not save (the KV store was out) still counts
        wanted = replace(
            progress,
            records_done=mine.records_done if mine else 0,
            claim_token=uuid.uuid4().hex,
            claim_holder=self._holder,
        )
        waited_for = ""
        try:
            while True:
                wanted.claim_expires = time.time() + self._lease
                wanted.updated = time.time()
                if self._store.insert(wanted.document()):
                    return self._claimed(wanted, wanted.records_done, waited_for)
                current = self._store.get(progress.key_id)
                if current is None:  # deleted meanwhile (retention, the input deleted): insert again
                    if stop.wait(self._poll):
                        return ClaimResult(STOPPED)
                    continue
                same_version = current.version == progress.version
                if current.done and same_version:
                    return ClaimResult(DONE, waited_for=waited_for)
                resume = current.records_done if same_version else 0
                if mine is not None:
                    resume = max(resume, mine.records_done)
                ours = current.claim_holder == self._holder and current.claim_expires > time.time()
                # ours: an earlier message of this process; no other process takes a live claim over
                if ours or (self._lapsed(current) and self._take_over(progress, current)):
                    return self._claimed(self._save_over(replace(wanted, records_done=resume)), resume, waited_for)
                # another reader won the lapsed claim: it is live again, wait for it
                if not waited_for:
                    waited_for = current.claim_holder or "another reader"
                    self._log.info(
                        "s3://%s/%s is being read by %s; waiting for it to finish",
                        progress.bucket,
                        progress.object_key,
                        waited_for,
                    )
                if stop.wait(self._poll):
                    return ClaimResult(STOPPED)
        except KvStoreError as exc:
            self._ledger.store_failed(str(exc))
            return ClaimResult(CLAIMED, progress, mine.records_done if mine else 0, waited_for)

    def _take_over(self, progress: ObjectProgress, current: ObjectProgress) -> bool:
        """Win the takeover of ``current``'s lapsed claim: insert the marker named after it (one winner).

        A marker whose taker died before writing its own claim (killed between the two writes) must not block the
        object for ever: once it is older than a lease while the document still holds the lapsed claim, the next
        takeover goes through a marker named after that one, again with a single winner.
        """
        marker = f"{progress.key_id}~{current.claim_token or repr(current.updated)}"
        while True:
            if self._store.insert({"_key": marker, "input": progress.input, "updated": time.time()}):
                return True
            found = self._store.query({"_key": marker})
            if not found:
                continue  # deleted meanwhile (retention): insert again
            placed = float(found[0].get("updated") or 0.0)
            if time.time() - placed < self._lease:
                return False  # a taker is (or was lately) writing its claim: wait for it
            marker = f"{marker}~{placed!r}"

    def _save_over(self, claim: ObjectProgress) -> ObjectProgress:
        """Write a claim over the object's document through the ledger, and wait until it is saved.

        Through the ledger, because this process may still have an older report of the object on its way (the
        release of an interrupted read): saved after the claim, it would leave the object looking released.
        If the save fails or is slow, reading goes on: the claim stays reported and the ledger retries it.
        """
        self._ledger.wait_saved(self._ledger.report(claim, 0, wait=False), timeout=self._lease / 4)
        return claim

    def release(self, progress: ObjectProgress) -> None:
        """The reader is finished with the object (done or not): its claim lapses at once (expiry 0).

        The caller reports `progress` to the ledger afterwards, which saves the release with the progress.
        """
        with self._lock:  # the renewer renews under the lock: it cannot revive the claim after this
            self._held.pop(progress.claim_token, None)
            progress.claim_expires = 0.0

    def _own_progress(self, progress: ObjectProgress) -> Optional[ObjectProgress]:
        mine = self._ledger.local(progress.key_id)
        return mine if mine is not None and mine.version == progress.version else None

    def _claimed(self, progress: ObjectProgress, resume: int, waited_for: str) -> ClaimResult:
        with self._lock:
            self._held[progress.claim_token] = progress
        return ClaimResult(CLAIMED, progress, resume, waited_for)

    def _lapsed(self, current: ObjectProgress) -> bool:
        return (
            current.done  # of another version: the object was replaced since
            or current.claim_expires <= time.time()
            or current.claim_holder == self._holder
            or _process_gone(current.claim_holder, self._host)
        )

    # --- renewal ---

    def start(self) -> None:
        self._renewer.start()

    def stop(self) -> None:
        self._stop.set()

    def _renew_loop(self) -> None:
        """Keep the claims of slow reads alive: a claim whose expiry is near is saved again with a new one."""
        while not self._stop.wait(RENEW_EVERY_SECONDS):
            self._renew_due()

    def _renew_due(self) -> None:
        """Renew the claims held for longer than a few renewal periods (reported to the ledger, which saves them)."""
        now = time.time()
        with self._lock:
            for progress in self._held.values():
                if progress.claim_expires - now < self._lease - 3 * RENEW_EVERY_SECONDS:
                    progress.claim_expires = now + self._lease
                    self._ledger.report(progress, 0, wait=False)
