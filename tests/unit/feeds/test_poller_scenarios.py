"""The poller against a local feed server: each scenario checks outcome, next poll and what was published.

Polls run on a fixed clock (T0) with no jitter, so next-poll times are exact; the feed interval is 15m.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from feedserver import FeedServer, Response, rss_feed
from feedtest import T0, TOPIC, PollerRig, feed

from monitor.bus.base import Message, Producer
from monitor.bus.memory import InProcessBus
from monitor.errors import BusError

M = timedelta(minutes=1)
ITEMS = [
    {
        "title": "India, US agree on tariff roadmap",
        "link": "https://n.example/1",
        "description": "New Delhi and Washington agreed on a roadmap.",
        "pub_date": "Mon, 02 Feb 2026 10:00:00 GMT",
    },
    {
        "title": "Quad ministers meet in Tokyo",
        "link": "https://n.example/2",
        "description": "Maritime security was on the agenda.",
        "pub_date": "Mon, 02 Feb 2026 09:00:00 GMT",
    },
]
MORE = {
    "title": "US and India sign LPG deal",
    "link": "https://n.example/3",
    "description": "Indian companies will import gas from the US.",
    "pub_date": "Tue, 03 Feb 2026 05:00:00 GMT",
}
IRRELEVANT = {
    "title": "Chess olympiad enters final round",
    "link": "https://n.example/chess",
    "description": "Three teams are level on points.",
}
BODY = rss_feed(ITEMS)
URLS = ["https://n.example/1", "https://n.example/2"]

MakeRig = Callable[..., PollerRig]


def published_urls(rig: PollerRig) -> list[str]:
    return [a.url for a in rig.articles()]


def test_etag_then_304(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/rss", BODY, etag='"v1"')
    rig = make_rig([feed(feed_server, "/rss")])
    first = rig.poller.poll_feed("rss")
    assert (first.outcome, first.published, first.next_poll_at) == ("ok", 2, T0 + 15 * M)
    assert published_urls(rig) == URLS
    rig.clock.advance(15 * M)
    second = rig.poller.poll_feed("rss")
    assert feed_server.requests("/rss")[-1].header("if-none-match") == '"v1"'
    assert (second.outcome, second.status, second.published) == ("not_modified", 304, 0)
    assert second.next_poll_at == T0 + 30 * M
    assert published_urls(rig) == URLS  # nothing more
    assert rig.metric("monitor_feed_polls_total", feed="rss", outcome="not_modified") == 1
    assert rig.metric("monitor_feed_polls_total", feed="rss", outcome="ok") == 1


def test_last_modified_then_304(feed_server: FeedServer, make_rig: MakeRig) -> None:
    stamp = "Mon, 02 Feb 2026 10:00:00 GMT"
    feed_server.add("/lm", BODY, last_modified=stamp)
    rig = make_rig([feed(feed_server, "/lm")])
    assert rig.poller.poll_feed("lm").outcome == "ok"
    second = rig.poller.poll_feed("lm")
    assert feed_server.requests("/lm")[-1].header("if-modified-since") == stamp
    assert feed_server.requests("/lm")[-1].header("if-none-match") is None
    assert (second.outcome, second.published, second.next_poll_at) == ("not_modified", 0, T0 + 15 * M)
    assert len(rig.articles()) == 2


def test_429_with_retry_after(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add(
        "/limited", "slow down", status=429, content_type="text/plain", headers={"Retry-After": "3600"}
    )
    rig = make_rig([feed(feed_server, "/limited")])
    result = rig.poller.poll_feed("limited")
    assert (result.outcome, result.status, result.failures) == ("rate_limited", 429, 1)
    assert result.next_poll_at == T0 + timedelta(hours=1)
    assert rig.articles() == []
    assert rig.metric("monitor_feed_consecutive_failures", feed="limited") == 1


def test_503_with_an_http_date_retry_after(feed_server: FeedServer, make_rig: MakeRig) -> None:
    # Retry-After as an HTTP date counts from the poller's clock (T0 = 06:00 here).
    feed_server.add("/maint", status=503, headers={"Retry-After": "Tue, 03 Feb 2026 08:00:00 GMT"})
    rig = make_rig([feed(feed_server, "/maint")])
    result = rig.poller.poll_feed("maint")
    assert result.outcome == "server_error"
    assert result.next_poll_at == T0 + timedelta(hours=2)


def test_500_then_recovery(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add_sequence("/flaky", [Response(status=500), Response(status=502), Response(BODY)])
    rig = make_rig([feed(feed_server, "/flaky")])
    one = rig.poller.poll_feed("flaky")
    assert (one.outcome, one.failures, one.next_poll_at, one.published) == ("server_error", 1, T0 + 15 * M, 0)
    rig.clock.advance(15 * M)
    two = rig.poller.poll_feed("flaky")
    assert (two.outcome, two.failures) == ("server_error", 2)
    assert two.next_poll_at == rig.clock.now + 15 * M  # backoff 2m*2 is below the interval
    assert rig.metric("monitor_feed_consecutive_failures", feed="flaky") == 2
    rig.clock.advance(15 * M)
    three = rig.poller.poll_feed("flaky")
    assert (three.outcome, three.failures, three.published) == ("ok", 0, 2)
    assert three.next_poll_at == rig.clock.now + 15 * M
    assert published_urls(rig) == URLS
    assert rig.metric("monitor_feed_consecutive_failures", feed="flaky") == 0
    assert (
        rig.metric("monitor_feed_last_success_timestamp_seconds", feed="flaky") == rig.clock.now.timestamp()
    )


def test_failures_back_off_up_to_the_cap_and_keep_trying(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/down", status=500)
    rig = make_rig([feed(feed_server, "/down")], backoff_cap=timedelta(hours=1))
    delays = []
    for _ in range(8):
        result = rig.poller.poll_feed("down")
        delays.append(result.next_poll_at - rig.clock.now)
        rig.clock.advance(delays[-1])
    assert delays == [15 * M, 15 * M, 15 * M, 16 * M, 32 * M, 60 * M, 60 * M, 60 * M]
    assert rig.poller.store.load("down").failures == 8  # type: ignore[union-attr]
    assert feed_server.hits("/down") == 8


def test_a_response_slower_than_the_timeout(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/slow", BODY, delay=5.0)
    rig = make_rig([feed(feed_server, "/slow")], read_timeout=timedelta(seconds=0.5))
    result = rig.poller.poll_feed("slow")
    assert result.outcome == "network_error"
    assert "timed out" in (result.error or "")
    assert result.elapsed < 3.0
    assert result.next_poll_at == T0 + 15 * M
    assert rig.articles() == []


def test_a_trickling_body_hits_the_total_deadline(feed_server: FeedServer, make_rig: MakeRig) -> None:
    # Each chunk comes well within the read timeout, but the whole body would take 10 s.
    feed_server.add("/trickle", BODY, chunked=True, chunk_size=max(1, len(BODY) // 50), chunk_delay=0.2)
    rig = make_rig([feed(feed_server, "/trickle")], total_timeout=timedelta(seconds=1))
    result = rig.poller.poll_feed("trickle")
    assert result.outcome == "network_error"
    assert "not complete within" in (result.error or "")
    assert result.elapsed < 2.0
    assert rig.articles() == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_larger_than_the_limit(feed_server: FeedServer, make_rig: MakeRig, chunked: bool) -> None:
    big = rss_feed([*ITEMS, {"title": "x", "description": "y" * 100_000}])
    feed_server.add("/big", big, chunked=chunked)
    rig = make_rig([feed(feed_server, "/big")], max_bytes=64 * 1024)
    result = rig.poller.poll_feed("big")
    assert result.outcome == "too_large"
    assert result.next_poll_at == T0 + 15 * M
    assert rig.articles() == []
    if chunked:
        assert 64 * 1024 < result.bytes_read < 100_000  # stopped while streaming


def test_a_gzip_bomb_stops_at_the_limit(feed_server: FeedServer, make_rig: MakeRig) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * 5_000_000)
    feed_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    rig = make_rig([feed(feed_server, "/bomb")], max_bytes=64 * 1024)
    result = rig.poller.poll_feed("bomb")
    assert result.outcome == "too_large"
    assert len(bomb) < 64 * 1024  # small on the wire, too large once decoded


def test_a_redirect_loop(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.redirect("/loop-a", "/loop-b")
    feed_server.redirect("/loop-b", "/loop-a")
    rig = make_rig([feed(feed_server, "/loop-a")])
    result = rig.poller.poll_feed("loop-a")
    assert result.outcome == "client_error"
    assert "too many redirects" in (result.error or "")
    assert result.next_poll_at == T0 + 15 * M
    assert feed_server.hits() == 4  # the first request and max_redirects=3 more
    assert rig.articles() == []


def test_a_permanent_redirect_is_followed(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.redirect("/old", "/new", status=301)
    feed_server.add("/new", BODY)
    rig = make_rig([feed(feed_server, "/old")])
    result = rig.poller.poll_feed("old")
    assert (result.outcome, result.published) == ("ok", 2)


def test_gzip(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/gz", BODY, gzip=True)
    rig = make_rig([feed(feed_server, "/gz")])
    result = rig.poller.poll_feed("gz")
    assert "gzip" in (feed_server.requests("/gz")[0].header("accept-encoding") or "")
    assert (result.outcome, result.published, result.bytes_read) == ("ok", 2, len(BODY))
    assert rig.metric("monitor_feed_fetched_bytes_total", feed="gz") == len(BODY)


def test_wrong_content_type(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/as-html", BODY, content_type="text/html; charset=utf-8")
    feed_server.add("/as-octets", BODY, content_type="application/octet-stream")
    feed_server.add(
        "/page", "<html><body><h1>Welcome</h1><p>Not a feed.</p></body></html>", content_type="text/html"
    )
    rig = make_rig(
        [feed(feed_server, "/as-html"), feed(feed_server, "/as-octets"), feed(feed_server, "/page")]
    )
    assert rig.poller.poll_feed("as-html").outcome == "ok"  # a feed is a feed, whatever the label
    assert rig.poller.poll_feed("as-octets").outcome == "ok"
    page = rig.poller.poll_feed("page")
    assert (page.outcome, page.published, page.next_poll_at) == ("parse_error", 0, T0 + 15 * M)
    assert published_urls(rig) == URLS  # the two feeds carry the same articles: published once


def test_an_empty_body(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/empty", b"", etag='"e"')
    rig = make_rig([feed(feed_server, "/empty")])
    result = rig.poller.poll_feed("empty")
    assert (result.outcome, result.error) == ("parse_error", "empty document")
    assert result.next_poll_at == T0 + 15 * M
    rig.poller.poll_feed("empty")
    # validators are stored only from a parsed 200: the next request is not conditional
    assert feed_server.requests("/empty")[-1].header("if-none-match") is None


def test_entries_change_between_polls(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/live", BODY, etag='"1"')
    rig = make_rig([feed(feed_server, "/live")])
    assert rig.poller.poll_feed("live").published == 2
    feed_server.add("/live", rss_feed([MORE, *ITEMS]), etag='"2"')
    rig.clock.advance(15 * M)
    second = rig.poller.poll_feed("live")
    assert (second.outcome, second.new, second.duplicate, second.published) == ("ok", 1, 2, 1)
    assert second.next_poll_at == rig.clock.now + 15 * M
    assert published_urls(rig) == [*URLS, "https://n.example/3"]
    assert rig.metric("monitor_feed_entries_total", feed="live", kind="duplicate") == 2
    assert rig.metric("monitor_feed_entries_total", feed="live", kind="new") == 3
    assert rig.metric("monitor_articles_published_total", feed="live") == 3
    assert (
        rig.metric("monitor_feed_last_new_entry_timestamp_seconds", feed="live") == rig.clock.now.timestamp()
    )
    # an item that drops out of the feed and comes back is still a duplicate
    feed_server.add("/live", rss_feed(ITEMS), etag='"3"')
    assert rig.poller.poll_feed("live").published == 0


def test_a_server_that_ignores_conditional_get(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/same", BODY)  # no validators: always 200 with the same bytes
    rig = make_rig([feed(feed_server, "/same")])
    assert rig.poller.poll_feed("same").published == 2
    again = rig.poller.poll_feed("same")
    assert (again.outcome, again.published, again.duplicate) == ("ok", 0, 0)  # same bytes: not even parsed


def test_irrelevant_entries_are_counted_not_published(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/mixed", rss_feed([*ITEMS, IRRELEVANT]))
    rig = make_rig([feed(feed_server, "/mixed")])
    result = rig.poller.poll_feed("mixed")
    assert (result.published, result.irrelevant) == (2, 1)
    assert rig.metric("monitor_feed_entries_total", feed="mixed", kind="irrelevant") == 1
    assert all(a.relevance_hint >= 0.5 for a in rig.articles())


def test_cache_control_and_ttl_stretch_the_interval(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/cc", BODY, headers={"Cache-Control": "public, max-age=1800"})
    feed_server.add("/ttl", rss_feed(ITEMS, ttl=40))
    rig = make_rig([feed(feed_server, "/cc"), feed(feed_server, "/ttl")])
    assert rig.poller.poll_feed("cc").next_poll_at == T0 + 30 * M
    assert rig.metric("monitor_feed_expected_interval_seconds", feed="cc") == 1800
    assert rig.poller.poll_feed("ttl").next_poll_at == T0 + 40 * M


def test_unreachable_host_is_a_network_error(make_rig: MakeRig) -> None:
    with FeedServer() as closed:
        url_feed = feed(closed, "/gone")
    rig = make_rig([url_feed])  # the server is stopped: connection refused
    result = rig.poller.poll_feed("gone")
    assert (result.outcome, result.status) == ("network_error", None)
    assert result.next_poll_at == T0 + 15 * M


def test_the_user_agent_names_the_project(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/ua", BODY)
    rig = make_rig([feed(feed_server, "/ua")])
    rig.poller.poll_feed("ua")
    assert (feed_server.requests("/ua")[0].header("user-agent") or "").startswith("india-us-monitor/")


def test_articles_carry_the_contract_fields(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/c", BODY)
    rig = make_rig([feed(feed_server, "/c", language="en")])
    rig.poller.poll_feed("c")
    records = rig.bus.records(TOPIC)
    articles = rig.articles()
    assert [r.key for r in records] == [a.article_id for a in articles]
    first = articles[0]
    assert first.source.feed_id == "c" and first.source.url == feed_server.url("/c")
    assert first.fetched_at == T0
    assert first.published_at.isoformat() == "2026-02-02T10:00:00+00:00"
    assert first.story_id == first.article_id
    assert first.language == "en"


class FlakyProducer(Producer):
    """Publishes through ``inner`` unless told to fail (a broker outage)."""

    def __init__(self, inner: Producer) -> None:
        self.inner = inner
        self.fail = False

    def publish_all(self, messages: Sequence[Message]) -> None:
        if self.fail:
            raise BusError("broker unavailable", retriable=True)
        self.inner.publish_all(messages)

    def close(self) -> None:
        self.inner.close()


def test_a_publish_failure_stores_nothing_and_the_next_poll_publishes(
    feed_server: FeedServer, make_rig: MakeRig
) -> None:
    feed_server.add("/p", BODY, etag='"v1"')
    bus = InProcessBus(default_partitions=1)
    producer = FlakyProducer(bus.producer())
    rig = make_rig([feed(feed_server, "/p")], bus=bus, producer=producer)
    producer.fail = True
    failed = rig.poller.poll_feed("p")
    assert failed.published == 0 and "publish failed" in (failed.error or "")
    assert rig.poller.store.load("p") is None  # no validators, no seen ids
    assert rig.metric("monitor_stage_errors_total", stage="poller", kind="publish") == 1
    producer.fail = False
    again = rig.poller.poll_feed("p")
    assert feed_server.requests("/p")[-1].header("if-none-match") is None  # fetched in full again
    assert (again.outcome, again.published) == ("ok", 2)
    assert published_urls(rig) == URLS


def test_state_survives_a_restart(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/s", BODY, etag='"v1"')
    bus = InProcessBus(default_partitions=1)
    first = make_rig([feed(feed_server, "/s")], bus=bus)
    first.poller.poll_feed("s")
    first.poller.close()
    feed_server.add("/s", rss_feed([MORE, *ITEMS]), etag='"v2"')
    second = make_rig([feed(feed_server, "/s")], bus=bus)
    result = second.poller.poll_feed("s")
    assert feed_server.requests("/s")[-1].header("if-none-match") == '"v1"'
    assert (result.new, result.duplicate) == (1, 2)
    assert [a.url for a in second.articles()] == [*URLS, "https://n.example/3"]


def test_poll_all_once_summarises(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/a", BODY)
    feed_server.add("/b", rss_feed([MORE, IRRELEVANT]))
    feed_server.add("/c", status=404)
    rig = make_rig([feed(feed_server, "/a"), feed(feed_server, "/b"), feed(feed_server, "/c")])
    summary = rig.poller.poll_all_once()
    assert summary.feeds == 3
    assert summary.outcomes == {"ok": 2, "client_error": 1}
    assert (summary.published, summary.irrelevant) == (3, 1)
    assert [r.feed_id for r in summary.failed] == ["c"]
    assert str(summary) == "3 feeds (client_error=1 ok=2): 3 new, 0 duplicate, 1 irrelevant, 3 published"
    assert len(rig.articles()) == 3


def test_the_same_article_in_two_feeds_is_published_once(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/one", BODY)
    feed_server.add("/two", rss_feed([{**ITEMS[0], "link": ITEMS[0]["link"] + "?utm_source=two"}]))
    rig = make_rig([feed(feed_server, "/one"), feed(feed_server, "/two")])
    summary = rig.poller.poll_all_once()
    assert summary.published == 2
    assert summary.duplicate == 1
    assert sorted(published_urls(rig)) == URLS


def test_staleness_is_computed_at_scrape(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add("/st", BODY)
    rig = make_rig([feed(feed_server, "/st")])
    rig.poller.poll_feed("st")
    staleness = rig.metric("monitor_feed_staleness_seconds", feed="st")
    assert staleness is not None
    # the rig's clock is fixed in the past: the gauge counts real seconds since the last new entry
    assert staleness > 0


def test_a_failing_feed_is_logged_once_per_change(
    feed_server: FeedServer, make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    failing = [Response(status=500), Response(status=500), Response(status=500), Response(status=404)]
    feed_server.add_sequence("/f", [*failing, Response(BODY), Response(BODY)])
    rig = make_rig([feed(feed_server, "/f")])
    caplog.set_level(logging.INFO, logger="monitor.feeds.poller")
    outcomes = [rig.poller.poll_feed("f").outcome for _ in range(3)]
    assert rig.poller.health() == (False, "degraded: every feed is failing; 1 feeds, 1 failing")
    outcomes += [rig.poller.poll_feed("f").outcome for _ in range(3)]
    assert outcomes == ["server_error"] * 3 + ["client_error", "ok", "ok"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # failing with server_error, then with client_error: once each
    assert warnings[0].startswith("feed=f failing: server_error (HTTP 500); 1 in a row")
    assert warnings[1].startswith("feed=f failing: client_error (HTTP 404); 4 in a row")
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1
    assert rig.poller.health() == (True, "ok; 1 feeds, 0 failing")


def test_the_stage_needs_kafka() -> None:
    import argparse

    from monitor.errors import ConfigError
    from monitor.settings import Settings
    from pipelines.poller import main

    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        main(argparse.Namespace(), Settings())


def test_unstable_guids_without_links_are_not_republished(feed_server: FeedServer, make_rig: MakeRig) -> None:
    def fresh_guids(request: object) -> Response:
        # a feed without links whose GUIDs change on every fetch (a cache-busting generator)
        stamp = str(time.monotonic_ns())
        return Response(
            rss_feed(
                [
                    {
                        "title": "India, US agree on tariff roadmap",
                        "guid": f"{stamp}-1",
                        "description": "Roadmap agreed.",
                        "pub_date": "Mon, 02 Feb 2026 10:00:00 GMT",
                    },
                    {"title": "Quad ministers meet", "guid": f"{stamp}-2", "description": "In Tokyo."},
                ]
            )
        )

    feed_server.add_handler("/nolinks", fresh_guids)
    rig = make_rig([feed(feed_server, "/nolinks")])
    assert rig.poller.poll_feed("nolinks").published == 2
    again = rig.poller.poll_feed("nolinks")
    assert (again.published, again.duplicate) == (0, 2)


def test_non_unique_guids_do_not_drop_articles(feed_server: FeedServer, make_rig: MakeRig) -> None:
    feed_server.add(
        "/dupguid",
        rss_feed(
            [
                {"title": "India, US sign defence framework", "guid": "same", "link": "https://d.example/1"},
                {"title": "India, US sign trade framework", "guid": "same", "link": "https://d.example/2"},
                {"title": "India and US discuss minerals", "guid": "same"},
                {"title": "India and US discuss visas", "guid": "same"},
            ]
        ),
    )
    rig = make_rig([feed(feed_server, "/dupguid")])
    assert rig.poller.poll_feed("dupguid").published == 4
    assert rig.poller.poll_feed("dupguid").published == 0


def test_only_the_newest_entries_of_a_huge_feed_are_read(feed_server: FeedServer, make_rig: MakeRig) -> None:
    # 50 dated India-US items, shuffled in the document, plus one undated: with max_entries=5 the four
    # newest dated ones and the undated one (dated on first sight) are read.
    items = [
        {
            "title": f"India and US trade talks, round {n}",
            "link": f"https://n.example/round-{n}",
            "description": "New Delhi and Washington met on tariffs.",
            "pub_date": f"Mon, 02 Feb 2026 {n // 60:02d}:{n % 60:02d}:00 GMT",
        }
        for n in range(50)
    ]
    items = items[25:] + items[:25]
    undated = {"title": "India, US undated item", "link": "https://n.example/undated", "description": "x"}
    feed_server.add("/huge", rss_feed([*items, undated]))
    rig = make_rig([feed(feed_server, "/huge")], max_entries=5)
    result = rig.poller.poll_feed("huge")
    assert result.outcome == "ok"
    urls = sorted(a.url for a in rig.articles())
    assert urls == sorted([f"https://n.example/round-{n}" for n in (46, 47, 48, 49)] + [undated["link"]])
