"""Stand-in for ``splunk.admin``: the MConfigHandler contract splunkd offers its Python REST handlers.

splunkd parses a request to an ``admin_external`` endpoint into an action (list, create, edit, remove), the
entity name (``callerArgs.id``) and the arguments (``callerArgs.data``: name -> list of values); the handler's
``setup()`` declares the arguments it takes (``supportedArgs``), splunkd rejects the others, then the
``handle<Action>(confInfo)`` method fills ``confInfo[name][key] = value`` (and ``setMetadata`` for the ACL),
which splunkd renders as an EAI feed. An exception becomes an error answer: the admin exceptions below carry
their status; any other one is a 500 whose text names its class, as splunkd words it.

``serve(request, run)`` is the stand-in's entry point (used by ``harness/rest_handler_host.py``): it makes
``request`` current, calls ``run()`` (which executes the handler script, whose ``admin.init`` call does the
work) and returns the outcome as a dict.
"""

from typing import Any, Callable, Dict, List, Optional

import splunk

ACTION_CREATE = 1
ACTION_LIST = 2
ACTION_EDIT = 4
ACTION_REMOVE = 8
ACTION_MEMBERS = 16
ACTION_RELOAD = 32
CONTEXT_NONE = 0
CONTEXT_APP_ONLY = 1
CONTEXT_APP_AND_USER = 2
EAI_ENTRY_ACL = "eai:acl"

_ACTIONS = {"list": ACTION_LIST, "create": ACTION_CREATE, "edit": ACTION_EDIT, "remove": ACTION_REMOVE}


class AdminManagerException(Exception):
    status = 500


class ArgValidationException(AdminManagerException):
    status = 400


class NotFoundException(AdminManagerException):
    status = 404


class AlreadyExistsException(AdminManagerException):
    status = 409


class PermissionsException(AdminManagerException):
    status = 403


class BadProgrammerException(AdminManagerException):
    status = 500


class InternalException(AdminManagerException):
    status = 500


class HandlerSetupException(AdminManagerException):
    status = 500


class ServiceUnavailableException(AdminManagerException):
    status = 503


class CallerArgs:
    def __init__(self, entity_id: Optional[str], data: Dict[str, List[str]]):
        self.id = entity_id
        self.data = data


class SupportedArgs:
    def __init__(self) -> None:
        self.required: List[str] = []
        self.optional: List[str] = []

    def addReqArg(self, name: str) -> None:
        self.required.append(name)

    def addOptArg(self, name: str) -> None:
        self.optional.append(name)


class ConfigItem(dict):
    def __init__(self) -> None:
        super().__init__()
        self.metadata: Dict[str, Any] = {}

    def append(self, key: str, value: Any) -> None:
        self.setdefault(key, [])
        if not isinstance(self[key], list):
            self[key] = [self[key]]
        self[key].append(value)

    def setMetadata(self, key: str, value: Any) -> None:
        self.metadata[key] = value

    def getMetadata(self, key: str) -> Any:
        return self.metadata.get(key)


class ConfigInfo(dict):
    def __missing__(self, name: str) -> ConfigItem:
        item = self[name] = ConfigItem()
        return item


class MConfigHandler:
    def __init__(self, scriptMode: int = 0, ctxInfo: int = CONTEXT_APP_ONLY, *args: Any, **kwargs: Any):
        request = _current
        if request is None:
            raise HandlerSetupException("no request is being handled")
        self.requestedAction = _ACTIONS[request["action"]]
        self.customAction = ""
        self.callerArgs = CallerArgs(request.get("id"), dict(request.get("data") or {}))
        self.supportedArgs = SupportedArgs()
        self.appName = request.get("app", "")
        self.userName = request.get("user", "admin")
        self.context = ctxInfo
        self._session_key = request["session_key"]

    def getSessionKey(self) -> str:
        return self._session_key

    def setup(self) -> None:
        pass

    def handleList(self, confInfo: ConfigInfo) -> None:
        raise NotFoundException("list is not supported by this handler")

    def handleCreate(self, confInfo: ConfigInfo) -> None:
        raise NotFoundException("create is not supported by this handler")

    def handleEdit(self, confInfo: ConfigInfo) -> None:
        raise NotFoundException("edit is not supported by this handler")

    def handleRemove(self, confInfo: ConfigInfo) -> None:
        raise NotFoundException("remove is not supported by this handler")


_current: Optional[dict] = None
_outcome: Optional[dict] = None


def _check_arguments(handler: MConfigHandler) -> None:
    supported = set(handler.supportedArgs.required) | set(handler.supportedArgs.optional)
    if handler.requestedAction == ACTION_EDIT:
        supported.add("disabled")  # splunkd takes enable/disable on any editable entity (UCC's status toggle)
    for name in handler.callerArgs.data:
        if name not in supported:
            raise ArgValidationException(f'Argument "{name}" is not supported by this handler.')
    if handler.requestedAction == ACTION_CREATE:
        missing = [name for name in handler.supportedArgs.required if name not in handler.callerArgs.data]
        if missing:
            raise ArgValidationException(f"The following required arguments are missing: {', '.join(missing)}.")


def _entries(conf_info: ConfigInfo) -> List[dict]:
    entries = []
    for name, item in conf_info.items():
        content = dict(item)
        for key, value in item.metadata.items():
            if key != EAI_ENTRY_ACL:
                content[key] = value
        entries.append({"name": name, "content": content, "acl": item.metadata.get(EAI_ENTRY_ACL)})
    return entries


def init(handlerClass: type, ctxInfo: int = CONTEXT_APP_ONLY) -> None:
    """Runs the current request through ``handlerClass`` (what splunkd does for each request)."""
    global _outcome
    try:
        handler = handlerClass(0, ctxInfo)
        handler.setup()
        _check_arguments(handler)
        conf_info = ConfigInfo()
        method = {
            ACTION_LIST: handler.handleList,
            ACTION_CREATE: handler.handleCreate,
            ACTION_EDIT: handler.handleEdit,
            ACTION_REMOVE: handler.handleRemove,
        }[handler.requestedAction]
        method(conf_info)
        _outcome = {"status": 200 if handler.requestedAction != ACTION_CREATE else 201, "entries": _entries(conf_info)}
    except AdminManagerException as exc:
        _outcome = {"status": exc.status, "text": str(exc)}
    except Exception as exc:  # what splunkd answers for any other exception of a Python handler
        text = (
            f'Unexpected error "{type(exc)}" from python handler: "{exc}". See splunkd.log/python.log for more details.'
        )
        _outcome = {"status": 500, "text": text}


def serve(request: dict, run: Callable[[], None]) -> dict:
    global _current, _outcome
    _current, _outcome = request, None
    splunk.setSessionKey(request["session_key"])
    try:
        run()
    except SystemExit:
        pass
    except Exception as exc:  # the script failed before admin.init (an import error, say)
        return {"status": 500, "text": f'Unexpected error "{type(exc)}" from python handler: "{exc}".'}
    finally:
        _current = None
        splunk.setSessionKey(None)
    if _outcome is None:
        return {"status": 500, "text": "the handler script did not call admin.init"}
    return _outcome
