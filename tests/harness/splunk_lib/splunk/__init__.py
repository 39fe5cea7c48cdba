"""Stand-in for Splunk's private ``splunk`` package: what solnlib and splunktaucclib import from it.

Only a REST handler process started by ``harness.rest_handlers`` has this on its path, as splunkd gives its
handlers the real one. The splunkd URI comes from ``$SPLUNK_HOME/etc/system/local`` (web.conf
``mgmtHostPort``, server.conf ``enableSplunkdSSL``), which the harness writes as splunkd's own configuration.
"""

import configparser
import os
from typing import Optional

_session_key: Optional[str] = None


class RESTException(Exception):
    """An error answer of splunkd (``splunk.rest.simpleRequest`` raises it or a subclass)."""

    def __init__(self, statusCode: int, msg: str = "", extendedMessages=None):
        super().__init__(f"[HTTP {statusCode}] {msg}")
        self.statusCode = statusCode
        self.msg = msg
        self.extendedMessages = extendedMessages


class AuthenticationFailed(RESTException):
    pass


class AuthorizationFailed(RESTException):
    pass


class ResourceNotFound(RESTException):
    pass


class BadRequest(RESTException):
    pass


class InternalServerError(RESTException):
    pass


def getSessionKey() -> Optional[str]:
    """The session key of the request being handled (set by ``splunk.admin`` for each request)."""
    return _session_key


def setSessionKey(session_key: Optional[str]) -> None:
    global _session_key
    _session_key = session_key


def getLocalServerInfo() -> str:
    """splunkd's management URI, as the real library derives it from server.conf and web.conf."""
    local = os.path.join(os.environ["SPLUNK_HOME"], "etc", "system", "local")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read([os.path.join(local, "server.conf"), os.path.join(local, "web.conf")], encoding="utf-8")
    ssl = parser.get("sslConfig", "enableSplunkdSSL", fallback="true").strip().lower() in ("1", "true", "t", "yes")
    host_port = parser.get("settings", "mgmtHostPort", fallback="127.0.0.1:8089").strip()
    return f"{'https' if ssl else 'http'}://{host_port}"
