"""The in-process bus with its SQLite log: the bus contract, and what survives a new process."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import timedelta

import pytest
from bus_contract import BusContract, assert_quiet, drain

from monitor.bus import Bus, TopicSpec
from monitor.bus.base import Message
from monitor.bus.buslog import BusLog
from monitor.bus.memory import InProcessBus


def open_bus(path, **kwargs) -> InProcessBus:
    kwargs.setdefault("retention", timedelta(days=30))
    return InProcessBus(log=BusLog(path, **kwargs))


@pytest.fixture
def bus(tmp_path) -> Bus:
    bus = open_bus(tmp_path / "bus.sqlite3")
    yield bus
    bus.close()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    counter = itertools.count()
    return lambda prefix: f"{prefix}-{next(counter)}"


class TestDurableInProcessBus(BusContract):
    pass


def test_records_and_commits_survive_a_new_bus(tmp_path):
    path = tmp_path / "bus.sqlite3"
    first = open_bus(path)
    first.create_topics([TopicSpec("t", 1)])
    with first.producer() as producer:
        producer.publish_all([Message("t", f"k{i}", f"v{i}".encode()) for i in range(10)])
    consumer = first.consumer(["t"], group_id="g")
    records = drain(consumer, 10)
    consumer.commit(records[:3])
    first.close()  # the process ends without committing the rest

    second = open_bus(path)
    assert len(second.records("t")) == 10
    with second.consumer(["t"], group_id="g") as again:
        assert [r.value for r in drain(again, 7)] == [f"v{i}".encode() for i in range(3, 10)]
        assert_quiet(again, seconds=0.5)
    with second.producer() as producer:  # offsets continue where the file ends
        producer.publish("t", "k0", b"later")
    assert [r.offset for r in second.records("t")][-1] == 10
    second.close()


def test_volatile_topics_are_not_written(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = open_bus(path, volatile_topics={"signals"})
    with bus.producer() as producer:
        producer.publish("signals", "s", b"x")
        producer.publish("kept", "k", b"y")
    bus.close()
    reopened = open_bus(path, volatile_topics={"signals"})
    assert reopened.records("signals") == []
    assert [r.value for r in reopened.records("kept")] == [b"y"]
    reopened.close()


def test_old_records_are_pruned_and_offsets_keep_counting(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = open_bus(path)
    bus.create_topics([TopicSpec("t", 1)])
    with bus.producer() as producer:
        producer.publish_all([Message("t", None, f"{i}".encode()) for i in range(5)])
    bus.close()
    with sqlite3.connect(path) as db:  # age the first three records by 40 days
        db.execute("UPDATE records SET ts = ts - 40*86400*1000 WHERE off < 3")
    reopened = open_bus(path)
    assert [r.offset for r in reopened.records("t")] == [3, 4]
    with reopened.consumer(["t"], group_id="new") as consumer:
        assert [r.value for r in drain(consumer, 2)] == [b"3", b"4"]
    with reopened.producer() as producer:
        producer.publish("t", None, b"5")
    assert [r.offset for r in reopened.records("t")] == [3, 4, 5]
    reopened.close()


def test_a_killed_process_loses_no_acknowledged_record(tmp_path):
    """kill -9 right after publish returned: every acknowledged record is in the file."""
    path = tmp_path / "bus.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal
        from datetime import timedelta
        from monitor.bus.memory import InProcessBus
        from pathlib import Path
        from monitor.bus.buslog import BusLog
        bus = InProcessBus(log=BusLog(Path({str(path)!r}), retention=timedelta(days=1)))
        with bus.producer() as producer:
            for i in range(50):
                producer.publish("t", f"k{{i}}", str(i).encode())
        print("acked", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == -9 and "acked" in result.stdout, result.stderr
    bus = open_bus(path)
    assert sorted(int(r.value) for r in bus.records("t")) == list(range(50))
    bus.close()
