"""The bus interface: one abstraction, two adapters (Kafka and in-process).

Semantics both adapters keep:

* ``Producer.publish_all`` returns only when every message is acknowledged (Kafka: ``acks=all``), else
  raises :class:`~monitor.errors.BusError`; per-key order is preserved (same key, same partition).
* Consumers in a group share the partitions of their topics; a record is delivered again until its offset
  is committed (at-least-once); ``commit`` stores the position after the highest offset per partition.
* A consumer without a group reads every partition and commits nothing (for tailing).
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType


@dataclass(frozen=True, slots=True)
class Record:
    """One record as consumed: where it came from and its raw bytes."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp_ms: int | None = None


DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
"""The record size limit where the bus tells none (kafka-python's default ``max_request_size``)."""

RECORD_OVERHEAD = 512
"""Bytes a record takes on the bus beyond its key and value (Kafka's batch and record headers), rounded up."""


@dataclass(frozen=True, slots=True)
class Message:
    """One record to publish.

    ``source`` is not part of the record: it is the consumed record this message was made from, if any, so
    that a stage can dead-letter that input when the output cannot be published (e.g. it is too large).
    """

    topic: str
    key: str | None
    value: bytes
    source: Record | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        """What the record takes against the bus's size limit: key, value and :data:`RECORD_OVERHEAD`."""
        key = len(self.key.encode("utf-8")) if self.key is not None else 0
        return key + len(self.value) + RECORD_OVERHEAD


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create: partitions, replication and topic-level configs (retention, cleanup policy)."""

    name: str
    partitions: int
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


def first_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The lowest offset per (topic, partition) among ``records``: where a rewind reads on from."""
    first: dict[tuple[str, int], int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        first[tp] = min(first.get(tp, r.offset), r.offset)
    return first


def partition_for(key: str | None, partitions: int, *, counter: int = 0) -> int:
    """Stable partition of a key (keyless messages are spread round-robin by ``counter``)."""
    if key is None:
        return counter % partitions
    return zlib.crc32(key.encode("utf-8")) % partitions


class Producer(ABC):
    """Publishes messages; returns only once the bus has acknowledged them."""

    @abstractmethod
    def publish_all(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` and wait until every one is acknowledged; raise BusError otherwise."""

    def publish(self, topic: str, key: str | None, value: bytes) -> None:
        self.publish_all([Message(topic, key, value)])

    @property
    def max_message_bytes(self) -> int:
        """The largest record this producer can publish (compare with :attr:`Message.size`)."""
        return DEFAULT_MAX_MESSAGE_BYTES

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Consumer(ABC):
    """Reads records of its topics; in a group, shares partitions with the group's other members."""

    @abstractmethod
    def poll(self, *, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""

    @abstractmethod
    def commit(self, records: Sequence[Record]) -> None:
        """Mark ``records`` (and everything before them in their partitions) as processed."""

    @abstractmethod
    def rewind(self, records: Sequence[Record]) -> None:
        """Deliver ``records`` again on the next poll (after a failure to process them)."""

    @abstractmethod
    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Read on from these offsets; assigned partitions not named start from their beginning."""

    @abstractmethod
    def committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offset per assigned partition (partitions never committed are absent)."""

    @abstractmethod
    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this consumer currently reads."""

    @abstractmethod
    def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet consumed per (topic, partition) assigned to this consumer."""

    @abstractmethod
    def end_offsets(self) -> dict[tuple[str, int], int]:
        """Per assigned (topic, partition), the offset the next record written to it will get."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Lease(ABC):
    """Leadership among the processes that ask for the same lease: at most one holds it at a time.

    :meth:`held` must be called often (each loop step): it keeps the membership alive and says whether
    this process is the holder now. A holder that dies loses the lease after ``timeout`` seconds.
    """

    @abstractmethod
    def held(self) -> bool: ...

    @abstractmethod
    def close(self) -> None:
        """Give the lease up (another process takes it at once)."""


class Bus(ABC):
    """Factory of producers and consumers over one bus."""

    name: str = "bus"

    @abstractmethod
    def producer(self) -> Producer: ...

    @abstractmethod
    def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str | None,
        from_beginning: bool = True,
        member: bool = True,
    ) -> Consumer:
        """A consumer of ``topics``. With a ``group_id`` it joins the group and shares its partitions,
        unless ``member`` is false: then it reads every partition and only commits for the group."""

    @abstractmethod
    def lease(self, topic: str, group_id: str, *, timeout: float) -> Lease:
        """Compete for the lease named by ``topic`` with the other holders of ``group_id``."""

    @abstractmethod
    def create_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create the topics that do not exist yet; return the names created (idempotent)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing shared
        """Release shared resources (nothing by default)."""
