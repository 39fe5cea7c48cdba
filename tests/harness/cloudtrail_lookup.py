"""A CloudTrail LookupEvents emulator (moto has none), written from the API reference, used only through boto3.

It speaks the service's protocol on ``http://127.0.0.1:<port>``: JSON 1.1 POSTs with ``X-Amz-Target:
com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents``, SigV4-signed (the region is read from the
signature's credential scope; the signature itself is not verified). What it keeps and enforces:

- one store of events per region (:meth:`add_event`), each visible only from its ``visible_at`` on (CloudTrail
  delivers an event about 5 minutes after the call, with no guarantee);
- ``StartTime``/``EndTime`` inclusive; ``EventCategory=insight`` selects Insights events, otherwise management
  events; at most one ``LookupAttributes`` entry, matched exactly (``ReadOnly`` as ``"true"``/``"false"``);
- newest first (ties broken by EventId, so pages are stable), pages of 1-50 (``MaxResults``, default 50), and a
  ``NextToken`` bound to the parameters it came with (another set of parameters: ``InvalidNextTokenException``;
  :meth:`expire_tokens` makes every outstanding token invalid, as an expired one);
- at most 2 requests per second per region: beyond that ``ThrottlingException`` (HTTP 400); every request's
  arrival is recorded, so :meth:`max_requests_per_second` tells whether a client kept to the limit;
- errors on demand (:meth:`fail_next`), and regions that answer as a region the account has not enabled
  (``UnrecognizedClientException``).
"""

import base64
import bisect
import hashlib
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

from harness.loopback import LoopbackServer

TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
RATE_LIMIT_PER_SECOND = 2
ATTRIBUTE_FIELDS = {
    "EventId": "EventId",
    "EventName": "EventName",
    "ReadOnly": "ReadOnly",
    "Username": "Username",
    "ResourceType": None,
    "ResourceName": None,
    "EventSource": "EventSource",
    "AccessKeyId": "AccessKeyId",
}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/cloudtrail/aws4_request")


@dataclass
class LookupEvent:
    event_id: str
    event_time: float  # epoch seconds
    event_name: str
    event_source: str
    read_only: bool
    cloudtrail_event: str  # the record as JSON text (what the API returns)
    username: str = ""
    access_key_id: str = ""
    resources: List[Dict[str, str]] = field(default_factory=list)
    insight: bool = False
    visible_at: float = 0.0

    def sort_key(self) -> Tuple[float, str]:
        return (-self.event_time, self.event_id)

    def as_api(self) -> Dict[str, Any]:
        return {
            "EventId": self.event_id,
            "EventName": self.event_name,
            "ReadOnly": "true" if self.read_only else "false",
            "AccessKeyId": self.access_key_id,
            "EventTime": self.event_time,
            "EventSource": self.event_source,
            "Username": self.username,
            "Resources": self.resources,
            "CloudTrailEvent": self.cloudtrail_event,
        }

    def attribute(self, key: str) -> List[str]:
        if key == "ReadOnly":
            return ["true" if self.read_only else "false"]
        if key == "ResourceType":
            return [r.get("ResourceType", "") for r in self.resources]
        if key == "ResourceName":
            return [r.get("ResourceName", "") for r in self.resources]
        name = ATTRIBUTE_FIELDS[key]
        return [str(self.as_api()[name])]


