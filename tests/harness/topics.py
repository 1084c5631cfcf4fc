"""Reading a whole Kafka topic in tests, with kafka-python directly (not through the project's bus)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition


def read_topic(
    bootstrap: str, topic: str, *, at_least: int = 0, timeout: float = 60.0
) -> list[tuple[str, bytes]]:
    """Every record of ``topic`` (key, value) up to the end offsets, once there are ``at_least``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        while True:
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = consumer.end_offsets(partitions) if partitions else {}
            if sum(ends.values()) >= at_least and partitions:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: fewer than {at_least} records after {timeout}s")
            time.sleep(0.2)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        out: list[tuple[str, bytes]] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: could not read to the end in {timeout}s")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                out.extend((r.key.decode(), r.value) for r in batch if r.offset < ends[tp])
        return out
    finally:
        consumer.close()
