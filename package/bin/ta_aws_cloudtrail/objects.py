"""A CloudTrail object's bytes -> its records, streamed.

Input is an iterable of byte chunks (e.g. botocore's ``StreamingBody.iter_chunks()``). Gzip is
recognised by its magic bytes, anything else is read as plain JSON; a gzip member whose content is
gzip again (Firehose compressing CloudWatch Logs' already gzipped records) is unwrapped. Decompression
and JSON splitting work on bounded pieces, so memory depends on the piece size and the largest record
(or subscription document), never on the object's size.

Two layouts are recognised by content: a CloudTrail log file (``{"Records": [...]}`` or a top-level
array), and CloudWatch Logs subscription documents as Firehose writes them to S3: JSON objects
``{"messageType", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents": [...]}`` one
after the other with no separator. There each DATA_MESSAGE log event's ``message`` (a CloudTrail
record) is a record, numbered across the documents; CONTROL_MESSAGE documents (health checks) yield
nothing.

Each array element is yielded as ``(text, value)``: ``text`` is the element's exact source slice
(already valid JSON, so events need no re-serialisation) and ``value`` the parsed element.

UTF-8 is decoded per record, not per piece: the bytes are scanned as latin-1 text (one character per
byte). JSON's structure is ASCII and UTF-8 never uses ASCII bytes inside a multi-byte character, so
element boundaries are the same; only the rare records that contain non-ASCII bytes are decoded as
UTF-8 (invalid bytes become U+FFFD) and parsed again. Decoding whole pieces instead would turn the
entire buffer into 2 bytes per character as soon as one record holds a character above U+00FF, which
measured ~30% slower for every record around it.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import zlib
from typing import Any, Iterable, Iterator, List, Optional, Tuple

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# Decompressed bytes per step: a decompression bomb expands at most this much at once, and the text
# buffer stays around this size.
PIECE_BYTES = 64 * 1024
# The buffer is topped up while this much text remains ahead, so that elements up to this size are
# never cut by its end: a cut element costs a failed scan, and the JSONDecodeError's line and column
# are computed by counting through the whole buffer (~1 us per record if it happened at every piece).
_LOOKAHEAD_CHARS = 16 * 1024
# A value cut by the end of the buffer is parsed again once at least this much text is read (see _grown_size).
_GROWN_CHARS = 256 * 1024
# Compressed bytes per decompression step (see _gunzip).
_GZIP_INPUT_BYTES = 16 * 1024
# Gzip inside gzip is unwrapped this many times at most (Firehose adds one layer to CloudWatch Logs' one).
MAX_GZIP_LAYERS = 3
# The first property names of a CloudWatch Logs subscription document (CloudTrail's files start with "Records").
_SUBSCRIPTION_START = re.compile(
    r'\{[ \t\n\r]*"(?:messageType|owner|logGroup|logStream|subscriptionFilters|logEvents)"[ \t\n\r]*:'
)
_SUBSCRIPTION_PEEK_CHARS = 64
_UTF8_BOM = b"\xef\xbb\xbf"
_TRUNCATED = "The object's JSON ends early (truncated object)"
_WHITESPACE = " \t\n\r"
_skip_whitespace = re.compile(r"[ \t\n\r]*").match

# strict=False: a raw control character inside a string must not cost the record.
_SCAN_ONCE = json.JSONDecoder(strict=False).scan_once

# What can remain at the end of a buffer when a value is cut short there: a proper prefix of a literal
# (or a lone "-"), or the start of a number's fraction or exponent ("1." and "1e-" fail at "." or "e").
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")
_CUT_TAILS = frozenset(literal[:size] for literal in _LITERALS for size in range(len(literal))) | frozenset(
    (".", "e", "E", "e+", "e-", "E+", "E-")
)
_NUMBER_TYPES = (int, float)
_LONGEST_NUMBER_TAIL = len("e+")
# The scanner reports "\uXXXX" at the position of the "u" unless a character follows the 4 digits.
_CUT_UNICODE_ESCAPE = len("uXXXX")


class ObjectFormatError(Exception):
    """The object is not (complete) CloudTrail JSON; ``records_read`` elements were yielded before."""

    def __init__(self, message: str, records_read: int = 0) -> None:
        super().__init__(message)
        self.records_read = records_read


class ObjectTooLargeError(ObjectFormatError):
    """The object decompresses to more than the configured maximum."""


class _Damage(Exception):
    """What is wrong, as a sentence without its location; iter_records adds where it happened."""

    def __init__(self, problem: str, error_class: type = ObjectFormatError) -> None:
        super().__init__(problem)
        self.problem = problem
        self.error_class = error_class


def iter_records(chunks: Iterable[bytes], max_decompressed_bytes: int) -> Iterator[Tuple[str, Any]]:
    """Yield ``(text, value)`` for each element of the top-level "Records" array (or top-level array).

    Elements may be of any JSON type. An object without "Records" yields nothing. Subscription documents
    yield their log events' messages (see the module docstring; a message that is not JSON comes as
    ``(message, None)``). Damage anywhere (not JSON, truncated, corrupt gzip, empty, over the size cap)
    raises ObjectFormatError after every complete element before it has been yielded.
    """
    buffer = _TextBuffer(_latin1_pieces(chunks, max_decompressed_bytes))
    records_read = 0
    try:
        first = buffer.skip_whitespace()
        if first == "{" and buffer.starts_subscription_document():
            for element in _iter_subscription_records(buffer):
                yield element
                records_read += 1
        elif first == "[":
            buffer.pos += 1
            for element in _iter_array(buffer):
                yield element
                records_read += 1
        elif first == "{":
            buffer.pos += 1
            for element in _iter_object_records(buffer):
                yield element
                records_read += 1
        else:
            raise _not_a_document(buffer, first)
        buffer.expect_end()
    except _Damage as damage:
        if buffer.in_array:
            where = f", in record {records_read + 1}"
        elif records_read:
            where = f", after record {records_read}"
        else:
            where = ""
        raise damage.error_class(f"{damage.problem}{where}.", records_read) from None


def read_document(chunks: Iterable[bytes], max_decompressed_bytes: int) -> Tuple[str, Any]:
    """Return ``(text, value)`` of a whole (small) JSON document, e.g. a digest file."""
    buffer = _TextBuffer(_latin1_pieces(chunks, max_decompressed_bytes))
    try:
        first = buffer.skip_whitespace()
        if first not in ("{", "["):
            raise _not_a_document(buffer, first)
        value, start, end = buffer.scan_value()
        document = buffer.text[start:end]
        buffer.pos = end
        buffer.expect_end()
    except _Damage as damage:
        raise damage.error_class(f"{damage.problem}.") from None
    if document.isascii():
        return document, value
    return _decode_utf8(document)


def _not_a_document(buffer: _TextBuffer, first: str) -> _Damage:
    if first == "":
        return buffer.ended("The object is empty")
    return _Damage("The object is not JSON (it does not start with an object or an array)")


def _iter_object_records(buffer: _TextBuffer) -> Iterator[Tuple[str, Any]]:
    """The members of the top-level object (after its "{"): the elements of "Records", others skipped."""
    char = buffer.skip_whitespace()
    if char == "}":
        buffer.pos += 1
        return
    while True:
        if char != '"':
            raise buffer.damage("expected a property name in the top-level object")
        key, _, buffer.pos = buffer.scan_value()
        if buffer.skip_whitespace() != ":":
            raise buffer.damage("expected ':' after a property name in the top-level object")
        buffer.pos += 1
        char = buffer.skip_whitespace()
        if key == "Records":
            if char != "[":
                raise _Damage('The object\'s "Records" value is not an array')
            buffer.pos += 1
            yield from _iter_array(buffer)
        else:
            # Parsed so that damage is noticed, but not kept.
            _, _, buffer.pos = buffer.scan_value()
        char = buffer.skip_whitespace()
        if char == "}":
            buffer.pos += 1
            return
        if char != ",":
            raise buffer.damage("expected ',' or '}' in the top-level object")
        buffer.pos += 1
        char = buffer.skip_whitespace()


def _iter_subscription_records(buffer: _TextBuffer) -> Iterator[Tuple[str, Any]]:
    """The log events' messages of concatenated subscription documents, the first starting at ``pos``."""
    while True:
        char = buffer.skip_whitespace()
        if char == "":
            return
        if char != "{":
            raise buffer.damage("expected another CloudWatch Logs subscription document")
        document, start, end = buffer.scan_value()
        document_text = buffer.text[start:end]
        buffer.pos = end
        if not document_text.isascii():  # parsed again from its real text (see the module docstring)
            document = _decode_utf8(document_text)[1]
        message_type = document.get("messageType") if isinstance(document, dict) else None
        if message_type == "CONTROL_MESSAGE":
            continue
        log_events = document.get("logEvents") if message_type == "DATA_MESSAGE" else None
        if not isinstance(log_events, list):
            raise _Damage(
                "A CloudWatch Logs subscription document is neither a DATA_MESSAGE with logEvents nor a CONTROL_MESSAGE"
            )
        for log_event in log_events:
            yield _log_event_record(log_event)


