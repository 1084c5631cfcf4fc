"""The test broker itself: it answers real clients, and keeps its data across a restart."""

from __future__ import annotations

import socket
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0


def _produce(bootstrap: str, topic: str, values: list[bytes], *, partitions: int = 1) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5)
    try:
        futures = [
            producer.send(topic, key=b"k%d" % i, value=value, partition=i % partitions)
            for i, value in enumerate(values)
        ]
        producer.flush(timeout=TIMEOUT_S)
        for future in futures:
            future.get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=10)


def _consume(bootstrap: str, topic: str, group_id: str, count: int) -> list[tuple[int, bytes]]:
    """(partition, value) of the first ``count`` records the group reads, or fewer at the timeout."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((r.partition, r.value) for r in batch)
        consumer.commit()
    finally:
        consumer.close()
    return records


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        [described] = admin.describe_topics([topic])
        assert len(described["partitions"]) == partitions
    finally:
        admin.close()


def test_session_broker_round_trips_records_over_three_partitions(kafka_bootstrap, unique_name):
    topic = unique_name("topic")
    _create_topic(kafka_bootstrap, topic, partitions=3)
    values = [b"record-%d" % i for i in range(10)]

    _produce(kafka_bootstrap, topic, values, partitions=3)
    records = _consume(kafka_bootstrap, topic, unique_name("group"), count=10)

    assert sorted(v for _, v in records) == sorted(values)
    assert {p for p, _ in records} == {0, 1, 2}


def test_dedicated_broker_keeps_its_records_across_stop_kill_and_restart(kafka_broker_factory, unique_name):
    broker = kafka_broker_factory()
    bootstrap, log_dir = broker.bootstrap, broker.log_dir
    topic = unique_name("topic")
    _create_topic(bootstrap, topic, partitions=2)
    _produce(bootstrap, topic, [b"before-stop-%d" % i for i in range(5)], partitions=2)

    broker.stop()
    assert not broker.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=2).close()

    broker.start()
    assert (broker.bootstrap, broker.log_dir) == (bootstrap, log_dir)
    _produce(bootstrap, topic, [b"before-kill-%d" % i for i in range(5)], partitions=2)

    broker.kill()
    assert not broker.running
    broker.restart()
    assert broker.running

    records = _consume(bootstrap, topic, unique_name("group"), count=10)
    assert sorted(v for _, v in records) == sorted(
        [b"before-stop-%d" % i for i in range(5)] + [b"before-kill-%d" % i for i in range(5)]
    )
