"""events.py: records -> modular-input XML, byte-compatible with splunklib's Event.write_to."""

from __future__ import annotations

import io
import json
import threading
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from splunklib.modularinput import Event, EventWriter

from ta_aws_cloudtrail.events import EventFormatter, EventSink, event_time, xml_text

STANZA = "aws_cloudtrail_sqs://prod"
SOURCE = "s3://trail-bucket/AWSLogs/123456789012/CloudTrail/us-east-1/2021/07/28/file.json.gz"
RECORD = {
    "eventTime": "2021-07-28T12:34:56Z",
    "eventName": "GetObject",
    "userAgent": 'Mozilla/5.0 (KHTML, like Gecko) <b>&amp; "quoted"',
    "requestParameters": {"key": "a<b>&c", "tags": [{"k": "v"}]},
    "readOnly": True,
}


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse(xml: str) -> ET.Element:
    # Encoding first also proves the event is valid UTF-8.
    return ET.fromstring(xml.encode("utf-8"))


def children(element: ET.Element) -> List[tuple]:
    return [(child.tag, child.text or "") for child in element]


def splunklib_event(**fields: Any) -> str:
    out = io.StringIO()
    Event(**fields).write_to(out)
    return out.getvalue()


def data_of(event_xml: str) -> str:
    data = parse(event_xml).find("data")
    assert data is not None
    return data.text or ""


# --- event_time -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-07-28T12:34:56Z", "1627475696.000"),
        ("2021-07-28T12:34:56.123Z", "1627475696.123"),
        ("2021-07-28T12:34:56.5Z", "1627475696.500"),
        ("2021-07-28T12:34:56.123987Z", "1627475696.123"),
        ("2021-07-28T12:34:56+00:00", "1627475696.000"),
        ("2021-07-28T14:34:56+02:00", "1627475696.000"),
        ("2021-07-28T07:04:56.250-05:30", "1627475696.250"),
        ("2021-07-28T12:34:56", "1627475696.000"),  # CloudTrail times are UTC
        ("1970-01-01T00:00:00Z", "0.000"),
        ("1969-12-31T23:59:59.500Z", "-0.500"),
        ("2016-12-31T23:59:60Z", "1483228800.000"),  # a leap second
    ],
)
def test_event_time_converts_iso_8601_to_epoch_with_milliseconds(value: str, expected: str) -> None:
    assert event_time(value) == expected
    assert event_time(value) == expected  # and again, from the cache


