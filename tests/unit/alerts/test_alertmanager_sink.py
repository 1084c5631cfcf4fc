"""The Alertmanager sink against a local HTTP server standing in for the API v2 endpoint (the real
Alertmanager is in tests/integration/test_alertmanager.py): payload, re-posts, retries, never blocking,
and the stage's wiring (re-posting the firing alerts after a restart)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fixtures import scenarios
from prometheus_client import CollectorRegistry

from monitor.alerts.alertmanager import AlertmanagerSink, postable
from monitor.bus import topic_specs
from monitor.bus.base import Message
from monitor.bus.memory import InProcessBus
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.events import AlertEvidence, AlertFiring, AlertResolved
from monitor.metrics import AlerterMetrics
from monitor.settings import AlerterSettings, MetricsSettings, Settings, load_settings
from pipelines.alerter import build_alerter

T = datetime(2025, 8, 4, 7, 55, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def firing(n: int = 1, **changes: Any) -> AlertFiring:
    fields: dict[str, Any] = {
        "alert_id": f"id{n}",
        "rule": "tariff_strain_high",
        "severity": "critical",
        "subject": "trade_tariffs",
        "signal": "stance_index",
        "value": -0.4,
        "threshold": -0.35,
        "baseline": None,
        "window": "24h",
        "started_at": T - timedelta(minutes=30),
        "at": T,
        "evidence": [
            AlertEvidence(
                article_id="a1",
                title="US doubles tariffs on Indian goods",
                url="https://wire.example/1",
                stance=-0.9,
                story_id="s1",
                outlets=4,
            ),
            AlertEvidence(
                article_id="a2",
                title="Exporters brace",
                url="https://desk.example/2",
                stance=-0.6,
                story_id="s2",
                outlets=1,
            ),
        ],
        "summary": "Trade strain is high.",
    }
    fields.update(changes)
    return AlertFiring(**fields)


def resolved(n: int = 1) -> AlertResolved:
    return AlertResolved(**{**firing(n).model_dump(exclude={"type", "state"}), "at": T + timedelta(hours=3)})


class AlertmanagerStandIn:
    """A local HTTP server taking ``POST /api/v2/alerts`` (scripted statuses, then 200)."""

    def __init__(self, statuses: list[int] | None = None, *, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.posts: list[list[dict[str, Any]]] = []
        self.paths: list[str] = []
        self.changed = threading.Condition()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(stand_in.delay)
                status = stand_in.statuses.pop(0) if stand_in.statuses else 200
                with stand_in.changed:
                    stand_in.paths.append(self.path)
                    if status == 200:
                        stand_in.posts.append(json.loads(body))
                    stand_in.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, check: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(check, timeout)

    def alerts(self) -> list[dict[str, Any]]:
        return [a for post in self.posts for a in post]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[AlertmanagerStandIn]:
    server = AlertmanagerStandIn()
    yield server
    server.close()


def test_payload_has_the_labels_annotations_and_times():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    alert = postable(firing(), now=now, resolve_timeout=timedelta(minutes=5))
    assert alert["labels"] == {
        "alertname": "tariff_strain_high",
        "severity": "critical",
        "subject": "trade_tariffs",
        "signal": "stance_index",
        "window": "24h",
        "dedup_key": "id1",
    }
    notes = alert["annotations"]
    assert notes["summary"] == "Trade strain is high."
    assert notes["evidence"].splitlines() == [
        "US doubles tariffs on Indian goods (4 outlets) https://wire.example/1",
        "Exporters brace https://desk.example/2",
    ]
    assert (notes["value"], notes["threshold"], notes["baseline"]) == ("-0.4", "-0.35", "none")
    assert notes["dedup_key"] == notes["alert_id"] == "id1"
    assert alert["startsAt"] == "2025-08-04T07:25:00Z"
    assert alert["endsAt"] == "2026-01-01T00:05:00Z"  # firing: now + resolve timeout
    done = postable(resolved(), now=now, resolve_timeout=timedelta(minutes=5))
    assert done["labels"] == alert["labels"]  # the same Alertmanager alert
    assert done["endsAt"] == "2025-08-04T10:55:00Z"  # resolved: its own time


def test_firing_is_posted_then_reposted_until_resolved(stand_in):
    registry = CollectorRegistry()
    sink = AlertmanagerSink(
        stand_in.url, resolve_timeout=timedelta(seconds=3), metrics=AlerterMetrics(registry)
    )
    try:
        sink.submit(firing())
        # Re-posted every third of the resolve timeout (1 s), each time with a later endsAt.
        assert stand_in.wait(lambda: len(stand_in.posts) >= 3)
        ends = [post[0]["endsAt"] for post in stand_in.posts[:3]]
        assert ends == sorted(ends) and len(set(ends)) >= 2
        assert set(stand_in.paths) == {"/api/v2/alerts"}
        sink.submit(resolved())
        assert stand_in.wait(lambda: stand_in.posts[-1][0]["endsAt"] == "2025-08-04T10:55:00Z")
        count = len(stand_in.posts)
        # No more re-posts once resolved: the next re-post time passes without one (1 s interval).
        assert not stand_in.wait(lambda: len(stand_in.posts) > count, timeout=2.5)
    finally:
        sink.close()
    assert registry.get_sample_value("monitor_alertmanager_deliveries_total", {"outcome": "ok"}) == count


def test_server_errors_are_retried_and_client_errors_are_not():
    server = AlertmanagerStandIn([503, 500, 400])
    registry = CollectorRegistry()
    sink = AlertmanagerSink(
        server.url, metrics=AlerterMetrics(registry), backoff_base=0.01, resolve_timeout=timedelta(hours=1)
    )
    try:
        sink.submit(firing(1))  # 503, 500, then 400: given up, not retried
        sink.submit(firing(2))  # 200
        assert server.wait(lambda: len(server.posts) == 1)
    finally:
        sink.close()
        server.close()
    assert server.posts[0][0]["labels"]["dedup_key"] == "id2"
    sample = registry.get_sample_value
    assert sample("monitor_alertmanager_deliveries_total", {"outcome": "retry"}) == 2
    assert sample("monitor_alertmanager_deliveries_total", {"outcome": "failed"}) == 1
    assert sample("monitor_alertmanager_deliveries_total", {"outcome": "ok"}) == 1


def test_submit_never_blocks_on_a_slow_alertmanager():
    server = AlertmanagerStandIn(delay=2.0)
    sink = AlertmanagerSink(server.url, queue_size=2, resolve_timeout=timedelta(hours=1))
    try:
        started = time.monotonic()
        accepted = [sink.submit(firing(n)) for n in range(10)]
        assert time.monotonic() - started < 0.5
        assert not all(accepted)  # the bounded queue dropped some
    finally:
        sink.close(timeout=0.1)
        server.close()


def test_the_url_must_be_http_and_is_checked_with_the_settings():
    with pytest.raises(ConfigError, match="MONITOR_ALERTER__ALERTMANAGER_URL"):
        load_settings({"MONITOR_ALERTER__ALERTMANAGER_URL": "alertmanager:9093"})
    settings = load_settings({"MONITOR_ALERTER__ALERTMANAGER_URL": ""})
    assert settings.alerter.alertmanager_url is None
    settings = load_settings({"MONITOR_ALERTER__ALERTMANAGER_RESOLVE_TIMEOUT": "2m"})
    assert settings.alerter.alertmanager_resolve_timeout == timedelta(minutes=2)


# -- the stage ----------------------------------------------------------------------------------------


def stage_settings(state_dir: Path, url: str) -> Settings:
    return Settings(
        state_dir=state_dir,
        alerter=AlerterSettings(idle_advance=False, batch_size=10, alertmanager_url=url, backfill=False),
        metrics=MetricsSettings(port=0),
    )


def test_the_stage_posts_its_alerts_and_reposts_the_firing_ones_after_a_restart(tmp_path, stand_in):
    scenario = scenarios.load("tariff_shock")
    settings = stage_settings(tmp_path, stand_in.url)
    bus = InProcessBus(clock=NOW.timestamp)
    bus.create_topics(topic_specs(settings))
    # Up to the evening of the first day: both rules firing, nothing resolved yet.
    first_day = [a for a in scenario.articles if a.published_at < scenario.start + timedelta(hours=14)]
    bus.producer().publish_all(
        [Message(settings.kafka.topics.scored, a.article_id, a.encode()) for a in first_day]
    )
    fast: dict[str, Any] = {"max_wait": 0.0, "poll_timeout": 0.01, "clock": lambda: NOW}

    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **fast)
    while stage.runner.step():
        pass
    stage.close()
    first = {a["labels"]["alertname"]: a for a in stand_in.alerts()}
    assert set(first) == {"tariff_strain_high", "relationship_shift"}
    posts = len(stand_in.posts)
    on_topic = len(bus.records(settings.kafka.topics.alerts))

    again = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **fast)
    try:
        # The restarted alerter publishes nothing new, but keeps both firing alerts alive in Alertmanager,
        # under the same labels (so the same Alertmanager alerts).
        assert stand_in.wait(lambda: len(stand_in.posts) >= posts + 2)
        assert len(bus.records(settings.kafka.topics.alerts)) == on_topic
        resumed = {a["labels"]["alertname"]: a for post in stand_in.posts[posts:] for a in post}
        assert set(resumed) == set(first)
        for name, alert in resumed.items():
            assert alert["labels"] == first[name]["labels"]
            assert alert["startsAt"] == first[name]["startsAt"]
    finally:
        again.close()


def test_backfill_alerts_are_not_posted_nor_kept_alive_after_a_restart(tmp_path, stand_in):
    scenario = scenarios.load("tariff_shock")
    settings = stage_settings(tmp_path, stand_in.url).model_copy(
        update={"alerter": AlerterSettings(idle_advance=False, batch_size=10, alertmanager_url=stand_in.url)}
    )
    bus = InProcessBus(clock=NOW.timestamp)
    bus.create_topics(topic_specs(settings))
    cut = scenario.start + timedelta(hours=14)
    first_day = [a for a in scenario.articles if a.published_at < cut]
    bus.producer().publish_all(
        [Message(settings.kafka.topics.scored, a.article_id, a.encode()) for a in first_day]
    )
    fast: dict[str, Any] = {"max_wait": 0.0, "poll_timeout": 0.01, "clock": lambda: NOW}
    for _ in range(2):  # a first start (backfill), then a restart: neither posts the past
        stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **fast)
        while stage.runner.step():
            pass
        stage.close()  # posts whatever was queued
    from monitor.events import decode_alert

    events = [decode_alert(r.value) for r in bus.records(settings.kafka.topics.alerts)]
    assert events and all(e.backfill for e in events)
    assert stand_in.posts == []
