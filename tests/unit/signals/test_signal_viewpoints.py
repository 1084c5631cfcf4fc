"""Signals per viewpoint: the ``all`` points stay as they were; india and us get their own series."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from fixtures import scenarios
from fixtures.scenarios import article
from samples import article as fetched_article
from samples import scored

from monitor.alerts.engine import AlertEngine, signal_params
from monitor.config import parse_config
from monitor.events import ArticleFetched, ArticleScored, SignalUpdated, decode
from monitor.signals.engine import SignalEngine, SignalParams, parse_signal_key, signal_key
from monitor.signals.windows import to_us
from monitor.store.alerts import AlerterStore

START = datetime(2025, 8, 4, tzinfo=UTC)
M = 60 * 1_000_000


def params() -> SignalParams:
    return SignalParams(
        windows=(timedelta(hours=6), timedelta(hours=24)),
        allowed_lateness=timedelta(hours=6),
        span=timedelta(hours=24),
    )


def make(aid: str, t: str, viewpoint: str, stance: float) -> ArticleScored:
    spec = {
        "id": aid,
        "t": t,
        "story": aid,
        "topics": ["trade_tariffs"],
        "stance": stance,
        "viewpoint": viewpoint,
    }
    return article(START, spec)


def updates_at(engine: SignalEngine, minutes: int) -> list[SignalUpdated]:
    out = []
    for view in engine.ticks(to_us(START) + minutes * M, active=lambda: False):
        out.extend(engine.signal_updates(view))
    return out


def test_india_and_us_get_their_own_series_beside_all():
    engine = SignalEngine(params())
    for a in (make("i1", "0h", "india", 0.6), make("i2", "0h", "india", 0.4), make("u1", "0h", "us", -0.5)):
        engine.ingest(a, partition="p0")
    engine.ingest(make("x1", "0h", "international", 0.0), partition="p0")
    out = updates_at(engine, 30)
    latest = {u.key: u for u in out}
    # viewpoint all: the keys and values as before the split (four articles)
    assert latest["volume/trade_tariffs/24h"].viewpoint == "all"
    assert latest["volume/trade_tariffs/24h"].value == 4.0
    assert latest["stance_index/trade_tariffs/24h/india"].value == 0.5
    assert latest["stance_index/trade_tariffs/24h/us"].value == -0.5
    assert latest["stories/trade_tariffs/6h/india"].value == 2.0
    assert latest["volume/overall/24h/us"].value == 1.0
    # international is the default viewpoint: no series of its own; strained_share only over all outlets
    assert not [
        k
        for k in latest
        if k.endswith("/international") or (k.startswith("strained_share/") and k.count("/") == 3)
    ]
    # a viewpoint's series starts with its first article: nothing for topics it has not covered
    assert "volume/defence/24h/india" not in latest
    assert len([u for u in out if u.viewpoint == "all"]) == 8 * 2 * 4
    assert (
        len([u for u in out if u.viewpoint != "all"]) == 2 * 2 * 2 * 3
    )  # viewpoints x subjects x windows x signals


def test_a_viewpoint_series_empties_when_its_articles_leave_the_window_and_then_stays_quiet():
    engine = SignalEngine(params())
    engine.ingest(make("i1", "0h", "india", 0.6), partition="p0")
    updates_at(engine, 30)
    engine.ingest(make("u1", "7h", "us", -0.2), partition="p0")
    out = updates_at(engine, 7 * 60 + 30)
    india_6h = [u for u in out if u.key == "volume/trade_tariffs/6h/india"]
    assert [u.value for u in india_6h] == [0.0]  # left the 6h window at 6h
    assert not [u for u in out if u.key == "volume/trade_tariffs/24h/india"]  # unchanged: not republished


def test_signal_keys_round_trip():
    assert signal_key("volume", "defence", "6h") == "volume/defence/6h"
    assert signal_key("volume", "defence", "6h", "us") == "volume/defence/6h/us"
    assert parse_signal_key("volume/defence/6h") == ("volume", "defence", "6h", "all")
    assert parse_signal_key("volume/defence/6h/india") == ("volume", "defence", "6h", "india")


def test_records_written_before_the_split_read_with_the_defaults():
    old = fetched_article().to_json_dict()
    del old["source"]["viewpoint"]
    assert decode(ArticleFetched, json.dumps(old)).source.viewpoint == "international"
    old_scored = scored().to_json_dict()
    del old_scored["source"]["viewpoint"]
    assert decode(ArticleScored, json.dumps(old_scored)).source.viewpoint == "international"
    point = SignalUpdated(
        signal="volume", topic="overall", window="6h", value=1.0, articles=1, stories=1, at=START
    )
    record = point.to_json_dict()
    del record["viewpoint"]
    again = decode(SignalUpdated, json.dumps(record))
    assert (again.viewpoint, again.key) == ("all", "volume/overall/6h")


def test_the_alerter_state_keeps_the_viewpoint_and_upgrades_an_older_file(tmp_path):
    scenario = scenarios.load("views_diverge")
    config = parse_config({"rules": scenario.rules}, source="views_diverge")
    path = tmp_path / "alerter.sqlite3"
    # A state file from before the split: the articles table without the viewpoint column.
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE articles (
            article_id TEXT PRIMARY KEY, story_id TEXT NOT NULL, arrival_us INTEGER NOT NULL,
            event_us INTEGER NOT NULL, relevance REAL NOT NULL, subjects TEXT NOT NULL, stance REAL NOT NULL,
            label TEXT NOT NULL, title TEXT NOT NULL, url TEXT NOT NULL, source TEXT NOT NULL, evidence TEXT
        );
        INSERT INTO articles
        VALUES ('old', 's', 1, 1, 0.9, '["overall"]', 0.1, 'neutral', 't', 'u', 'w', NULL);
        """
    )
    db.close()
    store = AlerterStore(path)
    assert store.load().signals.articles["old"].viewpoint == "international"
    engine = AlertEngine(
        rules=config.rules, params=signal_params(config.signals, config.rules), state=store.load()
    )
    before = engine.checkpoint()
    for a in scenario.articles[:6]:
        engine.ingest(a, partition="p0")
    engine.advance(set())
    store.save(before, engine.state)
    store.close()
    loaded = AlerterStore(path).load().signals.articles
    assert {a.viewpoint for a in loaded.values()} == {"india", "us"}  # the 1970 article left the windows
    assert loaded == engine.state.signals.articles