@pytest.mark.parametrize(
    "value",
    [
        None,
        1627475696,
        ["2021-07-28T12:34:56Z"],
        "",
        "yesterday",
        "2021-07-28",
        "2021-13-01T00:00:00Z",
        "2021-02-29T00:00:00Z",
        "2021-07-28T24:00:00Z",
        "2021-07-28T12:60:00Z",
        "2021-07-28T12:34:56+25:00",
        "2021-07-28T12:34:56Zjunk",
        "٢٠٢١-07-28T12:34:56Z",  # non-ASCII digits
    ],
)
def test_event_time_is_none_when_missing_or_unparsable(value: Any) -> None:
    assert event_time(value) is None


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    zulu=st.booleans(),
)
def test_event_time_agrees_with_datetime(moment: datetime, offset_minutes: int, zulu: bool) -> None:
    zone = timezone.utc if zulu else timezone(timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=zone)
    text = aware.isoformat(timespec="microseconds")
    if zulu:
        text = text.replace("+00:00", "Z")
    millis = (aware - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    assert event_time(text) == str(Decimal(millis).scaleb(-3))


# --- xml_text ----------------------------------------------------------------------------------------------------


def test_xml_text_escapes_markup_and_keeps_carriage_returns() -> None:
    assert xml_text("a & b < c > d\r\n") == "a &amp; b &lt; c &gt; d&#13;\n"


def test_xml_text_replaces_characters_xml_cannot_carry() -> None:
    assert xml_text("nul\x00 esc\x1b \ufffe\uffff lone\ud800") == "nul\ufffd esc\ufffd \ufffd\ufffd lone\ufffd"


@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_xml_text_round_trips_through_an_xml_parser(value: str) -> None:
    parsed = parse(f"<a>{xml_text(value)}</a>").text or ""
    invalid = set(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]))
    expected = "".join("\ufffd" if c in invalid or 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    assert parsed == expected


# --- Same XML as splunklib ------------------------------------------------------------------------------------


def test_event_is_byte_identical_to_splunklib_for_ascii_content() -> None:
    stanza = 'aws_cloudtrail_sqs://a&b "c" <d>'
    ours = EventFormatter(stanza, "main", "host-1").for_object(SOURCE, "aws:cloudtrail").format(compact(RECORD), RECORD)
    theirs = splunklib_event(
        data=compact(RECORD),
        stanza=stanza,
        time="1627475696.000",
        source=SOURCE,
        sourcetype="aws:cloudtrail",
        index="main",
        host="host-1",
    )
    assert ours == theirs


@pytest.mark.parametrize(
    ("index", "host", "splunklib_index", "splunklib_host"),
    [
        ("main", "h", "main", "h"),
        ("default", "h", None, "h"),
        ("", "$decideOnStartup", None, None),
        (None, None, None, None),
    ],
)
def test_default_index_and_unexpanded_host_are_omitted_as_splunklib_omits_none(
    index: Optional[str], host: Optional[str], splunklib_index: Optional[str], splunklib_host: Optional[str]
) -> None:
    ours = EventFormatter(STANZA, index, host).for_object(SOURCE, "aws:cloudtrail").format(compact(RECORD), RECORD)
    theirs = splunklib_event(
        data=compact(RECORD),
        stanza=STANZA,
        time="1627475696.000",
        source=SOURCE,
        sourcetype="aws:cloudtrail",
        index=splunklib_index,
        host=splunklib_host,
    )
    assert ours == theirs


# Text that XML carries unchanged: no invalid characters, no CR (which parsers turn into LF when
# ElementTree writes it raw, as splunklib does).
xml_safe_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\ufffe\uffff", exclude_categories=("Cs",)).filter(
        lambda c: c in "\t\n" or ord(c) >= 0x20
    )
)


@settings(max_examples=200, deadline=None)
@given(
    record=st.dictionaries(xml_safe_text, xml_safe_text | st.integers() | st.booleans() | st.none(), max_size=6),
    source=xml_safe_text,
    host=xml_safe_text.filter(lambda h: h and not h.startswith("$")),
    index=xml_safe_text.filter(lambda i: i and i != "default"),
)
def test_splunklib_parses_the_same_as_our_xml(record: Dict[str, Any], source: str, host: str, index: str) -> None:
    record["eventTime"] = "2021-07-28T12:34:56.789Z"
    ours = EventFormatter(STANZA, index, host).for_object(source, "aws:cloudtrail").format(compact(record), record)
    theirs = splunklib_event(
        data=compact(record),
        stanza=STANZA,
        time="1627475696.789",
        source=source,
        sourcetype="aws:cloudtrail",
        index=index,
        host=host,
    )
    ours_tree, theirs_tree = parse(ours), parse(theirs)
    assert ours_tree.attrib == theirs_tree.attrib
    assert children(ours_tree) == children(theirs_tree)


# --- Event data -------------------------------------------------------------------------------------------------


def test_compact_text_is_used_as_it_is() -> None:
    events = EventFormatter(STANZA, "main", None).for_object(SOURCE, "aws:cloudtrail")
    # A key order json.dumps would not produce and a float it would print differently: kept as read.
    text = '{"readOnly":true,"eventTime":"2021-07-28T12:34:56Z","n":1.50,"s":"a: b, {c} [d]"}'
    assert data_of(events.format(text, json.loads(text))) == text


def test_embedded_pretty_json_inside_a_string_is_not_mistaken_for_pretty_printing() -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}, indent=4)
    record = {"eventName": "PutRolePolicy", "requestParameters": {"policyDocument": policy, "t": 'x", "y'}}
    text = compact(record)
    events = EventFormatter(STANZA, "main", None).for_object(SOURCE, "aws:cloudtrail")
    assert data_of(events.format(text, record)) == text


