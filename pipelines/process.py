"""What every long-running command shares: Kafka required or not, stop on signals, the metrics endpoint."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from prometheus_client import CollectorRegistry

from monitor.errors import ConfigError
from monitor.metrics import HealthCheck, MetricsServer
from monitor.settings import Settings

log = logging.getLogger(__name__)


def require_kafka(settings: Settings, *, why: str) -> None:
    """Stop with a configuration error naming ``KAFKA_BOOTSTRAP_SERVERS`` when no broker is configured."""
    if not settings.uses_kafka:
        raise ConfigError(source="environment", key="KAFKA_BOOTSTRAP_SERVERS", expected=why)


def stop_on_signals(what: str = "stopping") -> threading.Event:
    """An event that SIGTERM and SIGINT set (each logged with ``what``); call from the main thread."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: %s", signum, what)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


@contextmanager
def serving_metrics(
    settings: Settings, registry: CollectorRegistry, *, health: HealthCheck | None = None
) -> Iterator[MetricsServer | None]:
    """Serve ``/metrics`` and ``/healthz`` on the configured port for the block (none when the port is 0)."""
    if not settings.metrics.port:
        yield None
        return
    server = MetricsServer(registry, host=settings.metrics.host, port=settings.metrics.port, health=health)
    server.start()
    try:
        yield server
    finally:
        server.stop()
