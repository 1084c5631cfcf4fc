"""Reading a topic as it stood at one moment: what a bounded replay (``monitor rescore``) consumes.

A :class:`Bounded` consumer wraps another and notes the end offset of every assigned partition when it is
made. It hands out only the records below those offsets; records written after that moment are left
alone, so a replay of a live topic ends. :attr:`Bounded.done` tells when every partition is read to its
noted end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.bus.base import Consumer, Record

Partition = tuple[str, int]


class Bounded(Consumer):
    """A consumer that stops at the end offsets its inner consumer's partitions had when it was made."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner
        self.ends: dict[Partition, int] = inner.end_offsets()
        """The end offset per partition when the reading began (the first offset not to hand out)."""
        self._positions: dict[Partition, int] = {}
        self._finished: set[Partition] = {tp for tp, end in self.ends.items() if end <= 0}

    @property
    def done(self) -> bool:
        """Every partition is read up to its noted end."""
        return len(self._finished) >= len(self.ends)

    def remaining(self) -> int:
        """Records still to hand out (from the inner consumer's lag, capped at the noted ends)."""
        lag = self._inner.lag()
        ends = self._inner.end_offsets()
        total = 0
        for tp, end in self.ends.items():
            if tp in self._finished:
                continue
            # lag counts up to today's end; what was written after the start is not to be read
            total += max(0, lag.get(tp, 0) - max(0, ends.get(tp, end) - end))
        return total

    def poll(self, *, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        if self.done:
            return []
        records = self._inner.poll(max_records=max_records, timeout=timeout)
        out = []
        for record in records:
            tp = (record.topic, record.partition)
            end = self.ends.get(tp, 0)
            if record.offset >= end:
                self._finished.add(tp)
                continue
            out.append(record)
            self._positions[tp] = record.offset + 1
            if record.offset + 1 >= end:
                self._finished.add(tp)
        if not records:
            # Nothing came: a partition with nothing left to read is done (its noted end may lie below
            # records removed by retention, or above offsets never used, e.g. transaction markers).
            for tp, lag in self._inner.lag().items():
                if lag == 0:
                    self._finished.add(tp)
        return out

    def commit(self, records: Sequence[Record]) -> None:
        self._inner.commit(records)

    def rewind(self, records: Sequence[Record]) -> None:
        self._inner.rewind(records)
        for record in records:
            tp = (record.topic, record.partition)
            if record.offset < self.ends.get(tp, 0):
                self._finished.discard(tp)

    def seek(self, positions: Mapping[Partition, int]) -> None:
        self._inner.seek(positions)
        self._finished = {tp for tp, end in self.ends.items() if positions.get(tp, 0) >= end or end <= 0}

    def committed(self) -> dict[Partition, int]:
        return self._inner.committed()

    def assignment(self) -> set[Partition]:
        return self._inner.assignment()

    def lag(self) -> dict[Partition, int]:
        return self._inner.lag()

    def end_offsets(self) -> dict[Partition, int]:
        return dict(self.ends)

    def close(self) -> None:
        self._inner.close()
