"""A small W3C WebDriver client for the browser tests: Debian's chromedriver driving Debian's Chromium, headless.

The protocol is plain HTTP and JSON (https://www.w3.org/TR/webdriver2/), so this needs nothing beyond the standard
library; Selenium's Python bindings would need urllib3 2, which the add-on's libraries in the test virtualenv
cannot share. Nothing is downloaded: both programs come from the system (``apt-get install chromium
chromium-driver``); :func:`find_browser` says which is missing.
"""

import base64
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Callable, List, Optional, Tuple

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


class WebDriverError(Exception):
    pass


def find_browser() -> Tuple[Optional[str], Optional[str], str]:
    """(chromium, chromedriver, what is missing) from the PATH."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = ", ".join(name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path)
    return chromium, driver, missing


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Browser:
    """One headless Chromium session."""

    def __init__(self, chromium: str, chromedriver: str, *, timeout: float = 20.0):
        self.timeout = timeout
        self._port = _free_port()
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self._driver = subprocess.Popen(
            [chromedriver, f"--port={self._port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._driver.kill()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [*CHROMIUM_ARGS, f"--user-data-dir={self._profile}"]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self._session = answer.get("sessionId") or answer["capabilities"]["sessionId"]

    # --- protocol --------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: Optional[dict] = None) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=120)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            answer = json.loads(connection.getresponse().read() or b"{}")
        finally:
            connection.close()
        value = answer.get("value", answer)
        if isinstance(value, dict) and "error" in value:
            raise WebDriverError(f"{value['error']}: {value.get('message', '')[:300]}")
        return value

    def _session_call(self, method: str, path: str, payload: Optional[dict] = None) -> Any:
        return self._call(method, f"/session/{self._session}{path}", payload)

    # --- what the tests use -----------------------------------------------------------------------------

    def get(self, url: str) -> None:
        self._session_call("POST", "/url", {"url": url})

    @property
    def current_url(self) -> str:
        return self._session_call("GET", "/url")

    def execute(self, script: str, *args: Any) -> Any:
        return self._session_call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find_all(self, css: str) -> List[str]:
        found = self._session_call("POST", "/elements", {"using": "css selector", "value": css})
        return [element[ELEMENT_KEY] for element in found]

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: Optional[float] = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        last_error: Optional[Exception] = None
        while time.monotonic() < deadline:
            try:
                result = condition()
                if result:
                    return result
            except WebDriverError as exc:  # stale or not yet rendered elements
                last_error = exc
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))

    def find(self, css: str, timeout: Optional[float] = None) -> str:
        return self.wait_for(lambda: (self.find_all(css) or [None])[0], f"an element {css!r}", timeout)

    def find_visible(self, css: str, timeout: Optional[float] = None) -> str:
        def visible() -> Optional[str]:
            for element in self.find_all(css):
                if self._session_call("GET", f"/element/{element}/displayed"):
                    return element
            return None

        return self.wait_for(visible, f"a visible element {css!r}", timeout)

    def find_text(self, css: str, text: str, timeout: Optional[float] = None) -> str:
        """The first visible element matching ``css`` whose text is ``text`` (surrounding space ignored)."""
        script = (
            "return Array.from(document.querySelectorAll(arguments[0])).find("
            "e => e.offsetParent !== null && e.innerText.trim() === arguments[1]) || null;"
        )

        def found() -> Optional[str]:
            element = self.execute(script, css, text)
            return element[ELEMENT_KEY] if element else None

        return self.wait_for(found, f"{css!r} with the text {text!r}", timeout)

    def click(self, element: str) -> None:
        self._session_call("POST", f"/element/{element}/click", {})

    def type(self, element: str, text: str, *, clear: bool = True) -> None:
        if clear:
            self._session_call("POST", f"/element/{element}/clear", {})
        self._session_call("POST", f"/element/{element}/value", {"text": text})

    def text(self, element: str) -> str:
        return self._session_call("GET", f"/element/{element}/text")

    def attribute(self, element: str, name: str) -> Optional[str]:
        return self._session_call("GET", f"/element/{element}/property/{name}")

    def page_text(self) -> str:
        return self.execute("return document.body ? document.body.innerText : '';")

    def wait_for_text(self, text: str, timeout: Optional[float] = None) -> None:
        self.wait_for(lambda: text in self.page_text(), f"the text {text!r} on the page", timeout)

    def screenshot(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(self._session_call("GET", "/screenshot")))

    def console_errors(self) -> List[str]:
        try:
            entries = self._session_call("POST", "/se/log", {"type": "browser"})
        except WebDriverError:
            return []
        return [entry["message"] for entry in entries if entry.get("level") == "SEVERE"]

    def quit(self) -> None:
        with contextlib.suppress(OSError, WebDriverError):
            self._call("DELETE", f"/session/{self._session}")
        self._driver.terminate()
        try:
            self._driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._driver.kill()
        shutil.rmtree(self._profile, ignore_errors=True)
