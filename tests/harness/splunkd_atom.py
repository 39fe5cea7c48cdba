"""Wire formats of splunkd's REST answers, for the splunkd emulator.

- the Atom feed that splunklib parses by default (``<feed>``, ``<entry>``, ``<s:dict>``/``<s:key>``/
  ``<s:list>``/``<s:item>``, an ``eai:acl`` dict in every entry's content), as in the examples of
  Splunk's REST API reference;
- the JSON variant returned with ``output_mode=json`` (splunktaucclib's REST handlers ask for it);
- the ``<response><messages><msg type=…>`` bodies of errors and of ``auth/login``.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Sequence, Union

ATOM_XMLNS = "http://www.w3.org/2005/Atom"
REST_XMLNS = "http://dev.splunk.com/ns/rest"
OPENSEARCH_XMLNS = "http://a9.com/-/spec/opensearch/1.1/"
# What the feeds' <generator> claims: the emulator follows splunkd 9.x behaviour.
SPLUNK_VERSION = "9.2.1"
SPLUNK_BUILD = "emulator"

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters XML 1.0 cannot carry at all, not even as character references.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_ATTRIBUTE_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;", "\n": "&#10;", "\t": "&#9;"}


def _escape(text: str, escapes: Dict[str, str]) -> str:
    text = _XML_FORBIDDEN.sub("\ufffd", text)
    return "".join(escapes.get(char, char) for char in text)


def xml_text(text: str) -> str:
    """Escape character data. A carriage return becomes a reference, or XML parsers turn it into a newline."""
    return _escape(text, _TEXT_ESCAPES)


def xml_attribute(text: str) -> str:
    """A double-quoted attribute value."""
    return '"' + _escape(text, _ATTRIBUTE_ESCAPES) + '"'


def timestamp() -> str:
    """The ``<updated>`` form splunkd uses: ISO 8601 with the UTC offset."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class EaiEntry:
    """One entity of an EAI collection."""

    name: str
    href: str  # URL-encoded absolute path of the entity, as splunkd writes it in <link rel="alternate">
    # A dict is rendered as <content type="text/xml"><s:dict>; a str as <content type="text"> (the
    # properties/<conf>/<stanza> endpoint lists keys with their plain values that way).
    content: Union[Dict[str, Any], str]
    acl: Optional[Dict[str, Any]] = None
    author: str = "nobody"


@dataclass(frozen=True)
class EaiFeed:
    """A page of an EAI collection (or the one-entry feed of a single entity)."""

    title: str
    href: str  # URL-encoded absolute path of the collection that was asked for
    entries: Sequence[EaiEntry]
    total: int
    offset: int
    per_page: int


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return xml_text(value)
    if isinstance(value, dict):
        keys = "".join(f"<s:key name={xml_attribute(k)}>{_xml_value(v)}</s:key>" for k, v in value.items())
        return f"<s:dict>{keys}</s:dict>"
    if isinstance(value, (list, tuple)):
        items = "".join(f"<s:item>{_xml_value(item)}</s:item>" for item in value)
        return f"<s:list>{items}</s:list>"
    raise TypeError(f"cannot render {type(value).__name__} in an Atom feed")


def _entry_links(href: str) -> Dict[str, str]:
    return {
        "alternate": href,
        "list": href,
        "_reload": f"{href}/_reload",
        "edit": href,
        "remove": href,
    }


