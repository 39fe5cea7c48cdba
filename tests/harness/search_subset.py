"""A small subset of Splunk's search language, evaluated against CloudTrail records (no SPL engine exists outside
Splunk). The add-on's event types, and the part before the first ``|`` of its alerts and dashboard searches, are
written in it so that tests can check what they match on real records.

Supported: ``field=value`` (``*`` matches any run of characters; values compare case-insensitively, as Splunk's
do; ``field=*`` means the field has a value), ``field IN (v1, v2, ...)``, ``AND`` (or juxtaposition), ``OR``,
``NOT``, parentheses, double-quoted values. Precedence as in Splunk: NOT, then AND, then OR.

Field names are those of Splunk's JSON extraction (``KV_MODE = json``): nested objects joined with ``.``, array
elements with ``{}`` (``requestParameters.instancesSet.items{}.instanceId``); JSON true/false are "true"/"false";
null is no value. ``sourcetype`` is "aws:cloudtrail" unless the record says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Set

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(,)|("(?:[^"\\]|\\.)*")|([^\s(),"]+(?:"(?:[^"\\]|\\.)*")?))')
_FIELD_VALUE = re.compile(r"^([A-Za-z_][\w.{}@-]*)(!?=)(.*)$", re.S)
_KEYWORDS = {"AND", "OR", "NOT", "IN"}


class SearchSyntaxError(ValueError):
    """The search is outside the subset."""


Predicate = Callable[[Dict[str, List[str]]], bool]


@dataclass
class Search:
    text: str
    predicate: Predicate
    fields: Set[str]  # every field the search tests

    def matches(self, record: Dict[str, Any]) -> bool:
        return self.predicate(flatten(record))


def parse(text: str) -> Search:
    tokens = _tokenize(text)
    parser = _Parser(tokens)
    predicate = parser.parse_or()
    if parser.position != len(tokens):
        raise SearchSyntaxError(f"unexpected {tokens[parser.position]!r} in {text!r}")
    return Search(text, predicate, parser.fields)


def base_search(spl: str) -> str:
    """The part of a search before its first ``|`` outside quotes."""
    in_quotes = False
    for index, char in enumerate(spl):
        if char == '"' and (index == 0 or spl[index - 1] != "\\"):
            in_quotes = not in_quotes
        elif char == "|" and not in_quotes:
            return spl[:index].strip()
    return spl.strip()


def flatten(record: Dict[str, Any]) -> Dict[str, List[str]]:
    """Splunk's JSON field names -> their values as text (several for fields inside arrays)."""
    fields: Dict[str, List[str]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}{{}}")
        elif value is not None and path:
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            fields.setdefault(path, []).append(text)

    walk(record, "")
    fields.setdefault("sourcetype", ["aws:cloudtrail"])
    return fields


def field_names(records: List[Dict[str, Any]]) -> Set[str]:
    names: Set[str] = set()
    for record in records:
        names.update(flatten(record))
    return names


def _tokenize(text: str) -> List[str]:
    tokens: List[str] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise SearchSyntaxError(f"cannot read {text[position:]!r}")
        tokens.append(next(group for group in match.groups() if group is not None))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def _pattern(value: str) -> re.Pattern:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in value), re.I | re.S)


def _test(field: str, patterns: List[re.Pattern]) -> Predicate:
    def predicate(fields: Dict[str, List[str]]) -> bool:
        return any(p.fullmatch(value) for value in fields.get(field, ()) for p in patterns)

    return predicate


class _Parser:
    def __init__(self, tokens: List[str]) -> None:
        self.tokens = tokens
        self.position = 0
        self.fields: Set[str] = set()

    def peek(self) -> str:
        return self.tokens[self.position] if self.position < len(self.tokens) else ""

    def take(self) -> str:
        token = self.peek()
        if not token:
            raise SearchSyntaxError("the search ends early")
        self.position += 1
        return token

    def parse_or(self) -> Predicate:
        terms = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            terms.append(self.parse_and())
        return terms[0] if len(terms) == 1 else (lambda f: any(t(f) for t in terms))

    def parse_and(self) -> Predicate:
        terms = [self.parse_not()]
        while self.peek() not in ("", ")", "OR"):
            if self.peek() == "AND":
                self.take()
            terms.append(self.parse_not())
        return terms[0] if len(terms) == 1 else (lambda f: all(t(f) for t in terms))

    def parse_not(self) -> Predicate:
        if self.peek() == "NOT":
            self.take()
            inner = self.parse_not()
            return lambda f: not inner(f)
        return self.parse_atom()

    def parse_atom(self) -> Predicate:
        token = self.take()
        if token == "(":
            inner = self.parse_or()
            if self.take() != ")":
                raise SearchSyntaxError("a ( is not closed")
            return inner
        if token in _KEYWORDS or token in (")", ","):
            raise SearchSyntaxError(f"unexpected {token!r}")
        match = _FIELD_VALUE.match(token)
        if match:
            field, operator, value = match.groups()
            if value == "":
                raise SearchSyntaxError(f"{token!r} has no value")
            self.fields.add(field)
            test = _test(field, [_pattern(value)])
            return test if operator == "=" else (lambda f: field in f and not test(f))
        if self.peek() == "IN":
            self.take()
            return self.parse_in(token)
        raise SearchSyntaxError(f"{token!r} is not field=value (bare terms are outside the subset)")

    def parse_in(self, field: str) -> Predicate:
        if self.take() != "(":
            raise SearchSyntaxError("IN needs a (")
        values: List[str] = []
        for token in self._until_close():
            values.append(token)
        if not values:
            raise SearchSyntaxError(f"{field} IN () is empty")
        self.fields.add(field)
        return _test(field, [_pattern(v) for v in values])

    def _until_close(self) -> Iterator[str]:
        expect_value = True
        while True:
            token = self.take()
            if token == ")":
                return
            if token == ",":
                expect_value = True
                continue
            if not expect_value:
                raise SearchSyntaxError("IN values are separated by commas")
            expect_value = False
            yield token


def matching(searches: Dict[str, Search], record: Dict[str, Any]) -> Set[str]:
    """The names of the searches that match the record."""
    fields = flatten(record)
    return {name for name, search in searches.items() if search.predicate(fields)}
