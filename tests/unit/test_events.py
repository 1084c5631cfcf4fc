"""Event contracts: symmetric encode/decode, one error type with the reason, shipped JSON Schemas."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
from samples import ALL_EVENTS, article, firing, resolved, scored

from monitor.errors import DecodeError
from monitor.events import (
    EVENT_TYPES,
    AlertFiring,
    AlertResolved,
    ArticleFetched,
    ArticleScored,
    decode,
    decode_alert,
    decode_any,
)
from monitor.schemas import load_schema, render


@pytest.mark.parametrize("make", ALL_EVENTS, ids=lambda f: f.__name__)
def test_encode_decode_is_symmetric(make):
    event = make()
    assert decode(type(event), event.encode()) == event
    assert decode_any(event.encode()) == event
    assert decode(type(event), event.encode()).encode() == event.encode()


@pytest.mark.parametrize("make", ALL_EVENTS, ids=lambda f: f.__name__)
def test_records_validate_against_the_shipped_schema(make):
    event = make()
    record = json.loads(event.encode())
    jsonschema.validate(record, load_schema(event.event_type), format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.event_type)
def test_shipped_schema_files_match_the_code(cls):
    shipped = json.dumps(load_schema(cls.event_type), indent=2, sort_keys=True) + "\n"
    assert shipped == render(cls.event_type), "regenerate with: python -m monitor.schemas"


def test_schema_rejects_a_record_missing_a_field():
    record = json.loads(article().encode())
    del record["title"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, load_schema("ArticleFetched"))


def test_times_are_rfc3339_utc():
    ist = timezone(timedelta(hours=5, minutes=30))
    event = article(published_at=datetime(2026, 2, 2, 15, 0, tzinfo=ist))
    record = json.loads(event.encode())
    assert record["published_at"] == "2026-02-02T09:30:00Z"
    assert record["schema_version"] == 1 and record["type"] == "ArticleFetched"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"title": "x"}', "missing field 'schema_version'"),
        (b'{"schema_version": 2, "title": "x"}', "unsupported schema_version 2"),
    ],
)
def test_bad_records_raise_decode_error_with_reason(data, reason):
    with pytest.raises(DecodeError) as info:
        decode(ArticleFetched, data)
    assert reason in info.value.reason


def test_missing_field_is_named():
    record = json.loads(article().encode())
    del record["url"]
    with pytest.raises(DecodeError, match="missing field 'url'"):
        decode(ArticleFetched, json.dumps(record))


def test_wrong_type_is_rejected():
    with pytest.raises(DecodeError, match="'ArticleScored' was expected"):
        decode(ArticleScored, article().encode())


def test_naive_times_and_unknown_topics_are_rejected():
    record = json.loads(article().encode())
    record["published_at"] = "2026-02-02T09:30:00"
    with pytest.raises(DecodeError, match="published_at"):
        decode(ArticleFetched, json.dumps(record))
    record = json.loads(scored().encode())
    record["topics"]["sports"] = 0.5
    with pytest.raises(DecodeError, match="unknown topic"):
        decode(ArticleScored, json.dumps(record))


def test_unknown_fields_are_ignored_for_forward_compatibility():
    record = json.loads(article().encode())
    record["added_later"] = {"x": 1}
    assert decode(ArticleFetched, json.dumps(record)) == article()


def test_alert_topic_decodes_both_lifecycle_events():
    assert isinstance(decode_alert(firing().encode()), AlertFiring)
    assert isinstance(decode_alert(resolved().encode()), AlertResolved)
    with pytest.raises(DecodeError):
        decode_alert(article().encode())


def test_events_are_frozen():
    event = article()
    with pytest.raises(Exception, match="frozen"):
        event.title = "changed"  # type: ignore[misc]
