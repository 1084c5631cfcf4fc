"""Two ``monitor alerter`` processes on a real broker: one active, one hot standby; kill -9 of the leader.

The standby must publish nothing while the leader lives, take over after the leader's lease times out,
and between them the alert topic must hold every alert of the scenario exactly once, with no signal point
published with two different values.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
from harness.waiting import free_port, wait_for
from integration.test_alerter_kafka import (
    MONITOR,
    REPO,
    environment,
    expected_alerts,
    key,
    names,
    read_alerts,
    settings_for,
)

pytestmark = pytest.mark.integration

LEASE_TIMEOUT = 6.0  # the broker's smallest session timeout (group.min.session.timeout.ms)


def metric(port: int, name: str) -> float | None:
    """One unlabelled sample from the process's /metrics (None while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def produce(bootstrap: str, topics: dict[str, str], articles) -> None:
    from monitor.bus.base import Message
    from monitor.bus.kafka import KafkaBus
    from monitor.settings import KafkaSettings

    bus = KafkaBus(KafkaSettings(bootstrap_servers=bootstrap))
    with bus.producer() as producer:
        producer.publish_all([Message(topics["scored"], a.article_id, a.encode()) for a in articles])


def signal_points(bootstrap: str, topic: str) -> dict[tuple[str, str], set]:
    from monitor.bus.kafka import KafkaBus
    from monitor.events import SignalUpdated, decode, format_time
    from monitor.settings import KafkaSettings

    points: dict[tuple[str, str], set] = defaultdict(set)
    bus = KafkaBus(KafkaSettings(bootstrap_servers=bootstrap))
    with bus.consumer([topic], group_id=None, from_beginning=True) as consumer:
        while True:
            records = consumer.poll(max_records=1000, timeout=1.0)
            for r in records:
                update = decode(SignalUpdated, r.value)
                points[(update.key, format_time(update.at))].add(update.value)
            if not records and not any(consumer.lag().values()):
                return points


def test_one_active_alerter_and_a_standby_that_takes_over_after_kill_9(
    kafka_bootstrap, unique_name, tmp_path: Path
) -> None:
    from fixtures import scenarios

    from monitor.bus import topic_specs
    from monitor.bus.kafka import KafkaBus

    topics = names(unique_name)
    scenario = scenarios.load("flapping")
    cut = len(scenario.articles) // 2
    expected_first = expected_alerts(SimpleNamespace(articles=scenario.articles[:cut]))
    expected = expected_alerts(scenario)
    assert 1 <= len(expected_first) < len(expected)
    settings = settings_for(kafka_bootstrap, topics)
    KafkaBus(settings.kafka).create_topics(topic_specs(settings))
    produce(kafka_bootstrap, topics, scenario.articles[:cut])

    group, lease_topic = unique_name("alerter"), unique_name("lease")
    ports = {"a": free_port(), "b": free_port()}
    processes: dict[str, subprocess.Popen] = {}

    def start(name: str) -> subprocess.Popen:
        env = environment(kafka_bootstrap, topics, tmp_path / name, group=group, batch=3)
        env.update(
            MONITOR_METRICS__HOST="127.0.0.1",
            MONITOR_METRICS__PORT=str(ports[name]),
            MONITOR_ALERTER__LEASE_TIMEOUT=f"{LEASE_TIMEOUT:.0f}s",
            MONITOR_KAFKA__TOPICS__ALERTER_LEASE=lease_topic,
            MONITOR_LOG_LEVEL="INFO",
        )
        log = (tmp_path / f"{name}.log").open("w")
        processes[name] = subprocess.Popen([MONITOR, "alerter"], env=env, cwd=REPO, stderr=log, text=True)
        log.close()
        return processes[name]

    try:
        a = start("a")
        wait_for(
            "a leads", lambda: metric(ports["a"], "monitor_alerter_leader") == 1.0, timeout=90, process=a
        )
        b = start("b")
        wait_for(
            "b stands by", lambda: metric(ports["b"], "monitor_alerter_leader") == 0.0, timeout=90, process=b
        )
        first = read_alerts(kafka_bootstrap, topics["alerts"], at_least=len(expected_first))
        assert sorted(key(e) for e in first) == expected_first
        # b has read what a committed, and published nothing.
        wait_for(
            "b follows a's commits",
            lambda: (metric(ports["b"], "monitor_records_consumed_total") or 0) >= cut,
            timeout=90,
            process=b,
        )
        assert metric(ports["b"], "monitor_records_published_total") in (None, 0.0)
        assert metric(ports["b"], "monitor_alerter_leader") == 0.0

        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)
        killed = time.monotonic()
        wait_for(
            "b takes over", lambda: metric(ports["b"], "monitor_alerter_leader") == 1.0, timeout=90, process=b
        )
        takeover = time.monotonic() - killed
        print(
            f"standby took over {takeover:.1f}s after kill -9 of the leader (lease timeout {LEASE_TIMEOUT}s)"
        )
        assert takeover < LEASE_TIMEOUT + 20

        produce(kafka_bootstrap, topics, scenario.articles[cut:])
        events = read_alerts(kafka_bootstrap, topics["alerts"], at_least=len(expected))
        counts = Counter(key(e) for e in events)
        assert max(counts.values()) == 1, f"published twice: {[k for k, n in counts.items() if n > 1]}"
        assert sorted(counts) == expected
        assert metric(ports["b"], "monitor_alerter_takeovers_total") == 1.0
        clashes = {p: v for p, v in signal_points(kafka_bootstrap, topics["signals"]).items() if len(v) > 1}
        assert not clashes, f"signal points published with two values: {list(clashes)[:5]}"

        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=60) == 0
    finally:
        for name, process in processes.items():
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(Exception):
                process.wait(timeout=30)
            log = (tmp_path / f"{name}.log").read_text()
            lines = [line for line in log.splitlines() if " kafka." not in line]
            print(f"--- alerter {name} (exit {process.returncode}), its log:", *lines[-40:], sep="\n")
    assert os.path.exists(tmp_path / "b" / "alerter.sqlite3")
