"""Credentials in feed URLs are used to fetch only: records, logs, state and CLI output show ***."""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import sqlite3
from datetime import UTC, datetime

import pytest
from feedserver import FeedServer, rss_feed
from feedtest import TOPIC

from monitor.config import parse_config
from monitor.errors import ConfigError
from monitor.events import ArticleFetched, decode
from monitor.feeds.model import FeedConfig
from monitor.settings import Settings
from monitor.urls import RedactUrlArgs, redact_text, redact_url, split_credentials, url_secrets
from pipelines.feedtools import check
from pipelines.run import feeds_from_urls

SECRET = "s3cret"
NOW = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)
ITEMS = [
    {
        "title": "India, US agree on tariff roadmap",
        "link": "/world/tariff-roadmap",  # relative: resolved against the (credentialed) feed URL
        "description": "New Delhi and Washington agreed on a roadmap.",
        "pub_date": "Mon, 02 Feb 2026 10:00:00 GMT",
    },
    {
        "title": "US and India sign LPG deal",
        "link": "https://n.example/3",
        "description": "Indian companies will import gas from the US.",
        "pub_date": "Mon, 02 Feb 2026 09:00:00 GMT",
    },
]


def with_credentials(url: str, userinfo: str = f"user:{SECRET}") -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- redact_url -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@host/feed.xml", "https://user:***@host/feed.xml"),
        ("http://user:s3cret@127.0.0.1:8080/feed.xml", "http://user:***@127.0.0.1:8080/feed.xml"),
        ("https://abc123@host/f", "https://***@host/f"),  # a user alone is often a token
        ("https://user:@host/f", "https://user:***@host/f"),
        ("https://u:p%40ss@host/f", "https://u:***@host/f"),
        ("https://u:p@ss@host/f", "https://u:***@host/f"),  # an unencoded @ in the password
        ("https://host/f?token=abc&page=2", "https://host/f?token=***&page=2"),
        (
            "https://host/f?KEY=a&apikey=b&api_key=c&password=d",
            "https://host/f?KEY=***&apikey=***&api_key=***&password=***",
        ),
        ("https://host/f?secret=a&sig=b&signature=c", "https://host/f?secret=***&sig=***&signature=***"),
        ("https://host/f?access_token=a&x-api-key=b", "https://host/f?access_token=***&x-api-key=***"),
        ("https://host/f?token=", "https://host/f?token="),  # nothing to hide
        ("https://host/f#access_token=a", "https://host/f#access_token=***"),
        ("https://host/f?monkey=1&keyword=india", "https://host/f?monkey=1&keyword=india"),
        # Nothing to mask: the very same string (ids and state keys derived from it do not change).
        ("HTTPS://Host:443/a//b?z=1&a=2#frag", "HTTPS://Host:443/a//b?z=1&a=2#frag"),
        ("https://host/f?", "https://host/f?"),
        ("feeds/file.xml", "feeds/file.xml"),
        # Not parseable (a broken IPv6 literal): masked textually.
        ("http://u:pass@[::1/x?token=tok", "http://u:***@[::1/x?token=***"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example/services/T0/B0/XyZsecret", "https://hooks.example/***"),
        ("https://admin:token@hooks.example:8443/h?sig=1", "https://admin:***@hooks.example:8443/***"),
        ("https://hooks.example", "https://hooks.example"),
        ("https://hooks.example/", "https://hooks.example/"),
    ],
)
def test_redact_url_without_the_path(url: str, expected: str) -> None:
    assert redact_url(url, path=False) == expected


def test_redact_text_masks_the_url_and_each_secret() -> None:
    url = "https://user:p%40ssw0rd@host/f?token=tok123"
    assert set(url_secrets(url)) == {"p%40ssw0rd", "p@ssw0rd", "tok123"}
    text = f"GET {url} failed; password p@ssw0rd, token tok123"
    assert redact_text(text, url) == ("GET https://user:***@host/f?token=*** failed; password ***, token ***")
    assert redact_text("no secret here", "https://host/f") == "no secret here"