class _ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class CloudTrailLookupEmulator(LoopbackServer):
    def __init__(self, rate_limit: int = RATE_LIMIT_PER_SECOND) -> None:
        super().__init__()
        self.rate_limit = rate_limit
        self._lock = threading.Lock()
        self._events: Dict[str, List[LookupEvent]] = defaultdict(list)  # region -> sorted newest first
        self._arrivals: Dict[str, List[float]] = defaultdict(list)  # region -> every request's arrival time
        self._recent: Dict[str, Deque[float]] = defaultdict(deque)  # region -> accepted requests, last second
        self._failures: Dict[str, Deque[Tuple[str, str, int]]] = defaultdict(deque)
        self._token_epoch = 0
        self.disabled_regions: Set[str] = set()
        self.throttled = 0

    # --- set-up -------------------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_event(self, region: str, event: LookupEvent) -> None:
        with self._lock:
            events = self._events[region]
            keys = [e.sort_key() for e in events]
            events.insert(bisect.bisect(keys, event.sort_key()), event)

    def add_events(self, region: str, events: List[LookupEvent]) -> None:
        with self._lock:
            self._events[region].extend(events)
            self._events[region].sort(key=LookupEvent.sort_key)

    def fail_next(self, region: str, code: str, message: str = "", count: int = 1, status: int = 400) -> None:
        with self._lock:
            for _ in range(count):
                self._failures[region].append((code, message or code, status))

    def expire_tokens(self) -> None:
        with self._lock:
            self._token_epoch += 1

    def max_requests_per_second(self, region: Optional[str] = None) -> int:
        """The most requests that arrived within any one-second window (in ``region``, or the worst region)."""
        with self._lock:
            regions = [region] if region else list(self._arrivals)
            worst = 0
            for name in regions:
                times = self._arrivals.get(name, [])
                start = 0
                for end, moment in enumerate(times):
                    while moment - times[start] >= 1.0:
                        start += 1
                    worst = max(worst, end - start + 1)
            return worst

    def request_count(self, region: Optional[str] = None) -> int:
        with self._lock:
            return sum(len(v) for k, v in self._arrivals.items() if region in (None, k))

    # --- lifecycle ----------------------------------------------------------------------------------------

    def handler_class(self) -> type:
        emulator = self

        class Handler(_Handler):
            lookup = emulator

        return Handler

    # --- the API ------------------------------------------------------------------------------------------

    def lookup_events(self, region: str, request: Dict[str, Any]) -> Dict[str, Any]:
        now = time.time()
        with self._lock:
            self._arrivals[region].append(now)
            recent = self._recent[region]
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= self.rate_limit:
                self.throttled += 1
                raise _ApiError("ThrottlingException", "Rate exceeded")
            recent.append(now)
            if region in self.disabled_regions:
                raise _ApiError("UnrecognizedClientException", "The security token included in the request is invalid.")
            if self._failures[region]:
                code, message, status = self._failures[region].popleft()
                raise _ApiError(code, message, status)
            events = self._events[region]
            attributes = request.get("LookupAttributes") or []
            if len(attributes) > 1:
                raise _ApiError("InvalidLookupAttributesException", "Only one lookup attribute is allowed.")
            for attribute in attributes:
                if attribute.get("AttributeKey") not in ATTRIBUTE_FIELDS:
                    raise _ApiError("InvalidLookupAttributesException", "Invalid attribute key.")
            max_results = request.get("MaxResults", 50)
            if not isinstance(max_results, int) or not 1 <= max_results <= 50:
                raise _ApiError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
            category = request.get("EventCategory")
            if category not in (None, "insight"):
                raise _ApiError("InvalidEventCategoryException", "EventCategory must be insight.")
            start = float(request.get("StartTime", 0))
            end = float(request.get("EndTime", now))
            if start > end:
                raise _ApiError("InvalidTimeRangeException", "StartTime is after EndTime.")
            binding = self._binding(region, request)
            position: Optional[Tuple[float, str]] = None
            if request.get("NextToken"):
                position = self._read_token(request["NextToken"], binding)
            page: List[LookupEvent] = []
            more = False
            index = bisect.bisect_right([e.sort_key() for e in events], position) if position else 0
            for event in events[index:]:
                if event.event_time > end or event.visible_at > now or event.insight != (category == "insight"):
                    continue
                if event.event_time < start:
                    break
                if any(a["AttributeValue"] not in event.attribute(a["AttributeKey"]) for a in attributes):
                    continue
                if len(page) == max_results:
                    more = True
                    break
                page.append(event)
            answer: Dict[str, Any] = {"Events": [event.as_api() for event in page]}
            if more:
                answer["NextToken"] = self._token(binding, page[-1].sort_key())
            return answer

    def _binding(self, region: str, request: Dict[str, Any]) -> str:
        bound = {key: request.get(key) for key in ("LookupAttributes", "StartTime", "EndTime", "EventCategory")}
        text = json.dumps([region, bound], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _token(self, binding: str, position: Tuple[float, str]) -> str:
        raw = json.dumps([self._token_epoch, binding, position[0], position[1]])
        return base64.urlsafe_b64encode(raw.encode()).decode()

    def _read_token(self, token: str, binding: str) -> Tuple[float, str]:
        try:
            epoch, bound, time_key, event_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, TypeError):
            raise _ApiError("InvalidNextTokenException", "Invalid NextToken.") from None
        if epoch != self._token_epoch or bound != binding:
            raise _ApiError("InvalidNextTokenException", "The NextToken is invalid or has expired.")
        return (time_key, event_id)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lookup: CloudTrailLookupEmulator

    def log_message(self, format: str, *args: object) -> None:
        """Silent."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if self.headers.get("X-Amz-Target") != TARGET:
                raise _ApiError("UnknownOperationException", f"unknown target {self.headers.get('X-Amz-Target')}")
            scope = _SCOPE.search(self.headers.get("Authorization") or "")
            if not scope:
                raise _ApiError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
            answer = self.lookup.lookup_events(scope.group(1), json.loads(body or b"{}"))
            self._send(200, answer)
        except _ApiError as error:
            self._send(error.status, {"__type": error.code, "message": error.message})

    def _send(self, status: int, document: Dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", hashlib.md5(payload).hexdigest())
        self.end_headers()
        self.wfile.write(payload)


def lookup_events_from_records(
    records: List[Dict[str, Any]], *, visible_after: float = 0.0, insight: bool = False
) -> List[LookupEvent]:
    """CloudTrail records (as in log files) as Event history returns them, each visible ``visible_after``
    seconds after its eventTime."""
    from datetime import datetime

    events = []
    for record in records:
        moment = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        identity = record.get("userIdentity") or {}
        events.append(
            LookupEvent(
                event_id=record["eventID"],
                event_time=moment,
                event_name=record["eventName"],
                event_source=record["eventSource"],
                read_only=record.get("readOnly") is True,
                cloudtrail_event=json.dumps(record, separators=(",", ":")),
                username=str(identity.get("userName") or identity.get("principalId") or ""),
                access_key_id=str(identity.get("accessKeyId") or ""),
                insight=insight,
                visible_at=moment + visible_after,
            )
        )
    return events
