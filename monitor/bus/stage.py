"""The consume -> process -> publish -> commit loop every stage runs (at-least-once).

A batch's offsets are committed only after all its outputs, dead letters included, are acknowledged.
Records that fail to decode, or that the stage cannot process, go to the dead-letter topic with the
original bytes and the reason; the stream moves on. If publishing fails, the batch is rewound and
delivered again.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from monitor.bus.base import Consumer, Message, Producer, Record
from monitor.errors import BusError, DecodeError
from monitor.events import DeadLetter
from monitor.metrics import StageMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Item(Generic[T]):
    """A decoded record."""

    record: Record
    event: T


@dataclass(frozen=True, slots=True)
class Failure:
    """A record the stage could not process, and why."""

    record: Record
    reason: str


@dataclass
class BatchResult:
    """What processing a batch produced: messages to publish and records to dead-letter."""

    messages: list[Message] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def extend(self, other: BatchResult) -> None:
        self.messages.extend(other.messages)
        self.failures.extend(other.failures)


def deadletter_message(stage: str, topic: str, failure: Failure, *, now: datetime | None = None) -> Message:
    """The dead-letter record for ``failure``: original bytes, where they came from and the reason."""
    r = failure.record
    event = DeadLetter(
        stage=stage,
        reason=failure.reason,
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key,
        value_base64=base64.b64encode(r.value).decode("ascii"),
        at=now or datetime.now(UTC),
    )
    return Message(topic, r.key, event.encode())


class StageRunner(Generic[T]):
    """Runs one stage's loop over a consumer and a producer."""

    def __init__(
        self,
        *,
        stage: str,
        consumer: Consumer,
        producer: Producer,
        decode: Callable[[bytes], T],
        process: Callable[[Sequence[Item[T]]], BatchResult],
        deadletter_topic: str,
        metrics: StageMetrics,
        max_records: int = 100,
        max_wait: float = 0.5,
        poll_timeout: float = 1.0,
    ) -> None:
        self.stage = stage
        self._consumer = consumer
        self._producer = producer
        self._decode = decode
        self._process = process
        self._deadletter_topic = deadletter_topic
        self._metrics = metrics
        self._max_records = max_records
        self._max_wait = max_wait
        self._poll_timeout = poll_timeout
        for kind in ("process", "bus"):  # export the error series at zero from the start
            metrics.errors.labels(stage, kind)

    def _collect(self) -> list[Record]:
        """A micro-batch: up to ``max_records``, waiting at most ``max_wait`` after the first record."""
        records = self._consumer.poll(max_records=self._max_records, timeout=self._poll_timeout)
        if not records:
            return records
        deadline = time.monotonic() + self._max_wait
        while len(records) < self._max_records:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = self._consumer.poll(max_records=self._max_records - len(records), timeout=remaining)
            if not more:
                break
            records.extend(more)
        return records

    def _isolate(self, items: Sequence[Item[T]]) -> BatchResult:
        """Process ``items``; if the batch fails, retry one by one and dead-letter the ones that fail."""
        try:
            return self._process(items)
        except Exception as exc:
            self._metrics.errors.labels(self.stage, "process").inc()
            if len(items) == 1:
                log.warning(
                    "stage=%s cannot process record topic=%s partition=%s offset=%s: %r",
                    self.stage,
                    items[0].record.topic,
                    items[0].record.partition,
                    items[0].record.offset,
                    exc,
                )
                return BatchResult(failures=[Failure(items[0].record, f"processing failed: {exc!r}")])
            log.warning(
                "stage=%s batch of %d failed (%r); retrying record by record", self.stage, len(items), exc
            )
            result = BatchResult()
            for item in items:
                result.extend(self._isolate([item]))
            return result

    def step(self) -> int:
        """Process one micro-batch; return the number of records consumed."""
        records = self._collect()
        if not records:
            return 0
        started = time.perf_counter()
        items: list[Item[T]] = []
        failures: list[Failure] = []
        for record in records:
            try:
                items.append(Item(record, self._decode(record.value)))
            except DecodeError as exc:
                log.warning(
                    "stage=%s undecodable record topic=%s partition=%s offset=%s: %s",
                    self.stage,
                    record.topic,
                    record.partition,
                    record.offset,
                    exc.reason,
                )
                failures.append(Failure(record, f"undecodable: {exc.reason}"))
        result = self._isolate(items) if items else BatchResult()
        failures.extend(result.failures)
        out = list(result.messages)
        out.extend(deadletter_message(self.stage, self._deadletter_topic, f) for f in failures)
        try:
            self._producer.publish_all(out)
        except BusError:
            self._consumer.rewind(records)
            raise
        try:
            self._consumer.commit(records)
        except BusError as exc:
            if not exc.retriable:
                raise
            # The partitions moved to another member, which will process them again: duplicates, no loss.
            log.warning("stage=%s commit failed, records will be redelivered: %s", self.stage, exc)
        for record in records:
            self._metrics.consumed.labels(self.stage, record.topic).inc()
        for message in result.messages:
            self._metrics.published.labels(self.stage, message.topic).inc()
        for failure in failures:
            self._metrics.deadletters.labels(self.stage, failure.record.topic).inc()
        self._metrics.batch_seconds.labels(self.stage).observe(time.perf_counter() - started)
        self._metrics.last_progress.labels(self.stage).set(time.time())
        return len(records)

    def update_lag(self) -> None:
        """Export the consumer lag (records behind the end of each topic)."""
        per_topic: dict[str, int] = {}
        for (topic, _partition), lag in self._consumer.lag().items():
            per_topic[topic] = per_topic.get(topic, 0) + lag
        for topic, lag in per_topic.items():
            self._metrics.consumer_lag.labels(self.stage, topic).set(lag)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; retriable bus errors back off and retry, others propagate."""
        backoff = 1.0
        last_lag = 0.0
        while not stop.is_set():
            try:
                self.step()
                backoff = 1.0
                if time.monotonic() - last_lag > 5.0:
                    self.update_lag()
                    last_lag = time.monotonic()
            except BusError as exc:
                if not exc.retriable:
                    raise
                self._metrics.errors.labels(self.stage, "bus").inc()
                log.warning("stage=%s bus error, retrying in %.0fs: %s", self.stage, backoff, exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
