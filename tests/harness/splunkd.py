"""A splunkd REST emulator for tests: the management port as the add-on's libraries see it.

There is no Splunk on the test machines. The add-on talks to splunkd only through solnlib 7.0.0 and
splunklib 2.1.1, so this module answers exactly the endpoints those libraries call, in splunkd's
formats (Atom by default, JSON with ``output_mode=json``, JSON on KV store data endpoints), with its
own state, authentication, status codes and query semantics. The same add-on code then works against
a real splunkd.

What it keeps:

- conf files (``properties/…``, ``configs/conf-…``), seeded the way UCC stores an add-on's
  configuration: encrypted fields as ``******`` in the stanza and their clear values, as one JSON
  object per stanza, in ``storage/passwords`` under the UCC realm, chunked as solnlib writes them;
- ``storage/passwords`` (realm, username, clear/encrypted password);
- the KV store (``storage/collections/config`` and ``storage/collections/data``) with a MongoDB-like
  query language restricted to the operators Splunk documents;
- session keys (``auth/login``, ``Authorization: Splunk|Bearer|Basic``, the ``splunkd_<port>`` cookie).

Simplifications, all on purpose: one app's view of the world. Conf files and passwords are not split
per app or per user (any owner, and the namespaces ``-``, ``system``, ``search`` and the add-on's app
are accepted); KV collections exist only in the add-on's app; every user in ``users`` is an admin;
KV field types are recorded but values are not converted to them.

Fault injection: :meth:`SplunkdEmulator.set_kv_outage` (KV store down, as while it initialises),
:meth:`SplunkdEmulator.set_kv_save_delay` (a slow KV store: batch saves applied late) and
:meth:`SplunkdEmulator.pause` / :meth:`SplunkdEmulator.resume` (splunkd restarting).
"""

import base64
import binascii
import contextlib
import copy
import datetime
import fnmatch
import functools
import hashlib
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlsplit

from harness.splunkd_atom import (
    EaiEntry,
    EaiFeed,
    messages_json,
    messages_xml,
    render_atom,
    render_json,
    session_key_xml,
)

# --- storage formats shared with the add-on's libraries --------------------------------------------

ENCRYPTED_TOKEN = "******"  # what UCC (splunktaucclib) leaves in a conf stanza for an encrypted field
# solnlib.credentials.CredentialManager's chunked layout: "<user>``splunk_cred_sep``<n>" entries of at
# most 255 characters, then one entry holding END_MARK.
CREDENTIAL_SEPARATOR = "``splunk_cred_sep``"
CREDENTIAL_END_MARK = (
    "``splunk_cred_sep``S``splunk_cred_sep``P``splunk_cred_sep``L``splunk_cred_sep``"
    "U``splunk_cred_sep``N``splunk_cred_sep``K``splunk_cred_sep``"
)
CREDENTIAL_CHUNK_LENGTH = 255

# Seed sections → (conf name suffix after "<restRoot>_", fields UCC's globalConfig marks encrypted).
_UCC_SECTIONS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "accounts": ("account", ("aws_secret_access_key",)),
    "iam_roles": ("iam_role", ("external_id",)),
    "settings": ("settings", ("proxy_password",)),
}
_SEED_KEYS = frozenset([*_UCC_SECTIONS, "inputs", "kvstore"])

# --- splunkd limits and defaults ---------------------------------------------------------------------

EAI_DEFAULT_COUNT = 30  # EAI list endpoints return 30 entries unless count is given (0 or less: all)
KV_MAX_DOCUMENTS_PER_BATCH_SAVE = 1000  # limits.conf [kvstore] max_documents_per_batch_save
KV_MAX_ROWS_PER_QUERY = 50000  # limits.conf [kvstore] max_rows_per_query
_PUBLIC_NAMESPACE_APPS = frozenset(["-", "system", "search"])
_NOT_AUTHENTICATED = "call not properly authenticated"
_KV_UNAVAILABLE_TEXT = "KV Store is initializing. Please try again later."

_ATOM_CONTENT_TYPE = "text/xml; charset=UTF-8"
_JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


class _ApiError(Exception):
    """Raised inside a handler to answer with splunkd's error body (XML, or JSON when asked)."""

    def __init__(self, status: int, text: str, *, json_body: bool = False, message_type: str = "ERROR"):
        super().__init__(text)
        self.status = status
        self.text = text
        self.json_body = json_body
        self.message_type = message_type


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = _ATOM_CONTENT_TYPE
    headers: List[Tuple[str, str]] = field(default_factory=list)


@dataclass
class _Request:
    method: str
    owner: Optional[str]  # None for /services/...
    app: Optional[str]
    path: List[str]  # decoded segments after the namespace
    params: Dict[str, str]  # query string and form body; the last value of a repeated name wins
    body: bytes

    @property
    def wants_json(self) -> bool:
        return self.params.get("output_mode") == "json"


@dataclass
class _KvCollection:
    fields: Dict[str, str] = field(default_factory=dict)
    accelerated_fields: Dict[str, str] = field(default_factory=dict)
    options: Dict[str, str] = field(default_factory=dict)
    documents: Dict[str, dict] = field(default_factory=dict)  # _key -> document, in insertion order


# --- KV store query language ---------------------------------------------------------------------------


class KvQueryError(ValueError):
    """A query, sort or projection the KV store rejects (answered with 400)."""


_KvPredicate = Callable[[dict], bool]
_KV_COMPARISONS: Dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda value, operand: value > operand,
    "$gte": lambda value, operand: value >= operand,
    "$lt": lambda value, operand: value < operand,
    "$lte": lambda value, operand: value <= operand,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kv_equal(left: Any, right: Any) -> bool:
    # MongoDB equality: 1 == 1.0, but never across types (true is not 1, "1" is not 1).
    if _is_number(left) and _is_number(right):
        return left == right
    return type(left) is type(right) and left == right


def _kv_comparable(left: Any, right: Any) -> bool:
    # MongoDB range operators only match values of the operand's type class.
    if _is_number(left) and _is_number(right):
        return True
    return type(left) is type(right) and isinstance(left, (str, bool))


def _values_at(value: Any, path: Sequence[str]) -> List[Any]:
    """Every value a dotted path reaches; an array also offers each of its elements (MongoDB rule)."""
    if not path:
        return [value, *value] if isinstance(value, list) else [value]
    if isinstance(value, dict):
        return _values_at(value[path[0]], path[1:]) if path[0] in value else []
    if isinstance(value, list):
        return [found for item in value if isinstance(item, dict) for found in _values_at(item, path)]
    return []


