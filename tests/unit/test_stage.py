"""The stage loop on the in-process bus: dead letters that always fit, oversized outputs, bus errors.

A toy stage (its output is its input, doubled) on a bus with a small record limit, so the sizes are easy
to reason about; the scorer's own wiring is in ``classify/test_scorer_stage.py``.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from monitor.bus.base import RECORD_OVERHEAD, Message, Producer, Record
from monitor.bus.memory import InProcessBus
from monitor.bus.stage import BatchResult, Failure, Item, StageRunner, deadletter_message
from monitor.errors import BusError, DecodeError
from monitor.events import DeadLetter, decode
from monitor.metrics import StageMetrics

LIMIT = 20_000
AT = datetime(2026, 2, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "size", [0, 1, 100, 10_000, 14_000, 14_500, 15_000, 19_000, 20_000, 100_000, 1_000_003]
)
@pytest.mark.parametrize("key", [None, "k", "k" * 300])
def test_a_deadletter_always_fits_and_keeps_what_it_can(size: int, key: str | None) -> None:
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    record = Record("news.articles", 2, 41, key, value)
    message = deadletter_message(
        "scorer", "dlq", Failure(record, "undecodable: x" * 1000), max_bytes=LIMIT, now=AT
    )
    assert message.size <= LIMIT and message.key == key and message.topic == "dlq"
    letter = decode(DeadLetter, message.value)
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("news.articles", 2, 41, key)
    assert letter.value_size == size and letter.value_sha256 == hashlib.sha256(value).hexdigest()
    kept = letter.original_value
    assert value.startswith(kept)
    assert letter.value_truncated == (kept != value)
    if letter.value_truncated:  # nearly all the room is used
        assert message.size > LIMIT - 8
    assert len(letter.reason) <= 2000


def test_a_deadletter_of_a_small_record_is_a_whole_copy() -> None:
    record = Record("in", 0, 7, "a", b"\xffraw")
    letter = decode(DeadLetter, deadletter_message("s", "dlq", Failure(record, "bad"), now=AT).value)
    assert letter.original_value == b"\xffraw" and not letter.value_truncated
    assert letter.value_base64 == base64.b64encode(b"\xffraw").decode()


def _decode(value: bytes) -> bytes:
    if value.startswith(b"bad"):
        raise DecodeError("starts with bad")
    return value


def _double(items: Sequence[Item[bytes]]) -> BatchResult:
    return BatchResult(messages=[Message("out", i.record.key, i.event * 2, source=i.record) for i in items])


def _runner(bus: InProcessBus, producer: Producer | None = None, process=_double) -> StageRunner[bytes]:  # type: ignore[no-untyped-def]
    return StageRunner(
        stage="toy",
        consumer=bus.consumer(["in"], group_id="toy"),
        producer=producer or bus.producer(),
        decode=_decode,
        process=process,
        deadletter_topic="dlq",
        metrics=StageMetrics(CollectorRegistry()),
        max_records=10,
        max_wait=0.01,
        poll_timeout=0.05,
    )


def _publish(bus: InProcessBus, values: Sequence[tuple[str, bytes]]) -> None:
    with bus.producer() as producer:
        producer.publish_all([Message("in", k, v) for k, v in values])


def test_the_bus_refuses_records_over_its_limit() -> None:
    bus = InProcessBus(default_partitions=1, max_message_bytes=LIMIT)
    with bus.producer() as producer:
        assert producer.max_message_bytes == LIMIT
        producer.publish("in", None, b"x" * (LIMIT - RECORD_OVERHEAD))
        with pytest.raises(BusError, match="larger than the limit") as info:
            producer.publish("in", None, b"x" * (LIMIT - RECORD_OVERHEAD + 1))
    assert not info.value.retriable
    assert InProcessBus().producer().max_message_bytes == 1024 * 1024


def test_oversized_outputs_and_inputs_are_deadlettered_and_the_stream_moves_on() -> None:
    bus = InProcessBus(default_partitions=1, max_message_bytes=LIMIT)
    big = b"y" * 12_000  # fits the bus, its doubled output does not
    poison = b"bad" + b"z" * (LIMIT - RECORD_OVERHEAD - 10)  # undecodable, and too big to copy whole
    _publish(bus, [("a", b"first"), ("big", big), ("poison", poison), ("b", b"last")])
    runner = _runner(bus)
    assert runner.step() == 4
    assert [(r.key, r.value) for r in bus.records("out")] == [("a", b"firstfirst"), ("b", b"lastlast")]
    letters = {r.key: decode(DeadLetter, r.value) for r in bus.records("dlq")}
    assert set(letters) == {"big", "poison"}
    size = len(big) * 2 + len("big") + RECORD_OVERHEAD
    assert letters["big"].reason == f"output too large: {size} bytes > limit {LIMIT}"
    assert letters["big"].original_value == big and not letters["big"].value_truncated
    assert (letters["big"].topic, letters["big"].offset) == ("in", 1)
    assert letters["poison"].reason == "undecodable: starts with bad"
    assert letters["poison"].value_truncated and poison.startswith(letters["poison"].original_value)
    assert letters["poison"].value_size == len(poison)
    assert letters["poison"].value_sha256 == hashlib.sha256(poison).hexdigest()
    assert runner.step() == 0  # all committed
    with bus.consumer(["in"], group_id="toy") as again:
        assert again.poll(timeout=0.05) == []


def test_an_oversized_output_without_a_source_is_deadlettered_as_itself() -> None:
    bus = InProcessBus(default_partitions=1, max_message_bytes=LIMIT)

    def summary(items: Sequence[Item[bytes]]) -> BatchResult:
        return BatchResult(messages=[Message("out", "sum", b"s" * LIMIT), Message("out", "ok", b"fine")])

    _publish(bus, [("a", b"one")])
    runner = _runner(bus, process=summary)
    assert runner.step() == 1
    assert [r.key for r in bus.records("out")] == ["ok"]
    [record] = bus.records("dlq")
    letter = decode(DeadLetter, record.value)
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("out", -1, -1, "sum")
    assert letter.reason.startswith("output too large") and letter.value_truncated
    assert letter.value_size == LIMIT


class _RefusingProducer(Producer):
    """Refuses the first ``failures`` publishes with a non-retriable error."""

    def __init__(self, inner: Producer, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0

    def publish_all(self, messages: Sequence[Message]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise BusError("publishing: MessageSizeTooLargeError", retriable=False)
        self.inner.publish_all(messages)

    @property
    def max_message_bytes(self) -> int:
        return self.inner.max_message_bytes

    def close(self) -> None:
        self.inner.close()


def test_a_non_retriable_bus_error_backs_off_and_retries_instead_of_ending_the_loop() -> None:
    bus = InProcessBus(default_partitions=1)
    producer = _RefusingProducer(bus.producer(), failures=1)
    runner = _runner(bus, producer=producer)
    _publish(bus, [("a", b"one"), ("b", b"two")])
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = datetime.now(UTC).timestamp() + 20
        while len(bus.records("out")) < 2 and datetime.now(UTC).timestamp() < deadline:
            stop.wait(0.05)
            assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert producer.calls >= 2
    assert sorted(r.key for r in bus.records("out")) == ["a", "b"]  # the refused batch came again
