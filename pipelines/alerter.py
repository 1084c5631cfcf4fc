"""``monitor alerter``, and the alerter as ``monitor run`` composes it: wiring only.

:func:`build_alerter` checks the config's routes against the bus, opens the SQLite state and builds the
:class:`~monitor.alerts.stage.AlerterStage` (what it does, in which order and why: that module);
:func:`main` runs it on Kafka, competing for the lease with the other ``monitor alerter`` processes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry

from monitor.alerts.engine import AlertEvent, signal_params
from monitor.alerts.stage import STAGE, AlerterStage
from monitor.bus import Bus, make_bus, topic_specs
from monitor.bus.base import Lease
from monitor.config import DEFAULT_CONFIG, MonitorConfig, load_config
from monitor.errors import ConfigError
from monitor.metrics import StageMetrics, build_info
from monitor.settings import Settings
from monitor.signals.engine import SignalParams
from monitor.store.alerts import AlerterStore
from pipelines.process import claim_metrics_port, require_kafka, serving_metrics, stop_on_signals

log = logging.getLogger(__name__)

GROUP_ID = "monitor-alerter"  # the default of settings.alerter.group_id
STATE_FILE = "alerter.sqlite3"


def engine_params(settings: Settings, config: MonitorConfig) -> SignalParams:
    """The signal parameters an alerter with ``settings`` uses for ``config``'s windows and rules."""
    a = settings.alerter
    return signal_params(
        config.signals,
        config.rules,
        step=a.evaluation_step,
        grace=a.arrival_grace,
        topic_threshold=a.topic_threshold,
        min_relevance=a.min_relevance,
        future_tolerance=a.future_tolerance,
    )


def check_routes(bus: Bus, settings: Settings, config: MonitorConfig) -> None:
    """Raise :class:`ConfigError` (every problem in one line) unless each routed alert topic exists and
    is not one of the pipeline's other topics."""
    source = str(settings.config) if settings.config is not None else f"<packaged {DEFAULT_CONFIG}>"
    names = settings.kafka.topics
    others = {names.articles, names.scored, names.signals, names.deadletter, names.alerter_lease}
    partitions = getattr(bus, "topic_partitions", None)
    problems: list[tuple[str, str, object]] = []
    for i, r in enumerate(config.routes):
        if r.topic in others:
            problems.append(
                (f"routes[{i}].topic", "an alert topic of its own, not a topic of the pipeline", r.topic)
            )
        elif r.topic != names.alerts and partitions is not None and partitions(r.topic) == 0:
            problems.append(
                (
                    f"routes[{i}].topic",
                    "an existing Kafka topic (`monitor topics create` creates it)",
                    r.topic,
                )
            )
    if problems:
        raise ConfigError.of(source, problems)


def build_alerter(
    settings: Settings,
    config: MonitorConfig,
    bus: Bus,
    registry: CollectorRegistry,
    *,
    stage_metrics: StageMetrics | None = None,
    on_alert: Callable[[AlertEvent], None] | None = None,
    max_wait: float | None = None,
    poll_timeout: float = 1.0,
    clock: Callable[[], datetime] | None = None,
    lease: Lease | None = None,
) -> AlerterStage:
    """The alerter stage on ``bus`` (consumer group ``settings.alerter.group_id``, by default
    ``monitor-alerter``, on ``topics.scored``).

    Returns an :class:`AlerterStage`: ``.runner`` is the :class:`StageRunner` to run or step, ``.flush()``
    ends the input (``--once``), ``.close()`` releases everything. Pass ``stage_metrics`` when several
    stages share ``registry`` (one :class:`StageMetrics` per registry); ``on_alert`` is called with each
    alert event once it is acknowledged on the bus. ``max_wait`` / ``poll_timeout``: how long a step
    waits to fill a batch (default: ``settings.alerter.max_wait``) / for a first record (seconds);
    ``clock``: the wall clock (bounds record times, drives the idle clock); ``lease``: compete with other
    alerters for being the active one (the others stand by, following the group's commits, publishing
    nothing); without one, this alerter is active and consumes as a member of its group.
    """
    check_routes(bus, settings, config)
    store = AlerterStore(settings.alerter.state_path or settings.state_path(STATE_FILE))
    return AlerterStage(
        settings,
        bus,
        registry,
        rules=config.rules,
        routes=config.routes,
        params=engine_params(settings, config),
        store=store,
        stage_metrics=stage_metrics,
        on_alert=on_alert,
        max_wait=settings.alerter.max_wait.total_seconds() if max_wait is None else max_wait,
        poll_timeout=poll_timeout,
        lease=lease,
        clock=clock,
    )


def main(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor alerter``: run the stage on Kafka until SIGTERM or SIGINT."""
    require_kafka(
        settings,
        why="Kafka bootstrap servers: `monitor alerter` runs on Kafka "
        "(without Kafka, `monitor run` runs the whole pipeline in one process)",
    )
    config = load_config(settings.config)
    claim_metrics_port(settings)
    bus = make_bus(settings)
    bus.create_topics(topic_specs(settings))
    registry = CollectorRegistry()
    build_info(registry, stage=STAGE)
    a = settings.alerter
    lease = bus.lease(
        settings.kafka.topics.alerter_lease, f"{a.group_id}.lease", timeout=a.lease_timeout.total_seconds()
    )
    try:
        stage = build_alerter(settings, config, bus, registry, lease=lease)
    except BaseException:
        lease.close()
        raise
    stop = stop_on_signals("finishing the current batch and stopping")
    log.info(
        "alerter consuming %s for group %s; the active one holds the lease of group %s.lease",
        settings.kafka.topics.scored,
        a.group_id,
        a.group_id,
    )
    try:
        with serving_metrics(settings, registry, health=stage.health):
            stage.run(stop)
    finally:
        stage.close()
        bus.close()
    log.info("alerter stopped")
    return 0
