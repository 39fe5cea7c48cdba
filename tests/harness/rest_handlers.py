"""splunkd's side of an installed app: its ``admin_external`` REST handlers and its modular inputs' endpoints.

Mounted on the splunkd emulator, this answers what a real splunkd answers for the built add-on:

- every ``[admin_external:<endpoint>]`` of the app's ``default/restmap.conf`` (``/servicesNS/<o>/<app>/<endpoint>
  [/<name>]``): the request becomes an action (GET list, POST create or edit, DELETE remove), the entity name and
  the arguments, and the app's handler file runs in a persistent handler process (one per file, as
  ``handlerpersistentmode = true``) through the ``splunk.admin`` stand-in of ``harness/splunk_lib``;
- ``data/inputs/<scheme>`` for each modular input of the app: the stanzas ``<scheme>://<name>`` of inputs.conf,
  created and edited only after the input's script accepts them (``--validate-arguments``, its ``<error>``
  message returned as splunkd returns it), enabled, disabled and deleted;
- ``data/indexes``: the instance's indexes (UCC's index field lists them).

The app is installed as splunkd sees it: ``$SPLUNK_HOME/etc/apps/<app>`` links to the built add-on, and
``etc/system/local`` holds splunkd's own server.conf and web.conf (its management URI) for the handlers' libraries.
"""

import configparser
import json
import os
import subprocess
import sys
import threading
from typing import Dict, List, Optional

from harness.modinput import ModularInputRunner
from harness.splunkd import ApiError, EaiEntry, Request, Response, SplunkdEmulator

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
SPLUNK_LIB = os.path.join(HARNESS_DIR, "splunk_lib")
HOST_SCRIPT = os.path.join(HARNESS_DIR, "rest_handler_host.py")
# Arguments splunkd itself consumes on EAI endpoints; they never reach a handler's callerArgs.
SPLUNKD_ARGUMENTS = frozenset(["output_mode", "count", "offset", "search", "sort_key", "sort_dir", "sort_mode", "f"])
DEFAULT_INDEXES = ("main", "history", "summary", "cloudtrail", "_internal", "_audit")


