"""One KV store collection of the add-on through splunklib: the plumbing its stores share.

Errors of every kind (HTTP, socket, TLS) become KvStoreError with a redacted one-line reason, so that the
callers' outage handling has one exception to catch.
"""

from __future__ import annotations

import http.client
import io
import json
import ssl
import threading
from typing import ClassVar, Dict, List, Optional

from .logs import redact
from .settings import ADDON_NAME, SplunkdConnection

# splunkd's default limits.conf [kvstore] max_documents_per_batch_save
MAX_BATCH_SAVE = 1000

_splunkd_tls: Optional[ssl.SSLContext] = None


def _splunkd_tls_context() -> ssl.SSLContext:
    """One TLS context for every KV store call.

    splunklib's default handler builds a context per connection, loading the system CA store each time
    (~27 ms of CPU). splunkd's management port usually has its own self-signed certificate, which splunklib
    and solnlib do not verify either; the connection is local to the Splunk host.
    """
    global _splunkd_tls
    if _splunkd_tls is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _splunkd_tls = context
    return _splunkd_tls


class KvStoreError(Exception):
    """The KV store could not be reached or refused the call (message redacted)."""


_connections = threading.local()  # this thread's open connections to splunkd: (scheme, host, port) -> connection
_STALE = (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionError, ssl.SSLEOFError)


def keepalive_handler(context: ssl.SSLContext, timeout: float):
    """A splunklib HTTP handler that keeps one connection per thread and splunkd address.

    splunklib's own handler opens a connection (a TLS handshake) per call and sends "Connection: Close": with a KV
    call per object (the claim) that doubled the input's CPU per small file. splunkd keeps connections alive.
    A kept-alive connection that turns out closed is replaced and the call sent once more; that is safe for the
    calls the add-on makes (reads, batch saves, and the claim insert, whose repetition answers 409 with the
    caller's own claim, which claims.py recognises).
    """
    from splunklib.binding import ResponseReader, _spliturl

    def connect(scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def request(url: str, message: dict, **kwargs) -> dict:
        scheme, host, port, path = _spliturl(url)
        body = message.get("body", "")
        head = {"Content-Length": str(len(body)), "Host": host, "Accept": "*/*", "Connection": "Keep-Alive"}
        for key, value in message["headers"]:
            head[key] = value
        address = (scheme, host, port)
        pool = getattr(_connections, "pool", None)
        if pool is None:
            pool = _connections.pool = {}
        for attempt in (1, 2):
            connection = pool.pop(address, None)
            reused = connection is not None
            if connection is None:
                connection = connect(scheme, host, port)
            try:
                connection.request(message.get("method", "GET"), path, body, head)
                response = connection.getresponse()
                data = response.read()
            except _STALE:
                connection.close()
                if reused and attempt == 1:
                    continue
                raise
            except Exception:
                connection.close()
                raise
            if "keep-alive" in (response.getheader("connection") or "").lower() and not response.will_close:
                pool[address] = connection
            else:
                connection.close()
            return {
                "status": response.status,
                "reason": response.reason,
                "headers": response.getheaders(),
                "body": ResponseReader(io.BytesIO(data)),
            }
        raise AssertionError("unreachable")

    return request


class KvCollection:
    """Documents of one collection; FIELDS and ACCELERATED_FIELDS create it when it is missing."""

    FIELDS: ClassVar[Dict[str, str]] = {}
    ACCELERATED_FIELDS: ClassVar[Dict[str, Dict[str, int]]] = {}

    def __init__(self, conn: SplunkdConnection, collection: str) -> None:
        self._conn = conn
        self._collection = collection
        self._local = threading.local()

    def _service(self):
        from splunklib import client

        return client.Service(
            scheme=self._conn.scheme,
            host=self._conn.host,
            port=self._conn.port,
            token=self._conn.session_key,
            owner="nobody",
            app=ADDON_NAME,
            handler=keepalive_handler(_splunkd_tls_context(), timeout=60),
        )

    def _data(self):
        data = getattr(self._local, "data", None)
        if data is None:
            data = self._service().kvstore[self._collection].data
            self._local.data = data
        return data

    def _call(self, what: str, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # splunklib raises HTTPError, socket and SSL errors alike
            self._local.data = None
            raise KvStoreError(f"KV store {what} failed: {_describe(exc)}") from None

    def ensure_collection(self) -> None:
        """Create the collection if default/collections.conf has not (e.g. KV store was down at install)."""
        from splunklib.binding import HTTPError

        def ensure() -> None:
            kvstore = self._service().kvstore
            try:
                kvstore.get(name=self._collection)
            except HTTPError as exc:
                if exc.status != 404:
                    raise
                try:
                    kvstore.create(self._collection, fields=self.FIELDS, accelerated_fields=self.ACCELERATED_FIELDS)
                except HTTPError as create_exc:
                    if create_exc.status != 409:  # another input created it meanwhile
                        raise

        self._call("collection check", ensure)

    def query(self, query: dict) -> List[dict]:
        return self._call("lookup", lambda: self._data().query(query=json.dumps(query)))

    def insert(self, document: dict) -> bool:
        """Create a document unless one with its _key exists (False then): the KV store's one atomic test."""
        from splunklib.binding import HTTPError

        def insert() -> bool:
            try:
                self._data().insert(json.dumps(document))
            except HTTPError as exc:
                if exc.status == 409:
                    return False
                raise
            return True

        return self._call("insert", insert)

    def put(self, document: dict) -> None:
        """Create or replace one document."""
        self._call("update", lambda: self._data().update(document["_key"], json.dumps(document)))

    def batch_save(self, documents: List[dict]) -> None:
        for start in range(0, len(documents), MAX_BATCH_SAVE):
            chunk = documents[start : start + MAX_BATCH_SAVE]
            self._call("save", lambda c=chunk: self._data().batch_save(*c))

    def delete(self, query: dict) -> None:
        self._call("delete", lambda: self._data().delete(query=json.dumps(query)))


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    text = f"HTTP {status}" if status else f"{type(exc).__name__}: {exc}"
    return redact(text)[:300]
