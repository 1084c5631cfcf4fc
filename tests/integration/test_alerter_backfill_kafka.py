"""A first start on the test broker: the back catalogue on ``news.scored`` is folded in at its event times,
the past alerts are on the alert topic marked ``backfill`` and notified to no one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fixtures import scenarios
from prometheus_client import CollectorRegistry

from monitor.bus import topic_specs
from monitor.bus.base import Message
from monitor.bus.kafka import KafkaBus
from monitor.config import load_config
from monitor.events import AlertFiring, SignalUpdated, decode, decode_alert
from monitor.settings import AlerterSettings, KafkaSettings, MetricsSettings, Settings, TopicNames

pytestmark = pytest.mark.integration

POLL = datetime(2025, 8, 6, 0, 0, tzinfo=UTC)


def read_all(bus: KafkaBus, topic: str) -> list[bytes]:
    values: list[bytes] = []
    with bus.consumer([topic], group_id=None, from_beginning=True) as consumer:
        while any(consumer.lag().values()):
            values += [r.value for r in consumer.poll(max_records=1000, timeout=1.0)]
    return values


def test_first_start_on_kafka_folds_in_the_back_catalogue(kafka_bootstrap, unique_name, tmp_path):
    from pipelines.alerter import build_alerter

    topics = {t: unique_name(t) for t in ("articles", "scored", "signals", "alerts", "deadletter")}
    settings = Settings(
        state_dir=tmp_path,
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topics=TopicNames(**topics)),
        alerter=AlerterSettings(idle_advance=False, group_id=unique_name("g")),
        metrics=MetricsSettings(port=0),
    )
    articles = [
        a.model_copy(update={"fetched_at": POLL, "scored_at": POLL + timedelta(seconds=30)})
        for a in scenarios.load("tariff_shock").articles
    ]
    bus = KafkaBus(settings.kafka)
    bus.create_topics(topic_specs(settings))
    with bus.producer() as producer:
        producer.publish_all([Message(topics["scored"], a.article_id, a.encode()) for a in articles])
    start = datetime.now(UTC)  # the broker stamps records with its clock: the start is after them
    notified: list[object] = []
    stage = build_alerter(
        settings, load_config(None), bus, CollectorRegistry(), on_alert=notified.append, clock=lambda: start
    )
    try:
        assert stage.backfilling
        deadline = time.monotonic() + 60  # joining the group takes a few seconds
        while (stage.runner.step() or stage.backfilling) and time.monotonic() < deadline:
            pass
        assert not stage.backfilling
    finally:
        stage.close()
    alerts = [decode_alert(v) for v in read_all(bus, topics["alerts"])]
    signals = [decode(SignalUpdated, v) for v in read_all(bus, topics["signals"])]
    bus.close()
    assert {a.rule for a in alerts if isinstance(a, AlertFiring)} == {
        "tariff_strain_high",
        "relationship_shift",
    }
    assert all(a.backfill for a in alerts)
    assert notified == []
    assert len({s.at.date() for s in signals}) >= 7  # the past week, at once
