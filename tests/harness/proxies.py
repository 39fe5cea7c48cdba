"""Network middlemen for tests, on 127.0.0.1 with random ports.

- FaultInjectingProxy: a reverse proxy in front of moto (or the splunkd emulator). The input is pointed at it
  through its custom endpoint URLs; rules make chosen requests fail (HTTP status with an AWS error body), slow
  (delay, trickled bodies), cut (connection reset), and `down()` makes the whole endpoint unreachable.
- ForwardProxy: an HTTP proxy (absolute-form requests and CONNECT tunnels) with optional Basic proxy
  authentication, recording what went through it: what the add-on's proxy settings must drive.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List, Optional, Tuple
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "upgrade"}


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class Rule:
    """When `match(request)` is true (and `remaining` is not exhausted), apply the action instead of/around
    forwarding. Actions: status (answer with it and `body`), delay (sleep before forwarding), bytes_per_second
    (trickle the response body), reset (close the connection without an answer)."""

    match: Callable[[SeenRequest], bool]
    status: Optional[int] = None
    body: bytes = b""
    content_type: str = "application/xml"
    delay: float = 0.0
    bytes_per_second: Optional[int] = None
    reset: bool = False
    remaining: Optional[int] = None
    hits: int = 0


def s3_error(code: str, message: str = "injected by test") -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    )


def sqs_error(code: str, message: str = "injected by test") -> bytes:
    """SQS answers JSON errors to the JSON protocol botocore uses."""
    return (f'{{"__type":"com.amazonaws.sqs#{code}","message":"{message}"}}').encode()


def target_is(operation: str) -> Callable[[SeenRequest], bool]:
    """Match an AWS JSON-protocol call (SQS) by its X-Amz-Target header, e.g. "ReceiveMessage"."""
    return lambda r: r.headers.get("x-amz-target", "").endswith("." + operation)


def s3_get(path_part: str = "") -> Callable[[SeenRequest], bool]:
    return lambda r: r.method == "GET" and path_part in r.path and "x-amz-target" not in r.headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        # clients killed mid-request (SIGKILL tests) reset connections: expected, not worth a traceback
        pass


class FaultInjectingProxy:
    def __init__(self, upstream_url: str, tls_context: Optional[ssl.SSLContext] = None) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port
        self._tls = tls_context
        self.rules: List[Rule] = []
        self.requests: List[SeenRequest] = []
        self._lock = threading.Lock()
        self._server: Optional[_Server] = None
        self._connections: set = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def count(self, predicate: Callable[[SeenRequest], bool]) -> int:
        with self._lock:
            return sum(1 for r in self.requests if predicate(r))

    def _rule_for(self, request: SeenRequest) -> Optional[Rule]:
        with self._lock:
            self.requests.append(request)
            for rule in self.rules:
                if (rule.remaining is None or rule.remaining > 0) and rule.match(request):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    rule.hits += 1
                    return rule
        return None

    def start(self) -> FaultInjectingProxy:
        self._serve(self.port)
        return self

    def _serve(self, port: int) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self):
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = SeenRequest(self.command, self.path, headers, body)
                rule = proxy._rule_for(request)
                if rule is not None and rule.reset:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if rule is not None and rule.delay:
                    time.sleep(rule.delay)
                if rule is not None and rule.status is not None:
                    self.send_response(rule.status)
                    self.send_header("Content-Type", rule.content_type)
                    self.send_header("Content-Length", str(len(rule.body)))
                    self.end_headers()
                    self.wfile.write(rule.body)
                    return
                upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
                try:
                    forward = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=forward)
                    response = upstream.getresponse()
                    payload_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                    self.send_response(response.status, response.reason)
                    has_length = any(k.lower() == "content-length" for k, _ in payload_headers)
                    for k, v in payload_headers:
                        if k.lower() != "transfer-encoding":
                            self.send_header(k, v)
                    data = response.read()
                    if not has_length:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if rule is not None and rule.bytes_per_second:
                        step = max(1, rule.bytes_per_second // 10)
                        for start in range(0, len(data), step):
                            self.wfile.write(data[start : start + step])
                            self.wfile.flush()
                            time.sleep(0.1)
                    else:
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        self._server = _Server(("127.0.0.1", port), Handler)
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Unreachable until up(): new connections are refused and open (kept-alive) ones are cut."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        if self._server is None:
            self._serve(self.port)

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> FaultInjectingProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class ProxiedRequest:
    method: str
    target: str
    authorized: bool
    proxy_authorization: Optional[str] = field(default=None, repr=False)


class ForwardProxy:
    """HTTP proxy: absolute-form requests are forwarded, CONNECT is tunnelled. Optional Basic auth (407)."""

    def __init__(self, username: Optional[str] = None, password: Optional[str] = None) -> None:
        self._expected = None
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._expected = f"Basic {token}"
        self.requests: List[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._server: Optional[_Server] = None
        self.port = 0

    def start(self) -> ForwardProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _authorized(self) -> bool:
                header = self.headers.get("Proxy-Authorization")
                ok = proxy._expected is None or header == proxy._expected
                with proxy._lock:
                    proxy.requests.append(ProxiedRequest(self.command, self.path, ok, header))
                if not ok:
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                return ok

            def do_CONNECT(self):
                if not self._authorized():
                    return
                host, port = self.path.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)), timeout=30)
                self.send_response(200, "Connection established")
                self.end_headers()
                relay(self.connection, upstream)
                self.close_connection = True

            def _forward(self):
                if not self._authorized():
                    return
                target = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=60)
                try:
                    path = target.path + (f"?{target.query}" if target.query else "")
                    upstream.request(self.command, path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    self.send_response(response.status, response.reason)
                    for k, v in response.getheaders():
                        if k.lower() not in HOP_BY_HOP and k.lower() not in ("transfer-encoding", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def targets(self) -> List[Tuple[str, str, bool]]:
        with self._lock:
            return [(r.method, r.target, r.authorized) for r in self.requests]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def relay(a: socket.socket, b: socket.socket, idle_seconds: float = 30.0) -> None:
    """Copy bytes both ways between two connected sockets until one closes, fails or both stay idle; closes `b`."""
    sockets = [a, b]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [], idle_seconds)
            if not readable:
                return
            for s in readable:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()
