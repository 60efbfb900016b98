"""Every rejection reason end to end: the report entry, and the other records of the object written."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from functions.core.domain.datasets import DatasetRegistry
from functions.core.domain.json_document import MAX_ELEMENT_CHARS
from functions.core.domain.reasons import Reason
from functions.core.domain.rejects_report import MAX_ENTRIES, MAX_RAW_CHARS, report_key
from functions.core.use_cases.ingest import ingest_object

from ..conftest import BUCKET, World, parse

GOOD_BEFORE = {"Name": "Ann", "Role": "Dev", "Email": "ann@example.com"}
GOOD_AFTER = {"Name": "Bob", "Role": "Ops", "Email": "bob@example.com"}


def nested(depth: int) -> str:
    return '{"n": ' * depth + "1" + "}" * depth


BAD_LINES: list[tuple[str, str, bytes, Reason]] = [
    ("invalid JSON", "data/x.jsonl", b'{"Name": "truncated', Reason.INVALID_JSON),
    ("invalid UTF-8", "data/x.jsonl", b'{"Name": "\xff\xfe"}', Reason.INVALID_UTF8),
    ("NaN", "data/x.jsonl", b'{"score": NaN}', Reason.NON_FINITE_NUMBER),
    ("Infinity", "data/x.jsonl", b'{"score": Infinity}', Reason.NON_FINITE_NUMBER),
    ("array instead of object", "data/x.jsonl", b"[1, 2, 3]", Reason.NOT_AN_OBJECT),
    ("bare string", "data/x.jsonl", b'"hello"', Reason.NOT_AN_OBJECT),
    ("schema violation", "people/x.jsonl", b'{"Name": "Eve", "Role": "Dev"}', Reason.SCHEMA_VIOLATION),
    ("natural key missing", "keyed/x.jsonl", b'{"other": 1}', Reason.NATURAL_KEY_INVALID),
    ("item over 400 KB", "data/x.jsonl", json.dumps({"blob": "x" * 420_000}).encode(), Reason.ITEM_TOO_LARGE),
    ("nesting too deep", "data/x.jsonl", nested(40).encode(), Reason.NESTING_TOO_DEEP),
    # Deeper than Python's recursion limit: the parser itself gives up (RecursionError, not a retry).
    ("nesting beyond the parser", "data/x.jsonl", nested(5000).encode(), Reason.NESTING_TOO_DEEP),
    (
        "39 digits",
        "data/x.jsonl",
        b'{"n": 1.23456789012345678901234567890123456789}',
        Reason.NUMBER_TOO_PRECISE,
    ),
    ("number out of range", "data/x.jsonl", b'{"n": 1e200}', Reason.NUMBER_OUT_OF_RANGE),
    ("empty attribute name", "data/x.jsonl", b'{"": "anonymous"}', Reason.EMPTY_ATTRIBUTE_NAME),
    (
        "line longer than any item",
        "data/x.jsonl",
        b'{"a": "' + b"y" * 1_100_000 + b'"}',
        Reason.LINE_TOO_LONG,
    ),
]


def registry_with_keyed_dataset() -> DatasetRegistry:
    config = json.loads((DatasetRegistry.load.__defaults__[0]).read_text())  # type: ignore[index]
    config["datasets"].append({"name": "keyed", "prefix": "keyed/", "natural_key": ["Email"]})
    return DatasetRegistry.from_config(config)


@pytest.mark.parametrize(("key", "bad", "reason"), [c[1:] for c in BAD_LINES], ids=[c[0] for c in BAD_LINES])
def test_a_rejected_record_is_reported_and_its_neighbours_are_written(
    world: World, key: str, bad: bytes, reason: Reason
) -> None:
    body = json.dumps(GOOD_BEFORE).encode() + b"\n" + bad + b"\n" + json.dumps(GOOD_AFTER).encode() + b"\n"
    event = world.put(key, body)

    outcome = ingest_object(world.services(datasets=registry_with_keyed_dataset()), parse(event))

    assert (outcome.records_written, outcome.records_rejected) == (2, 1)
    assert sorted(world.records().values(), key=str) == sorted([GOOD_BEFORE, GOOD_AFTER], key=str)
    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (2, reason.value)
    assert entry["detail"]
    assert entry["record"] == bad[: MAX_RAW_CHARS * 4].decode("utf-8", "replace")[:MAX_RAW_CHARS]
    assert entry["record_truncated"] is (len(bad) > MAX_RAW_CHARS)


def test_a_rejected_array_element_is_reported_and_the_other_elements_written(world: World) -> None:
    event = world.put("data/x.json", json.dumps([GOOD_BEFORE, 42, GOOD_AFTER]))

    outcome = ingest_object(world.services(), parse(event))

    assert outcome.records_written == 2
    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"], entry["record"]) == (2, "not_an_object", "42")


BAD_ELEMENTS: list[tuple[str, bytes, Reason]] = [
    ("nested beyond the parser", b"[" * 1500 + b"]" * 1500, Reason.NESTING_TOO_DEEP),
    ("larger than any item", b'{"a": "' + b'[\\"' * 400_000 + b'"}', Reason.ELEMENT_TOO_LARGE),
    ("not UTF-8", b'{"Name": "\xff"}', Reason.INVALID_UTF8),
    ("number out of range", b'{"n": 1e99999999999999999999}', Reason.NUMBER_OUT_OF_RANGE),
]


@pytest.mark.parametrize(("bad", "reason"), [c[1:] for c in BAD_ELEMENTS], ids=[c[0] for c in BAD_ELEMENTS])
def test_a_bad_array_element_is_reported_as_written_and_the_others_are_written(
    world: World, bad: bytes, reason: Reason
) -> None:
    # A streamed .json array: each element is a record, quoted exactly as written (or its start).
    body = (
        b"["
        + json.dumps(GOOD_BEFORE).encode()
        + b",\n  "
        + bad
        + b" ,\n"
        + json.dumps(GOOD_AFTER).encode()
        + b"]"
    )

    outcome = ingest_object(world.services(), parse(world.put("data/x.json", body)))

    assert (outcome.records_written, outcome.records_rejected) == (2, 1)
    assert sorted(world.records().values(), key=str) == sorted([GOOD_BEFORE, GOOD_AFTER], key=str)
    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (2, reason.value)
    assert entry["record"] == bad[: MAX_RAW_CHARS * 4].decode("utf-8", "replace")[:MAX_RAW_CHARS]
    assert entry["record_truncated"] is (len(bad) > MAX_RAW_CHARS)


UNREADABLE: list[tuple[str, str, bytes, Reason]] = [
    ("empty file", "data/x.jsonl", b"", Reason.EMPTY_OBJECT),
    ("truncated JSON document", "data/x.json", b'{"Name": "John', Reason.INVALID_JSON),
    ("not JSON at all", "data/x.json", b"<html>oops</html>", Reason.INVALID_JSON),
    ("bad gzip", "data/x.jsonl.gz", b"this is not gzip", Reason.UNREADABLE_OBJECT),
    ("unsupported suffix", "data/x.csv", b"a,b\n1,2\n", Reason.UNSUPPORTED_FORMAT),
]


@pytest.mark.parametrize(
    ("key", "body", "reason"), [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE]
)
def test_an_unreadable_object_gets_a_report_and_replaces_the_previous_version(
    world: World, key: str, body: bytes, reason: Reason
) -> None:
    services = world.services()
    previous = json.dumps(GOOD_BEFORE).encode()
    ingest_object(
        services, parse(world.put(key, gzip.compress(previous) if key.endswith(".gz") else previous))
    )

    outcome = ingest_object(services, parse(world.put(key, body)))

    assert (outcome.status, outcome.records_written) == ("ingested", 0)
    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (0, reason.value)
    assert world.records() == {}  # the object now holds no storable record


def test_the_report_lives_in_the_rejects_bucket_under_a_key_naming_the_object_version(world: World) -> None:
    event = world.put("people/new hires.jsonl", b"not json\n")

    outcome = ingest_object(world.services(), parse(event))

    sequencer = parse(event).sequencer
    assert outcome.report_key == report_key(BUCKET, "people/new hires.jsonl", sequencer)
    as_sent = event["detail"]["object"]["sequencer"].upper().rstrip("0")  # S3's value, without our padding
    assert outcome.report_key == f"rejects/{BUCKET}/people/new hires.jsonl/{as_sent}.jsonl"
    assert world.report_keys() == [outcome.report_key]


def test_reprocessing_a_version_that_no_longer_has_rejects_removes_its_report(world: World) -> None:
    event = world.put("people/a.jsonl", json.dumps({"Name": "Ann", "Role": "Dev", "Email": "x"}))
    lenient = registry_with_keyed_dataset().from_config({"default": {"name": "default"}})
    ingest_object(world.services(), parse(event))
    assert world.report_keys()

    ingest_object(world.services(datasets=lenient), parse(event))  # e.g. after a schema fix, by replay

    assert world.report_keys() == []


def test_a_report_lists_a_bounded_number_of_rejects_and_counts_the_rest(world: World) -> None:
    event = world.put("data/x.jsonl", b"bad\n" * (MAX_ENTRIES + 5))

    outcome = ingest_object(world.services(), parse(event))

    entries: list[dict[str, Any]] = world.report(outcome.report_key or "")
    assert outcome.records_rejected == MAX_ENTRIES + 5
    assert len(entries) == MAX_ENTRIES + 1
    assert entries[-1]["reason"] == "more_rejects_omitted"
    assert "5 more" in entries[-1]["detail"]


def test_an_item_dynamodb_refuses_despite_the_checks_is_reported_not_retried_forever(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.core.domain.records as records

    monkeypatch.setattr(records, "MAX_ITEM_BYTES", 10 * 1024 * 1024)  # as if our size rule had a gap
    huge = json.dumps({"blob": "x" * 500_000})
    event = world.put("data/x.jsonl", "\n".join([json.dumps(GOOD_BEFORE), huge, json.dumps(GOOD_AFTER)]))

    outcome = ingest_object(world.services(), parse(event))

    assert (outcome.status, outcome.records_written, outcome.records_rejected) == ("ingested", 2, 1)
    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (2, "refused_by_dynamodb")
    assert len(world.records()) == 2


def test_a_truncated_gzip_object_keeps_the_records_read_before_the_break_and_reports_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.core.domain.readers as readers

    # Small read chunks, so the records before the break are decoded before the break is hit.
    monkeypatch.setattr(readers, "CHUNK_BYTES", 64)
    lines = b"".join(json.dumps({"n": n}).encode() + b"\n" for n in range(1, 41))
    event = world.put("data/x.jsonl.gz", gzip.compress(lines)[:-8])  # the gzip trailer is missing

    outcome = ingest_object(world.services(), parse(event))

    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (0, Reason.UNREADABLE_OBJECT.value)
    assert outcome.records_written == len(world.records()) > 30
    assert all(record == {"n": int(sk)} for (_, sk), record in world.records().items())


# --- poison input and exact quoting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "body", "quoted", "reason"),
    [
        ("data/x.json", '[{"n": 1.50, "": 0}]', '{"n": 1.50, "": 0}', Reason.EMPTY_ATTRIBUTE_NAME),
        ("data/x.json", "[ 1.50 ]", "1.50", Reason.NOT_AN_OBJECT),
        ("data/x.json", '{"n": 1e200}', '{"n": 1e200}', Reason.NUMBER_OUT_OF_RANGE),
        ("data/x.json", '[{"s": "\\ud800"}]', '{"s": "\\ud800"}', Reason.LONE_SURROGATE),
        ("data/x.jsonl", '{"s": "\\ud800"}\n', '{"s": "\\ud800"}', Reason.LONE_SURROGATE),
        (
            "data/x.jsonl",
            '{"n": 1' + "0" * 5000 + "}\n",
            '{"n": 1' + "0" * 5000 + "}",
            Reason.NUMBER_OUT_OF_RANGE,
        ),
        (
            "data/x.json",
            '[{"n": 1e99999999999999999999}]',
            '{"n": 1e99999999999999999999}',
            Reason.NUMBER_OUT_OF_RANGE,
        ),
    ],
    ids=[
        "json array element",
        "json number element",
        "json document",
        "lone surrogate in a json array",
        "lone surrogate in a line",
        "integer over 4,300 digits",
        "exponent beyond decimal",
    ],
)
def test_a_rejected_record_is_quoted_exactly_as_written(
    world: World, key: str, body: str, quoted: str, reason: Reason
) -> None:
    outcome = ingest_object(world.services(), parse(world.put(key, body)))

    assert (outcome.status, outcome.records_rejected) == ("ingested", 1)
    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (1, reason.value)
    assert entry["record"] == quoted[:MAX_RAW_CHARS]
    assert entry["record_truncated"] is (len(quoted) > MAX_RAW_CHARS)


def test_a_record_cut_for_the_report_is_flagged_as_cut_whatever_its_characters() -> None:
    from functions.core.domain.rejects_report import RejectsReport

    line = "\U0001f600".encode() * 3000  # 4 bytes a character: exactly 2,048 characters are quoted
    report = RejectsReport()
    report.add(1, Reason.INVALID_JSON, "Expecting value at column 1", line)

    [entry] = [json.loads(text) for text in report.render().decode().splitlines()]
    assert len(entry["record"]) == MAX_RAW_CHARS
    assert entry["record_truncated"] is True


def test_a_report_renders_whatever_text_its_entries_hold() -> None:
    from functions.core.domain.rejects_report import RejectsReport

    report = RejectsReport()
    report.add(1, Reason.SCHEMA_VIOLATION, "data.x must be email: \ud800 is not", {"x": "\udfff"})

    [entry] = [json.loads(text) for text in report.render().decode("utf-8").splitlines()]
    assert entry["detail"] == "data.x must be email: \ud800 is not"
    assert entry["record"] == '{"x": "\udfff"}'


def test_a_small_truncated_gzip_keeps_all_its_complete_lines(world: World) -> None:
    # The case at a tenth of its size (test_formats reads the 5,000-line one): under 1 MiB,
    # missing its last 5 bytes, so every line is complete and kept.
    lines = b"".join(json.dumps({"n": n}).encode() + b"\n" for n in range(1, 501))
    event = world.put("data/x.jsonl.gz", gzip.compress(lines)[:-5])

    outcome = ingest_object(world.services(), parse(event))

    assert (outcome.status, outcome.records_written, outcome.records_rejected) == ("ingested", 500, 1)
    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (0, Reason.UNREADABLE_OBJECT.value)
    assert "truncated after line 500" in entry["detail"]
    assert len(world.records()) == 500


def test_every_reason_is_documented_in_the_rejects_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[4] / "docs" / "data-model.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `") for line in doc.splitlines() if line.startswith("| `")}

    assert {reason.value for reason in Reason} <= rows


def test_a_json_array_larger_than_the_former_limit_is_streamed_through_ingest(world: World) -> None:
    # 34 MiB, beyond the 32 MiB a `.json` object was once limited to (it was decoded whole). Most of it
    # is elements too large for any item, skipped as they stream by, so moto stores little.
    small = [{"Name": f"n{n}"} for n in range(34)]
    big = {"blob": "x" * MAX_ELEMENT_CHARS}
    body = json.dumps([element for record in small for element in (record, big)]).encode()
    assert len(body) > 34 * 1024 * 1024

    outcome = ingest_object(world.services(), parse(world.put("data/big.json", body)))

    assert (outcome.status, outcome.records_written, outcome.records_rejected) == ("ingested", 34, 34)
    assert sorted(world.records().values(), key=str) == sorted(small, key=str)
    entries = world.report(outcome.report_key or "")
    assert [entry["position"] for entry in entries] == list(range(2, 69, 2))
    assert {entry["reason"] for entry in entries} == {"element_too_large"}
    assert all(entry["record"].startswith('{"blob": "xxx') and entry["record_truncated"] for entry in entries)
