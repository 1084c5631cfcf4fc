"""The alerter on a real broker: scored records in, alerts on the alert topic, read back with ``monitor alerts
tail``; kill -9 inside the crash windows; a replay from the beginning into a fresh alerter.

Run as a script, this file is the child alerter with a crash point: ``python test_alerter_kafka.py
--crash {after_ack,after_save} --marker FILE`` plus the usual ``MONITOR_*`` environment. It runs the stage
until the first batch that publishes an alert reaches the crash point, writes the marker and blocks there
until the test kills it with SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MONITOR = str(Path(sys.executable).with_name("monitor"))
TIMEOUT = 90.0


def child(argv: Sequence[str]) -> int:
    """The alerter process with a crash point (see the module docstring)."""
    from prometheus_client import CollectorRegistry

    from monitor.bus import make_bus
    from monitor.config import load_config
    from monitor.settings import load_settings
    from pipelines.alerter import build_alerter

    parser = argparse.ArgumentParser()
    parser.add_argument("--crash", choices=["after_ack", "after_save"], required=True)
    parser.add_argument("--marker", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = load_settings(os.environ)
    bus = make_bus(settings)
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry())

    def block() -> None:
        args.marker.write_text("blocked", encoding="utf-8")
        threading.Event().wait()  # here the test sends SIGKILL

    if args.crash == "after_ack":
        save = stage.store.save

        def save_or_block(before, after, **kwargs):  # type: ignore[no-untyped-def]
            if stage._effects.alerts:  # this batch published an alert and the broker acknowledged it
                block()
            save(before, after, **kwargs)

        stage.store.save = save_or_block  # type: ignore[method-assign]
    else:
        commit = stage._consumer.commit
        published = {"alerts": False}
        apply = stage._apply

        def apply_and_note(duplicates, late):  # type: ignore[no-untyped-def]
            published["alerts"] = published["alerts"] or bool(stage._effects.alerts)
            apply(duplicates, late)

        def commit_or_block(records):  # type: ignore[no-untyped-def]
            if published["alerts"]:  # state saved, offsets not yet committed
                block()
            commit(records)

        stage._apply = apply_and_note  # type: ignore[method-assign]
        stage._consumer.commit = commit_or_block  # type: ignore[method-assign]
    stage.runner.run(threading.Event())
    return 0


# -- helpers -------------------------------------------------------------------------------------------


def names(unique_name) -> dict[str, str]:
    return {t: unique_name(t) for t in ("articles", "scored", "signals", "alerts", "deadletter")}


def environment(
    bootstrap: str, topics: dict[str, str], state_dir: Path, *, group: str, batch: int = 2
) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MONITOR_STATE_DIR": str(state_dir),
            "MONITOR_METRICS__PORT": "0",
            "MONITOR_ALERTER__IDLE_ADVANCE": "false",
            "MONITOR_ALERTER__BATCH_SIZE": str(batch),
            # The live path, batch by batch: a first start would fold the whole scenario in at once.
            "MONITOR_ALERTER__BACKFILL": "false",
            "MONITOR_ALERTER__GROUP_ID": group,
            "MONITOR_LOG_LEVEL": "WARNING",
            # A killed member holds its partitions until its session times out: keep that short.
            "MONITOR_KAFKA__SESSION_TIMEOUT": "6s",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update({f"MONITOR_KAFKA__TOPICS__{k.upper()}": v for k, v in topics.items()})
    return env


def settings_for(bootstrap: str, topics: dict[str, str]):
    from monitor.settings import KafkaSettings, Settings, TopicNames

    return Settings(kafka=KafkaSettings(bootstrap_servers=bootstrap, topics=TopicNames(**topics)))


def produce_scenario(bootstrap: str, topics: dict[str, str], name: str, *, first: int | None = None):
    """Create the topics and put the scenario's articles (its ``first`` ones) on the scored topic."""
    from fixtures import scenarios

    from monitor.bus import topic_specs
    from monitor.bus.base import Message
    from monitor.bus.kafka import KafkaBus

    scenario = scenarios.load(name)
    settings = settings_for(bootstrap, topics)
    bus = KafkaBus(settings.kafka)
    bus.create_topics(topic_specs(settings))
    with bus.producer() as producer:
        producer.publish_all(
            [Message(topics["scored"], a.article_id, a.encode()) for a in scenario.articles[:first]]
        )
    return scenario


def expected_alerts(scenario) -> list[tuple]:
    """What a live alerter publishes for the scenario once it has read everything (no end-of-input flush)."""
    from fixtures.scenarios import run_engine

    from monitor.config import load_config
    from monitor.events import AlertFiring, AlertResolved

    outputs = run_engine(scenario.articles, load_config(None), partitions=3, end=False)
    return sorted(key(o) for o in outputs if isinstance(o, AlertFiring | AlertResolved))


def key(event) -> tuple:
    return (event.at, event.rule, event.state, event.alert_id)


