"""In-process bus: the same semantics as Kafka (partitions, per-key order, groups, commits) in one process.

Used by ``monitor run`` when no broker is configured and by unit tests. Thread-safe: stages may run in
threads of one process. By default it lives in memory; with a :class:`~monitor.bus.buslog.BusLog` it
is durable: publishes and commits are written to SQLite before they return, and a new process resumes
from the file (what ``monitor run`` uses, so kill -9 loses nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count

from monitor.bus.base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Bus,
    Consumer,
    Lease,
    Message,
    Producer,
    Record,
    TopicSpec,
    first_offsets,
    partition_for,
)
from monitor.bus.buslog import BusLog
from monitor.errors import BusError


@dataclass
class _Partition:
    """Records from offset ``base`` on (older ones were pruned)."""

    base: int = 0
    records: list[Record] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.records)

    def read(self, offset: int, limit: int) -> list[Record]:
        start = max(offset, self.base) - self.base
        return self.records[start : start + limit]


@dataclass
class _Topic:
    partitions: list[_Partition]


@dataclass
class _Group:
    members: list[InProcessConsumer] = field(default_factory=list)
    generation: int = 0
    committed: dict[tuple[str, int], int] = field(default_factory=dict)


class InProcessBus(Bus):
    """A bus inside one process.

    ``clock`` stamps records (seconds since the epoch, like a broker's). Like a broker, it refuses
    records larger than ``max_message_bytes`` (:attr:`Message.size`).
    """

    name = "in-process"

    def __init__(
        self,
        *,
        default_partitions: int = 3,
        log: BusLog | None = None,
        clock: Callable[[], float] = time.time,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._clock = clock
        self.max_message_bytes = max_message_bytes
        self._cond = threading.Condition()
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._leases: dict[tuple[str, str], list[_InProcessLease]] = {}
        self._default_partitions = default_partitions
        self._keyless = count()
        self._log = log
        if log is not None:
            self._restore(log)

    def _restore(self, log: BusLog) -> None:
        loaded = log.load()
        for name, partitions in loaded.topics.items():
            self._topics[name] = _Topic(
                [_Partition(base=loaded.bases.get((name, p), 0)) for p in range(partitions)]
            )
        for record in loaded.records:
            self._topics[record.topic].partitions[record.partition].records.append(record)
        for (group_id, topic, partition), offset in loaded.offsets.items():
            self._groups.setdefault(group_id, _Group()).committed[(topic, partition)] = offset

    def _new_topic(self, name: str, partitions: int) -> _Topic:
        if self._log is not None:
            self._log.add_topic(name, partitions)
        topic = self._topics[name] = _Topic([_Partition() for _ in range(partitions)])
        return topic

    # -- topics -------------------------------------------------------------------------------------
    def create_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        created = []
        with self._cond:
            for spec in specs:
                if spec.name not in self._topics:
                    self._new_topic(spec.name, spec.partitions)
                    created.append(spec.name)
            self._rebalance_all()
        return created

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:  # auto-create, like a broker with auto.create.topics.enable
            topic = self._new_topic(name, self._default_partitions)
            self._rebalance_all()
        return topic

    def records(self, topic: str) -> list[Record]:
        """Every record of ``topic`` (for tests and tools), partition by partition."""
        with self._cond:
            return [r for part in self._topic(topic).partitions for r in part.records]

    # -- producing ------------------------------------------------------------------------------------
    def producer(self) -> Producer:
        return _InProcessProducer(self)

    def _append(self, messages: Sequence[Message]) -> None:
        for msg in messages:
            if msg.size > self.max_message_bytes:
                raise BusError(
                    f"publishing: record of {msg.size} bytes to {msg.topic} is larger than the limit "
                    f"{self.max_message_bytes}",
                    retriable=False,
                )
        with self._cond:
            now = int(self._clock() * 1000)
            new: list[tuple[_Partition, Record]] = []
            ends: dict[tuple[str, int], int] = {}
            for msg in messages:
                topic = self._topic(msg.topic)
                p = partition_for(msg.key, len(topic.partitions), counter=next(self._keyless))
                part = topic.partitions[p]
                offset = ends.get((msg.topic, p), part.end)
                ends[(msg.topic, p)] = offset + 1
                new.append((part, Record(msg.topic, p, offset, msg.key, msg.value, now)))
            if self._log is not None:  # durable before acknowledged
                self._log.append(r for _, r in new)
            for part, record in new:
                part.records.append(record)
            self._cond.notify_all()

    # -- consuming ------------------------------------------------------------------------------------
    def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str | None,
        from_beginning: bool = True,
        member: bool = True,
    ) -> Consumer:
        with self._cond:
            for name in topics:
                self._topic(name)
            consumer = InProcessConsumer(self, list(topics), group_id, from_beginning)
            if group_id is not None and member:
                group = self._groups.setdefault(group_id, _Group())
                group.members.append(consumer)
                self._rebalance(group)
            else:
                reads_for = None if group_id is None else self._groups.setdefault(group_id, _Group())
                consumer._assign(self._all_partitions(consumer.topics), reads_for)
            return consumer

    def lease(self, topic: str, group_id: str, *, timeout: float) -> Lease:
        """In one process, the first to ask holds the lease until it closes it (``timeout`` unused)."""
        with self._cond:
            lease = _InProcessLease(self, (topic, group_id))
            self._leases.setdefault((topic, group_id), []).append(lease)
            return lease

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def _all_partitions(self, topics: list[str]) -> list[tuple[str, int]]:
        return [(t, p) for t in topics for p in range(len(self._topics[t].partitions))]

    def _rebalance(self, group: _Group) -> None:
        group.generation += 1
        members = group.members
        for i, member in enumerate(members):
            parts = self._all_partitions(member.topics)
            member._assign([tp for j, tp in enumerate(parts) if j % len(members) == i], group)

    def _rebalance_all(self) -> None:
        for group in self._groups.values():
            if group.members:
                self._rebalance(group)

    def _leave(self, consumer: InProcessConsumer) -> None:
        with self._cond:
            if consumer.group_id is None:
                return
            group = self._groups[consumer.group_id]
            if consumer in group.members:
                group.members.remove(consumer)
                self._rebalance(group)
            self._cond.notify_all()


class _InProcessProducer(Producer):
    def __init__(self, bus: InProcessBus) -> None:
        self._bus = bus
        self._closed = False

    def publish_all(self, messages: Sequence[Message]) -> None:
        if self._closed:
            raise BusError("producer is closed")
        self._bus._append(messages)

    @property
    def max_message_bytes(self) -> int:
        return self._bus.max_message_bytes

    def close(self) -> None:
        self._closed = True


class _InProcessLease(Lease):
    def __init__(self, bus: InProcessBus, name: tuple[str, str]) -> None:
        self._bus = bus
        self._name = name

    def held(self) -> bool:
        with self._bus._cond:
            holders = self._bus._leases.get(self._name, [])
            return bool(holders) and holders[0] is self

    def close(self) -> None:
        with self._bus._cond:
            holders = self._bus._leases.get(self._name, [])
            if self in holders:
                holders.remove(self)


class InProcessConsumer(Consumer):
    """A member of a group (or a group-less reader) of an :class:`InProcessBus`."""

    def __init__(
        self, bus: InProcessBus, topics: list[str], group_id: str | None, from_beginning: bool
    ) -> None:
        self._bus = bus
        self.topics = topics
        self.group_id = group_id
        self._from_beginning = from_beginning
        self._assignment: list[tuple[str, int]] = []
        self._positions: dict[tuple[str, int], int] = {}
        self._closed = False

    def _assign(self, partitions: list[tuple[str, int]], group: _Group | None) -> None:
        # Called under the bus lock. Progress not committed on a lost partition is lost (redelivered).
        positions = {}
        for tp in partitions:
            if tp in self._assignment and tp in self._positions:
                positions[tp] = self._positions[tp]
            elif group is not None and tp in group.committed:
                positions[tp] = group.committed[tp]
            else:
                part = self._bus._topics[tp[0]].partitions[tp[1]]
                positions[tp] = part.base if self._from_beginning else part.end
        self._assignment = partitions
        self._positions = positions

    def poll(self, *, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        with self._bus._cond:
            while True:
                if self._closed:
                    raise BusError("consumer is closed")
                out: list[Record] = []
                for tp in self._assignment:
                    part = self._bus._topics[tp[0]].partitions[tp[1]]
                    pos = max(self._positions[tp], part.base)
                    take = part.read(pos, max_records - len(out))
                    out.extend(take)
                    self._positions[tp] = pos + len(take)
                    if len(out) >= max_records:
                        break
                if out:
                    return out
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._bus._cond.wait(remaining)

    def commit(self, records: Sequence[Record]) -> None:
        if self.group_id is None or not records:
            return
        with self._bus._cond:
            group = self._bus._groups[self.group_id]
            advanced = {}
            for (topic, partition), offset in _next_offsets(records).items():
                if (topic, partition) not in self._assignment:
                    raise BusError(
                        f"commit failed: {topic}[{partition}] was reassigned in a rebalance", retriable=True
                    )
                if offset > group.committed.get((topic, partition), 0):
                    advanced[(topic, partition)] = offset
            if advanced and self._bus._log is not None:
                self._bus._log.commit(self.group_id, advanced)
            group.committed.update(advanced)

    def rewind(self, records: Sequence[Record]) -> None:
        with self._bus._cond:
            for tp, offset in first_offsets(records).items():
                if tp in self._positions:
                    self._positions[tp] = min(self._positions[tp], offset)

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        with self._bus._cond:
            for tp in self._assignment:
                part = self._bus._topics[tp[0]].partitions[tp[1]]
                self._positions[tp] = positions.get(tp, part.base)

    def committed(self) -> dict[tuple[str, int], int]:
        with self._bus._cond:
            if self.group_id is None:
                raise BusError("committed offsets: the consumer has no group")
            group = self._bus._groups.get(self.group_id, _Group())
            return {tp: group.committed[tp] for tp in self._assignment if tp in group.committed}

    def assignment(self) -> set[tuple[str, int]]:
        with self._bus._cond:
            return set(self._assignment)

    def lag(self) -> dict[tuple[str, int], int]:
        with self._bus._cond:
            return {
                tp: max(0, self._bus._topics[tp[0]].partitions[tp[1]].end - self._positions[tp])
                for tp in self._assignment
            }

    def end_offsets(self) -> dict[tuple[str, int], int]:
        with self._bus._cond:
            return {tp: self._bus._topics[tp[0]].partitions[tp[1]].end for tp in self._assignment}

    def close(self) -> None:
        if not self._closed:
            self._bus._leave(self)
            self._closed = True


def _next_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The offset to commit per partition: one past the highest record seen."""
    result: dict[tuple[str, int], int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        result[tp] = max(result.get(tp, 0), r.offset + 1)
    return result
