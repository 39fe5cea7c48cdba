"""Stand-in for ``splunk.rest``: ``simpleRequest`` over HTTP(S) to splunkd, as the real one does.

splunkd's certificate is its own (self-signed in the tests), so it is not verified, as Splunk's library does for
its local splunkd by default.
"""

import http.client
import json
import ssl
import urllib.parse
from typing import Dict, Mapping, Optional, Tuple

import splunk


class _Response(dict):
    """What the real library returns as the first element: the status and the headers (a dict)."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str]):
        super().__init__({key.lower(): value for key, value in headers.items()})
        self.status = status
        self.reason = reason


_ERRORS = {
    400: splunk.BadRequest,
    401: splunk.AuthenticationFailed,
    403: splunk.AuthorizationFailed,
    404: splunk.ResourceNotFound,
}


def _message(body: bytes) -> str:
    try:
        return json.loads(body)["messages"][0]["text"]
    except (ValueError, KeyError, IndexError, TypeError):
        return body.decode("utf-8", "replace")[:500]


def simpleRequest(
    path: str,
    sessionKey: Optional[str] = None,
    getargs: Optional[Dict[str, str]] = None,
    postargs: Optional[Dict[str, str]] = None,
    method: str = "GET",
    raiseAllErrors: bool = False,
    timeout: float = 30,
    **_: object,
) -> Tuple[_Response, bytes]:
    uri = urllib.parse.urlsplit(path if "://" in path else splunk.getLocalServerInfo() + path)
    target = uri.path + ("?" + urllib.parse.urlencode(getargs) if getargs else "")
    body = urllib.parse.urlencode(postargs).encode("utf-8") if postargs is not None else None
    if body is not None and method == "GET":
        method = "POST"
    if uri.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(uri.hostname, uri.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(uri.hostname, uri.port, timeout=timeout)
    headers = {"Authorization": f"Splunk {sessionKey or splunk.getSessionKey() or ''}"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, target, body=body, headers=headers)
        answer = connection.getresponse()
        content = answer.read()
    finally:
        connection.close()
    response = _Response(answer.status, answer.reason, dict(answer.getheaders()))
    if answer.status >= 400 and (raiseAllErrors or answer.status in _ERRORS or answer.status >= 500):
        raise _ERRORS.get(answer.status, splunk.InternalServerError)(answer.status, _message(content))
    return response, content