@pytest.mark.parametrize(
    "pretty",
    [
        json.dumps(RECORD, indent=2),
        json.dumps(RECORD, indent="\t"),
        json.dumps(RECORD),
        json.dumps(RECORD, separators=(", ", ":")),
        json.dumps(RECORD, separators=(",", ": ")),
        json.dumps(RECORD, indent=2).replace("\n", "\r\n"),
        '{ "eventTime":"2021-07-28T12:34:56Z"}',
        '{"eventTime":"2021-07-28T12:34:56Z" }',
        '{"a":[ 1,2]}',
        '{"a":[1,2  ]}',
        '{"a":"x\\\\", "b":1}',  # a string ending in a backslash, then pretty-printing
    ],
)
def test_pretty_printed_text_is_re_serialised_compactly(pretty: str) -> None:
    record = json.loads(pretty)
    event = EventFormatter(STANZA, "main", None).for_object(SOURCE, "aws:cloudtrail").format(pretty, record)
    assert data_of(event) == compact(record)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":"nul\x00 bell\x07 esc\x1b"}',  # raw controls, as a lenient JSON reader accepts them
        '{"a":"tab\there","b":"cr\rlf\n"}',
        '{"a":"\ufffe and \uffff"}',
        '{"a\ud800":"lone \udfff surrogates"}',
    ],
)
def test_characters_xml_cannot_carry_are_escaped_inside_json_strings(text: str) -> None:
    record = json.loads(text, strict=False)
    event = EventFormatter(STANZA, "main", None).for_object(SOURCE, "aws:cloudtrail").format(text, record)
    data = data_of(event)
    assert json.loads(data) == record
    assert "\n" not in data and "\r" not in data and "\t" not in data


@pytest.mark.parametrize("event_time_value", [None, "not a time", 1627475696])
def test_no_time_element_without_a_usable_event_time(event_time_value: Any) -> None:
    record: Dict[str, Any] = {"a": 1}
    if event_time_value is not None:
        record["eventTime"] = event_time_value
    event = parse(EventFormatter(STANZA, "main", None).for_object(SOURCE, "st").format(compact(record), record))
    assert [tag for tag, _ in children(event)] == ["source", "sourcetype", "index", "data", "done"]


def test_format_document_keeps_the_document_text_with_the_given_time() -> None:
    document = '{\n  "digestStartTime": "2021-07-28T11:00:00Z",\r\n  "note": "a<b>&c \x01"\n}'
    events = EventFormatter(STANZA, None, "h").for_object(SOURCE, "aws:cloudtrail:digest")
    event = parse(events.format_document(document, "1627470000.000"))
    assert children(event)[0] == ("time", "1627470000.000")
    data = event.find("data")
    assert data is not None and data.text == document.replace("\x01", "\\u0001")
    untimed = parse(events.format_document(document, None))
    assert "time" not in [tag for tag, _ in children(untimed)]


