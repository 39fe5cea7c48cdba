"""A Splunk Web stand-in: serves the built add-on's UCC pages and proxies their REST calls to splunkd.

What Splunk Web does for an app's pages, on ``http://127.0.0.1:<port>``:

- ``/en-US/app/<app>/<view>``: the view of ``default/data/ui/views/<view>.xml``; UCC's views name the template
  ``appserver/templates/base.html``, which is served as the page shell (it holds no Mako markup, checked);
- ``/en-US/config?autoload=1``: the ``window.$C`` settings the UCC bundle reads (locale, splunkd path, build
  numbers, user, the port that names the CSRF cookie);
- ``/en-US/static/@<build>/app/<app>/...``: the app's ``appserver/static``; ``/en-US/static/@<build>/js/i18n.js``,
  ``/en-US/i18ncatalog`` and ``build/api/layout.js`` / ``get_theme.js``: small stand-ins for Splunk's own scripts
  (translation functions with the English catalog, and a plain header instead of Splunk's navigation bar);
- ``/en-US/splunkd/__raw/<path>``: the REST proxy. It needs the session cookie, for a write the
  ``X-Splunk-Form-Key`` header equal to the CSRF cookie, and a path the app's ``web.conf`` exposes (``[expose:*]``
  ``pattern`` and ``methods``); it forwards with the session's splunkd key. A path not exposed answers 404 and is
  recorded in :attr:`SplunkWeb.refused`, which the tests keep empty. Search jobs (Splunk's own endpoint) answer
  503: there is no search head here.
- ``/en-US/account/insecurelogin?username=&password=&return_to=``: signs in against splunkd (``auth/login``) and
  sets the session and CSRF cookies, as Splunk Web does when insecure login is enabled.
"""

import configparser
import http.client
import json
import mimetypes
import os
import re
import secrets
import ssl
import threading
import urllib.parse
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from typing import Dict, List, Optional, Tuple

from harness.loopback import LoopbackServer

LOCALE = "en-US"
BUILD_NUMBER = "1796218822"

_I18N_JS = """
window._i18n_locale = {locale_name: "en_US"};
window.i18n_register = function (catalog) {};
window.gettext = window._ = function (text) { return text; };
window.ungettext = function (one, many, n) { return n === 1 ? one : many; };
window.sprintf = function (format) {
    var args = Array.prototype.slice.call(arguments, 1), i = 0;
    return String(format).replace(/%[sd]/g, function () { return String(args[i++]); });
};
window.format_number = window.format_decimal = function (n) { return String(n); };
window.format_percent = function (n) { return String(Math.round(n * 100)) + "%"; };
"""
_LAYOUT_JS = """
// Stand-in for Splunk Web's navigation bar: a plain header and the page container below it.
window.__splunk_layout__ = {
    create: function (options) {
        var header = document.createElement("header");
        header.setAttribute("data-view", "splunkjs/mvc/headerview");
        header.setAttribute("data-test", "splunkweb-standin-header");
        header.style.cssText = "background:#1a1c20;color:#fff;padding:8px 16px;font:14px sans-serif";
        header.textContent = "Splunk Web stand-in \\u2014 " + (window.$C ? window.$C.APP_DISPLAY_NAME : "");
        var container = document.createElement("div");
        container.style.cssText = "display:flex;flex-direction:column;flex:1 0 0%";
        document.body.appendChild(header);
        document.body.appendChild(container);
        return { getContainerElement: function () { return container; } };
    }
};
"""
_THEME_JS = 'window.__get_theme__ = { getTheme: function () { return Promise.resolve("enterprise"); } };'