def _log_event_record(log_event: Any) -> Tuple[str, Any]:
    """A subscription log event -> (its message, the message parsed), or (message, None) if it is not JSON."""
    message = log_event.get("message") if isinstance(log_event, dict) else None
    if not isinstance(message, str):
        return "", None
    text = message.strip(_WHITESPACE)
    try:
        value, end = _SCAN_ONCE(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return message, None
    return (text, value) if end == len(text) else (message, None)


def _iter_array(buffer: _TextBuffer) -> Iterator[Tuple[str, Any]]:
    """The elements of an array whose "[" was just consumed; returns after its "]".

    The hot path: compact CloudTrail text is "{...},{...}", so after each element the separator and
    the next element's start are checked in place, and the buffer's methods run only to top it up.
    """
    scan_once = _SCAN_ONCE
    buffer.in_array = True
    char = buffer.skip_whitespace()
    if char == "]":
        buffer.pos += 1
        buffer.in_array = False
        return
    text = buffer.text
    start = buffer.pos
    while True:
        if len(text) - start < _LOOKAHEAD_CHARS and not buffer.at_end:
            buffer.pos = start
            buffer.read_more(PIECE_BYTES)
            text = buffer.text
            start = buffer.pos
        try:
            value, end = scan_once(text, start)
        except (StopIteration, ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
            end = -1
            if not buffer.at_end and _fails_at_cut(text, error):
                # An element longer than the lookahead, cut by the end of the buffer: read more before the
                # careful path parses it again (parsing the same cut text twice costs as much as the element).
                buffer.pos = start
                buffer.read_more(_grown_size(len(text) - start))
                text = buffer.text
                start = buffer.pos
        if end < 0 or (end >= len(text) - _LONGEST_NUMBER_TAIL and value.__class__ in _NUMBER_TYPES):
            # Damaged, cut, or a number so close to the end of the buffer that it may be cut (its "." or
            # "e+" can be the last characters): the careful path.
            buffer.pos = start
            value, start, end = buffer.scan_value()
            text = buffer.text
        element = text[start:end]
        if element.isascii():
            yield element, value
        else:
            yield _decode_utf8(element)
        separator = text[end : end + 1]
        if separator == ",":
            start = end + 1
            # ("" at the end of the buffer is "in" any string: the slow path below reads more.)
            if text[start : start + 1] not in _WHITESPACE:
                continue
        elif separator == "]":
            buffer.pos = end + 1
            buffer.in_array = False
            return
        # Whitespace, or the end of the buffer: let the buffer find the next token.
        buffer.pos = end
        char = buffer.skip_whitespace()
        if char == ",":
            buffer.pos += 1
            if buffer.skip_whitespace() == "]":
                raise buffer.damage("expected an array element after ','")
        elif char == "]":
            buffer.pos += 1
            buffer.in_array = False
            return
        else:
            raise buffer.damage("expected ',' or ']' after an array element")
        text = buffer.text
        start = buffer.pos


class _TextBuffer:
    """Text not consumed yet: ``text[pos:]``. Consumed text is dropped when more is read."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self._pieces = pieces
        self.text = ""
        self.pos = 0
        self.at_end = False  # no more pieces: the input ended, or failed
        # Why the pieces failed (bad gzip, size cap). Reading runs ahead of parsing, so this is raised
        # only once parsing reaches the end of the text: every complete element before is yielded.
        self._failure: Optional[_Damage] = None
        self.in_array = False  # inside the records array, for error messages

    def read_more(self, min_unconsumed: int) -> None:
        """Drop consumed text and read pieces until ``min_unconsumed`` characters wait, or the end."""
        parts: List[str] = [self.text[self.pos :]]
        unconsumed = len(parts[0])
        while unconsumed < min_unconsumed:
            try:
                piece = next(self._pieces, None)
            except _Damage as failure:
                self._failure = failure
                piece = None
            if piece is None:
                self.at_end = True
                break
            parts.append(piece)
            unconsumed += len(piece)
        self.text = "".join(parts)
        self.pos = 0

    def starts_subscription_document(self) -> bool:
        """Whether the object at ``pos`` starts like a CloudWatch Logs subscription document."""
        if len(self.text) - self.pos < _SUBSCRIPTION_PEEK_CHARS and not self.at_end:
            self.read_more(_SUBSCRIPTION_PEEK_CHARS)
        return _SUBSCRIPTION_START.match(self.text, self.pos) is not None

    def skip_whitespace(self) -> str:
        """Move to the next non-whitespace character and return it ("" at the end of the text)."""
        while True:
            text = self.text
            pos = self.pos = _skip_whitespace(text, self.pos).end()
            if pos < len(text):
                return text[pos]
            if self.at_end:
                return ""
            self.read_more(1)

    def scan_value(self) -> Tuple[Any, int, int]:
        """Parse the JSON value at ``pos`` (not moving it): ``(value, start, end)`` in ``text``.

        A value cut by the end of the buffer is parsed again only once the unconsumed text has doubled
        (or the input has ended), so a large value costs O(log) parses, not one per piece; a value
        that is invalid before the end of the buffer fails at once.
        """
        while True:
            text = self.text
            start = self.pos
            try:
                value, end = _SCAN_ONCE(text, start)
            except StopIteration as stop:
                error_pos, message = stop.value, "Expecting value"
            except json.JSONDecodeError as error:
                error_pos, message = error.pos, error.msg
            except RecursionError:
                raise _Damage("The object is not valid JSON (values nested too deeply)") from None
            except ValueError:  # int() refuses integers of more than 4,300 digits
                raise _Damage("The object holds a number too long to read (more than 4,300 digits)") from None
            else:
                # A number at the end of the text may continue ("1" -> "12", "1." -> "1.5", "1e" -> "1e5")
                # in the next piece, or have been cut by a failure.
                cut_number = (
                    value.__class__ in _NUMBER_TYPES
                    and len(text) - end <= _LONGEST_NUMBER_TAIL
                    and text[end:] in _CUT_TAILS
                )
                if not cut_number or (self.at_end and self._failure is None):
                    return value, start, end
                error_pos, message = end, ""
            if _may_be_cut(text, error_pos, message):
                if self.at_end:
                    raise self.ended()
                self.read_more(_grown_size(len(text) - start))
            else:
                raise _Damage(f"The object is not valid JSON ({message[:1].lower()}{message[1:]})")

    def expect_end(self) -> None:
        """Only whitespace may follow the document (read to the end, so gzip damage is noticed)."""
        if self.skip_whitespace() != "":
            raise self.damage("unexpected data after the end of the document")
        if self._failure is not None:
            raise self._failure

    def damage(self, problem: str) -> _Damage:
        """A structural problem at ``pos``; at the end of the text that means a truncated object."""
        if self.pos >= len(self.text) and self.at_end:
            return self.ended()
        return _Damage(f"The object is not valid JSON ({problem})")

    def ended(self, problem: str = _TRUNCATED) -> _Damage:
        """The text ended too early: because the input failed, or else ``problem``."""
        if self._failure is not None:
            return self._failure
        return _Damage(problem)


def _fails_at_cut(text: str, error: BaseException) -> bool:
    """Whether a failed scan of ``text`` may have failed only because the text ends there."""
    if isinstance(error, StopIteration):
        return _may_be_cut(text, error.value, "Expecting value")
    if isinstance(error, json.JSONDecodeError):
        return _may_be_cut(text, error.pos, error.msg)
    return False


def _grown_size(unconsumed: int) -> int:
    """How much unconsumed text to read before parsing a cut value again: at least double (O(log) parses of a
    large value), and at least _GROWN_CHARS (a record of up to ~250 KB is parsed twice, not up to four times)."""
    return max(2 * unconsumed + 1, _GROWN_CHARS)


def _may_be_cut(text: str, error_pos: int, message: str) -> bool:
    """Whether a scan error can come from the end of the buffer rather than from invalid JSON."""
    if message.startswith("Unterminated string"):
        return True
    tail_length = len(text) - error_pos
    if message.startswith("Invalid \\uXXXX escape"):
        return tail_length <= _CUT_UNICODE_ESCAPE
    return text[error_pos:] in _CUT_TAILS


def _decode_utf8(latin1_text: str) -> Tuple[str, Any]:
    """A value's text read as latin-1 -> its real text (UTF-8; invalid bytes -> U+FFFD) and value."""
    text = latin1_text.encode("latin-1").decode("utf-8", "replace")
    try:
        return text, _SCAN_ONCE(text, 0)[0]
    except (StopIteration, ValueError, RecursionError):  # parsed once already: only a number limit can fail
        raise _Damage("The object holds a value that cannot be read") from None


def _latin1_pieces(chunks: Iterable[bytes], max_decompressed_bytes: int) -> Iterator[str]:
    """The object's bytes as latin-1 text (see the module docstring), without a leading UTF-8 BOM."""
    pieces = _byte_pieces(chunks, max_decompressed_bytes)
    head = b""
    for piece in pieces:
        head += piece
        if len(head) >= len(_UTF8_BOM):
            break
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :]
    if head:
        yield head.decode("latin-1")
    for piece in pieces:
        yield piece.decode("latin-1")


def _byte_pieces(chunks: Iterable[bytes], max_decompressed_bytes: int) -> Iterator[bytes]:
    """The object's (decompressed) bytes in pieces of at most PIECE_BYTES, within the size cap."""
    chunk_iterator = iter(chunks)
    head = b""
    # The magic number needs two bytes, and a chunk may hold fewer.
    while len(head) < len(_GZIP_MAGIC):
        chunk = next(chunk_iterator, None)
        if chunk is None:
            break
        head += chunk
    all_chunks = _prepend(head, chunk_iterator)
    pieces = _gunzip_layers(all_chunks, 1) if head.startswith(_GZIP_MAGIC) else _split(all_chunks)
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > max_decompressed_bytes:
            yield piece[: len(piece) - (total - max_decompressed_bytes)]
            raise _Damage(
                f"The object is larger than the maximum of {max_decompressed_bytes} bytes once decompressed",
                ObjectTooLargeError,
            )
        yield piece


def _prepend(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from chunks


def _split(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Plain input, re-cut so that no piece exceeds PIECE_BYTES."""
    for chunk in chunks:
        if len(chunk) <= PIECE_BYTES:
            if chunk:
                yield chunk
            continue
        for offset in range(0, len(chunk), PIECE_BYTES):
            yield chunk[offset : offset + PIECE_BYTES]


def _gunzip_layers(chunks: Iterable[bytes], layer: int) -> Iterator[bytes]:
    """Like _gunzip, but a member whose content starts with gzip's magic bytes is decompressed again."""
    for _, numbered_pieces in itertools.groupby(_gunzip(chunks), key=operator.itemgetter(0)):
        pieces: Iterator[bytes] = (piece for _, piece in numbered_pieces)
        head = b""
        for piece in pieces:
            head += piece
            if len(head) >= len(_GZIP_MAGIC):
                break
        member = _prepend(head, pieces)
        if head.startswith(_GZIP_MAGIC) and layer < MAX_GZIP_LAYERS:
            yield from _gunzip_layers(member, layer + 1)
        else:
            yield from member


def _gunzip(chunks: Iterable[bytes]) -> Iterator[Tuple[int, bytes]]:
    """Decompress one or more concatenated gzip members (NUL padding between or after them is allowed,
    as gzip(1) and Python's gzip module allow it), at most PIECE_BYTES of output per step, each piece
    with the number of its member."""
    decompressor = None  # None between members
    member = 0
    for chunk in chunks:
        view = memoryview(chunk)
        # zlib copies the input it has not used yet at every step: small input slices keep that cheap.
        for offset in range(0, len(view), _GZIP_INPUT_BYTES):
            data = view[offset : offset + _GZIP_INPUT_BYTES]
            drain = False
            while data or drain:
                if decompressor is None:
                    data = bytes(data).lstrip(b"\0")
                    if not data:
                        break
                    decompressor = zlib.decompressobj(_GZIP_WBITS)
                    member += 1
                # A failing step returns none of its output: keep the state before it (~1 us) to recover
                # the output that came before the damage (a bad CRC is only seen after all the data).
                state_before = decompressor.copy()
                try:
                    piece = decompressor.decompress(data, PIECE_BYTES)
                except zlib.error as error:
                    for recovered in _output_before_error(state_before, data):
                        yield member, recovered
                    raise _Damage(f"The object is not valid gzip data ({error})") from None
                if piece:
                    yield member, piece
                if decompressor.eof:
                    data = decompressor.unused_data
                    decompressor = None
                    drain = False
                else:
                    data = decompressor.unconsumed_tail
                    # A full piece may leave output pending inside zlib even with all input consumed.
                    drain = len(piece) == PIECE_BYTES
    if decompressor is not None:
        raise _Damage("The object's gzip data ends early (truncated object)")


def _output_before_error(decompressor: Any, data: Any) -> Iterator[bytes]:
    """What ``data`` decompresses to before the error, feeding it a byte at a time (damage path only)."""
    output = bytearray()
    for index in range(len(data)):
        try:
            output += decompressor.decompress(data[index : index + 1])
        except zlib.error:
            break
        if len(output) >= PIECE_BYTES:
            yield bytes(output)
            output.clear()
    if output:
        yield bytes(output)