json_text = st.text(st.characters(codec=None, exclude_categories=()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(
    record=st.dictionaries(json_text, json_values, max_size=6),
    layout=st.sampled_from(
        [
            {"separators": (",", ":")},
            {},
            {"indent": 1},
            {"separators": (", ", ":")},
            {"separators": (",", ": ")},
        ]
    ),
    source=xml_safe_text,
    sourcetype=xml_safe_text,
    index=xml_safe_text.filter(lambda i: i and i != "default"),
    host=xml_safe_text.filter(lambda h: h and not h.startswith("$")),
    stanza=xml_safe_text,
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
)
def test_any_record_round_trips_through_the_xml(
    record: Dict[str, Any],
    layout: Dict[str, Any],
    source: str,
    sourcetype: str,
    index: str,
    host: str,
    stanza: str,
    moment: datetime,
) -> None:
    record["eventTime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = json.dumps(record, ensure_ascii=False, **layout)
    xml = EventFormatter(stanza, index, host).for_object(source, sourcetype).format(text, record)
    event = parse(xml)
    assert event.attrib == {"stanza": stanza, "unbroken": "1"}
    assert children(event)[:-1] == [
        ("time", f"{moment.replace(tzinfo=timezone.utc).timestamp():.3f}"),
        ("source", source),
        ("sourcetype", sourcetype),
        ("index", index),
        ("host", host),
        ("data", children(event)[5][1]),
    ]
    data = children(event)[5][1]
    # Same content; lone surrogates come back as what their \\u escapes parse to.
    assert json.loads(data) == json.loads(json.dumps(record))
    # Compact, pretty-printing noticed, but for a space after a non-string value with ", " separators.
    if layout != {"separators": (", ", ":")}:
        assert data == json_escape_xml_invalid(compact(record))


def json_escape_xml_invalid(text: str) -> str:
    """What the data must be: compact JSON, with what XML cannot carry as JSON \\u escapes."""
    return "".join(
        f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF or c in "\ufffe\uffff" or ord(c) < 0x20 else c for c in text
    )


# --- EventSink -----------------------------------------------------------------------------------------------


def make_events(count: int, prefix: str = "") -> List[str]:
    events = EventFormatter(STANZA, "main", None).for_object(SOURCE, "aws:cloudtrail")
    records = [{"n": f"{prefix}{number}", "text": "é東<&>"} for number in range(count)]
    return [events.format(compact(record), record) for record in records]


def splunklib_ascii_event(data: str) -> Event:
    return Event(data=data, stanza=STANZA, sourcetype="aws:cloudtrail")


def test_sink_writes_the_stream_header_once_and_interleaves_with_the_event_writer() -> None:
    out = io.StringIO()
    writer = EventWriter(output=out, error=io.StringIO())
    sink = EventSink(writer)
    sink.write(make_events(2, "a"))
    writer.write_event(splunklib_ascii_event("from splunklib"))
    sink.write(make_events(1, "b"))
    sink.write([])
    writer.close()
    stream = ET.fromstring(out.getvalue())
    assert out.getvalue().count("<stream>") == 1
    assert [event.findtext("data") for event in stream] == [
        compact({"n": "a0", "text": "é東<&>"}),
        compact({"n": "a1", "text": "é東<&>"}),
        "from splunklib",
        compact({"n": "b0", "text": "é東<&>"}),
    ]


def test_sink_writes_utf8_to_the_binary_buffer_whatever_the_text_encoding_and_flushes() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")  # e.g. a Windows code page: cannot encode "東"
    writer = EventWriter(output=out, error=io.StringIO())
    sink = EventSink(writer)
    events = make_events(3)
    sink.write(events)
    assert raw.getvalue() == ("<stream>" + "".join(events)).encode("utf-8")  # flushed, in order
    writer.write_event(splunklib_ascii_event("from splunklib"))
    sink.write(events[:1])
    writer.close()
    stream = ET.fromstring(raw.getvalue())
    assert [event.findtext("data") for event in stream][3:] == ["from splunklib", data_of(events[0])]


def test_sink_writes_whole_batches_from_many_threads() -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    writer = EventWriter(output=out, error=io.StringIO())
    sink = EventSink(writer)
    batches = [make_events(20, f"t{thread}-b{batch}-") for thread in range(8) for batch in range(25)]

    def write(thread: int) -> None:
        for batch in batches[thread * 25 : (thread + 1) * 25]:
            sink.write(batch)

    threads = [threading.Thread(target=write, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    written = out.buffer.getvalue()  # type: ignore[attr-defined]
    assert written.count(b"<stream>") == 1
    data = [json.loads(event.findtext("data") or "")["n"] for event in ET.fromstring(written)]
    assert sorted(data) == sorted(json.loads(data_of(event))["n"] for batch in batches for event in batch)
    # Each batch stays in one piece.
    for position in range(0, len(data), 20):
        assert len({name.rsplit("-", 1)[0] for name in data[position : position + 20]}) == 1
