"""What every long-running command shares: Kafka required or not, stop on signals, the metrics endpoint."""

from __future__ import annotations

import logging
import signal
import socket
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


def _port_problem(exc: OSError, host: str, port: int) -> ConfigError:
    return ConfigError(
        source="settings",
        key="MONITOR_METRICS__PORT",
        expected=f"a port free on {host} ({exc.strerror or exc}); choose another with "
        "MONITOR_METRICS__PORT, or 0 for no /metrics endpoint",
        got=port,
    )


def claim_metrics_port(settings: Settings) -> None:
    """Fail at once, with the setting to change, when the metrics port is taken (before slow start-up work
    such as loading the model); the endpoint itself starts later."""
    host, port = settings.metrics.host, settings.metrics.port
    if not port:
        return
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server binds
            probe.bind((host, port))
    except OSError as exc:
        raise _port_problem(exc, host, port) from exc


@contextmanager
def serving_metrics(
    settings: Settings, registry: CollectorRegistry, *, health: HealthCheck | None = None
) -> Iterator[MetricsServer | None]:
    """Serve ``/metrics`` and ``/healthz`` on the configured port for the block (none when the port is 0)."""
    if not settings.metrics.port:
        yield None
        return
    try:
        server = MetricsServer(
            registry, host=settings.metrics.host, port=settings.metrics.port, health=health
        )
    except OSError as exc:
        raise _port_problem(exc, settings.metrics.host, settings.metrics.port) from exc
    server.start()
    try:
        yield server
    finally:
        server.stop()