def _read_conf(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return parser


class SplunkWeb(LoopbackServer):
    """Splunk Web for one installed app, in front of a splunkd (the emulator, with the app's handlers mounted)."""

    def __init__(self, splunkd, addon_dir: str, *, app_label: str = "") -> None:
        super().__init__()
        self.splunkd = splunkd
        self.addon_dir = os.path.abspath(addon_dir)
        self.app = os.path.basename(self.addon_dir.rstrip(os.sep))
        self.app_label = app_label or self.app
        self.refused: List[str] = []  # splunkd paths the app's web.conf does not expose
        self.searches: List[str] = []  # search jobs the pages asked for (this stand-in has no search head)
        self.requests: List[Tuple[str, str, int]] = []
        self._sessions: Dict[str, Tuple[str, str, str]] = {}  # session id -> (user, splunkd key, CSRF token)
        self._lock = threading.Lock()
        self._exposed = self._read_exposed()

    def _read_exposed(self) -> List[Tuple[str, List[str]]]:
        web = _read_conf(os.path.join(self.addon_dir, "default", "web.conf"))
        exposed = []
        for section in web.sections():
            if section.startswith("expose:"):
                methods = [m.strip().upper() for m in web.get(section, "methods", fallback="GET").split(",")]
                exposed.append((web.get(section, "pattern").strip(), methods))
        return exposed

    # --- lifecycle ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page_url(self, view: str) -> str:
        return f"{self.url}/{LOCALE}/app/{self.app}/{view}"

    def login_url(self, view: str, username: str = "admin", password: str = "changeme") -> str:
        query = urllib.parse.urlencode(
            {"username": username, "password": password, "return_to": f"/{LOCALE}/app/{self.app}/{view}"}
        )
        return f"{self.url}/{LOCALE}/account/insecurelogin?{query}"

    def handler_class(self) -> type:
        web = self

        class Handler(_Handler):
            splunkweb = web

        return Handler

    # --- splunkd ----------------------------------------------------------------------------------------

    def splunkd_request(
        self, method: str, target: str, body: bytes, headers: Dict[str, str]
    ) -> Tuple[int, str, bytes, List[Tuple[str, str]]]:
        if self.splunkd.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # splunkd's own self-signed certificate, as Splunk Web's default
            connection = http.client.HTTPSConnection(self.splunkd.host, self.splunkd.port, timeout=120, context=context)
        else:
            connection = http.client.HTTPConnection(self.splunkd.host, self.splunkd.port, timeout=120)
        try:
            connection.request(method, target, body=body or None, headers={**headers, "Connection": "close"})
            answer = connection.getresponse()
            return answer.status, answer.getheader("Content-Type") or "", answer.read(), answer.getheaders()
        finally:
            connection.close()

    def login(self, username: str, password: str) -> Optional[Tuple[str, str]]:
        """splunkd's auth/login; returns (session id, CSRF token) for the browser's cookies, or None."""
        body = urllib.parse.urlencode({"username": username, "password": password, "output_mode": "json"}).encode()
        status, _, content, _ = self.splunkd_request(
            "POST", "/services/auth/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 200:
            return None
        session_id, csrf = secrets.token_hex(16), secrets.token_hex(20)
        with self._lock:
            self._sessions[session_id] = (username, json.loads(content)["sessionKey"], csrf)
        return session_id, csrf

    def session(self, session_id: Optional[str]) -> Optional[Tuple[str, str, str]]:
        with self._lock:
            return self._sessions.get(session_id or "")

    def is_exposed(self, splunkd_path: str, method: str) -> bool:
        """web.conf's rule: the part after ``services/`` or ``servicesNS/<owner>/<app>/`` matches a pattern."""
        match = re.match(r"^/(?:services|servicesNS/[^/]+/[^/]+)/(.*)$", splunkd_path)
        if not match:
            return False
        endpoint = urllib.parse.unquote(match.group(1)).rstrip("/")
        return any(
            _pattern_regex(pattern).fullmatch(endpoint) and method in methods for pattern, methods in self._exposed
        )


def _pattern_regex(pattern: str) -> "re.Pattern[str]":
    """web.conf's expose pattern: ``*`` matches within one path segment, ``**`` across segments."""
    parts = (re.escape(piece).replace(r"\*", "[^/]*") for piece in pattern.split("**"))
    return re.compile(".*".join(parts))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SplunkWebStandIn"
    splunkweb: SplunkWeb

    def log_message(self, format: str, *args: object) -> None:
        """Silent; requests are recorded in SplunkWeb.requests."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # --- plumbing --------------------------------------------------------------------------------------

    def _answer(self, status: int, body: bytes, content_type: str, headers: Optional[List[Tuple[str, str]]] = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        with self.splunkweb._lock:
            self.splunkweb.requests.append((self.command, self.path, status))

    def _not_found(self) -> None:
        self._answer(404, b"Not Found", "text/plain; charset=utf-8")

    def _cookies(self) -> Dict[str, str]:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie") or "")
        except Exception:
            return {}
        return {name: morsel.value for name, morsel in cookie.items()}

    def _session(self) -> Optional[Tuple[str, str, str]]:
        return self.splunkweb.session(self._cookies().get(f"splunkweb_{self.splunkweb.port}"))

    def _serve(self, method: str) -> None:
        # Read the whole body first, whatever the answer: on a kept-alive connection an unread body would be
        # taken for the next request.
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length > 0 else b""
        url = urllib.parse.urlsplit(self.path)
        prefix = f"/{LOCALE}/"
        if not url.path.startswith(prefix):
            self._answer(303, b"", "text/plain", [("Location", f"/{LOCALE}{url.path}")])
            return
        rest = url.path[len(prefix) :]
        if rest == "account/insecurelogin":
            self._insecure_login(urllib.parse.parse_qs(url.query))
            return
        session = self._session()
        if session is None:
            self._answer(401, b"Not signed in (use /en-US/account/insecurelogin)", "text/plain; charset=utf-8")
            return
        if rest.startswith("splunkd/__raw/"):
            self._proxy(method, "/" + rest[len("splunkd/__raw/") :], url.query, session)
        elif method != "GET":
            self._answer(405, b"Method not allowed", "text/plain")
        elif rest == "config":
            self._config(session)
        elif rest == "i18ncatalog":
            self._answer(
                200,
                b"i18n_register({plural: function (n) { return n === 1 ? 0 : 1; }, catalog: {}});",
                "application/javascript; charset=utf-8",
            )
        elif rest.startswith("app/"):
            self._view(rest.split("/"))
        elif rest.startswith("static/"):
            self._static(rest.split("/")[1:])
        else:
            self._not_found()

    # --- pages -------------------------------------------------------------------------------------------

    def _insecure_login(self, query: Dict[str, List[str]]) -> None:
        web = self.splunkweb
        signed_in = web.login(query.get("username", [""])[0], query.get("password", [""])[0])
        if signed_in is None:
            self._answer(401, b"Login failed", "text/plain; charset=utf-8")
            return
        session_id, csrf = signed_in
        return_to = query.get("return_to", [f"/{LOCALE}/app/{web.app}/inputs"])[0]
        if not return_to.startswith("/"):
            return_to = "/"
        self._answer(
            303,
            b"",
            "text/plain",
            [
                ("Location", return_to),
                ("Set-Cookie", f"splunkweb_{web.port}={session_id}; Path=/; HttpOnly"),
                ("Set-Cookie", f"splunkweb_csrf_token_{web.port}={csrf}; Path=/"),
            ],
        )

    def _config(self, session: Tuple[str, str, str]) -> None:
        web = self.splunkweb
        settings = {
            "LOCALE": LOCALE,
            "MRSPARKLE_ROOT_PATH": "",
            "MRSPARKLE_PORT_NUMBER": str(web.port),
            "SPLUNKD_PATH": f"/{LOCALE}/splunkd/__raw",
            "BUILD_NUMBER": BUILD_NUMBER,
            "BUILD_PUSH_NUMBER": 0,
            "USERNAME": session[0],
            "APP": web.app,
            "APP_DISPLAY_NAME": web.app_label,
            "VERSION_LABEL": "9.2.1",
            "SPLUNK_UI_THEME": "enterprise",
            "SERVER_ZONEINFO": "",
        }
        body = f"window.$C = {json.dumps(settings)};".encode()
        self._answer(200, body, "application/javascript; charset=utf-8")

    def _view(self, parts: List[str]) -> None:
        web = self.splunkweb
        if len(parts) != 3 or parts[1] != web.app or not re.fullmatch(r"[A-Za-z0-9_]+", parts[2]):
            self._not_found()
            return
        view = os.path.join(web.addon_dir, "default", "data", "ui", "views", parts[2] + ".xml")
        if not os.path.isfile(view):
            self._not_found()
            return
        with open(view, encoding="utf-8") as handle:
            match = re.search(r'template="' + re.escape(web.app) + r':/templates/([\w.-]+)"', handle.read())
        if not match:
            self._answer(500, b"view without an app template: not served by this stand-in", "text/plain")
            return
        with open(os.path.join(web.addon_dir, "appserver", "templates", match.group(1)), encoding="utf-8") as handle:
            template = handle.read()
        if "${" in template or "<%" in template:
            self._answer(500, b"the template has Mako markup this stand-in does not render", "text/plain")
            return
        self._answer(200, template.encode("utf-8"), "text/html; charset=utf-8")

    def _static(self, parts: List[str]) -> None:
        web = self.splunkweb
        if parts and parts[0].startswith("@"):
            parts = parts[1:]
        if parts == ["js", "i18n.js"]:
            self._answer(200, _I18N_JS.encode(), "application/javascript; charset=utf-8")
            return
        if parts == ["build", "api", "layout.js"] or parts == ["build", "api", "layout-dark.js"]:
            self._answer(200, _LAYOUT_JS.encode(), "application/javascript; charset=utf-8")
            return
        if parts == ["build", "api", "get_theme.js"]:
            self._answer(200, _THEME_JS.encode(), "application/javascript; charset=utf-8")
            return
        if len(parts) < 3 or parts[0] != "app" or parts[1] != web.app or ".." in parts:
            self._not_found()
            return
        path = os.path.join(web.addon_dir, "appserver", "static", *parts[2:])
        if not os.path.isfile(path):
            self._not_found()
            return
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path.endswith((".js", ".mjs")):
            content_type = "application/javascript"
        with open(path, "rb") as handle:
            self._answer(200, handle.read(), content_type)

    # --- REST proxy --------------------------------------------------------------------------------------

    def _proxy(self, method: str, splunkd_path: str, query: str, session: Tuple[str, str, str]) -> None:
        web = self.splunkweb
        if method != "GET" and self.headers.get("X-Splunk-Form-Key") != session[2]:
            self._answer(401, b'{"messages":[{"type":"ERROR","text":"CSRF validation failed"}]}', "application/json")
            return
        if re.match(r"^/(services|servicesNS/[^/]+/[^/]+)/search/jobs(/|$)", splunkd_path):
            # Splunk Web exposes search; there is no search head here. UCC's footer runs one search (the
            # app's build time) and shows "Build Error" without it.
            with web._lock:
                web.searches.append(f"{method} {splunkd_path}")
            body = b'{"messages":[{"type":"ERROR","text":"search is not available in the Splunk Web stand-in"}]}'
            self._answer(503, body, "application/json")
            return
        if not web.is_exposed(splunkd_path, method):
            with web._lock:
                web.refused.append(f"{method} {splunkd_path}")
            self._not_found()
            return
        body = self._body
        headers = {"Authorization": f"Splunk {session[1]}"}
        if self.headers.get("Content-Type"):
            headers["Content-Type"] = self.headers["Content-Type"]
        status, content_type, content, _ = web.splunkd_request(
            method, splunkd_path + (f"?{query}" if query else ""), body, headers
        )
        self._answer(status, content, content_type or "application/json")
