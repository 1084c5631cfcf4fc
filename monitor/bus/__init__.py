"""The message bus: one interface (:mod:`monitor.bus.base`), a Kafka and an in-process adapter."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.bus.base import Bus, Consumer, Message, Producer, Record, TopicSpec
from monitor.settings import Settings

__all__ = [
    "BUS_LOG_FILE",
    "Bus",
    "Consumer",
    "Message",
    "Producer",
    "Record",
    "TopicSpec",
    "make_bus",
    "topic_specs",
]


def topic_specs(settings: Settings, *, routed: Sequence[str] = ()) -> list[TopicSpec]:
    """The project's topics with partitions, replication, retention and compaction (DESIGN §2).

    ``routed``: the alert topics the config's routes name (:func:`monitor.alerts.routes.routed_topics`),
    laid out like the alert topic.
    """
    k = settings.kafka
    names = k.topics
    retention = str(int(k.retention.total_seconds() * 1000))
    dl_retention = str(int(k.deadletter_retention.total_seconds() * 1000))

    def spec(name: str, partitions: int, config: dict[str, str]) -> TopicSpec:
        return TopicSpec(name, partitions, k.replication_factor, config)

    return [
        spec(names.articles, k.partitions, {"retention.ms": retention, "cleanup.policy": "delete"}),
        spec(names.scored, k.partitions, {"retention.ms": retention, "cleanup.policy": "delete"}),
        # Latest value per signal key is what matters, but history feeds replays: compact and delete.
        spec(names.signals, k.partitions, {"retention.ms": retention, "cleanup.policy": "compact,delete"}),
        # Alerts are keyed by rule+subject; keep full history (the lifecycle) within retention.
        spec(names.alerts, k.partitions, {"retention.ms": retention, "cleanup.policy": "delete"}),
        *(
            spec(name, k.partitions, {"retention.ms": retention, "cleanup.policy": "delete"})
            for name in routed
            if name != names.alerts
        ),
        spec(names.deadletter, 1, {"retention.ms": dl_retention, "cleanup.policy": "delete"}),
        # Never written: its one partition is what the alerters' lease group hands to its leader.
        spec(names.alerter_lease, 1, {"retention.ms": retention, "cleanup.policy": "delete"}),
    ]


BUS_LOG_FILE = "bus.sqlite3"
"""The durable in-process bus's file, under ``state_dir``."""


def make_bus(settings: Settings, *, durable: bool = False) -> Bus:
    """The Kafka bus when bootstrap servers are configured, else an in-process bus.

    ``durable``: the in-process bus keeps its records and offsets in ``state_dir/bus.sqlite3`` (what
    ``monitor run`` uses), except the high-volume signals topic, which nothing downstream reads there.
    """
    if settings.uses_kafka:
        from monitor.bus.kafka import KafkaBus

        return KafkaBus(settings.kafka)
    from monitor.bus.buslog import BusLog
    from monitor.bus.memory import InProcessBus

    log = None
    if durable:
        log = BusLog(
            settings.state_path(BUS_LOG_FILE),
            retention=settings.kafka.retention,
            volatile_topics={settings.kafka.topics.signals},
        )
    return InProcessBus(default_partitions=settings.kafka.partitions, log=log)
