"""The divergence rule on a real broker: Indian and US outlets' scored records in, the divergence alert (one
evidence story from each side) and the per-viewpoint signal series out; none when the two sides agree."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from harness import waiting
from integration.test_alerter_kafka import (
    MONITOR,
    REPO,
    TIMEOUT,
    environment,
    key,
    names,
    produce_scenario,
    read_alerts,
)

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topics: dict[str, str], name: str, tmp_path: Path):
    """The scenario on the scored topic, its rules parsed and written to a config file for the alerter."""
    from monitor.config import parse_config

    scenario = produce_scenario(bootstrap, topics, name)
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"rules": scenario.rules}), encoding="utf-8")
    return scenario, parse_config({"rules": scenario.rules}, source=name), path


def read_signals(bootstrap: str, topic: str, *, until, timeout: float = TIMEOUT) -> dict:
    """The latest point per key on ``topic`` (checking record key = point key), once ``until(latest)``."""
    from monitor.bus.kafka import KafkaBus
    from monitor.events import SignalUpdated, decode
    from monitor.settings import KafkaSettings

    bus = KafkaBus(KafkaSettings(bootstrap_servers=bootstrap))
    latest: dict = {}
    deadline = time.monotonic() + timeout
    while bus.topic_partitions(topic) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    with bus.consumer([topic], group_id=None, from_beginning=True) as consumer:
        while time.monotonic() < deadline:
            for record in consumer.poll(max_records=500, timeout=0.5):
                point = decode(SignalUpdated, record.value)
                assert record.key == point.key
                if point.key not in latest or point.at >= latest[point.key].at:
                    latest[point.key] = point
            if until(latest) and not any(consumer.lag().values()):
                break
    return latest


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the alerter; it must exit 0."""
    _, err = waiting.stop(process)
    assert process.returncode == 0, err


def test_indian_and_us_outlets_that_disagree_fire_the_divergence_alert(
    kafka_bootstrap, unique_name, tmp_path
):
    from fixtures.scenarios import run_engine

    from monitor.events import AlertFiring, AlertResolved

    topics = names(unique_name)
    scenario, config, path = produce(kafka_bootstrap, topics, "views_diverge", tmp_path)
    outputs = run_engine(scenario.articles, config, partitions=3, end=False)
    expected = sorted(key(o) for o in outputs if isinstance(o, AlertFiring | AlertResolved))
    # What the scenario says: firing at the 3h25m tick (what a live alerter has seen by the end of the input).
    assert [(at, state) for at, _, state, _ in expected][:1] == [(scenario.at("3h25m"), "firing")]
    env = environment(kafka_bootstrap, topics, tmp_path / "state", group=unique_name("alerter"))
    env["MONITOR_CONFIG"] = str(path)
    process = subprocess.Popen([MONITOR, "alerter"], env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        events = read_alerts(kafka_bootstrap, topics["alerts"], at_least=len(expected))
        signals = read_signals(
            kafka_bootstrap,
            topics["signals"],
            until=lambda p: (
                "stories/trade_tariffs/24h/us" in p and p["stories/trade_tariffs/24h/us"].stories >= 7
            ),
        )
    finally:
        stop(process)
    assert sorted(key(e) for e in events) == expected
    firing = next(e for e in events if e.state == "firing")
    assert (firing.rule, firing.subject) == ("trade_views_diverge", "trade_tariffs")
    assert (firing.value, firing.baseline) == pytest.approx((0.6, -0.4))
    assert [e.viewpoint for e in firing.evidence] == ["india", "us"]
    assert firing.summary.startswith(
        "India-US trade and tariffs: Indian outlets read it as cooperation (+0.60)"
    )
    # The per-viewpoint series beside the unchanged ones over every outlet.
    assert signals["stance_index/trade_tariffs/24h/india"].value == pytest.approx(0.6)
    assert signals["stance_index/trade_tariffs/24h/india"].viewpoint == "india"
    assert signals["stories/trade_tariffs/24h/india"].value == 3.0
    assert signals["volume/trade_tariffs/24h"].viewpoint == "all"


def test_indian_and_us_outlets_that_agree_fire_nothing(kafka_bootstrap, unique_name, tmp_path):
    topics = names(unique_name)
    _, _, path = produce(kafka_bootstrap, topics, "views_agree", tmp_path)
    env = environment(kafka_bootstrap, topics, tmp_path / "state", group=unique_name("alerter"))
    env["MONITOR_CONFIG"] = str(path)
    process = subprocess.Popen([MONITOR, "alerter"], env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        # Until the alerter has counted all four stories a side (the 3h25m and 3h55m ticks): by then both
        # sides have had the rule's three stories for an hour, longer than its `for: 30m`.
        signals = read_signals(
            kafka_bootstrap,
            topics["signals"],
            until=lambda p: all(
                f"stories/trade_tariffs/24h/{v}" in p and p[f"stories/trade_tariffs/24h/{v}"].stories >= 4
                for v in ("india", "us")
            ),
        )
    finally:
        stop(process)
    assert signals["stance_index/trade_tariffs/24h/india"].value == pytest.approx(-0.5)
    assert signals["stance_index/trade_tariffs/24h/us"].value == pytest.approx(-0.4)
    assert read_alerts(kafka_bootstrap, topics["alerts"], at_least=1, timeout=5) == []
