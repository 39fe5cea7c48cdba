"""objects.py: streaming a CloudTrail object's bytes into (text, value) records."""

from __future__ import annotations

import gzip
import itertools
import json
import tracemalloc
import zlib
from typing import Any, Iterator, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.subscription_files import control_document, data_document, firehose_object
from ta_aws_cloudtrail import objects
from ta_aws_cloudtrail.objects import (
    ObjectFormatError,
    ObjectTooLargeError,
    iter_records,
    read_document,
)

NO_CAP = 1 << 40


def cloudtrail_record(number: int, **extra: Any) -> dict:
    record = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accountId": "123456789012", "userName": f"user-{number}"},
        "eventTime": "2021-07-28T12:34:56Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "requestParameters": {"bucketName": "b", "key": f"k/{number}", "tags": [{"k": "a"}, {"k": "b"}]},
        "responseElements": None,
        "readOnly": True,
        "recipientAccountId": "123456789012",
    }
    record.update(extra)
    return record


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def cut(data: bytes, size: int) -> List[bytes]:
    return [data[offset : offset + size] for offset in range(0, len(data), size)]


def read_all(chunks: Any, cap: int = NO_CAP) -> List[Tuple[str, Any]]:
    return list(iter_records(chunks, cap))


def read_until_error(chunks: Any, cap: int = NO_CAP) -> Tuple[List[Tuple[str, Any]], ObjectFormatError]:
    """The records yielded before the error, and the error."""
    yielded: List[Tuple[str, Any]] = []
    with pytest.raises(ObjectFormatError) as caught:
        for item in iter_records(chunks, cap):
            yielded.append(item)
    return yielded, caught.value


RECORDS = [cloudtrail_record(number) for number in range(50)]
RAW = compact({"Records": RECORDS})
GZIPPED = gzip.compress(RAW)


# --- Records and their exact text -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 100, 4096, len(RAW)])
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_yields_every_record_with_its_exact_source_text_whatever_the_chunking(size: int, gzipped: bool) -> None:
    data = GZIPPED if gzipped else RAW
    items = read_all(cut(data, size))
    assert [value for _, value in items] == RECORDS
    # The text is the source slice itself, not a re-serialisation.
    assert [text.encode("utf-8") for text, _ in items] == [compact(record) for record in RECORDS]
    assert b",".join(text.encode("utf-8") for text, _ in items) in RAW


def test_pretty_printed_top_level_array_keeps_each_element_text_verbatim() -> None:
    # The layout of the stratus-red-team fixtures: a top-level array, indented.
    source = json.dumps(RECORDS[:3], indent=2)
    items = read_all([source.encode("utf-8")])
    assert [value for _, value in items] == RECORDS[:3]
    for text, value in items:
        assert text in source
        assert text.startswith("{\n")
        assert json.loads(text) == value


def test_other_top_level_keys_before_and_after_records_are_skipped() -> None:
    source = {"Meta": {"a": [1, {"b": "Records"}]}, "Records": RECORDS[:2], "Trailer": [1, 2, {"c": None}]}
    assert [value for _, value in read_all([compact(source)])] == RECORDS[:2]


@pytest.mark.parametrize("source", [b"{}", b' { "Other" : [1, 2] } ', b'{"Records":[]}', b"[]", b"[ ]"])
def test_an_object_without_records_yields_nothing(source: bytes) -> None:
    assert read_all([source]) == []


def test_elements_of_any_type_are_yielded_for_the_caller_to_skip() -> None:
    source = b'{"Records":[1,"two",null,true,[3],{"a":1},-2.5e3]}'
    assert [value for _, value in read_all(cut(source, 3))] == [1, "two", None, True, [3], {"a": 1}, -2500.0]


def test_numbers_cut_by_a_chunk_boundary_are_read_whole() -> None:
    source = b"[1234567890,-0.125e-7,98765]"
    assert [value for _, value in read_all(cut(source, 1))] == [1234567890, -0.125e-7, 98765]


def test_non_ascii_text_is_decoded_as_utf8_in_text_and_value() -> None:
    record = cloudtrail_record(1, userAgent="Résumé «東京» \U0001f600 <&>")
    items = read_all(cut(gzip.compress(compact({"Records": [RECORDS[0], record, RECORDS[2]]})), 5))
    assert [value for _, value in items] == [RECORDS[0], record, RECORDS[2]]
    assert items[1][0] == compact(record).decode("utf-8")


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    source = b'{"Records":[{"a":"bad \xff\xfe bytes","b":"cut \xe6\x9d"},{"c":1}]}'
    items = read_all([source])
    assert [value for _, value in items] == [{"a": "bad \ufffd\ufffd bytes", "b": "cut \ufffd"}, {"c": 1}]
    assert items[0][0] == '{"a":"bad \ufffd\ufffd bytes","b":"cut \ufffd"}'