@pytest.mark.parametrize(
    ("url", "bare", "credentials"),
    [
        ("https://user:pw@host:8443/f?a=1", "https://host:8443/f?a=1", ("user", "pw")),
        ("https://u:p%40ss%3A@host/f", "https://host/f", ("u", "p@ss:")),
        ("https://token@host/f", "https://host/f", ("token", "")),
        ("https://host/f", "https://host/f", None),
        ("https://host/f?next=http://a:b@c/", "https://host/f?next=http://a:b@c/", None),
    ],
)
def test_split_credentials(url: str, bare: str, credentials: tuple[str, str] | None) -> None:
    assert split_credentials(url) == (bare, credentials)


def test_the_log_filter_redacts_url_arguments() -> None:
    log_filter = RedactUrlArgs()
    log_filter.hide_path("https://hooks.example/T0/secret-path")
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: %s %s %s "%d"',
        ("GET", "https://host/f?token=abc", "https://hooks.example/T0/secret-path", 200),
        None,
    )
    assert log_filter.filter(record)
    assert record.getMessage() == 'HTTP Request: GET https://host/f?token=*** https://hooks.example/*** "200"'


def test_feed_config_shows_the_redacted_url_and_name() -> None:
    url = f"https://user:{SECRET}@host/feed.xml"
    feed = FeedConfig(id="f", url=url, name=url)
    assert feed.url == url  # the real one, to fetch
    assert feed.shown_url == feed.shown_name == "https://user:***@host/feed.xml"
    assert FeedConfig(id="g", url="https://host/f", name="Host").shown_name == "Host"


def test_cli_feed_ids_do_not_depend_on_the_password() -> None:
    (plain,) = feeds_from_urls(["https://host/feed.xml"])
    # The id of a feed without credentials is what it always was: sha256 of the URL.
    assert plain.id == "cli-" + hashlib.sha256(b"https://host/feed.xml").hexdigest()[:12]
    one, two = feeds_from_urls([f"https://user:{SECRET}@host/feed.xml", "https://user:other@host/feed.xml"])
    assert one.id == two.id
    assert one.name == "https://user:***@host/feed.xml"
    assert SECRET not in one.id + one.name


def test_a_config_error_never_quotes_a_feed_password() -> None:
    for feed in (
        {"id": "a", "url": f"ftp://user:{SECRET}@host/feed", "name": "A"},
        {"id": "a", "url": f"https://user:{SECRET}@host/feed"},  # name missing: the input is the feed
    ):
        with pytest.raises(ConfigError) as info:
            parse_config({"feeds": [feed]}, source="monitor.yaml")
        assert "user:***@host" in str(info.value)
        assert SECRET not in str(info.value)
        assert SECRET not in str(info.value.__cause__)


# -- the poller -------------------------------------------------------------------------------------------


