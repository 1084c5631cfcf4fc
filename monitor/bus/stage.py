"""The consume -> process -> publish -> commit loop every stage runs (at-least-once).

A batch's offsets are committed only after all its outputs, dead letters included, are acknowledged.
Records that fail to decode, or that the stage cannot process, go to the dead-letter topic with the
original bytes (as many as fit in one record: see :func:`deadletter_message`) and the reason; the stream
moves on. An output larger than the bus's record limit is not published: the input that produced it is
dead-lettered instead. If publishing fails, the batch is rewound and delivered again, after a backoff,
whatever the error: no record can make a stage exit. The order of a batch's end (outputs acknowledged,
state saved, offsets committed) is :class:`Checkpoint`'s, the same for every stage.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from monitor.bus.base import DEFAULT_MAX_MESSAGE_BYTES, RECORD_OVERHEAD, Consumer, Message, Producer, Record
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


MAX_REASON_CHARS = 2000
"""Longer reasons are cut (an exception's text can be as long as the record it quotes)."""


def deadletter_message(
    stage: str,
    topic: str,
    failure: Failure,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    now: datetime | None = None,
) -> Message:
    """The dead-letter record for ``failure``: original bytes, where they came from and the reason.

    The record always fits in ``max_bytes`` (as :attr:`Message.size` counts): when the whole original value
    would not, ``value_base64`` holds only its first bytes and ``value_truncated`` is true; ``value_size``
    and ``value_sha256`` are those of the whole original either way.
    """
    r = failure.record
    reason = failure.reason
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    skeleton = DeadLetter(
        stage=stage,
        reason=reason,
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key,
        value_base64="",
        value_size=len(r.value),
        value_sha256=hashlib.sha256(r.value).hexdigest(),
        value_truncated=False,  # "false" is the longer of the two: the budget holds for either
        at=now or datetime.now(UTC),
    )
    key_bytes = len(r.key.encode("utf-8")) if r.key is not None else 0
    room = max_bytes - RECORD_OVERHEAD - key_bytes - len(skeleton.encode())
    truncated = 4 * ((len(r.value) + 2) // 3) > room
    kept = r.value[: max(room, 0) // 4 * 3] if truncated else r.value
    event = skeleton.model_copy(
        update={"value_base64": base64.b64encode(kept).decode("ascii"), "value_truncated": truncated}
    )
    return Message(topic, r.key, event.encode())


class Stage(Protocol):
    """What every stage is to ``monitor run`` and to the stage processes: the poller, the scorer and the
    alerter all have this shape."""

    name: str

    def step(self) -> int:
        """Do one unit of work now (a micro-batch; for the poller, a poll of every feed); return how many
        records it took in (0: nothing to do)."""
        ...

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set (the poller: on its schedule; the others: step after step)."""
        ...

    def flush(self) -> object:
        """The input has ended (``monitor run --once``): finish what is pending."""
        ...

    def health(self) -> tuple[bool, str]:
        """For ``/healthz``: whether the stage works, and a short reason."""
        ...

    def close(self) -> None:
        """Release what the stage holds (clients, state files)."""
        ...


class StageState(Protocol):
    """A stage's own state, kept in step with its outputs by a :class:`Checkpoint`."""

    def outgoing(self, messages: Sequence[Message]) -> list[Message]:
        """Of a batch's outputs, those to publish (for example not those already on the bus)."""
        ...

    def save(self) -> None:
        """The outputs are acknowledged: persist the state that produced them (before offsets move)."""
        ...

    def discard(self) -> None:
        """Publishing failed: go back to the state last saved (the batch will be done again)."""
        ...


class Checkpoint:
    """The order every stage keeps: outputs acknowledged -> state saved -> input offsets committed.

    :meth:`commit` publishes a batch's outputs and returns once the bus acknowledged them; then it saves
    the stage's state (``state``, and a ``save`` of the call's own); only then are the input records'
    offsets committed. A failed publish discards the state back to the last saved one and rewinds the
    input (everything is done again: duplicates, never a loss); a crash between the steps leaves at worst
    outputs published twice, which consumers deduplicate by key.
    """

    def __init__(
        self, producer: Producer, consumer: Consumer | None = None, *, state: StageState | None = None
    ) -> None:
        self.producer = producer
        self._consumer = consumer
        self._state = state

    def commit(
        self,
        outputs: Sequence[Message],
        records: Sequence[Record] = (),
        *,
        save: Callable[[], None] | None = None,
    ) -> list[Message]:
        """Publish ``outputs``, save, commit ``records``; return what was published."""
        out = list(outputs) if self._state is None else self._state.outgoing(outputs)
        try:
            self.producer.publish_all(out)
        except BusError:
            if self._state is not None:
                self._state.discard()
            if self._consumer is not None and records:
                self._consumer.rewind(records)
            raise
        if self._state is not None:
            self._state.save()
        if save is not None:
            save()
        if self._consumer is not None and records:
            try:
                self._consumer.commit(records)
            except BusError as exc:
                if not exc.retriable:
                    raise
                # The partitions moved to another member, which will process them again: duplicates only.
                log.warning("commit failed, the records will be redelivered: %s", exc)
        return out


class StageRunner(Generic[T]):
    """Runs one stage's loop over a consumer and a producer, through one :class:`Checkpoint` (a
    :class:`Stage`: ``flush`` has nothing to finish, ``health`` says it runs; subclasses say more)."""

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
        state: StageState | None = None,
    ) -> None:
        self.stage = self.name = stage
        self._consumer = consumer
        self._producer = producer
        self.checkpoint = Checkpoint(producer, consumer, state=state)
        self._decode = decode
        self._process = process
        self._deadletter_topic = deadletter_topic
        self._metrics = metrics
        self._max_records = max_records
        self._max_wait = max_wait
        self._poll_timeout = poll_timeout
        # A standby (see monitor/alerts/stage.py) processes like the active member but publishes nothing, not
        # even dead letters: the producer is still called, with nothing, so a stage can save its state.
        self.silent = False
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

    def _fitting(self, messages: Sequence[Message], limit: int) -> tuple[list[Message], list[Failure]]:
        """The messages that fit in ``limit``; for the others, the failures to dead-letter instead.

        An oversized output's input (its ``source``) is dead-lettered, and nothing else made from that input
        is published; an output without a source is dead-lettered itself (truncated), with offset -1.
        """
        failures: list[Failure] = []
        failed: set[tuple[str, int, int]] = set()
        for message in messages:
            size = message.size
            if size <= limit:
                continue
            reason = f"output too large: {size} bytes > limit {limit}"
            self._metrics.errors.labels(self.stage, "process").inc()
            source = message.source
            if source is None:
                log.error(
                    "stage=%s output to %s key=%s dropped: %s", self.stage, message.topic, message.key, reason
                )
                failures.append(Failure(Record(message.topic, -1, -1, message.key, message.value), reason))
                continue
            log.warning(
                "stage=%s record topic=%s partition=%s offset=%s dead-lettered: %s",
                self.stage,
                source.topic,
                source.partition,
                source.offset,
                reason,
            )
            where = (source.topic, source.partition, source.offset)
            if where not in failed:
                failed.add(where)
                failures.append(Failure(source, reason))
        fitting = [
            m
            for m in messages
            if m.size <= limit
            and (m.source is None or (m.source.topic, m.source.partition, m.source.offset) not in failed)
        ]
        return fitting, failures

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
        limit = self._producer.max_message_bytes
        published, too_large = self._fitting(result.messages, limit)
        failures.extend(too_large)
        out = list(published)
        out.extend(
            deadletter_message(self.stage, self._deadletter_topic, f, max_bytes=limit) for f in failures
        )
        if self.silent:
            published, failures, out = [], [], []
        sent = {id(m) for m in self.checkpoint.commit(out, records)}
        published = [m for m in published if id(m) in sent]
        for record in records:
            self._metrics.consumed.labels(self.stage, record.topic).inc()
        for message in published:
            self._metrics.published.labels(self.stage, message.topic).inc()
        for failure in failures:
            self._metrics.deadletters.labels(self.stage, failure.record.topic).inc()
        self._metrics.batch_seconds.labels(self.stage).observe(time.perf_counter() - started)
        self._metrics.last_progress.labels(self.stage).set(time.time())
        return len(records)

    def flush(self) -> object:
        """Nothing is pending between batches."""
        return None

    def health(self) -> tuple[bool, str]:
        return True, f"ok: {self.stage}"

    def close(self) -> None:
        """The caller owns the consumer and the producer."""

    def update_lag(self) -> None:
        """Export the consumer lag (records behind the end of each topic)."""
        per_topic: dict[str, int] = {}
        for (topic, _partition), lag in self._consumer.lag().items():
            per_topic[topic] = per_topic.get(topic, 0) + lag
        for topic, lag in per_topic.items():
            self._metrics.consumer_lag.labels(self.stage, topic).set(lag)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; bus errors back off (capped, exponential) and retry.

        Non-retriable ones too, logged as errors: outputs too large for the bus are dead-lettered before
        publishing, so what is left is the bus refusing the stage itself (permissions, a topic that is
        gone), and a stage that exits would only be restarted into the same error.
        """
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
                self._metrics.errors.labels(self.stage, "bus").inc()
                if exc.retriable:
                    log.warning("stage=%s bus error, retrying in %.0fs: %s", self.stage, backoff, exc)
                else:
                    log.error(
                        "stage=%s bus error (not retriable), retrying in %.0fs: %s", self.stage, backoff, exc
                    )
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