def _read_conf(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # keys keep their case, as splunkd reads them
    parser.read(path, encoding="utf-8")
    return parser


class _HandlerProcess:
    """One persistent handler process: requests are served one at a time, in order."""

    def __init__(self, bin_dir: str, env: Dict[str, str], python: str):
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [python, "-S", HOST_SCRIPT, bin_dir, SPLUNK_LIB],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=bin_dir,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.stderr: List[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self.stderr.append(line)

    def call(self, request: dict) -> dict:
        with self._lock:
            assert self._process.stdin is not None and self._process.stdout is not None
            if self._process.poll() is not None:
                return {"status": 500, "text": "the REST handler process has exited: " + "".join(self.stderr[-5:])}
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            return {"status": 500, "text": "the REST handler process died: " + "".join(self.stderr[-5:])}
        return json.loads(line)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()  # type: ignore[union-attr]
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


class InstalledApp:
    """The built add-on installed in ``<workdir>/splunk`` (the ``SPLUNK_HOME`` of :class:`ModularInputRunner`)
    and served by ``splunkd``; call :meth:`stop` at the end."""

    def __init__(
        self,
        splunkd: SplunkdEmulator,
        addon_dir: str,
        workdir: str,
        *,
        python: str = sys.executable,
        indexes=DEFAULT_INDEXES,
        handler_env: Optional[Dict[str, str]] = None,
    ):
        self.splunkd = splunkd
        self.addon_dir = os.path.abspath(addon_dir)
        self.app = os.path.basename(self.addon_dir.rstrip(os.sep))
        self.splunk_home = os.path.join(os.path.abspath(workdir), "splunk")
        self.python = python
        self.indexes = list(indexes)
        self.app_dir = os.path.join(self.splunk_home, "etc", "apps", self.app)
        self.bin_dir = os.path.join(self.app_dir, "bin")
        self.log_dir = os.path.join(self.splunk_home, "var", "log", "splunk")
        self._processes: Dict[str, _HandlerProcess] = {}
        self._processes_lock = threading.Lock()
        self._install()
        restmap = _read_conf(os.path.join(self.addon_dir, "default", "restmap.conf"))
        self.endpoints: Dict[str, str] = {
            section.split(":", 1)[1]: restmap.get(section, "handlerfile")
            for section in restmap.sections()
            if section.startswith("admin_external:")
        }
        self.schemes = [
            section for section in _read_conf(os.path.join(self.addon_dir, "default", "inputs.conf")).sections()
        ]
        self._input_defaults = _read_conf(os.path.join(self.addon_dir, "default", "inputs.conf"))
        self._runners = {scheme: ModularInputRunner(self.app_dir, workdir, scheme=scheme) for scheme in self.schemes}
        self._handler_env = dict(handler_env or {})
        splunkd.mount(self._serve)

    # --- installation ------------------------------------------------------------------------------------

    def _install(self) -> None:
        os.makedirs(os.path.dirname(self.app_dir), exist_ok=True)
        if not os.path.islink(self.app_dir):
            os.symlink(self.addon_dir, self.app_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        local = os.path.join(self.splunk_home, "etc", "system", "local")
        os.makedirs(local, exist_ok=True)
        ssl = "true" if self.splunkd.scheme == "https" else "false"
        host_port = f"{self.splunkd.host}:{self.splunkd.port}"
        with open(os.path.join(local, "server.conf"), "w", encoding="utf-8") as conf:
            conf.write(f"[sslConfig]\nenableSplunkdSSL = {ssl}\n")
        with open(os.path.join(local, "web.conf"), "w", encoding="utf-8") as conf:
            conf.write(f"[settings]\nmgmtHostPort = {host_port}\n")
        # The same settings over REST, where solnlib's splunkenv reads them.
        self.splunkd.put_conf_stanza("server", "sslConfig", {"enableSplunkdSSL": ssl})
        self.splunkd.put_conf_stanza("web", "settings", {"mgmtHostPort": host_port})
        # splunkd layers an app's default/<conf>.conf under what was saved: the add-on's own conf files (the
        # settings tab's [proxy] and [logging] stanzas, for one) start with their shipped values.
        default_dir = os.path.join(self.addon_dir, "default")
        for file_name in sorted(os.listdir(default_dir)):
            if not (file_name.startswith(self.app.lower() + "_") and file_name.endswith(".conf")):
                continue
            conf = file_name[: -len(".conf")]
            saved = self.splunkd.conf_stanzas(conf)
            shipped = _read_conf(os.path.join(default_dir, file_name))
            for stanza in shipped.sections():
                values = dict(shipped.items(stanza, raw=True))
                values.update(saved.get(stanza, {}))
                self.splunkd.put_conf_stanza(conf, stanza, values)

    def _environment(self) -> Dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("AWS_") and name not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "SPLUNKD_URI")
        }
        env.update(SPLUNK_HOME=self.splunk_home, SPLUNK_ETC=os.path.join(self.splunk_home, "etc"))
        env.update(self._handler_env)
        return env

    def handler_stderr(self) -> str:
        return "".join(line for process in self._processes.values() for line in process.stderr)

    def stop(self) -> None:
        with self._processes_lock:
            processes, self._processes = list(self._processes.values()), {}
        for process in processes:
            process.stop()

    # --- routing ----------------------------------------------------------------------------------------

    def _serve(self, request: Request) -> Optional[Response]:
        if request.app not in (self.app, None) and request.app != "-":
            return None
        path = request.path
        if path and path[0] in self.endpoints:
            return self._admin_external(request, path[0], path[1:])
        if path[:2] == ["data", "inputs"] and len(path) >= 3 and path[2] in self.schemes:
            return self._data_inputs(request, path[2], path[3:])
        if path[:2] == ["data", "indexes"] and request.method == "GET":
            return self._indexes(request)
        return None

    # --- admin_external ---------------------------------------------------------------------------------

    def _process(self, handlerfile: str) -> _HandlerProcess:
        with self._processes_lock:
            process = self._processes.get(handlerfile)
            if process is None:
                process = self._processes[handlerfile] = _HandlerProcess(self.bin_dir, self._environment(), self.python)
            return process

    def _admin_external(self, request: Request, endpoint: str, rest: List[str]) -> Response:
        method, json_body = request.method, request.wants_json
        data = {key: [value] for key, value in request.params.items() if key not in SPLUNKD_ARGUMENTS}
        entity: Optional[str] = rest[0] if rest else None
        if len(rest) == 2 and rest[1] in ("enable", "disable") and method == "POST":
            action, data = "edit", {"disabled": ["1" if rest[1] == "disable" else "0"]}
        elif len(rest) > 1 or entity == "_reload":
            if entity == "_reload":
                return self.splunkd.feed(request, endpoint, [])
            raise ApiError(404, "Not Found", json_body=json_body)
        elif method == "GET":
            action, data = "list", {key: value for key, value in data.items() if key == "--cred--"}
        elif method == "POST" and entity is None:
            names = data.pop("name", [""])
            if not names[0]:
                raise ApiError(400, "The following required arguments are missing: name.", json_body=json_body)
            action, entity = "create", names[0]
        elif method == "POST":
            action = "edit"
        elif method == "DELETE" and entity is not None:
            action = "remove"
        else:
            raise ApiError(405, f"Method {method} not allowed", json_body=json_body)
        outcome = self._process(self.endpoints[endpoint]).call(
            {
                "handlerfile": self.endpoints[endpoint],
                "action": action,
                "id": entity,
                "data": data,
                "session_key": self.splunkd.session_key,
                "app": self.app,
                "user": "admin",
            }
        )
        if outcome["status"] >= 400:
            raise ApiError(outcome["status"], outcome["text"], json_body=json_body)
        entries = [
            EaiEntry(e["name"], self.splunkd.href(endpoint, e["name"]), e["content"], e["acl"] or self.splunkd.acl())
            for e in outcome["entries"]
        ]
        return self.splunkd.feed(request, endpoint, entries, status=outcome["status"])

    # --- data/inputs/<scheme> ------------------------------------------------------------------------------

    def _input_entry(self, scheme: str, name: str, values: Dict[str, str]) -> EaiEntry:
        content: Dict[str, object] = {"host": "$decideOnStartup", "index": "default"}
        if self._input_defaults.has_section(scheme):
            content.update(self._input_defaults.items(scheme, raw=True))
        content.update(values)
        content["disabled"] = str(values.get("disabled", "0")).strip().lower() in ("1", "true")
        content["eai:appName"] = self.app
        content["eai:userName"] = "nobody"
        return EaiEntry(name, self.splunkd.href("data", "inputs", scheme, name), content, self.splunkd.acl("app"))

    def _validate(self, request: Request, scheme: str, name: str, params: Dict[str, str]) -> None:
        result = self._runners[scheme].validate(name, params, self.splunkd)
        if result.returncode != 0:
            text = result.message or (
                f"Argument validation for scheme={scheme}: "
                f"script running failed (exited with code {result.returncode})."
            )
            raise ApiError(400, text, json_body=request.wants_json)

    def _data_inputs(self, request: Request, scheme: str, rest: List[str]) -> Response:
        method, json_body = request.method, request.wants_json
        stanzas = self.splunkd.conf_stanzas("inputs")
        prefix = f"{scheme}://"
        existing = {stanza[len(prefix) :]: values for stanza, values in stanzas.items() if stanza.startswith(prefix)}
        params = {key: value for key, value in request.params.items() if key not in SPLUNKD_ARGUMENTS}
        if not rest:
            if method == "GET":
                entries = [self._input_entry(scheme, name, values) for name, values in existing.items()]
                return self.splunkd.feed(request, scheme, entries)
            if method == "POST":
                name = params.pop("name", "")
                if not name:
                    raise ApiError(400, "The following required arguments are missing: name.", json_body=json_body)
                if name in existing:
                    raise ApiError(409, f"An object with name={name} already exists", json_body=json_body)
                self._validate(request, scheme, name, params)
                self.splunkd.put_conf_stanza("inputs", prefix + name, params)
                entry = self._input_entry(scheme, name, self.splunkd.conf_stanzas("inputs")[prefix + name])
                return self.splunkd.feed(request, scheme, [entry], status=201)
            raise ApiError(405, f"Method {method} not allowed", json_body=json_body)
        name = rest[0]
        if name == "_reload":
            return self.splunkd.feed(request, scheme, [])
        if name not in existing:
            raise ApiError(404, f"Could not find object id={name}", json_body=json_body)
        if len(rest) == 2 and rest[1] in ("enable", "disable") and method == "POST":
            self.splunkd.put_conf_stanza("inputs", prefix + name, {"disabled": "1" if rest[1] == "disable" else "0"})
        elif len(rest) == 1 and method == "POST":
            merged = {**existing[name], **params}
            merged.pop("disabled", None)
            self._validate(request, scheme, name, merged)
            self.splunkd.put_conf_stanza("inputs", prefix + name, params)
        elif len(rest) == 1 and method == "DELETE":
            self.splunkd.delete_conf_stanza("inputs", prefix + name)
            return self.splunkd.feed(request, scheme, [])
        elif not (len(rest) == 1 and method == "GET"):
            raise ApiError(405, f"Method {method} not allowed", json_body=json_body)
        entry = self._input_entry(scheme, name, self.splunkd.conf_stanzas("inputs")[prefix + name])
        return self.splunkd.feed(request, scheme, [entry])

    # --- data/indexes ---------------------------------------------------------------------------------------

    def _indexes(self, request: Request) -> Response:
        entries = [
            EaiEntry(
                index,
                self.splunkd.href("data", "indexes", index),
                {"isInternal": "1" if index.startswith("_") else "0", "disabled": "0", "datatype": "event"},
                self.splunkd.acl("global"),
            )
            for index in self.indexes
        ]
        return self.splunkd.feed(request, "indexes", entries)
