"""The scorer stage on a real Kafka broker.

* in process (rule classifier, so the stage's wiring is what is tested): articles in, scored records out,
  valid against the shipped JSON Schema; a poison record and an article without text go to the dead-letter
  topic and the records after them are still scored; offsets are committed.
* as the ``monitor scorer`` process with the real model: killed with SIGKILL in the middle of its work and
  restarted, it produces a scored record for every article (duplicates allowed, losses not); SIGTERM then
  stops it cleanly (exit 0); /metrics and /healthz answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from harness.waiting import free_port
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from monitor.bus import topic_specs
from monitor.bus.base import RECORD_OVERHEAD, Message
from monitor.bus.kafka import KafkaBus
from monitor.classify.lexicon import RuleClassifier
from monitor.events import ArticleFetched, ArticleScored, DeadLetter, Source, decode
from monitor.schemas import load_schema
from monitor.settings import KafkaSettings, ScorerSettings, Settings, TopicNames
from pipelines.scorer import GROUP_ID, build_scorer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HEADLINES = [
    ("India and US agree trade deal cutting tariffs", "The pact will boost exports, officials said."),
    ("Trump's H-1B fee shock rattles Indian techies", "Families fear the steep hike."),
    ("India, US sign 10-year defence framework", "Rajnath Singh and Pete Hegseth signed the pact."),
    ("EU and US reach trade deal", "Brussels agreed to 15% tariffs."),
    ("Quad summit in doubt as Trump may skip", "Uncertainty grows over the Indo-Pacific grouping."),
    ("ISRO and NASA launch joint satellite", "The NISAR mission lifted off from Sriharikota."),
]


def article(n: int) -> ArticleFetched:
    title, summary = HEADLINES[n % len(HEADLINES)]
    now = datetime.now(UTC)
    return ArticleFetched(
        article_id=f"art-{n:04d}",
        story_id=f"story-{n:04d}",
        url=f"https://example.test/{n}",
        title=f"{title} ({n})",
        summary=summary,
        published_at=now - timedelta(hours=1),
        fetched_at=now,
        language="en",
        source=Source(feed_id="test", name="Test", url="https://example.test/feed"),
        relevance_hint=0.9,
    )


def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[tuple[str, bytes]]], bool], timeout: float = 120.0
) -> list[tuple[str, bytes]]:
    """All records of ``topic`` (key, value) from the beginning, polling until ``until(records)``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        while not (partitions := sorted(consumer.partitions_for_topic(topic) or ())):
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} never appeared")
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        out: list[tuple[str, bytes]] = []
        while not until(out):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met after {timeout}s ({len(out)} records)")
            for batch in consumer.poll(timeout_ms=300).values():
                out.extend((r.key.decode() if r.key else "", r.value) for r in batch)
        return out
    finally:
        consumer.close()


def make_settings(bootstrap: str, unique_name: Callable[[str], str], **scorer: object) -> Settings:
    topics = TopicNames(
        articles=unique_name("articles"),
        scored=unique_name("scored"),
        signals=unique_name("signals"),
        alerts=unique_name("alerts"),
        deadletter=unique_name("deadletter"),
    )
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topics=topics, partitions=2, session_timeout="6s"),
        scorer=ScorerSettings(**scorer),  # type: ignore[arg-type]
    )
    wanted = {topics.articles, topics.scored, topics.deadletter}
    KafkaBus(settings.kafka).create_topics([s for s in topic_specs(settings) if s.name in wanted])
    return settings


def publish(bus: KafkaBus, topic: str, values: list[tuple[str, bytes]]) -> None:
    with bus.producer() as producer:
        producer.publish_all([Message(topic, k, v) for k, v in values])


