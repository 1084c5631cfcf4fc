"""``monitor feeds check`` over HTTP and files, ``monitor feeds import``, and the packaged feed list."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from feedserver import FeedServer, rss_feed
from feedtest import FIXTURES

from monitor.config import load_config
from monitor.errors import ConfigError, OpmlError
from monitor.events import ArticleFetched, decode
from monitor.feeds.opml import read_opml
from monitor.settings import Settings
from pipelines.feedtools import check, import_opml

NOW = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)
"""A fixed clock for ``feeds check``: nothing below depends on the day the suite runs."""


def run_check(
    sources: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[ArticleFetched], list[str]]:
    code = check(argparse.Namespace(sources=sources), Settings(), clock=lambda: NOW)
    out, err = capsys.readouterr()
    return code, [decode(ArticleFetched, line) for line in out.splitlines()], err.splitlines()


def test_check_a_url(feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    feed_server.add("/feeds/world.xml", (FIXTURES / "rss20-messy.xml").read_bytes())
    code, articles, errors = run_check([feed_server.url("/feeds/world.xml")], capsys)
    assert (code, errors) == (0, [])
    assert [a.title for a in articles][:2] == [
        "India & US agree on tariff roadmap",
        "Relative link: Indian envoy meets US trade representative",
    ]
    assert articles[0].source.url == feed_server.url("/feeds/world.xml")


def test_check_reports_each_failing_feed_once(
    feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.add("/ok", rss_feed([{"title": "India, US talk", "link": "https://n.example/1"}]))
    feed_server.add("/missing", status=404)
    feed_server.add("/html", "<html><body>hello</body></html>", content_type="text/html")
    with FeedServer() as closed:
        unreachable = closed.url("/x")
    sources = [feed_server.url("/missing"), feed_server.url("/ok"), feed_server.url("/html"), unreachable]
    code, articles, errors = run_check(sources, capsys)
    assert code == 1
    assert len(articles) == 1
    assert len(errors) == 3
    assert errors[0] == f"monitor feeds check: {sources[0]}: client_error: HTTP 404"
    assert errors[1].startswith(f"monitor feeds check: {sources[2]}: parse_error: not an RSS or Atom feed")
    assert errors[2].startswith(f"monitor feeds check: {unreachable}: network_error: ")


def test_check_wire_files_clusters_across_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(FIXTURES / n) for n in ("wire-outlet-a.xml", "wire-outlet-b.xml", "wire-outlet-c.atom")]
    code, articles, _ = run_check(files, capsys)
    assert code == 0
    engine = {a.story_id for a in articles if "engine" in a.title.lower()}
    assert len(engine) == 1
    assert len({a.story_id for a in articles}) == len(articles) - 2


def test_read_opml() -> None:
    result = read_opml((FIXTURES / "feeds.opml").read_bytes(), taken_ids={"state-department"})
    feeds = {f.id: f for f in result.feeds}
    assert list(feeds) == [
        "the-hindu-international",
        "mint-economy",
        "state-department-2",
        "the-hindu-international-2",
    ]
    assert feeds["the-hindu-international"].tags == ("india",)
    assert feeds["mint-economy"].url == "http://www.livemint.com/rss/economy"  # feed:// scheme
    assert feeds["mint-economy"].tags == ("india", "economy", "markets")
    assert feeds["state-department-2"].tags == ("us", "official")
    assert feeds["state-department-2"].language == "en-US"
    assert [url for url, _ in result.rejected] == ["ftp://example.org/feed"]


def test_import_prints_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert import_opml(argparse.Namespace(opml=FIXTURES / "feeds.opml", output=None), Settings()) == 0
    out, err = capsys.readouterr()
    data = yaml.safe_load(out)
    assert len(data["feeds"]) == 4
    assert "skipped ftp://example.org/feed" in err


def test_import_adds_to_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "signals:\n  windows: [6h]\nfeeds:\n  - id: mint-economy\n    url: http://www.livemint.com/rss/economy\n"
        "    name: Mint\n",
        encoding="utf-8",
    )
    args = argparse.Namespace(opml=FIXTURES / "feeds.opml", output=config)
    assert import_opml(args, Settings()) == 0
    _, err = capsys.readouterr()
    assert "added 3 feeds" in err and "1 already there" in err
    loaded = load_config(config)
    assert [f.id for f in loaded.feeds] == [
        "mint-economy",
        "the-hindu-international",
        "state-department",
        "the-hindu-international-2",
    ]
    assert loaded.signals.windows == (timedelta(hours=6),)
    assert import_opml(args, Settings()) == 0  # idempotent
    assert len(load_config(config).feeds) == 4


def test_import_rejects_entity_tricks_and_non_opml(tmp_path: Path) -> None:
    evil = tmp_path / "evil.opml"
    evil.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
        '<opml version="2.0"><body><outline text="&b;" xmlUrl="https://e.example/rss"/></body></opml>',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="OPML"):
        import_opml(argparse.Namespace(opml=evil, output=None), Settings())
    html = tmp_path / "page.opml"
    html.write_text("<html><body/></html>", encoding="utf-8")
    with pytest.raises(ConfigError, match="not <opml>"):
        import_opml(argparse.Namespace(opml=html, output=None), Settings())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-be"])
def test_opml_entities_are_never_expanded_whatever_the_encoding(encoding: str) -> None:
    # A UTF-16 document hides "<!ENTITY" from a scan of its bytes: defusing reads the decoded text.
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?><!-- <a --><!DOCTYPE opml [<!ENTITY x "EXPANDED">]>'
        '<opml version="2.0"><body><outline text="&x;" xmlUrl="https://e.example/rss"/></body></opml>'
    )
    data = text.encode(encoding)  # Python's utf-16 writes a BOM; utf-16-be does not
    with pytest.raises(OpmlError, match="undefined entity"):
        read_opml(data)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "iso-8859-1"])
def test_opml_in_another_encoding_is_read_whole(encoding: str) -> None:
    title = "Économie — desk" if encoding != "iso-8859-1" else "Économie desk"
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?><opml version="2.0"><body>'
        f'<outline text="{title}" xmlUrl="https://e.example/rss"/></body></opml>'
    )
    result = read_opml(text.encode(encoding))
    assert [(f.name, f.url) for f in result.feeds] == [(title, "https://e.example/rss")]


def test_the_packaged_feed_list() -> None:
    config = load_config(None)
    feeds = config.feeds
    assert len(feeds) >= 15
    assert all(timedelta(minutes=5) <= f.interval <= timedelta(minutes=30) for f in feeds)
    assert all(f.url.startswith("https://") for f in feeds)
    assert len({f.url for f in feeds}) == len(feeds)
    tags = {t for f in feeds for t in f.tags}
    assert {"india", "us", "international", "official"} <= tags


def test_check_output_is_valid_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code = check(argparse.Namespace(sources=[str(FIXTURES / "rss10.rdf")]), Settings(), clock=lambda: NOW)
    out, _ = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["url"] for r in rows] == ["https://rdf.example/a/1", "https://rdf.example/a/2"]
    assert rows[0]["relevance_hint"] == 1.0 and rows[1]["relevance_hint"] == 0.0
