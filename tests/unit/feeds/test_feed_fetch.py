"""The httpx fetcher on its own: headers, limits, per-host concurrency, header parsing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from feedserver import FeedServer, rss_feed

from monitor.feeds.fetch import classify_status, parse_max_age, parse_retry_after
from monitor.feeds.http import HostLimiter, HttpxFetcher

NOW = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)
BODY = rss_feed([{"title": "India, US talk", "link": "https://n.example/1"}])


def fetcher(**kwargs: object) -> HttpxFetcher:
    options: dict[str, object] = {"user_agent": "india-us-monitor/test", "read_timeout": 2.0}
    options.update(kwargs)
    return HttpxFetcher(**options)  # type: ignore[arg-type]


def test_conditional_headers_and_validators(feed_server: FeedServer) -> None:
    feed_server.add("/f", BODY, etag='W/"abc"', last_modified="Mon, 02 Feb 2026 10:00:00 GMT")
    f = fetcher()
    first = f.fetch(feed_server.url("/f"))
    assert (first.outcome, first.status, first.body) == ("ok", 200, BODY)
    assert (first.etag, first.last_modified) == ('W/"abc"', "Mon, 02 Feb 2026 10:00:00 GMT")
    second = f.fetch(feed_server.url("/f"), etag=first.etag, last_modified=first.last_modified)
    request = feed_server.requests("/f")[-1]
    assert request.header("if-none-match") == 'W/"abc"'
    assert request.header("if-modified-since") == "Mon, 02 Feb 2026 10:00:00 GMT"
    assert (second.outcome, second.body, second.error) == ("not_modified", b"", None)
    f.close()


def test_final_url_after_redirects(feed_server: FeedServer) -> None:
    feed_server.redirect("/moved", "/here", status=308)
    feed_server.add("/here", BODY)
    f = fetcher()
    result = f.fetch(feed_server.url("/moved"))
    assert result.final_url == feed_server.url("/here")
    f.close()


@pytest.mark.parametrize(("limit", "expected_peak"), [(1, 1), (2, 2), (4, 4)])
def test_per_host_concurrency(feed_server: FeedServer, limit: int, expected_peak: int) -> None:
    for i in range(6):
        feed_server.add(f"/slow{i}", BODY, delay=0.3)
    f = fetcher(per_host_concurrency=limit)
    threads = [threading.Thread(target=f.fetch, args=(feed_server.url(f"/slow{i}"),)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert feed_server.hits() == 6
    # never above the limit; and the limit is not stricter than asked (at least two overlap when allowed)
    assert min(expected_peak, 2) <= feed_server.peak_concurrency <= expected_peak
    f.close()


def test_the_limit_is_per_host() -> None:
    with FeedServer(host="0.0.0.0") as server:  # reachable as 127.0.0.1 and 127.0.0.2
        server.add("/s", BODY, delay=0.3)
        f = fetcher(per_host_concurrency=1)
        urls = [server.url("/s", host=h) for h in ("127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2")]
        threads = [threading.Thread(target=f.fetch, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert server.peak_concurrency == 2
        f.close()


def test_host_key() -> None:
    assert HostLimiter.host_of("https://A.example:8443/x") == "a.example:8443"
    assert HostLimiter.host_of("https://a.example/x") == HostLimiter.host_of("https://a.example:443/y")
    assert HostLimiter.host_of("https://a.example/x") == "a.example:443"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (203, "ok"),
        (304, "not_modified"),
        (404, "client_error"),
        (410, "client_error"),
        (429, "rate_limited"),
        (500, "server_error"),
        (503, "server_error"),
        (300, "server_error"),
    ],
)
def test_classify_status(status: int, outcome: str) -> None:
    assert classify_status(status) == outcome


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        ("Tue, 03 Feb 2026 06:30:00 GMT", timedelta(minutes=30)),
        ("Tue, 03 Feb 2026 05:00:00 GMT", timedelta(0)),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=600", timedelta(minutes=10)),
        ("public, max-age=60, must-revalidate", timedelta(minutes=1)),
        ("no-cache, max-age=600", None),
        ("no-store", None),
        ("max-age=0", None),
        ("max-age=abc", None),
        (None, None),
    ],
)
def test_parse_max_age(value: str | None, expected: timedelta | None) -> None:
    assert parse_max_age(value) == expected