def test_raw_control_characters_inside_strings_do_not_lose_the_record() -> None:
    source = b'[{"a":"tab\there","b":"nul\x00bell\x07"}]'
    assert read_all([source])[0][1] == {"a": "tab\there", "b": "nul\x00bell\x07"}


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_utf8_byte_order_mark_is_skipped(gzipped: bool) -> None:
    data = b"\xef\xbb\xbf" + RAW
    items = read_all(cut(gzip.compress(data) if gzipped else data, 1))
    assert [value for _, value in items] == RECORDS


def test_gzip_is_recognised_by_magic_bytes_even_in_one_byte_chunks() -> None:
    assert [value for _, value in read_all(cut(GZIPPED, 1))] == RECORDS


def test_multi_member_gzip_and_nul_padding_are_read_through() -> None:
    first, second = compact(RECORDS[:10])[:-1], compact(RECORDS[10:])[1:]
    data = gzip.compress(first + b",") + gzip.compress(second) + b"\0" * 10
    assert [value for _, value in read_all(cut(data, 333))] == RECORDS


def test_a_large_record_arriving_in_small_chunks_is_read() -> None:
    big = cloudtrail_record(0, requestParameters={"items": ["x" * 100] * 2500})  # ~260 KB
    source = compact({"Records": [RECORDS[0], big, RECORDS[1]]})
    assert [value for _, value in read_all(cut(gzip.compress(source), 64 * 1024))] == [RECORDS[0], big, RECORDS[1]]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("lookahead", [objects._LOOKAHEAD_CHARS, 0], ids=["lookahead", "no-lookahead"])
@settings(max_examples=200, deadline=None)
@given(
    elements=st.lists(json_values, max_size=8),
    other_keys=st.one_of(st.none(), st.tuples(json_values, json_values)),
    indent=st.sampled_from([None, 0, 2]),
    ensure_ascii=st.booleans(),
    gzipped=st.booleans(),
    chunk_size=st.integers(min_value=1, max_value=300),
)
def test_any_json_array_round_trips(
    lookahead: int,
    elements: List[Any],
    other_keys: Any,
    indent: Any,
    ensure_ascii: bool,
    gzipped: bool,
    chunk_size: int,
) -> None:
    if other_keys is None:
        document: Any = elements
    else:
        document = {"Before": other_keys[0], "Records": elements, "After": other_keys[1]}
    source = json.dumps(document, indent=indent, ensure_ascii=ensure_ascii)
    data = source.encode("utf-8")
    with pytest.MonkeyPatch.context() as patch:
        # Without reading ahead, elements are cut by piece ends all the time: the careful path.
        patch.setattr(objects, "_LOOKAHEAD_CHARS", lookahead)
        items = read_all(cut(gzip.compress(data) if gzipped else data, chunk_size))
    assert [value for _, value in items] == elements
    position = 0
    for text, value in items:
        # Each text is the element's own slice of the source, in order.
        position = source.index(text, position) + len(text)
        assert json.loads(text) == value


# --- Damage: every complete record first, then one clear error -----------------------------------------


@pytest.mark.parametrize(
    ("source", "records_read", "phrase"),
    [
        (b"", 0, "empty"),
        (b"  \n ", 0, "empty"),
        (b"hello", 0, "not JSON"),
        (b'{"Records":[{"a":1},{"b":', 1, "ends early"),
        (b'{"Records":[{"a":1},{"b":2}', 2, "ends early"),
        (b'{"Records":[{"a":1},{"b":2}]', 2, "ends early"),
        (b'{"Records":[{"a":1},{"b":2},]}', 2, "not valid JSON"),
        (b'{"Records":[{"a":1} {"b":2}]}', 1, "not valid JSON"),
        (b'{"Records":[{"a":1},{"b":tru}]}', 1, "not valid JSON"),
        (b'{"Records":[{"a":1}]} trailing', 1, "after the end of the document"),
        (b'{"Records":{"a":1}}', 0, '"Records" value is not an array'),
        (b'{"Records" 1}', 0, "not valid JSON"),
    ],
)
def test_damage_raises_after_the_complete_records_before_it(source: bytes, records_read: int, phrase: str) -> None:
    yielded, error = read_until_error(cut(source, 4))
    assert len(yielded) == records_read == error.records_read
    assert phrase in str(error)