def read_alerts(bootstrap: str, topic: str, *, at_least: int, timeout: float = TIMEOUT) -> list:
    """Every alert event on ``topic``, once there are at least ``at_least`` of them (or at the timeout)."""
    from monitor.bus.kafka import KafkaBus
    from monitor.events import decode_alert
    from monitor.settings import KafkaSettings

    bus = KafkaBus(KafkaSettings(bootstrap_servers=bootstrap))
    events: list = []
    deadline = time.monotonic() + timeout
    while bus.topic_partitions(topic) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)  # the alerter creates its topics at start
    with bus.consumer([topic], group_id=None, from_beginning=True) as consumer:
        while time.monotonic() < deadline:
            events += [decode_alert(r.value) for r in consumer.poll(max_records=500, timeout=0.5)]
            if len(events) >= at_least and not any(consumer.lag().values()):
                break
    return events


def run_until(env: dict, bootstrap: str, topic: str, count: int) -> int:
    """Run ``monitor alerter`` until ``count`` alert events are on ``topic``; stop it with SIGTERM."""
    from harness.waiting import stop  # here: this file is also the child's script (no harness)

    process = subprocess.Popen([MONITOR, "alerter"], env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        events = read_alerts(bootstrap, topic, at_least=count)
        assert len(events) >= count, f"only {len(events)} of {count} alert events appeared"
    finally:
        _, err = stop(process)
    assert process.returncode == 0, err
    return process.returncode


# -- tests -------------------------------------------------------------------------------------------


def test_scored_records_in_alerts_out_read_back_with_tail(kafka_bootstrap, unique_name, tmp_path):
    topics = names(unique_name)
    scenario = produce_scenario(kafka_bootstrap, topics, "tariff_shock")
    expected = expected_alerts(scenario)
    assert len(expected) >= 4
    env = environment(kafka_bootstrap, topics, tmp_path / "state", group=unique_name("alerter"))
    run_until(env, kafka_bootstrap, topics["alerts"], len(expected))

    tail = subprocess.run(
        [MONITOR, "alerts", "tail", "--from-beginning", "--max", str(len(expected)), "--timeout", "60"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    from monitor.events import decode_alert

    events = [decode_alert(json.dumps(line)) for line in lines]
    assert sorted(key(e) for e in events) == expected
    assert [e.at for e in events] == sorted(e.at for e in events)  # printed in event order
    firing = next(e for e in events if e.state == "firing" and e.rule == "tariff_strain_high")
    assert firing.evidence and firing.summary.startswith("India-US trade and tariffs")

    text = subprocess.run(
        [
            MONITOR,
            "alerts",
            "tail",
            "--from-beginning",
            "--severity",
            "critical",
            "--format",
            "text",
            "--timeout",
            "5",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = text.stdout.splitlines()
    assert rows and all(" critical tariff_strain_high [trade_tariffs] " in row for row in rows)
    assert len(rows) == sum(1 for e in expected if e[1] == "tariff_strain_high")


@pytest.mark.parametrize("crash", ["after_ack", "after_save"])
def test_kill_9_in_the_crash_window_neither_loses_nor_repeats_an_alert(
    kafka_bootstrap, unique_name, tmp_path, crash
):
    topics = names(unique_name)
    scenario = produce_scenario(kafka_bootstrap, topics, "flapping")
    expected = expected_alerts(scenario)
    env = environment(kafka_bootstrap, topics, tmp_path / "state", group=unique_name("alerter"), batch=3)
    marker = tmp_path / "blocked"
    process = subprocess.Popen(
        [sys.executable, __file__, "--crash", crash, "--marker", str(marker)],
        env=env,
        cwd=REPO,
    )
    try:
        from harness.waiting import wait_for  # here: this file is also the child's script (no harness)

        wait_for("the child to reach its crash point", marker.exists, timeout=TIMEOUT, process=process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = read_alerts(kafka_bootstrap, topics["alerts"], at_least=1)
    assert 1 <= len(before) < len(expected), "the kill should land in the middle of the scenario"

    run_until(env, kafka_bootstrap, topics["alerts"], len(expected))
    events = read_alerts(kafka_bootstrap, topics["alerts"], at_least=len(expected))
    counts = Counter(key(e) for e in events)
    assert max(counts.values()) == 1, f"published twice: {[k for k, n in counts.items() if n > 1]}"
    assert sorted(counts) == expected


def test_replay_from_the_beginning_into_a_fresh_alerter_gives_the_same_alert_ids(
    kafka_bootstrap, unique_name, tmp_path
):
    topics = names(unique_name)
    scenario = produce_scenario(kafka_bootstrap, topics, "trade_deal")
    expected = expected_alerts(scenario)
    live = environment(kafka_bootstrap, topics, tmp_path / "live", group=unique_name("alerter"), batch=5)
    run_until(live, kafka_bootstrap, topics["alerts"], len(expected))
    first = sorted(key(e) for e in read_alerts(kafka_bootstrap, topics["alerts"], at_least=len(expected)))

    replay_topics = {
        **topics,
        "alerts": unique_name("alerts-replay"),
        "signals": unique_name("signals-replay"),
    }
    replay = environment(
        kafka_bootstrap, replay_topics, tmp_path / "replay", group=unique_name("replay"), batch=50
    )
    run_until(replay, kafka_bootstrap, replay_topics["alerts"], len(expected))
    again = sorted(
        key(e) for e in read_alerts(kafka_bootstrap, replay_topics["alerts"], at_least=len(expected))
    )
    assert [k[3] for k in again] == [k[3] for k in first]
    assert first == expected


def test_tail_on_a_missing_topic_says_so(kafka_bootstrap, unique_name, tmp_path):
    env = environment(kafka_bootstrap, names(unique_name), tmp_path, group=unique_name("g"))
    result = subprocess.run(
        [MONITOR, "alerts", "tail", "--timeout", "1"],
        check=False,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "does not exist yet" in result.stderr and "monitor topics create" in result.stderr


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "tests"))
    raise SystemExit(child(sys.argv[1:]))


def test_poison_records_on_the_scored_topic_are_deadlettered_and_change_no_alert(
    kafka_bootstrap, unique_name, tmp_path
):
    """Issue 16's findings 2-4 on the alerter: a 900 KB record, one dated 2999, a boolean schema_version."""
    from datetime import UTC, datetime

    from fixtures import scenarios

    from monitor.bus import topic_specs
    from monitor.bus.base import Message
    from monitor.bus.kafka import KafkaBus
    from monitor.events import DeadLetter, SignalUpdated, decode

    topics = names(unique_name)
    scenario = scenarios.load("tariff_shock")
    expected = expected_alerts(scenario)
    settings = settings_for(kafka_bootstrap, topics)
    bus = KafkaBus(settings.kafka)
    bus.create_topics(topic_specs(settings))
    first = scenario.articles[0]
    future = datetime(2999, 1, 1, tzinfo=UTC)
    poison = {
        "future": first.model_copy(update={"article_id": "future", "fetched_at": future}).encode(),
        "huge": b"{" + b" " * 900_000,  # fits the broker; its base64 copy would not
        "bool-version": json.dumps(json.loads(first.encode()) | {"schema_version": True}).encode(),
    }
    with bus.producer() as producer:
        producer.publish_all([Message(topics["scored"], k, v) for k, v in poison.items()])
        producer.publish_all([Message(topics["scored"], a.article_id, a.encode()) for a in scenario.articles])
    env = environment(kafka_bootstrap, topics, tmp_path / "state", group=unique_name("alerter"), batch=4)
    run_until(env, kafka_bootstrap, topics["alerts"], len(expected))

    events = read_alerts(kafka_bootstrap, topics["alerts"], at_least=len(expected))
    assert sorted(key(e) for e in events) == expected  # as if the poison had never been there
    letters = {}
    with bus.consumer([topics["deadletter"], topics["signals"]], group_id=None) as consumer:
        signals_at = []
        while len(letters) < 3 or any(consumer.lag().values()):
            for r in consumer.poll(max_records=500, timeout=1.0):
                if r.topic == topics["deadletter"]:
                    letters[r.key] = decode(DeadLetter, r.value)
                else:
                    signals_at.append(decode(SignalUpdated, r.value).at)
    assert set(letters) == set(poison)
    assert letters["huge"].value_size == len(poison["huge"]) and letters["huge"].value_truncated
    assert "after the record reached the bus" in letters["future"].reason
    assert "schema_version must be an integer" in letters["bool-version"].reason
    assert signals_at and max(signals_at) < datetime.now(UTC)  # nothing stamped in the future


def test_a_burst_reaches_the_alert_topic_before_any_tick_is_evaluated(kafka_bootstrap, unique_name, tmp_path):
    """``monitor alerter`` with a burst rule: three strained trade stories from two outlets within
    minutes. Without idle advance and with nothing after them, the regular path cannot evaluate the tick
    that counts the third (its clock stops at the last arrival minus the grace): the alert on the topic
    is the fast path's, with the id that tick would give it."""
    from datetime import timedelta

    import yaml

    from monitor.alerts.lifecycle import alert_id

    topics = names(unique_name)
    # The burst, without the later story that would move the clock on.
    scenario = produce_scenario(kafka_bootstrap, topics, "breaking_burst", first=3)
    articles = scenario.articles[:3]
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump({"rules": scenario.rules}))
    env = environment(kafka_bootstrap, topics, tmp_path / "state", group=unique_name("alerter"), batch=1)
    env["MONITOR_CONFIG"] = str(config)
    run_until(env, kafka_bootstrap, topics["alerts"], 1)

    [event] = read_alerts(kafka_bootstrap, topics["alerts"], at_least=1)
    tick_us = int((scenario.start + timedelta(minutes=15)).timestamp()) * 1_000_000
    assert (event.rule, event.state) == ("tariff_shock", "firing")
    assert event.alert_id == alert_id("tariff_shock", "trade_tariffs", tick_us)
    assert event.at == articles[2].scored_at  # the third story's arrival (published 13m, scored 14m30s)
    assert {e.story_id for e in event.evidence} == {a.story_id for a in articles}
