"""The bus contract on the in-process adapter."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from bus_contract import BusContract

from monitor.bus import Bus
from monitor.bus.memory import InProcessBus
from monitor.errors import BusError


@pytest.fixture
def bus() -> Bus:
    return InProcessBus()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    counter = itertools.count()
    return lambda prefix: f"{prefix}-{next(counter)}"


class TestInProcessBus(BusContract):
    def test_commit_after_losing_a_partition_fails_retriably(self, bus: Bus) -> None:
        from monitor.bus.base import TopicSpec, partition_for

        bus.create_topics([TopicSpec("t", 2)])
        keys = [next(k for k in map(str, itertools.count()) if partition_for(k, 2) == p) for p in (0, 1)]
        with bus.producer() as producer:
            for key in keys:  # one record in each partition
                producer.publish("t", key, b"1")
        a = bus.consumer(["t"], group_id="g")
        records = a.poll(timeout=0.1)
        assert sorted(r.partition for r in records) == [0, 1]
        b = bus.consumer(["t"], group_id="g")  # rebalance: a keeps one partition only
        assert len(a.assignment()) == 1
        lost = [r for r in records if (r.topic, r.partition) not in a.assignment()]
        assert len(lost) == 1
        with pytest.raises(BusError) as info:
            a.commit(lost)
        assert info.value.retriable
        a.close()
        b.close()