def _equality_predicate(path: Sequence[str], expected: Any) -> _KvPredicate:
    if expected is None:
        # {"field": null} matches a null and a missing field.
        def matches_null(document: dict) -> bool:
            values = _values_at(document, path)
            return not values or any(value is None for value in values)

        return matches_null
    return lambda document: any(_kv_equal(value, expected) for value in _values_at(document, path))


def _operator_predicate(path: Sequence[str], operator: str, operand: Any) -> _KvPredicate:
    if operator in _KV_COMPARISONS:
        if not (_is_number(operand) or isinstance(operand, (str, bool))):
            raise KvQueryError(f"{operator} needs a number, a string or a boolean")
        compare = _KV_COMPARISONS[operator]
        return lambda document: any(
            _kv_comparable(value, operand) and compare(value, operand) for value in _values_at(document, path)
        )
    if operator == "$ne":
        equal = _equality_predicate(path, operand)
        return lambda document: not equal(document)
    if operator == "$not":
        if not isinstance(operand, dict) or not operand or not all(key.startswith("$") for key in operand):
            raise KvQueryError('$not needs an object of operators, e.g. {"$not": {"$gt": 5}}')
        inner = _field_predicate(path, operand)
        return lambda document: not inner(document)
    raise KvQueryError(f"unsupported operator {operator}")


def _field_predicate(path: Sequence[str], condition: Any) -> _KvPredicate:
    if isinstance(condition, dict) and any(key.startswith("$") for key in condition):
        if not all(key.startswith("$") for key in condition):
            raise KvQueryError("an object cannot mix operators and field values")
        predicates = [_operator_predicate(path, op, operand) for op, operand in condition.items()]
        return lambda document: all(predicate(document) for predicate in predicates)
    return _equality_predicate(path, condition)


def _combined_predicate(operator: str, branches: List[_KvPredicate]) -> _KvPredicate:
    combine = all if operator == "$and" else any
    return lambda document: combine(branch(document) for branch in branches)


def compile_kv_query(query: Any) -> _KvPredicate:
    """Turn a KV store query into a predicate, rejecting what the KV store rejects.

    Field equality (dotted paths, arrays matching any element, ``null`` matching missing), ``$and``,
    ``$or`` at the top level, and per field ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$ne`` and
    ``$not`` (``{"n": {"$not": {"$gt": 5}}}``). As in MongoDB, which the KV store runs on, ``$not``
    is a field operator: ``{"$not": {...}}`` at the top level is an error.
    """
    if not isinstance(query, dict):
        raise KvQueryError("a query must be a JSON object")
    predicates: List[_KvPredicate] = []
    for key, condition in query.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise KvQueryError(f"{key} needs a non-empty array of queries")
            predicates.append(_combined_predicate(key, [compile_kv_query(branch) for branch in condition]))
        elif key.startswith("$"):
            raise KvQueryError(f"unknown top level operator: {key}")
        else:
            predicates.append(_field_predicate(key.split("."), condition))
    return lambda document: all(predicate(document) for predicate in predicates)


def _bson_rank(value: Any) -> int:
    # MongoDB sorts across types in this order: null (and missing), numbers, strings, objects,
    # arrays, booleans.
    if value is None:
        return 0
    if _is_number(value):
        return 1
    if isinstance(value, str):
        return 2
    if isinstance(value, dict):
        return 3
    if isinstance(value, list):
        return 4
    return 5


def _compare_sort_values(left: Any, right: Any) -> int:
    left_rank, right_rank = _bson_rank(left), _bson_rank(right)
    if left_rank != right_rank:
        return -1 if left_rank < right_rank else 1
    if left_rank in (3, 4):
        left, right = json.dumps(left, sort_keys=True), json.dumps(right, sort_keys=True)
    if left == right:
        return 0
    return -1 if left < right else 1


def parse_kv_sort(sort: str) -> List[Tuple[str, int]]:
    """``sort=surname,age:-1`` → [("surname", 1), ("age", -1)]."""
    order = []
    for part in sort.split(","):
        name, _, direction = part.strip().partition(":")
        if not name or direction not in ("", "1", "-1"):
            raise KvQueryError(f"invalid sort specification {part!r}")
        order.append((name, -1 if direction == "-1" else 1))
    return order


def sort_kv_documents(documents: List[dict], order: List[Tuple[str, int]]) -> List[dict]:
    def compare(left: dict, right: dict) -> int:
        for name, direction in order:
            left_values, right_values = _values_at(left, name.split(".")), _values_at(right, name.split("."))
            outcome = _compare_sort_values(
                left_values[0] if left_values else None, right_values[0] if right_values else None
            )
            if outcome:
                return outcome * direction
        return 0

    return sorted(documents, key=functools.cmp_to_key(compare))


def project_kv_document(document: dict, fields: str) -> dict:
    """``fields=a,b`` keeps a, b and _key; ``fields=a:0`` drops a. Mixing both is an error."""
    included, excluded = [], []
    for part in fields.split(","):
        name, _, flag = part.strip().partition(":")
        if not name or flag not in ("", "0", "1"):
            raise KvQueryError(f"invalid field specification {part!r}")
        (excluded if flag == "0" else included).append(name)
    if included and [name for name in excluded if name != "_key"]:
        raise KvQueryError("a projection cannot mix inclusion and exclusion")
    if included:
        kept = [name for name in ["_key", *included] if name not in excluded]
        return {name: copy.deepcopy(document[name]) for name in kept if name in document}
    return {name: copy.deepcopy(value) for name, value in document.items() if name not in excluded}


# --- EAI list filtering ---------------------------------------------------------------------------------


def _eai_search_matches(entry: EaiEntry, search: str) -> bool:
    """splunkd's ``search`` filter: space-separated terms, all of which must match.

    ``field=value`` matches when the field contains value; a bare term matches when the name or any
    field contains it. Matching ignores case; ``*`` is a wildcard; ``\\=`` is a literal ``=``.
    """
    content = entry.content if isinstance(entry.content, dict) else {}

    def field_values(field_name: str) -> List[str]:
        if field_name in ("name", "title"):
            return [entry.name]
        if field_name.startswith("eai:acl.") and entry.acl is not None:
            value = entry.acl.get(field_name[len("eai:acl.") :])
        else:
            value = content.get(field_name)
        return [] if value is None else [str(value)]

    def contains(haystack: str, needle: str) -> bool:
        pattern = needle.lower() if "*" in needle else f"*{needle.lower()}*"
        return fnmatch.fnmatchcase(haystack.lower(), pattern)

    for term in search.split():
        split_at = re.search(r"(?<!\\)=", term)
        if split_at:
            field_name = term[: split_at.start()].replace("\\=", "=")
            needle = term[split_at.end() :].replace("\\=", "=")
            if not any(contains(value, needle) for value in field_values(field_name)):
                return False
        else:
            needle = term.replace("\\=", "=")
            candidates = [entry.name, *(str(v) for v in content.values() if isinstance(v, (str, int, float)))]
            if not any(contains(value, needle) for value in candidates):
                return False
    return True