def test_skipping_unchanged_windows_publishes_exactly_what_recomputing_every_window_does():
    import random

    rng = random.Random(7)
    articles = []
    for i in range(240):
        spec = {
            "id": f"a{i:03d}",
            "t": f"{i * 12}m",
            "fetched": f"{i * 12 + rng.randint(5, 300)}m",  # some late, out of event-time order
            "story": f"s{i // 2}",
            "stance": round(rng.uniform(-0.8, 0.8), 2),
            "topics": rng.sample(["trade_tariffs", "defence", "technology"], rng.choice([1, 2])),
            "viewpoint": rng.choice(["india", "us", "international"]),
        }
        articles.append(article(START, spec))
    articles.sort(key=lambda a: a.scored_at)

    def run(recompute: bool) -> list[tuple]:
        engine = SignalEngine(params())
        out = []
        for i, a in enumerate(articles):
            engine.ingest(a, partition="p0")
            if i % 5 == 4:
                for view in engine.ticks(engine.watermark(set()), active=lambda: True):
                    if recompute:
                        engine._computed.clear()
                    out.extend(
                        (u.at, u.key, u.value, u.articles, u.stories) for u in engine.signal_updates(view)
                    )
        return out

    skipping, recomputing = run(False), run(True)
    assert len({k for _, k, *_ in skipping if k.endswith(("/india", "/us"))}) > 20
    assert skipping == recomputing