def test_no_chunks_at_all_is_an_empty_object() -> None:
    _, error = read_until_error(iter([]))
    assert error.records_read == 0
    assert "empty" in str(error)


def test_the_message_is_one_sentence_naming_the_record_without_content() -> None:
    secret = "AKIASECRETVALUE"
    source = compact({"Records": [cloudtrail_record(0, key=secret)]})[:-2] + b',{"key":"' + secret.encode() + b'" x}]}'
    yielded, error = read_until_error([source])
    assert len(yielded) == 1
    message = str(error)
    assert "record 2" in message
    assert secret not in message
    assert message.endswith(".") and message.count(". ") == 0


@pytest.mark.parametrize("cut_at", [20, 300, len(GZIPPED) // 2, len(GZIPPED) - 9, len(GZIPPED) - 1])
def test_truncated_gzip_yields_what_was_complete_then_fails(cut_at: int) -> None:
    yielded, error = read_until_error(cut(GZIPPED[:cut_at], 1000))
    assert [value for _, value in yielded] == RECORDS[: len(yielded)]
    assert error.records_read == len(yielded)
    assert "truncated" in str(error)


def test_a_truncated_gzip_whose_records_are_all_complete_still_fails_after_them() -> None:
    yielded, error = read_until_error([GZIPPED[:-4]])  # only the size field of the trailer is missing
    assert len(yielded) == len(RECORDS) == error.records_read


def test_corrupt_gzip_yields_what_came_before_then_fails() -> None:
    corrupt = bytearray(GZIPPED)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 16] = b"\xff" * 16
    yielded, error = read_until_error(cut(bytes(corrupt), 100))
    assert [value for _, value in yielded] == RECORDS[: len(yielded)]
    assert error.records_read == len(yielded) < len(RECORDS)
    assert "gzip" in str(error)


def test_a_bad_crc_is_noticed_after_the_last_record() -> None:
    corrupt = GZIPPED[:-8] + bytes([GZIPPED[-8] ^ 0xFF]) + GZIPPED[-7:]
    yielded, error = read_until_error([corrupt])
    assert len(yielded) == len(RECORDS) == error.records_read
    assert "gzip" in str(error)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_size_cap_raises_too_large_after_the_records_within_it(gzipped: bool) -> None:
    cap = len(RAW) // 2
    yielded, error = read_until_error(cut(GZIPPED if gzipped else RAW, 512), cap)
    assert isinstance(error, ObjectTooLargeError)
    within_cap = sum(1 for end in itertools.accumulate(len(compact(r)) + 1 for r in RECORDS) if end + 11 <= cap)
    assert len(yielded) == error.records_read == within_cap
    assert str(cap) in str(error)


def test_an_invalid_record_mid_file_fails_without_reading_the_rest() -> None:
    chunks_read = 0

    def endless_object() -> Iterator[bytes]:
        nonlocal chunks_read
        records = b'{"d":4},' * 100
        for chunk in itertools.chain([b'{"Records":[{"a":1},{"b":2 "c"},'], itertools.repeat(records)):
            chunks_read += 1
            assert chunks_read < 1000, "the reader buffered on past an invalid record"
            yield chunk

    yielded, error = read_until_error(endless_object())
    assert len(yielded) == 1
    assert "record 2" in str(error)


class CountedScans:
    """Replaces the JSON scanner of objects.py with one that counts its calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._real_scan = objects._SCAN_ONCE
        monkeypatch.setattr(objects, "_SCAN_ONCE", self._scan)

    def _scan(self, text: str, index: int) -> Tuple[Any, int]:
        self.count += 1
        return self._real_scan(text, index)


def test_a_large_record_in_small_chunks_is_parsed_a_logarithmic_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scans = CountedScans(monkeypatch)
    big = {"items": ["y" * 100] * 40_000}  # ~4 MB: 4,000 chunks of 1 KB
    source = compact({"Records": [big, {"a": 1}]})
    assert [value for _, value in read_all(cut(source, 1024))] == [big, {"a": 1}]
    assert scans.count < 40  # one parse per chunk would be ~4,000


def test_a_record_of_a_few_hundred_kb_is_parsed_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # Longer than the lookahead, so the end of the buffer cuts it once; the second parse has all of it.
    scans = CountedScans(monkeypatch)
    monkeypatch.setattr(objects, "_LOOKAHEAD_CHARS", 16 * 1024)
    large = {"eventName": "RunInstances", "responseElements": {"items": ["x" * 100] * 1500}}  # ~150 KB
    small = {"eventName": "GetObject"}
    source = compact({"Records": [small, large, small]})
    assert len(source) > 2 * objects._LOOKAHEAD_CHARS
    assert [value for _, value in read_all(cut(gzip.compress(source), 1 << 20))] == [small, large, small]
    # the "Records" key, the two small records, the large one cut by the end of the buffer once and then whole
    assert scans.count == 1 + 2 + 2


# --- Memory stays bounded ---------------------------------------------------------------------------------


def lazy_gzip_object(records_text: bytes, repeats: int) -> Iterator[bytes]:
    """A multi-member gzip object of repeats x records_text, generated as it is read."""
    member = gzip.compress(records_text + b",")
    yield gzip.compress(b'{"Records":[')
    for _ in range(repeats):
        yield member
    yield gzip.compress(b'{"last":true}]}')


def test_memory_does_not_grow_with_the_object_size() -> None:
    records_text = b",".join(compact(record) for record in RECORDS)
    repeats = (24 << 20) // len(records_text)  # ~24 MB decompressed
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_records(lazy_gzip_object(records_text, repeats), NO_CAP))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == repeats * len(RECORDS) + 1
    assert peak < 2 << 20


def gzip_of_spaces(megabytes: int) -> bytes:
    """'[' + spaces + ']' gzipped (~1,000:1), compressed a MB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(b"[")]
    spaces = b" " * (1 << 20)
    parts.extend(compressor.compress(spaces) for _ in range(megabytes))
    parts.append(compressor.compress(b"]") + compressor.flush())
    return b"".join(parts)


