"""JSON Feed 1.0/1.1, and the text rules for titles: literal angle brackets kept, invisible format
characters removed, untitled entries titled by their link. The documents are written here, after the
JSON Feed 1.1 specification (https://jsonfeed.org/version/1.1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from feedserver import rss_feed

from monitor.errors import FetchError
from monitor.feeds.parse import parse_feed
from monitor.feeds.text import clean_text

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def json_feed(version: str, items: list[dict[str, object]], **fields: object) -> bytes:
    doc = {"version": version, "title": "Desk", "home_page_url": "https://desk.example/", **fields}
    return json.dumps({**doc, "items": items}).encode()


@pytest.mark.parametrize(
    ("version", "expected"),
    [("https://jsonfeed.org/version/1", "json10"), ("https://jsonfeed.org/version/1.1", "json11")],
)
def test_a_json_feed_is_read_like_rss(version: str, expected: str) -> None:
    body = json_feed(
        version,
        [
            {
                "id": "https://desk.example/a",
                "url": "https://desk.example/a",
                "title": "India and US sign a trade pact",
                "content_html": "<p>New Delhi and <b>Washington</b> agreed.</p>",
                "date_published": "2026-02-10T08:30:00+05:30",
                "language": "en-IN",
            },
            {
                "id": 2,
                "external_url": "https://other.example/b",
                "summary": "Only a summary, no title",
                "date_modified": "2026-02-11T10:00:00Z",
            },
            {"id": "3", "content_text": "No link at all, but text"},
            "not an item",
        ],
        language="en",
    )
    parsed = parse_feed(body, feed_id="desk", url="https://desk.example/feed.json", now=NOW)
    assert parsed.version == expected and parsed.title == "Desk" and parsed.link == "https://desk.example/"
    first, second, third = parsed.entries
    assert (first.title, first.summary, first.url) == (
        "India and US sign a trade pact",
        "New Delhi and Washington agreed.",
        "https://desk.example/a",
    )
    assert first.published_at == datetime(2026, 2, 10, 3, 0, tzinfo=UTC)
    assert first.language == "en-IN"  # as normalise_language writes tags for RSS and Atom too
    assert (second.url, second.title, second.published_at) == (
        "https://other.example/b",
        "Only a summary, no title",
        datetime(2026, 2, 11, 10, 0, tzinfo=UTC),
    )
    assert second.language == "en" and second.guid == "2"
    assert (third.url, third.title) == ("", "No link at all, but text")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "title": "x"}', "not a JSON feed (no items list)"),
        (b'{"items": [}', "not an RSS, Atom or JSON feed (JSON: Expecting value)"),
        (b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "JSON nested too deeply"),
        (b'{"items": [], "title": "\xff"}', "a JSON feed must be UTF-8"),
    ],
)
def test_a_bad_json_feed_is_a_parse_error(body: bytes, reason: str) -> None:
    with pytest.raises(FetchError, match=reason.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_feed(body, feed_id="x", now=NOW)
    assert caught.value.outcome == "parse_error"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Test with self-closing &lt;tag&gt;", "Test with self-closing <tag>"),
        ("&lt;/example&gt; closes it", "</example> closes it"),
        ("&lt;b&gt;Bold&lt;/b&gt; India-US talks", "Bold India-US talks"),
        ("India \u202eUS\u202c deal\u200b\u2066 signed\u2069\ufeff", "India US deal signed"),
    ],
)
def test_titles_keep_literal_tags_and_lose_invisible_controls(title: str, expected: str) -> None:
    body = rss_feed([{"title": title, "link": "https://n.example/1", "description": "d"}])
    (entry,) = parse_feed(body, feed_id="t", now=NOW).entries
    assert entry.title == expected


def test_summaries_still_drop_unknown_markup() -> None:
    assert clean_text("<o:p>Word</o:p> junk <custom>tag</custom>") == "Word junk tag"


def test_joiners_that_indian_scripts_need_are_kept() -> None:
    devanagari = "क्\u200dष"  # a conjunct shaped with ZWJ
    assert clean_text(devanagari) == devanagari
    assert clean_text("a\u200cb") == "a\u200cb"


def test_an_entry_with_only_a_link_is_titled_by_it() -> None:
    body = rss_feed([{"link": "https://n.example/only-a-link"}])
    (entry,) = parse_feed(body, feed_id="t", now=NOW).entries
    assert entry.title == "https://n.example/only-a-link"
