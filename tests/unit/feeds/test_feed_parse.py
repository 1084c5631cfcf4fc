"""Parsing and normalisation over the feed files written for these tests (tests/fixtures/feeds)."""

from __future__ import annotations

import codecs
import io
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from feedserver import atom_feed, rss_feed
from feedtest import FIXTURES

from monitor.errors import FetchError
from monitor.feeds.parse import defuse, normalise_language, parse_feed
from monitor.urls import article_id_for_url

NOW = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)


def parse_file(name: str, **kwargs: object) -> object:
    return parse_feed((FIXTURES / name).read_bytes(), feed_id="t", now=NOW, **kwargs)  # type: ignore[arg-type]


def test_rss20_messy_entries_are_normalised() -> None:
    parsed = parse_feed(
        (FIXTURES / "rss20-messy.xml").read_bytes(),
        feed_id="messy",
        url="https://messy.example/feeds/world.xml",
        now=NOW,
    )
    assert parsed.version == "rss20"
    assert parsed.title == "Messy & Co."
    assert parsed.ttl == timedelta(minutes=45)
    assert parsed.skipped == 1  # the item with nothing usable
    titles = [e.title for e in parsed.entries]
    assert titles[0] == "India & US agree on tariff roadmap"
    first = parsed.entries[0]
    assert first.url == "https://messy.example/world/2026/02/tariff-roadmap?a=1&id=7"
    assert first.article_id == article_id_for_url(first.url)
    assert first.id_basis == "url"
    assert first.summary == (
        "New Delhi and Washington said… the roadmap “covers” goods worth $40 billion. Second paragraph."
    )
    assert "track()" not in first.summary
    assert first.published_at == datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
    assert first.language == "en-GB"
    # relative link resolved against the URL the feed was fetched from
    assert parsed.entries[1].url == "https://messy.example/world/2026/02/envoy-meets-ustr"
    # no date: None (the poller uses first seen); a date in 2100: not believed
    assert parsed.entries[2].published_at is None
    assert parsed.entries[3].published_at is None
    # the same article under its canonical address, with a lightly different headline: same id
    assert parsed.entries[4].article_id == first.article_id
    # description only: it becomes the title, there is no URL, the id comes from the content
    assert parsed.entries[5].title.startswith("An item with only a description")
    assert parsed.entries[5].url == ""
    assert parsed.entries[5].id_basis == "content"


def test_relative_links_resolve_against_the_channel_link_without_a_url() -> None:
    parsed = parse_feed((FIXTURES / "rss20-messy.xml").read_bytes(), feed_id="messy", now=NOW)
    assert parsed.entries[1].url == "https://messy.example/world/2026/02/envoy-meets-ustr"


def test_language_override_wins() -> None:
    parsed = parse_feed((FIXTURES / "rss20-messy.xml").read_bytes(), feed_id="m", language="hi", now=NOW)
    assert {e.language for e in parsed.entries} == {"hi"}


def test_rss091_latin1_with_netscape_doctype() -> None:
    parsed = parse_feed((FIXTURES / "rss091-netscape.xml").read_bytes(), feed_id="b", now=NOW)
    assert parsed.version == "rss091n"  # the DOCTYPE without internal subset is kept: it names the format
    assert parsed.entries[0].title == "Café owners in Mumbai welcome US visa interview slots"
    assert parsed.entries[0].summary.endswith("(à la carte).")
    assert parsed.entries[0].published_at is None


def test_rss10_rdf_dates_converted_to_utc() -> None:
    parsed = parse_feed((FIXTURES / "rss10.rdf").read_bytes(), feed_id="r", now=NOW)
    assert parsed.version == "rss10"
    assert [e.url for e in parsed.entries] == ["https://rdf.example/a/1", "https://rdf.example/a/2"]
    assert parsed.entries[0].published_at == datetime(2026, 2, 1, 4, 30, tzinfo=UTC)
    assert parsed.entries[0].language == "en"


def _rss_with_dates(*dates: str) -> bytes:
    items = "".join(
        f"<item><title>item {i}</title><link>https://d.example/{i}</link><pubDate>{d}</pubDate></item>"
        for i, d in enumerate(dates)
    )
    return f"<rss version='2.0'><channel><title>d</title>{items}</channel></rss>".encode()


@pytest.mark.parametrize(
    "today", [NOW, datetime(2031, 7, 15, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)]
)
def test_year_first_slashed_dates_are_read_as_written_on_any_day(today: datetime) -> None:
    body = _rss_with_dates(
        "2020/1/10 14:33:00", "2020.01.10", "2020/1/10 14:33 +05:30", "2020/13/45 10:00:00", "2020/02/30"
    )
    got = [e.published_at for e in parse_feed(body, feed_id="d", now=today).entries]
    assert got == [
        datetime(2020, 1, 10, 14, 33, tzinfo=UTC),  # no zone written: UTC
        datetime(2020, 1, 10, tzinfo=UTC),
        datetime(2020, 1, 10, 9, 3, tzinfo=UTC),
        None,  # not a date: first seen, never a month and day taken from today
        None,
    ]