def test_a_decompression_bomb_expands_piece_by_piece_up_to_the_cap() -> None:
    bomb = gzip_of_spaces(200)
    tracemalloc.start()
    try:
        _, error = read_until_error([bomb], cap=100 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, ObjectTooLargeError)
    assert peak < 2 << 20


# --- read_document -------------------------------------------------------------------------------------------

DIGEST = {
    "awsAccountId": "123456789012",
    "digestStartTime": "2021-07-28T11:00:00Z",
    "logFiles": [{"s3Object": "AWSLogs/é.json.gz", "hashValue": "ab"}],
}


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_read_document_returns_the_whole_text_and_value(gzipped: bool) -> None:
    data = b"\xef\xbb\xbf" + compact(DIGEST) + b"\n"
    text, value = read_document(cut(gzip.compress(data) if gzipped else data, 3), NO_CAP)
    assert value == DIGEST
    assert text == compact(DIGEST).decode("utf-8")


@pytest.mark.parametrize(
    ("source", "cap", "error_class"),
    [
        (b"", NO_CAP, ObjectFormatError),
        (b'"just a string"', NO_CAP, ObjectFormatError),
        (b'{"a":1} {"b":2}', NO_CAP, ObjectFormatError),
        (b'{"a":', NO_CAP, ObjectFormatError),
        (b'{"a":"' + b"x" * 1000 + b'"}', 100, ObjectTooLargeError),
    ],
)
def test_read_document_rejects_damage(source: bytes, cap: int, error_class: type) -> None:
    with pytest.raises(error_class):
        read_document([source], cap)


@settings(max_examples=300, deadline=None)
@given(
    gzipped=st.booleans(),
    edits=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1), st.integers(min_value=0, max_value=2), st.binary(max_size=3)),
        min_size=1,
        max_size=3,
    ),
    chunk_size=st.integers(min_value=1, max_value=2000),
)
def test_damaged_input_only_ever_raises_object_format_error(
    gzipped: bool, edits: List[Tuple[float, int, bytes]], chunk_size: int
) -> None:
    data = bytearray(GZIPPED if gzipped else RAW)
    for where, deleted, inserted in edits:
        position = int(where * len(data))
        data[position : position + deleted] = inserted
    try:
        for text, value in iter_records(cut(bytes(data), chunk_size), NO_CAP):
            assert json.loads(text, strict=False) == value
    except ObjectFormatError as error:
        assert str(error).endswith(".")


