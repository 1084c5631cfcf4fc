"""The webhook sink against a real local HTTP server: delivery, retries, giving up, never blocking."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts.webhook import WebhookSink
from monitor.events import AlertFiring, decode_alert
from monitor.metrics import AlerterMetrics

T = datetime(2025, 8, 4, 7, 55, tzinfo=UTC)


def alert(n: int = 1) -> AlertFiring:
    return AlertFiring(
        alert_id=f"id{n}",
        rule="tariff_strain_high",
        severity="critical",
        subject="trade_tariffs",
        signal="stance_index",
        value=-0.4,
        threshold=-0.35,
        baseline=None,
        window="24h",
        started_at=T - timedelta(minutes=30),
        at=T,
        evidence=[],
        summary="Trade strain is high.",
    )


class Receiver:
    """A local HTTP endpoint answering with scripted status codes (then 200)."""

    def __init__(self, statuses: list[int], *, delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.done = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.bodies.append(body)
                receiver.headers.append(dict(self.headers))
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status < 300:
                    receiver.done.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator:
    made: list[Receiver] = []

    def make(statuses: list[int], **kw) -> Receiver:
        made.append(Receiver(statuses, **kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


def outcomes(registry: CollectorRegistry) -> dict[str, float]:
    return {
        o: registry.get_sample_value("monitor_webhook_deliveries_total", {"outcome": o})
        for o in ("ok", "retry", "failed")
    }


def sink(url: str, registry: CollectorRegistry, **kw) -> WebhookSink:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    return WebhookSink(url, metrics=AlerterMetrics(registry), timeout=timedelta(seconds=5), **kw)


def test_delivers_the_alert_json_as_on_the_topic(receiver_factory):
    receiver = receiver_factory([])
    registry = CollectorRegistry()
    s = sink(receiver.url, registry)
    assert s.submit(alert())
    assert receiver.done.wait(10)
    s.close()
    assert decode_alert(receiver.bodies[0]) == alert()
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["X-Alert-Id"] == "id1"
    assert outcomes(registry) == {"ok": 1, "retry": 0, "failed": 0}


def test_retries_server_errors_and_rate_limits_then_succeeds(receiver_factory):
    receiver = receiver_factory([500, 503, 429])
    registry = CollectorRegistry()
    s = sink(receiver.url, registry, max_retries=5)
    s.submit(alert())
    assert receiver.done.wait(10)
    s.close()
    assert len(receiver.bodies) == 4
    assert outcomes(registry) == {"ok": 1, "retry": 3, "failed": 0}


def test_gives_up_after_the_last_retry(receiver_factory):
    receiver = receiver_factory([500] * 10)
    registry = CollectorRegistry()
    s = sink(receiver.url, registry, max_retries=2)
    s.submit(alert())
    deadline = time.monotonic() + 10
    while outcomes(registry)["failed"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.close()
    assert len(receiver.bodies) == 3
    assert outcomes(registry) == {"ok": 0, "retry": 2, "failed": 1}


def test_client_errors_are_not_retried(receiver_factory):
    receiver = receiver_factory([404])
    registry = CollectorRegistry()
    s = sink(receiver.url, registry, max_retries=5)
    s.submit(alert())
    deadline = time.monotonic() + 10
    while outcomes(registry)["failed"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.close()
    assert len(receiver.bodies) == 1


def test_unreachable_endpoint_is_retried_then_failed():
    registry = CollectorRegistry()
    s = sink("http://127.0.0.1:9/hook", registry, max_retries=1)  # discard port: connection refused
    s.submit(alert())
    deadline = time.monotonic() + 10
    while outcomes(registry)["failed"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.close()
    assert outcomes(registry) == {"ok": 0, "retry": 1, "failed": 1}


def test_submit_never_blocks_and_a_full_queue_drops(receiver_factory):
    receiver = receiver_factory([], delay=0.5)  # a slow receiver
    registry = CollectorRegistry()
    s = sink(receiver.url, registry, queue_size=2)
    started = time.monotonic()
    accepted = [s.submit(alert(n)) for n in range(10)]
    assert time.monotonic() - started < 0.2
    assert accepted.count(False) >= 7  # one in flight at most, two queued
    s.close(timeout=0.1)
    assert outcomes(registry)["failed"] >= 7


def test_rejects_a_url_that_is_not_http():
    with pytest.raises(ValueError, match="http"):
        WebhookSink("ftp://example.org/hook")


def test_body_is_compact_json_with_alert_id(receiver_factory):
    receiver = receiver_factory([])
    s = sink(receiver.url, CollectorRegistry())
    s.submit(alert(7))
    assert receiver.done.wait(10)
    s.close()
    assert json.loads(receiver.bodies[0])["alert_id"] == "id7"


def test_a_bad_url_error_does_not_quote_it():
    with pytest.raises(ValueError, match="http") as info:
        WebhookSink("ftp://admin:token@x/hook")
    assert "token" not in str(info.value)


def test_logs_show_only_the_scheme_and_host(receiver_factory, caplog):
    receiver = receiver_factory([404])
    url = receiver.url.replace("http://", "http://admin:pw-secret@") + "/T0/path-secret?sig=sig-secret"
    registry = CollectorRegistry()
    with caplog.at_level(logging.DEBUG):
        s = sink(url, registry, max_retries=0)
        assert s.target == receiver.url.replace("http://", "http://admin:***@").removesuffix("/hook") + "/***"
        s.submit(alert())
        deadline = time.monotonic() + 10
        while outcomes(registry)["failed"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        s.close()
    assert receiver.headers[0]["Authorization"].startswith("Basic ")  # the credentials were used
    assert s.target in caplog.text
    assert "refused" in caplog.text
    assert "secret" not in caplog.text