def test_atom_html_title_and_relative_link() -> None:
    parsed = parse_feed((FIXTURES / "wire-outlet-c.atom").read_bytes(), feed_id="c", now=NOW)
    assert parsed.version == "atom10"
    first = parsed.entries[0]
    assert first.title == "US-India engine talks conclude; tech transfer terms by year-end"
    assert first.url == "https://outlet-c.example/asia/2026/02/03/us-india-engine-talks"
    assert first.published_at == datetime(2026, 2, 3, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty document"),
        (b"   \n ", "empty document"),
        (b"<html><body><h1>Not a feed</h1></body></html>", "not an RSS or Atom feed"),
        (b'{"json": "not a feed"}', "not a JSON feed (no items list)"),
        (b'{"items": [', "not an RSS, Atom or JSON feed (JSON: Expecting value)"),
        (b"<rss version='2.0'><channel><title>cut off", "no element found"),
        (b"<rss version='2.0'><channel><item><title><![CD", "no usable entries"),
        (b"\x00\xff\xfe garbage \x00", "not well-formed"),
    ],
)
def test_parse_errors(body: bytes, reason: str) -> None:
    with pytest.raises(FetchError) as info:
        parse_feed(body, feed_id="x", now=NOW)
    assert info.value.outcome == "parse_error"
    assert reason in str(info.value)


def test_a_valid_feed_without_items_is_fine() -> None:
    parsed = parse_feed(rss_feed([]), feed_id="x", now=NOW)
    assert parsed.entries == ()
    assert parsed.problem is None


def test_broken_document_with_entries_is_used_and_reported() -> None:
    body = rss_feed([{"title": "India, US talk trade", "link": "https://b.example/1"}])
    body = body.replace(b"</channel></rss>", b"")  # truncated
    parsed = parse_feed(body, feed_id="x", now=NOW)
    assert [e.url for e in parsed.entries] == ["https://b.example/1"]
    assert parsed.problem


# -- ids -----------------------------------------------------------------------------------------------


def test_non_unique_guids_without_links_do_not_merge_entries() -> None:
    body = rss_feed(
        [
            {"title": "First story", "guid": "same"},
            {"title": "Second story", "guid": "same"},
            {"title": "Third story", "guid": "unique-3"},
        ]
    )
    parsed = parse_feed(body, feed_id="x", now=NOW)
    ids = [e.article_id for e in parsed.entries]
    assert len(set(ids)) == 3
    assert [e.id_basis for e in parsed.entries] == ["content", "content", "guid"]


def test_unstable_guids_do_not_change_ids_when_links_exist() -> None:
    first = rss_feed([{"title": "A", "link": "https://u.example/a", "guid": "rand-1"}])
    second = rss_feed([{"title": "A", "link": "https://u.example/a", "guid": "rand-2"}])
    a = parse_feed(first, feed_id="x", now=NOW).entries[0]
    b = parse_feed(second, feed_id="x", now=NOW).entries[0]
    assert a.article_id == b.article_id


def test_every_entry_linking_the_home_page_is_told_apart() -> None:
    body = rss_feed(
        [
            {"title": "Story one", "link": "https://home.example/", "guid": "g1"},
            {"title": "Story two", "link": "https://home.example/", "guid": "g2"},
        ],
        link="https://home.example/",
    )
    parsed = parse_feed(body, feed_id="x", now=NOW)
    assert len({e.article_id for e in parsed.entries}) == 2
    assert [e.id_basis for e in parsed.entries] == ["guid", "guid"]


def test_headline_in_link_and_guid_pti_style() -> None:
    body = rss_feed(
        [
            {
                "title": "Man killed in tiger attack",
                "link": "Man killed in tiger attack",
                "guid": "Man killed in tiger attack",
            },
            {"title": "Rain lashes city", "link": "Rain lashes city", "guid": "Rain lashes city"},
        ]
    )
    parsed = parse_feed(body, feed_id="pti", url="https://pti.example/feed", now=NOW)
    assert [e.url for e in parsed.entries] == ["", ""]
    assert [e.id_basis for e in parsed.entries] == ["guid", "guid"]


def test_feedburner_origlink_is_preferred() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">'
        b"<channel><title>t</title><item><title>x</title><link>http://feedproxy.google.com/~r/x/1</link>"
        b"<feedburner:origLink>https://origin.example/story?utm_source=feedburner</feedburner:origLink>"
        b"</item></channel></rss>"
    )
    assert parse_feed(body, feed_id="x", now=NOW).entries[0].url == "https://origin.example/story"


