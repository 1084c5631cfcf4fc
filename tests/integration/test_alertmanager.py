"""The alerter with the real parts: a real Kafka broker (the session's) and Debian's Alertmanager
(``prometheus-alertmanager``, started here on a free loopback port with the repository's starter config,
its webhook receiver pointed at a local HTTP server).

* alerts appear in Alertmanager's API with their labels, are notified at the webhook, and their resolved
  notices arrive; each alert also goes to its routed topic, read back with ``monitor alerts tail --topic``;
* a silence created through Alertmanager's API suppresses the webhook notification while the Kafka
  records still flow;
* a restarted alerter keeps the firing alerts alive without creating a second Alertmanager alert;
* the starter config's inhibition: a warning about a subject is held back while a critical alert fires on
  it (suppressed in the API, not notified), a warning about another subject is not;
* a route to a topic that does not exist stops ``monitor alerter`` at start with one line, and
  ``monitor topics create`` creates the routed topics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.alertmanager import Alertmanager, AlertmanagerUnavailable, WebhookReceiver
from harness.waiting import wait_for
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MONITOR = str(Path(sys.executable).with_name("monitor"))
TIMEOUT = 90.0
ECHO = "tariff_strain_echo"  # a second rule on the same story, silenced in the silence test


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def alertmanager(receiver: WebhookReceiver) -> Iterator[Alertmanager]:
    try:
        am = Alertmanager(receiver_url=receiver.url)
    except AlertmanagerUnavailable as exc:
        pytest.fail(str(exc))
    am.start()
    yield am
    am.close()


def topic_names(unique_name: Callable[[str], str]) -> dict[str, str]:
    return {t: unique_name(t) for t in ("articles", "scored", "signals", "alerts", "deadletter")}


def make_config(routed: str, *, echo: bool = False) -> Any:
    from monitor.config import load_config, parse_config

    rules = [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in load_config(None).rules]
    if echo:  # the same condition under another name, listed first (it resolves first)
        rules.insert(0, {**rules[0], "name": ECHO})
    return parse_config(
        {"rules": rules, "routes": [{"topic": routed, "severity": "critical"}]}, source="monitor.yaml"
    )


def make_settings(bootstrap: str, topics: dict[str, str], state_dir: Path, group: str, am_url: str) -> Any:
    from monitor.settings import AlerterSettings, KafkaSettings, MetricsSettings, Settings, TopicNames

    return Settings(
        state_dir=state_dir,
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topics=TopicNames(**topics)),
        # The live path: the scenario's articles arrive as published (no first-start backfill, which
        # would publish the alerts for the record and notify no one).
        alerter=AlerterSettings(
            idle_advance=False, batch_size=50, group_id=group, alertmanager_url=am_url, backfill=False
        ),
        metrics=MetricsSettings(port=0),
    )


def create_topics(settings: Any, config: Any) -> Any:
    from monitor.alerts.routes import routed_topics
    from monitor.bus import topic_specs
    from monitor.bus.kafka import KafkaBus

    bus = KafkaBus(settings.kafka)
    bus.create_topics(topic_specs(settings, routed=routed_topics(config.routes)))
    return bus


def publish(bus: Any, settings: Any, articles: list[Any]) -> None:
    from monitor.bus.base import Message

    with bus.producer() as producer:
        producer.publish_all(
            [Message(settings.kafka.topics.scored, a.article_id, a.encode()) for a in articles]
        )


def read_topic(bus: Any, topic: str) -> list[Any]:
    from monitor.events import decode_alert

    events = []
    with bus.consumer([topic], group_id=None, from_beginning=True) as consumer:
        while any(consumer.lag().values()):
            events += [decode_alert(r.value) for r in consumer.poll(max_records=500, timeout=0.5)]
    return events


def pump(stage: Any, check: Callable[[], bool], *, what: str, timeout: float = TIMEOUT) -> None:
    """Step the alerter until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        stage.runner.step()


def split_scenario() -> tuple[Any, list[Any], list[Any]]:
    """tariff_shock, cut where both of its alerts fire and neither has resolved yet."""
    from fixtures import scenarios

    scenario = scenarios.load("tariff_shock")
    cut = scenario.start + timedelta(hours=14)
    first = [a for a in scenario.articles if a.published_at < cut]
    return scenario, first, [a for a in scenario.articles if a.published_at >= cut]