def test_absurdly_deep_nesting_is_a_format_error() -> None:
    _, error = read_until_error([b'{"Records":[{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"])
    assert "nested too deeply" in str(error)


# --- CloudWatch Logs subscription documents (Firehose objects) ------------------------------------------------


def _messages(count: int, start: int = 0) -> List[str]:
    return [json.dumps(cloudtrail_record(start + n), separators=(",", ":")) for n in range(count)]


def test_subscription_documents_yield_each_data_log_event_message_and_skip_control_messages() -> None:
    first, second, third = _messages(3), _messages(2, 3), _messages(4, 5)
    body = firehose_object(
        [
            data_document(first, "/trail", "123456789012_CloudTrail_us-east-1"),
            control_document(),
            data_document(second, "/trail", "123456789012_CloudTrail_eu-west-1"),
            data_document(third, "/trail", "123456789012_CloudTrail_us-east-1"),
        ],
        gzip_twice=[3],
    )
    records = list(iter_records(cut(body, 7), NO_CAP))
    assert [text for text, _ in records] == first + second + third
    assert [value["userIdentity"]["userName"] for _, value in records] == [f"user-{n}" for n in range(9)]


@pytest.mark.parametrize("gzip_object", [False, True])
def test_a_firehose_object_gzipped_as_a_whole_is_unwrapped(gzip_object: bool) -> None:
    messages = _messages(5)
    body = firehose_object(
        [data_document(messages[:2], "g", "s"), data_document(messages[2:], "g", "s")], gzip_object=gzip_object
    )
    assert [text for text, _ in iter_records([body], NO_CAP)] == messages


def test_uncompressed_subscription_documents_are_read_too() -> None:
    messages = _messages(3)
    body = b"\n".join(json.dumps(data_document([m], "g", "s")).encode() for m in messages)
    assert [text for text, _ in iter_records(cut(body, 5), NO_CAP)] == messages


def test_a_message_that_is_not_json_comes_with_no_value_and_keeps_its_place() -> None:
    good = _messages(2)
    body = firehose_object([data_document([good[0], "not json {", "[1, 2] trailing", good[1]], "g", "s")])
    records = list(iter_records([body], NO_CAP))
    assert [value is None for _, value in records] == [False, True, True, False]
    assert [records[0][0], records[3][0]] == good


def test_non_ascii_messages_are_decoded_as_utf8() -> None:
    message = json.dumps(cloudtrail_record(1, note="café ☃"), ensure_ascii=False)
    body = firehose_object([data_document([message], "g", "s")])
    [(text, value)] = list(iter_records(cut(body, 3), NO_CAP))
    assert text == message and value["note"] == "café ☃"


def test_a_subscription_document_of_another_kind_fails_after_the_records_before_it() -> None:
    odd = dict(data_document(_messages(1), "g", "s"), messageType="SOMETHING_ELSE")
    body = firehose_object([data_document(_messages(2), "g", "s"), odd])
    records, error = read_until_error([body])
    assert "neither a DATA_MESSAGE" in str(error)
    assert len(records) == 2 and error.records_read == 2


def test_a_truncated_subscription_object_keeps_the_complete_documents() -> None:
    body = (
        firehose_object([data_document(_messages(2), "g", "s")])
        + gzip.compress(json.dumps(data_document(_messages(3, 2), "g", "s")).encode())[:-12]
    )
    records, _ = read_until_error([body])
    assert [value["userIdentity"]["userName"] for _, value in records] == ["user-0", "user-1"]


def test_gzip_nesting_is_unwrapped_a_bounded_number_of_times() -> None:
    document = json.dumps(data_document(_messages(1), "g", "s")).encode()
    wrapped = document
    for _ in range(objects.MAX_GZIP_LAYERS):
        wrapped = gzip.compress(wrapped)
    assert len(list(iter_records([wrapped], NO_CAP))) == 1
    with pytest.raises(ObjectFormatError, match="not JSON"):
        list(iter_records([gzip.compress(wrapped)], NO_CAP))


def test_memory_of_a_large_subscription_object_depends_on_one_document_not_the_object() -> None:
    document = data_document(_messages(200), "g", "s")
    member = gzip.compress(json.dumps(document).encode())
    count = 0
    tracemalloc.start()
    try:
        for _ in iter_records(itertools.repeat(member, 150), NO_CAP):  # ~150 documents, ~50 MB of JSON
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 150 * 200
    # one document parsed (its dict and strings) is ~10x its text; the object is 150 documents
    assert peak < 16 * len(json.dumps(document)) < 150 * len(json.dumps(document)) / 9, peak
