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
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from monitor.bus import Bus, Consumer, make_bus, topic_specs
from monitor.config import load_config
from monitor.events import AlertFiring, AlertResolved, decode_alert
from monitor.errors import DecodeError
from monitor.feeds.model import FeedConfig
from monitor.metrics import MetricsServer, build_info
from monitor.settings import Settings

log = logging.getLogger(__name__)


class _Stage(Protocol):
    def step(self) -> int: ...

    def run(self, stop: threading.Event) -> None: ...

    def update_lag(self) -> None: ...


def feeds_from_urls(urls: Sequence[str]) -> list[FeedConfig]:
    """Feed entries for ``--feed URL`` options (ids derived from the URL, so state survives reruns)."""
    feeds = []
    for url in urls:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
        feeds.append(FeedConfig(id=f"cli-{digest}", url=url, name=url))
    return feeds


def _drain(stages: Sequence[_Stage], *, quiet_rounds: int = 2) -> None:
    """Step every stage until a few rounds in a row consume nothing anywhere."""
    quiet = 0
    while quiet < quiet_rounds:
        consumed = sum(stage.step() for stage in stages)
        quiet = quiet + 1 if consumed == 0 else 0


def _print_alert(event: AlertFiring | AlertResolved) -> None:
    sys.stdout.write(event.model_dump_json() + "\n")
    sys.stdout.flush()


def _read_alerts(consumer: Consumer, *, timeout: float) -> list[AlertFiring | AlertResolved]:
    out = []
    while records := consumer.poll(max_records=500, timeout=timeout):
        for record in records:
            try:
                out.append(decode_alert(record.value))
            except DecodeError as exc:
                log.warning("undecodable alert topic=%s offset=%s: %s", record.topic, record.offset, exc)
    return out


def main(args: argparse.Namespace, settings: Settings) -> int:
    # Heavy imports (the model) only here, so `monitor --help` stays light.
    from monitor.classify import load_classifier
    from pipelines.alerter import build_alerter
    from pipelines.poller import build_poller
    from pipelines.scorer import build_scorer

    config = load_config(settings.config)
    feeds = feeds_from_urls(args.feed) if args.feed else list(config.feeds)
    if not feeds:
        log.warning("no feeds configured: pass --feed URL or list feeds in the config file")
    settings.state_dir.mkdir(parents=True, exist_ok=True)

    bus: Bus = make_bus(settings)
    log.info(
        "monitor run: %d feeds, bus=%s, state in %s%s",
        len(feeds), bus.name, settings.state_dir, " (once)" if args.once else "",
    )
    bus.create_topics(topic_specs(settings))

    registry = CollectorRegistry()
    build_info(registry, stage="run")
    log.info("loading the classifier (first start takes a few seconds)")
    classifier = load_classifier(settings.scorer)

    alerts = bus.consumer([settings.kafka.topics.alerts], group_id=None, from_beginning=not settings.uses_kafka)
    producer = bus.producer()
    poller = build_poller(settings, feeds, producer, registry)
    scorer = build_scorer(settings, bus, registry, classifier=classifier)
    alerter = build_alerter(settings, config, bus, registry)
    alerter_runner: _Stage = getattr(alerter, "runner", alerter)
    server = None
    if settings.metrics.port:
        server = MetricsServer(registry, host=settings.metrics.host, port=settings.metrics.port).start()
    try:
        if args.once:
            return _run_once(poller, [scorer, alerter_runner], alerts)
        return _run_forever(poller, [scorer, alerter_runner], alerts)
    finally:
        for resource in (alerter, poller, producer, alerts):
            close = getattr(resource, "close", None)
            if callable(close):
                close()
        if server is not None:
            server.stop()
        bus.close()


def _run_once(poller: Any, stages: Sequence[_Stage], alerts: Consumer) -> int:
    started = time.monotonic()
    summary = poller.poll_all_once()
    log.info("polled every feed once: %s", summary)
    _drain(stages)
    fired = [a for a in _read_alerts(alerts, timeout=1.0) if isinstance(a, AlertFiring)]
    for alert in fired:
        _print_alert(alert)
    log.info("done in %.1fs: %d alerts fired", time.monotonic() - started, len(fired))
    return 0


def _run_forever(poller: Any, stages: Sequence[_Stage], alerts: Consumer) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=s.run, args=(stop,), name=f"stage-{i}") for i, s in enumerate(stages)]
    for thread in threads:
        thread.start()
    poller.start()
    log.info("running; alerts print here as they fire (Ctrl-C stops)")
    try:
        while not stop.is_set():
            for alert in _read_alerts(alerts, timeout=1.0):
                _print_alert(alert)
            if not all(t.is_alive() for t in threads):
                log.error("a stage stopped unexpectedly; shutting down")
                stop.set()
                return 1
    finally:
        stop.set()
        poller.stop()
        for thread in threads:
            thread.join(timeout=30)
    return 0
