"""``monitor alerts tail``: JSON lines or one readable line, filters, --max, --timeout; Kafka required."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from monitor.bus.base import Message
from monitor.bus.memory import InProcessBus
from monitor.events import AlertFiring, AlertResolved
from pipelines.alerttools import format_text, matches, tail_alerts
from pipelines.cli import main

T = datetime(2025, 8, 4, 7, 55, tzinfo=UTC)
TOPIC = "news.alerts"


def firing(
    n: int, *, severity: str = "critical", subject: str = "trade_tariffs", minutes: int = 0
) -> AlertFiring:
    return AlertFiring(
        alert_id=f"id{n}",
        rule=f"rule{n}",
        severity=severity,
        subject=subject,
        signal="stance_index",
        value=-0.4,
        threshold=-0.35,
        baseline=None,
        window="24h",
        started_at=T,
        at=T + timedelta(minutes=minutes),
        evidence=[],
        summary=f"Summary {n}.",
    )


def bus_with(events) -> InProcessBus:
    bus = InProcessBus()
    bus.producer().publish_all([Message(TOPIC, e.key, e.encode()) for e in events])
    return bus


def test_one_readable_line_per_alert():
    line = format_text(firing(1))
    assert line == (
        "2025-08-04T07:55:00Z FIRING   critical rule1 [trade_tariffs] stance_index 24h=-0.4  "
        "Summary 1.  (id1)"
    )
    resolved = AlertResolved(**{**firing(2).model_dump(exclude={"type", "state"}), "value": None})
    assert "RESOLVED" in format_text(resolved) and "24h=-" in format_text(resolved)


def test_filters_by_severity_and_topic():
    event = firing(1, severity="warning", subject="defence")
    assert matches(event, severities=None, topics=None)
    assert matches(event, severities=["warning", "critical"], topics=["defence"])
    assert not matches(event, severities=["critical"], topics=None)
    assert not matches(event, severities=None, topics=["trade_tariffs"])


def test_tail_prints_json_lines_in_event_order_with_filters_and_max():
    events = [firing(n, minutes=10 - n, severity="critical" if n % 2 else "info") for n in range(1, 7)]
    out = io.StringIO()
    printed = tail_alerts(
        bus_with(events),
        TOPIC,
        out=out,
        from_beginning=True,
        max_alerts=2,
        severities=["critical"],
        timeout=5,
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert printed == 2
    assert [x["alert_id"] for x in lines] == ["id5", "id3"]  # earliest first
    assert all(x["severity"] == "critical" and x["type"] == "AlertFiring" for x in lines)


def test_tail_from_the_end_prints_only_new_alerts_and_stops_after_the_timeout():
    bus = bus_with([firing(1)])
    out = io.StringIO()
    ready = threading.Event()

    def publish_later() -> None:
        ready.wait(5)
        bus.producer().publish_all(
            [Message(TOPIC, "k", firing(2).encode()), Message(TOPIC, "k", b"not json")]
        )

    thread = threading.Thread(target=publish_later)
    thread.start()
    printed = tail_alerts(bus, TOPIC, out=out, timeout=1.0, text=True, ready=ready.set)
    thread.join()
    assert printed == 1
    assert "rule2" in out.getvalue() and "rule1" not in out.getvalue()


def test_tail_needs_kafka_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("MONITOR_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    code = main(["alerts", "tail", "--max", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in err and "monitor run" in err


def test_alerter_stage_needs_kafka_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("MONITOR_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    assert main(["alerter"]) == 2
    assert "monitor run" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_max_must_be_positive(monkeypatch, capsys, bad):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    assert main(["alerts", "tail", "--max", bad]) == 2
    assert "--max" in capsys.readouterr().err
