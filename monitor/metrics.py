"""All Prometheus metrics of the project, in one place, on an injected registry.

Conventions: the ``monitor_`` namespace, base units (``_seconds``, ``_bytes``), ``_total`` for counters,
low-cardinality labels (stage, topic, outcome, feed). Each stage builds the metric groups it uses on its
process's registry; tests build them on a fresh ``CollectorRegistry``.

:func:`serve` exposes ``/metrics`` and ``/healthz`` over HTTP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from monitor import __version__
from monitor.outcomes import OUTCOMES

log = logging.getLogger(__name__)

NAMESPACE = "monitor"


class StageMetrics:
    """The consume/publish loop shared by every stage (label ``stage``: poller, scorer, alerter)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter(
            "records_consumed",
            "Records consumed from the bus.",
            ["stage", "topic"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.published = Counter(
            "records_published",
            "Records published to the bus and acknowledged.",
            ["stage", "topic"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.deadletters = Counter(
            "deadletters",
            "Records sent to the dead-letter topic, by the topic they came from.",
            ["stage", "topic"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.errors = Counter(
            "stage_errors",
            "Errors a stage recovered from, by kind.",
            ["stage", "kind"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "stage_batch_seconds",
            "Time to process and publish one consumed batch.",
            ["stage"],
            namespace=NAMESPACE,
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.consumer_lag = Gauge(
            "consumer_lag_records",
            "Records on the input topic not yet consumed by this stage.",
            ["stage", "topic"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.last_progress = Gauge(
            "stage_last_progress_timestamp_seconds",
            "Unix time of the stage's last processed batch.",
            ["stage"],
            namespace=NAMESPACE,
            registry=registry,
        )


def build_info(registry: CollectorRegistry, *, stage: str) -> None:
    """``monitor_build_info{version,stage}``: which build is running where."""
    info = Info("build", "Build of the running process.", namespace=NAMESPACE, registry=registry)
    info.info({"version": __version__, "stage": stage})


HealthCheck = Callable[[], tuple[bool, str]]


class MetricsServer:
    """Serves ``/metrics`` (Prometheus text format) and ``/healthz`` (200 ok / 503 reason)."""

    def __init__(
        self, registry: CollectorRegistry, *, host: str, port: int, health: HealthCheck | None = None
    ) -> None:
        self._registry = registry
        self._health = health or (lambda: (True, "ok"))
        registry_ref, health_ref = self._registry, self._health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = generate_latest(registry_ref)
                    self._send(200, CONTENT_TYPE_LATEST, body)
                elif path in ("/healthz", "/health"):
                    ok, reason = health_ref()
                    self._send(200 if ok else 503, "text/plain; charset=utf-8", (reason + "\n").encode())
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("serving /metrics and /healthz on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- poller metrics (feed ingestion) ---

FEED_OUTCOMES = OUTCOMES
ENTRY_KINDS = ("new", "duplicate", "irrelevant")


class PollerMetrics:
    """Feed polling: outcomes, sizes, entries, freshness, scheduling (label ``feed`` = the feed id)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.polls = Counter(
            "feed_polls",
            "Feed polls by outcome.",
            ["feed", "outcome"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.fetch_seconds = Histogram(
            "feed_fetch_duration_seconds",
            "Time to fetch (and read) a feed, by outcome.",
            ["outcome"],
            namespace=NAMESPACE,
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.fetched_bytes = Counter(
            "feed_fetched_bytes",
            "Bytes of feed bodies read (after content decoding).",
            ["feed"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.entries = Counter(
            "feed_entries",
            "Feed entries seen, by kind: new, duplicate (seen before), irrelevant (gated).",
            ["feed", "kind"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.articles_published = Counter(
            "articles_published",
            "Articles published to the articles topic and acknowledged.",
            ["feed"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.last_new_entry = Gauge(
            "feed_last_new_entry_timestamp_seconds",
            "Unix time the feed last had a new entry.",
            ["feed"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.staleness = Gauge(
            "feed_staleness_seconds",
            "Seconds since the feed's last new entry (since first poll if none).",
            ["feed"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.expected_interval = Gauge(
            "feed_expected_interval_seconds",
            "The normal poll interval in force for the feed.",
            ["feed"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.consecutive_failures = Gauge(
            "feed_consecutive_failures",
            "Polls of the feed that failed in a row.",
            ["feed"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.last_success = Gauge(
            "feed_last_success_timestamp_seconds",
            "Unix time of the feed's last successful poll.",
            ["feed"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.scheduler_lag = Histogram(
            "scheduler_lag_seconds",
            "Actual start of a scheduled poll minus its scheduled time.",
            namespace=NAMESPACE,
            registry=registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )

    def add_feed(self, feed: str, *, staleness_since: Callable[[], float | None]) -> None:
        """Create the feed's series at zero, and its staleness gauge (computed at scrape time).

        ``staleness_since`` returns the Unix time the staleness counts from (None: not known yet, NaN).
        """
        for outcome in FEED_OUTCOMES:
            self.polls.labels(feed=feed, outcome=outcome)
        for kind in ENTRY_KINDS:
            self.entries.labels(feed=feed, kind=kind)
        self.fetched_bytes.labels(feed=feed)
        self.articles_published.labels(feed=feed)
        self.consecutive_failures.labels(feed=feed)

        def staleness() -> float:
            since = staleness_since()
            return float("nan") if since is None else max(0.0, time.time() - since)

        self.staleness.labels(feed=feed).set_function(staleness)


# --- scorer metrics (classifier stage) ---


class ScorerMetrics:
    """The classifier stage: what it scored, how big its batches were, how long inference and the whole
    trip from fetch to score took, and which model is running."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scored = Counter(
            "articles_scored",
            "Articles scored, by stance label.",
            ["stance"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.batch_size = Histogram(
            "scorer_batch_size",
            "Articles per scored micro-batch.",
            namespace=NAMESPACE,
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.inference_seconds = Histogram(
            "scorer_inference_seconds",
            "Time the classifier took per micro-batch.",
            namespace=NAMESPACE,
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.end_to_end_lag = Histogram(
            "scorer_end_to_end_lag_seconds",
            "Seconds from an article's fetched_at to its score.",
            namespace=NAMESPACE,
            registry=registry,
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 21600),
        )
        self.model_info = Info(
            "model", "The classifier model in use.", namespace=NAMESPACE, registry=registry
        )

    def set_model(self, *, name: str, version: str) -> None:
        self.model_info.info({"name": name, "version": version})


# --- alerter metrics (signals and alerts) ---


class AlerterMetrics:
    """Signals as gauges, alert lifecycle, late articles, webhook and Alertmanager deliveries."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.signal_value = Gauge(
            "signal_value",
            "Latest value of a signal (stance_index, volume, stories, strained_share) per topic and window.",
            ["signal", "topic", "window"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.viewpoint_signal_value = Gauge(
            "viewpoint_signal_value",
            "Latest value of a signal (stance_index, volume, stories) over one viewpoint's outlets "
            "(india, us, international) per topic and window.",
            ["signal", "topic", "window", "viewpoint"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.alerts = Counter(
            "alerts",
            "Alert lifecycle events published (firing includes re-notifications).",
            ["rule", "severity", "state"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.leader = Gauge(
            "alerter_leader",
            "1 while this alerter is the active one (holds the lease), 0 while it stands by.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.takeovers = Counter(
            "alerter_takeovers",
            "Times this alerter became the active one.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.alert_state = Gauge(
            "alert_state",
            "State of each rule's alert: 0 inactive, 1 pending, 2 firing.",
            ["rule", "subject", "severity"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.late_articles = Counter(
            "late_articles",
            "Articles that arrived after a window they belong to was evaluated.",
            ["disposition"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "webhook_deliveries",
            "Alert webhook delivery attempts by outcome (ok, retry, failed).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.alertmanager_deliveries = Counter(
            "alertmanager_deliveries",
            "Alertmanager API v2 posts by outcome (ok, retry, failed); re-posts of firing alerts included.",
            ["outcome"],
            namespace=NAMESPACE,
            registry=registry,
        )
        for disposition in ("accepted", "dropped"):
            self.late_articles.labels(disposition)
        for outcome in ("ok", "retry", "failed"):
            self.webhook_deliveries.labels(outcome)
            self.alertmanager_deliveries.labels(outcome)
