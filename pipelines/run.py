"""``monitor run``: poller, scorer and alerter in one process.

Without Kafka settings the stages talk over the in-process bus and keep their state in SQLite under
``--state-dir``; with ``KAFKA_BOOTSTRAP_SERVERS`` they use the broker, exactly like the separate stage
processes. ``--once`` polls every feed once, processes everything to the end, prints the alerts that fired
as JSON lines on stdout and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import threading
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from monitor.alerts.routes import routed_topics
from monitor.bus import Bus, make_bus, topic_specs
from monitor.bus.stage import Stage
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.events import AlertFiring, AlertResolved
from monitor.feeds.model import FeedConfig
from monitor.metrics import StageMetrics, build_info
from monitor.settings import Settings
from monitor.urls import is_http_url, redact_url
from pipelines.process import claim_metrics_port, serving_metrics, stop_on_signals

log = logging.getLogger(__name__)

AlertEvent = AlertFiring | AlertResolved


def feeds_from_urls(urls: Sequence[str]) -> list[FeedConfig]:
    """Feed entries for ``--feed URL`` options (ids derived from the URL, so state survives reruns).

    The id and the name come from the redacted URL: credentials in it are used to fetch only, and a
    changed password keeps the feed's id (and the ids of its GUID-keyed articles)."""
    feeds = []
    for url in urls:
        shown = redact_url(url)
        if not is_http_url(url):
            raise ConfigError(
                source="command line", key="--feed", expected="an http:// or https:// URL", got=shown
            )
        digest = hashlib.sha256(shown.encode("utf-8")).hexdigest()[:12]
        feeds.append(FeedConfig(id=f"cli-{digest}", url=url, name=shown))
    return feeds


def drain(stages: Sequence[Stage], *, quiet_rounds: int = 2) -> int:
    """Step every stage until ``quiet_rounds`` rounds in a row consume nothing anywhere."""
    quiet = 0
    total = 0
    while quiet < quiet_rounds:
        consumed = sum(stage.step() for stage in stages)
        total += consumed
        quiet = quiet + 1 if consumed == 0 else 0
    return total


def _print_alert(event: AlertEvent) -> None:
    sys.stdout.write(event.model_dump_json() + "\n")
    sys.stdout.flush()


def main(args: argparse.Namespace, settings: Settings) -> int:
    # The classifier's heavy imports happen only here, so `monitor --help` stays light.
    from monitor.classify import load_classifier
    from pipelines.alerter import build_alerter
    from pipelines.poller import build_poller
    from pipelines.scorer import build_scorer

    config = load_config(settings.config)
    claim_metrics_port(settings)  # before the model loads
    feeds = feeds_from_urls(args.feed) if args.feed else list(config.feeds)
    if not feeds:
        log.warning("no feeds configured: pass --feed URL or list feeds in the config file")
    settings.state_dir.mkdir(parents=True, exist_ok=True)

    bus: Bus = make_bus(settings, durable=True)
    log.info(
        "monitor run: %d feeds, %d rules, %s bus, state in %s%s",
        len(feeds),
        len(config.rules),
        bus.name,
        settings.state_dir,
        " (once)" if args.once else "",
    )
    bus.create_topics(topic_specs(settings, routed=routed_topics(config.routes)))

    registry = CollectorRegistry()
    build_info(registry, stage="run")
    stage_metrics = StageMetrics(registry)
    log.info("loading the classifier")
    classifier = load_classifier(settings.scorer)

    fired: list[AlertEvent] = []
    on_alert = fired.append if args.once else _print_alert
    producer = bus.producer()
    poller = build_poller(settings, feeds, producer, registry, stage_metrics=stage_metrics)
    scorer = build_scorer(settings, bus, registry, classifier=classifier, stage_metrics=stage_metrics)
    alerter = build_alerter(settings, config, bus, registry, stage_metrics=stage_metrics, on_alert=on_alert)
    stages: list[Stage] = [poller, scorer, alerter]  # sources first
    consumers = stages[1:]

    def health() -> tuple[bool, str]:
        checks = [stage.health() for stage in stages]
        return all(ok for ok, _ in checks), "; ".join(reason for _, reason in checks)

    try:
        with serving_metrics(settings, registry, health=health):
            if not args.once:
                if alerter.backfilling:
                    # A first start: read the feeds' back catalogue whole before going live, so all of
                    # it is folded into the windows (and its past alerts are not notified).
                    log.info("first start: polling every feed once for the back catalogue")
                    poller.step()
                    drain(consumers)
                return _run_forever(stages)
            started = time.monotonic()
            log.info("polled every feed once: %d articles published", poller.step())
            processed = drain(consumers)
            for stage in stages:
                stage.flush()
            for event in fired:
                if isinstance(event, AlertFiring):
                    _print_alert(event)
            log.info(
                "done in %.1fs: %d records processed, %d alerts fired",
                time.monotonic() - started,
                processed,
                sum(isinstance(e, AlertFiring) for e in fired),
            )
            return 0
    finally:
        for stage in reversed(stages):
            stage.close()
        producer.close()
        bus.close()


def _run_forever(stages: Sequence[Stage]) -> int:
    """Every stage in a thread of its own until a signal (or a stage failing) stops them all."""
    stop = stop_on_signals("shutting down")
    failed = threading.Event()

    def run(stage: Stage) -> None:
        try:
            stage.run(stop)
        except Exception:
            log.exception("a stage failed; shutting down")
            failed.set()
            stop.set()

    threads = [threading.Thread(target=run, args=(s,), name=f"stage-{s.name}") for s in reversed(stages)]
    for thread in threads:  # consumers first, then the poller
        thread.start()
    log.info("running: alerts print on stdout as they fire (Ctrl-C stops)")
    try:
        stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    return 1 if failed.is_set() else 0