def test_articles_in_scored_out_poison_to_deadletter(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    settings = make_settings(kafka_bootstrap, unique_name, batch_size=4, max_wait="100ms")
    topics = settings.kafka.topics
    bus = KafkaBus(settings.kafka)
    good = [article(n) for n in range(10)]
    empty = article(99).model_copy(update={"title": "", "summary": ""})
    values = [(a.article_id, a.encode()) for a in good[:5]]
    values += [
        ("poison", b'{"schema_version": 1, "type": "ArticleFetched", "title": 42}'),
        ("art-0099", empty.encode()),
    ]
    values += [(a.article_id, a.encode()) for a in good[5:]]
    publish(bus, topics.articles, values)

    runner = build_scorer(settings, bus, CollectorRegistry(), classifier=RuleClassifier())
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        scored = read_topic(kafka_bootstrap, topics.scored, until=lambda r: len({k for k, _ in r}) >= 10)
        letters = read_topic(kafka_bootstrap, topics.deadletter, until=lambda r: len(r) >= 2)
    finally:
        stop.set()
        thread.join(timeout=30)
        runner.close()
    assert not thread.is_alive()
    schema = load_schema("ArticleScored")
    by_id = {}
    for key, value in scored:
        jsonschema.validate(json.loads(value), schema)
        event = decode(ArticleScored, value)
        assert key == event.article_id
        by_id[key] = event
    assert set(by_id) == {a.article_id for a in good}
    assert by_id["art-0000"].stance.label == "cooperation" and by_id["art-0003"].relevance == 0.0
    dead = {k: decode(DeadLetter, v) for k, v in letters}
    assert set(dead) == {"poison", "art-0099"}
    assert dead["poison"].reason.startswith("undecodable") and dead["poison"].topic == topics.articles
    assert "neither title nor summary" in dead["art-0099"].reason
    # every offset committed: a new member of the group has nothing left to read
    with bus.consumer([topics.articles], group_id=GROUP_ID) as again:
        deadline = time.monotonic() + 20
        while not again.lag() and time.monotonic() < deadline:
            assert again.poll(timeout=0.5) == []
        assert sum(again.lag().values()) == 0
        assert again.poll(timeout=1.0) == []


def _get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status, response.read().decode()


def test_scorer_process_killed_mid_stream_loses_nothing(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="the scorer process needs the monitor[classifier] extra")
    settings = make_settings(kafka_bootstrap, unique_name)
    topics = settings.kafka.topics
    bus = KafkaBus(settings.kafka)
    articles = [article(n) for n in range(300)]
    publish(bus, topics.articles, [(a.article_id, a.encode()) for a in articles])
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MONITOR_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update(
        MONITOR_KAFKA__BOOTSTRAP_SERVERS=kafka_bootstrap,
        MONITOR_KAFKA__TOPICS__ARTICLES=topics.articles,
        MONITOR_KAFKA__TOPICS__SCORED=topics.scored,
        MONITOR_KAFKA__TOPICS__DEADLETTER=topics.deadletter,
        MONITOR_KAFKA__SESSION_TIMEOUT="6s",
        MONITOR_SCORER__BATCH_SIZE="2",
        MONITOR_SCORER__MAX_WAIT="10ms",
        MONITOR_SCORER__THREADS="1",
        MONITOR_METRICS__HOST="127.0.0.1",
        MONITOR_METRICS__PORT=str(port),
        MONITOR_STATE_DIR=str(tmp_path / "state"),
    )

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "scorer"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    first = start()
    try:
        partial = read_topic(
            kafka_bootstrap, topics.scored, until=lambda r: len(r) >= 20 or first.poll() is not None
        )
        assert first.poll() is None, first.communicate()[0][-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    done_before = {
        k for k, _ in read_topic(kafka_bootstrap, topics.scored, until=lambda r: len(r) >= len(partial))
    }
    assert 0 < len(done_before) < len(articles), "the kill should land while articles were still waiting"

    second = start()
    try:
        wanted = {a.article_id for a in articles}
        final = read_topic(
            kafka_bootstrap,
            topics.scored,
            timeout=240,
            until=lambda r: wanted <= {k for k, _ in r} or second.poll() is not None,
        )
        assert second.poll() is None, second.communicate()[0][-3000:]
        assert {k for k, _ in final} >= wanted  # nothing lost; duplicates allowed
        for _, value in final[:5]:
            jsonschema.validate(json.loads(value), load_schema("ArticleScored"))
        scored = decode(ArticleScored, final[-1][1])
        assert scored.model.name == "minilm-l6-india-us" and scored.scored_at is not None
        text = ""
        deadline = time.monotonic() + 30
        while "monitor_articles_scored_total{" not in text and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                text = _get(port, "/metrics")[1]
            time.sleep(0.2)
        assert 'monitor_model_info{name="minilm-l6-india-us"' in text
        assert "monitor_scorer_end_to_end_lag_seconds_count" in text
        assert 'monitor_build_info{stage="scorer"' in text
        status, body = _get(port, "/healthz")
        assert status == 200 and "minilm-l6-india-us" in body
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 0, out[-3000:]
        assert "scorer stopped" in out
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()


def _run_scorers(*runners):  # type: ignore[no-untyped-def]
    stop = threading.Event()
    threads = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    return stop, threads


def _stop(stop, threads, runners) -> None:  # type: ignore[no-untyped-def]
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    for runner in runners:
        runner.close()
    assert not any(t.is_alive() for t in threads)


def test_huge_poison_and_bad_versions_are_deadlettered_and_the_stream_goes_on(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    settings = make_settings(kafka_bootstrap, unique_name, batch_size=4, max_wait="100ms")
    topics = settings.kafka.topics
    bus = KafkaBus(settings.kafka)
    huge = b"\xff" + b"x" * 900_000  # fits the broker; its base64 copy (1.2 MB) would not
    record = json.loads(article(1).encode())
    values = [("art-0000", article(0).encode()), ("huge", huge)]
    values += [("v-true", json.dumps(record | {"schema_version": True}).encode())]
    values += [("v-float", json.dumps(record | {"schema_version": 1.0}).encode())]
    values += [(a.article_id, a.encode()) for a in map(article, range(2, 6))]
    publish(bus, topics.articles, values)
    runner = build_scorer(settings, bus, CollectorRegistry(), classifier=RuleClassifier())
    stop, threads = _run_scorers(runner)
    try:
        scored = read_topic(kafka_bootstrap, topics.scored, until=lambda r: len({k for k, _ in r}) >= 5)
        letters = read_topic(kafka_bootstrap, topics.deadletter, until=lambda r: len({k for k, _ in r}) >= 3)
    finally:
        _stop(stop, threads, [runner])
    assert {k for k, _ in scored} == {"art-0000", "art-0002", "art-0003", "art-0004", "art-0005"}
    dead = {k: decode(DeadLetter, v) for k, v in letters}
    assert set(dead) == {"huge", "v-true", "v-float"}
    assert dead["huge"].value_truncated and huge.startswith(dead["huge"].original_value)
    assert dead["huge"].value_size == len(huge)
    assert dead["huge"].value_sha256 == hashlib.sha256(huge).hexdigest()
    assert "schema_version must be an integer, got true" in dead["v-true"].reason
    assert "schema_version must be an integer, got 1.0" in dead["v-float"].reason


def test_the_limit_comes_from_the_broker_and_oversized_outputs_deadletter_their_input(
    kafka_broker_factory: Callable[..., Any], unique_name: Callable[[str], str]
) -> None:
    broker = kafka_broker_factory(config={"message.max.bytes": "200000"})
    settings = make_settings(broker.bootstrap, unique_name, batch_size=4, max_wait="100ms")
    topics = settings.kafka.topics
    bus = KafkaBus(settings.kafka)
    assert bus.read_size_limit() == 200_000
    capped = KafkaBus(settings.kafka.model_copy(update={"max_message_bytes": 150_000}))
    assert capped.max_message_bytes() == 150_000
    # The input fits the limit with 200 bytes to spare; its ArticleScored adds the judgement (relevance,
    # topics, stance, model, evidence: more than 200 bytes), so the output cannot fit.
    thin = article(1)
    room = 200_000 - RECORD_OVERHEAD - len(thin.article_id) - 200 - (len(thin.encode()) - len(thin.summary))
    fat = thin.model_copy(update={"summary": ("India and US trade. " * 10_000)[:room]})
    assert Message("t", thin.article_id, fat.encode()).size == 200_000 - 200
    publish(bus, topics.articles, [(a.article_id, a.encode()) for a in (article(0), fat, article(2))])
    runner = build_scorer(settings, bus, CollectorRegistry(), classifier=RuleClassifier())
    assert runner._producer.max_message_bytes == 200_000
    stop, threads = _run_scorers(runner)
    try:
        scored = read_topic(broker.bootstrap, topics.scored, until=lambda r: len({k for k, _ in r}) >= 2)
        letters = read_topic(broker.bootstrap, topics.deadletter, until=lambda r: len(r) >= 1)
    finally:
        _stop(stop, threads, [runner])
    assert {k for k, _ in scored} == {"art-0000", "art-0002"}
    [(key, value)] = letters
    letter = decode(DeadLetter, value)
    assert key == "art-0001" and letter.topic == topics.articles
    assert re.fullmatch(r"output too large: \d+ bytes > limit 200000", letter.reason), letter.reason
    assert letter.value_size == len(fat.encode())
    assert letter.value_sha256 == hashlib.sha256(fat.encode()).hexdigest()


def test_two_scorers_with_their_own_group_ids_each_score_every_record(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    settings = make_settings(kafka_bootstrap, unique_name, batch_size=4, max_wait="100ms")
    topics = settings.kafka.topics
    bus = KafkaBus(settings.kafka)
    publish(bus, topics.articles, [(a.article_id, a.encode()) for a in map(article, range(8))])
    runners = []
    for group in ("live", "v2"):
        copy = settings.model_copy(
            update={"scorer": settings.scorer.model_copy(update={"group_id": unique_name(group)})}
        )
        runners.append(build_scorer(copy, bus, CollectorRegistry(), classifier=RuleClassifier()))
    stop, threads = _run_scorers(*runners)
    try:
        scored = read_topic(kafka_bootstrap, topics.scored, until=lambda r: len(r) >= 16)
    finally:
        _stop(stop, threads, runners)
    keys = [k for k, _ in scored]
    assert all(keys.count(a.article_id) == 2 for a in map(article, range(8))), keys
