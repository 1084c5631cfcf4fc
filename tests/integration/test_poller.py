"""The poller on a real Kafka broker: local feeds in, ``news.articles`` records out, valid against the schema.

Also runs the stage process itself (``monitor poller``) against the broker and a local feed server.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from feedserver import FeedServer
from harness.topics import read_topic
from harness.waiting import free_port, stop
from prometheus_client import CollectorRegistry

from monitor.bus import topic_specs
from monitor.bus.kafka import KafkaBus
from monitor.events import ArticleFetched, decode
from monitor.feeds.model import FeedConfig
from monitor.schemas import load_schema
from monitor.settings import KafkaSettings, PollerSettings, Settings, TopicNames
from pipelines.poller import build_poller

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
REPO = Path(__file__).resolve().parents[2]
WIRE = ("wire-outlet-a.xml", "wire-outlet-b.xml", "wire-outlet-c.atom")


def settings_for(bootstrap: str, topic: str, state_dir: Path) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topics=TopicNames(articles=topic)),
        state_dir=state_dir,
        poller=PollerSettings(jitter=0.0),
    )


def serve_fixtures(server: FeedServer) -> list[FeedConfig]:
    feeds = []
    for name in (*WIRE, "rss20-messy.xml", "rss10.rdf"):
        path = f"/{name}"
        server.add_file(path, FIXTURES / name, etag=f'"{name}"')
        feeds.append(FeedConfig(id=name.split(".")[0], url=server.url(path), name=name))
    return feeds


def test_local_feeds_to_kafka_records(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = unique_name("articles")
    settings = settings_for(kafka_bootstrap, topic, tmp_path)
    bus = KafkaBus(settings.kafka)
    bus.create_topics([s for s in topic_specs(settings) if s.name == topic])
    producer = bus.producer()
    with FeedServer() as server:
        feeds = serve_fixtures(server)
        poller = build_poller(settings, feeds, producer, CollectorRegistry())
        try:
            summary = poller.poll_all_once()
            assert summary.outcomes == {"ok": len(feeds)}
            records = read_topic(kafka_bootstrap, topic, at_least=summary.published)
            assert len(records) == summary.published > 10
            again = poller.poll_all_once()  # every feed answers 304 now
            assert again.outcomes == {"not_modified": len(feeds)}
            assert again.published == 0
        finally:
            poller.close()
            producer.close()
    schema = load_schema("ArticleFetched")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    articles = []
    for key, value in records:
        validator.validate(json.loads(value))
        article = decode(ArticleFetched, value)
        assert key == article.article_id
        articles.append(article)
    assert len({a.article_id for a in articles}) == len(articles)
    engine = {a.story_id for a in articles if "engine" in a.title.lower()}
    assert len(engine) == 1  # three outlets, one story
    assert not [a for a in articles if "chess" in a.title.lower() or "weather" in a.title.lower()]
    assert len(read_topic(kafka_bootstrap, topic)) == len(records)


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_the_poller_stage_process(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = unique_name("articles")
    port = free_port()
    with FeedServer() as server:
        feeds = serve_fixtures(server)
        config = tmp_path / "monitor.yaml"
        config.write_text(
            "feeds:\n"
            + "".join(f"  - {{id: {f.id}, url: '{f.url}', name: {f.id}, interval: 5m}}\n" for f in feeds),
            encoding="utf-8",
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MONITOR_") and k != "KAFKA_BOOTSTRAP_SERVERS"
        }
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            MONITOR_CONFIG=str(config),
            MONITOR_STATE_DIR=str(tmp_path / "state"),
            MONITOR_KAFKA__TOPICS__ARTICLES=topic,
            MONITOR_METRICS__HOST="127.0.0.1",
            MONITOR_METRICS__PORT=str(port),
            MONITOR_POLLER__START_SPREAD="0s",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "poller"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 90
            text = ""
            # every feed polled, published and committed (the gauge is set after the commit)
            while text.count("monitor_feed_last_success_timestamp_seconds{") < len(feeds):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"poller did not poll every feed: {proc.poll()}\n{text[-3000:]}")
                with contextlib.suppress(OSError):  # not listening yet
                    text = _metrics(port)
                time.sleep(0.2)
            published = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("monitor_articles_published_total{")
            )
            records = read_topic(kafka_bootstrap, topic, at_least=int(published))
            assert len(records) == published > 10
            assert 'monitor_build_info{stage="poller"' in text
            assert 'monitor_records_published_total{stage="poller"' in text
            assert "monitor_feed_staleness_seconds{" in text
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                assert response.status == 200
            assert (tmp_path / "state" / "poller.sqlite3").exists()
        finally:
            output, _ = stop(proc, timeout=30)
        assert proc.returncode == 0, output[-3000:]
        assert "poller stopped" in output
