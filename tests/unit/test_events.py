"""Event contracts: symmetric encode/decode, one error type with the reason, shipped JSON Schemas."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
from samples import ALL_EVENTS, article, deadletter, firing, resolved, scored, signal

from monitor.errors import DecodeError
from monitor.events import (
    EVENT_TYPES,
    AlertFiring,
    AlertResolved,
    ArticleFetched,
    ArticleScored,
    DeadLetter,
    SignalUpdated,
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
        (b'{"schema_version": true, "title": "x"}', "schema_version must be an integer, got true"),
        (b'{"schema_version": 1.0, "title": "x"}', "schema_version must be an integer, got 1.0"),
        (b'{"schema_version": "1", "title": "x"}', 'schema_version must be an integer, got "1"'),
        (b'{"schema_version": null, "title": "x"}', "schema_version must be an integer, got null"),
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


def _with(event, path, value):
    """``event``'s JSON with the field at ``path`` (a dotted path) set to ``value``."""
    record = json.loads(event.encode())
    *parents, last = path.split(".")
    target = record
    for name in parents:
        target = target[int(name)] if isinstance(target, list) else target[name]
    target[last] = value
    return json.dumps(record)


@pytest.mark.parametrize("version", [True, 1.0])
def test_a_schema_version_that_only_equals_1_is_rejected_by_every_decoder(version):
    data = _with(article(), "schema_version", version)
    for decoder in (lambda d: decode(ArticleFetched, d), decode_any):
        with pytest.raises(DecodeError, match="schema_version must be an integer"):
            decoder(data)
    with pytest.raises(ValueError, match="must be an integer"):
        ArticleFetched.model_validate(json.loads(data))


@pytest.mark.parametrize(
    ("make", "cls", "path"),
    [
        (article, ArticleFetched, "relevance_hint"),
        (scored, ArticleScored, "relevance"),
        (scored, ArticleScored, "topics.trade_tariffs"),
        (scored, ArticleScored, "stance.score"),
        (scored, ArticleScored, "stance.probabilities.strain"),
        (signal, SignalUpdated, "value"),
        (signal, SignalUpdated, "articles"),
        (signal, SignalUpdated, "stories"),
        (firing, AlertFiring, "value"),
        (firing, AlertFiring, "threshold"),
        (firing, AlertFiring, "evidence.0.stance"),
        (deadletter, DeadLetter, "partition"),
        (deadletter, DeadLetter, "offset"),
        (deadletter, DeadLetter, "value_size"),
    ],
)
@pytest.mark.parametrize("value", [True, False, "1"])
def test_booleans_and_strings_are_not_numbers(make, cls, path, value):
    with pytest.raises(DecodeError) as info:
        decode(cls, _with(make(), path, value))
    assert path in info.value.reason
    assert f"got {json.dumps(value)}" in info.value.reason


@pytest.mark.parametrize(("path", "value"), [("articles", 2.0), ("articles", 2.5), ("value", 1)])
def test_integers_are_integers_and_numbers_may_be_either(path, value):
    data = _with(signal(), path, value)
    if path == "articles":
        with pytest.raises(DecodeError, match="must be an integer"):
            decode(SignalUpdated, data)
    else:
        assert decode(SignalUpdated, data).value == 1.0


def test_a_deadletter_carries_size_and_digest_of_the_whole_original():
    original = b"\xffraw bytes" * 10
    letter = deadletter(
        value_base64=base64.b64encode(original[:5]).decode(),
        value_size=len(original),
        value_sha256=hashlib.sha256(original).hexdigest(),
        value_truncated=True,
    )
    again = decode(DeadLetter, letter.encode())
    assert again.original_value == original[:5] and again.value_truncated
    assert again.value_size == len(original) and again.value_sha256 == hashlib.sha256(original).hexdigest()
    with pytest.raises(DecodeError, match="value_truncated"):
        decode(DeadLetter, _with(letter, "value_truncated", 1))


def test_a_deadletter_written_before_the_size_fields_reads_as_a_whole_copy():
    record = json.loads(deadletter().encode())
    for name in ("value_size", "value_sha256", "value_truncated"):
        del record[name]
    letter = decode(DeadLetter, json.dumps(record))
    assert letter.original_value == b"\xffraw"
    assert letter.value_size == 4 and not letter.value_truncated
    assert letter.value_sha256 == hashlib.sha256(b"\xffraw").hexdigest()
