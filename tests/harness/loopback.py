"""An HTTP server of the harness on 127.0.0.1 and a free port, served from a daemon thread."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Silent: clients closing connections they no longer need is not an error here."""


class LoopbackServer:
    """Subclasses name their request handler class in :meth:`handler_class`; it can reach the server object
    through the attribute the subclass sets on it."""

    def __init__(self) -> None:
        self.port = 0
        self._server: Optional[QuietServer] = None

    def handler_class(self) -> type:
        raise NotImplementedError

    def start(self):
        handler: type = self.handler_class()
        assert issubclass(handler, BaseHTTPRequestHandler)
        self._server = QuietServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
