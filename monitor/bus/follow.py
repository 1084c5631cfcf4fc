"""Reading behind a consumer group: what a hot standby consumes (DESIGN §6, one active alerter).

A :class:`Follower` wraps a consumer that reads every partition of its topics without joining the group
(``bus.consumer(..., member=False)``). While ``bounded``, it hands out only records the group has already
committed, so a standby's state follows the active member's, batch for batch, and never runs ahead of
it. Unbounded, it is a plain consumer whose commits go to the group: what the standby becomes when it
takes over, without a rebalance of the group it now commits for.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence

from monitor.bus.base import Consumer, Record, first_offsets

Partition = tuple[str, int]


class Follower(Consumer):
    """A consumer that, while :attr:`bounded`, never hands out a record its group has not committed.

    The group's committed offsets are read again whenever nothing already fetched may be handed out.
    Records fetched beyond them wait in memory, at most ``max_pending`` of them (then fetching pauses).
    """

    def __init__(self, inner: Consumer, *, max_pending: int = 10_000) -> None:
        self._inner = inner
        self._max_pending = max_pending
        self.bounded = True
        self._pending: dict[Partition, deque[Record]] = {}
        self._committed: dict[Partition, int] = {}
        self._positions: dict[Partition, int] = {}

    # -- where it stands ----------------------------------------------------------------------------
    def positions(self) -> dict[Partition, int]:
        """Per partition, the offset after the last record handed out (or the position it was sought to)."""
        return dict(self._positions)

    def seek(self, positions: Mapping[Partition, int]) -> None:
        self._pending.clear()
        self._inner.seek(positions)
        self._positions = dict(positions)

    def committed(self) -> dict[Partition, int]:
        return self._inner.committed()

    def refresh_committed(self) -> dict[Partition, int]:
        """Read the group's committed offsets now."""
        self._committed = self._inner.committed()
        return dict(self._committed)

    def caught_up(self) -> bool:
        """Everything the group has committed (as last read) has been handed out."""
        lag = self._inner.lag()
        for tp in self._inner.assignment():
            target = self._committed.get(tp)
            if target is None or self._positions.get(tp, -1) >= target:
                continue
            if lag.get(tp, 1) == 0 and not any(r.offset < target for r in self._pending.get(tp, ())):
                continue  # read to the end: nothing below the committed offset is left to hand out
            return False
        return True

    # -- Consumer -------------------------------------------------------------------------------------
    def poll(self, *, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        if not self.bounded:
            out = self._release(max_records, None)
            if len(out) < max_records:
                out.extend(self._track(self._inner.poll(max_records=max_records - len(out), timeout=timeout)))
            return out
        out = self._release(max_records, self._committed)
        if out:
            return out
        self.refresh_committed()  # at most once a poll; an empty poll waits in the inner poll or below
        out = self._release(max_records, self._committed)
        if out:
            return out
        if sum(len(q) for q in self._pending.values()) < self._max_pending:
            for record in self._inner.poll(max_records=max_records, timeout=timeout):
                self._pending.setdefault((record.topic, record.partition), deque()).append(record)
            return self._release(max_records, self._committed)
        time.sleep(timeout)  # waiting for the group to commit what is held here
        return []

    def _release(self, max_records: int, bound: Mapping[Partition, int] | None) -> list[Record]:
        out: list[Record] = []
        for tp in sorted(self._pending):
            queue = self._pending[tp]
            limit = None if bound is None else bound.get(tp, 0)
            while queue and len(out) < max_records and (limit is None or queue[0].offset < limit):
                out.append(queue.popleft())
        return self._track(out)

    def _track(self, records: list[Record]) -> list[Record]:
        for r in records:
            self._positions[(r.topic, r.partition)] = r.offset + 1
        return records

    def commit(self, records: Sequence[Record]) -> None:
        if not self.bounded:
            self._inner.commit(records)

    def rewind(self, records: Sequence[Record]) -> None:
        for tp, offset in first_offsets(records).items():
            self._pending.pop(tp, None)
            self._positions[tp] = offset
        self._inner.rewind(records)

    def assignment(self) -> set[Partition]:
        return self._inner.assignment()

    def lag(self) -> dict[Partition, int]:
        lag = self._inner.lag()
        for tp, queue in self._pending.items():
            lag[tp] = lag.get(tp, 0) + len(queue)
        return lag

    def end_offsets(self) -> dict[Partition, int]:
        return self._inner.end_offsets()

    def close(self) -> None:
        self._inner.close()