def by_name(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        out.setdefault(alert["labels"]["alertname"], []).append(alert)
    return out


def test_alerts_reach_alertmanager_the_webhook_and_the_routed_topic_and_resolve(
    kafka_bootstrap, unique_name, tmp_path, alertmanager, receiver
):
    from pipelines.alerter import build_alerter

    topics = topic_names(unique_name)
    routed = unique_name("alerts-critical")
    config = make_config(routed)
    settings = make_settings(kafka_bootstrap, topics, tmp_path / "state", unique_name("g"), alertmanager.url)
    bus = create_topics(settings, config)
    _, first, rest = split_scenario()
    publish(bus, settings, first)
    stage = build_alerter(settings, config, bus, CollectorRegistry(), max_wait=0.1, poll_timeout=0.2)
    try:
        pump(stage, lambda: len(read_topic(bus, topics["alerts"])) >= 2, what="two alerts on the alert topic")
        fired = {e.rule: e for e in read_topic(bus, topics["alerts"])}
        assert {e.state for e in fired.values()} == {"firing"}

        # In Alertmanager's API, with their labels and annotations.
        active = wait_for(
            "both alerts in Alertmanager",
            lambda: (a := by_name(alertmanager.alerts())).keys() >= set(fired) and a,
            timeout=TIMEOUT,
        )
        for rule, event in fired.items():
            (alert,) = active[rule]
            assert alert["labels"] == {
                "alertname": rule,
                "severity": event.severity,
                "subject": event.subject,
                "signal": event.signal,
                "window": event.window,
                "dedup_key": event.alert_id,
            }
            assert alert["annotations"]["summary"] == event.summary
            assert event.evidence[0].url in alert["annotations"]["evidence"]
            assert alert["annotations"]["value"] == f"{event.value:g}"
            assert alert["status"]["state"] == "active"
            assert alert["startsAt"].startswith(event.started_at.strftime("%Y-%m-%dT%H:%M:%S"))
        # ... notified at the webhook (one group per subject) ...
        receiver.wait(lambda: by_name(receiver.alerts()).keys() >= set(fired), timeout=TIMEOUT)
        notified = by_name(receiver.alerts())
        assert {a["status"] for rule in fired for a in notified[rule]} == {"firing"}
        groups = {n["groupLabels"].get("subject") for n in receiver.notifications}
        assert groups == {"trade_tariffs", "overall"}
        # ... and the critical one on its routed topic too: the same record.
        (copy,) = read_topic(bus, routed)
        assert copy == fired["tariff_strain_high"]

        # The rest of the scenario: both resolve, and the resolved notices arrive.
        publish(bus, settings, rest)
        pump(stage, lambda: len(read_topic(bus, topics["alerts"])) >= 6, what="the six alert events")
        assert receiver.wait(
            lambda: (
                {a["labels"]["alertname"] for a in receiver.alerts() if a["status"] == "resolved"}
                >= set(fired)
            ),
            timeout=TIMEOUT,
        ), receiver.notifications
        resolved = {e.rule: e for e in read_topic(bus, topics["alerts"]) if e.state == "resolved"}
        for rule, event in resolved.items():
            (notice,) = [a for a in by_name(receiver.alerts())[rule] if a["status"] == "resolved"]
            assert notice["endsAt"].startswith(event.at.strftime("%Y-%m-%dT%H:%M:%S"))
    finally:
        stage.close()

    # `monitor alerts tail --topic` reads the routed topic: every critical alert event, nothing else.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PYTHONPATH": str(REPO), "MONITOR_LOG_LEVEL": "WARNING"}
    )
    tail = subprocess.run(
        [MONITOR, "alerts", "tail", "--topic", routed, "--from-beginning", "--timeout", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    on_alerts = [e.to_json_dict() for e in read_topic(bus, topics["alerts"]) if e.severity == "critical"]
    assert sorted(json.dumps(x, sort_keys=True) for x in lines) == sorted(
        json.dumps(x, sort_keys=True) for x in on_alerts
    )
    assert len(lines) == 4 and {x["rule"] for x in lines} == {"tariff_strain_high"}
    bus.close()


def test_a_silence_suppresses_the_notification_and_a_restart_makes_no_second_alert(
    kafka_bootstrap, unique_name, tmp_path, alertmanager, receiver
):
    from pipelines.alerter import build_alerter

    topics = topic_names(unique_name)
    config = make_config(unique_name("alerts-critical"), echo=True)
    settings = make_settings(kafka_bootstrap, topics, tmp_path / "state", unique_name("g"), alertmanager.url)
    bus = create_topics(settings, config)
    now = datetime.now(UTC)
    silence = alertmanager.silence(
        matchers={"alertname": ECHO},
        starts=now.isoformat(),
        ends=(now + timedelta(hours=1)).isoformat(),
        comment="a known story",
    )
    _, first, rest = split_scenario()
    publish(bus, settings, first)
    stage = build_alerter(settings, config, bus, CollectorRegistry(), max_wait=0.1, poll_timeout=0.2)
    try:
        pump(
            stage, lambda: len(read_topic(bus, topics["alerts"])) >= 3, what="three alerts on the alert topic"
        )
        on_topic = read_topic(bus, topics["alerts"])
        assert {e.rule for e in on_topic} == {ECHO, "tariff_strain_high", "relationship_shift"}  # still flows
        # Alertmanager has the silenced alert, suppressed by the silence...
        echo = wait_for(
            "the silenced alert in the API", lambda: by_name(alertmanager.alerts()).get(ECHO), timeout=TIMEOUT
        )
        assert echo[0]["status"] == {"state": "suppressed", "silencedBy": [silence], "inhibitedBy": []}
        high = by_name(alertmanager.alerts())["tariff_strain_high"]
        before = high[0]
        # ... and notifies the unsilenced alert of the same group (subject trade_tariffs) without it.
        assert receiver.wait(lambda: "tariff_strain_high" in by_name(receiver.alerts()), timeout=TIMEOUT)
    finally:
        stage.close()

    # A restart: the same state and group. Nothing new on the topic; the firing alerts are posted again
    # (endsAt moves on) under the same labels: still one Alertmanager alert per episode.
    again = build_alerter(settings, config, bus, CollectorRegistry(), max_wait=0.1, poll_timeout=0.2)
    try:
        again.runner.step()

        def reposted() -> Any:
            current = by_name(alertmanager.alerts()).get("tariff_strain_high", [])
            return current if current and current[0]["endsAt"] > before["endsAt"] else None

        (after,) = wait_for("the restarted alerter's re-post", reposted, timeout=TIMEOUT)
        assert after["fingerprint"] == before["fingerprint"] and after["startsAt"] == before["startsAt"]
        counts = {name: len(alerts) for name, alerts in by_name(alertmanager.alerts()).items()}
        assert counts == {ECHO: 1, "tariff_strain_high": 1, "relationship_shift": 1}
        assert len(read_topic(bus, topics["alerts"])) == 3

        # The episode ends: the resolved notice of the group arrives, and no notification ever carried
        # the silenced alert, while its firing and resolved records are on the topic.
        publish(bus, settings, rest)
        pump(again, lambda: len(read_topic(bus, topics["alerts"])) >= 10, what="the ten alert events")
        assert receiver.wait(
            lambda: any(
                a["status"] == "resolved" for a in by_name(receiver.alerts()).get("tariff_strain_high", [])
            ),
            timeout=TIMEOUT,
        )
    finally:
        again.close()
    assert ECHO not in by_name(receiver.alerts()), receiver.notifications
    assert sorted(e.state for e in read_topic(bus, topics["alerts"]) if e.rule == ECHO) == [
        "firing",
        "firing",
        "firing",
        "resolved",
    ]
    bus.close()


def test_a_route_to_a_missing_topic_stops_the_alerter_and_topics_create_makes_it(
    kafka_bootstrap, unique_name, tmp_path
):
    topics = topic_names(unique_name)
    routed = unique_name("alerts-critical")
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"routes": [{"topic": routed, "severity": "critical"}]}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PYTHONPATH": str(REPO),
            "MONITOR_CONFIG": str(path),
            "MONITOR_STATE_DIR": str(tmp_path / "state"),
            "MONITOR_METRICS__PORT": "0",
            **{f"MONITOR_KAFKA__TOPICS__{k.upper()}": v for k, v in topics.items()},
        }
    )
    env["MONITOR_KAFKA__TOPICS__ALERTER_LEASE"] = unique_name("lease")
    run = subprocess.run(
        [MONITOR, "alerter"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("monitor:")]
    assert errors == [
        f"monitor: configuration error: {path}: routes[0].topic: expected an existing Kafka topic "
        f"(`monitor topics create` creates it), got '{routed}'"
    ], run.stderr
    created = subprocess.run(
        [MONITOR, "topics", "create"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    rows = {line.split("\t")[0]: line.split("\t")[1] for line in created.stdout.splitlines()}
    assert rows[routed] == "created" and rows[topics["alerts"]] in ("created", "exists")


def test_the_starter_config_holds_a_warning_back_while_a_critical_alert_fires_on_its_subject(
    alertmanager, receiver
):
    """The inhibition of deploy/alertmanager/alertmanager.yml on the running Alertmanager: a warning about
    trade_tariffs is suppressed by the critical tariff alert; a warning about defence is not."""
    from samples import firing

    from monitor.alerts.alertmanager import AlertmanagerSink

    critical = firing(alert_id="c1", rule="tariff_strain_high", severity="critical", subject="trade_tariffs")
    muted = firing(alert_id="w1", rule="trade_warning", severity="warning", subject="trade_tariffs")
    other = firing(alert_id="w2", rule="defence_warning", severity="warning", subject="defence")
    sink = AlertmanagerSink(alertmanager.url)
    try:
        for event in (critical, muted, other):
            sink.submit(event)
        alerts = wait_for(
            "the three alerts in Alertmanager",
            lambda: (
                (a := by_name(alertmanager.alerts())).keys() >= {e.rule for e in (critical, muted, other)}
                and a
            ),
            timeout=TIMEOUT,
        )
        (source,) = alerts["tariff_strain_high"]
        assert alerts["trade_warning"][0]["status"] == {
            "state": "suppressed",
            "silencedBy": [],
            "inhibitedBy": [source["fingerprint"]],
        }
        assert alerts["defence_warning"][0]["status"]["state"] == "active"
        assert source["status"]["state"] == "active"
        # Notified: one group per subject; the trade_tariffs group without the held-back warning.
        receiver.wait(
            lambda: (
                {n["groupLabels"].get("subject") for n in receiver.notifications}
                >= {"trade_tariffs", "defence"}
            ),
            timeout=TIMEOUT,
        )
        notified = {a["labels"]["alertname"] for a in receiver.alerts()}
        assert notified == {"tariff_strain_high", "defence_warning"}
    finally:
        sink.close()
