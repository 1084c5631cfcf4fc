"""``monitor status`` on the test broker: the latest signal per key and the firing episodes, read from the
signals and alert topics as they were published."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fixtures import scenarios
from fixtures.scenarios import run_engine

from monitor.bus import topic_specs
from monitor.bus.base import Message
from monitor.bus.kafka import KafkaBus
from monitor.config import load_config
from monitor.events import AlertFiring, AlertResolved, SignalUpdated
from monitor.settings import KafkaSettings, Settings, TopicNames
from pipelines.status import kafka_status

pytestmark = pytest.mark.integration


def test_kafka_status_shows_the_latest_signals_and_the_firing_alerts(kafka_bootstrap, unique_name):
    topics = {t: unique_name(t) for t in ("articles", "scored", "signals", "alerts", "deadletter")}
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topics=TopicNames(**topics)))
    # What an alerter publishes for the tariff scenario up to the next morning: the tariff alert still
    # firing, the relationship shift fired and resolved (at 22:00 on the day of the tariffs).
    until = datetime(2025, 8, 5, 7, 0, tzinfo=UTC)
    articles = [a for a in scenarios.load("tariff_shock").articles if a.scored_at <= until]
    outputs = run_engine(articles, load_config(None), end=False)
    signals = [o for o in outputs if isinstance(o, SignalUpdated)]
    alerts = [o for o in outputs if isinstance(o, AlertFiring | AlertResolved)]
    bus = KafkaBus(settings.kafka)
    bus.create_topics(topic_specs(settings))
    with bus.producer() as producer:
        producer.publish_all(
            [Message(topics["signals"], s.key, s.encode()) for s in signals]
            + [Message(topics["alerts"], a.key, a.encode()) for a in alerts]
        )
    bus.close()

    status = kafka_status(settings)

    latest = {s.key: s for s in signals}  # in publication order: the last one per key wins
    last_event = {a.alert_id: a for a in alerts}
    assert status.as_of == max(s.at for s in signals)
    for row in status.subjects:
        for window, figures in (("24h", row.short), ("7d", row.long)):
            stance = latest.get(f"stance_index/{row.subject}/{window}")
            volume = latest.get(f"volume/{row.subject}/{window}")
            assert figures.stance_index == (None if stance is None else stance.value)
            assert figures.articles == (0 if volume is None else volume.articles)
    firing = {i for i, a in last_event.items() if isinstance(a, AlertFiring)}
    assert firing and {a.alert_id for a in status.firing} == firing
    # An episode that fired and resolved before the end is not firing.
    resolved = {a.alert_id for a in alerts if isinstance(a, AlertResolved)}
    assert {last_event[i].rule for i in resolved} == {"relationship_shift"}
    assert {a.rule for a in status.firing} == {"tariff_strain_high"}
