"""Behaviour every bus adapter must show; subclassed once per adapter (in-process and Kafka).

A subclass provides the fixtures ``bus`` (a :class:`monitor.bus.Bus`) and ``unique_name`` (a function
making fresh topic names and group ids).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from samples import ALL_EVENTS, article

from monitor.bus import Bus, Consumer, Record, TopicSpec
from monitor.bus.base import Message
from monitor.bus.stage import BatchResult, Item, StageRunner
from monitor.events import ArticleFetched, DeadLetter, decode, decode_any
from monitor.metrics import StageMetrics

DEADLINE = 60.0


def drain(consumer: Consumer, count: int, *, timeout: float = DEADLINE) -> list[Record]:
    """Poll until ``count`` records arrived (or fail after ``timeout`` seconds)."""
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        assert time.monotonic() < deadline, f"only {len(out)} of {count} records within {timeout}s"
        out.extend(consumer.poll(max_records=count - len(out), timeout=0.5))
    return out


def assert_quiet(consumer: Consumer, *, seconds: float = 2.0) -> None:
    """Nothing more arrives within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        extra = consumer.poll(max_records=10, timeout=0.5)
        assert not extra, f"unexpected records: {extra}"


class BusContract:
    def topic(self, bus: Bus, unique_name: Callable[[str], str], partitions: int = 3) -> str:
        name = unique_name("topic")
        assert bus.create_topics([TopicSpec(name, partitions)]) == [name]
        return name

    def test_create_topics_is_idempotent(self, bus: Bus, unique_name: Callable[[str], str]) -> None:
        name = unique_name("topic")
        assert bus.create_topics([TopicSpec(name, 2)]) == [name]
        assert bus.create_topics([TopicSpec(name, 2)]) == []

    def test_every_event_type_round_trips(self, bus: Bus, unique_name: Callable[[str], str]) -> None:
        topic = self.topic(bus, unique_name, partitions=1)
        events = [make() for make in ALL_EVENTS]
        with bus.producer() as producer:
            producer.publish_all([Message(topic, f"k{i}", e.encode()) for i, e in enumerate(events)])
        with bus.consumer([topic], group_id=unique_name("g")) as consumer:
            records = drain(consumer, len(events))
        assert [decode_any(r.value) for r in records] == events
        assert [r.key for r in records] == [f"k{i}" for i in range(len(events))]

    def test_same_key_keeps_its_order(self, bus: Bus, unique_name: Callable[[str], str]) -> None:
        topic = self.topic(bus, unique_name)
        with bus.producer() as producer:
            producer.publish_all([Message(topic, f"key{i % 5}", f"{i % 5}:{i}".encode()) for i in range(50)])
        with bus.consumer([topic], group_id=unique_name("g")) as consumer:
            records = drain(consumer, 50)
        for key in range(5):
            seq = [int(r.value.split(b":")[1]) for r in records if r.key == f"key{key}"]
            assert seq == sorted(seq) and len(seq) == 10
            assert len({r.partition for r in records if r.key == f"key{key}"}) == 1

    def test_uncommitted_records_come_back_after_restart(
        self, bus: Bus, unique_name: Callable[[str], str]
    ) -> None:
        topic = self.topic(bus, unique_name, partitions=1)
        group = unique_name("g")
        with bus.producer() as producer:
            producer.publish_all([Message(topic, None, f"r{i}".encode()) for i in range(10)])
        with bus.consumer([topic], group_id=group) as first:
            records = drain(first, 10)
            first.commit(records[:4])  # processed 4, then the consumer stops
        with bus.consumer([topic], group_id=group) as second:
            again = drain(second, 6)
            assert [r.value for r in again] == [f"r{i}".encode() for i in range(4, 10)]
            assert_quiet(second, seconds=1.0)
            second.commit(again)
        with bus.consumer([topic], group_id=group) as third:
            assert_quiet(third, seconds=2.0)

    def test_group_members_share_partitions_and_see_each_record_once(
        self, bus: Bus, unique_name: Callable[[str], str]
    ) -> None:
        topic = self.topic(bus, unique_name, partitions=3)
        group = unique_name("g")
        with bus.consumer([topic], group_id=group) as a, bus.consumer([topic], group_id=group) as b:
            deadline = time.monotonic() + DEADLINE
            while True:  # poll both until the group settled on a split of the 3 partitions
                assert time.monotonic() < deadline, "group did not settle"
                assert not a.poll(timeout=0.2) and not b.poll(timeout=0.2)
                pa, pb = a.assignment(), b.assignment()
                if pa and pb and not pa & pb and len(pa | pb) == 3:
                    break
            with bus.producer() as producer:
                producer.publish_all([Message(topic, f"key-{i}", f"v{i}".encode()) for i in range(60)])
            seen: dict[str, list[bytes]] = {"a": [], "b": []}
            deadline = time.monotonic() + DEADLINE
            while len(seen["a"]) + len(seen["b"]) < 60:
                assert time.monotonic() < deadline
                for name, consumer in (("a", a), ("b", b)):
                    got = consumer.poll(max_records=100, timeout=0.2)
                    consumer.commit(got)
                    seen[name].extend(r.value for r in got)
            assert_quiet(a, seconds=1.0)
            assert_quiet(b, seconds=1.0)
        assert sorted(seen["a"] + seen["b"]) == sorted(f"v{i}".encode() for i in range(60))
        assert seen["a"] and seen["b"]

    def test_undecodable_record_is_dead_lettered_and_the_stream_continues(
        self, bus: Bus, unique_name: Callable[[str], str]
    ) -> None:
        source, sink, dead = (self.topic(bus, unique_name, partitions=1) for _ in range(3))
        group = unique_name("g")
        garbage = b"\xff\xfe not json"
        with bus.producer() as producer:
            producer.publish_all(
                [
                    Message(source, "a0001", article(1).encode()),
                    Message(source, "bad", garbage),
                    Message(source, "a0003", b'{"schema_version": 99}'),
                    Message(source, "a0002", article(2).encode()),
                ]
            )

        def process(items: list[Item[ArticleFetched]]) -> BatchResult:
            return BatchResult(messages=[Message(sink, i.event.article_id, i.event.encode()) for i in items])

        consumer = bus.consumer([source], group_id=group)
        producer = bus.producer()
        runner: StageRunner[ArticleFetched] = StageRunner(
            stage="test",
            consumer=consumer,
            producer=producer,
            decode=lambda b: decode(ArticleFetched, b),
            process=process,  # type: ignore[arg-type]
            deadletter_topic=dead,
            metrics=StageMetrics(CollectorRegistry()),
            max_records=10,
            max_wait=0.5,
        )
        consumed = 0
        deadline = time.monotonic() + DEADLINE
        while consumed < 4:
            assert time.monotonic() < deadline
            consumed += runner.step()
        consumer.close()
        producer.close()

        with bus.consumer([sink, dead], group_id=unique_name("check")) as check:
            records = drain(check, 4)
        outputs = [decode(ArticleFetched, r.value).article_id for r in records if r.topic == sink]
        assert outputs == ["a0001", "a0002"]
        letters = [decode(DeadLetter, r.value) for r in records if r.topic == dead]
        assert [(d.topic, d.partition, d.offset, d.key) for d in letters] == [
            (source, 0, 1, "bad"),
            (source, 0, 2, "a0003"),
        ]
        assert base64.b64decode(letters[0].value_base64) == garbage
        assert "not UTF-8" in letters[0].reason
        assert "schema_version 99" in letters[1].reason
        with bus.consumer([source], group_id=group) as again:  # offsets were committed
            assert_quiet(again, seconds=2.0)

    def test_end_offsets_and_a_bounded_read_stop_at_the_start(
        self, bus: Bus, unique_name: Callable[[str], str]
    ) -> None:
        from monitor.bus.bounded import Bounded

        topic = self.topic(bus, unique_name, partitions=2)
        with bus.producer() as producer:
            producer.publish_all([Message(topic, f"k{i}", b"before") for i in range(6)])
            with bus.consumer([topic], group_id=None) as plain:
                ends = plain.end_offsets()
                assert set(ends) == {(topic, 0), (topic, 1)} and sum(ends.values()) == 6
            bounded = Bounded(bus.consumer([topic], group_id=None))
            try:
                producer.publish_all([Message(topic, f"k{i}", b"after") for i in range(6)])
                got: list[Record] = []
                deadline = time.monotonic() + DEADLINE
                while not bounded.done:
                    assert time.monotonic() < deadline, f"bounded read not done after {len(got)} records"
                    got.extend(bounded.poll(max_records=4, timeout=0.5))
            finally:
                bounded.close()
        assert sorted(r.value for r in got) == [b"before"] * 6