def render_atom(feed: EaiFeed, origin: str) -> bytes:
    """The Atom feed; ``origin`` is the scheme://host:port splunkd prefixes to <id>."""
    updated = timestamp()
    parts = [
        XML_DECLARATION,
        f'<feed xmlns="{ATOM_XMLNS}" xmlns:s="{REST_XMLNS}" xmlns:opensearch="{OPENSEARCH_XMLNS}">\n',
        f"  <title>{xml_text(feed.title)}</title>\n",
        f"  <id>{xml_text(origin + feed.href)}</id>\n",
        f"  <updated>{updated}</updated>\n",
        f'  <generator build="{SPLUNK_BUILD}" version="{SPLUNK_VERSION}"/>\n',
        "  <author>\n    <name>Splunk</name>\n  </author>\n",
        f'  <link href={xml_attribute(feed.href + "/_new")} rel="create"/>\n',
        f'  <link href={xml_attribute(feed.href + "/_reload")} rel="_reload"/>\n',
        f"  <opensearch:totalResults>{feed.total}</opensearch:totalResults>\n",
        f"  <opensearch:itemsPerPage>{feed.per_page}</opensearch:itemsPerPage>\n",
        f"  <opensearch:startIndex>{feed.offset}</opensearch:startIndex>\n",
        "  <s:messages/>\n",
    ]
    for entry in feed.entries:
        parts.append("  <entry>\n")
        parts.append(f"    <title>{xml_text(entry.name)}</title>\n")
        parts.append(f"    <id>{xml_text(origin + entry.href)}</id>\n")
        parts.append(f"    <updated>{updated}</updated>\n")
        for rel, href in _entry_links(entry.href).items():
            parts.append(f"    <link href={xml_attribute(href)} rel={xml_attribute(rel)}/>\n")
        parts.append(f"    <author>\n      <name>{xml_text(entry.author)}</name>\n    </author>\n")
        if isinstance(entry.content, str):
            parts.append(f'    <content type="text">{xml_text(entry.content)}</content>\n')
        else:
            content = dict(entry.content)
            if entry.acl is not None:
                content["eai:acl"] = entry.acl
            parts.append(f'    <content type="text/xml">{_xml_value(content)}</content>\n')
        parts.append("  </entry>\n")
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")


def render_json(feed: EaiFeed, origin: str) -> bytes:
    """The ``output_mode=json`` form of the same feed."""
    updated = timestamp()
    entries = []
    for entry in feed.entries:
        rendered: Dict[str, Any] = {
            "name": entry.name,
            "id": origin + entry.href,
            "updated": updated,
            "links": _entry_links(entry.href),
            "author": entry.author,
        }
        if entry.acl is not None:
            rendered["acl"] = entry.acl
        if isinstance(entry.content, str):
            rendered["content"] = entry.content
        else:
            # In JSON splunkd keeps the "eai:acl" key in the content but empties it; the ACL is "acl".
            rendered["content"] = {**entry.content, "eai:acl": None}
        entries.append(rendered)
    document = {
        "links": {"create": feed.href + "/_new", "_reload": feed.href + "/_reload"},
        "origin": origin + feed.href,
        "updated": updated,
        "generator": {"build": SPLUNK_BUILD, "version": SPLUNK_VERSION},
        "entry": entries,
        "paging": {"total": feed.total, "perPage": feed.per_page, "offset": feed.offset},
        "messages": [],
    }
    return json.dumps(document).encode("utf-8")


def messages_xml(message_type: str, text: str, code: Optional[str] = None) -> bytes:
    """splunkd's error body: ``<response><messages><msg type="ERROR">…``."""
    code_attribute = "" if code is None else f" code={xml_attribute(code)}"
    return (
        f"{XML_DECLARATION}<response>\n  <messages>\n"
        f"    <msg type={xml_attribute(message_type)}{code_attribute}>{xml_text(text)}</msg>\n"
        "  </messages>\n</response>\n"
    ).encode()


def messages_json(message_type: str, text: str) -> bytes:
    """The JSON error body (KV store data endpoints, and any endpoint with ``output_mode=json``)."""
    return json.dumps({"messages": [{"type": message_type, "text": text}]}).encode("utf-8")


def session_key_xml(session_key: str) -> bytes:
    """The body of a successful ``POST auth/login``."""
    return (
        f"{XML_DECLARATION}<response>\n  <sessionKey>{xml_text(session_key)}</sessionKey>\n"
        '  <messages>\n    <msg code=""></msg>\n  </messages>\n</response>\n'
    ).encode()
