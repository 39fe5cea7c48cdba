"""Per-record filters: which CloudTrail records an input drops before they become events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional, Pattern


@dataclass
class RecordFilter:
    """Rules from the input's settings; the empty filter keeps everything."""

    exclude_event_names: Optional[Pattern[str]] = None  # re.search on eventName
    exclude_read_only: bool = False  # readOnly true (a bool, or the string "true")
    include_event_sources: FrozenSet[str] = frozenset()  # non-empty: keep only these eventSource values
    exclude_event_sources: FrozenSet[str] = frozenset()
    allowed_accounts: FrozenSet[str] = frozenset()  # non-empty: recipientAccountId must be in it

    def reason_to_drop(self, record: dict) -> Optional[str]:
        """None to keep the record, else which rule drops it: "event_name", "read_only", "event_source"
        or "account". A missing or wrong-typed field matches no pattern or list entry: a rule that drops
        matches keeps the record, an allowlist drops it (except a missing recipientAccountId)."""
        if self.exclude_event_names is not None:
            event_name = record.get("eventName")
            if isinstance(event_name, str) and self.exclude_event_names.search(event_name):
                return "event_name"
        if self.exclude_read_only:
            read_only = record.get("readOnly")
            if read_only is True or (isinstance(read_only, str) and read_only.lower() == "true"):
                return "read_only"
        if self.include_event_sources or self.exclude_event_sources:
            event_source = record.get("eventSource")
            # A missing or non-string source is in no list: an allowlist drops it, a denylist keeps it.
            listable = isinstance(event_source, str)
            if self.include_event_sources and not (listable and event_source in self.include_event_sources):
                return "event_source"
            if listable and event_source in self.exclude_event_sources:
                return "event_source"
        if self.allowed_accounts:
            account = record.get("recipientAccountId")
            # Records without recipientAccountId (some service events) are kept.
            if account is not None and (not isinstance(account, str) or account not in self.allowed_accounts):
                return "account"
        return None

    @property
    def is_empty(self) -> bool:
        """No rule is set: callers can skip reason_to_drop altogether."""
        return not (
            self.exclude_event_names is not None
            or self.exclude_read_only
            or self.include_event_sources
            or self.exclude_event_sources
            or self.allowed_accounts
        )
