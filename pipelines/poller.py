"""``monitor poller``: the feed poller stage on Kafka; and :func:`build_poller` for ``monitor run``.

Wiring only: the logic is in :mod:`monitor.feeds` (fetch, parse, gate, cluster, schedule, poll) and the
state in :mod:`monitor.store.feeds`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.bus import Producer, make_bus, topic_specs
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.feeds.http import HttpxFetcher
from monitor.feeds.model import FeedConfig
from monitor.feeds.poller import AfterPublish, Clock, Poller
from monitor.metrics import PollerMetrics, StageMetrics, build_info
from monitor.settings import PollerSettings, Settings
from monitor.store.feeds import FeedStore
from pipelines.process import claim_metrics_port, require_kafka, serving_metrics, stop_on_signals

log = logging.getLogger(__name__)

STATE_FILE = "poller.sqlite3"


def state_path(settings: Settings) -> Path:
    """Where the poller keeps its SQLite state: ``poller.state_path``, else ``state_dir/poller.sqlite3``."""
    return settings.poller.state_path or settings.state_dir / STATE_FILE


def build_fetcher(settings: PollerSettings) -> HttpxFetcher:
    """The httpx fetcher with the configured limits."""
    return HttpxFetcher(
        user_agent=settings.user_agent,
        connect_timeout=settings.connect_timeout.total_seconds(),
        read_timeout=settings.read_timeout.total_seconds(),
        total_timeout=settings.total_timeout.total_seconds(),
        max_bytes=settings.max_bytes,
        max_redirects=settings.max_redirects,
        per_host_concurrency=settings.per_host_concurrency,
        max_connections=max(settings.workers * 2, 8),
        allowed_networks=settings.allowed_networks,
    )


def build_poller(
    settings: Settings,
    feeds: Sequence[FeedConfig],
    producer: Producer,
    registry: CollectorRegistry,
    *,
    stage_metrics: StageMetrics | None = None,
    clock: Clock | None = None,
    after_publish: AfterPublish | None = None,
) -> Poller:
    """A poller of ``feeds`` publishing to ``settings.kafka.topics.articles`` through ``producer``.

    Registers :class:`~monitor.metrics.PollerMetrics` on ``registry`` (``stage_metrics``, when given, gets
    the common stage series). The poller owns its fetcher and its SQLite store (:func:`state_path`):
    ``Poller.close()`` releases them; the producer stays the caller's. ``after_publish`` is called after a
    feed's articles are acknowledged and before its state is committed (a seam for crash tests).
    """
    store = FeedStore(state_path(settings))
    return Poller(
        feeds=feeds,
        fetcher=build_fetcher(settings.poller),
        producer=producer,
        store=store,
        topic=settings.kafka.topics.articles,
        settings=settings.poller,
        metrics=PollerMetrics(registry),
        stage_metrics=stage_metrics,
        after_publish=after_publish,
        clock=clock,
    )


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the poller on Kafka until SIGTERM/SIGINT; serve /metrics and /healthz."""
    require_kafka(
        settings,
        why="the Kafka bootstrap servers (the poller stage publishes to Kafka; "
        "`monitor run` works without a broker)",
    )
    config = load_config(settings.config)
    claim_metrics_port(settings)
    if not config.feeds:
        raise ConfigError(
            source=str(settings.config or "<packaged default.yaml>"),
            key="feeds",
            expected="at least one feed",
        )
    registry = CollectorRegistry()
    build_info(registry, stage="poller")
    stage_metrics = StageMetrics(registry)
    bus = make_bus(settings)
    articles = settings.kafka.topics.articles
    bus.create_topics([spec for spec in topic_specs(settings) if spec.name == articles])
    producer = bus.producer()
    poller = build_poller(settings, config.feeds, producer, registry, stage_metrics=stage_metrics)
    stop = stop_on_signals("stopping the poller")
    try:
        with serving_metrics(settings, registry, health=poller.health):
            log.info(
                "poller running: %d feeds -> topic=%s (state %s)",
                len(config.feeds),
                articles,
                state_path(settings),
            )
            poller.run(stop)
    finally:
        poller.close()
        producer.close()
        bus.close()
    log.info("poller stopped")
    return 0