def test_a_poll_uses_the_credentials_and_records_carry_none(
    feed_server: FeedServer, make_rig, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.add("/feed.xml", rss_feed(ITEMS))
    feed_server.add("/gone.xml", status=503)
    url = with_credentials(feed_server.url("/feed.xml"))
    feeds = [
        FeedConfig(id="private", url=url, name=url),
        FeedConfig(
            id="failing", url=with_credentials(feed_server.url("/gone.xml") + f"?token={SECRET}x"), name="F"
        ),
    ]
    rig = make_rig(feeds)
    with caplog.at_level(logging.DEBUG):
        result = rig.poller.poll_feed("private")
        failed = rig.poller.poll_feed("failing")
    assert (result.outcome, result.published) == ("ok", 2)
    assert failed.outcome == "server_error"
    # The credentials were used: the server saw HTTP Basic auth.
    assert feed_server.requests("/feed.xml")[0].header("authorization") == basic("user", SECRET)
    records = rig.bus.records(TOPIC)
    assert len(records) == 2
    for record in records:
        assert SECRET.encode() not in record.value
        assert SECRET.encode() not in record.key.encode()
    articles = [decode(ArticleFetched, r.value) for r in records]
    shown = feed_server.url("/feed.xml").replace("http://", "http://user:***@")
    assert {(a.source.url, a.source.name) for a in articles} == {(shown, shown)}
    assert articles[0].url == f"{feed_server.base_url}/world/tariff-roadmap"  # resolved, no userinfo
    assert SECRET not in caplog.text
    assert "failing" in caplog.text  # the failure was logged, by feed id
    assert SECRET not in (failed.error or "")
    # Nor in the state file: it keeps the redacted URL.
    rig.poller.store.close()
    dump = "\n".join(sqlite3.connect(rig.state_path).iterdump())
    assert "user:***@" in dump
    assert SECRET not in dump


def test_credentials_are_not_sent_to_another_host_after_a_redirect(make_rig) -> None:
    with FeedServer(host="0.0.0.0") as server:
        server.add("/feed.xml", rss_feed(ITEMS))
        server.redirect("/old.xml", server.url("/feed.xml", host="127.0.0.2"))
        url = with_credentials(server.url("/old.xml"))
        # Another loopback address: the address policy refuses it unless allowed.
        rig = make_rig([FeedConfig(id="moved", url=url, name="Moved")], allowed_networks=("127.0.0.0/8",))
        assert rig.poller.poll_feed("moved").outcome == "ok"
        (first,) = server.requests("/old.xml")
        (second,) = server.requests("/feed.xml")
    assert first.header("authorization") == basic("user", SECRET)
    assert second.header("authorization") is None


def test_a_network_error_on_a_credentialed_feed_does_not_quote_the_password(make_rig) -> None:
    with FeedServer() as closed:
        url = with_credentials(closed.url("/x"))
    rig = make_rig([FeedConfig(id="closed", url=url, name="Closed")])
    result = rig.poller.poll_feed("closed")
    assert result.outcome == "network_error"
    assert SECRET not in (result.error or "")


# -- monitor feeds check --------------------------------------------------------------------------------


def test_feeds_check_prints_no_credentials(
    feed_server: FeedServer, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.add("/feed.xml", rss_feed(ITEMS))
    feed_server.add("/missing.xml", status=404)
    feed_server.add("/html", "<html><body>hello</body></html>", content_type="text/html")
    good = with_credentials(feed_server.url("/feed.xml"))
    sources = [
        good,
        with_credentials(feed_server.url("/missing.xml")),
        with_credentials(feed_server.url("/html") + f"?api_key={SECRET}"),
    ]
    with caplog.at_level(logging.DEBUG):
        code = check(argparse.Namespace(sources=sources), Settings(), clock=lambda: NOW)
    out, err = capsys.readouterr()
    assert code == 1
    assert feed_server.requests("/feed.xml")[0].header("authorization") == basic("user", SECRET)
    articles = [decode(ArticleFetched, line) for line in out.splitlines()]
    assert len(articles) == 2
    assert {a.source.url for a in articles} == {good.replace(SECRET, "***")}
    errors = err.splitlines()
    assert len(errors) == 2
    assert errors[0] == (
        f"monitor feeds check: {feed_server.url('/missing.xml').replace('http://', 'http://user:***@')}: "
        "client_error: HTTP 404"
    )
    assert "?api_key=***" in errors[1]
    assert SECRET not in out + err + caplog.text


def test_feeds_check_network_error_line_has_no_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    with FeedServer() as closed:
        url = with_credentials(closed.url("/x"))
    code = check(argparse.Namespace(sources=[url]), Settings(), clock=lambda: NOW)
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith(f"monitor feeds check: {url.replace(SECRET, '***')}: network_error: ")
    assert SECRET not in out + err