# --- TLS ----------------------------------------------------------------------------------------------

_certificate_lock = threading.Lock()
_certificate_pem: Optional[Tuple[bytes, bytes]] = None


def _self_signed_certificate() -> Tuple[bytes, bytes]:
    """(certificate, key) in PEM, made once per process: like splunkd's default, self-signed."""
    global _certificate_pem
    with _certificate_lock:
        if _certificate_pem is None:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.x509.oid import NameOID

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "SplunkServerDefaultCert"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SplunkUser"),
                ]
            )
            now = datetime.datetime.now(datetime.timezone.utc)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(
                    x509.SubjectAlternativeName(
                        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                    ),
                    critical=False,
                )
                .sign(key, hashes.SHA256())
            )
            _certificate_pem = (
                certificate.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
        return _certificate_pem


def _server_ssl_context() -> ssl.SSLContext:
    certificate, key = _self_signed_certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only; they are deleted as soon as the context holds the pair.
    with tempfile.TemporaryDirectory(prefix="splunkd-emulator-") as directory:
        certificate_path = os.path.join(directory, "server.pem")
        key_path = os.path.join(directory, "server.key")
        with open(certificate_path, "wb") as certificate_file:
            certificate_file.write(certificate)
        with open(key_path, "wb") as key_file:
            key_file.write(key)
        context.load_cert_chain(certificate_path, key_path)
    return context


# --- HTTP plumbing --------------------------------------------------------------------------------------


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as splunkd
    server_version = "Splunkd"
    # Headers and body leave in separate writes; with Nagle's algorithm against the client's delayed
    # ACK, every answer would wait ~40 ms.
    disable_nagle_algorithm = True
    server: "_EmulatorHttpServer"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        self.server.emulator._begin_request()
        try:
            self._answer(method)
        finally:
            self.server.emulator._end_request()

    def _answer(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
            return
        body = self.rfile.read(length) if length > 0 else b""
        response = self.server.emulator._handle(method, self.path, self.headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
        # Say explicitly whether the connection stays open: splunklib's default handler drops the
        # connection (and the unread body with it) unless the answer says keep-alive, and http.client
        # keeps waiting on an HTTP/1.1 connection unless the answer says close.
        if (self.headers.get("Connection") or "").strip().lower() == "close":
            self.close_connection = True
            self.send_header("Connection", "close")
        else:
            self.send_header("Connection", "Keep-Alive")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines would clutter test output (and the emulator logs nothing at all)."""


class _EmulatorHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # resume() binds the same port again while old sockets sit in TIME_WAIT

    def __init__(self, port: int, emulator: "SplunkdEmulator", ssl_context: Optional[ssl.SSLContext]):
        self.emulator = emulator
        self._ssl_context = ssl_context
        self._connections: set = set()
        self._connections_lock = threading.Lock()
        self._closed = False
        super().__init__(("127.0.0.1", port), _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection = request
        if self._ssl_context is not None:
            # The handshake runs here, in the connection's own thread, so a slow client cannot stall accept().
            try:
                connection = self._ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        with self._connections_lock:
            if self._closed:
                connection.close()
                return
            self._connections.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(connection)
            if connection is not request:
                connection.close()

    def cut_connections(self) -> None:
        """Drop every open connection, keep-alive ones included: splunkd going away closes them all."""
        with self._connections_lock:
            self._closed = True
            connections = list(self._connections)
        for connection in connections:
            # The plain socket's shutdown: SSLSocket.shutdown would tear its TLS state down under the
            # thread that is reading from it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: clients vanishing (fault injection, pause) is expected, and tracebacks on stderr are noise."""


# --- the emulator -------------------------------------------------------------------------------------


class SplunkdEmulator:
    """splunkd's management port on 127.0.0.1:<random>, HTTPS with a self-signed certificate by default."""

    def __init__(
        self,
        seed: Optional[dict] = None,
        *,
        app: str = "TA_aws_cloudtrail",
        tls: bool = True,
        session_key: Optional[str] = None,
        users: Optional[Dict[str, str]] = None,
    ):
        self.app = app
        self.rest_root = app.lower()  # UCC names conf files after the lower-cased restRoot
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.host = "127.0.0.1"
        self.port = 0
        self.session_key = session_key or secrets.token_urlsafe(48)
        self.requests: List[Tuple[str, str, int]] = []
        self._serving = 0  # requests being answered
        self._last_request_at = time.monotonic()
        # Tracebacks of bugs in the emulator itself (answered with 500); tests assert this stays empty.
        self.internal_errors: List[str] = []
        self._users = dict(users) if users is not None else {"admin": "changeme"}
        self._session_keys = {self.session_key}
        self._lock = threading.RLock()
        self._confs: Dict[str, Dict[str, Dict[str, str]]] = {}
        self._passwords: Dict[Tuple[str, str], str] = {}  # (realm, username) -> clear password
        self._collections: Dict[str, _KvCollection] = {}
        self._kv_outage_status: Optional[int] = None
        self._kv_save_delay = 0.0
        self.kv_saves_delayed = 0  # batch saves that have started their delay (so a test knows one is on its way)
        # Endpoints served by extensions (an app's REST handlers and inputs: harness.rest_handlers).
        self._mounts: List[Callable[[_Request], Optional[_Response]]] = []
        # Stand-in for splunkd's encryption: encr_password must not show the clear text.
        self._encryption_key = secrets.token_bytes(32)
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._server: Optional[_EmulatorHttpServer] = None
        self._thread: Optional[threading.Thread] = None
        self._started = False
        self._apply_seed(seed or {})

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def server_uri(self) -> str:
        """What splunkd writes as <server_uri> in a modular input's XML."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> "SplunkdEmulator":
        if self._started:
            raise RuntimeError("the emulator is already started")
        if self.tls:
            self._ssl_context = _server_ssl_context()
        self._open(0)
        self._started = True
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._close()
        self._started = False

    def pause(self) -> None:
        """splunkd goes away: the port refuses connections and open connections are cut; state is kept."""
        if self._server is None:
            raise RuntimeError("the emulator is not serving")
        self._close()

    def resume(self) -> None:
        """splunkd is back on the same port, with the same state and session keys."""
        if not self._started or self._server is not None:
            raise RuntimeError("the emulator is not paused")
        self._open(self.port)

    def __enter__(self) -> "SplunkdEmulator":
        return self if self._started else self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _open(self, port: int) -> None:
        server = _EmulatorHttpServer(port, self, self._ssl_context)
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"splunkd-emulator-{self.port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def _close(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        server.cut_connections()
        thread.join(timeout=5)

    # --- inspection and set-up for tests (direct, not over HTTP) ---------------------------------

    def kv_collections(self) -> List[str]:
        with self._lock:
            return list(self._collections)

    def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no request is being answered and none began for ``quiet`` seconds.

        A request a client sent just before it was killed is still applied, as splunkd would apply it: read the
        state a crash left (the KV progress) only after this.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = self._serving == 0 and time.monotonic() - self._last_request_at >= quiet
            if idle:
                return
            time.sleep(0.02)
        raise TimeoutError(f"the splunkd emulator was still answering requests after {timeout} s")

    def _begin_request(self) -> None:
        with self._lock:
            self._serving += 1
            self._last_request_at = time.monotonic()

    def _end_request(self) -> None:
        with self._lock:
            self._serving -= 1
            self._last_request_at = time.monotonic()

    def kv_documents(self, collection: str) -> List[dict]:
        """Deep copies of the documents, in insertion order, as stored (with ``_key`` and ``_user``).

        Raises KeyError if the collection does not exist (an empty collection gives []).
        """
        with self._lock:
            return copy.deepcopy(list(self._collections[collection].documents.values()))

    def conf_stanza(self, conf: str, stanza: str) -> Optional[dict]:
        """The stanza as stored (encrypted fields read ``******``), or None."""
        with self._lock:
            found = self._confs.get(conf, {}).get(stanza)
            return dict(found) if found is not None else None

    def clear_password(self, realm: str, stanza: str) -> Optional[str]:
        """The clear text solnlib's CredentialManager reads for (realm, stanza): chunks joined up to
        END_MARK when chunked entries exist, else the plain entry; None if there is neither."""
        prefix = stanza + CREDENTIAL_SEPARATOR
        with self._lock:
            chunks = {}
            for (entry_realm, username), clear in self._passwords.items():
                if entry_realm == realm and username.startswith(prefix) and username[len(prefix) :].isdigit():
                    chunks[int(username[len(prefix) :])] = clear
            plain = self._passwords.get((realm, stanza))
        if not chunks:
            return plain
        joined = []
        for index in sorted(chunks):
            if chunks[index] == CREDENTIAL_END_MARK:
                break
            joined.append(chunks[index])
        return "".join(joined)

    def add_password(self, realm: str, user: str, clear: str, *, chunked: bool = True) -> None:
        """Store a credential as solnlib 7.0.0 writes it (chunked) or as one plain entry."""
        with self._lock:
            if not chunked:
                self._passwords[(realm, user)] = clear
                return
            pieces = [clear[i : i + CREDENTIAL_CHUNK_LENGTH] for i in range(0, len(clear), CREDENTIAL_CHUNK_LENGTH)]
            for index, piece in enumerate([*pieces, CREDENTIAL_END_MARK], start=1):
                self._passwords[(realm, f"{user}{CREDENTIAL_SEPARATOR}{index}")] = piece

    def conf_stanzas(self, conf: str) -> Dict[str, Dict[str, str]]:
        """Copies of every stanza of ``conf`` (empty if the file does not exist)."""
        with self._lock:
            return {name: dict(values) for name, values in self._confs.get(conf, {}).items()}

    def put_conf_stanza(self, conf: str, stanza: str, values: Dict[str, Any]) -> None:
        """Create or update a stanza directly (splunkd's own configuration, an app's inputs)."""
        with self._lock:
            self._confs.setdefault(conf, {}).setdefault(stanza, {}).update(
                {key: _conf_value(value) for key, value in values.items()}
            )

    def delete_conf_stanza(self, conf: str, stanza: str) -> bool:
        with self._lock:
            return self._confs.get(conf, {}).pop(stanza, None) is not None

    def mount(self, handler: Callable[["_Request"], Optional["_Response"]]) -> None:
        """Serve more endpoints: ``handler`` gets each authenticated request splunkd's own endpoints do not
        answer and returns a response, or None to let the emulator answer 404."""
        with self._lock:
            self._mounts.append(handler)

    def feed(self, request: "_Request", title: str, entries: List[EaiEntry], *, status: int = 200) -> "_Response":
        """An EAI feed of ``entries`` answering ``request`` (search, sort and paging applied), for extensions."""
        return self._feed(request, title, entries, status=status)

    def href(self, *segments: str) -> str:
        return self._href(*segments)

    def acl(self, sharing: str = "app") -> Dict[str, Any]:
        return self._acl(sharing)

    def ucc_realm(self, conf: str) -> str:
        """The realm UCC (splunktaucclib) stores a conf file's encrypted fields under."""
        return f"__REST_CREDENTIAL__#{self.app}#configs/conf-{conf}"

    def count_requests(self, method: str, path_contains: str) -> int:
        with self._lock:
            return sum(1 for m, path, _ in self.requests if m == method and path_contains in path)

    # --- fault injection ------------------------------------------------------------------------------

    def set_kv_outage(self, status: Optional[int]) -> None:
        """From now on every storage/collections/* request answers ``status`` (None: back to normal)."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError("an outage answers with a 4xx or 5xx status")
        with self._lock:
            self._kv_outage_status = status

    def set_kv_save_delay(self, seconds: float) -> None:
        """From now on each batch_save waits ``seconds`` before it is applied; other calls go on meanwhile."""
        with self._lock:
            self._kv_save_delay = seconds

    # --- seed -------------------------------------------------------------------------------------------

    def _apply_seed(self, seed: dict) -> None:
        unknown = set(seed) - _SEED_KEYS
        if unknown:
            raise ValueError(f"unknown seed sections: {sorted(unknown)}")
        for section, (suffix, encrypted_fields) in _UCC_SECTIONS.items():
            if section not in seed:
                continue
            conf = f"{self.rest_root}_{suffix}"
            stanzas = self._confs.setdefault(conf, {})
            for stanza, values in seed[section].items():
                stored = {key: _conf_value(value) for key, value in values.items()}
                secret = {key: stored[key] for key in encrypted_fields if stored.get(key)}
                if secret:
                    self.add_password(self.ucc_realm(conf), stanza, json.dumps(secret))
                    stored.update(dict.fromkeys(secret, ENCRYPTED_TOKEN))
                stanzas[stanza] = stored
        # splunkd always has inputs.conf.
        inputs = self._confs.setdefault("inputs", {})
        for stanza, values in seed.get("inputs", {}).items():
            inputs[stanza] = {key: _conf_value(value) for key, value in values.items()}
        for name, documents in seed.get("kvstore", {}).items():
            collection = self._collections.setdefault(name, _KvCollection())
            for document in documents:
                key = document.get("_key") if isinstance(document, dict) else None
                if not isinstance(document, dict) or (key is not None and not (isinstance(key, str) and key)):
                    raise ValueError(f"seed documents of {name} must be objects with an optional string _key")
                self._kv_store_document(collection, copy.deepcopy(document), "nobody")

    # --- request handling -----------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Any, body: bytes) -> _Response:
        url = urlsplit(target)
        raw_segments = url.path.split("/")[1:]
        while raw_segments and raw_segments[-1] == "":
            raw_segments.pop()
        segments = [unquote_plus(segment) for segment in raw_segments]
        try:
            response = self._route(method, segments, url.query, headers, body)
        except _ApiError as error:
            response = _error_response(error)
        except Exception:
            with self._lock:
                self.internal_errors.append(traceback.format_exc())
            response = _error_response(_ApiError(500, "internal error in the splunkd emulator"))
        with self._lock:
            self.requests.append((method, unquote(url.path), response.status))
        return response

    def _route(self, method: str, segments: List[str], query: str, headers: Any, body: bytes) -> _Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        # splunkd reads a non-JSON body as a form: splunklib posts its forms without any Content-Type.
        if body and content_type != "application/json":
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        wants_json = params.get("output_mode") == "json"

        if segments[:1] == ["services"]:
            owner, app, path = None, None, segments[1:]
        elif segments[:1] == ["servicesNS"] and len(segments) >= 3:
            owner, app, path = segments[1], segments[2], segments[3:]
        else:
            owner, app, path = None, None, None

        if path == ["auth", "login"] and method == "POST":
            return self._login(params, wants_json)
        if not self._authenticated(headers):
            raise _ApiError(401, _NOT_AUTHENTICATED, json_body=wants_json, message_type="WARN")
        if path is None:
            raise _ApiError(404, "Not Found", json_body=wants_json)
        request = _Request(method, owner, app, path, params, body)

        if path[:2] == ["storage", "collections"]:
            return self._kvstore(request)
        if app is not None and app != self.app and app not in _PUBLIC_NAMESPACE_APPS:
            raise _ApiError(404, f"Application does not exist: {app}", json_body=wants_json)
        if path[:1] == ["properties"]:
            return self._properties(request)
        if len(path) >= 2 and path[0] == "configs" and path[1].startswith("conf-"):
            return self._configs(request, path[1][len("conf-") :])
        if path[:2] == ["storage", "passwords"]:
            return self._storage_passwords(request)
        for mounted in list(self._mounts):
            response = mounted(request)
            if response is not None:
                return response
        raise _ApiError(404, "Not Found", json_body=wants_json)

    # --- authentication ----------------------------------------------------------------------------

    def _authenticated(self, headers: Any) -> bool:
        scheme, _, credential = (headers.get("Authorization") or "").strip().partition(" ")
        credential = credential.strip()
        with self._lock:
            if scheme in ("Splunk", "Bearer") and credential in self._session_keys:
                return True
            if scheme == "Basic":
                try:
                    username, _, password = base64.b64decode(credential).decode("utf-8").partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return False
                return username in self._users and secrets.compare_digest(self._users[username], password)
            try:
                cookies = SimpleCookie(headers.get("Cookie") or "")
            except CookieError:
                return False
            cookie = cookies.get(f"splunkd_{self.port}")
            return cookie is not None and cookie.value in self._session_keys

    def _login(self, params: Dict[str, str], wants_json: bool) -> _Response:
        username, password = params.get("username", ""), params.get("password", "")
        expected = self._users.get(username)
        if expected is None or not secrets.compare_digest(expected, password):
            if wants_json:
                body = json.dumps(
                    {"messages": [{"type": "WARN", "code": "incorrect_username_or_password", "text": "Login failed"}]}
                ).encode("utf-8")
                return _Response(401, body, _JSON_CONTENT_TYPE)
            return _Response(401, messages_xml("WARN", "Login failed", code="incorrect_username_or_password"))
        session_key = secrets.token_urlsafe(48)
        with self._lock:
            self._session_keys.add(session_key)
        headers = []
        if params.get("cookie") == "1":
            secure = "; Secure" if self.tls else ""
            headers.append(("Set-Cookie", f"splunkd_{self.port}={session_key}; Path=/{secure}; HttpOnly; Max-Age=3600"))
        if wants_json:
            return _Response(200, json.dumps({"sessionKey": session_key}).encode("utf-8"), _JSON_CONTENT_TYPE, headers)
        return _Response(200, session_key_xml(session_key), headers=headers)

    # --- EAI helpers ------------------------------------------------------------------------------------

    def _href(self, *segments: str) -> str:
        """An entity's absolute path as splunkd links it: in its owner's and app's namespace."""
        return "/".join(["/servicesNS/nobody", quote(self.app, safe=""), *(quote(s, safe="") for s in segments)])

    def _acl(self, sharing: str) -> Dict[str, Any]:
        return {
            "app": self.app,
            "can_change_perms": True,
            "can_list": True,
            "can_share_app": True,
            "can_share_global": True,
            "can_share_user": False,
            "can_write": True,
            "modifiable": True,
            "owner": "nobody",
            "perms": {"read": ["*"], "write": ["admin", "sc_admin"]},
            "removable": True,
            "sharing": sharing,
        }

    def _feed(
        self,
        request: _Request,
        title: str,
        entries: List[EaiEntry],
        *,
        status: int = 200,
        paginate: bool = True,
    ) -> _Response:
        """A feed of ``entries``, filtered (search), sorted by name and paged (count, offset) as splunkd does."""
        offset, count = 0, EAI_DEFAULT_COUNT
        if paginate:
            search = request.params.get("search")
            if search:
                entries = [entry for entry in entries if _eai_search_matches(entry, search)]
            entries = sorted(entries, key=lambda entry: entry.name, reverse=request.params.get("sort_dir") == "desc")
            offset = _int_param(request, "offset", 0)
            count = _int_param(request, "count", EAI_DEFAULT_COUNT)
            if offset < 0:
                raise _ApiError(400, "offset must not be negative", json_body=request.wants_json)
        total = len(entries)
        page = entries[offset : offset + count] if count > 0 else entries[offset:]
        namespace = (
            ["/services"]
            if request.owner is None
            else ["/servicesNS", quote(request.owner or "", safe=""), quote(request.app or "", safe="")]
        )
        feed = EaiFeed(
            title=title,
            href="/".join([*namespace, *(quote(s, safe="") for s in request.path)]),
            entries=page,
            total=total,
            offset=offset,
            per_page=max(count, 0),
        )
        if request.wants_json:
            return _Response(status, render_json(feed, self.server_uri), _JSON_CONTENT_TYPE)
        return _Response(status, render_atom(feed, self.server_uri))

    # --- properties/<conf>[/<stanza>[/<key>]] ---------------------------------------------------------

    def _properties(self, request: _Request) -> _Response:
        path, method = request.path, request.method
        with self._lock:
            if len(path) == 1:
                if method == "GET":
                    entries = [EaiEntry(conf, self._href("properties", conf), "") for conf in self._confs]
                    return self._feed(request, "properties", entries)
                if method == "POST":
                    conf = request.params.get("__conf", "")
                    if not conf:
                        raise _ApiError(400, "Missing argument: __conf", json_body=request.wants_json)
                    self._confs.setdefault(conf, {})
                    return self._feed(request, "properties", [], status=201)
                raise _method_not_allowed(request)
            conf = path[1]
            stanzas = self._confs.get(conf)
            if stanzas is None:
                raise _ApiError(404, f"Could not find object id={conf}", json_body=request.wants_json)
            if len(path) == 2:
                if method == "GET":
                    entries = [EaiEntry(s, self._href("properties", conf, s), "") for s in stanzas]
                    return self._feed(request, conf, entries)
                if method == "POST":
                    stanza = request.params.get("__stanza", "")
                    if not stanza:
                        raise _ApiError(400, "Missing argument: __stanza", json_body=request.wants_json)
                    stanzas.setdefault(stanza, {})
                    return self._feed(request, conf, [], status=201)
                raise _method_not_allowed(request)
            stanza = path[2]
            values = stanzas.get(stanza)
            if values is None:
                raise _ApiError(404, f"Could not find object id={stanza}", json_body=request.wants_json)
            if len(path) == 3:
                if method == "POST":
                    values.update(_conf_fields(request.params))
                if method in ("GET", "POST"):
                    entries = [
                        EaiEntry(key, self._href("properties", conf, stanza, key), value)
                        for key, value in values.items()
                    ]
                    return self._feed(request, stanza, entries)
                raise _method_not_allowed(request)
            if len(path) == 4 and method == "GET":
                key = path[3]
                if key not in values:
                    raise _ApiError(404, f"Could not find object id={key}", json_body=request.wants_json)
                return _Response(200, values[key].encode("utf-8"), "text/plain; charset=UTF-8")
        raise _ApiError(404, "Not Found", json_body=request.wants_json)

    # --- configs/conf-<conf>[/<stanza>] -----------------------------------------------------------------

    def _stanza_entry(self, conf: str, name: str, values: Dict[str, str]) -> EaiEntry:
        content: Dict[str, Any] = dict(values)
        content["disabled"] = _is_true(values.get("disabled", "0"))
        content["eai:appName"] = self.app
        content["eai:userName"] = "nobody"
        # UCC's metadata/default.meta exports the add-on's objects system-wide.
        return EaiEntry(name, self._href("configs", f"conf-{conf}", name), content, self._acl("global"))

    def _configs(self, request: _Request, conf: str) -> _Response:
        # A stanza name may hold "/" (aws_cloudtrail_sqs://name): clients send it encoded or, after
        # splunklib re-quotes a link, raw; both arrive here as several segments.
        stanza = "/".join(request.path[2:])
        method, title = request.method, f"conf-{conf}"
        with self._lock:
            stanzas = self._confs.get(conf)
            if not stanza:
                if method == "GET":
                    entries = [self._stanza_entry(conf, name, values) for name, values in (stanzas or {}).items()]
                    return self._feed(request, title, entries)
                if method == "POST":
                    name = request.params.get("name", "")
                    if not name:
                        raise _ApiError(400, "Missing argument: name", json_body=request.wants_json)
                    stanzas = self._confs.setdefault(conf, {})
                    if name in stanzas:
                        raise _ApiError(409, f"An object with name={name} already exists", json_body=request.wants_json)
                    stanzas[name] = _conf_fields(request.params)
                    return self._feed(request, title, [self._stanza_entry(conf, name, stanzas[name])], status=201)
                raise _method_not_allowed(request)
            if stanza == "_reload" and method in ("GET", "POST"):
                return self._feed(request, title, [])
            if stanzas is None or stanza not in stanzas:
                raise _ApiError(404, f"Could not find object id={stanza}", json_body=request.wants_json)
            if method == "GET":
                return self._feed(request, title, [self._stanza_entry(conf, stanza, stanzas[stanza])])
            if method == "POST":
                if "name" in request.params:
                    raise _ApiError(
                        400, 'Argument "name" is not supported by this handler.', json_body=request.wants_json
                    )
                stanzas[stanza].update(_conf_fields(request.params))
                return self._feed(request, title, [self._stanza_entry(conf, stanza, stanzas[stanza])], paginate=False)
            if method == "DELETE":
                del stanzas[stanza]
                entries = [self._stanza_entry(conf, name, values) for name, values in stanzas.items()]
                return self._feed(request, title, entries)
        raise _method_not_allowed(request)

    # --- storage/passwords ---------------------------------------------------------------------------------

    def _password_entry(self, realm: str, username: str, clear: str) -> EaiEntry:
        name = f"{_escape_colons(realm)}:{_escape_colons(username)}:"
        keystream = hashlib.sha256(self._encryption_key + name.encode("utf-8")).digest()
        clear_bytes = clear.encode("utf-8")
        scrambled = bytes(b ^ keystream[i % len(keystream)] for i, b in enumerate(clear_bytes))
        content = {
            "clear_password": clear,
            "encr_password": "$7$" + base64.b64encode(scrambled).decode("ascii"),
            "password": "********",
            "realm": realm,
            "username": username,
            "eai:appName": self.app,
            "eai:userName": "nobody",
        }
        return EaiEntry(name, self._href("storage", "passwords", name), content, self._acl("app"))

    def _storage_passwords(self, request: _Request) -> _Response:
        name = "/".join(request.path[2:])  # realms hold "/" (…#configs/conf-…), sent raw by splunklib
        method = request.method
        with self._lock:
            if not name:
                if method == "GET":
                    entries = [self._password_entry(r, u, c) for (r, u), c in self._passwords.items()]
                    return self._feed(request, "passwords", entries)
                if method == "POST":
                    username, password = request.params.get("name", ""), request.params.get("password")
                    realm = request.params.get("realm", "")
                    if not username or password is None:
                        raise _ApiError(
                            400, "Missing argument: name and password are required", json_body=request.wants_json
                        )
                    if (realm, username) in self._passwords:
                        entry_name = f"{_escape_colons(realm)}:{_escape_colons(username)}:"
                        raise _ApiError(
                            409, f"An object with name={entry_name} already exists", json_body=request.wants_json
                        )
                    self._passwords[(realm, username)] = password
                    entry = self._password_entry(realm, username, password)
                    return self._feed(request, "passwords", [entry], status=201, paginate=False)
                raise _method_not_allowed(request)
            key = _split_password_name(name)
            if key is None or key not in self._passwords:
                raise _ApiError(404, f"Could not find object id={name}", json_body=request.wants_json)
            if method == "GET":
                return self._feed(request, "passwords", [self._password_entry(*key, self._passwords[key])])
            if method == "POST":
                if "password" not in request.params:
                    raise _ApiError(400, "Missing argument: password", json_body=request.wants_json)
                self._passwords[key] = request.params["password"]
                return self._feed(
                    request, "passwords", [self._password_entry(*key, self._passwords[key])], paginate=False
                )
            if method == "DELETE":
                del self._passwords[key]
                entries = [self._password_entry(r, u, c) for (r, u), c in self._passwords.items()]
                return self._feed(request, "passwords", entries)
        raise _method_not_allowed(request)

    # --- KV store -------------------------------------------------------------------------------------------

    def _kvstore(self, request: _Request) -> _Response:
        is_data = request.path[2:3] == ["data"]
        json_errors = is_data or request.wants_json
        with self._lock:
            outage, save_delay = self._kv_outage_status, self._kv_save_delay
            delayed = bool(save_delay) and request.path[-1:] == ["batch_save"]
            self.kv_saves_delayed += delayed
        if delayed:
            time.sleep(save_delay)
        if outage is not None:
            text = _KV_UNAVAILABLE_TEXT if outage == 503 else f"KV Store error (HTTP {outage})"
            raise _ApiError(outage, text, json_body=json_errors)
        if request.app != self.app:
            # Collections live in an app; the add-on's is the only one with any.
            raise _ApiError(404, f"Could not find object in app {request.app}", json_body=json_errors)
        if request.path[2:3] == ["config"]:
            return self._kv_config(request)
        if is_data and len(request.path) >= 4:
            return self._kv_data(request)
        raise _ApiError(404, "Not Found", json_body=json_errors)

    def _collection_entry(self, name: str, collection: _KvCollection) -> EaiEntry:
        content: Dict[str, Any] = {f"field.{k}": v for k, v in collection.fields.items()}
        content.update({f"accelerated_fields.{k}": v for k, v in collection.accelerated_fields.items()})
        content.update({"enforceTypes": "false", "replicate": "false", "profilingEnabled": "false"})
        content.update(collection.options)
        content.update({"disabled": False, "eai:appName": self.app, "eai:userName": "nobody"})
        return EaiEntry(name, self._href("storage", "collections", "config", name), content, self._acl("app"))

    def _apply_collection_params(self, request: _Request, collection: _KvCollection) -> None:
        for key, value in request.params.items():
            if key in ("name", "output_mode"):
                continue
            if key.startswith("field."):
                collection.fields[key[len("field.") :]] = value
            elif key.startswith("accelerated_fields."):
                try:
                    definition = json.loads(value)
                except ValueError:
                    definition = None
                if not isinstance(definition, dict):
                    raise _ApiError(400, f"Invalid JSON in {key}", json_body=request.wants_json)
                collection.accelerated_fields[key[len("accelerated_fields.") :]] = value
            else:
                collection.options[key] = value

    def _kv_config(self, request: _Request) -> _Response:
        name, method, title = "/".join(request.path[3:]), request.method, "collections-conf"
        with self._lock:
            if not name:
                if method == "GET":
                    entries = [self._collection_entry(n, c) for n, c in self._collections.items()]
                    return self._feed(request, title, entries)
                if method == "POST":
                    new_name = request.params.get("name", "")
                    if not new_name:
                        raise _ApiError(400, "Missing argument: name", json_body=request.wants_json)
                    if new_name in self._collections:
                        raise _ApiError(
                            409, f"An object with name={new_name} already exists", json_body=request.wants_json
                        )
                    collection = _KvCollection()
                    self._apply_collection_params(request, collection)
                    self._collections[new_name] = collection
                    return self._feed(request, title, [self._collection_entry(new_name, collection)], status=201)
                raise _method_not_allowed(request)
            collection = self._collections.get(name)
            if collection is None:
                raise _ApiError(404, f"Could not find object id={name}", json_body=request.wants_json)
            if method == "GET":
                return self._feed(request, title, [self._collection_entry(name, collection)])
            if method == "POST":
                self._apply_collection_params(request, collection)
                return self._feed(request, title, [self._collection_entry(name, collection)], paginate=False)
            if method == "DELETE":
                del self._collections[name]
                entries = [self._collection_entry(n, c) for n, c in self._collections.items()]
                return self._feed(request, title, entries)
        raise _method_not_allowed(request)

    def _kv_store_document(self, collection: _KvCollection, document: Any, owner: str) -> str:
        key = document.get("_key")
        if key is None:
            key = secrets.token_hex(12)  # the shape of the MongoDB ObjectId the KV store generates
        elif not isinstance(key, str) or not key:
            raise _ApiError(400, "_key must be a non-empty string", json_body=True)
        document["_key"] = key
        document["_user"] = owner
        collection.documents[key] = document
        return key

    def _kv_data(self, request: _Request) -> _Response:
        name, rest, method = request.path[3], request.path[4:], request.method
        owner = request.owner if request.owner not in (None, "-") else "nobody"
        with self._lock:
            collection = self._collections.get(name)
            if collection is None:
                raise _ApiError(404, f"Collection {name} does not exist in app {self.app}", json_body=True)
            if not rest:
                if method == "GET":
                    return _json_response(200, self._kv_query(request, collection))
                if method == "POST":
                    document = _json_body(request, dict)
                    if document.get("_key") in collection.documents:
                        raise _ApiError(409, "A document with the same key and user already exists.", json_body=True)
                    return _json_response(201, {"_key": self._kv_store_document(collection, document, owner)})
                if method == "DELETE":
                    if "query" in request.params:
                        predicate = _compile_query_param(request.params["query"])
                        doomed = [key for key, document in collection.documents.items() if predicate(document)]
                    else:
                        doomed = list(collection.documents)
                    for key in doomed:
                        del collection.documents[key]
                    return _Response(200, b"", _JSON_CONTENT_TYPE)
                raise _method_not_allowed(request, json_body=True)
            if rest == ["batch_save"] and method == "POST":
                documents = _json_body(request, list)
                if len(documents) > KV_MAX_DOCUMENTS_PER_BATCH_SAVE:
                    raise _ApiError(
                        400,
                        "Request exceeds API limits - see limits.conf for details. (Too many documents for a "
                        f"single batch save, limit is {KV_MAX_DOCUMENTS_PER_BATCH_SAVE})",
                        json_body=True,
                    )
                if not all(isinstance(document, dict) for document in documents):
                    raise _ApiError(400, "Each document of a batch save must be a JSON object", json_body=True)
                for document in documents:
                    key = document.get("_key")
                    if key is not None and (not isinstance(key, str) or not key):
                        raise _ApiError(400, "_key must be a non-empty string", json_body=True)
                keys = [self._kv_store_document(collection, document, owner) for document in documents]
                return _json_response(200, keys)
            if len(rest) != 1:
                raise _ApiError(404, "Not Found", json_body=True)
            key = rest[0]
            if method == "GET":
                if key not in collection.documents:
                    raise _ApiError(404, "Could not find object.", json_body=True)
                return _json_response(200, collection.documents[key])
            if method == "POST":
                document = _json_body(request, dict)
                document["_key"] = key
                return _json_response(200, {"_key": self._kv_store_document(collection, document, owner)})
            if method == "DELETE":
                if key not in collection.documents:
                    raise _ApiError(404, "Could not find object.", json_body=True)
                del collection.documents[key]
                return _Response(200, b"", _JSON_CONTENT_TYPE)
        raise _method_not_allowed(request, json_body=True)

    def _kv_query(self, request: _Request, collection: _KvCollection) -> List[dict]:
        params = request.params
        predicate = _compile_query_param(params["query"]) if params.get("query") else None
        skip = _int_param(request, "skip", 0, json_body=True)
        limit = _int_param(request, "limit", 0, json_body=True)
        if skip < 0 or limit < 0:
            raise _ApiError(400, "skip and limit must not be negative", json_body=True)
        try:
            order = parse_kv_sort(params["sort"]) if params.get("sort") else []
            candidates = _documents_by_key(collection, params.get("query"))
            documents = [d for d in candidates if predicate is None or predicate(d)]
            if order:
                documents = sort_kv_documents(documents, order)
            limit = KV_MAX_ROWS_PER_QUERY if limit == 0 else min(limit, KV_MAX_ROWS_PER_QUERY)
            documents = documents[skip : skip + limit]
            if params.get("fields"):
                return [project_kv_document(document, params["fields"]) for document in documents]
        except KvQueryError as error:
            raise _ApiError(400, str(error), json_body=True) from None
        return copy.deepcopy(documents)


# --- small helpers ----------------------------------------------------------------------------------------


def _documents_by_key(collection: _KvCollection, raw_query: Optional[str]) -> List[dict]:
    """The documents a query can match: for {"_key": k} and {"$or": [{"_key": k}, ...]} only those keys (as the KV
    store's _key index answers), else all. The predicate still decides; this only keeps big collections fast."""
    try:
        query = json.loads(raw_query) if raw_query else None
    except ValueError:
        query = None
    branches = query.get("$or") if isinstance(query, dict) and set(query) == {"$or"} else [query]
    if isinstance(branches, list) and branches:
        keys = [b.get("_key") for b in branches if isinstance(b, dict) and set(b) == {"_key"}]
        if len(keys) == len(branches) and all(isinstance(k, str) for k in keys):
            return [collection.documents[k] for k in dict.fromkeys(keys) if k in collection.documents]
    return list(collection.documents.values())


def _conf_value(value: Any) -> str:
    """Seed values become conf strings; booleans the way UCC checkboxes store them."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _conf_fields(params: Dict[str, str]) -> Dict[str, str]:
    return {key: value for key, value in params.items() if key not in ("name", "output_mode")}


def _is_true(value: str) -> bool:
    return str(value).strip().lower() in ("1", "true", "t", "yes", "y", "on")


def _escape_colons(text: str) -> str:
    return text.replace(":", "\\:")


def _split_password_name(name: str) -> Optional[Tuple[str, str]]:
    """``realm:username:`` (colons inside escaped as ``\\:``) → (realm, username); ``username:`` has no realm."""
    parts = re.split(r"(?<!\\):", name)
    if parts and parts[-1] == "":
        parts.pop()
    parts = [part.replace("\\:", ":") for part in parts]
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _int_param(request: _Request, name: str, default: int, *, json_body: bool = False) -> int:
    raw = request.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _ApiError(400, f"Invalid value for {name}: {raw!r}", json_body=json_body or request.wants_json) from None


def _json_body(request: _Request, expected_type: type) -> Any:
    try:
        document = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _ApiError(400, "Request body is not valid JSON", json_body=True) from None
    if not isinstance(document, expected_type):
        wanted = "a JSON object" if expected_type is dict else "a JSON array"
        raise _ApiError(400, f"Request body must be {wanted}", json_body=True)
    return document


def _compile_query_param(raw: str) -> _KvPredicate:
    try:
        return compile_kv_query(json.loads(raw))
    except ValueError as error:  # KvQueryError is a ValueError, and so is json's decoding error
        raise _ApiError(400, f"Invalid query: {error}", json_body=True) from None


def _json_response(status: int, document: Any) -> _Response:
    return _Response(status, json.dumps(document).encode("utf-8"), _JSON_CONTENT_TYPE)


def _method_not_allowed(request: _Request, *, json_body: bool = False) -> _ApiError:
    return _ApiError(405, f"Method {request.method} is not allowed here", json_body=json_body or request.wants_json)


def _error_response(error: _ApiError) -> _Response:
    if error.json_body:
        return _Response(error.status, messages_json(error.message_type, error.text), _JSON_CONTENT_TYPE)
    return _Response(error.status, messages_xml(error.message_type, error.text))


# For extensions mounted on the emulator (harness.rest_handlers): the request, response and error types.
ApiError = _ApiError
Request = _Request
Response = _Response