def test_atom_builder_round_trip() -> None:
    body = atom_feed([{"title": "T", "link": "https://a.example/1", "id": "urn:1", "summary": "S"}])
    (entry,) = parse_feed(body, feed_id="x", now=NOW).entries
    assert (entry.title, entry.url, entry.summary) == ("T", "https://a.example/1", "S")


# -- encodings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16", "utf-32"])
def test_wide_encodings(codec: str) -> None:
    text = rss_feed([{"title": "भारत और अमेरिका", "link": "https://w.example/1"}]).decode("utf-8")
    text = text.replace('encoding="utf-8"', f'encoding="{codec}"')
    body = text.encode(codec)
    if codec == "utf-16-le":
        body = codecs.BOM_UTF16_LE + body
    elif codec == "utf-16-be":
        body = codecs.BOM_UTF16_BE + body
    parsed = parse_feed(body, feed_id="x", now=NOW)
    assert parsed.entries[0].title == "भारत और अमेरिका"


def test_http_charset_is_used_when_the_document_declares_none() -> None:
    body = "<rss version='2.0'><channel><title>t</title><item><title>Ñandú</title></item></channel></rss>"
    parsed = parse_feed(
        body.encode("latin-1"), feed_id="x", headers={"Content-Type": "text/xml; charset=iso-8859-1"}, now=NOW
    )
    assert parsed.entries[0].title == "Ñandú"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("en_US", "en-US"),
        ("EN-us", "en-US"),
        ("hi", "hi"),
        ("zh-Hant-TW", "zh-hant-TW"),
        ("", None),
        ("english", None),
        (None, None),
        ("en us", None),
    ],
)
def test_normalise_language(raw: str | None, expected: str | None) -> None:
    assert normalise_language(raw) == expected


# -- entity expansion ------------------------------------------------------------------------------------


def _bounded(fn: object) -> tuple[object, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = fn()  # type: ignore[operator]
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, elapsed, peak


def test_billion_laughs_is_never_expanded() -> None:
    body = (FIXTURES / "billion-laughs.xml").read_bytes()
    parsed, elapsed, peak = _bounded(lambda: parse_feed(body, feed_id="x", now=NOW))
    assert elapsed < 2.0
    assert peak < 20 * 1024 * 1024
    entries = parsed.entries  # type: ignore[attr-defined]
    assert len(entries) == 2
    assert "lollol" not in entries[0].title + entries[0].summary
    assert entries[0].title == "India and US &lol9; sign pact"  # the reference stays a reference
    assert entries[1].summary == "Plain text."


def _quadratic_blowup(value_size: int = 10_000, refs: int = 2_000) -> bytes:
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + "x" * value_size + '">\n]>\n'
        '<rss version="2.0"><channel><title>t</title><item><title>India US</title>'
        "<link>https://q.example/1</link><description>" + "&a;" * refs + "</description></item>"
        "</channel></rss>"
    ).encode()


def test_quadratic_blowup_is_never_expanded() -> None:
    body = _quadratic_blowup()
    parsed, elapsed, peak = _bounded(lambda: parse_feed(body, feed_id="x", now=NOW))
    assert elapsed < 2.0
    assert peak < 5 * 1024 * 1024
    assert "xxxxxxxxxx" not in parsed.entries[0].summary  # type: ignore[attr-defined]


def test_feedparser_alone_would_expand_it() -> None:
    """Why :func:`defuse` exists: feedparser keeps 'safe' entities, and 16 KB become 20 MB."""
    body = _quadratic_blowup()
    result = feedparser.parse(io.BytesIO(body))
    assert len(result.entries[0].summary) == 10_000 * 2_000
    assert "x" * 100 not in feedparser.parse(io.BytesIO(defuse(body)[0])).entries[0].summary


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>',
            b'<?xml version="1.0"?><!DOCTYPE x><x/>',
        ),
        (b"<!DOCTYPE x [<!-- ] > ' --><!ENTITY a 'b>c'>]><x/>", b"<!DOCTYPE x><x/>"),
        (
            b'<!DOCTYPE rss PUBLIC "-//N//DTD RSS 0.91//EN" "x.dtd"><rss/>',
            b'<!DOCTYPE rss PUBLIC "-//N//DTD RSS 0.91//EN" "x.dtd"><rss/>',
        ),
        (
            b"<x><![CDATA[<!DOCTYPE y [<!ENTITY a 'b'>]>]]></x>",
            b"<x><![CDATA[<!DOCTYPE y [<!ENTITY a 'b'>]>]]></x>",
        ),
        (b"<!DOCTYPE x [<!ENTITY a 'unterminated", b"<!DOCTYPE x>"),
    ],
)
def test_defuse(doc: bytes, expected: bytes) -> None:
    assert defuse(doc)[0] == expected
