"""The bus contract on the Kafka adapter, against a real broker; plus a broker restart under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from bus_contract import DEADLINE, BusContract, drain

from monitor.bus import Bus, TopicSpec
from monitor.bus.kafka import KafkaBus
from monitor.errors import BusError
from monitor.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def bus(kafka_bootstrap: str) -> Bus:
    return KafkaBus(KafkaSettings(bootstrap_servers=kafka_bootstrap, session_timeout="10s"))


class TestKafkaBus(BusContract):
    pass


def test_unreachable_broker_is_a_retriable_bus_error() -> None:
    bus = KafkaBus(KafkaSettings(bootstrap_servers="127.0.0.1:1", request_timeout="2s"))
    with pytest.raises(BusError) as info:
        bus.create_topics([TopicSpec("x", 1)])
    assert info.value.retriable


def test_broker_restart_while_publishing_keeps_every_acknowledged_record(
    kafka_broker_factory: Callable[..., object], unique_name: Callable[[str], str]
) -> None:
    broker = kafka_broker_factory()
    bus = KafkaBus(
        KafkaSettings(
            bootstrap_servers=broker.bootstrap,  # type: ignore[attr-defined]
            request_timeout="5s",
            delivery_timeout="15s",
        )
    )
    topic = unique_name("restart")
    bus.create_topics([TopicSpec(topic, 3)])
    acked: list[int] = []
    failures: list[BusError] = []
    crashed: list[BaseException] = []
    stop = threading.Event()

    def publish() -> None:
        i = 0
        try:
            with bus.producer() as producer:
                while not stop.is_set():
                    try:
                        producer.publish(topic, f"k{i % 7}", str(i).encode())
                        acked.append(i)
                        i += 1
                    except BusError as exc:  # broker away: the same record is tried again
                        failures.append(exc)
        except BaseException as exc:  # reported by the test, not as an unhandled thread exception
            crashed.append(exc)

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while len(acked) < 50:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        broker.stop()  # type: ignore[attr-defined]
        before = len(acked)
        broker.start()  # type: ignore[attr-defined]  # same log dir, same port
        deadline = time.monotonic() + DEADLINE * 2
        while len(acked) < before + 50:  # the producer recovered
            assert time.monotonic() < deadline, f"producer did not recover: {failures[-3:]}"
            assert thread.is_alive()
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=DEADLINE)
    assert not thread.is_alive(), "the publisher did not stop"
    assert not crashed, f"the publisher failed: {crashed}"
    with bus.consumer([topic], group_id=None) as consumer:
        records = drain(consumer, len(acked), timeout=DEADLINE)
        while extra := consumer.poll(timeout=1.0):
            records.extend(extra)
    present = {int(r.value) for r in records}
    assert set(acked) <= present, f"lost acknowledged records: {sorted(set(acked) - present)[:10]}"


def test_reading_a_missing_topic_without_a_group_is_a_bus_error(
    bus: Bus, unique_name: Callable[[str], str]
) -> None:
    with pytest.raises(BusError, match="no such topic"):
        bus.consumer([unique_name("missing")], group_id=None)


def test_a_producer_outlives_a_broker_killed_for_longer_than_its_delivery_timeout(
    kafka_broker_factory: Callable[..., object], unique_name: Callable[[str], str]
) -> None:
    """kill -9, publishes fail (BusError, retriable) for longer than the delivery timeout, the broker comes
    back: the same Producer object publishes again, and no acknowledged record is lost."""
    broker = kafka_broker_factory()
    bus = KafkaBus(
        KafkaSettings(
            bootstrap_servers=broker.bootstrap,  # type: ignore[attr-defined]
            request_timeout="3s",
            delivery_timeout="6s",
        )
    )
    topic = unique_name("outlive")
    bus.create_topics([TopicSpec(topic, 1)])
    with bus.producer() as producer:
        producer.publish(topic, "k", b"before")
        broker.kill()  # type: ignore[attr-defined]
        with pytest.raises(BusError) as info:
            producer.publish(topic, "k", b"while-down")
        assert info.value.retriable
        broker.start()  # type: ignore[attr-defined]
        deadline = time.monotonic() + DEADLINE * 2
        while True:
            try:
                producer.publish(topic, "k", b"after")
                break
            except BusError as exc:
                assert time.monotonic() < deadline, f"producer did not recover: {exc}"
    with bus.consumer([topic], group_id=None) as consumer:
        values = {r.value for r in drain(consumer, 2, timeout=DEADLINE)}
    assert {b"before", b"after"} <= values


def test_a_producer_whose_client_thread_died_is_replaced(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """kafka-python's sender thread gone (as after an uncaught error in it): the next publish notices,
    closes that client and publishes through a new one instead of timing out forever."""
    bus = KafkaBus(KafkaSettings(bootstrap_servers=kafka_bootstrap))
    topic = unique_name("sender")
    bus.create_topics([TopicSpec(topic, 1)])
    with bus.producer() as producer:
        producer.publish(topic, "k", b"one")
        client = producer._producer  # type: ignore[attr-defined]
        client._sender.initiate_close()
        client._sender.join(10)
        assert not client._sender.is_alive()
        started = time.monotonic()
        producer.publish(topic, "k", b"two")
        assert time.monotonic() - started < 10
        assert producer._producer is not client and client._closed  # type: ignore[attr-defined]
    with bus.consumer([topic], group_id=None) as consumer:
        assert [r.value for r in drain(consumer, 2, timeout=DEADLINE)] == [b"one", b"two"]
